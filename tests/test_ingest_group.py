"""The set-wise path of group commit (chainml/ingest/group.py) against its oracle: the same
requests stored one by one (``ingest_events`` each) on an embedded registry. Whatever the
group, both must leave the same registry, row for row and in the same order, and give
the same results; the groups of the shape group.py describes must take the set-wise
path, and every other one must not."""

from __future__ import annotations

import random
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
    Notification,
    ObservedInput,
    RetestMark,
    Version,
    VersionInput,
)
from chainml.ingest import group
from chainml.registry import Registry
from chainml.rules import outbox
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

        names = dict(rows(select(Node.id, Node.name)))
        labels = {v: (names[n], label) for v, n, label in rows(
            select(Version.id, Version.node_id, Version.label))}
        told = {i: (a, n, v) for i, a, n, v in rows(
            select(Event.id, Event.action, Event.node_name, Event.version_label))}
        told[None] = None
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
            "marks": [(names[n], names[c], [labels[v] for v in old], [labels[v] for v in now],
                       path, told[e], closed is None, why)
                      # (not the times: a group is one transaction, at one time)
                      for n, c, old, now, path, e, closed, why in rows(select(
                          RetestMark.node_id, RetestMark.cause_id, RetestMark.tested_versions,
                          RetestMark.now_versions, RetestMark.path, RetestMark.event_id,
                          RetestMark.closed_at, RetestMark.close_reason)
                          .order_by(RetestMark.id))],
            "notifications": rows(select(Notification.event, Notification.payload)
                                  .order_by(Notification.id)),
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
             prepare: Any = None, *, together: bool = False) -> Any:
    """Store ``requests`` together in ``registry`` and one by one in another; assert
    both give the same results and rows; the rows. ``together``: one by one in one
    transaction, as group commit does when the group is of another shape, so that the
    notifications (merged per transaction) are compared too."""
    alone = Registry.init(tmp_path / "alone", actor="tester", clock=clock)
    for reg in (registry, alone):
        _seed(reg)
        if prepare is not None:
            prepare(reg)
    got = registry.ingest_together(requests)
    want: list[Any] = []
    if together:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(group, "ingest_group", lambda *args, **kwargs: None)
            want = alone.ingest_together(requests)
    for events, actor in requests if not together else ():
        try:
            want.append(alone.as_actor(actor).ingest_events(events))
        except Exception as e:  # noqa: BLE001 - compared by type and sentence
            want.append(e)
    assert [(type(r), str(r)) if isinstance(r, Exception) else r for r in got] == \
        [(type(r), str(r)) if isinstance(r, Exception) else r for r in want]
    mine, theirs = _dump(registry), _dump(alone)
    for table in theirs:
        if together or table != "notifications":
            assert mine[table] == theirs[table], table
    alone.close()
    return mine


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


def _models(reg: Registry) -> None:
    """Tested nodes below the chain, each a way a move reaches a mark:

    * ranker reads t4: below every job of the seed, through the whole chain;
    * scorer reads t1 pinned at its current version and t2 live, so that a new t1 is one
      version of t1 in its lineage and the pinned one another; blender reads scorer;
    * auditor reads t5 and t3, requires suites smoke and full, and failed full;
    * fresh reads t4 and was never tested (no deciding run: no mark);
    * ranker's test is older than a version of t4 registered by hand: an open mark
      that the group's moves of t4 supersede.
    """
    reg.register(kind="model", name="ranker", version="1", inputs=[T[4]], needs_tests=True)
    t1 = reg.node(T[1]).current_version
    reg.register(kind="model", name="scorer", version="1", inputs=[f"{T[1]}@{t1}", T[2]],
                 needs_tests=True)
    reg.register(kind="policy", name="blender", version="1", inputs=["scorer"],
                 needs_tests=True)
    reg.register(kind="model", name="auditor", version="1", inputs=[T[5], T[3]],
                 needs_tests=True, required_suites=["smoke", "full"])
    reg.register(kind="model", name="fresh", version="1", inputs=[T[4]], needs_tests=True)
    for name in ("ranker", "scorer", "blender"):
        reg.record_test(name, passed=True)
    reg.record_test("auditor", suite="smoke", passed=True)
    reg.record_test("auditor", suite="full", passed=False)
    reg.register(kind="feature", name=T[4], version="x")


