"""The set-wise path of group commit (chainml/ingest/group.py) against its oracle: the same
requests stored one by one (``ingest_events`` each) on an embedded registry. Whatever the
group, both must leave the same registry, row for row and in the same order, and give
the same results; the groups of the shape group.py describes must take the set-wise
path, and every other one must not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import aliased

from chainml.db import engine as dbe
from chainml.db.models import (
    Edge,
    Event,
    LineageEvent,
    LineageRun,
    Node,
    ObservedInput,
    RetestMark,
    Version,
    VersionInput,
)
from chainml.ingest import group
from chainml.registry import Registry
from chainml.schemas import IngestResult
from tests.conftest import Clock
from tests.test_ingest import RAW, USERS, event

T = [f"dataset:postgres://db:5432/ml.t{i}" for i in range(6)]
J = [f"job:airflow/j{i}" for i in range(6)]
RUN = "0176a8c2-fe01-7439-87e6-56a1a1b5{:04x}".format


def _seed(reg: Registry) -> None:
    """j1 reads raw.clicks and writes t1; j2: t1 -> t2; j3: t2 and raw.users -> t3;
    j4: t3 -> t4 and t5. Then j2's current version also reads raw.users pinned and
    t3 as feedback (kept by every version a run registers)."""
    reg.ingest_events([event(RUN(1), "COMPLETE", job=J[1], inputs=(RAW,), outputs=(T[1],),
                             code="s")])
    reg.ingest_events([event(RUN(2), "COMPLETE", job=J[2], inputs=(T[1],), outputs=(T[2],),
                             code="s")])
    reg.ingest_events([event(RUN(3), "COMPLETE", job=J[3], inputs=(T[2], USERS),
                             outputs=(T[3],), code="s")])
    reg.ingest_events([event(RUN(4), "COMPLETE", job=J[4], inputs=(T[3],),
                             outputs=(T[4], T[5]), code="s")])
    users = reg.node(USERS).current_version
    reg.register(kind="feature", name=J[2], version="s2",
                 inputs=[T[1], f"{USERS}@{users}"], feedback=[T[3]])


def _eligible() -> list[tuple[list[dict[str, Any]], str]]:
    return [
        ([event(RUN(10), "COMPLETE", job=J[1], inputs=(RAW,), outputs=(T[1],), code="a")],
         "ci-a"),
        ([event(RUN(11), "COMPLETE", job=J[2], inputs=(T[1],), outputs=(T[2],), code="b",
                out_version="7")], "ci-b"),
        ([event(RUN(12), "COMPLETE", job=J[1], inputs=(RAW,), outputs=(T[1],), code="c")],
         "ci-c"),  # the same job again: its second new version in the group
        ([event(RUN(13), "COMPLETE", job=J[4], inputs=(T[3],), outputs=(T[5], T[4]),
                code="d")], "ci-d"),
        ([event(RUN(14), "COMPLETE", job=J[3], inputs=(USERS, T[2]), outputs=(T[3],),
                code="e")], "ci-e"),
    ]


def _dump(reg: Registry) -> Any:
    """Every row ingestion writes, by name and in id order (ids themselves differ)."""
    up, pin = aliased(Node), aliased(Version)
    with dbe.read_session(reg.engine) as s:
        def rows(stmt: Any) -> list[tuple[Any, ...]]:
            return [tuple(r) for r in s.execute(stmt)]

        return {
            "nodes": rows(select(Node.name, Node.kind, Version.label, Node.retired_at,
                                 Node.needs_tests)
                          .join(Version, Version.id == Node.current_version_id)
                          .order_by(Node.id)),
            "versions": rows(select(Node.name, Version.label, Version.meta,
                                    Version.created_by)
                             .join(Node, Node.id == Version.node_id).order_by(Version.id)),
            "inputs": sorted(rows(select(Node.name, Version.label, up.name, pin.label,
                                         VersionInput.feedback)
                                  .join(Version, Version.id == VersionInput.version_id)
                                  .join(Node, Node.id == Version.node_id)
                                  .join(up, up.id == VersionInput.upstream_id)
                                  .outerjoin(pin, pin.id == VersionInput.pinned_version_id))),
            "edges": sorted(rows(select(up.name, Node.name, Edge.feedback)
                                 .join(up, up.id == Edge.upstream_id)
                                 .join(Node, Node.id == Edge.downstream_id))),
            "history": rows(select(Event.action, Event.node_name, Event.version_label,
                                   Event.actor, Event.details).order_by(Event.id)),
            "received": rows(select(LineageEvent.dedup_key, LineageEvent.run_id,
                                    LineageEvent.event_type, LineageEvent.received_by,
                                    LineageEvent.body).order_by(LineageEvent.id)),
            "runs": rows(select(LineageRun.run_id, LineageRun.job, LineageRun.job_version,
                                LineageRun.outputs).order_by(LineageRun.id)),
            "marks": rows(select(RetestMark.node_id, RetestMark.cause_id,
                                 RetestMark.tested_versions, RetestMark.now_versions,
                                 RetestMark.closed_at.is_(None)).order_by(RetestMark.id)),
            "findings": rows(select(ObservedInput.node_id, ObservedInput.input_id,
                                    ObservedInput.first_run, ObservedInput.last_run,
                                    ObservedInput.times).order_by(ObservedInput.id)),
        }


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each group went the set-wise way."""
    seen: list[bool] = []
    real = group.ingest_group

    def spy(*args: Any, **kwargs: Any) -> list[IngestResult] | None:
        got = real(*args, **kwargs)
        seen.append(got is not None)
        return got

    monkeypatch.setattr(group, "ingest_group", spy)
    return seen


