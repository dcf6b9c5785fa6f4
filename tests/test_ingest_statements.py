"""The cost of one ingested OpenLineage event, and the edge table it leaves.

Ingestion runs under the registry's one write lock, so its statements per event bound the
events per second (bench/ingest.py, serve-ingest). One COMPLETE event of a known job,
with a new version of the job and of its output, took 54 statements on SQLite before
the registration path was trimmed; the ceiling below makes a regression fail here rather
than in the benchmark. ``replace_edges`` writes only the difference between a node's
edges and its new current version's inputs: those tests run on every backend.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from chainml.db import engine as dbe
from chainml.db import repository as repo
from chainml.db.models import Edge, Node, Version, VersionInput
from chainml.db.models import Event as HistoryEvent
from chainml.registry import Registry

# Statements (BEGIN and COMMIT included) for one COMPLETE event registering a new
# version of a known job and of its known output (54 before the path was trimmed; 28
# before a run's stored events were read once, for its de-duplication and its union).
CEILING = 26
NS = "prod"


def run_event(job: int, run_id: str, code: str) -> dict[str, Any]:
    """A COMPLETE event of job ``job``, which reads what job ``job - 1`` writes."""
    return {"eventType": "COMPLETE", "eventTime": "2026-11-30T02:00:00Z",
            "run": {"runId": run_id},
            "job": {"namespace": NS, "name": f"job{job}", "facets": {"sourceCodeLocation": {
                "type": "git", "url": "https://x/y", "version": code}}},
            "inputs": [{"namespace": NS, "name": f"table{job - 1}"}],
            "outputs": [{"namespace": NS, "name": f"table{job}"}],
            "producer": "https://example.com/tests",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


@contextmanager
def sqlite_statements(reg: Registry) -> Iterator[list[str]]:
    """Every statement SQLite runs for ``reg`` inside the block, whoever sends it
    (SQLAlchemy, or the plain DB-API reads of ``chainml.db.reads``)."""
    seen: list[str] = []

    def trace(dbapi_conn: sqlite3.Connection, *_: Any) -> None:
        dbapi_conn.set_trace_callback(lambda sql: seen.append(" ".join(sql.split())))

    event.listen(reg.engine, "checkout", trace)
    try:
        yield seen
    finally:
        event.remove(reg.engine, "checkout", trace)


def test_one_ingested_event_costs_few_statements(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path, actor="tester")
    try:
        reg.ingest_events([run_event(j, str(uuid.uuid4()), "1") for j in range(1, 5)])
        run_id = str(uuid.uuid4())
        with sqlite_statements(reg) as seen:
            result = reg.ingest_events([run_event(2, run_id, "2")])
        assert [(r.version, r.created_version, r.outputs) for r in result.runs] == [
            ("2", True, [f"dataset:{NS}/table2@{run_id}"])]
        assert len(seen) <= CEILING, "\n".join(seen)
        # The nodes of the run are looked up once, together; a version that keeps its
        # inputs leaves the edge table alone.
        assert sum(s.startswith("SELECT node.id") for s in seen) == 1, "\n".join(seen)
        assert not [s for s in seen if s.startswith(("DELETE", "INSERT INTO edge"))]
        # The history says what it said when each of these was looked up on its own.
        with dbe.read_session(reg.engine) as s:
            registered = s.scalars(select(HistoryEvent).where(
                HistoryEvent.action == "version.registered").order_by(HistoryEvent.id.desc())
                .limit(2)).all()
        assert [(e.node_name, e.version_label, e.details) for e in reversed(registered)] == [
            (f"job:{NS}/job2", "2", {"previous": "1", "inputs": [f"dataset:{NS}/table1"],
                                     "feedback": [], "meta": {}}),
            (f"dataset:{NS}/table2", run_id, {
                "previous": reg.node(f"dataset:{NS}/table2").versions[0].label,
                "inputs": [f"job:{NS}/job2"], "feedback": [], "meta": {}}),
        ]
    finally:
        reg.close()


def edges_of(reg: Registry, node_id: int) -> set[tuple[int, int | None, bool]]:
    with dbe.read_session(reg.engine) as s:
        return {(u, p, bool(fb)) for u, p, fb in s.execute(
            select(Edge.upstream_id, Edge.pinned_version_id, Edge.feedback)
            .where(Edge.downstream_id == node_id))}


def test_replace_edges_writes_only_the_difference(registry: Registry) -> None:
    for name in ("a", "b", "c"):
        registry.register(kind="source", name=name, version="1")
    registry.register(kind="feature", name="x", version="1")
    with dbe.read_session(registry.engine) as s:
        ids = {name: i for name, i in s.execute(select(Node.name, Node.id))}
        b1 = s.scalar(select(Version.id).where(Version.node_id == ids["b"]))
    a, b, c, x = ids["a"], ids["b"], ids["c"], ids["x"]
    steps: list[tuple[list[tuple[int, int | None, bool]], int, int]] = [
        # (the new inputs, DELETEs expected, INSERTs expected)
        ([(a, None, False), (b, None, False)], 0, 1),
        ([(a, None, False), (b, None, False)], 0, 0),  # unchanged: nothing written
        ([(a, None, False), (b, None, False), (c, None, False)], 0, 1),
        ([(b, None, False), (c, None, False)], 1, 0),
        ([(b, b1, False), (c, None, False)], 1, 1),  # a new pin: deleted, inserted
        ([(b, b1, False), (c, None, True)], 1, 1),  # regular to feedback
        ([(b, b1, False), (c, None, True), (c, None, False)], 0, 1),  # both at once
        ([], 1, 0),
        ([(a, None, True), (c, None, False)], 0, 1),
    ]
    for inputs, deletes, inserts in steps:
        sent: list[str] = []

        def note(_c: Any, _cur: Any, sql: str, *_: Any, sent: list[str] = sent) -> None:
            sent.append(sql)

        event.listen(registry.engine, "before_cursor_execute", note)
        try:
            with dbe.write_session(registry.engine) as s:
                repo.lock_writes(s)
                repo.replace_edges(s, x, inputs)
        finally:
            event.remove(registry.engine, "before_cursor_execute", note)
        assert edges_of(registry, x) == set(inputs)
        assert sum(q.startswith("DELETE FROM edge") for q in sent) == deletes, (inputs, sent)
        assert sum(q.startswith("INSERT INTO edge") for q in sent) == inserts, (inputs, sent)


def assert_edges_are_current_inputs(reg: Registry) -> None:
    """The edge table holds exactly the inputs of every live node's current version."""
    with dbe.read_session(reg.engine) as s:
        for node in s.scalars(select(Node)):
            inputs = set() if node.retired_at is not None else {
                (u, p, bool(fb)) for u, p, fb in s.execute(
                    select(VersionInput.upstream_id, VersionInput.pinned_version_id,
                           VersionInput.feedback)
                    .where(VersionInput.version_id == node.current_version_id))}
            assert edges_of(reg, node.id) == inputs, node.name


