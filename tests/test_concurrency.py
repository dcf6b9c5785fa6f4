"""Many writers at once (DESIGN.md: "concurrent writers must never lose a mark, duplicate a
version or leave half an operation behind").

Worker *processes* (tests/stress_worker.py, one ``Registry`` each, loopback only) start
together at a barrier and run a seeded mix of registrations on shared and disjoint
nodes, promotions, test records, waivers and deliberate refusals. Afterwards:

- every operation a worker saw succeed left exactly one event, row and id (none lost,
  none duplicated), and nothing else was written in its name;
- every version label is unique per node, and each node's current version is the one
  named by its latest ``version.registered``/``version.promoted`` event;
- the status read from the persisted marks equals the status recomputed from the
  definition, for every node, reasons included;
- no worker exited non-zero or printed a traceback; refusals are counted, not raised.

The default run keeps this short (SQLite 4x25, PostgreSQL 8x25, MariaDB 4x25, and the
races); ``pytest -m slow tests/test_concurrency.py`` runs 16x200 on PostgreSQL, 4x200 on
SQLite and 8x200 on MariaDB.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from chainml.db.engine import parse_url
from chainml.registry import Registry, utcnow
from tests import stress_worker

ROOT = Path(__file__).resolve().parents[1]
COUNTED = ("version.registered", "version.promoted", "test.recorded", "waiver.granted")
SEED = int(os.environ.get("CHAINML_STRESS_SEED", "20261101"))


def run_workers(url: str, tmp: Path, *, workers: int, ops: int, mode: str,
                max_seconds: float = 300) -> list[dict[str, Any]]:
    """Start ``workers`` processes, open the barrier when all are connected, collect."""
    out, barrier = tmp / "out", tmp / "barrier"
    out.mkdir(exist_ok=True)
    barrier.mkdir(exist_ok=True)
    plan = {"url": url, "workers": workers, "ops": ops, "mode": mode, "seed": SEED,
            "barrier": str(barrier), "out": str(out), "max_seconds": max_seconds}
    plan_file = tmp / "plan.json"
    plan_file.write_text(json.dumps(plan))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CHAINML_DATABASE_URL", None)
    with open(tmp / "launcher.stderr", "w+b") as log:
        launcher = subprocess.Popen([sys.executable, "-m", "tests.stress_worker", str(plan_file)],
                                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log,
                                    start_new_session=True)
        try:
            limit = time.monotonic() + 120
            while len(list(barrier.glob("ready-*"))) < workers:
                if launcher.poll() is not None:
                    break  # some worker failed before the start: reported below
                assert time.monotonic() < limit, "workers did not get ready in 120 s"
                time.sleep(0.02)
            (barrier / "go").touch()
            launcher.wait(timeout=max_seconds + 120)
        finally:
            if launcher.poll() is None:  # the launcher and the workers it forked
                os.killpg(launcher.pid, signal.SIGKILL)
                launcher.wait()
        log.seek(0)
        launcher_err = log.read().decode(errors="replace")
    assert launcher.returncode == 0 and not launcher_err, launcher_err
    codes = json.loads((out / "exit.json").read_text())
    errors = "\n".join(f"--- w{w}\n{(out / f'w{w}.stderr').read_text(errors='replace')}"
                       for w in range(workers) if (out / f"w{w}.stderr").stat().st_size)
    failed = [w for w, code in codes.items() if code != 0]
    assert not failed, f"workers {failed} exited non-zero:\n{errors}"
    assert "Traceback" not in errors, errors
    results = [json.loads((out / f"w{w}.json").read_text()) for w in range(workers)]
    assert not [r["worker"] for r in results if r["stopped_early"]], "a worker ran out of time"
    return results


def query(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def last_event_id(url: str) -> int:
    return int(query(url, "SELECT COALESCE(MAX(id), 0) FROM event")[0][0])


# ---- the checks ------------------------------------------------------------------------------


def check_nothing_lost_or_duplicated(url: str, results: list[dict[str, Any]], since: int
                                     ) -> None:
    """Events, rows and ids match what the workers saw succeed, worker by worker."""
    expected: Counter[tuple[str, str]] = Counter()
    runs: dict[str, list[int]] = {}
    waivers: dict[str, list[int]] = {}
    created: Counter[str] = Counter()
    for r in results:
        actor = f"w{r['worker']}"
        for op in r["done"]:
            if op["event"]:
                expected[(actor, op["event"])] += 1
            if op.get("created"):
                created[actor] += 1
            if "run" in op:
                runs.setdefault(actor, []).append(op["run"])
            if "waiver" in op:
                waivers.setdefault(actor, []).append(op["waiver"])
    found = Counter({(a, act): n for a, act, n in query(
        url, "SELECT actor, action, COUNT(*) FROM event WHERE id > :since "
             "GROUP BY actor, action", since=since)})
    assert found == expected, {"missing": expected - found, "extra": found - expected}
    assert set(a for _, a in found) <= set(COUNTED)

    rows = {a: sorted(i for _, i in grp) for a, grp in _group(query(
        url, "SELECT recorded_by, id FROM test_run WHERE recorded_by LIKE 'w%'"))}
    assert rows == {a: sorted(ids) for a, ids in runs.items()}, "test runs lost or duplicated"
    event_runs = sorted(json.loads(d)["run"] if isinstance(d, str) else d["run"] for (d,) in query(
        url, "SELECT details FROM event WHERE action = 'test.recorded' AND id > :s", s=since))
    assert event_runs == sorted(i for ids in runs.values() for i in ids)

    rows = {a: sorted(i for _, i in grp) for a, grp in _group(query(
        url, "SELECT granted_by, id FROM waiver WHERE granted_by LIKE 'w%'"))}
    assert rows == {a: sorted(ids) for a, ids in waivers.items()}, "waivers lost or duplicated"

    versions = Counter({a: n for a, n in query(
        url, "SELECT created_by, COUNT(*) FROM version WHERE created_by LIKE 'w%' "
             "GROUP BY created_by")})
    assert versions == created, "versions lost or duplicated"


def _group(rows: list[Any]) -> list[tuple[str, list[Any]]]:
    out: dict[str, list[Any]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return sorted(out.items())


def check_versions(url: str) -> None:
    """Labels unique per node; the current version is the latest change event's."""
    dup = query(url, "SELECT node_id, label, COUNT(*) FROM version "
                     "GROUP BY node_id, label HAVING COUNT(*) > 1")
    assert dup == [], f"duplicate versions: {dup}"
    current = dict(query(url, "SELECT n.name, v.label FROM node n "
                              "JOIN version v ON v.id = n.current_version_id"))
    latest: dict[str, str] = {}
    for name, label in query(url, "SELECT node_name, version_label FROM event WHERE action IN "
                                  "('version.registered', 'version.promoted') ORDER BY id"):
        latest[name] = label
    assert current == latest


