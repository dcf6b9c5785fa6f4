"""``python -m bench --peers``: the same change, selected by dbt and by chainml.

Today's best alternative for "what is downstream of this change" is
``dbt ls --select state:modified+ --state <dir>``. For each peer size (1,000
and 5,000 nodes) this builds the same generated chain twice:

* as a dbt project (dbt-core 1.11.x with dbt-duckdb, installed from PyPI into
  ``bench/work/dbt-venv``: 1.12 fetches a parser from outside the package
  registry at install time): every source is a seed, every other node a model
  whose SQL is ``select 1 as id`` plus a ``{{ ref(...) }}`` per input; feedback
  inputs are left out (dbt forbids cycles, and impact ignores them anyway);
* as a chainml registry on SQLite, through ``chainml apply``.

``dbt parse`` writes the state manifest; then one node is changed (its SQL, or
its seed's CSV) and ``dbt ls --select state:modified+ --state state`` is timed
as a whole process, twice over: with dbt's partial parsing (a developer's
second run: ``target/partial_parse.msgpack`` is warm) and with
``--no-partial-parse`` (a fresh CI checkout). chainml's side is
``chainml impact NODE --json``. The selected sets must be equal (dbt's includes
the changed node itself, chainml's does not).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx

from bench.generate import Chain, generate
from bench.run import CHAINML, BenchError, SqliteBackend, Timing, log, measure, run_once

DBT_CORE = "dbt-core~=1.11.0"
DBT_RUNS_MAX = 3  # one dbt ls at 5,000 nodes takes tens of seconds


def dbt_name(node: str) -> str:
    """A dbt resource name for a chainml node name (``t03/feat_000123`` -> ``t03__feat_000123``)."""
    return node.replace("/", "__").replace("-", "_").replace(".", "_").replace(":", "_")


def ensure_dbt(work: Path) -> tuple[Path, dict[str, str]]:
    """The dbt virtual environment (created on first use) and the versions in it."""
    venv = work / "dbt-venv"
    dbt = venv / "bin" / "dbt"
    if not dbt.exists():
        log(f"creating {venv} with {DBT_CORE} and dbt-duckdb from PyPI")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, DBT_CORE, "dbt-duckdb"], check=True)
    versions: dict[str, str] = {}
    freeze = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True, check=True).stdout
    for line in freeze.splitlines():
        name, _, version = line.partition("==")
        if name.lower() in ("dbt-core", "dbt-duckdb", "duckdb"):
            versions[name.lower()] = version
    return dbt, versions


def write_project(chain: Chain, root: Path) -> None:
    """One model per chain node (seeds for sources), refs for inputs."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "models").mkdir(parents=True)
    (root / "seeds").mkdir()
    (root / "dbt_project.yml").write_text(
        "name: chainml_bench\nversion: '1.0'\nconfig-version: 2\nprofile: chainml_bench\n"
        "model-paths: [models]\nseed-paths: [seeds]\n", encoding="utf-8")
    (root / "profiles.yml").write_text(
        "chainml_bench:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        "      path: bench.duckdb\n      threads: 1\n", encoding="utf-8")
    for n in chain.nodes:
        team = n.name.split("/", 1)[0]
        if n.kind == "source":
            path = root / "seeds" / team / f"{dbt_name(n.name)}.csv"
            path.parent.mkdir(exist_ok=True)
            path.write_text("id\n1\n", encoding="utf-8")
            continue
        refs = [dbt_name(chain.nodes[u].name) for u in n.inputs]
        joins = "\n".join(f"cross join {{{{ ref('{r}') }}}} as i{k}" for k, r in enumerate(refs))
        path = root / "models" / team / f"{dbt_name(n.name)}.sql"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"-- chainml node {n.name} ({n.kind})\nselect 1 as id\n{joins}\n",
                        encoding="utf-8")


def change(chain: Chain, root: Path, node: str) -> None:
    """A new version of ``node``: its SQL (or its seed's data) changes."""
    kind = next(n.kind for n in chain.nodes if n.name == node)
    team = node.split("/", 1)[0]
    if kind == "source":
        (root / "seeds" / team / f"{dbt_name(node)}.csv").write_text("id\n2\n", encoding="utf-8")
    else:
        path = root / "models" / team / f"{dbt_name(node)}.sql"
        path.write_text(path.read_text().replace("select 1 as id", "select 2 as id"),
                        encoding="utf-8")


