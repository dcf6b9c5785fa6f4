"""The status semantics of DESIGN.md, scenario by scenario, on every backend."""

from __future__ import annotations

import pytest

from chainml.errors import InvalidInput
from chainml.registry import Registry
from tests.chains import TESTABLE, build_example, statuses
from tests.conftest import Clock


@pytest.fixture
def chain(registry: Registry) -> Registry:
    return build_example(registry)


def test_everything_verified_after_first_tests(chain: Registry) -> None:
    assert statuses(chain) == dict.fromkeys(TESTABLE, "verified")
    assert chain.check().ok


def test_root_change_marks_every_testable_descendant(chain: Registry) -> None:
    result = chain.register(kind="source", name="clicks_raw", version="2026-11-08")
    got = statuses(chain)
    # fraud_scorer is reached through click_features -> user_embedding -> embedding_features,
    # far beyond the direct consumer click_features (which needs no tests).
    assert got == {"fraud_rules": "needs_retest", "fraud_scorer": "needs_retest",
                   "ranker": "needs_retest", "ranking_safety": "needs_retest",
                   "user_embedding": "needs_retest"}
    assert result.marked == 5
    reasons = {e.name: e.reasons for e in chain.status()}
    r = reasons["fraud_rules"][0]
    assert (r.cause, r.from_, r.to) == ("clicks_raw", "2026-11-01", "2026-11-08")
    assert r.path == ["clicks_raw", "click_features", "user_embedding", "embedding_features",
                      "fraud_scorer", "fraud_rules"]
    assert not chain.check().ok


def test_unrelated_branch_is_not_marked(chain: Registry) -> None:
    chain.register(kind="source", name="transactions_raw", version="2026-11-09")
    got = statuses(chain)
    assert got["fraud_scorer"] == got["fraud_rules"] == "needs_retest"
    assert got["ranker"] == got["user_embedding"] == "verified"
    # ranking_safety reads a pinned fraud_scorer export: not reached.
    assert got["ranking_safety"] == "verified"


def test_retest_clears_only_its_own_node(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="2026-11-08")
    run = chain.record_test("user_embedding", passed=True)
    assert run.closed_marks == 1
    got = statuses(chain)
    assert got["user_embedding"] == "verified"
    assert got["fraud_scorer"] == got["ranker"] == got["fraud_rules"] == "needs_retest"
    for name in TESTABLE:
        chain.record_test(name, passed=True)
    assert chain.check().ok


def test_failed_run_keeps_the_gate_red(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="2026-11-08")
    chain.record_test("ranker", passed=False, link="https://ci/1")
    assert statuses(chain)["ranker"] == "failed"
    assert not chain.check(["ranker"]).ok
    chain.record_test("ranker", passed=True)
    assert statuses(chain)["ranker"] == "verified"


def test_rollback_makes_nodes_verified_without_retest(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="2026-11-08")
    chain.record_test("user_embedding", passed=True)  # tested against the new snapshot
    chain.promote("clicks_raw", "2026-11-01")
    got = statuses(chain)
    assert got["ranker"] == got["fraud_scorer"] == got["ranking_safety"] == "verified"
    # user_embedding was last tested with 2026-11-08: now it is the one out of date.
    assert got["user_embedding"] == "needs_retest"
    chain.promote("clicks_raw", "2026-11-08")
    assert statuses(chain)["user_embedding"] == "verified"


def test_promoting_a_node_back_judges_it_by_that_versions_runs(chain: Registry) -> None:
    chain.register(kind="model", name="ranker", version="1.5.0")
    assert statuses(chain)["ranker"] == "untested"
    chain.promote("ranker", "1.4.0")
    assert statuses(chain)["ranker"] == "verified"
    chain.register(kind="source", name="clicks_raw", version="2026-11-08")
    chain.promote("ranker", "1.5.0")
    assert statuses(chain)["ranker"] == "untested"
    chain.promote("ranker", "1.4.0")  # tested against the old clicks snapshot
    entry = chain.status("ranker")[0]
    assert entry.status.value == "needs_retest"
    assert entry.reasons[0].cause == "clicks_raw"


