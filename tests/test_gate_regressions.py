"""Reproductions where the gate passed on an untested combination, or reasons were wrong.

Each was found by comparing chainml with a plain model of DESIGN.md (issues 11 and
17) and fails on the code before lineage became a set of pairs, causes became
ancestors and waivers accepted exact facts. Each runs through the real CLI, as
typed by a user, on every backend.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.clirun import error_line, ok, run
from tests.conftest import Clock


def script(url: str, text: str) -> None:
    """Run ``;``-separated chainml commands, each of which must succeed."""
    ok(url, "init")
    for line in text.split(";"):
        ok(url, *shlex.split(line))


def status(url: str, node: str) -> dict:
    out = run(url, "status", node, "--json")
    assert out.exit_code == 0, out.output
    (entry,) = json.loads(out.stdout)
    return entry


def triples(entry: dict) -> set[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return {(r["cause"], tuple(r["tested_with"]), tuple(r["now"])) for r in entry["reasons"]}


def test_rollback_after_waiver_reopens_an_untested_live_path(database_url: str) -> None:
    """Issue 17 #1: tested with s2 {1, 2}, waived {1, 3}, now {1}."""
    script(database_url, "register source s2 --version 1 ; register feature f3 --version 1 "
           "--input s2 ; register source s2 --version 2 ; register model m7 --version 1 "
           "--input s2@1 --input f3 ; test record m7 --passed ; register source s2 --version 3 "
           "; waive m7 --reason x ; promote s2 1")
    entry = status(database_url, "m7")
    assert entry["status"] == "needs_retest"
    assert triples(entry) == {("s2", ("1", "2"), ("1",))}
    assert run(database_url, "check").exit_code == 1


def test_a_pin_that_restores_the_tested_version_is_no_reason(database_url: str) -> None:
    """Issue 17 #2: p3 now reads s1 1 through m2's pin, as it was tested."""
    script(database_url, "register source s1 --version 1 ; register model m2 --version 1 "
           "--input s1 ; register policy p3 --version 1 --input m2 ; test record p3 --passed ; "
           "register source s1 --version 2 ; register model m2 --version 2 --input s1@1")
    entry = status(database_url, "p3")
    assert triples(entry) == {("m2", ("1",), ("2",))}
    assert "s1" not in json.dumps(entry["reasons"])


def test_waiving_a_cause_that_is_not_open_is_refused(database_url: str) -> None:
    """Issue 17 #3: s0's pairs are {2} then and now; only f1 is a cause."""
    script(database_url, "register source s0 --version 1 ; register feature f1 --version 1 "
           "--input s0 ; register source s0 --version 2 ; register policy p3 --version 1 "
           "--input f1 ; test record p3 --passed ; promote s0 1 ; register feature f1 "
           "--version 2 --input s0@2")
    assert triples(status(database_url, "p3")) == {("f1", ("1",), ("2",))}
    result = run(database_url, "waive", "p3", "--reason", "x", "--cause", "s0")
    assert result.exit_code == 2
    assert "'s0' is not an open cause of 'p3'" in error_line(result)


def test_a_waiver_does_not_cover_a_cause_that_was_not_upstream_when_granted(
        database_url: str) -> None:
    """Issue 17 #4: f2 was not upstream when the waiver was granted."""
    script(database_url, "register feature f2 --version 1 ; register model m3 --version 1 "
           "--input f2 ; register model m4 --version 1 --input m3 ; test record m4 --passed ; "
           "register feature f2 --version 2 ; register model m3 --version 2 --no-inputs ; "
           "waive m4 --reason x ; promote m3 1")
    entry = status(database_url, "m4")
    assert entry["status"] == "needs_retest"
    assert triples(entry) == {("f2", ("1",), ("2",))}
    assert run(database_url, "check").exit_code == 1


def test_an_ancestor_added_after_the_test_is_new_not_changed(database_url: str) -> None:
    """Issue 17 #5: p1 never read s2."""
    script(database_url, "register feature f0 --version 1 ; register policy p1 --version 1 "
           "--input f0 ; test record p1 --passed ; register source s2 --version 1 ; register "
           "feature f0 --version 2 --input s2 ; register source s2 --version 2")
    entry = status(database_url, "p1")
    assert triples(entry) == {("f0", ("1",), ("2",)), ("s2", (), ("2",))}
    (s2,) = [r for r in entry["reasons"] if r["cause"] == "s2"]
    assert s2["message"] == "s2 (2) is upstream since the last test, via s2 -> f0 -> p1"


def test_pinned_and_live_ancestor_keeps_both_versions(database_url: str) -> None:
    """Issue 11: M reads A pinned at 1 and live through B; tested at A=2, waived at A=3,
    then A promoted back to 1 - M was never tested with A=1 through B."""
    script(database_url, "register source A --version 1 ; register source A --version 2 ; "
           "register source A --version 3 ; promote A 2 ; register feature B --version 1 "
           "--input A ; register model M --version 1 --input B --input A@1 ; "
           "test record M --passed ; promote A 3 ; waive M --reason x ; promote A 1")
    entry = status(database_url, "M")
    assert entry["status"] == "needs_retest"
    assert triples(entry) == {("A", ("1", "2"), ("1",))}
    assert run(database_url, "check").exit_code == 1