def _models_and_hooks(reg: Registry) -> None:
    _models(reg)
    reg.hook_add("http://127.0.0.1:9/hook", events=["mark.opened", "mark.closed",
                                                    "check.changed"])


def test_a_group_above_an_untested_node_is_registered_set_wise(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool]) -> None:
    rows = _compare(registry, tmp_path, clock, _eligible(), _testable_below)
    assert taken == [True]
    assert rows["marks"] == []  # no deciding run, no cause


@pytest.mark.parametrize(("why", "prepare", "together"), [
    ("tested nodes below, pinned, with suites, an open mark", _models, False),
    ("the same, with hooks told of every mark", _models_and_hooks, True),
])
def test_a_group_that_opens_and_supersedes_marks_is_registered_set_wise(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool],
        why: str, prepare: Any, together: bool) -> None:
    rows = _compare(registry, tmp_path, clock, _eligible(), prepare, together=together)
    assert taken == [True], why
    # Not vacuous: the group opened marks, and superseded some of its own.
    made = [m for m in rows["marks"] if m[5] and m[5][0] == "version.registered"
            and m[5][2] in "abcde"]
    assert any(m[6] for m in made) and any(m[7] == "superseded" for m in made)


def test_a_full_notification_counts_the_marks_it_leaves_out(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "MAX_LISTED", 3)
    rows = _compare(registry, tmp_path, clock, _eligible(), _models_and_hooks, together=True)
    assert taken == [True]
    told = {name: payload for name, payload in rows["notifications"]}
    assert told["mark.opened"]["truncated"] and len(told["mark.opened"]["marks"]) == 3
    assert told["mark.closed"]["truncated"] and len(told["mark.closed"]["marks"]) == 3


@pytest.mark.parametrize(("why", "extra", "prepare"), [
    ("a job needs tests", [], _testable_job),
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


# ---- random chains below the seed and random groups: set-wise against one by one

SHAPES = {1: ((RAW,), (T[1],)), 2: ((T[1],), (T[2],)), 3: ((T[2], USERS), (T[3],)),
          4: ((T[3],), (T[4], T[5]))}  # each job's reads and writes, as the seed declared


def _random_below(seed: int) -> Any:
    """Tested nodes below the seed: random inputs (some pinned), suites, runs, and
    versions of the datasets registered by hand after some of the runs; the same for
    every registry it prepares."""
    def prepare(reg: Registry) -> None:
        rnd = random.Random(seed)
        made: list[str] = []
        for i in range(rnd.randint(2, 7)):
            ups = rnd.sample([*T[1:6], *made], k=min(len(made) + 5, rnd.randint(1, 3)))
            ins = [f"{u}@{reg.node(u).current_version}" if rnd.random() < 0.3 else u
                   for u in ups]
            name = f"m{i}"
            suites = rnd.choice([[], ["a"], ["a", "b"]])
            reg.register(kind="model", name=name, version="1", inputs=ins,
                         needs_tests=rnd.random() < 0.85, required_suites=suites)
            made.append(name)
        for name in made:
            for suite in rnd.choice([[], ["a"], ["a", "b"], ["b"]]):
                reg.record_test(name, suite=suite, passed=rnd.random() < 0.8)
            if rnd.random() < 0.3:
                reg.record_test(name, passed=rnd.random() < 0.8)
        for k in rnd.sample(range(1, 6), k=rnd.randint(0, 2)):
            reg.register(kind="feature", name=T[k], version=f"hand{k}")
        if rnd.random() < 0.5:
            reg.hook_add("http://127.0.0.1:9/hook", events=["mark.opened", "mark.closed"])
    return prepare


def _random_group(rnd: random.Random) -> list[tuple[list[dict[str, Any]], str]]:
    out = []
    for i in range(rnd.randint(1, 8)):
        j = rnd.randint(1, 4)
        reads, writes = SHAPES[j]
        out.append(([event(RUN(100 + i), "COMPLETE", job=J[j], inputs=reads, outputs=writes,
                           code=f"r{i}", out_version=rnd.choice([None, f"v{i}"]))],
                    f"ci-{i}"))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_random_groups_over_random_tested_nodes_match_one_by_one(
        registry: Registry, tmp_path: Path, clock: Clock, taken: list[bool],
        seed: int) -> None:
    rnd = random.Random(seed)
    prepare, requests = _random_below(seed), _random_group(rnd)
    _compare(registry, tmp_path, clock, requests, prepare, together=rnd.random() < 0.5)
    assert taken[0], seed