def _dbt_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"  # no network calls from the timed runs
    return env


def run_peers(sizes: list[int], seed: int, work: Path, runs: int
              ) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    """Rows for the peer table, the dbt versions, and the chains' statistics."""
    dbt, versions = ensure_dbt(work)
    log(f"dbt: {versions}")
    rows: list[dict[str, Any]] = []
    chains: dict[str, Any] = {}
    env = _dbt_env()
    dbt_runs = min(runs, DBT_RUNS_MAX)
    for size in sizes:
        chain = generate(size, seed)
        chain_file = chain.write(work / "chains" / f"chain-{size}-{seed}.json")
        chains[str(size)] = {**chain.stats, "picks": chain.picks,
                             "file_bytes": chain_file.stat().st_size}
        g = chain.graph()

        backend = SqliteBackend(size, work / "registries-peers")
        backend.fresh()
        log(f"{size:,} nodes: chainml apply")
        run_once([CHAINML, "apply", str(chain_file)], cwd=backend.cwd, env=backend.env(),
                 timeout=3600)

        for what in ("hub", "typical"):
            node = chain.picks[what]
            project = work / f"dbt-{size}"
            log(f"{size:,} nodes: dbt project, change {what} {node}")
            write_project(chain, project)
            args = ["--profiles-dir", str(project), "--project-dir", str(project)]
            run_once([str(dbt), "parse", *args], cwd=project, env=env, timeout=3600)
            shutil.copytree(project / "target", project / "state")
            change(chain, project, node)
            listing = project / "ls.txt"
            ls = [str(dbt), "--quiet", "ls", *args, "--select", "state:modified+", "--state",
                  str(project / "state"), "--resource-type", "model", "--resource-type", "seed",
                  "--output", "name"]
            log(f"  dbt ls state:modified+ with partial parsing ({dbt_runs} runs)")
            warm = measure(lambda _i, c=ls: c, dbt_runs, cwd=project, env=env, stdout=listing)
            picked = {line.strip() for line in listing.read_text().splitlines() if line.strip()}
            log(f"  dbt ls --no-partial-parse ({dbt_runs} runs)")
            cold = measure(lambda _i, c=ls: [*c[:2], "--no-partial-parse", *c[2:]], dbt_runs,
                           cwd=project, env=env, stdout=listing)
            picked_cold = {line.strip() for line in listing.read_text().splitlines()
                           if line.strip()}

            out = work / f"impact-{size}-{what}.json"
            mine = measure(lambda _i, n=node: [CHAINML, "impact", n, "--json"], runs,
                           cwd=backend.cwd, env=backend.env(), stdout=out)
            got = {e["name"] for e in json.loads(out.read_text())["impacted"]}
            expected = nx.descendants(g, node)
            dbt_set = {dbt_name(x) for x in got} | {dbt_name(node)}
            same = picked == dbt_set and picked_cold == dbt_set and got == expected
            if not same:
                log(f"  selections differ: dbt {len(picked)} / {len(picked_cold)}, "
                    f"chainml {len(got)} (+1), networkx {len(expected)}")
            rows.append(_row(size, what, node, len(picked), same, warm, cold, mine))
            log(f"  dbt {warm.median:.2f} s (no partial parse {cold.median:.2f} s), chainml "
                f"{mine.median:.3f} s: x{rows[-1]['ratio']} / x{rows[-1]['ratio_full_parse']}")
        backend.drop()
    shutil.rmtree(work / "registries-peers", ignore_errors=True)
    if not rows:
        raise BenchError("no peer comparison ran")
    return rows, versions, chains


def _row(size: int, what: str, node: str, selected: int, same: bool, warm: Timing,
         cold: Timing, mine: Timing) -> dict[str, Any]:
    return {
        "size": size, "change": what, "node": node, "selected": selected, "same": same,
        "dbt_s": round(warm.median, 3), "dbt_peak_mib": warm.peak_mib, "dbt_runs": len(warm.times),
        "dbt_full_parse_s": round(cold.median, 3), "dbt_full_parse_peak_mib": cold.peak_mib,
        "chainml_s": round(mine.median, 4), "chainml_peak_mib": mine.peak_mib,
        "chainml_runs": len(mine.times),
        "ratio": round(warm.median / mine.median, 1),
        "ratio_full_parse": round(cold.median / mine.median, 1),
        "load1": round(os.getloadavg()[0], 2),
    }
