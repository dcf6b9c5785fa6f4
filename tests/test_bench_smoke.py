"""The benchmark's CI variant (``python -m bench --quick``), so that it cannot rot.

No timing is asserted: CI machines vary. What is asserted is that every
operation ran and produced a positive median, and that ``chainml impact`` of the
hub selected exactly ``networkx.descendants`` of the generated graph - read
from chainml's own JSON output, not from the benchmark's bookkeeping - and that
the environment operations saw the scenario they are meant to: ``check --env
prod`` failing what the hub reaches, and the release recorded.

The server operations (``serve-*``) get a test of their own at a tiny size (200 nodes,
1-second load phases): every request answered, every POSTed run recorded exactly once;
and the load generator is checked against a deliberately slow server, so that an open
loop that quietly waited for answers (coordinated omission) would fail.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import networkx as nx

from bench.generate import DEFAULT_SEED, NEEDS_TESTS, generate
from bench.run import OPERATIONS
from bench.serve import SERVE_OPERATIONS

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_OPERATIONS = {
    "help", "apply", "apply-noop", "impact-hub", "impact-typical", "status", "graph-focus",
    "export", "register-hub", "check", "status-dirty", "test-record",
    "env-check", "env-status-node", "env-check-behind", "env-plan", "env-deploy",
    "serve-node-page", "serve-node-api", "serve-lineage", "serve-gate", "serve-saturation",
    "serve-runs", "serve-ingest", "serve-ingest-marked", "serve-hook-lag",
}


def test_quick_benchmark_runs_every_operation(tmp_path: Path) -> None:
    results, work = tmp_path / "results", tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(results), "--work", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    files = list(results.glob("*.json"))
    assert len(files) == 1, files
    data = json.loads(files[0].read_text())
    assert not data["errors"]
    rows = {r["op"]: r for r in data["results"]}
    assert set(OPERATIONS) == EXPECTED_OPERATIONS
    assert set(rows) == EXPECTED_OPERATIONS
    for op, row in rows.items():
        assert row["size"] == 1000 and row["backend"] == "sqlite", row
        assert row["runs"] >= 1 and row["median_s"] > 0, (op, row)
        assert row["peak_mib"] and row["peak_mib"] > 0, (op, row)
        assert row["floors"] and all(f["seconds"] > 0 for f in row["floors"]), (op, row)
    assert all(c["equal"] for c in data["checks"]), data["checks"]

    chain = generate(1000, DEFAULT_SEED)
    hub = chain.picks["hub"]
    assert data["chains"]["1000"]["picks"]["hub"] == hub
    impact = json.loads((work / "out-sqlite-1000" / "impact-hub.json").read_text())
    assert impact["node"] == hub
    selected = {e["name"] for e in impact["impacted"]}
    assert selected == nx.descendants(chain.graph(), hub)
    assert len(selected) > 0.5 * chain.size  # a hub indeed

    # The deployment gate fails exactly the testable nodes the hub reaches (all deployed),
    # but the one test-record retested on top of the hub's new version.
    testable = {n.name for n in chain.nodes if NEEDS_TESTS[n.kind]}
    env_check = json.loads((work / "out-sqlite-1000" / "env-check.json").read_text())
    failing = {e["name"] for e in env_check["failing"]}
    reached = (nx.descendants(chain.graph(), hub) | {hub}) & testable
    assert failing == reached - {chain.picks["record"]}
    release = json.loads((work / "out-sqlite-1000" / "env-deploy.json").read_text())
    assert release["recorded"] and release["ok"] and release["nodes"]


def test_write_floors_leave_the_registry_as_it_was(tmp_path: Path) -> None:
    """The register-hub floor inserts marks and must roll them back: left behind, they
    made every later check and status in the benchmark process seven times the marks."""
    from bench import floors
    from chainml.registry import Registry
    from tests.chains import build_example

    reg = Registry.init(tmp_path)
    build_example(reg)
    reg.close()
    db = floors.connect_sqlite(str(tmp_path / ".chainml" / "registry.db"))
    try:
        before = db.rows("SELECT count(*) FROM retest_mark")
        hub = floors.node_ids(db)["clicks_raw"]
        for _ in range(2):
            floors.cte_register(db, hub)()
        assert db.rows("SELECT count(*) FROM retest_mark") == before
    finally:
        db.close()


def test_env_deploy_floor_leaves_the_registry_as_it_was(tmp_path: Path) -> None:
    """The env-deploy floor inserts deployment rows and must roll them back, or every later
    env command of the benchmark would read a different environment."""
    from bench import floors
    from chainml.registry import Registry
    from tests.chains import build_example

    reg = Registry.init(tmp_path)
    build_example(reg)
    reg.env_create("prod")
    reg.close()
    db = floors.connect_sqlite(str(tmp_path / ".chainml" / "registry.db"))
    try:
        before = db.rows("SELECT count(*) FROM deployment")
        env = floors.env_id(db, "prod")
        release = db.rows("SELECT id, current_version_id FROM node ORDER BY id LIMIT 3")
        for _ in range(2):
            assert floors.insert_deployments(db, env, [(n, v) for n, v in release])() == 3
        assert db.rows("SELECT count(*) FROM deployment") == before
    finally:
        db.close()


def test_serve_operations_at_a_tiny_size(tmp_path: Path) -> None:
    results, work = tmp_path / "results", tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--sizes", "200", "--backends", "sqlite", "--runs", "1",
         "--only", ",".join(SERVE_OPERATIONS), "--serve-seconds", "1", "--docs", "",
         "--out", str(results), "--work", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    data = json.loads(next(results.glob("*.json")).read_text())
    assert not data["errors"], data["errors"]
    rows = {r["op"]: r for r in data["results"]}
    assert set(rows) == set(SERVE_OPERATIONS)
    for op, row in rows.items():
        d = row["detail"]
        assert row["size"] == 200 and row["backend"] == "sqlite", row
        assert d["workers"] == 1 and d["server_processes"] == 1, (op, d)  # SQLite: one process
        assert d["requests"] >= 1 and d["errors"] == 0, (op, d)
        assert 0 < d["p50_s"] <= d["p95_s"] <= d["p99_s"] <= d["max_s"], (op, d)
        assert row["peak_mib"] and row["peak_mib"] > 0, (op, row)
        assert row["floors"] and all(f["seconds"] > 0 for f in row["floors"]), (op, row)
        assert row["figure"], (op, row)
    assert rows["serve-node-page"]["detail"]["requests"] == 200  # 200/s for 1 s, all answered
    assert rows["serve-node-page"]["detail"]["bytes_mean"] > rows["serve-node-api"]["detail"][
        "bytes_mean"]  # the page, not its JSON twin
    assert rows["serve-lineage"]["detail"]["distinct_nodes"] == 5
    assert rows["serve-saturation"]["detail"]["requests_per_s"] > 0
    gate = rows["serve-gate"]["detail"]
    # A tiny gate is computed within the page's wait: each write shows on the first page.
    assert len(gate["after_write_s"]) == len(gate["write_shown_s"]) == 3, gate
    assert gate["after_write_older"] == [False] * 3, gate
    assert gate["slowest_s"] == max(gate["started_s"], *gate["after_write_s"]), gate
    runs = rows["serve-runs"]["detail"]
    assert runs["requests"] == 50 and runs["exactly_once"], runs
    assert runs["test_runs_recorded"] == runs["events_recorded"] == 50, runs
    serve_checks = [c for c in data["checks"] if c["what"].startswith("serve-runs")]
    assert len(serve_checks) == 3 and all(c["equal"] for c in serve_checks), serve_checks
    assert all(c["equal"] for c in data["checks"]), data["checks"]


def test_open_loop_counts_latency_from_when_each_request_was_due() -> None:
    """A server answering one request at a time in 50 ms, sent 100 requests/s for 0.5 s:
    the answers fall further and further behind, and the open loop must say so (the last
    waits ~2 s); a closed loop would have reported 50 ms for every one."""
    from bench import load

    async def scenario() -> dict[str, Any]:
        lock = asyncio.Lock()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    await reader.readuntil(b"\r\n\r\n")
                    async with lock:
                        await asyncio.sleep(0.05)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await load.run({"base_url": f"http://127.0.0.1:{port}", "mode": "open",
                                   "rate": 100, "seconds": 0.5,
                                   "requests": [["GET", "/", None]]})

    got = asyncio.run(scenario())
    records = got["records"]
    assert len(records) == 50 and all(r[2] == 200 for r in records)
    latencies = [r[1] for r in records]
    assert latencies[-1] > 1.5, latencies  # 50 x 50 ms of service, minus 0.5 s of arrivals
    assert min(latencies) >= 0.045
    assert got["wall_s"] > 2.2


def test_p99_by_window_splits_an_open_loop_by_when_requests_were_due() -> None:
    from bench.serve import p99_by_window

    # Due at 0-4.9 s: slow (a new server); 5-9.9 s: fast; one at 10 s.
    records = [[i / 10, 0.4 if i < 50 else 0.01, 200, 0, None] for i in range(100)]
    records.append([10.0, 0.02, 200, 0, None])
    assert p99_by_window(records) == [0.4, 0.01, 0.02]
    assert p99_by_window(records, window=20.0) == [0.4]
