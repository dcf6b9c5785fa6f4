"""The command line of the retest loop: impact, test record, status, check, waive."""

from __future__ import annotations

import json
import re
import shlex
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta

import networkx as nx
import pytest

from chainml.registry import Registry
from tests.chains import EXAMPLE, TESTABLE
from tests.clirun import ACTOR, PastClock, error_line, example_registry, ok, ok_json, run

IMPACT_KEYS = {"name", "kind", "distance", "path", "needs_tests"}
STATUS_KEYS = {"name", "kind", "version", "status", "reasons", "owner", "last_run", "waivers",
               "required_suites"}
REASON_KEYS = {"cause", "from", "to", "tested_with", "now", "path", "suite", "message"}


@pytest.fixture
def url(database_url: str) -> str:
    """The docs' example chain, every testable node verified."""
    return example_registry(database_url)


def _statuses(url: str) -> dict[str, str]:
    return {e["name"]: e["status"] for e in ok_json(url, "status")}


def _check(url: str, *args: str) -> tuple[int, dict]:
    result = run(url, "check", "--format", "json", *args)
    assert result.exit_code in (0, 1), result.output
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert doc["ok"] is (result.exit_code == 0)
    return result.exit_code, doc


# ---- impact --------------------------------------------------------------------------------


def test_impact_json_shape(url: str) -> None:
    events = len(ok_json(url, "log"))
    out = ok_json(url, "impact", "clicks_raw")
    assert set(out) == {"node", "version", "impacted"}
    assert (out["node"], out["version"]) == ("clicks_raw", "2026-11-01")
    for entry in out["impacted"]:
        assert set(entry) == IMPACT_KEYS
    first = out["impacted"][0]
    assert first == {"name": "click_features", "kind": "feature", "distance": 1,
                     "path": ["clicks_raw", "click_features"], "needs_tests": False}
    by_name = {e["name"]: e for e in out["impacted"]}
    assert by_name["fraud_rules"]["path"] == [
        "clicks_raw", "click_features", "user_embedding", "embedding_features", "fraud_scorer",
        "fraud_rules"]
    assert by_name["fraud_rules"]["distance"] == 5
    assert by_name["ranking_safety"]["path"] == ["clicks_raw", "click_features", "ranker",
                                                 "ranking_safety"]
    # Sorted by distance, then name.
    keys = [(e["distance"], e["name"]) for e in out["impacted"]]
    assert keys == sorted(keys)
    assert [e["name"] for e in ok_json(url, "impact", "clicks_raw", "--depth", "1")["impacted"]
            ] == ["click_features"]
    assert ok_json(url, "impact", "checkout_service")["impacted"] == []
    text = ok(url, "impact", "ranker").stdout.splitlines()
    assert text[0] == "A new version of ranker reaches 2 node(s); 1 need a retest:"
    assert text[1].split() == ["retest", "ranking_safety", "(policy,", "1", "hop):", "ranker",
                               "->", "ranking_safety"]
    assert len(ok_json(url, "log")) == events  # impact writes nothing


def test_impact_equals_networkx_descendants(url: str) -> None:
    # A feedback edge: feed_app's predictions shape the clicks (never followed by impact).
    ok(url, "register", "source", "clicks_raw", "--version", "fb", "--feedback", "feed_app")
    g = nx.DiGraph()
    for _, name, _, inputs in EXAMPLE:
        g.add_node(name)
        for spec in inputs:
            if "@" not in spec:  # a pinned input reads a frozen artifact
                g.add_edge(spec, name)
    kinds = {name: kind for kind, name, _, _ in EXAMPLE}
    for _, name, _, _ in EXAMPLE:
        impacted = ok_json(url, "impact", name)["impacted"]
        assert {e["name"] for e in impacted} == nx.descendants(g, name), name
        lengths = nx.single_source_shortest_path_length(g, name)
        for e in impacted:
            assert e["distance"] == lengths[e["name"]] == len(e["path"]) - 1
            assert e["path"][0] == name and e["path"][-1] == e["name"]
            assert nx.is_path(g, e["path"])
            assert e["kind"] == kinds[e["name"]]
            assert e["needs_tests"] is (e["name"] in TESTABLE)
    assert ok_json(url, "impact", "feed_app")["impacted"] == []
    assert ok_json(url, "show", "feed_app")["consumers"] == ["clicks_raw"]


# ---- test record ---------------------------------------------------------------------------