def test_pinned_input_is_not_marked_until_the_pin_moves(chain: Registry) -> None:
    chain.register(kind="model", name="fraud_scorer", version="5.3.0")
    got = statuses(chain)
    assert got["fraud_rules"] == "needs_retest"
    assert got["ranking_safety"] == "verified"  # reads fraud_scorer@5.2.0
    assert "ranking_safety" not in {e.name for e in chain.impact("fraud_scorer").impacted}
    chain.register(kind="policy", name="ranking_safety", version="8",
                   inputs=["ranker", "fraud_scorer@5.3.0"])
    assert statuses(chain)["ranking_safety"] == "untested"


def test_feedback_edges_do_not_propagate(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="2026-11-02", feedback=["feed_app"])
    for name in TESTABLE:
        chain.record_test(name, passed=True)
    chain.register(kind="consumer", name="feed_app", version="9.2")
    assert chain.impact("feed_app").impacted == []
    assert chain.check().ok
    assert chain.node("clicks_raw").feedback == ["feed_app"]


def test_feedback_may_close_a_cycle_but_regular_inputs_may_not(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="fb", feedback=["feed_app"])
    from chainml.errors import CycleError

    with pytest.raises(CycleError) as info:
        chain.register(kind="feature", name="click_features", version="2",
                       inputs=["clicks_raw", "ranker"])
    assert info.value.cycle == ["click_features", "ranker", "click_features"]


def test_waiver_passes_the_gate_until_it_expires(chain: Registry, clock: Clock) -> None:
    chain.register(kind="source", name="transactions_raw", version="2026-11-09")
    w = chain.waive("fraud_scorer", reason="shadow looked fine", expires="2d")
    assert w.covers[0].cause == "transactions_raw"
    got = statuses(chain)
    assert got["fraud_scorer"] == "waived"
    assert got["fraud_rules"] == "needs_retest"
    chain.waive("fraud_rules", reason="same", cause="transactions_raw")
    assert chain.check().ok
    clock.advance(days=3)
    assert statuses(chain)["fraud_scorer"] == "needs_retest"
    assert not chain.check().ok


def test_newer_change_reopens_a_waived_node(chain: Registry) -> None:
    chain.register(kind="source", name="transactions_raw", version="2")
    chain.waive("fraud_scorer", reason="ok for now")
    assert statuses(chain)["fraud_scorer"] == "waived"
    chain.register(kind="source", name="user_profiles", version="v13")
    entry = chain.status("fraud_scorer")[0]
    assert entry.status.value == "needs_retest"
    assert {r.cause for r in entry.reasons} == {"transactions_raw", "user_profiles"}


def test_waiver_never_covers_own_untested_version(chain: Registry) -> None:
    chain.register(kind="model", name="ranker", version="2")
    with pytest.raises(InvalidInput, match="untested"):
        chain.waive("ranker", reason="trust me")
    with pytest.raises(InvalidInput, match="at most 90 days"):
        chain.waive("fraud_scorer", reason="x", expires="91d")


def test_required_suites(chain: Registry) -> None:
    chain.register(kind="model", name="fraud_scorer", version="5.2.0",
                   required_suites=["offline-eval", "shadow"])
    entry = chain.status("fraud_scorer")[0]
    assert entry.status.value == "untested"
    assert {r.suite for r in entry.reasons} == {"offline-eval", "shadow"}
    chain.record_test("fraud_scorer", passed=True, suite="offline-eval")
    assert [r.suite for r in chain.status("fraud_scorer")[0].reasons] == ["shadow"]
    chain.record_test("fraud_scorer", passed=True, suite="shadow")
    assert statuses(chain)["fraud_scorer"] == "verified"
    chain.register(kind="source", name="transactions_raw", version="2")
    chain.record_test("fraud_scorer", passed=True, suite="shadow")
    assert statuses(chain)["fraud_scorer"] == "needs_retest"  # offline-eval still old
    chain.record_test("fraud_scorer", passed=False, suite="offline-eval")
    assert statuses(chain)["fraud_scorer"] == "failed"
    chain.record_test("fraud_scorer", passed=True, suite="offline-eval")
    assert statuses(chain)["fraud_scorer"] == "verified"