def check_status_agrees(reg: Registry) -> dict[str, Any]:
    """Status from marks == status from the definition, reasons included (no input ever
    changes in these runs, so every reason is a change event with a mark)."""
    fast = {e.name: e for e in reg.status()}
    slow = {e.name: e for e in reg.recompute_status()}
    assert fast.keys() == slow.keys()
    for name, a in fast.items():
        b = slow[name]
        assert a.status == b.status, (name, a, b)
        assert _reasons(a) == _reasons(b), (name, a, b)
    return fast


def _reasons(entry: Any) -> list[tuple[str, str | None, str | None]]:
    return sorted((r.cause, r.from_, r.to) for r in entry.reasons if r.suite is None)


# ---- the mixed stress ------------------------------------------------------------------------


def stress(url: str, tmp: Path, workers: int, ops: int) -> dict[str, Any]:
    with Registry.init(url=url, actor="setup") as reg:
        stress_worker.build_chain(reg, workers)
    since = last_event_id(url)
    results = run_workers(url, tmp, workers=workers, ops=ops, mode="mix")
    check_nothing_lost_or_duplicated(url, results, since)
    check_versions(url)
    with Registry(url) as reg:
        statuses = check_status_agrees(reg)
    # Registrations of the same label by many workers: created exactly once.
    same: Counter[tuple[str, str]] = Counter()
    seen: set[tuple[str, str]] = set()
    for r in results:
        for op in r["done"]:
            if op["what"] == "reg_same":
                seen.add((op["node"], op["version"]))
                same[(op["node"], op["version"])] += op["created"]
    assert all(same[k] == 1 for k in seen), same
    done = sum(len(r["done"]) for r in results)
    refused = sum(sum(r["refused"].values()) for r in results)
    assert done + refused == workers * ops
    # The deliberate refusals were refused as the right error, never accepted.
    kinds = Counter(k for r in results for k, n in r["refused"].items() for _ in range(n))
    assert not [op for r in results for op in r["done"]
                if op["what"] in ("cycle", "conflict", "unknown")]
    assert {k.split(":")[1] for k in kinds if k.startswith("cycle:")} <= {"CycleError"}
    assert {k.split(":")[1] for k in kinds if k.startswith("conflict:")} <= {"VersionConflict"}
    out = {"done": done, "refused": refused, "statuses": Counter(
        e.status.value for e in statuses.values())}
    print(f"{workers} writers x {ops} operations: {done} succeeded, {refused} refused "
          f"({dict(kinds)}); statuses {dict(out['statuses'])}")  # shown with -s
    return out