def test_an_empty_link_or_note_is_no_link_or_note(url: str) -> None:
    # `--link "$CI_JOB_URL"` outside CI (the README's tour) passes an empty string.
    out = ok_json(url, "test", "record", "ranker", "--passed", "--link", "", "--note", "  ")
    assert (out["link"], out["note"]) == (None, None)
    details = ok_json(url, "log", "ranker")[-1]["details"]
    assert details.get("link") is None and details["outcome"] == "passed"


def test_test_record(url: str) -> None:
    ok(url, "register", "source", "clicks_raw", "--version", "2026-11-08")
    out = ok_json(url, "test", "record", "ranker", "--passed", "--suite", "offline-eval",
                  "--link", "https://ci.example/jobs/1", "--note", "AUC 0.91")
    assert {k: out[k] for k in ("node", "version", "suite", "outcome", "recorded_by", "link",
                                "note", "closed_marks")} == {
        "node": "ranker", "version": "1.4.0", "suite": "offline-eval", "outcome": "passed",
        "recorded_by": ACTOR, "link": "https://ci.example/jobs/1", "note": "AUC 0.91",
        "closed_marks": 1}
    assert _statuses(url)["ranker"] == "verified"
    last = ok_json(url, "log", "ranker")[-1]
    assert (last["action"], last["version"], last["actor"]) == ("test.recorded", "1.4.0", ACTOR)
    assert last["details"]["outcome"] == "passed"
    assert last["details"]["suite"] == "offline-eval"
    assert last["details"]["link"] == "https://ci.example/jobs/1"

    result = ok(url, "test", "record", "user_embedding", "--failed")
    assert result.stdout == "Recorded: user_embedding 3 failed.\n"
    assert _statuses(url)["user_embedding"] == "failed"
    # The failed run was taken against the current lineage: the change was retested
    # (and failed), so its mark closed then; the passing run has none left to close.
    result = ok(url, "test", "record", "user_embedding", "--passed", "--suite", "shadow")
    assert result.stdout == "Recorded: user_embedding 3 (suite shadow) passed.\n"
    assert _statuses(url)["user_embedding"] == "verified"


def test_test_record_of_another_version(url: str) -> None:
    ok(url, "register", "model", "ranker", "--version", "1.5.0")
    out = ok_json(url, "test", "record", "ranker", "--passed", "--version", "1.4.0")
    assert (out["version"], out["closed_marks"]) == ("1.4.0", 0)
    assert _statuses(url)["ranker"] == "untested"  # the current version is 1.5.0
    ok(url, "test", "record", "ranker", "--passed", "--version", "1.5.0")
    assert _statuses(url)["ranker"] == "verified"


def test_test_record_needs_an_outcome(url: str) -> None:
    events = ok_json(url, "log")
    for flags, message in (
        ((), "Error: Say how the run went: --passed or --failed."),
        (("--passed", "--failed"), "Error: --passed and --failed contradict each other; "
                                   "give one."),
    ):
        result = run(url, "test", "record", "ranker", *flags)
        assert result.exit_code == 2
        assert error_line(result) == message
        assert result.stderr.startswith("Usage: chainml test record [OPTIONS] NODE\n")
    assert ok_json(url, "log") == events


# ---- status --------------------------------------------------------------------------------


def test_status_json(url: str) -> None:
    assert _statuses(url) == dict.fromkeys(TESTABLE, "verified")
    ok(url, "register", "source", "transactions_raw", "--version", "2026-11-09")
    entries = ok_json(url, "status")
    assert [e["name"] for e in entries] == sorted(TESTABLE)
    for e in entries:
        assert set(e) == STATUS_KEYS
        for r in e["reasons"]:
            assert set(r) == REASON_KEYS
    by_name = {e["name"]: e for e in entries}
    scorer = by_name["fraud_scorer"]
    assert (scorer["kind"], scorer["version"], scorer["status"]) == ("model", "5.2.0",
                                                                     "needs_retest")
    [reason] = scorer["reasons"]
    assert {k: reason[k] for k in ("cause", "from", "to", "path")} == {
        "cause": "transactions_raw", "from": "2026-11-01", "to": "2026-11-09",
        "path": ["transactions_raw", "txn_features", "fraud_scorer"]}
    assert reason["message"] == ("ancestor transactions_raw: tested with 2026-11-01, now "
                                 "2026-11-09, via transactions_raw -> txn_features -> "
                                 "fraud_scorer")
    assert by_name["fraud_rules"]["reasons"][0]["path"] == [
        "transactions_raw", "txn_features", "fraud_scorer", "fraud_rules"]
    assert by_name["ranking_safety"]["status"] == "verified"  # reads fraud_scorer@5.2.0
    assert ok_json(url, "status", "fraud_scorer") == [scorer]
    assert ok_json(url, "status", "clicks_raw") == []
    assert ok(url, "status", "clicks_raw").stdout == "clicks_raw needs no tests.\n"
    text = ok(url, "status", "fraud_scorer").stdout.splitlines()
    assert text[0].split() == ["fraud_scorer", "model", "5.2.0", "needs_retest"]
    assert text[1].strip() == "- " + reason["message"]