def _compare(registry: Registry, tmp_path: Path, clock: Clock,
             requests: list[tuple[list[dict[str, Any]], str]],
             prepare: Any = None) -> None:
    alone = Registry.init(tmp_path / "alone", actor="tester", clock=clock)
    for reg in (registry, alone):
        _seed(reg)
        if prepare is not None:
            prepare(reg)
    got = registry.ingest_together(requests)
    want: list[Any] = []
    for events, actor in requests:
        try:
            want.append(alone.as_actor(actor).ingest_events(events))
        except Exception as e:  # noqa: BLE001 - compared by type and sentence
            want.append(e)
    assert [(type(r), str(r)) if isinstance(r, Exception) else r for r in got] == \
        [(type(r), str(r)) if isinstance(r, Exception) else r for r in want]
    mine, theirs = _dump(registry), _dump(alone)
    for table in theirs:
        assert mine[table] == theirs[table], table
    alone.close()


def test_a_group_of_fresh_runs_of_known_jobs_is_registered_set_wise(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool]) -> None:
    _compare(registry, tmp_path, clock, _eligible())
    assert taken == [True]


def test_a_lone_request_takes_the_set_wise_path_too(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool]) -> None:
    _compare(registry, tmp_path, clock, _eligible()[3:4])
    assert taken == [True]


def _testable_below(reg: Registry) -> None:
    reg.register(kind="model", name="ranker", version="1", inputs=[T[4]], needs_tests=True)


def _testable_job(reg: Registry) -> None:
    reg.register(kind="feature", name=J[3], version="s3", needs_tests=True)


PLUS = [event(RUN(20), "START", job=J[1], inputs=(RAW,), outputs=(T[1],), code="z")]


@pytest.mark.parametrize(("why", "extra", "prepare"), [
    ("a node below needs tests", [], _testable_below),
    ("a job needs tests", [], _testable_job),
    ("an open mark below", [], lambda reg: (_testable_below(reg), reg.record_test(
        "ranker", passed=True), reg.register(kind="feature", name=T[4], version="x"))),
    ("a finding", [([event(RUN(21), "COMPLETE", job=J[1], inputs=(RAW, USERS),
                           outputs=(T[1],), code="f")], "ci-f")], None),
    ("a START", [(PLUS, "ci-g")], None),
    ("a run twice", [([event(RUN(10), "COMPLETE", job=J[1], inputs=(RAW,),
                             outputs=(T[1],), code="a")], "ci-h")], None),
    ("a known version", [([event(RUN(22), "COMPLETE", job=J[2], inputs=(T[1],),
                                 outputs=(T[2],), code="s")], "ci-i")], None),
    ("a new dataset", [([event(RUN(23), "COMPLETE", job=J[1], inputs=(RAW,),
                               outputs=(T[0],), code="n")], "ci-j")], None),
    ("a new job", [([event(RUN(24), "COMPLETE", job=J[5], inputs=(T[4],),
                           outputs=(T[0],), code="n")], "ci-k")], None),
    ("read and written", [([event(RUN(25), "COMPLETE", job=J[1], inputs=(RAW, T[1]),
                                  outputs=(T[1],), code="r")], "ci-l")], None),
    ("two events", [([event(RUN(26), "START", job=J[2], inputs=(T[1],), outputs=(T[2],)),
                      event(RUN(26), "COMPLETE", job=J[2], code="t")], "ci-m")], None),
])
def test_any_other_group_is_stored_one_by_one(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool],
        why: str, extra: list[tuple[list[dict[str, Any]], str]], prepare: Any) -> None:
    _compare(registry, tmp_path, clock, _eligible() + extra, prepare)
    assert taken and not taken[0], why
