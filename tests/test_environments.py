"""Environments, deployments and training–serving skew (DESIGN.md's section of that name),
rule by rule, through the Python API on every backend.

The chain of most tests: raw (source) -> F (feature) -> M (model) -> P (policy), with M
and P tested, and one environment, prod.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chainml.errors import InvalidInput, NodeNotFound, ReleaseRefused, VersionNotFound
from chainml.registry import Registry
from chainml.schemas import Status
from tests.chains import build_feature_chain
from tests.clirun import raw_dump
from tests.conftest import Clock


@pytest.fixture
def reg(registry: Registry) -> Registry:
    build_feature_chain(registry)
    registry.env_create("prod")
    return registry


def env_statuses(reg: Registry, env: str = "prod") -> dict[str, str]:
    return {e.name: e.status.value for e in reg.env_status(env)}


def messages(reg: Registry, name: str, env: str = "prod") -> list[str]:
    (entry,) = reg.env_status(env, name)
    return [r.message for r in entry.reasons]


@pytest.fixture
def unchanged(database_url: str) -> Callable[..., Any]:
    """Run a call that must fail, and check that every row of every table is as before."""

    def check(call: Callable[[], Any], error: type[Exception] = InvalidInput,
              match: str | None = None) -> Exception:
        before = raw_dump(database_url)
        with pytest.raises(error, match=match) as info:
            call()
        assert raw_dump(database_url) == before
        return info.value

    return check


# ---- serving versions ------------------------------------------------------------------------


def test_deployed_versions_are_what_the_environment_serves(reg: Registry) -> None:
    result = reg.deploy(["F", "M", "P"], env="prod")
    assert result.ok and result.recorded
    assert [(i.node, i.version, i.previous) for i in result.nodes] == [
        ("F", "4", None), ("M", "1", None), ("P", "1", None)]
    served = {n.name: (n.version, n.deployed) for n in reg.env_show("prod").nodes}
    # raw was never deployed: a source is served live, at its registry current version.
    assert served == {"F": ("4", True), "M": ("1", True), "P": ("1", True),
                      "raw": ("1", False)}
    assert env_statuses(reg) == {"M": "verified", "P": "verified"}
    # The registry moves on; prod keeps serving what was deployed.
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    assert reg.env_show("prod").nodes[0].version == "4"
    assert reg.env_show("prod").nodes[0].current_version == "5"
    assert env_statuses(reg) == {"M": "verified", "P": "verified"}


def test_a_never_deployed_source_flows_in_live(reg: Registry) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="source", name="raw", version="2")
    assert env_statuses(reg) == {"M": "skewed", "P": "skewed"}
    assert messages(reg, "M") == ["serves raw 2 in prod, tested with 1, via raw -> F -> M"]


def test_a_deployed_source_stays_at_its_version(reg: Registry) -> None:
    reg.deploy(["raw", "F", "M", "P"], env="prod")
    reg.register(kind="source", name="raw", version="2")
    assert env_statuses(reg) == {"M": "verified", "P": "verified"}
    # Undeployed, a source is live data again.
    reg.undeploy("raw", env="prod")
    assert env_statuses(reg) == {"M": "skewed", "P": "skewed"}


def test_a_never_deployed_node_is_absent(reg: Registry) -> None:
    reg.deploy(["M", "P"], env="prod", force=True, reason="F ships tomorrow")
    assert env_statuses(reg) == {"M": "missing_input", "P": "missing_input"}
    assert messages(reg, "M") == ["reads F, which prod does not serve (deploy it there first)"]
    (p,) = reg.env_status("prod", "P")
    assert p.reasons[0].cause == "F" and p.reasons[0].path == ["F", "M", "P"]
    assert "F" not in {n.name for n in reg.env_show("prod").nodes}


def test_only_deployed_nodes_that_need_tests_get_a_status(reg: Registry) -> None:
    reg.deploy(["F", "M"], env="prod")
    assert env_statuses(reg) == {"M": "verified"}  # F needs no tests, P is not deployed
    assert reg.env_status("prod", "F") == []


# ---- the seven statuses ----------------------------------------------------------------------


def test_verified_and_skewed_with_reasons(reg: Registry) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="hotfix")
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.SKEWED and m.version == "1"
    (r,) = m.reasons
    assert (r.cause, r.from_, r.to, r.path) == ("F", "4", "5", ["F", "M"])
    assert r.message == "serves F 5 in prod, tested with 4, via F -> M"
    (p,) = reg.env_status("prod", "P")
    assert p.reasons[0].message == "serves F 5 in prod, tested with 4, via F -> M -> P"
    assert not reg.env_check("prod").ok


def test_untested(reg: Registry) -> None:
    reg.register(kind="model", name="M", version="2", inputs=["F"])
    reg.deploy(["F", "M@2"], env="prod", force=True, reason="canary")
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.UNTESTED
    assert [r.message for r in m.reasons] == ["version 2 has no test run"]


def test_failed_is_the_latest_counting_run(reg: Registry) -> None:
    reg.deploy(["F", "M"], env="prod")
    reg.record_test("M", passed=False)
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.FAILED
    assert [r.message for r in m.reasons] == [
        "the latest run of version 1 with what prod serves failed"]
    reg.record_test("M", passed=True)
    assert env_statuses(reg)["M"] == "verified"


def test_only_failed_runs_against_another_lineage_is_failed(reg: Registry) -> None:
    reg.register(kind="model", name="M", version="2", inputs=["F"])
    reg.record_test("M", passed=False)
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F", "M@2"], env="prod", force=True, reason="x")
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.FAILED
    assert [r.message for r in m.reasons] == ["version 2 has only failed runs"]


def test_missing_input_comes_before_the_runs(reg: Registry) -> None:
    reg.deploy(["M"], env="prod", force=True, reason="x")
    assert env_statuses(reg) == {"M": "missing_input"}


def test_waived_and_registry_waivers_apart(reg: Registry, clock: Clock) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="hotfix")
    w = reg.waive("M", env="prod", reason="backwards compatible", expires="3d")
    assert w.env == "prod" and [r.cause for r in w.covers] == ["F"]
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.WAIVED and m.waivers == [w.id]
    assert m.reasons[0].message == "serves F 5 in prod, tested with 4, via F -> M"
    # The registry's status ignores the environment's waiver (M needs a retest there) ...
    assert {e.name: e.status.value for e in reg.status()}["M"] == "needs_retest"
    # ... and a registry waiver does not accept skew.
    reg.waive("P", reason="registry waiver")
    assert {e.name: e.status.value for e in reg.status()}["P"] == "waived"
    assert env_statuses(reg)["P"] == "skewed"
    assert reg.env_check("prod").counts == {"waived": 1, "skewed": 1}
    clock.advance(days=4)
    assert env_statuses(reg)["M"] == "skewed"  # expired


def test_stale(reg: Registry, clock: Clock) -> None:
    reg.register(kind="model", name="M", version="1", inputs=["F"], max_age="30d")
    reg.deploy(["F", "M"], env="prod")
    assert env_statuses(reg)["M"] == "verified"
    clock.advance(days=31)
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.STALE
    assert [r.message for r in m.reasons] == [
        "version 1 is older than its maximum age (time to retrain)"]
    check = reg.env_check("prod")
    assert check.ok and [e.name for e in check.warnings] == ["M"]
    assert not reg.env_check("prod", strict=True).ok


# ---- which runs count ------------------------------------------------------------------------


def test_a_combination_tested_last_week_still_counts(reg: Registry, clock: Clock) -> None:
    reg.deploy(["F", "M"], env="prod")
    clock.advance(days=7)
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.record_test("M", passed=True)  # M 1 with F 5, newer
    assert env_statuses(reg)["M"] == "verified"  # prod still serves F 4: last week's run
    reg.record_test("M", passed=False)  # and even a newer failure with F 5
    assert env_statuses(reg)["M"] == "verified"
    reg.env_create("staging")
    reg.deploy(["F", "M"], env="staging", force=True, reason="see it fail")
    assert env_statuses(reg, "staging")["M"] == "failed"


def test_skew_is_judged_against_the_latest_passing_run(reg: Registry) -> None:
    reg.register(kind="source", name="raw", version="2")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.record_test("M", passed=True)  # M 1 with F 5, raw 2
    reg.deploy(["F@4", "M"], env="prod", force=True, reason="x")  # raw live at 2
    assert messages(reg, "M") == ["serves F 4 in prod, tested with 5, via F -> M"]


def test_pins_are_respected(reg: Registry) -> None:
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.register(kind="model", name="M", version="2", inputs=["F@4"])
    reg.record_test("M", passed=True)
    # M 2 reads the frozen F 4 artifact: whatever F prod serves, M 2 saw (F, 4).
    reg.deploy(["F@5", "M@2"], env="prod")
    assert env_statuses(reg)["M"] == "verified"
    lineage = {(r.cause) for e in reg.env_status("prod") for r in e.reasons}
    assert lineage == set()
    # A pin needs nothing served: the frozen artifact is read, not F.
    reg.undeploy("F", env="prod")
    assert env_statuses(reg)["M"] == "verified"


def test_required_suites_each_need_a_counting_run(registry: Registry) -> None:
    reg = registry
    reg.register(kind="source", name="raw", version="1")
    reg.register(kind="model", name="M", version="1", inputs=["raw"],
                 required_suites=["offline", "shadow"])
    reg.record_test("M", passed=True, suite="offline")
    reg.env_create("prod")
    reg.deploy(["raw", "M"], env="prod", force=True, reason="x")
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.UNTESTED
    assert [r.message for r in m.reasons] == ["version 1 of suite 'shadow' has no run"]
    reg.record_test("M", passed=True, suite="shadow")
    assert env_statuses(reg) == {"M": "verified"}
    reg.register(kind="source", name="raw", version="2")
    reg.deploy(["raw"], env="prod", force=True, reason="x")
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.SKEWED
    assert [r.suite for r in m.reasons] == ["offline", "shadow"]
    assert m.reasons[0].message == ("serves raw 2 in prod, tested with 1, via raw -> M "
                                    "(suite 'offline')")
    # One waiver accepts the skew of both suites, against both latest passing runs.
    reg.waive("M", env="prod", reason="same data, new snapshot")
    assert env_statuses(reg) == {"M": "waived"}
    reg.record_test("M", passed=True, suite="shadow")  # with raw 2: shadow counts now
    (m,) = reg.env_status("prod", "M")
    assert m.status == Status.SKEWED  # a newer run: the waiver no longer applies
    assert [r.suite for r in m.reasons] == ["offline"]


# ---- deploy: the release and its guard --------------------------------------------------------


def test_deploy_refuses_a_release_that_skews_a_deployed_node(reg: Registry,
                                                           unchanged: Any) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    err = unchanged(lambda: reg.deploy(["F"], env="prod", link="https://ci/2"),
                    ReleaseRefused)
    assert err.exit_code == 1
    assert "M 1 would be skewed (serves F 5 in prod, tested with 4, via F -> M)" in str(err)
    assert "P 1 would be skewed" in str(err) and "--force --reason" in str(err)
    assert [e.name for e in err.result.problems] == ["M", "P"]
    assert not err.result.recorded
    assert env_statuses(reg) == {"M": "verified", "P": "verified"}


def test_deploy_check_only_evaluates(reg: Registry, database_url: str) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    before = raw_dump(database_url)
    result = reg.deploy(["F"], env="prod", check=True)
    assert not result.ok and not result.recorded and result.check
    assert {e.name: e.status.value for e in result.problems} == {"M": "skewed", "P": "skewed"}
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)
    before = raw_dump(database_url)
    result = reg.deploy(["F"], env="prod", check=True)
    assert result.ok and [e.status.value for e in result.checked] == ["verified", "verified"]
    assert raw_dump(database_url) == before


def test_force_needs_a_reason_and_records_it(reg: Registry, unchanged: Any) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    unchanged(lambda: reg.deploy(["F"], env="prod", force=True), match="--reason")
    unchanged(lambda: reg.deploy(["F"], env="prod", force=True, reason="  "), match="--reason")
    result = reg.deploy(["F"], env="prod", force=True, reason="null amounts hotfix")
    assert result.recorded and result.forced and not result.ok
    event = reg.log(env="prod")[-1]
    assert event.action == "deploy" and event.env == "prod"
    assert event.details["forced"] is True
    assert event.details["reason"] == "null amounts hotfix"
    assert event.details["problems"] == ["M: skewed", "P: skewed"]
    assert env_statuses(reg) == {"M": "skewed", "P": "skewed"}


def test_a_release_deploys_together_what_was_tested_together(reg: Registry) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.register(kind="model", name="M", version="2", inputs=["F"])
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)
    with pytest.raises(ReleaseRefused):
        reg.deploy(["F"], env="prod")  # M 1 would serve F 5 untested
    result = reg.deploy(["F", "M"], env="prod", note="F 5 with M 2")
    assert result.ok and result.recorded and result.event is not None
    assert [(i.node, i.version, i.previous) for i in result.nodes] == [
        ("F", "5", "4"), ("M", "2", "1")]
    assert {e.name for e in result.checked} == {"M", "P"}
    deploys = [e for e in reg.log(env="prod") if e.action == "deploy"]
    assert len(deploys) == 2 and deploys[-1].id == result.event
    assert [n["node"] for n in deploys[-1].details["nodes"]] == ["F", "M"]
    assert deploys[-1].details["note"] == "F 5 with M 2"
    assert env_statuses(reg) == {"M": "verified", "P": "verified"}


def test_a_release_fails_whole(reg: Registry, unchanged: Any) -> None:
    unchanged(lambda: reg.deploy(["F", "M@9"], env="prod"), VersionNotFound)
    unchanged(lambda: reg.deploy(["F", "nope"], env="prod"), NodeNotFound)
    assert reg.env_show("prod").nodes == []


def test_unrelated_broken_nodes_do_not_block(reg: Registry) -> None:
    reg.register(kind="source", name="other", version="1")
    reg.register(kind="model", name="Q", version="1", inputs=["other"])
    reg.deploy(["Q"], env="prod", force=True, reason="untested")
    assert env_statuses(reg) == {"Q": "untested"}
    # Q's serving lineage holds none of F, M, P: the release does not change it.
    assert reg.deploy(["F", "M", "P"], env="prod").ok
    # Redeploying Q itself is judged.
    with pytest.raises(ReleaseRefused, match="Q 1 would be untested"):
        reg.deploy(["Q"], env="prod")


def test_a_release_that_fixes_skew_passes(reg: Registry) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="hotfix")
    assert not reg.env_check("prod").ok
    assert reg.deploy(["F@4"], env="prod").ok  # the rollback
    assert reg.env_check("prod").ok


def test_a_release_that_would_miss_an_input_is_refused(reg: Registry) -> None:
    with pytest.raises(ReleaseRefused, match="reads F, which prod does not serve") as info:
        reg.deploy(["M"], env="prod")
    assert info.value.result.problems[0].status == Status.MISSING_INPUT


# ---- undeploy --------------------------------------------------------------------------------


def test_undeploy(reg: Registry, unchanged: Any) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    assert reg.env_list()[0].deployed_nodes == 3
    out = reg.undeploy("P", env="prod")
    assert (out.node, out.version, out.missing_input) == ("P", "1", [])
    assert reg.env_list()[0].deployed_nodes == 2
    assert env_statuses(reg) == {"M": "verified"}
    assert "P" not in {n.name for n in reg.env_show("prod").nodes}
    unchanged(lambda: reg.undeploy("P", env="prod"), match="already undeployed")
    unchanged(lambda: reg.env_status("prod", "P"), match="undeployed from 'prod'")
    out = reg.undeploy("F", env="prod")
    assert out.missing_input == ["M"]
    assert env_statuses(reg) == {"M": "missing_input"}
    assert [e.action for e in reg.log(env="prod")][-2:] == ["undeploy", "undeploy"]
    # Deployed again, it is served again.
    reg.deploy(["F"], env="prod")
    assert env_statuses(reg) == {"M": "verified"}


# ---- environment waivers -----------------------------------------------------------------------


def test_an_env_waiver_ends_with_a_newer_run(reg: Registry) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="hotfix")
    reg.waive("M", env="prod", reason="ok")
    assert env_statuses(reg)["M"] == "waived"
    reg.record_test("M", passed=False)  # a newer run of M 1 (with F 5): the waiver ends
    assert env_statuses(reg)["M"] == "failed"


def test_an_env_waiver_ends_with_other_served_versions(reg: Registry) -> None:
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="hotfix")
    reg.waive("M", env="prod", reason="ok", cause="F")
    assert env_statuses(reg)["M"] == "waived"
    reg.register(kind="feature", name="F", version="6", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="again")
    assert env_statuses(reg)["M"] == "skewed"


def test_env_waivers_are_per_environment(reg: Registry) -> None:
    reg.env_create("staging")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    for env in ("prod", "staging"):
        reg.deploy(["F", "M"], env=env, force=True, reason="x")
    reg.waive("M", env="prod", reason="ok")
    assert env_statuses(reg)["M"] == "waived"
    assert env_statuses(reg, "staging")["M"] == "skewed"


def test_env_waivers_cover_skew_only(reg: Registry, unchanged: Any) -> None:
    reg.deploy(["F", "M"], env="prod")
    unchanged(lambda: reg.waive("M", env="prod", reason="x"), match="is verified in 'prod'")
    unchanged(lambda: reg.waive("F", env="prod", reason="x"), match="needs no tests")
    unchanged(lambda: reg.waive("P", env="prod", reason="x"), match="not deployed to 'prod'")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.deploy(["F"], env="prod", force=True, reason="x")
    unchanged(lambda: reg.waive("M", env="prod", reason="x", cause="raw"),
              match="'raw' is not a cause of the skew of 'M' in 'prod'; its causes: F")


# ---- log, list, show, diff ---------------------------------------------------------------------


def test_log_env_is_that_environments_history(reg: Registry) -> None:
    reg.env_create("staging")
    reg.deploy(["F", "M"], env="staging")
    reg.deploy(["F", "M", "P"], env="prod", link="https://ci/7")
    reg.undeploy("P", env="prod")
    prod = reg.log(env="prod")
    assert [e.action for e in prod] == ["env.created", "deploy", "undeploy"]
    assert {e.env for e in prod} == {"prod"}
    assert prod[1].details["link"] == "https://ci/7"
    assert [e.action for e in reg.log(env="staging")] == ["env.created", "deploy"]
    # A node's history holds the releases that deployed it.
    assert [e.env for e in reg.log("P") if e.env] == ["prod", "prod"]
    assert [e.action for e in reg.log("P", env="prod")] == ["deploy", "undeploy"]
    assert len(reg.log(env="prod", limit=1)) == 1


def test_env_list_in_promotion_order(registry: Registry) -> None:
    registry.env_create("prod-eu")
    registry.env_create("dev")
    registry.env_create("staging", after="dev", description="pre-production")
    registry.env_create("prod", after="staging")
    registry.env_create("shadow", after="staging")
    assert [(e.name, e.after) for e in registry.env_list()] == [
        ("dev", None), ("prod-eu", None), ("staging", "dev"), ("prod", "staging"),
        ("shadow", "staging")]
    assert registry.env_show("staging").description == "pre-production"


def test_env_diff(reg: Registry) -> None:
    reg.env_create("staging")
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.register(kind="source", name="raw", version="2")
    reg.deploy(["raw@1", "F", "M"], env="staging", force=True, reason="x")
    d = reg.env_diff("staging", "prod")
    assert (d.a, d.b, d.same) == ("staging", "prod", 1)
    assert [(e.name, e.a_version, e.b_version) for e in d.differences] == [
        ("F", "5", "4"), ("P", None, "1"), ("raw", "1", "2")]
    assert reg.env_diff("prod", "prod").differences == []


def test_env_check_scope_and_shape(reg: Registry) -> None:
    reg.register(kind="source", name="other", version="1")
    reg.register(kind="model", name="Q", version="1", inputs=["other"])
    reg.deploy(["F", "M", "P"], env="prod")
    reg.deploy(["Q"], env="prod", force=True, reason="x")
    whole = reg.env_check("prod")
    assert (whole.ok, whole.env, whole.checked) == (False, "prod", 3)
    assert [e.name for e in whole.failing] == ["Q"]
    scoped = reg.env_check("prod", ["P"])
    assert (scoped.ok, scoped.scope, scoped.checked) == (True, ["P"], 2)
    assert reg.check().env is None


# ---- bad input ---------------------------------------------------------------------------------


def test_bad_input_leaves_everything_unchanged(reg: Registry, unchanged: Any) -> None:
    reg.env_create("staging")
    reg.deploy(["F", "M"], env="prod")
    reg.retire("P")
    unchanged(lambda: reg.deploy(["F"], env="prd"), match="Did you mean 'prod'")
    unchanged(lambda: reg.env_status("nowhere"), match="the environments are prod, staging")
    unchanged(lambda: reg.deploy(["M@7"], env="prod"), VersionNotFound)
    unchanged(lambda: reg.deploy(["m"], env="prod"), NodeNotFound, match="Did you mean 'M'")
    unchanged(lambda: reg.deploy(["P"], env="prod"), match="'P' is retired")
    unchanged(lambda: reg.deploy(["F", "F@4"], env="prod"), match="named twice")
    unchanged(lambda: reg.deploy([], env="prod"), match="at least one node")
    unchanged(lambda: reg.deploy(["F"], env="prod", force=True), match="--reason")
    unchanged(lambda: reg.undeploy("P", env="prod"), match="not deployed to 'prod'")
    unchanged(lambda: reg.undeploy("nope", env="prod"), NodeNotFound)
    unchanged(lambda: reg.env_status("prod", "raw"), match="'raw' is not deployed to 'prod'")
    unchanged(lambda: reg.env_check("prod", ["raw"]), match="not deployed")
    unchanged(lambda: reg.env_create("prod"), match="already exists")
    unchanged(lambda: reg.env_create("PROD"), match="only in letter case")
    unchanged(lambda: reg.env_create("eu", after="nowhere"), match="No environment named")
    unchanged(lambda: reg.env_create("loop", after="loop"), match="cannot come after itself")
    unchanged(lambda: reg.env_create("a b"), match="Invalid environment name")
    unchanged(lambda: reg.env_create("x" * 101), match="at most 100")
    unchanged(lambda: reg.log(env="nowhere"), match="No environment named")
    unchanged(lambda: reg.env_diff("prod", "stagin"), match="Did you mean 'staging'")
    unchanged(lambda: reg.waive("M", env="prd", reason="x"), match="Did you mean 'prod'")
    for err in (InvalidInput("x"),):
        assert err.exit_code == 2


def test_first_environment_hint(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="create it with 'chainml env create NAME'"):
        registry.env_show("prod")


@pytest.mark.parametrize("call", [
    lambda r: r.env_create(7),
    lambda r: r.env_create(None),
    lambda r: r.env_create("a\x00b"),
    lambda r: r.env_create("x", after=7),
    lambda r: r.env_create("x", description=7),
    lambda r: r.env_create("x", description="a\x00b"),
    lambda r: r.env_show(7),
    lambda r: r.env_show("pr\x00d"),
    lambda r: r.env_diff("prod", None),
    lambda r: r.env_status("prod", 7),
    lambda r: r.env_status("prod", "M\x00"),
    lambda r: r.env_check(["prod"]),
    lambda r: r.env_check("prod", [7]),
    lambda r: r.deploy(7, env="prod"),
    lambda r: r.deploy([7], env="prod"),
    lambda r: r.deploy(["F"], env=7),
    lambda r: r.deploy(["F@"], env="prod"),
    lambda r: r.deploy(["@4"], env="prod"),
    lambda r: r.deploy(["F@4\x00"], env="prod"),
    lambda r: r.deploy(["F"], env="prod", link=7),
    lambda r: r.deploy(["F"], env="prod", note="x" * 10001),
    lambda r: r.deploy(["F"], env="prod", check="yes"),
    lambda r: r.deploy(["F"], env="prod", force=1, reason="x"),
    lambda r: r.undeploy(7, env="prod"),
    lambda r: r.undeploy("F", env=None),
    lambda r: r.waive("M", env=7, reason="x"),
    lambda r: r.log(env=7),
], ids=lambda c: "")
def test_hostile_calls_are_bad_input(reg: Registry, unchanged: Any,
                                     call: Callable[[Registry], Any]) -> None:
    err = unchanged(lambda: call(reg))
    assert "\n" not in str(err)


def test_a_single_spec_may_be_a_string(reg: Registry) -> None:
    reg.deploy("F", env="prod")
    assert [n.name for n in reg.env_show("prod").nodes] == ["F", "raw"]


def test_a_release_that_would_serve_a_cycle_is_refused(registry: Registry,
                                                          unchanged: Callable[..., Any]
                                                          ) -> None:
    # No registry cycle ever exists (g 2 is registered after m moved to 2), but an
    # environment serving g 2 with m 1 would loop: m 1 reads g, g 2 reads m.
    r = registry
    r.register(kind="source", name="s", version="1")
    r.register(kind="feature", name="g", version="1", inputs=["s"])
    r.register(kind="model", name="m", version="1", inputs=["g"])
    r.register(kind="model", name="m", version="2", inputs=["s"])
    r.register(kind="feature", name="g", version="2", inputs=["m"])
    r.env_create("prod")
    r.deploy(["g@2", "m@2"], env="prod", force=True, reason="setup")
    error = unchanged(lambda: r.deploy(["m@1"], env="prod", force=True, reason="x"),
                      match="would serve a cycle")
    assert "m -> g -> m" in str(error) and error.exit_code == 2
    assert {(e.name, e.version) for e in r.env_show("prod").nodes if e.deployed} == {
        ("g", "2"), ("m", "2")}


def test_a_run_of_an_old_version_sees_through_a_retired_input(registry: Registry) -> None:
    """m 1 reads f, which is retired after m moved on to read s directly: a run recorded
    for m 1 now is tested with f 1 and, through f's current version, with s 2 (a retired
    node keeps its version and what it reads), so prod, serving s 1, is skewed on s."""
    r = registry
    r.register(kind="source", name="s", version="1")
    r.register(kind="feature", name="f", version="1", inputs=["s"])
    r.register(kind="model", name="m", version="1", inputs=["f"])
    r.env_create("prod")
    r.deploy(["s", "f", "m"], env="prod", force=True, reason="setup")
    r.register(kind="model", name="m", version="2", inputs=["s"])
    r.retire("f")
    r.register(kind="source", name="s", version="2")
    r.record_test("m", version="1", passed=True)
    (m,) = r.env_status("prod", "m")
    assert m.status.value == "skewed"
    assert [(x.cause, x.tested_with, x.now) for x in m.reasons] == [("s", ["2"], ["1"])]