def test_max_age_makes_a_node_stale(chain: Registry, clock: Clock) -> None:
    chain.register(kind="model", name="user_embedding", version="3", max_age="30d")
    clock.advance(days=31)
    assert statuses(chain)["user_embedding"] == "stale"
    result = chain.check()
    assert result.ok and [w.name for w in result.warnings] == ["user_embedding"]
    assert not chain.check(strict=True).ok


def test_input_added_or_removed_needs_retest(chain: Registry) -> None:
    chain.register(kind="feature", name="click_features", version="1.4.0",
                   inputs=["clicks_raw", "user_profiles"])
    entry = chain.status("ranker")[0]
    assert entry.status.value == "needs_retest"
    assert entry.reasons[0].cause == "click_features"
    assert {r.cause for r in chain.recompute_status("ranker")[0].reasons} == {"click_features"}


def test_check_scope_is_the_named_nodes_and_their_ancestors(chain: Registry) -> None:
    chain.register(kind="source", name="transactions_raw", version="2")
    assert chain.check(["ranker"]).ok
    scoped = chain.check(["fraud_rules"])
    assert not scoped.ok
    assert {e.name for e in scoped.failing} == {"fraud_rules", "fraud_scorer"}


def test_marks_status_equals_recomputed_status(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="2")
    chain.record_test("ranker", passed=True)
    chain.register(kind="feature", name="embedding_features", version="3.1",
                   inputs=["user_embedding", "user_profiles"])
    fast = {e.name: e.status for e in chain.status()}
    slow = {e.name: e.status for e in chain.recompute_status()}
    assert fast == slow


def test_log_records_every_change(chain: Registry) -> None:
    chain.register(kind="source", name="clicks_raw", version="2")
    chain.promote("clicks_raw", "2026-11-01")
    actions = [e.action for e in chain.log("clicks_raw")]
    assert actions == ["node.created", "version.registered", "version.registered",
                       "version.promoted"]


def test_labels_and_suites_are_case_sensitive_on_every_backend(registry: Registry) -> None:
    # MariaDB's default collation ignores case; the schema asks for byte-wise text.
    registry.register(kind="source", name="src", version="v1")
    registry.register(kind="source", name="src", version="V1")
    assert [v.label for v in registry.node("src").versions] == ["v1", "V1"]
    registry.register(kind="model", name="m", version="1", inputs=["src"],
                      required_suites=["Eval"])
    registry.record_test("m", passed=True, suite="eval")
    assert registry.status("m")[0].status.value == "untested"
    registry.record_test("m", passed=True, suite="Eval")
    assert registry.status("m")[0].status.value == "verified"


def test_rollback_found_in_a_snapshot_with_many_versions_of_the_cause(registry: Registry
                                                                      ) -> None:
    """A snapshot can hold one cause at many versions (inputs pinned to each). The
    probe reads a short window of the snapshot from the cause's first pair; the pair
    that matters here lies past that window and must still be found."""
    for i in range(60):
        registry.register(kind="source", name="raw", version=f"v{i}")
        registry.register(kind="feature", name=f"pinned_{i:02d}", version="1",
                          inputs=[f"raw@v{i}"])
    registry.register(kind="feature", name="live", version="1", inputs=["raw"])
    registry.register(kind="model", name="scorer", version="1",
                      inputs=["live", *(f"pinned_{i:02d}" for i in range(60))])
    registry.record_test("scorer", passed=True)  # raw at v0..v59 in its snapshot
    registry.register(kind="source", name="raw", version="v60")
    assert statuses(registry)["scorer"] == "needs_retest"
    registry.promote("raw", "v59")  # the version scorer was tested with: a rollback
    assert statuses(registry)["scorer"] == "verified"
    assert [e.model_dump() for e in registry.status()] == [
        e.model_dump() for e in registry.recompute_status()]
