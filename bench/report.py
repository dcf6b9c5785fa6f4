"""Machine description, the results table, ``bench/results/*.json`` and docs/performance.md."""

from __future__ import annotations

import json
import os
import platform
import socket
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
ORDER = ("help", "apply", "apply-noop", "impact-hub", "impact-typical", "status",
         "graph-focus", "export", "register-hub", "check", "status-dirty", "test-record",
         "env-check", "env-status-node", "env-check-behind", "env-plan", "env-deploy",
         "serve-node-page", "serve-node-api", "serve-lineage", "serve-gate", "serve-saturation",
         "serve-runs")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def machine_info(postgres_version: str | None = None) -> dict[str, Any]:
    """What the figures were measured on."""
    import chainml

    return {
        "host": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version,
        "chainml": chainml.__version__,
        "commit": _git("rev-parse", "--short", "HEAD"),
        "worktree_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row.get("op") or row.get("what"), row.get("size"), row.get("backend"),
            row.get("node"), row.get("change"))


def merge(path: Path, fresh: dict[str, Any]) -> dict[str, Any]:
    """Fold a run into the day's file: the same (operation, size, backend) is replaced, the
    rest kept, so that sizes measured in separate runs end up in one table."""
    if not path.exists():
        return fresh
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return fresh
    merged = dict(fresh)
    for section in ("results", "checks", "setup", "peers"):
        rows = {_key(r): r for r in old.get(section, [])}
        rows.update({_key(r): r for r in fresh.get(section, [])})
        merged[section] = list(rows.values())
    chains = dict(old.get("chains", {}))
    chains.update(fresh.get("chains", {}))
    merged["chains"] = chains
    if fresh.get("machine", {}).get("postgresql") is None and old.get("machine"):
        merged["machine"]["postgresql"] = old["machine"].get("postgresql")
    return merged


def write_json(out_dir: Path, data: dict[str, Any], quick: bool = False) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = f"{date.today().isoformat()}-{socket.gethostname()}{'-quick' if quick else ''}.json"
    path = out_dir / name
    data = merge(path, data)
    data["written_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _sort(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        op = r["op"]
        return (r["size"], r["backend"] != "sqlite", ORDER.index(op) if op in ORDER else 99)

    return sorted(rows, key=key)


def _secs(x: float | None) -> str:
    if x is None:
        return "-"
    if x < 0.001:
        return f"{x * 1e6:.0f} µs"
    if x < 1:
        return f"{x * 1000:.1f} ms"
    return f"{x:.2f} s"


def _met(r: dict[str, Any]) -> str:
    if r.get("met") is None:
        return "-"
    return "yes" if r["met"] else "**NO**"


def table_rows(data: dict[str, Any]) -> list[list[str]]:
    head = ["operation", "nodes", "backend", "runs", "median", "peak MiB", "target", "met?",
            "floor(s): time, chainml ÷ floor"]
    rows = [head]
    for r in _sort(data.get("results", [])):
        fl = "; ".join(f"{f['name']} {_secs(f['seconds'])} (×{f['ratio']})"
                       for f in r.get("floors", []))
        target = "-" if r.get("target_s") is None else f"≤ {r['target_s']:g} s"
        target = r.get("target_text") or target  # the server's: a percentile, or no errors
        if r.get("target_source", "").startswith("derived"):
            target += "*"
        median = f"> {_secs(r['median_s'])}" if r.get("timed_out") else _secs(r["median_s"])
        median = r.get("figure") or median  # the server's: percentiles at a rate
        rows.append([r["op"], f"{r['size']:,}", r["backend"], str(r["runs"]),
                     median, "-" if r.get("peak_mib") is None else
                     f"{r['peak_mib']:.0f}", target, _met(r), fl])
    return rows


def peer_rows(data: dict[str, Any]) -> list[list[str]]:
    head = ["nodes", "change", "selected", "same set?", "dbt ls (partial parse)",
            "dbt ls (full parse)", "chainml impact", "dbt ÷ chainml", "5,000 nodes: ≤ 0.5 s, ≥ 80×"]
    rows = [head]
    for p in sorted(data.get("peers", []), key=lambda p: (p["size"], p["change"])):
        target = "-"
        if p["size"] == 5000:
            ok = min(p.get("ratio", 0), p.get("ratio_full_parse", 0)) >= 80 and \
                p.get("chainml_s", 9) <= 0.5
            target = "yes" if ok else "**NO**"
        rows.append([f"{p['size']:,}", f"{p['change']} ({p['node']})", str(p.get("selected")),
                     "yes" if p.get("same") else "**NO**", _secs(p.get("dbt_s")),
                     _secs(p.get("dbt_full_parse_s")), _secs(p.get("chainml_s")),
                     f"×{p.get('ratio')} / ×{p.get('ratio_full_parse')}", target])
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows[1:]]
    return "\n".join(out)