# ---- check ---------------------------------------------------------------------------------


def test_check_gates_until_every_retest(url: str) -> None:
    code, doc = _check(url)
    assert (code, doc["failing"], doc["checked"]) == (0, [], len(TESTABLE))
    assert ok(url, "check").stdout.startswith("check passed")

    ok(url, "register", "source", "clicks_raw", "--version", "2026-11-08")
    result = run(url, "check")
    assert result.exit_code == 1 and result.stderr == ""
    assert result.stdout.startswith("check failed: 5 of 5 nodes are not verified")
    code, doc = _check(url)
    assert code == 1
    assert doc["counts"] == {"needs_retest": 5}
    assert [e["name"] for e in doc["failing"]] == sorted(TESTABLE)
    assert doc["failing"][0]["reasons"][0]["cause"] == "clicks_raw"

    # Scoped: ranker and its ancestors only.
    code, doc = _check(url, "ranker")
    assert (code, doc["scope"]) == (1, ["ranker"])
    assert {e["name"] for e in doc["failing"]} == {"ranker", "user_embedding"}

    for i, name in enumerate(["user_embedding", "fraud_scorer", "ranker", "fraud_rules"]):
        ok(url, "test", "record", name, "--passed")
        assert _check(url)[0] == 1, f"still failing after {i + 1} retests"
    ok(url, "test", "record", "ranking_safety", "--passed")
    code, doc = _check(url)
    assert (code, doc["failing"], doc["counts"]) == (0, [], {"verified": 5})


def test_check_formats(url: str) -> None:
    ok(url, "register", "model", "fraud_scorer", "--version", "5.3.0")
    result = run(url, "check", "--format", "junit")
    assert result.exit_code == 1
    root = ET.fromstring(result.stdout)
    assert root.tag == "testsuites"
    # One case per failing node, one for the passing rest.
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "2", "0")
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert (props["checked"], props["ok"]) == ("5", "false")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"fraud_scorer", "fraud_rules", "all 3 other checked nodes pass"}
    assert cases["fraud_scorer"].find("failure").get("type") == "untested"
    assert cases["fraud_rules"].find("failure").get("type") == "needs_retest"
    assert cases["all 3 other checked nodes pass"].find("failure") is None
    ok(url, "test", "record", "fraud_scorer", "--passed")
    ok(url, "test", "record", "fraud_rules", "--passed")
    passed = run(url, "check", "--format", "junit")
    assert passed.exit_code == 0
    assert ET.fromstring(passed.stdout).get("failures") == "0"
    ok(url, "register", "model", "fraud_scorer", "--version", "5.4.0")

    assert run(url, "check", "--json").stdout == run(url, "check", "--format", "json").stdout
    github = run(url, "check", "--format", "github")
    assert github.exit_code == 1
    assert [line.split("::")[1].split()[0] for line in github.stdout.splitlines()] == [
        "error", "error"]
    markdown = run(url, "check", "--format", "markdown")
    assert markdown.exit_code == 1 and "fraud_rules" in markdown.stdout


def test_check_strict_fails_on_a_stale_node(database_url: str) -> None:
    # Built 40 days ago, with a 30-day maximum age on user_embedding.
    reg = Registry.init(url=database_url, actor="api", clock=PastClock(days=40))
    try:
        for kind, name, version, inputs in EXAMPLE:
            reg.register(kind=kind, name=name, version=version, inputs=inputs,
                         max_age="30d" if name == "user_embedding" else None)
        for name in TESTABLE:
            reg.record_test(name, passed=True)
    finally:
        reg.close()
    url = database_url
    assert _statuses(url)["user_embedding"] == "stale"
    code, doc = _check(url)
    assert (code, doc["strict"], doc["failing"]) == (0, False, [])
    assert [w["name"] for w in doc["warnings"]] == ["user_embedding"]
    code, doc = _check(url, "--strict")
    assert (code, doc["strict"], doc["warnings"]) == (1, True, [])
    assert [(e["name"], e["status"]) for e in doc["failing"]] == [("user_embedding", "stale")]
    # Retraining makes it fresh (and untested), then a retest clears the gate even --strict.
    ok(url, "register", "model", "user_embedding", "--version", "4")
    ok(url, "test", "record", "user_embedding", "--passed")
    for name in ("fraud_rules", "fraud_scorer", "ranker", "ranking_safety"):
        ok(url, "test", "record", name, "--passed")
    assert _check(url, "--strict")[0] == 0


