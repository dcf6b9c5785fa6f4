"""Unit tests of the reference model alone (no chainml import): hand-computed expectations."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.reference_model import Model, Refused, Verdict

DAY = 86400.0


def fs(*items: str) -> frozenset[str]:
    return frozenset(items)


Reason = tuple[str, frozenset[str], frozenset[str]]


def reason(cause: str, tested: set[str], now: set[str]) -> Reason:
    return (cause, frozenset(tested), frozenset(now))


class Chain:
    """The model driven with a clock that ticks one second per call, and `x@v` input strings."""

    def __init__(self) -> None:
        self.m = Model()
        self.t = 1000.0

    def tick(self) -> float:
        self.t += 1
        return self.t

    def reg(self, kind: str, name: str, version: str, *inputs: str, feedback: tuple[str, ...] = (),
            **settings: Any) -> None:
        pairs = [(i.split("@")[0], i.split("@")[1] if "@" in i else None) for i in inputs]
        self.m.register(kind, name, version, inputs=pairs, feedback=list(feedback),
                        now=self.tick(), **settings)

    def promote(self, name: str, version: str) -> None:
        self.m.promote(name, version, now=self.tick())

    def record(self, name: str, passed: bool = True, **kw: Any) -> None:
        kw.setdefault("now", self.tick())
        self.m.record(name, passed=passed, **kw)

    def waive(self, name: str, **kw: Any) -> None:
        kw.setdefault("now", self.tick())
        self.m.waive(name, **kw)

    def status(self, name: str, now: float | None = None) -> str | None:
        v = self.m.status(name, now=self.t if now is None else now)
        return None if v is None else v.status

    def verdict(self, name: str) -> Verdict | None:
        return self.m.status(name, now=self.t)

    def reasons(self, name: str) -> frozenset[Reason]:
        v = self.verdict(name)
        assert v is not None
        return v.reasons


@pytest.fixture
def c() -> Chain:
    return Chain()


def long_chain(c: Chain) -> None:
    """s → f → m1 → m2 → p1 → app, every testable node passed."""
    c.reg("source", "s", "1")
    c.reg("feature", "f", "1", "s")
    c.reg("model", "m1", "1", "f")
    c.reg("model", "m2", "1", "m1")
    c.reg("policy", "p1", "1", "m2")
    c.reg("consumer", "app", "1", "p1")
    for n in ("m1", "m2", "p1"):
        c.record(n)


# ---------------------------------------------------------------- chains, retest, rollback
def test_root_change_marks_every_testable_node_below(c: Chain) -> None:
    long_chain(c)
    assert c.m.statuses(now=c.t) == {n: Verdict("verified") for n in ("m1", "m2", "p1")}
    assert c.m.impact("s") == fs("f", "m1", "m2", "p1", "app")
    c.reg("source", "s", "2")
    for n in ("m1", "m2", "p1"):
        assert c.verdict(n) == Verdict("needs_retest", frozenset({reason("s", {"1"}, {"2"})}))
    assert c.status("f") is None and c.status("app") is None
    assert c.m.check(now=c.t) == (False, fs("m1", "m2", "p1"))


def test_retest_closes_own_reasons_only(c: Chain) -> None:
    long_chain(c)
    c.reg("source", "s", "2")
    c.record("m1")
    assert c.status("m1") == "verified"
    assert c.reasons("m2") == {reason("s", {"1"}, {"2"})}
    assert c.reasons("p1") == {reason("s", {"1"}, {"2"})}
    c.reg("model", "m1", "2", "f")  # m2 and p1 now also see m1 change
    assert c.reasons("m2") == {reason("s", {"1"}, {"2"}), reason("m1", {"1"}, {"2"})}
    assert c.status("m1") == "untested"


def test_rollback_to_tested_version_verifies_without_retest(c: Chain) -> None:
    long_chain(c)
    c.reg("source", "s", "2")
    c.promote("s", "1")
    assert {v.status for v in c.m.statuses(now=c.t).values()} == {"verified"}
    assert c.m.lineage("p1") == {("m2", "1"), ("m1", "1"), ("f", "1"), ("s", "1")}


def test_reregister_same_content_is_noop_and_other_content_refused(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("source", "s", "2")
    c.reg("model", "m", "1", "s")
    c.promote("s", "1")
    c.reg("source", "s", "2")  # identical: current stays 1
    assert c.m.lineage("m") == {("s", "1")}
    c.reg("model", "m", "1", "s", max_age_s=10)  # settings still apply
    c.record("m")
    assert c.status("m", now=c.t + 100) == "stale"
    with pytest.raises(Refused):
        c.reg("model", "m", "1", "s@1")
    with pytest.raises(Refused):
        c.reg("model", "m", "1", "s", feedback=("s",))  # also given twice


# ---------------------------------------------------------------- pins
def test_pinned_input_does_not_cross_and_moving_pin_is_untested(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("source", "s", "2")
    c.reg("model", "m", "1", "s@1")
    c.reg("policy", "p", "1", "m")
    c.record("m")
    c.record("p")
    c.reg("source", "s", "3")
    assert c.status("m") == "verified" and c.status("p") == "verified"
    assert c.m.impact("s") == frozenset()  # not even the first hop
    assert c.m.lineage("p") == {("m", "1"), ("s", "1")}
    c.reg("model", "m", "2", "s@3")
    assert c.verdict("m") == Verdict("untested")
    assert c.reasons("p") == {reason("m", {"1"}, {"2"}), reason("s", {"1"}, {"3"})}
    with pytest.raises(Refused):
        c.reg("model", "m", "3", "s@9")


def test_same_ancestor_pinned_and_live_contributes_both_pairs(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("feature", "f", "1", "s")
    c.reg("source", "s", "2")
    c.reg("model", "m", "1", "s@1", "f")
    assert c.m.lineage("m") == {("s", "1"), ("f", "1"), ("s", "2")}
    assert c.m.impact("s") == fs("f", "m")  # through f, not the pin
    c.record("m")
    c.reg("source", "s", "3")
    assert c.reasons("m") == {reason("s", {"1", "2"}, {"1", "3"})}


# ---------------------------------------------------------------- feedback and cycles
def test_feedback_never_enters_lineage_or_impact_and_may_close_a_cycle(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    c.reg("source", "s", "2", feedback=("m",))  # s ← m ← s closed by feedback
    assert c.m.lineage("m") == {("s", "2")}
    assert c.m.impact("m") == frozenset()
    assert c.m.impact("s") == fs("m")
    c.record("m")
    c.reg("model", "m", "2", "s")
    c.record("m")
    c.reg("source", "s", "3", feedback=("m",))
    assert c.reasons("m") == {reason("s", {"2"}, {"3"})}
    with pytest.raises(Refused):
        c.reg("source", "s", "4", feedback=("s",))
    c.reg("feature", "g", "1", "m")
    with pytest.raises(Refused):  # a regular cycle m → g → m is refused
        c.reg("model", "m", "3", "g")


def test_promote_into_a_cycle_refused(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("feature", "g", "1", "s")
    c.reg("model", "m", "1", "g")
    c.reg("model", "m", "2", "s")
    c.reg("feature", "g", "2", "m")
    with pytest.raises(Refused):
        c.promote("m", "1")  # g → m → g
    c.promote("m", "2")  # already current: no-op
    with pytest.raises(Refused):
        c.promote("m", "9")


def test_register_refusals(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    before = copy.deepcopy((c.m.nodes, c.m.runs))
    attempts: list[Callable[[], None]] = [
        lambda: c.reg("feature", "s", "2"),  # kind differs
        lambda: c.reg("model", "x", "1", "nope"),  # unknown input
        lambda: c.reg("model", "x", "1", "s", "s@1"),  # given twice
        lambda: c.reg("model", "m", "2", "m"),  # self input
        lambda: c.reg("policy", "p", "1", "s"),  # policy may not read a source
        lambda: c.reg("source", "s2", "1", "m"),  # sources read nothing
        lambda: c.reg("model", "M", "1"),  # confusable name
        lambda: c.reg("model", "x", "a b"),  # bad label
        lambda: c.reg("fancy", "x", "1"),  # unknown kind
    ]
    for bad in attempts:
        with pytest.raises(Refused):
            bad()
    assert (c.m.nodes, c.m.runs) == before
    c.reg("consumer", "app", "1", "s", "m")  # consumers read anything
    c.reg("source", "s3", "1", feedback=("app",))  # feedback has no kind rule


# ---------------------------------------------------------------- suites, failed, stale
def test_required_suites_latest_run_of_each_decides(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s", required_suites=["a", "b"])
    assert c.verdict("m") == Verdict("untested", missing_suites=fs("a", "b"))
    c.record("m", suite="other")
    assert c.verdict("m") == Verdict("untested", missing_suites=fs("a", "b"))
    c.record("m", suite="a")
    assert c.verdict("m") == Verdict("untested", missing_suites=fs("b"))
    c.record("m", suite="b")
    assert c.status("m") == "verified"
    c.record("m", passed=False, suite="a")
    assert c.status("m") == "failed"
    c.record("m", suite="a")
    assert c.status("m") == "verified"
    c.record("m", passed=False, suite="other")  # not required: ignored
    assert c.status("m") == "verified"
    c.m.settings("m", required_suites=[], now=c.tick())  # now the single latest run decides
    assert c.status("m") == "failed"


def test_failed_and_latest_run_of_any_suite_without_requirements(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    assert c.verdict("m") == Verdict("untested")
    c.record("m", passed=False, suite="x")
    assert c.verdict("m") == Verdict("failed")
    c.record("m", suite="y")
    assert c.status("m") == "verified"
    c.m.settings("m", required_suites=["x", "z"], now=c.tick())
    assert c.status("m") == "failed"  # failed is judged before missing suites


def test_stale_with_max_age(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s", max_age_s=100)
    created = c.t
    c.record("m")
    assert c.status("m", now=created + 100) == "verified"
    assert c.status("m", now=created + 101) == "stale"
    assert c.m.check(now=created + 101) == (True, frozenset())
    assert c.m.check(now=created + 101, strict=True) == (False, fs("m"))
    c.m.settings("m", max_age_s=0, now=c.tick())
    assert c.status("m", now=created + 10**6) == "verified"
    c.m.settings("m", needs_tests=False, now=c.tick())
    assert c.status("m") is None and c.m.statuses(now=c.t) == {}


# ---------------------------------------------------------------- waivers
def two_causes(c: Chain) -> None:
    """m reads s and t, tested, then both change."""
    c.reg("source", "s", "1")
    c.reg("source", "t", "1")
    c.reg("model", "m", "1", "s", "t")
    c.record("m")
    c.reg("source", "s", "2")
    c.reg("source", "t", "2")


def test_waiver_without_cause_covers_every_open_reason(c: Chain) -> None:
    two_causes(c)
    c.waive("m")
    assert c.verdict("m") == Verdict("waived", frozenset(
        {reason("s", {"1"}, {"2"}), reason("t", {"1"}, {"2"})}))
    assert c.m.check(now=c.t) == (True, frozenset())


def test_waiver_with_cause_covers_that_ancestor_only(c: Chain) -> None:
    two_causes(c)
    c.waive("m", cause="s")
    assert c.status("m") == "needs_retest"
    with pytest.raises(Refused):
        c.waive("m", cause="m")  # not an open cause
    with pytest.raises(Refused):
        c.waive("m", cause="ghost")
    c.waive("m", cause="t")
    assert c.status("m") == "waived"


def test_waive_refusals(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    c.reg("feature", "f", "1", "s")
    with pytest.raises(Refused):
        c.waive("m")  # untested
    c.record("m", passed=False)
    with pytest.raises(Refused):
        c.waive("m")  # failed
    c.record("m")
    with pytest.raises(Refused):
        c.waive("m")  # verified
    c.reg("source", "s", "2")
    for kw in ({"expires_s": 0}, {"expires_s": 90 * DAY + 1}):
        with pytest.raises(Refused):
            c.waive("m", **kw)
    for name in ("f", "nope"):
        with pytest.raises(Refused):
            c.waive(name)
    c.waive("m", expires_s=90 * DAY)
    assert c.status("m") == "waived"


def test_waiver_reopened_by_newer_change(c: Chain) -> None:
    two_causes(c)
    c.waive("m")
    c.reg("source", "s", "3")
    assert c.verdict("m") == Verdict("needs_retest", frozenset(
        {reason("s", {"1"}, {"3"}), reason("t", {"1"}, {"2"})}))


def test_waiver_reopened_by_rollback_to_something_else(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    c.record("m")
    c.reg("source", "s", "2")
    c.reg("source", "s", "3")
    c.waive("m")
    c.promote("s", "2")
    assert c.reasons("m") == {reason("s", {"1"}, {"2"})} and c.status("m") == "needs_retest"
    c.promote("s", "3")
    assert c.status("m") == "waived"  # the same facts again, same runs
    c.promote("s", "1")
    assert c.status("m") == "verified"


def test_waiver_ended_by_a_newer_run(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s", required_suites=["a", "b"])
    c.record("m", suite="a")
    c.record("m", suite="b")
    c.reg("source", "s", "2")
    c.waive("m")
    assert c.status("m") == "waived"
    c.record("m", suite="b")  # suite a still says s {1} → {2}, but the runs changed
    assert c.verdict("m") == Verdict("needs_retest", frozenset({reason("s", {"1"}, {"2"})}))


def test_waiver_not_ended_by_a_run_of_another_version(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "0", "s")
    c.reg("model", "m", "1", "s")
    c.record("m")
    c.reg("source", "s", "2")
    c.waive("m")
    c.record("m", version="0")
    assert c.status("m") == "waived"
    with pytest.raises(Refused):
        c.record("m", version="9")


def test_waiver_expiry(c: Chain) -> None:
    two_causes(c)
    c.waive("m", expires_s=100, now=5000.0)
    assert c.status("m", now=5099.0) == "waived"
    assert c.status("m", now=5100.0) == "needs_retest"


# ---------------------------------------------------------------- retire and revive
def test_retire_and_revive(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("feature", "f", "1", "s")
    c.reg("model", "m", "1", "f")
    c.record("m")
    with pytest.raises(Refused):
        c.m.retire("s", now=c.tick())  # f reads it
    c.reg("feature", "f", "2")
    c.m.retire("s", now=c.tick())
    c.m.retire("s", now=c.tick())  # already retired: no-op
    assert c.reasons("m") == {reason("f", {"1"}, {"2"}), reason("s", {"1"}, set())}
    assert c.status("s") is None
    with pytest.raises(Refused):
        c.m.impact("s")
    with pytest.raises(Refused):
        c.promote("f", "1")  # reads retired s
    with pytest.raises(Refused):
        c.reg("model", "m2", "1", "s")
    with pytest.raises(Refused):
        c.record("s")
    c.reg("source", "s", "1")  # revives s at 1
    c.promote("f", "1")
    assert c.status("m") == "verified"
    c.m.retire("m", now=c.tick())
    assert c.status("m") is None and "m" not in c.m.statuses(now=c.t)
    assert c.m.impact("f") == frozenset()


def test_revive_makes_the_registered_existing_version_current(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("source", "s", "2")
    c.m.retire("s", now=c.tick())
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    assert c.m.lineage("m") == {("s", "1")}


# ---------------------------------------------------------------- commit order
def test_commit_order_not_the_clock(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s")
    c.record("m", passed=True, now=2000.0)
    c.record("m", passed=False, now=1500.0)  # an earlier clock, but recorded later
    assert c.status("m") == "failed"
    c.record("m", passed=True, now=10.0)
    assert c.status("m") == "verified"


# ---------------------------------------------------------------- apply
def node(kind: str, name: str, version: str, *inputs: str, **kw: Any) -> dict[str, Any]:
    pairs = [(i.split("@")[0], i.split("@")[1] if "@" in i else None) for i in inputs]
    return {"kind": kind, "name": name, "version": version, "inputs": pairs,
            "feedback": kw.get("feedback", []), "needs_tests": kw.get("needs_tests"),
            "required_suites": kw.get("required_suites"), "max_age_s": kw.get("max_age_s")}


def test_apply_orders_declared_inputs_first_and_pins_declared_labels(c: Chain) -> None:
    c.m.apply([node("model", "m", "1", "s@1"), node("source", "s", "1")], prune=False, now=1.0)
    assert c.m.lineage("m") == {("s", "1")}


def test_apply_is_atomic_and_sets_all_settings(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s", required_suites=["a"], max_age_s=5)
    with pytest.raises(Refused):
        c.m.apply([node("source", "s", "2"), node("policy", "p", "1", "s")], prune=False, now=1.0)
    assert set(c.m.nodes) == {"s", "m"} and c.m.nodes["s"].current == "1"
    c.m.apply([node("source", "s", "1"), node("model", "m", "1", "s")], prune=False, now=2.0)
    c.record("m")
    assert c.status("m", now=10**9) == "verified"  # suites [] and no max age now


def test_apply_prune(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("source", "old", "1")
    c.reg("model", "m", "1", "s", "old")
    with pytest.raises(Refused):  # m is kept and still reads old
        c.m.apply([node("source", "s", "1"), node("model", "m", "1", "s", "old")],
                  prune=True, now=1.0)
    c.m.apply([node("source", "s", "1"), node("model", "m", "2", "s")], prune=True, now=2.0)
    assert c.m.nodes["old"].retired and not c.m.nodes["m"].retired
    c.m.apply([node("source", "s", "1")], prune=True, now=3.0)  # m retired with its input
    assert c.m.statuses(now=4.0) == {}


def test_apply_cycle_refused(c: Chain) -> None:
    with pytest.raises(Refused):
        c.m.apply([node("model", "a", "1", "b"), node("model", "b", "1", "a")],
                  prune=False, now=1.0)
    assert c.m.nodes == {}


# ---------------------------------------------------------------- the five reproductions
def test_repro_1_waiver_then_rollback_of_pinned_and_live_ancestor(c: Chain) -> None:
    c.reg("source", "s2", "1")
    c.reg("feature", "f3", "1", "s2")
    c.reg("source", "s2", "2")
    c.reg("model", "m7", "1", "s2@1", "f3")
    c.record("m7")
    c.reg("source", "s2", "3")
    c.waive("m7")
    assert c.status("m7") == "waived"
    c.promote("s2", "1")
    assert c.verdict("m7") == Verdict("needs_retest", frozenset({reason("s2", {"1", "2"}, {"1"})}))


def test_repro_2_pin_to_tested_version_is_not_a_reason(c: Chain) -> None:
    c.reg("source", "s1", "1")
    c.reg("model", "m2", "1", "s1")
    c.reg("policy", "p3", "1", "m2")
    c.record("p3")
    c.reg("source", "s1", "2")
    c.reg("model", "m2", "2", "s1@1")
    assert c.verdict("p3") == Verdict("needs_retest", frozenset({reason("m2", {"1"}, {"2"})}))


def test_repro_3_waive_cause_with_equal_pairs_refused(c: Chain) -> None:
    c.reg("source", "s0", "1")
    c.reg("feature", "f1", "1", "s0")
    c.reg("source", "s0", "2")
    c.reg("policy", "p3", "1", "f1")
    c.record("p3")
    assert c.m.runs[-1].snapshot == {("f1", "1"), ("s0", "2")}
    c.promote("s0", "1")
    c.reg("feature", "f1", "2", "s0@2")
    assert c.verdict("p3") == Verdict("needs_retest", frozenset({reason("f1", {"1"}, {"2"})}))
    with pytest.raises(Refused):
        c.waive("p3", cause="s0")


def test_repro_4_waiver_covers_exact_now_pairs_only(c: Chain) -> None:
    c.reg("feature", "f2", "1")
    c.reg("model", "m3", "1", "f2")
    c.reg("model", "m4", "1", "m3")
    c.record("m4")
    c.reg("feature", "f2", "2")
    c.reg("model", "m3", "2")
    assert c.reasons("m4") == {reason("m3", {"1"}, {"2"}), reason("f2", {"1"}, set())}
    c.waive("m4")
    c.promote("m3", "1")
    assert c.verdict("m4") == Verdict("needs_retest", frozenset({reason("f2", {"1"}, {"2"})}))


def test_repro_5_ancestor_entering_the_lineage(c: Chain) -> None:
    c.reg("feature", "f0", "1")
    c.reg("policy", "p1", "1", "f0")
    c.record("p1")
    c.reg("source", "s2", "1")
    c.reg("feature", "f0", "2", "s2")
    c.reg("source", "s2", "2")
    assert c.verdict("p1") == Verdict("needs_retest", frozenset(
        {reason("f0", {"1"}, {"2"}), reason("s2", set(), {"2"})}))