def machine_line(m: dict[str, Any]) -> str:
    return (f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('ram_gib')} GiB RAM; "
            f"{m.get('os')}; Python {m.get('python')}, SQLite {m.get('sqlite')}, "
            f"PostgreSQL {m.get('postgresql') or '-'}; chainml {m.get('chainml')} "
            f"at {m.get('commit')}{' (uncommitted changes)' if m.get('worktree_dirty') else ''}")


def print_report(data: dict[str, Any]) -> None:
    print(f"\nMachine: {machine_line(data['machine'])}\n")
    if data.get("results"):
        print(text_table(table_rows(data)))
    if data.get("peers"):
        print("\nPeer: dbt ls --select state:modified+ --state ...\n")
        print(text_table(peer_rows(data)))
    bad = [c for c in data.get("checks", []) if not c.get("equal")]
    for c in bad:
        print(f"CHECK FAILED: {c}")
    for s in data.get("setup", []):
        print(f"setup {s.get('size')}/{s.get('backend')}: {s.get('what')}: {s.get('seconds')} s "
              f"{s.get('method', '')}")
    print()


def docs_section(data: dict[str, Any], results_file: str) -> str:
    m = data["machine"]
    rows = data.get("results", []) + data.get("peers", [])
    commits = sorted({r.get("commit", "?") for r in rows})
    parts = [
        f"Measured on {data['written_at'][:10]}: {machine_line(m)}.",
        f"Raw figures: `{results_file}`"
        + (f" (rows from commits {', '.join(commits)}: see each row's `commit`)."
           if len(commits) > 1 else "."),
        "",
        markdown_table(table_rows(data)),
        "",
        "`*` derived target (not in the issue): status is what CI reads, like check.",
    ]
    chains = data.get("chains", {})
    if chains:
        parts += ["", "The generated chains:", "",
                  markdown_table([["nodes", "edges", "testable", "longest path", "hub (direct "
                                   "consumers → descendants)", "typical node's descendants",
                                   "focus neighbourhood", "mean lineage of a testable node"]]
                                 + [[f"{int(k):,}", f"{c['edges']:,}", f"{c['testable']:,}",
                                     str(c["longest_path"]),
                                     f"{c['hub_direct_consumers']:,} → {c['hub_descendants']:,}",
                                     f"{c['typical_descendants']:,}",
                                     f"{c['focus_neighbourhood']:,}",
                                     f"{c['mean_lineage_of_testable']:,}"]
                                    for k, c in sorted(chains.items(), key=lambda x: int(x[0]))])]
    if data.get("peers"):
        parts += ["", "Against dbt (`dbt ls --select state:modified+ --state …`, dbt-core "
                  f"{data.get('peer_versions', {}).get('dbt-core', '?')}, whole process, "
                  "same chain, same change):", "", markdown_table(peer_rows(data))]
    setup = data.get("setup", [])
    if setup:
        parts += ["", "Setup (not measured): " + "; ".join(
            f"{s.get('size'):,}/{s.get('backend')}: {s.get('what')} in {s.get('seconds')} s"
            + (f" ({s['method']})" if s.get("method") else "") for s in setup) + "."]
    return "\n".join(parts)


def update_docs(doc: Path, data: dict[str, Any], results_file: str) -> bool:
    """Replace the text between the markers; False when the markers are missing."""
    if not doc.exists():
        return False
    text = doc.read_text(encoding="utf-8")
    if START not in text or END not in text:
        return False
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{docs_section(data, results_file)}\n{END}{tail}",
                   encoding="utf-8")
    return True


def dump(obj: Any) -> None:  # pragma: no cover - debugging aid
    json.dump(obj, sys.stdout, indent=2)