@pytest.mark.parametrize(("database_url", "workers", "ops"), [
    pytest.param("sqlite", 4, 25, id="sqlite-4x25"),
    pytest.param("postgresql", 8, 25, id="postgresql-8x25"),
    pytest.param("mysql", 4, 25, id="mysql-4x25"),
], indirect=["database_url"])
def test_concurrent_writers(database_url: str, tmp_path: Path, workers: int, ops: int) -> None:
    stress(database_url, tmp_path, workers, ops)


@pytest.mark.slow
@pytest.mark.parametrize(("database_url", "workers", "ops"), [
    pytest.param("sqlite", 4, 200, id="sqlite-4x200"),
    pytest.param("postgresql", 16, 200, id="postgresql-16x200"),
    pytest.param("mysql", 8, 200, id="mysql-8x200"),
], indirect=["database_url"])
def test_concurrent_writers_long(database_url: str, tmp_path: Path, workers: int, ops: int
                                 ) -> None:
    stress(database_url, tmp_path, workers, ops)


# ---- races on one node -----------------------------------------------------------------------


def same_version_race(url: str, tmp: Path, workers: int) -> None:
    with Registry.init(url=url, actor="setup") as reg:
        tested = stress_worker.build_race_chain(reg)
    since = last_event_id(url)
    results = run_workers(url, tmp, workers=workers, ops=1, mode="same")
    outcomes = [op["created"] for r in results for op in r["done"]]
    assert sorted(outcomes) == [False] * (workers - 1) + [True], results
    assert not any(r["refused"] for r in results)
    assert query(url, "SELECT v.label FROM version v JOIN node n ON n.id = v.node_id "
                      "WHERE n.name = 'hub' ORDER BY v.label") == [("1",), ("2",)]
    assert query(url, "SELECT action, node_name, version_label FROM event WHERE id > :s",
                 s=since) == [("version.registered", "hub", "2")]
    check_versions(url)
    with Registry(url) as reg:
        statuses = check_status_agrees(reg)
        assert reg.node("hub").current_version == "2"
    for name in tested:
        assert statuses[name].status.value == "needs_retest"
        assert _reasons(statuses[name]) == [("hub", "1", "2")]
    check_one_open_mark_per_cause(url, tested)


def version_change_race(url: str, tmp: Path, workers: int, ops: int) -> None:
    with Registry.init(url=url, actor="setup") as reg:
        tested = stress_worker.build_race_chain(reg)
    since = last_event_id(url)
    results = run_workers(url, tmp, workers=workers, ops=ops, mode="race")
    check_nothing_lost_or_duplicated(url, results, since)
    check_versions(url)  # includes: current == the label of the largest-id change event
    labels = {label for (label,) in query(
        url, "SELECT v.label FROM version v JOIN node n ON n.id = v.node_id "
             "WHERE n.name = 'hub'")}
    assert labels == {"1"} | {f"r{w}" for w in range(workers)}
    with Registry(url) as reg:
        statuses = check_status_agrees(reg)
        current = reg.node("hub").current_version
    for name in tested:
        if current == "1":  # promoted back to what every node was tested with
            assert statuses[name].status.value == "verified"
        else:
            assert statuses[name].status.value == "needs_retest", statuses[name]
            assert _reasons(statuses[name]) == [("hub", "1", current)]
    check_one_open_mark_per_cause(url, tested)


