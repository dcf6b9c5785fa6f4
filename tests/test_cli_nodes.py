"""The command line for nodes: init, register, promote, show, list, log, db current, --help.

Every test drives ``chainml`` in-process through click's CliRunner, on SQLite and
PostgreSQL; chains the CLI is not under test for are built through the Python API.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from chainml.cli import cli
from chainml.db import migrate
from chainml.db.engine import find_registry, parse_url, redact
from tests.chains import EXAMPLE, TESTABLE
from tests.clirun import ACTOR, error_line, example_registry, ok, ok_json, run

# The commands of the DESIGN.md contract that this part of the CLI owns.
CORE_COMMANDS = {"init", "register", "promote", "show", "list", "impact", "test", "status",
                 "check", "waive", "log", "db"}
NODE_KEYS = {"name", "kind", "owner", "description", "tags", "meta", "needs_tests", "max_age",
             "required_suites", "current_version", "created_at", "retired_at"}


@pytest.fixture
def url(database_url: str) -> str:
    """A registry holding the docs' example chain, every testable node verified."""
    return example_registry(database_url)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
    return out


ALL_COMMANDS = _commands(cli)


# ---- help ----------------------------------------------------------------------------------


def test_top_level_help_lists_every_command() -> None:
    result = ok(None, "--help")
    assert result.stdout.startswith("Usage: chainml [OPTIONS] COMMAND [ARGS]...")
    listed = {line.split()[0] for line in result.stdout.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == set(cli.commands)
    assert CORE_COMMANDS <= listed


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = ok(None, *command, "--help")
    assert result.stdout.startswith(f"Usage: chainml {' '.join(command)} ")
    assert "Traceback" not in result.output
    # -h is the short form everywhere.
    assert ok(None, *command, "-h").stdout == result.stdout


def test_version_option() -> None:
    assert ok(None, "--version").stdout.startswith("chainml, version ")


def test_bare_chainml_shows_the_help_and_succeeds() -> None:
    assert ok(None).stdout == ok(None, "--help").stdout
    for group in ("db", "test"):  # a bare command group is a question too
        assert ok(None, group).stdout == ok(None, group, "--help").stdout


def test_register_help_names_the_kinds() -> None:
    text = ok(None, "register", "--help").stdout
    assert text.startswith("Usage: chainml register [OPTIONS] KIND NAME\n")
    assert "KIND is source, feature, model, policy or consumer." in text


# ---- init and finding the registry -----------------------------------------------------------


def test_init_creates_the_registry_and_a_second_init_is_harmless(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / ".chainml" / "registry.db"
    first = ok(None, "init")
    assert first.stdout == f"Registry ready at sqlite:///{db}\n"
    assert db.is_file()
    ok(None, "register", "source", "clicks_raw", "--version", "1")
    again = ok(None, "init")
    assert again.stdout == first.stdout
    assert [n["name"] for n in ok_json(None, "list")] == ["clicks_raw"]
    assert ok_json(None, "db", "current")["up_to_date"] is True


def test_registry_is_found_from_a_sub_folder(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    ok(None, "init")
    ok(None, "register", "source", "clicks_raw", "--version", "1")
    deep = tmp_path / "src" / "models" / "ranker"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert [n["name"] for n in ok_json(None, "list")] == ["clicks_raw"]
    ok(None, "register", "model", "ranker", "--version", "1", "--input", "clicks_raw")
    assert not (deep / ".chainml").exists()  # written to the registry above, not a new one
    monkeypatch.chdir(tmp_path)
    assert [n["name"] for n in ok_json(None, "list")] == ["clicks_raw", "ranker"]


def test_without_a_registry_commands_say_to_run_init(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if find_registry(tmp_path) is not None:
        pytest.skip(f"a registry exists above {tmp_path}")
    monkeypatch.chdir(tmp_path)
    for args in (["list"], ["show", "x"], ["check"], ["register", "source", "a", "--version", "1"]):
        result = run(None, *args)
        assert result.exit_code == 2, result.output
        assert error_line(result) == (
            "Error: No chainml registry here or in any parent folder; run 'chainml init' to "
            "create .chainml/registry.db, or set CHAINML_DATABASE_URL."
        )
        assert result.stdout == ""
    assert not (tmp_path / ".chainml").exists()


def test_db_option_before_or_after_the_command(database_url: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # No CHAINML_DATABASE_URL: --db alone names the registry, wherever it is given.
    monkeypatch.chdir(tmp_path)
    where = redact(parse_url(database_url))
    assert ok(None, "init", "--db", database_url).stdout == f"Registry ready at {where}\n"
    ok(None, "--db", database_url, "register", "source", "clicks_raw", "--version", "1")
    ok(None, "register", "model", "ranker", "--version", "1", "-i", "clicks_raw",
       "--db", database_url)
    assert [n["name"] for n in ok_json(None, "list", "--db", database_url)] == [
        "clicks_raw", "ranker"]
    assert not (tmp_path / ".chainml").exists()  # nothing written to the current folder


def test_db_current(url: str) -> None:
    assert ok_json(url, "db", "current") == {
        "current": migrate.HEAD, "head": migrate.HEAD, "up_to_date": True}
    assert ok(url, "db", "current").stdout == (
        f"{migrate.HEAD} (chainml expects {migrate.HEAD}: up to date)\n")
    assert ok(url, "db", "upgrade").stdout == f"Schema already at {migrate.HEAD}\n"


# ---- register the example chain from the command line ----------------------------------------


def test_register_the_example_chain_from_the_cli(database_url: str) -> None:
    url = database_url
    ok(url, "init")
    for kind, name, version, inputs in EXAMPLE:
        args = ["register", kind, name, "--version", version]
        for spec in inputs:
            args += ["--input", spec]
        out = ok_json(url, *args)
        assert out == {"node": name, "version": version, "created_node": True,
                       "created_version": True, "current_changed": True,
                       "previous_version": None, "updated_fields": [], "marked": 0}

    listed = ok_json(url, "list")
    assert [n["name"] for n in listed] == sorted(name for _, name, _, _ in EXAMPLE)
    for entry in listed:
        assert set(entry) == NODE_KEYS
    by_name = {n["name"]: n for n in listed}
    for kind, name, version, _ in EXAMPLE:
        assert by_name[name]["kind"] == kind
        assert by_name[name]["current_version"] == version
        assert by_name[name]["owner"] is None
        assert by_name[name]["needs_tests"] is (name in TESTABLE)
    assert {n["kind"] for n in listed} == {"source", "feature", "model", "policy", "consumer"}
    models = ok_json(url, "list", "--kind", "model")
    assert [n["name"] for n in models] == ["fraud_scorer", "ranker", "user_embedding"]

    safety = ok_json(url, "show", "ranking_safety")
    assert set(NODE_KEYS) <= set(safety)
    assert safety["kind"] == "policy"
    assert safety["current_version"] == "7"
    pinned = [{"name": "fraud_scorer", "pin": "5.2.0"}, {"name": "ranker", "pin": None}]
    assert safety["inputs"] == pinned
    assert safety["feedback"] == []
    assert safety["consumers"] == ["feed_app"]
    [v] = safety["versions"]
    assert (v["label"], v["current"], v["inputs"], v["created_by"]) == ("7", True, pinned, ACTOR)
    status = safety["status"]
    assert (status["name"], status["version"], status["status"]) == ("ranking_safety", "7",
                                                                     "untested")
    assert status["reasons"][0]["message"] == "version 7 has no test run"

    scorer = ok_json(url, "show", "fraud_scorer")
    assert scorer["consumers"] == ["fraud_rules", "ranking_safety"]  # the pinned one too
    assert scorer["inputs"] == [{"name": "embedding_features", "pin": None},
                                {"name": "txn_features", "pin": None}]
    assert ok_json(url, "show", "clicks_raw")["status"] is None  # needs no tests

    text = ok(url, "show", "ranking_safety").stdout
    assert text.splitlines()[0] == "ranking_safety  (policy)  current version: 7"
    assert "  inputs: fraud_scorer@5.2.0, ranker\n" in text
    assert "  consumers: feed_app\n" in text
    assert "  status: untested\n" in text

    table = ok(url, "list").stdout.splitlines()
    assert len(table) == len(EXAMPLE) + 1
    assert table[0].split() == ["NAME", "KIND", "VERSION", "OWNER"]
    assert table[1].split() == ["checkout_service", "consumer", "2026-11-03"]
    assert table[0].index("KIND") == table[1].index("consumer")  # a header over its column


def test_json_of_an_empty_registry(database_url: str) -> None:
    ok(database_url, "init")
    assert ok_json(database_url, "list") == []
    assert ok_json(database_url, "status") == []
    assert ok_json(database_url, "log") == []
    assert ok(database_url, "status").stdout == "No node needs tests yet.\n"
    assert ok(database_url, "list").stdout == "No nodes yet; add one with 'chainml register'.\n"
    assert ok(database_url, "check").stdout == (
        "check passed: no nodes to check\n"
        "no node needs tests yet (models and policies do, and any node given --needs-tests)\n"
        "\n"
        "totals: 0 checked; 0 failing, 0 warnings\n")
    ok(database_url, "register", "source", "s", "--version", "1")
    assert ok(database_url, "check", "s").stdout.splitlines()[1:3] == [
        "scope: s", "nothing in this scope needs tests yet (models and policies do, and any "
        "node given --needs-tests)"]


# ---- versions and inputs -------------------------------------------------------------------


def _current_inputs(url: str, name: str) -> list[dict[str, str | None]]:
    return ok_json(url, "show", name)["inputs"]


def test_new_version_without_input_keeps_inputs_and_no_inputs_clears(url: str) -> None:
    before = _current_inputs(url, "ranking_safety")
    result = ok(url, "register", "policy", "ranking_safety", "--version", "8")
    assert result.stdout == "Registered ranking_safety 8 (was 7).\n"
    assert _current_inputs(url, "ranking_safety") == before  # pin included
    shown = ok_json(url, "show", "ranking_safety")
    assert [(v["label"], v["current"]) for v in shown["versions"]] == [("7", False), ("8", True)]
    assert shown["versions"][1]["inputs"] == before

    ok(url, "register", "policy", "ranking_safety", "--version", "9", "--no-inputs")
    assert _current_inputs(url, "ranking_safety") == []
    assert ok_json(url, "show", "ranker")["consumers"] == []
    # A later version without --input keeps the (empty) current inputs.
    ok(url, "register", "policy", "ranking_safety", "--version", "10")
    assert _current_inputs(url, "ranking_safety") == []

    ok(url, "register", "policy", "ranking_safety", "--version", "11", "-i", "ranker")
    assert _current_inputs(url, "ranking_safety") == [{"name": "ranker", "pin": None}]
    events = ok_json(url, "log", "ranking_safety")
    registered = [e for e in events if e["action"] == "version.registered"]
    assert [(e["version"], e["details"]["inputs"], e["details"]["previous"])
            for e in registered] == [
        ("7", ["fraud_scorer@5.2.0", "ranker"], None),
        ("8", ["fraud_scorer@5.2.0", "ranker"], "7"),
        ("9", [], "8"),
        ("10", [], "9"),
        ("11", ["ranker"], "10"),
    ]


def test_reregistering_the_same_content_is_a_no_op(url: str) -> None:
    events = len(ok_json(url, "log"))
    for args in (
        ["register", "model", "ranker", "--version", "1.4.0"],
        ["register", "model", "ranker", "--version", "1.4.0",
         "--input", "embedding_features", "--input", "click_features"],  # order is irrelevant
        ["register", "policy", "ranking_safety", "--version", "7",
         "--input", "ranker", "--input", "fraud_scorer@5.2.0"],
    ):
        result = ok(url, *args)
        assert result.stdout == (
            f"{args[2]} {args[4]} is already registered with this content; nothing changed.\n")
    out = ok_json(url, "register", "model", "ranker", "--version", "1.4.0")
    assert out["created_version"] is out["current_changed"] is False
    assert out["updated_fields"] == []
    assert len(ok_json(url, "log")) == events

    # Re-registering an older label does not move the current version (promote's job).
    ok(url, "register", "model", "ranker", "--version", "1.5.0", "--meta", "run=7")
    events = len(ok_json(url, "log"))
    result = ok(url, "register", "model", "ranker", "--version", "1.4.0")
    assert "nothing changed" in result.stdout
    assert ok_json(url, "show", "ranker")["current_version"] == "1.5.0"
    ok(url, "register", "model", "ranker", "--version", "1.5.0", "--meta", "run=7")
    assert len(ok_json(url, "log")) == events


def test_version_meta_belongs_to_the_version(url: str) -> None:
    ok(url, "register", "model", "ranker", "--version", "1.5.0",
       "--meta", "artifact=s3://models/ranker/1.5.0", "--meta", "commit=abc123",
       "--meta", "window=2026-10-01..2026-10-31")
    shown = ok_json(url, "show", "ranker")
    meta = {"artifact": "s3://models/ranker/1.5.0", "commit": "abc123",
            "window": "2026-10-01..2026-10-31"}
    assert [v["meta"] for v in shown["versions"]] == [{}, meta]
    assert shown["meta"] == {}  # node metadata untouched
    last = ok_json(url, "log", "ranker")[-1]
    assert (last["action"], last["version"], last["details"]["meta"]) == (
        "version.registered", "1.5.0", meta)
    # A value may hold '='; only the first one splits.
    ok(url, "register", "model", "ranker", "--version", "1.6.0", "--meta", "q=a=b")
    assert ok_json(url, "show", "ranker")["versions"][-1]["meta"] == {"q": "a=b"}


def test_node_settings_are_logged_as_node_updated(url: str) -> None:
    versions = len(ok_json(url, "show", "ranker")["versions"])
    result = ok(url, "register", "model", "ranker", "--version", "1.4.0",
                "--owner", "ranking-team", "--tag", "prod", "--tag", "tier-1",
                "--node-meta", "slack=#ranking", "--description", "Ranks the feed.")
    assert result.stdout == ("ranker 1.4.0 already registered; updated description, node_meta, "
                             "owner, tags.\n")
    shown = ok_json(url, "show", "ranker")
    assert (shown["owner"], shown["tags"], shown["meta"], shown["description"]) == (
        "ranking-team", ["prod", "tier-1"], {"slack": "#ranking"}, "Ranks the feed.")
    assert len(shown["versions"]) == versions  # no new version
    assert shown["versions"][0]["meta"] == {}
    last = ok_json(url, "log", "ranker")[-1]
    assert last["action"] == "node.updated"
    assert last["version"] is None
    assert last["actor"] == ACTOR
    assert last["details"] == {
        "before": {"description": None, "node_meta": {}, "owner": None, "tags": []},
        "after": {"description": "Ranks the feed.", "node_meta": {"slack": "#ranking"},
                  "owner": "ranking-team", "tags": ["prod", "tier-1"]},
    }
    # The same settings again: nothing changes and nothing is logged.
    events = len(ok_json(url, "log"))
    again = ok_json(url, "register", "model", "ranker", "--version", "1.4.0",
                    "--owner", "ranking-team", "--tag", "prod", "--tag", "tier-1")
    assert again["updated_fields"] == []
    assert len(ok_json(url, "log")) == events
    # Settings change with a new version too: both are logged.
    ok(url, "register", "model", "ranker", "--version", "1.5.0", "--owner", "search-team",
       "--max-age", "30d", "--require-suite", "offline-eval", "--no-needs-tests")
    shown = ok_json(url, "show", "ranker")
    assert (shown["owner"], shown["max_age"], shown["required_suites"],
            shown["needs_tests"]) == ("search-team", "30d", ["offline-eval"], False)
    actions = [e["action"] for e in ok_json(url, "log", "ranker")[-2:]]
    assert actions == ["node.updated", "version.registered"]
    ok(url, "register", "model", "ranker", "--version", "1.5.0", "--max-age", "none")
    assert ok_json(url, "show", "ranker")["max_age"] is None


def test_promote(url: str) -> None:
    ok(url, "register", "model", "ranker", "--version", "1.5.0")
    assert ok_json(url, "status", "ranker")[0]["status"] == "untested"
    result = ok(url, "promote", "ranker", "1.4.0")
    assert result.stdout == ("ranker is now at 1.4.0 (was 1.5.0); 1 downstream node(s) "
                             "re-evaluated.\n")
    assert ok_json(url, "show", "ranker")["current_version"] == "1.4.0"
    assert ok_json(url, "status", "ranker")[0]["status"] == "verified"  # judged by 1.4.0's runs
    last = ok_json(url, "log", "ranker")[-1]
    assert (last["action"], last["version"], last["details"]) == (
        "version.promoted", "1.4.0", {"previous": "1.5.0"})
    events = len(ok_json(url, "log"))
    assert ok(url, "promote", "ranker", "1.4.0").stdout == (
        "ranker is already at 1.4.0; nothing changed.\n")
    assert len(ok_json(url, "log")) == events
    out = ok_json(url, "promote", "ranker", "1.5.0")
    assert (out["current_changed"], out["previous_version"]) == (True, "1.4.0")


def test_log(url: str) -> None:
    events = ok_json(url, "log", "ranker")
    assert [(e["action"], e["node"], e["version"]) for e in events] == [
        ("node.created", "ranker", None),
        ("version.registered", "ranker", "1.4.0"),
        ("test.recorded", "ranker", "1.4.0"),
    ]
    for e in events:
        assert set(e) == {"id", "at", "actor", "action", "node", "version", "env", "details"}
        assert e["actor"] == "api"
    assert events[1]["details"]["inputs"] == ["click_features", "embedding_features"]
    assert events[2]["details"]["outcome"] == "passed"
    everything = ok_json(url, "log")
    assert len(everything) == 2 * len(EXAMPLE) + len(TESTABLE)
    assert [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    assert ok_json(url, "log", "--limit", "2") == everything[-2:]
    text = ok(url, "log", "ranker").stdout.splitlines()
    assert len(text) == 3 and "version.registered" in text[1] and "ranker 1.4.0" in text[1]


def test_a_crlf_in_a_description_is_one_line_break(database_url: str, tmp_path: Path) -> None:
    """Text pasted from Windows: CRLF (and a lone CR) is stored as LF, and a row stored
    before that shows one line break in show, the page and the picture, not an empty line."""
    from sqlalchemy import create_engine, text

    url = database_url
    ok(url, "init")
    ok(url, "register", "source", "a", "--version", "1", "--description", "one\r\ntwo\rthree")
    assert ok_json(url, "show", "a")["description"] == "one\ntwo\nthree"
    chain = tmp_path / "chain.yaml"
    chain.write_text('chainml: 1\nnodes:\n  - {name: b, kind: source, version: "1", '
                     'description: "x\\r\\ny"}\n', encoding="utf-8")
    assert run(url, "apply", str(chain)).exit_code == 0
    assert ok_json(url, "show", "b")["description"] == "x\ny"

    engine = create_engine(parse_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE node SET description = :d WHERE name = 'a'"),
                         {"d": "old\r\nrow"})
    finally:
        engine.dispose()
    assert ok_json(url, "show", "a")["description"] == "old\nrow"
    assert "  description: old\nrow\n" in ok(url, "show", "a").stdout
    page = run(url, "graph", "--format", "html", "-o", "-").stdout
    assert "old\\nrow" in page and "old\\n\\nrow" not in page
    dot = run(url, "graph", "--format", "dot", "-o", "-").stdout
    assert "old row" in dot and "old  row" not in dot
