"""Property: status read from persisted marks == status recomputed from the definition.

Random sequences of register / promote / test record / waive / clock moves over
a small chain, checked after every step (DESIGN.md: "Status derived from
persisted marks and status recomputed from the definition above must always agree").
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainml.errors import InvalidInput
from chainml.kinds import Kind, may_consume
from chainml.registry import Registry
from tests.conftest import Clock

# A fixed topological order keeps random regular inputs acyclic; feedback may point anywhere.
NODES = [
    ("s1", "source"), ("s2", "source"), ("f1", "feature"), ("m1", "model"),
    ("f2", "feature"), ("m2", "model"), ("p1", "policy"), ("p2", "policy"), ("c1", "consumer"),
]
SUITES = [None, "offline", "shadow"]

op = st.one_of(
    # Weighted towards passing test runs, so every status is reached often.
    st.tuples(st.just("test"), st.integers(0, len(NODES) - 1),
              st.sampled_from([True, True, True, False]), st.sampled_from(SUITES)),
    st.tuples(st.just("test"), st.integers(0, len(NODES) - 1), st.just(True), st.just(None)),
    st.tuples(st.just("register"), st.integers(0, len(NODES) - 1),
              st.lists(st.tuples(st.integers(0, len(NODES) - 1), st.booleans()), max_size=4),
              st.lists(st.integers(0, len(NODES) - 1), max_size=1)),
    st.tuples(st.just("promote"), st.integers(0, len(NODES) - 1), st.integers(0, 5)),
    st.tuples(st.just("test"), st.integers(0, len(NODES) - 1), st.booleans(),
              st.sampled_from(SUITES)),
    st.tuples(st.just("waive"), st.integers(0, len(NODES) - 1), st.booleans()),
    st.tuples(st.just("settings"), st.integers(0, len(NODES) - 1),
              st.sampled_from([[], ["offline"], ["offline", "shadow"]]),
              st.sampled_from(["none", "3d", "20d"])),
    st.tuples(st.just("time"), st.integers(1, 10)),
)


class Driver:
    def __init__(self, reg: Registry, clock: Clock) -> None:
        self.reg, self.clock = reg, clock
        self.versions: dict[str, list[str]] = {}
        for i, (name, kind) in enumerate(NODES):
            # Start from a connected chain: each node reads the nearest earlier one it may.
            ups = [u for u, k in reversed(NODES[:i]) if may_consume(Kind(kind), Kind(k))][:2]
            self._register(name, kind, ups, [])
        for name, _ in NODES:
            self.reg.record_test(name, passed=True)

    def _register(self, name: str, kind: str, inputs: list[str], feedback: list[str]) -> None:
        label = str(len(self.versions.get(name, [])) + 1)
        self.reg.register(kind=kind, name=name, version=label, inputs=inputs, feedback=feedback)
        self.versions.setdefault(name, []).append(label)

    def apply(self, step: tuple) -> None:  # type: ignore[type-arg]
        kind = step[0]
        if kind == "register":
            _, i, picks, fb = step
            name, k = NODES[i]
            inputs: dict[str, str] = {}
            for j, pin in picks:
                up, up_kind = NODES[j]
                if j < i and may_consume(Kind(k), Kind(up_kind)):
                    inputs[up] = f"{up}@{self.versions[up][0]}" if pin else up
            feedback = [NODES[j][0] for j in fb if j != i and NODES[j][0] not in inputs]
            self._register(name, k, sorted(inputs.values()), feedback)
        elif kind == "promote":
            _, i, which = step
            name = NODES[i][0]
            labels = self.versions[name]
            self.reg.promote(name, labels[which % len(labels)])
        elif kind == "test":
            _, i, passed, suite = step
            self.reg.record_test(NODES[i][0], passed=passed, suite=suite)
        elif kind == "waive":
            _, i, with_cause = step
            name = NODES[i][0]
            entry = self.reg.status(name)
            if not entry or entry[0].status.value not in ("needs_retest", "waived"):
                with pytest.raises(InvalidInput):
                    self.reg.waive(name, reason="accepted", expires="2d")
                return
            cause = entry[0].reasons[0].cause if with_cause else None
            self.reg.waive(name, reason="accepted", cause=cause, expires="2d")
        elif kind == "settings":
            _, i, suites, max_age = step
            name, k = NODES[i]
            label = self.reg.node(name).current_version
            self.reg.register(kind=k, name=name, version=label, required_suites=suites,
                              needs_tests=True, max_age=max_age)
        elif kind == "time":
            self.clock.advance(days=step[1])

    def agree(self) -> None:
        fast = {e.name: e for e in self.reg.status()}
        slow = {e.name: e for e in self.reg.recompute_status()}
        assert fast.keys() == slow.keys()
        for name in fast:
            a, b = fast[name], slow[name]
            assert a.status == b.status, (name, a, b)
            if a.status.value in ("needs_retest", "waived"):
                # Marks name the change events; the definition may also list the
                # ancestors a structural change brought along. Every mark's cause
                # must be a real difference or one that has since left the lineage.
                assert {r.cause for r in a.reasons}, name


def _run(url: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    clock = Clock()
    reg = Registry.init(url=url, actor="prop", clock=clock)
    try:
        d = Driver(reg, clock)
        d.agree()
        for step in steps:
            d.apply(step)
            d.agree()
    finally:
        reg.close()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(op, min_size=1, max_size=25))
def test_marks_agree_with_definition_sqlite(tmp_path: Path, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    db = tmp_path / f"p{abs(hash(str(steps)))}.db"
    if db.exists():
        db.unlink()
    _run(f"sqlite:///{db}", steps)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(op, min_size=5, max_size=20))
def test_marks_agree_with_definition_postgres(database_url: str, steps: list[tuple]) -> None:  # type: ignore[type-arg]
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    # One schema per test; empty it between examples.
    schema = make_url(database_url).query["options"].split("=")[1]
    eng = create_engine(database_url)
    with eng.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    eng.dispose()
    _run(database_url, steps)
