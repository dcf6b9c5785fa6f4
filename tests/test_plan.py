"""``plan``: what must be deployed together (DESIGN.md, "Environments, deployments and
training–serving skew"), through the Python API and the command line, on every backend.

The chain: raw (source) -> F (feature) -> M (model) -> P (policy), M and P tested, F 4,
M 1 and P 1 deployed to prod.
"""

from __future__ import annotations

import json

import pytest

from chainml.errors import InvalidInput, NodeNotFound
from chainml.registry import Registry
from chainml.schemas import PlanResult
from tests.chains import build_feature_chain
from tests.clirun import error_line, raw_dump, run

BROKEN = {"untested", "failed", "skewed", "missing_input"}


@pytest.fixture
def reg(registry: Registry) -> Registry:
    build_feature_chain(registry)
    registry.env_create("staging")
    registry.env_create("prod", after="staging")
    registry.deploy(["F", "M", "P"], env="prod")
    return registry


def specs(result: PlanResult) -> list[str]:
    return [f"{i.node}@{i.version}" for i in result.nodes]


def apply(reg: Registry, result: PlanResult, env: str = "prod") -> None:
    """Deploy exactly the planned release, without force: accepted, nothing left broken."""
    assert result.ok and result.command == \
        f"chainml deploy {' '.join(specs(result))} --env {env}"
    out = reg.deploy(specs(result), env=env)
    assert out.ok and out.recorded
    assert not {e.name: e.status.value for e in reg.env_status(env)
                if e.status.value in BROKEN}


def retrain(reg: Registry) -> None:
    """F 5, and M 2 retrained and tested on it; P 1 retested with M 2."""
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    reg.register(kind="model", name="M", version="2", inputs=["F"])
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)


def test_a_feature_redeployed_alone_takes_the_model_verified_with_it(reg: Registry) -> None:
    retrain(reg)
    result = reg.plan("prod", nodes=["F"])
    assert [(i.node, i.version, i.previous, i.why) for i in result.nodes] == [
        ("F", "5", "4", "named"), ("M", "2", "1", "lineage")]
    assert result.blocked == []
    # P 1 stays: it was retested with M 2 and F 5, so it verifies as it is.
    apply(reg, result)
    assert {e.name: e.status.value for e in reg.env_status("prod")} == {
        "M": "verified", "P": "verified"}


def test_by_default_every_differing_node(reg: Registry) -> None:
    retrain(reg)
    assert specs(reg.plan("prod")) == ["F@5", "M@2"]


def test_a_newer_untested_target_yields_to_the_newest_verified_version(reg: Registry) -> None:
    retrain(reg)
    reg.register(kind="model", name="M", version="3", inputs=["F"])  # never tested
    result = reg.plan("prod", nodes=["F"])
    assert [(i.node, i.version, i.target) for i in result.nodes] == [
        ("F", "5", "5"), ("M", "2", "3")]
    reg.record_test("P", passed=True)  # P 1 with M 3 now, its runs with M 2 still count
    apply(reg, result)


def test_an_absent_input_of_a_planned_version_is_added(reg: Registry) -> None:
    reg.register(kind="feature", name="G", version="1", inputs=["raw"])
    reg.register(kind="model", name="M", version="2", inputs=["F", "G"])
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)
    result = reg.plan("prod", nodes=["M"])
    assert [(i.node, i.version, i.previous, i.why) for i in result.nodes] == [
        ("G", "1", None, "input"), ("M", "2", "1", "named")]
    apply(reg, result)


def test_promote_staging_to_prod(reg: Registry) -> None:
    retrain(reg)
    reg.deploy(["F", "M", "P"], env="staging")
    reg.register(kind="model", name="M", version="3", inputs=["F"])  # not in staging
    result = reg.plan("prod", to="staging")
    assert result.to == "staging" and specs(result) == ["F@5", "M@2"]
    apply(reg, result)
    assert reg.env_diff("staging", "prod").differences == []