# ---- required suites: the hints name each suite, and following them clears the gate -------

_RECORD = re.compile(r"chainml test record \S+ --passed(?: --suite \S+)?")


def _commands(text: str) -> list[str]:
    """The 'chainml test record' commands a text report asks for, in order, once each."""
    return list(dict.fromkeys(_RECORD.findall(text)))


def _follow(url: str, *check_args: str) -> list[str]:
    """Run check, run every 'test record' command it prints, as a user pasting them would."""
    result = run(url, "check", *check_args)
    assert result.exit_code == 1, result.output
    commands = _commands(result.stdout)
    assert commands, result.stdout
    for command in commands:
        ok(url, *shlex.split(command)[1:])
    return commands


def _eval_shadow_node(url: str) -> None:
    ok(url, "register", "model", "m", "--version", "1", "--input", "click_features",
       "--require-suite", "eval", "--require-suite", "shadow")


def test_following_the_hints_of_a_never_tested_node_with_required_suites_clears_it(
        url: str) -> None:
    _eval_shadow_node(url)
    code, doc = _check(url)
    assert (code, [(e["name"], e["status"]) for e in doc["failing"]]) == (1, [("m", "untested")])
    eval_, shadow = ("chainml test record m --passed --suite eval",
                     "chainml test record m --passed --suite shadow")
    text = run(url, "check").stdout
    assert f"  to clear: test the current version, then {eval_}" in text.splitlines()
    assert f"  to clear: test the current version, then {shadow}" in text.splitlines()
    github = run(url, "check", "--format", "github").stdout
    assert f"%0Ato clear: {eval_}%0Ato clear: {shadow}" in github
    markdown = run(url, "check", "--format", "markdown").stdout
    assert f"`{eval_}`" in markdown and f"`{shadow}`" in markdown
    junit = ET.fromstring(run(url, "check", "--format", "junit").stdout)
    failure = junit.find("testsuite/testcase[@name='m']/failure")
    assert failure is not None and f"  {eval_}\n  {shadow}" in (failure.text or "")

    # The loop: these commands used to be a plain 'chainml test record m --passed'.
    assert _follow(url) == [eval_, shadow]
    assert _check(url)[0] == 0
    assert _statuses(url)["m"] == "verified"


def test_following_the_retest_hints_of_a_node_with_required_suites_clears_it(url: str) -> None:
    _eval_shadow_node(url)
    ok(url, "test", "record", "m", "--passed", "--suite", "eval")
    ok(url, "test", "record", "m", "--passed", "--suite", "shadow")
    ok(url, "register", "source", "clicks_raw", "--version", "2026-11-08")
    assert _statuses(url)["m"] == "needs_retest"
    # A run of the unnamed suite changes nothing for m: the hint must not ask for one.
    ok(url, "test", "record", "m", "--passed")
    assert _statuses(url)["m"] == "needs_retest"
    text = run(url, "check", "m").stdout
    assert ("clicks_raw 2026-11-01 -> 2026-11-08 is untested by 1 node requiring suites eval, "
            "shadow: m") in text
    assert _follow(url, "m") == ["chainml test record m --passed --suite eval",
                                 "chainml test record m --passed --suite shadow"]
    assert _check(url, "m")[0] == 0
    # The other nodes require no suite: their hint stays the plain command.
    text = run(url, "check").stdout
    assert "requiring" not in text and "--suite" not in text
    assert "  to clear: retest, then chainml test record NODE --passed" in text.splitlines()


def test_a_missing_suite_is_named_alone(url: str) -> None:
    _eval_shadow_node(url)
    ok(url, "test", "record", "m", "--passed", "--suite", "eval")
    for fmt in ("text", "github", "markdown", "junit"):
        out = run(url, "check", "--format", fmt).stdout
        assert "chainml test record m --passed --suite shadow" in out, fmt
        assert "--suite eval" not in out, fmt
    assert _follow(url) == ["chainml test record m --passed --suite shadow"]
    assert _check(url)[0] == 0