def test_edges_follow_every_registration(registry: Registry) -> None:
    steps: list[dict[str, Any]] = [
        {"kind": "source", "name": "raw", "version": "1"},
        {"kind": "source", "name": "users", "version": "1"},
        {"kind": "feature", "name": "feat", "version": "1", "inputs": ["raw"]},
        {"kind": "feature", "name": "feat", "version": "2"},  # keeps its inputs
        {"kind": "feature", "name": "feat", "version": "3", "inputs": ["raw", "users@1"]},
        {"kind": "model", "name": "ranker", "version": "1", "inputs": ["feat"]},
        {"kind": "feature", "name": "feat", "version": "4", "feedback": ["ranker"]},
        {"kind": "feature", "name": "feat", "version": "5"},  # keeps inputs and feedback
        {"kind": "feature", "name": "feat", "version": "6", "inputs": ["users"],
         "feedback": []},
    ]
    for spec in steps:
        registry.register(**spec)
        assert_edges_are_current_inputs(registry)
    registry.promote("feat", "3")
    assert_edges_are_current_inputs(registry)
    registry.promote("feat", "6")
    registry.retire("ranker")
    assert_edges_are_current_inputs(registry)
    registry.register(kind="model", name="ranker", version="2")  # revives it, inputs kept
    assert_edges_are_current_inputs(registry)
    assert [i.name for i in registry.node("ranker").inputs] == ["feat"]
    # Ingested runs of a job that exists: versions keeping what they read.
    registry.ingest_events([run_event(1, str(uuid.uuid4()), "a")])
    registry.ingest_events([run_event(1, str(uuid.uuid4()), "b")])
    assert_edges_are_current_inputs(registry)


# Statements (BEGIN and COMMIT included) for a group of COMPLETE events whose versions
# open retest marks on tested models below (the set-wise path, chainml/ingest/group.py):
# as many for 16 events as for 4, an executemany counted once (SQLite's trace shows each
# of its rows; PostgreSQL and MariaDB send them batched). One by one, each such event
# took ~40.
GROUP_CEILING = 30


def batches(seen: list[str]) -> list[str]:
    """The statements with their values blanked, a run of the same one counted once."""
    shapes = [re.sub(r"'[^']*'|\b\d+\b", "?", s) for s in seen]
    return [s for i, s in enumerate(shapes) if i == 0 or shapes[i - 1] != s]


def test_a_marked_group_costs_the_same_statements_whatever_its_size(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path, actor="tester")
    try:
        reg.ingest_events([run_event(j, str(uuid.uuid4()), "1") for j in range(1, 5)])
        for j in range(1, 5):
            reg.register(kind="model", name=f"model{j}", version="1",
                         inputs=[f"dataset:{NS}/table{j}"], needs_tests=True)
            reg.record_test(f"model{j}", passed=True)
        counts, marked = [], []
        for step, size in enumerate((4, 4, 16)):  # the first opens marks, the others
            # supersede them too
            group = [([run_event(1 + i % 4, str(uuid.uuid4()), f"{step}-{i}")], "ci")
                     for i in range(size)]
            with sqlite_statements(reg) as seen:
                results = reg.ingest_together(group)
            sent = batches(seen)
            counts.append(len(sent))
            marked.append(sum(r.marked for r in results if not isinstance(r, Exception)))
            assert len(sent) <= GROUP_CEILING, "\n".join(sent)
        assert counts[1] == counts[2], counts
        # Each event's two versions re-evaluated the models below them.
        assert marked[1] > 0 and marked[2] == 4 * marked[1], marked
        assert all(s.status == "needs_retest" for s in reg.status() if s.name.startswith("model"))
    finally:
        reg.close()