def test_a_blocked_plan_names_the_retest(reg: Registry, database_url: str) -> None:
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])  # M never tested on it
    result = reg.plan("prod", nodes=["F"])
    assert not result.ok and result.command is None
    blocked = {b.node: b for b in result.blocked}
    m = blocked["M"]
    assert (m.version, m.status.value) == ("1", "skewed")
    assert [(p.node, p.version) for p in m.tested_with] == [("F", "5"), ("raw", "1")]
    assert m.retest == "chainml test record M --version 1 --passed"
    before = raw_dump(database_url)
    cli = run(database_url, "plan", "--env", "prod", "F")
    assert cli.exit_code == 1, cli.output
    assert "test record M --version 1 --passed" in cli.stdout
    assert "F 5, raw 1" in cli.stdout
    doc = json.loads(run(database_url, "plan", "--env", "prod", "F", "--json").stdout)
    assert doc["ok"] is False and doc["blocked"][0]["node"] == "M"
    assert raw_dump(database_url) == before
    # The retest, with the registry at those versions, unblocks it.
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)
    result = reg.plan("prod", nodes=["F"])
    assert result.ok and specs(result) == ["F@5"]
    apply(reg, result)


def test_nothing_differs_is_an_empty_plan(reg: Registry, database_url: str) -> None:
    result = reg.plan("prod")
    assert result.ok and result.nodes == [] and result.command is None
    cli = run(database_url, "plan", "--env", "prod")
    assert cli.exit_code == 0 and cli.stdout.startswith("Nothing to deploy")


def test_the_command_line(reg: Registry, database_url: str) -> None:
    retrain(reg)
    cli = run(database_url, "plan", "--env", "prod", "--to", "current")
    assert cli.exit_code == 0, cli.output
    assert "chainml deploy F@5 M@2 --env prod" in cli.stdout.splitlines()
    doc = json.loads(run(database_url, "plan", "--env", "prod", "--json").stdout)
    assert doc["ok"] is True and [n["node"] for n in doc["nodes"]] == ["F", "M"]
    assert doc["command"] == "chainml deploy F@5 M@2 --env prod"


@pytest.mark.parametrize(("args", "error"), [
    (("--env", "nope"), "No environment named 'nope'"),
    (("--env", "prod", "--to", "qa"), "No environment named 'qa'"),
    (("--env", "prod", "X"), "X"),
    (("--env", "prod", "--to", "staging", "F"), "is not in the plan's scope"),
])
def test_bad_input_exits_2(reg: Registry, database_url: str, args: tuple[str, ...],
                           error: str) -> None:
    before = raw_dump(database_url)
    for extra in ((), ("--json",)):
        cli = run(database_url, "plan", *args, *extra)
        assert cli.exit_code == 2, cli.output
        assert error in error_line(cli)
    assert raw_dump(database_url) == before


def test_bad_input_through_the_api(reg: Registry) -> None:
    with pytest.raises(InvalidInput, match="No environment named"):
        reg.plan("nope")
    with pytest.raises(NodeNotFound):
        reg.plan("prod", nodes=["X"])
    with pytest.raises(InvalidInput, match="not in the plan's scope"):
        reg.plan("prod", to="staging", nodes=["F"])


def test_a_plan_that_would_serve_a_cycle_is_refused(registry: Registry) -> None:
    """g 2 reads m, and m 1 (what prod serves) reads g: bringing g alone to its current
    version would make prod serve a loop, and m 2, the way out, is untested; the plan is
    refused (exit 2) with the cycle named, on the command line too."""
    r = registry
    r.register(kind="source", name="s", version="1")
    r.register(kind="feature", name="g", version="1", inputs=["s"])
    r.register(kind="model", name="m", version="1", inputs=["g"])
    r.record_test("m", passed=True)
    r.env_create("prod")
    r.deploy(["s", "g", "m"], env="prod")
    r.register(kind="model", name="m", version="2", inputs=["s"])
    r.register(kind="feature", name="g", version="2", inputs=["m"])
    with pytest.raises(InvalidInput, match="No plan for 'prod': the release would make it "
                                           "serve a cycle, g -> m -> g"):
        r.plan("prod", nodes=["g"])
    result = run(r.url, "plan", "--env", "prod", "g")
    assert result.exit_code == 2 and "a cycle, g -> m -> g" in error_line(result)
