"""Unit tests of the reference model alone (no chainml import): hand-computed expectations."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.reference_model import Blocked, EnvVerdict, Model, Refused, Verdict

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


# ---------------------------------------------------------------- environments
# DESIGN.md "Environments, deployments and training–serving skew", by hand.
def env(c: Chain, name: str, after: str | None = None) -> None:
    c.m.env_create(name, after=after, now=c.tick())


def deploy(c: Chain, e: str, *specs: str, force: bool = False, check: bool = False
           ) -> dict[str, EnvVerdict]:
    pairs = [(x.split("@")[0], x.split("@")[1] if "@" in x else None) for x in specs]
    return c.m.deploy(e, pairs, force=force, reason="test" if force else None, check=check,
                      now=c.tick())


def es(c: Chain, e: str, name: str, now: float | None = None) -> EnvVerdict | None:
    return c.m.env_status(e, name, now=c.t if now is None else now)


def ranker_chain(c: Chain) -> None:
    """s → F → ranker, F at 4, ranker tested with F 4; prod created, nothing deployed."""
    c.reg("source", "s", "1")
    c.reg("feature", "F", "4", "s")
    c.reg("model", "ranker", "1", "F")
    c.record("ranker")
    env(c, "prod")


def test_env_design_example_feature_redeployed_alone_is_skew(c: Chain) -> None:
    ranker_chain(c)
    assert deploy(c, "prod", "F", "ranker") == {"ranker": EnvVerdict("verified")}
    assert c.m.env_statuses("prod", now=c.t) == {"ranker": EnvVerdict("verified")}
    assert c.m.served("prod") == {"s": "1", "F": "4", "ranker": "1"}
    c.reg("feature", "F", "5", "s")  # the registry moves on; prod still serves F 4
    assert es(c, "prod", "ranker") == EnvVerdict("verified")
    assert c.status("ranker") == "needs_retest"
    with pytest.raises(Blocked) as refused:  # redeploying F alone would skew ranker
        deploy(c, "prod", "F")
    assert set(refused.value.blocked) == {"ranker"}
    assert c.m.served("prod")["F"] == "4"  # nothing recorded
    assert deploy(c, "prod", "F", check=True, force=True) == {
        "ranker": EnvVerdict("skewed", frozenset({reason("F", {"4"}, {"5"})}))}
    assert c.m.served("prod")["F"] == "4"  # --check records nothing
    deploy(c, "prod", "F", force=True)
    # "serves F 5 in prod, tested with F 4, via F → ranker"
    assert es(c, "prod", "ranker") == EnvVerdict(
        "skewed", frozenset({reason("F", {"4"}, {"5"})}))
    c.record("ranker")  # retested against F 5 in the registry
    assert es(c, "prod", "ranker") == EnvVerdict("verified")
    deploy(c, "prod", "F@4")  # back to F 4: last week's combination still counts
    assert es(c, "prod", "ranker") == EnvVerdict("verified")


def test_env_sources_are_taken_live_until_deployed(c: Chain) -> None:
    ranker_chain(c)
    deploy(c, "prod", "F", "ranker")
    c.reg("source", "s", "2")  # live data: prod reads s 2 at once
    assert es(c, "prod", "ranker") == EnvVerdict(
        "skewed", frozenset({reason("s", {"1"}, {"2"})}))
    deploy(c, "prod", "s@1")  # a source deployed is pinned to that snapshot in prod
    assert es(c, "prod", "ranker") == EnvVerdict("verified")
    c.reg("source", "s", "3")
    assert es(c, "prod", "ranker") == EnvVerdict("verified")
    c.m.undeploy("prod", "s", now=c.tick())  # back to live (CHOICE)
    assert c.m.served("prod")["s"] == "3"
    assert es(c, "prod", "ranker") == EnvVerdict(
        "skewed", frozenset({reason("s", {"1"}, {"3"})}))
    assert es(c, "prod", "s") is None  # sources need no tests and s is not deployed


def test_env_missing_input_first_and_pins_not_crossed(c: Chain) -> None:
    ranker_chain(c)
    c.reg("model", "m2", "1", "ranker")
    c.reg("model", "m3", "1", "ranker@1")
    c.record("m2")
    with pytest.raises(Blocked) as refused:
        deploy(c, "prod", "ranker", "m2", "m3")
    assert refused.value.blocked == {
        "ranker": EnvVerdict("missing_input", missing=fs("F")),
        "m2": EnvVerdict("missing_input", missing=fs("F")),  # an ancestor on a served path
        "m3": EnvVerdict("untested")}  # the pin is not crossed: F is not m3's concern
    c.record("m3")
    deploy(c, "prod", "m3")
    # CHOICE: a pinned input is a frozen artifact, never missing (ranker is absent).
    assert es(c, "prod", "m3") == EnvVerdict("verified")
    # m3 reads ranker through a pin: judged with the release of ranker (and verified).
    assert set(deploy(c, "prod", "F", "ranker", "m2")) == {"ranker", "m2", "m3"}
    assert c.m.env_statuses("prod", now=c.t) == {
        "ranker": EnvVerdict("verified"), "m2": EnvVerdict("verified"),
        "m3": EnvVerdict("verified")}
    c.m.undeploy("prod", "F", now=c.tick())  # undeploy is not gated
    assert es(c, "prod", "m2") == EnvVerdict("missing_input", missing=fs("F"))
    assert es(c, "prod", "m3") == EnvVerdict("verified")
    with pytest.raises(Refused):
        c.m.undeploy("prod", "F", now=c.tick())  # no longer deployed
    with pytest.raises(Refused):
        c.m.undeploy("prod", "s", now=c.tick())  # never deployed (taken live)


def test_env_untested_failed_and_counting_runs(c: Chain) -> None:
    ranker_chain(c)
    c.reg("model", "ranker", "2", "F")
    deploy(c, "prod", "F", "ranker@2", force=True)
    assert es(c, "prod", "ranker") == EnvVerdict("untested")
    c.reg("feature", "F", "5", "s")
    c.record("ranker", passed=False)  # against F 5: not counting in prod, and no pass at all
    assert es(c, "prod", "ranker") == EnvVerdict("failed")  # CHOICE (the implementation's)
    c.record("ranker")  # a pass against F 5: prod serves F 4 → skewed
    assert es(c, "prod", "ranker") == EnvVerdict(
        "skewed", frozenset({reason("F", {"5"}, {"4"})}))
    c.promote("F", "4")
    c.record("ranker", passed=False)  # counting, failed
    c.promote("F", "5")
    c.record("ranker")  # a later pass against F 5 does not count in prod
    assert es(c, "prod", "ranker") == EnvVerdict("failed")
    c.promote("F", "4")
    c.record("ranker")
    c.promote("F", "5")
    c.record("ranker", passed=False)  # a later failure elsewhere does not count either
    assert es(c, "prod", "ranker") == EnvVerdict("verified")
    assert c.status("ranker") == "failed"  # the registry judges its latest run


def test_env_required_suites_each_judged_worst_wins(c: Chain) -> None:
    ranker_chain(c)
    c.reg("model", "ranker", "1", "F", required_suites=["a", "b"])
    deploy(c, "prod", "F", "ranker", force=True)
    c.reg("feature", "F", "5", "s")
    assert es(c, "prod", "ranker") == EnvVerdict("untested", missing_suites=fs("a", "b"))
    c.promote("F", "4")
    c.record("ranker", suite="a")  # counting, passed
    assert es(c, "prod", "ranker") == EnvVerdict("untested", missing_suites=fs("b"))
    c.promote("F", "5")
    c.record("ranker", passed=False, suite="b")  # b: only a failed, non-counting run
    assert es(c, "prod", "ranker") == EnvVerdict("failed")
    c.record("ranker", suite="b")  # b: a pass against F 5 only → skewed for b
    skew = EnvVerdict("skewed", frozenset({reason("F", {"5"}, {"4"})}))
    assert es(c, "prod", "ranker") == skew
    c.promote("F", "4")
    c.record("ranker", passed=False, suite="a")  # a: latest counting failed → failed wins
    assert es(c, "prod", "ranker") == EnvVerdict("failed")
    c.record("ranker", suite="a")
    c.record("ranker", suite="b")
    assert es(c, "prod", "ranker") == EnvVerdict("verified")
    c.record("ranker", suite="other", passed=False)  # not required: ignored
    assert es(c, "prod", "ranker") == EnvVerdict("verified")


def test_env_waiver_covers_exact_facts_in_its_environment_only(c: Chain) -> None:
    ranker_chain(c)
    env(c, "staging")
    for e in ("staging", "prod"):
        deploy(c, e, "F", "ranker")
    c.reg("feature", "F", "5", "s")
    c.reg("feature", "F", "6", "s")
    for e in ("staging", "prod"):
        deploy(c, e, "F@5", force=True)
    c.waive("ranker")  # a registry waiver covers the registry's status only
    assert c.status("ranker") == "waived"
    assert es(c, "prod", "ranker") == EnvVerdict("skewed", frozenset({reason("F", {"4"}, {"5"})}))
    c.m.waive_env("prod", "ranker", expires_s=100, now=5000.0)
    c.t = 5001.0
    skew = frozenset({reason("F", {"4"}, {"5"})})
    assert es(c, "prod", "ranker") == EnvVerdict("waived", skew)
    assert es(c, "staging", "ranker") == EnvVerdict("skewed", skew)
    assert es(c, "prod", "ranker", now=5100.0) == EnvVerdict("skewed", skew)  # expired
    deploy(c, "prod", "F@6", force=True)  # a newer change reopens it
    assert es(c, "prod", "ranker") == EnvVerdict(
        "skewed", frozenset({reason("F", {"4"}, {"6"})}))
    deploy(c, "prod", "F@5", force=True)  # the same facts again
    assert es(c, "prod", "ranker") == EnvVerdict("waived", skew)
    c.record("ranker", passed=False)  # a failed run leaves the latest passing run alone
    assert es(c, "prod", "ranker") == EnvVerdict("waived", skew)
    c.record("ranker")  # a newer passing run (against F 6) ends it
    assert es(c, "prod", "ranker") == EnvVerdict(
        "skewed", frozenset({reason("F", {"6"}, {"5"})}))
    with pytest.raises(Refused):
        c.m.waive_env("prod", "ranker", cause="s", now=c.tick())  # not an open cause
    deploy(c, "prod", "F@6")
    with pytest.raises(Refused):
        c.m.waive_env("prod", "ranker", now=c.tick())  # verified: nothing to waive
    with pytest.raises(Refused):
        c.m.waive_env("dev", "ranker", now=c.tick())  # no such environment


def test_env_stale_is_judged_on_the_deployed_version(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("model", "m", "1", "s", max_age_s=100)
    created = c.t
    c.record("m")
    env(c, "prod")
    deploy(c, "prod", "m")
    c.reg("model", "m", "2", "s")  # a fresh version in the registry changes nothing in prod
    c.record("m")
    assert es(c, "prod", "m", now=created + 100) == EnvVerdict("verified")
    assert es(c, "prod", "m", now=created + 101) == EnvVerdict("stale")
    assert c.status("m", now=created + 101) == "verified"


def test_env_deploy_gate_judges_the_release_and_what_reads_it(c: Chain) -> None:
    ranker_chain(c)
    c.reg("model", "other", "1", "s")
    c.reg("model", "pinned", "1", "ranker@1")
    deploy(c, "prod", "F", "ranker", "other", force=True)
    assert es(c, "prod", "other") == EnvVerdict("untested")
    c.reg("feature", "F", "5", "s")
    c.reg("model", "ranker", "2", "F")
    c.record("ranker")
    # other stays untested: it neither belongs to the release nor reads one of its nodes.
    assert deploy(c, "prod", "F", "ranker") == {"ranker": EnvVerdict("verified")}
    with pytest.raises(Blocked):  # CHOICE: judged again though its version does not change
        deploy(c, "prod", "other")
    with pytest.raises(Blocked) as refused:  # CHOICE: s deployed at the version taken live
        deploy(c, "prod", "s@1")
    assert set(refused.value.checked) == {"ranker", "other"}
    assert set(refused.value.blocked) == {"other"}
    deploy(c, "prod", "pinned", force=True)
    with pytest.raises(Blocked) as refused:  # a node reading ranker through a pin is judged
        deploy(c, "prod", "ranker")
    assert set(refused.value.blocked) == {"pinned"}
    assert set(deploy(c, "prod", "F", force=True)) == {"ranker"}  # the pin is not crossed
    c.reg("consumer", "app", "1", "ranker")
    assert deploy(c, "prod", "app") == {}  # needs no tests; no node that does reads it


def test_env_deploy_and_env_refusals(c: Chain) -> None:
    ranker_chain(c)
    env(c, "staging")
    before = copy.deepcopy((c.m.envs, c.m.deployments))
    attempts: list[Callable[[], object]] = [
        lambda: env(c, "prod"),  # exists
        lambda: env(c, "qa", after="nope"),
        lambda: env(c, "bad name"),
        lambda: deploy(c, "nope", "F"),
        lambda: deploy(c, "prod"),
        lambda: deploy(c, "prod", "ghost"),
        lambda: deploy(c, "prod", "F@9"),
        lambda: deploy(c, "prod", "F", "F@4"),
        lambda: c.m.deploy("prod", [("F", None)], force=True, now=c.tick()),  # no reason
        lambda: c.m.undeploy("prod", "F", now=c.tick()),
        lambda: c.m.undeploy("prod", "ghost", now=c.tick()),
        lambda: c.m.env_statuses("nope", now=c.t),
    ]
    for bad in attempts:
        with pytest.raises(Refused):
            bad()
    assert (c.m.envs, c.m.deployments) == before
    env(c, "qa", after="staging")
    assert c.m.envs == {"prod": None, "staging": None, "qa": "staging"}


def test_env_latest_deployment_by_commit_order(c: Chain) -> None:
    ranker_chain(c)
    c.reg("feature", "F", "5", "s")
    c.m.deploy("prod", [("F", "5")], now=9000.0)
    c.m.deploy("prod", [("F", "4")], now=10.0)  # an earlier clock, recorded later
    assert c.m.served("prod")["F"] == "4"


def test_env_serving_cycle_refused(c: Chain) -> None:
    c.reg("source", "s", "1")
    c.reg("feature", "g", "1", "s")
    c.reg("model", "m", "1", "g")
    c.reg("model", "m", "2", "s")
    c.reg("feature", "g", "2", "m")  # the registry is acyclic: m 2 reads s
    env(c, "prod")
    deploy(c, "prod", "g@2", "m@2", force=True)
    with pytest.raises(Refused):  # CHOICE: m 1 reads g, g 2 reads m
        deploy(c, "prod", "m@1", force=True)


def test_env_retired_nodes(c: Chain) -> None:
    """CHOICES (the implementation's): a retired source no environment deployed is absent;
    a deployment of a retired node stands (no status of its own) until undeployed."""
    c.reg("source", "s", "1")
    c.reg("source", "t", "1")
    c.reg("feature", "f", "1", "s")
    c.reg("model", "m", "1", "f", "t")
    c.reg("model", "top", "1", "m")
    c.record("m")
    c.record("top")
    env(c, "prod")
    deploy(c, "prod", "f", "m", "top")
    c.reg("model", "m", "2", "s")  # nothing current reads f or t any more
    c.reg("model", "top", "2", "s")
    c.m.retire("t", now=c.tick())
    c.m.retire("f", now=c.tick())
    assert es(c, "prod", "m") == EnvVerdict("missing_input", missing=fs("t"))
    assert es(c, "prod", "top") == EnvVerdict("missing_input", missing=fs("t"))
    assert c.m.served("prod")["f"] == "1"
    with pytest.raises(Refused):
        deploy(c, "prod", "f", force=True)  # retired: revive it first
    c.m.undeploy("prod", "f", now=c.tick())
    assert es(c, "prod", "m") == EnvVerdict("missing_input", missing=fs("f", "t"))
    c.m.retire("m", now=c.tick())
    assert c.m.env_statuses("prod", now=c.t) == {
        "top": EnvVerdict("missing_input", missing=fs("f", "t"))}


def test_run_of_a_version_reading_a_retired_node_crosses_it(c: Chain) -> None:
    """DESIGN's lineage crosses a retired node (it keeps its current version and inputs):
    a run of m 1 recorded while f is retired still holds s (as chainml's does:
    tests/test_environments.py, test_a_run_of_an_old_version_sees_through_a_retired_input)."""
    c.reg("source", "s", "1")
    c.reg("feature", "f", "1", "s")
    c.reg("model", "m", "1", "f")
    c.reg("model", "m", "2", "s")
    c.m.retire("f", now=c.tick())
    c.record("m", version="1")
    assert c.m.runs[-1].snapshot == {("f", "1"), ("s", "1")}
    c.reg("feature", "f", "1", "s")  # revived
    c.promote("m", "1")
    assert c.status("m") == "verified"