def check_one_open_mark_per_cause(url: str, names: list[str]) -> None:
    """Superseded marks are closed: at most one open mark per (node, cause)."""
    rows = query(url, "SELECT n.name, m.cause_id, COUNT(*) FROM retest_mark m "
                      "JOIN node n ON n.id = m.node_id WHERE m.closed_at IS NULL "
                      "GROUP BY n.name, m.cause_id")
    assert all(count == 1 for _, _, count in rows), rows
    assert {name for name, _, _ in rows} <= set(names)


@pytest.mark.parametrize(("database_url", "workers"), [
    pytest.param("sqlite", 8, id="sqlite-8"),
    pytest.param("postgresql", 16, id="postgresql-16"),
    pytest.param("mysql", 8, id="mysql-8"),
], indirect=["database_url"])
def test_same_version_from_many_processes(database_url: str, tmp_path: Path,
                                          workers: int) -> None:
    same_version_race(database_url, tmp_path, workers)


@pytest.mark.parametrize(("database_url", "workers", "ops"), [
    pytest.param("sqlite", 4, 6, id="sqlite-4x6"),
    pytest.param("postgresql", 8, 6, id="postgresql-8x6"),
    pytest.param("mysql", 4, 6, id="mysql-4x6"),
], indirect=["database_url"])
def test_version_change_race_on_one_node(database_url: str, tmp_path: Path, workers: int,
                                        ops: int) -> None:
    version_change_race(database_url, tmp_path, workers, ops)


@pytest.mark.slow
@pytest.mark.parametrize(("database_url", "workers", "ops"), [
    pytest.param("sqlite", 16, 40, id="sqlite-16x40"),
    pytest.param("postgresql", 16, 40, id="postgresql-16x40"),
    pytest.param("mysql", 16, 40, id="mysql-16x40"),
], indirect=["database_url"])
def test_version_change_race_long(database_url: str, tmp_path: Path, workers: int,
                                  ops: int) -> None:
    version_change_race(database_url, tmp_path, workers, ops)


# ---- regressions the stress runs found ------------------------------------------------------


def test_reasons_after_a_promote_back_name_the_deciding_run(tmp_path: Path) -> None:
    """A node promoted back to a version with older runs: the mark must say what those
    runs were tested with (it kept the newer version's 'from' before marks.rebuild
    compared both ends of a kept mark)."""
    with Registry.init(url=f"sqlite:///{tmp_path / 'r.db'}", actor="t") as reg:
        reg.register(kind="source", name="S", version="1")
        reg.register(kind="model", name="M", version="v1", inputs=["S"])
        reg.record_test("M", passed=True)  # v1 tested with S 1
        reg.register(kind="source", name="S", version="2")
        reg.register(kind="model", name="M", version="v2", inputs=["S"])
        reg.record_test("M", passed=True)  # v2 tested with S 2
        reg.register(kind="source", name="S", version="3")
        reg.promote("M", "v1")
        fast = check_status_agrees(reg)["M"]
        assert _reasons(fast) == [("S", "1", "3")]


def test_a_queued_writer_reads_the_clock_after_the_lock(tmp_path: Path) -> None:
    """'Latest run' is decided by time: a test run that waited for another writer is
    stamped after it, not when it started waiting."""
    path = tmp_path / "r.db"
    with Registry.init(url=f"sqlite:///{path}", actor="t") as reg:
        reg.register(kind="source", name="S", version="1")
        reg.register(kind="model", name="M", version="1", inputs=["S"])
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        released: list[Any] = []

        def release() -> None:
            released.append(utcnow())
            holder.execute("ROLLBACK")

        timer = threading.Timer(0.5, release)
        timer.start()
        try:
            run = reg.record_test("M", passed=True)
        finally:
            timer.join()
            holder.close()
        assert run.recorded_at >= released[0]