def test_a_cause_that_left_the_lineage_is_named_and_waivable(database_url: str) -> None:
    """Issue 11: after a structural change the reason names what changed, and waiving it
    by that cause clears the node."""
    script(database_url, "register source C --version 1 ; register feature F --version 1 "
           "--input C ; register model M --version 1 --input F ; test record M --passed ; "
           "register feature F --version 2 --no-inputs")
    entry = status(database_url, "M")
    assert triples(entry) == {("F", ("1",), ("2",)), ("C", ("1",), ())}
    (gone,) = [r for r in entry["reasons"] if r["cause"] == "C"]
    assert gone["message"] == "C (tested with 1) is no longer upstream"
    ok(database_url, "waive", "M", "--reason", "x", "--cause", "F")
    assert status(database_url, "M")["status"] == "needs_retest"  # C is still open
    ok(database_url, "waive", "M", "--reason", "x", "--cause", "C")
    assert status(database_url, "M")["status"] == "waived"
    assert run(database_url, "check").exit_code == 0


def test_a_newer_run_ends_a_waiver(database_url: str) -> None:
    script(database_url, "register source s --version 1 ; register model m --version 1 "
           "--input s ; test record m --passed ; register source s --version 2 ; "
           "waive m --reason x")
    assert status(database_url, "m")["status"] == "waived"
    ok(database_url, "test", "record", "m", "--failed")
    ok(database_url, "test", "record", "m", "--passed", "--version", "1")
    # The last run was taken with s 2: verified; the waiver no longer matters.
    assert status(database_url, "m")["status"] == "verified"
    ok(database_url, "promote", "s", "1")
    ok(database_url, "promote", "s", "2")
    assert status(database_url, "m")["status"] == "verified"


def test_latest_run_follows_commit_order_not_the_writers_clock(database_url: str) -> None:
    """Issue 11: a failing run recorded after a passing one by a machine whose clock is
    90 s behind must decide the status."""
    from chainml.registry import Registry

    ahead, behind = Clock(), Clock()
    behind.advance(seconds=-90)
    with Registry.init(url=database_url, clock=ahead) as one, \
            Registry(database_url, clock=behind) as two:
        one.register(kind="source", name="s", version="1")
        one.register(kind="model", name="m", version="1", inputs=["s"])
        one.record_test("m", passed=True)
        two.record_test("m", passed=False)
        (entry,) = one.status("m")
        assert entry.status.value == "failed"
        assert not one.check().ok


def test_prune_retires_and_keeps_old_versions_intact(database_url: str,
                                                     tmp_path: Path) -> None:
    """Issue 11: apply --prune deleted rows, rewrote other nodes' old versions and then
    crashed a promote with an internal KeyError."""
    script(database_url, "register source a --version 1 ; register source c --version 1 ; "
           "register model m --version 1 --input a --input c ; test record m --passed ; "
           "register model m --version 2 --input a")
    chain = tmp_path / "chain.yaml"
    chain.write_text("chainml: 1\nnodes:\n  - {name: a, kind: source, version: '1'}\n"
                     "  - {name: m, kind: model, version: '2', inputs: [a]}\n")
    ok(database_url, "apply", str(chain), "--prune")
    shown = json.loads(ok(database_url, "show", "m", "--json").stdout)
    old = next(v for v in shown["versions"] if v["label"] == "1")
    assert [i["name"] for i in old["inputs"]] == ["a", "c"]  # history unchanged
    names = [n["name"] for n in json.loads(ok(database_url, "list", "--json").stdout)]
    assert names == ["a", "m"]
    result = run(database_url, "promote", "m", "1")
    assert result.exit_code == 2
    assert "retired node 'c'" in error_line(result)
    ok(database_url, "register", "source", "c", "--version", "1")  # revives it
    ok(database_url, "promote", "m", "1")
    assert status(database_url, "m")["status"] == "verified"  # tested with a 1, c 1


def test_retire_is_refused_while_read_and_leaves_the_chain(database_url: str,
                                                          tmp_path: Path) -> None:
    script(database_url, "register source s --version 1 ; register model m --version 1 "
           "--input s ; test record m --passed")
    result = run(database_url, "retire", "s")
    assert result.exit_code == 2
    assert "'m' still reads it" in error_line(result)
    ok(database_url, "retire", "m", "--reason", "replaced")
    assert json.loads(ok(database_url, "status", "--json").stdout) == []
    assert json.loads(ok(database_url, "impact", "s", "--json").stdout)["impacted"] == []
    for command in (["impact", "m"], ["status", "m"], ["test", "record", "m", "--passed"]):
        result = run(database_url, *command)
        assert result.exit_code == 2, command
        assert "retired" in error_line(result)
    actions = [e["action"] for e in json.loads(ok(database_url, "log", "m", "--json").stdout)]
    assert actions[-1] == "node.retired"
    chart = tmp_path / "chain.mmd"
    assert run(database_url, "graph", "--format", "mermaid", "-o", str(chart)).exit_code == 0
    assert '"s<br/>' in chart.read_text() and '"m<br/>' not in chart.read_text()
    assert "- name: m\n" not in ok(database_url, "export").stdout
    result = run(database_url, "graph", "--focus", "m")
    assert result.exit_code == 2 and "retired" in error_line(result)
    assert json.loads(ok(database_url, "show", "m", "--json").stdout)["retired_at"]
    ok(database_url, "retire", "s")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_retiring_a_node_read_as_feedback_is_refused(database_url: str) -> None:
    script(database_url, "register model m --version 1 ; register source s --version 1 "
           "--feedback m")
    result = run(database_url, "retire", "m")
    assert result.exit_code == 2
    assert "'s' still reads it" in error_line(result)
