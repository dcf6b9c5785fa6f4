"""``python -m bench``: the scale benchmark (docs/performance.md).

Examples::

    python -m bench                                  # 1,000 / 10,000 / 100,000 on both backends
    python -m bench --sizes 1000,10000 --backends sqlite
    python -m bench --quick --out /tmp/bench         # CI: 1,000 nodes, 1 run, SQLite
    python -m bench --peers                          # dbt ls state:modified+ on 1,000 and 5,000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from bench import report, run
from bench.generate import DEFAULT_SEED, generate
from bench.run import OPERATIONS, BenchError, PostgresBackend, log, make_backend, scenario
from bench.serve import ServeConfig

ROOT = Path(__file__).resolve().parent.parent


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,10000,100000",
                   help="chain sizes in nodes, comma-separated (default: %(default)s)")
    p.add_argument("--backends", default="sqlite,postgresql",
                   help="sqlite and/or postgresql (default: %(default)s)")
    p.add_argument("--runs", type=int, default=5,
                   help="timed runs per operation after one warm-up (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="the CI variant: 1,000 nodes, 1 run, SQLite, docs untouched")
    p.add_argument("--peers", action="store_true",
                   help="only the dbt comparison (needs PyPI; builds bench/work/dbt-venv)")
    p.add_argument("--peer-sizes", default="1000,5000", help="sizes for --peers")
    p.add_argument("--only", default="",
                   help=f"only these operations, comma-separated: {', '.join(OPERATIONS)}")
    p.add_argument("--out", default=str(ROOT / "bench" / "results"),
                   help="where the JSON results go (default: bench/results)")
    p.add_argument("--docs", default=str(ROOT / "docs" / "performance.md"),
                   help="page whose bench:start/end markers get the table ('' = none)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test",
                   help="PostgreSQL database to create scratch schemas in")
    p.add_argument("--work", default=str(ROOT / "bench" / "work"),
                   help="scratch folder for chain files and registries (git-ignored)")
    p.add_argument("--op-timeout", type=float, default=600.0,
                   help="kill a measured command after this many seconds (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the registries afterwards")
    p.add_argument("--serve-seconds", type=float, default=None, metavar="S",
                   help="the serve-* load phases last S seconds each (default: 30 s of reads "
                        "at 200/s, 60 s of writes at 50/s, 20 s at saturation)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.runs, args.backends, args.docs = "1000", 1, "sqlite", ""
        if args.serve_seconds is None:
            args.serve_seconds = 2.0
    if args.serve_seconds is not None and args.serve_seconds <= 0:
        p.error("--serve-seconds must be positive")
    if args.runs < 1:
        p.error("--runs must be at least 1")
    unknown = set(_csv(args.only)) - set(OPERATIONS)
    if unknown:
        p.error(f"unknown operation(s) {', '.join(sorted(unknown))}; "
                f"use: {', '.join(OPERATIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run.OP_TIMEOUT = args.op_timeout
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    sizes = [int(s.replace("_", "")) for s in _csv(args.sizes)]
    backends = _csv(args.backends)
    only = set(_csv(args.only)) or None
    serve_config = (ServeConfig.short(args.serve_seconds) if args.serve_seconds is not None
                    else ServeConfig())
    data: dict[str, Any] = {"args": vars(args), "results": [], "checks": [], "setup": [],
                            "chains": {}, "peers": [], "errors": []}
    pg_version = None
    if "postgresql" in backends or args.peers:
        try:
            pg_version = PostgresBackend(0, work, args.pg_url).server_version()
        except Exception as e:  # noqa: BLE001 - any driver error: say it and carry on
            log(f"PostgreSQL unreachable ({e}); its runs will fail")
    data["machine"] = report.machine_info(pg_version)
    started = time.perf_counter()

    if args.peers:
        from bench import peers

        data["peers"], data["peer_versions"], chains = peers.run_peers(
            [int(s) for s in _csv(args.peer_sizes)], args.seed, work, args.runs)
        data["chains"].update(chains)
    else:
        for size in sizes:
            log(f"generating a {size:,}-node chain (seed {args.seed})")
            chain = generate(size, args.seed)
            chain_file = chain.write(work / "chains" / f"chain-{size}-{args.seed}.json")
            data["chains"][str(size)] = {**chain.stats, "picks": chain.picks,
                                         "file_bytes": chain_file.stat().st_size}
            log(f"  {chain.stats['edges']:,} edges, longest path {chain.stats['longest_path']}, "
                f"hub {chain.picks['hub']} reaches {chain.stats['hub_descendants']:,}")
            for name in backends:
                backend = make_backend(name, size, work / "registries", args.pg_url)
                log(f"{size:,} nodes on {name}")
                t0 = time.perf_counter()
                try:
                    outcome = scenario(chain, chain_file, backend, args.runs, only, work,
                                       serve_config)
                except (BenchError, OSError) as e:
                    log(f"FAILED: {size} on {name}: {e}")
                    data["errors"].append({"size": size, "backend": name, "error": str(e)})
                    continue
                finally:
                    if not args.keep:
                        backend.drop()
                data["results"] += outcome.results
                data["checks"] += outcome.checks
                data["setup"] += outcome.setup
                data["errors"] += outcome.errors
                log(f"  {size:,} on {name} took {time.perf_counter() - t0:.0f} s")
    # The code under test moves fast: every row says which commit it measured.
    stamp = data["machine"]["commit"] + ("+dirty" if data["machine"]["worktree_dirty"] else "")
    for section in ("results", "peers"):
        for row in data[section]:
            row["commit"] = stamp
    data["total_seconds"] = round(time.perf_counter() - started, 1)
    if not args.keep:
        shutil.rmtree(work / "registries", ignore_errors=True)

    path = report.write_json(Path(args.out), data, quick=args.quick)
    merged = json.loads(path.read_text())
    report.print_report(merged)
    print(f"Results: {path}")
    if args.docs:
        try:
            shown = str(path.resolve().relative_to(ROOT))
        except ValueError:
            shown = str(path)
        if report.update_docs(Path(args.docs), merged, shown):
            print(f"Table updated in {args.docs}")
    failed = data["errors"] or [c for c in data["checks"] if not c.get("equal")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