def test_status_text_names_the_missing_suites(url: str) -> None:
    _eval_shadow_node(url)
    lines = ok(url, "status", "m").stdout.splitlines()
    assert lines[0].split() == ["m", "model", "1", "untested"]
    assert [line.strip() for line in lines[1:]] == [
        "- version 1 has no test run", "- missing required suites: eval, shadow"]
    assert "- missing required suites: eval, shadow" in ok(url, "status").stdout

    ok(url, "test", "record", "m", "--passed", "--suite", "eval")
    lines = ok(url, "status", "m").stdout.splitlines()
    assert [line.strip() for line in lines[1:]] == [
        "- required suite 'shadow' has no run for version 1"]

    # A node without required suites has nothing to add.
    ok(url, "register", "model", "plain", "--version", "1", "--input", "click_features")
    lines = ok(url, "status", "plain").stdout.splitlines()
    assert [line.strip() for line in lines[1:]] == ["- version 1 has no test run"]
    assert ok_json(url, "status", "m")[0]["status"] == "untested"


# ---- waive ---------------------------------------------------------------------------------


def test_waive(url: str) -> None:
    ok(url, "register", "source", "transactions_raw", "--version", "2026-11-09")
    assert _check(url)[0] == 1
    out = ok_json(url, "waive", "fraud_scorer", "--reason", "shadow run looked fine",
                  "--expires", "3d")
    assert (out["node"], out["cause"], out["reason"], out["granted_by"]) == (
        "fraud_scorer", None, "shadow run looked fine", ACTOR)
    granted = datetime.fromisoformat(out["granted_at"])
    assert datetime.fromisoformat(out["expires_at"]) - granted == timedelta(days=3)
    assert [(c["cause"], c["from"], c["to"]) for c in out["covers"]] == [
        ("transactions_raw", "2026-11-01", "2026-11-09")]
    assert _statuses(url)["fraud_scorer"] == "waived"

    result = ok(url, "waive", "fraud_rules", "--reason", "rules unchanged", "--cause",
                "transactions_raw")
    assert result.stdout.startswith(
        "Waiver 2: fraud_rules passes the gate for changes from transactions_raw until ")
    assert result.stdout.endswith(" UTC.\n")
    code, doc = _check(url)
    assert (code, doc["counts"]) == (0, {"verified": 3, "waived": 2})
    last = ok_json(url, "log", "fraud_rules")[-1]
    assert (last["action"], last["details"]["cause"], last["details"]["reason"]) == (
        "waiver.granted", "transactions_raw", "rules unchanged")

    # The default lasts 7 days; 90 days is the most.
    ok(url, "register", "source", "user_profiles", "--version", "v13")
    assert _statuses(url)["fraud_scorer"] == "needs_retest"  # a newer change reopens the gate
    out = ok_json(url, "waive", "fraud_scorer", "--reason", "ok")
    span = datetime.fromisoformat(out["expires_at"]) - datetime.fromisoformat(out["granted_at"])
    assert span == timedelta(days=7)
    events = ok_json(url, "log")
    result = run(url, "waive", "ranker", "--reason", "ok", "--expires", "91d")
    assert result.exit_code == 2
    assert error_line(result) == "Error: A waiver may last at most 90 days (--expires 90d)."
    result = run(url, "waive", "ranker", "--reason", "ok", "--cause", "clicks_raw")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: 'clicks_raw' is not an open cause of 'ranker'; open "
                                  "causes: user_profiles.")
    assert ok_json(url, "log") == events
    out = ok_json(url, "waive", "ranker", "--reason", "ok", "--expires", "90d")
    span = datetime.fromisoformat(out["expires_at"]) - datetime.fromisoformat(out["granted_at"])
    assert span == timedelta(days=90)


def test_waiver_never_covers_an_untested_version(url: str) -> None:
    ok(url, "register", "model", "ranker", "--version", "2")
    result = run(url, "waive", "ranker", "--reason", "trust me")
    assert result.exit_code == 2
    assert error_line(result) == ("Error: 'ranker' is untested; a waiver covers untested "
                                  "upstream changes only.")


def test_check_with_view_reads_the_table_and_its_chart_together(database_url: str) -> None:
    # The Markdown report's chart: the failing nodes and the paths from their causes,
    # from the same read as the result (one snapshot per command).
    from tests.chains import build_example

    with Registry.init(url=database_url, actor="t") as reg:
        build_example(reg)
        assert reg.check_with_view() == (reg.check(), None)
        reg.register(kind="source", name="transactions_raw", version="2")
        result, view = reg.check_with_view()
        assert not result.ok and view is not None
        failing = {e.name for e in result.failing}
        assert failing == {"fraud_scorer", "fraud_rules"}  # ranking_safety pins fraud_scorer
        on_paths = {n for e in result.failing for r in e.reasons for n in r.path}
        assert {n.name for n in view.nodes} == failing | on_paths
        assert {n.name: n.status for n in view.nodes if n.name in failing} == {
            e.name: e.status.value for e in result.failing}
