"""Environment status judged from the registry's marks (``environments.judge``) takes
that way where it should, and answers as the definition does.

The lockstep test (tests/test_model_based.py) compares both ways with the model on
random registries; these cases make sure the way from marks is the one taken where an
environment serves the registry's current versions, and that the cases the marks do
not settle (an older run that matches again, runs of several suites) end right.
"""

from __future__ import annotations

from chainml.db import engine as dbe
from chainml.db import reads
from chainml.db.direct import Db
from chainml.environments import judge
from chainml.registry import Registry
from tests.chains import TESTABLE, build_example, build_feature_chain, unrouted


def _split(reg: Registry, env: str) -> tuple[set[str], set[str]]:
    """(judged from marks, judged directly) of every node ``env`` gives a status."""
    with dbe.read_session(reg.engine) as s:
        db = Db.over(s)
        assign = judge.Assignment(db, reads.require_env(db, env), whole=True)
        fast, slow = judge.split(assign, assign.testable(None))
        names = reads.names(db, fast + slow)
        return {names[i] for i in fast}, {names[i] for i in slow}


def _agree(reg: Registry, env: str) -> dict[str, str]:
    got = reg.env_status(env)
    assert unrouted(got) == unrouted(reg.recompute_env_status(env))
    return {e.name: e.status.value for e in got}


def _deploy_all(reg: Registry, env: str) -> None:
    reg.env_create(env)
    reg.deploy([n.name for n in reg.nodes()], env=env, force=True, reason="start")


def test_what_prod_serves_at_current_versions_is_judged_from_marks(registry: Registry
                                                                    ) -> None:
    reg = build_example(registry)
    _deploy_all(reg, "prod")
    assert _split(reg, "prod") == (set(TESTABLE), set())
    assert set(_agree(reg, "prod").values()) == {"verified"}
    # A feature redeployed alone: what reads it is skewed, still judged from marks,
    # with the path the change travelled, as `status` shows it.
    reg.register(kind="feature", name="click_features", version="1.4.0",
                 inputs=["clicks_raw"])
    reg.deploy(["click_features"], env="prod", force=True, reason="hotfix")
    assert _split(reg, "prod") == (set(TESTABLE), set())
    got = _agree(reg, "prod")
    assert got["ranker"] == "skewed" and got["fraud_rules"] == "skewed"
    ranker = next(e for e in reg.env_status("prod") if e.name == "ranker")
    assert ranker.reasons[0].path == next(
        e for e in reg.status() if e.name == "ranker").reasons[0].path
    # Asked alone, the same answer through the lineage above it.
    assert reg.env_status("prod", "ranker")[0].model_dump() == ranker.model_dump()


def test_a_node_below_a_version_not_current_is_judged_directly(registry: Registry) -> None:
    reg = build_example(registry)
    _deploy_all(reg, "prod")
    reg.register(kind="feature", name="click_features", version="1.4.0",
                 inputs=["clicks_raw"])
    # prod still serves 1.3.0: everything below it has another lineage there.
    fast, slow = _split(reg, "prod")
    assert slow == {"user_embedding", "ranker", "fraud_scorer", "fraud_rules",
                    "ranking_safety"} & set(TESTABLE)
    assert set(_agree(reg, "prod").values()) == {"verified"}


def test_an_older_run_that_matches_the_lineage_again_counts(registry: Registry) -> None:
    """F 5 tested, then F 4 promoted back: the marks say M's latest run saw F 5, but M's
    first run, with F 4, matches what prod serves again, which only the definition can
    tell: the node goes the direct way and is verified."""
    reg = build_feature_chain(registry)
    _deploy_all(reg, "prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)
    reg.promote("F", "4")
    assert {e.name: e.status.value for e in reg.status()} == {"M": "needs_retest",
                                                             "P": "needs_retest"}
    assert _split(reg, "prod") == ({"M", "P"}, set())  # by the lineage; the runs decide
    assert _agree(reg, "prod") == {"M": "verified", "P": "verified"}


def test_runs_of_several_suites_are_told_apart_by_their_causes(registry: Registry) -> None:
    reg = build_feature_chain(registry)
    reg.register(kind="model", name="M", version="1", inputs=["F"],
                 required_suites=["offline", "shadow"])
    reg.record_test("M", passed=True, suite="offline")
    reg.record_test("M", passed=True, suite="shadow")
    _deploy_all(reg, "prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.record_test("M", passed=True, suite="offline")  # with F 5; shadow still with F 4
    reg.deploy(["F"], env="prod", force=True, reason="F 5 out")
    assert "M" in _split(reg, "prod")[0]
    got = _agree(reg, "prod")
    assert got["M"] == "skewed"
    m = next(e for e in reg.env_status("prod") if e.name == "M")
    assert [(r.cause, r.tested_with, r.now, r.suite) for r in m.reasons] == [
        ("F", ["4"], ["5"], "shadow")]


def test_a_node_judged_directly_names_every_node_on_its_reasons_path(
        registry: Registry) -> None:
    """The direct way reads the names of what its reasons name only: the differing
    ancestor and every node on the way down from it, not each of the lineage's."""
    reg = build_example(registry)
    _deploy_all(reg, "prod")
    reg.register(kind="model", name="fraud_scorer", version="5.3.0",
                 inputs=["txn_features", "embedding_features"])
    reg.record_test("fraud_scorer", passed=True)  # prod keeps 5.2.0: judged directly
    reg.register(kind="feature", name="click_features", version="1.4.0",
                 inputs=["clicks_raw"])
    reg.deploy(["click_features"], env="prod", force=True, reason="hotfix")
    assert "fraud_scorer" in _split(reg, "prod")[1]
    assert _agree(reg, "prod")["fraud_scorer"] == "skewed"
    scorer = next(e for e in reg.env_status("prod") if e.name == "fraud_scorer")
    assert [(r.cause, r.tested_with, r.now, r.path) for r in scorer.reasons] == [
        ("click_features", ["1.3.0"], ["1.4.0"],
         ["click_features", "user_embedding", "embedding_features", "fraud_scorer"])]
