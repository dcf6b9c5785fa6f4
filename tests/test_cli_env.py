"""The command line of environments: env create|list|show|diff, deploy, undeploy, and
status, check, waive and log with --env, on every backend.

The story of docs/environments.md: the example chain deployed to staging and prod, a
feature redeployed alone to prod, the gate failing with the skew, the release that
fixes it, the gate passing.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import xmlschema

from tests.clirun import error_line, example_registry, ok, ok_json, raw_dump, run
from tests.shared import shared_path
from tests.test_conformance_junit import conforms

# Everything but the sources, which every environment reads live.
SERVED = ["click_features", "txn_features", "user_embedding", "embedding_features",
          "fraud_scorer", "ranker", "fraud_rules", "ranking_safety", "checkout_service",
          "feed_app"]
TESTABLE = ["fraud_rules", "fraud_scorer", "ranker", "ranking_safety", "user_embedding"]


@pytest.fixture
def url(database_url: str) -> str:
    """The example chain, tested, deployed to staging and prod."""
    example_registry(database_url)
    ok(database_url, "env", "create", "staging", "--description", "pre-production")
    ok(database_url, "env", "create", "prod", "--after", "staging")
    ok(database_url, "deploy", *SERVED, "--env", "staging")
    ok(database_url, "deploy", *SERVED, "--env", "prod", "--link", "https://ci/1")
    return database_url


@pytest.fixture
def skewed(url: str) -> str:
    """txn_features 2.1.0 redeployed alone to prod, forced past the guard."""
    ok(url, "register", "feature", "txn_features", "--version", "2.1.0")
    ok(url, "deploy", "txn_features", "--env", "prod", "--force", "--reason", "null amounts")
    return url


def _env_statuses(url: str, env: str = "prod") -> dict[str, str]:
    return {e["name"]: e["status"] for e in ok_json(url, "status", "--env", env)}


def test_env_create_list_show(url: str) -> None:
    out = ok(url, "env", "list").stdout.splitlines()
    assert out[0].split() == ["NAME", "AFTER", "DEPLOYED", "DESCRIPTION"]
    assert out[1].split() == ["staging", "-", "10", "pre-production"]
    assert out[2].split() == ["prod", "staging", "10"]
    envs = ok_json(url, "env", "list")
    assert [(e["name"], e["after"], e["deployed_nodes"]) for e in envs] == [
        ("staging", None, 10), ("prod", "staging", 10)]
    assert set(envs[0]) == {"name", "after", "description", "created_at", "created_by",
                            "deployed_nodes"}
    show = ok_json(url, "env", "show", "prod")
    nodes = {n["name"]: n for n in show["nodes"]}
    assert nodes["clicks_raw"]["deployed"] is False  # a live source
    assert nodes["ranker"]["status"]["status"] == "verified"
    assert nodes["ranker"]["link"] == "https://ci/1"
    assert nodes["feed_app"]["status"] is None  # needs no tests
    text = ok(url, "env", "show", "prod").stdout
    assert text.startswith("prod (after staging): 10 node(s) deployed\n")
    assert "live source (registry current)" in text
    created = ok_json(url, "env", "create", "shadow", "--after", "prod")
    assert (created["name"], created["after"]) == ("shadow", "prod")
    assert ok(url, "env", "create", "dev").stdout == "Created environment dev.\n"


def test_the_skew_story(url: str) -> None:
    # A feature is redeployed alone: the guard refuses it, naming each node and why.
    ok(url, "register", "feature", "txn_features", "--version", "2.1.0")
    refused = run(url, "deploy", "txn_features", "--env", "prod")
    assert refused.exit_code == 1 and refused.stderr == ""
    lines = refused.stdout.splitlines()
    assert lines[0] == ("Release to prod refused, nothing recorded: txn_features 2.1.0 "
                        "(was 2.0.1).")
    assert "  fraud_scorer 5.2.0 would be skewed:" in lines
    assert ("    - serves txn_features 2.1.0 in prod, tested with 2.0.1, via txn_features "
            "-> fraud_scorer") in lines
    assert "  fraud_rules 2026.11 would be skewed:" in lines
    assert any("chainml waive fraud_scorer --env prod" in line for line in lines)
    assert lines[-1] == ('To deploy it anyway: chainml deploy txn_features@2.1.0 --env prod '
                         '--force --reason "WHY"')
    assert _env_statuses(url)["fraud_scorer"] == "verified"  # nothing recorded
    # --check says the same and records nothing; --json carries the same facts.
    check = run(url, "deploy", "txn_features", "--env", "prod", "--check", "--json")
    assert check.exit_code == 1
    doc = json.loads(check.stdout)
    assert (doc["ok"], doc["recorded"], doc["check"]) == (False, False, True)
    assert [p["name"] for p in doc["problems"]] == ["fraud_rules", "fraud_scorer"]
    # Forced through, the gate fails with the skew and says why.
    ok(url, "deploy", "txn_features", "--env", "prod", "--force", "--reason", "hotfix")
    gate = run(url, "check", "--env", "prod")
    assert gate.exit_code == 1
    assert gate.stdout.splitlines()[0] == "check --env prod failed: 2 of 5 nodes are not verified"
    assert ("2 nodes in prod serve txn_features 2.1.0 but were tested with 2.0.1: fraud_rules, "
            "fraud_scorer" in gate.stdout)
    assert "chainml deploy txn_features@2.0.1 --env prod" in gate.stdout
    # The release that fixes it: retest with what prod serves (the registry's current
    # versions are prod's now), then the gate passes; staging never saw 2.1.0.
    ok(url, "test", "record", "fraud_scorer", "--passed")
    ok(url, "test", "record", "fraud_rules", "--passed")
    passed = ok(url, "check", "--env", "prod")
    assert passed.stdout.startswith("check --env prod passed: all 5 nodes verified")
    assert ok_json(url, "status", "--env", "staging")[1]["status"] == "verified"
    # Deploying the feature to staging is judged by the same rule, and passes now.
    release = ok(url, "deploy", "txn_features", "--env", "staging").stdout
    assert release.startswith("Release to staging deployed: txn_features 2.1.0 (was 2.0.1).")


def test_check_env_in_every_format(skewed: str) -> None:
    url = skewed
    doc = json.loads(run(url, "check", "--env", "prod", "--format", "json").stdout)
    assert (doc["ok"], doc["env"], doc["checked"]) == (False, "prod", 5)
    assert {e["name"]: e["status"] for e in doc["failing"]} == {
        "fraud_rules": "skewed", "fraud_scorer": "skewed"}
    junit = run(url, "check", "--env", "prod", "--format", "junit")
    assert junit.exit_code == 1
    conforms(xmlschema.XMLSchema(str(shared_path("conformance", "junit",
                                                 "jenkins-xunit-junit-10.xsd"))), junit.stdout)
    root = ET.fromstring(junit.stdout)
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "chainml check --env prod"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["env"] == "prod" and props["count.skewed"] == "2"
    failures = [f.get("type") for f in suite.iter("failure")]
    assert failures == ["skewed", "skewed"]
    github = run(url, "check", "--env", "prod", "--format", "github").stdout
    assert github.startswith("::error title=chainml (prod)%3A fraud_rules serves inputs it "
                             "was not tested with::")
    assert "chainml waive fraud_rules --env prod" in github
    md = run(url, "check", "--env", "prod", "--format", "markdown").stdout
    assert md.startswith("### chainml check --env prod: failed\n")
    assert "| `fraud_scorer` | `model` | `5.2.0` | skewed |" in md
    text = run(url, "check", "--env", "prod", "--format", "text").stdout
    assert "totals: 5 checked (3 verified, 2 skewed); 2 failing, 0 warnings" in text
    # Scoped to a node and its serving lineage.
    scoped = json.loads(run(url, "check", "--env", "prod", "ranker", "--json").stdout)
    assert (scoped["ok"], scoped["scope"], scoped["checked"]) == (True, ["ranker"], 2)


def test_status_env(skewed: str) -> None:
    entries = ok_json(skewed, "status", "--env", "prod")
    assert [e["name"] for e in entries] == TESTABLE
    by = {e["name"]: e for e in entries}
    reason = by["fraud_scorer"]["reasons"][0]
    assert (reason["cause"], reason["from"], reason["to"], reason["path"]) == (
        "txn_features", "2.0.1", "2.1.0", ["txn_features", "fraud_scorer"])
    text = ok(skewed, "status", "--env", "prod", "fraud_scorer").stdout.splitlines()
    assert text[0].split() == ["fraud_scorer", "model", "5.2.0", "skewed"]
    assert text[1].strip() == ("- serves txn_features 2.1.0 in prod, tested with 2.0.1, via "
                               "txn_features -> fraud_scorer")
    assert ok(skewed, "status", "--env", "prod", "feed_app").stdout == "feed_app needs no tests.\n"


def test_waive_env_and_log_env(skewed: str) -> None:
    out = ok(skewed, "waive", "fraud_scorer", "--env", "prod", "--reason", "compatible",
             "--expires", "2d").stdout
    assert out.startswith("Waiver ") and "passes the gate in prod for its skew until" in out
    w = ok_json(skewed, "waive", "fraud_rules", "--env", "prod", "--reason", "ok",
                "--cause", "txn_features")
    assert (w["env"], w["cause"]) == ("prod", "txn_features")
    assert _env_statuses(skewed)["fraud_scorer"] == "waived"
    assert ok(skewed, "check", "--env", "prod").exit_code == 0
    # The registry's own status is not waived by them.
    assert {e["name"]: e["status"] for e in ok_json(skewed, "status")}["fraud_scorer"] == \
        "needs_retest"
    log = ok_json(skewed, "log", "--env", "prod")
    assert [e["action"] for e in log] == ["env.created", "deploy", "deploy", "waiver.granted",
                                          "waiver.granted"]
    assert {e["env"] for e in log} == {"prod"}
    assert log[2]["details"]["forced"] is True
    text = ok(skewed, "log", "--env", "prod").stdout.splitlines()
    assert "deploy" in text[2] and "in prod" in text[2]
    assert "txn_features 2.1.0 (was 2.0.1)" in text[2] and "reason=null amounts" in text[2]
    assert [e["env"] for e in ok_json(skewed, "log", "txn_features") if e["env"]] == [
        "staging", "prod", "prod"]


def test_env_diff(skewed: str) -> None:
    text = ok(skewed, "env", "diff", "staging", "prod").stdout.splitlines()
    assert text[0].split() == ["NODE", "KIND", "staging", "prod"]
    assert text[1].split() == ["txn_features", "feature", "2.0.1", "2.1.0"]
    assert text[-1] == "1 differ, 9 the same."  # of the 10 deployed; live sources agree
    doc = ok_json(skewed, "env", "diff", "staging", "prod")
    assert doc["differences"] == [{"name": "txn_features", "kind": "feature",
                                   "a_version": "2.0.1", "b_version": "2.1.0"}]
    assert ok(skewed, "env", "diff", "prod", "prod").stdout == \
        "prod and prod serve the same versions (10 node(s)).\n"


def test_undeploy(url: str) -> None:
    out = ok(url, "undeploy", "embedding_features", "--env", "prod").stdout
    assert out.startswith("Undeployed embedding_features 3.0 from prod.\n")
    assert "fraud_rules, fraud_scorer, ranker, ranking_safety" in out
    statuses = _env_statuses(url)
    assert statuses["fraud_scorer"] == "missing_input"
    assert statuses["user_embedding"] == "verified"
    doc = ok_json(url, "undeploy", "feed_app", "--env", "prod")
    assert (doc["node"], doc["version"], doc["env"]) == ("feed_app", "9.1", "prod")
    assert run(url, "check", "--env", "prod").exit_code == 1


@pytest.mark.parametrize("args, error", [
    (("deploy", "ranker", "--env", "prd"),
     "Error: No environment named 'prd'. Did you mean 'prod'?"),
    (("status", "--env", "nowhere"),
     "Error: No environment named 'nowhere'; the environments are prod, staging."),
    (("check", "--env", "stagin"),
     "Error: No environment named 'stagin'. Did you mean 'staging'?"),
    (("deploy", "ranker@9", "--env", "prod"),
     "Error: Node 'ranker' has no version '9'; 'chainml show ranker' lists its versions."),
    (("deploy", "rankr", "--env", "prod"), "Error: No node named 'rankr'. Did you mean 'ranker'?"),
    (("deploy", "ranker", "--env", "prod", "--force"),
     "Error: --force needs --reason: say why the release goes out anyway."),
    (("deploy", "--env", "prod"), "Error: Missing argument 'NODE[@VERSION]...'."),
    (("undeploy", "clicks_raw", "--env", "prod"),
     "Error: 'clicks_raw' is not deployed to 'prod'; nothing to undeploy."),
    (("status", "--env", "prod", "clicks_raw"),
     "Error: 'clicks_raw' is not deployed to 'prod'; 'chainml env show prod' lists what it "
     "serves."),
    (("waive", "ranker", "--env", "prod", "--reason", "x"),
     "Error: 'ranker' is verified in 'prod'; an environment waiver covers skew (serving "
     "inputs other than those tested) only."),
    (("env", "create", "prod"),
     "Error: Environment 'prod' already exists; 'chainml env list' lists them."),
    (("env", "create", "Prod"), "Error: Environment 'Prod' differs from the existing 'prod' "
     "only in letter case; 'chainml env list' lists them."),
    (("env", "create", "eu", "--after", "nowhere"),
     "Error: No environment named 'nowhere'; the environments are prod, staging."),
    (("env", "create", "loop", "--after", "loop"),
     "Error: Environment 'loop' cannot come after itself; name the environment it is "
     "promoted from."),
    (("env", "create", "has space"), "Error: Invalid environment name 'has space': it "
     "contains ' '; use 1 to 100 ASCII letters, digits and _ - . / :"),
    (("env", "show", "nowhere"),
     "Error: No environment named 'nowhere'; the environments are prod, staging."),
    (("env", "diff", "prod", "nowhere"),
     "Error: No environment named 'nowhere'; the environments are prod, staging."),
    (("log", "--env", "prd"), "Error: No environment named 'prd'. Did you mean 'prod'?"),
])
def test_bad_input(url: str, args: tuple[str, ...], error: str) -> None:
    before = raw_dump(url)
    result = run(url, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert error_line(result) == error
    assert raw_dump(url) == before


def test_deploy_a_retired_node_is_refused(url: str) -> None:
    ok(url, "retire", "feed_app")
    before = raw_dump(url)
    result = run(url, "deploy", "feed_app", "--env", "prod")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: 'feed_app' is retired; register a version of it to "
                                  "revive it before deploying it.")
    assert raw_dump(url) == before
