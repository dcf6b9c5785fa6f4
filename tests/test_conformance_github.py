"""`chainml check --format github` within what GitHub Actions shows.

GitHub shows at most 10 error and 10 warning annotations per step and drops the rest
silently (actions/toolkit, docs/problem-matchers.md), and the runner cuts a message at
4,096 characters. The report must stay inside both: the most important nodes annotated
(failed, then untested, then needs_retest, then stale; by name within each), one last
annotation per level standing for the rest, and every message short enough, measured
as the runner measures it (escaped, in UTF-16 code units), with the commands that clear
the node kept whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from chainml.registry import Registry
from chainml.render.report import render_check
from chainml.schemas import CheckResult, Reason, Status, StatusEntry
from tests.clirun import run

PER_LEVEL = 10
MAX_MESSAGE = 4096
COMMAND = re.compile(r"::(error|warning|notice)(?: title=([^:]*))?::(.*)")


@dataclass
class Annotation:
    level: str
    title: str
    message: str  # as GitHub shows it
    escaped: int  # length of the message as written, in UTF-16 code units


def utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def unescape(data: str) -> str:
    return data.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":") \
        .replace("%2C", ",").replace("%25", "%")


def annotations(out: str) -> list[Annotation]:
    """Every line must be one workflow command; parsed as the runner reads them."""
    found = []
    for line in out.splitlines():
        match = COMMAND.fullmatch(line)
        assert match, line[:200]
        level, title, data = match.groups()
        found.append(Annotation(level, unescape(title or ""), unescape(data), utf16(data)))
    return found


def within_limits(out: str) -> list[Annotation]:
    found = annotations(out)
    for level in ("error", "warning", "notice"):
        assert sum(a.level == level for a in found) <= PER_LEVEL, level
    for a in found:
        assert a.escaped < MAX_MESSAGE, (a.title, a.escaped)
    return found


def node(name: str, status: Status, reasons: list[Reason] | None = None,
         suites: list[str] | None = None) -> StatusEntry:
    return StatusEntry(name=name, kind="model", version="1", status=status,
                       reasons=reasons or [], required_suites=suites or [])


def change(cause: str, node_name: str, hops: int = 1) -> Reason:
    path = [cause, *(f"intermediate_{i}" for i in range(hops)), node_name]
    return Reason(cause=cause, from_="1.0.0", to="2.0.0", path=path,
                  message=f"ancestor {cause}: tested with 1.0.0, now 2.0.0, via "
                          f"{' -> '.join(path)}")


def fifteen() -> CheckResult:
    """5 failed, 5 untested and 5 needing a retest, named against that order."""
    failing = [node(f"a_retest_{i}", Status.NEEDS_RETEST, [change("src", f"a_retest_{i}")])
               for i in range(5)]
    failing += [node(f"m_untested_{i}", Status.UNTESTED) for i in range(5)]
    failing += [node(f"z_failed_{i}", Status.FAILED) for i in range(5)]
    return CheckResult(ok=False, checked=40, failing=failing[::-1])


# ---- at most 10 annotations per level ------------------------------------------------


def test_fifteen_failing_nodes_make_ten_errors_most_important_first() -> None:
    found = within_limits(render_check(fifteen(), "github"))
    assert [a.level for a in found] == ["error"] * PER_LEVEL
    assert [a.title.split()[1] for a in found[:9]] == [
        *(f"z_failed_{i}" for i in range(5)), *(f"m_untested_{i}" for i in range(4))]
    summary = found[-1]
    assert summary.title == "chainml: 6 more failing nodes"
    lines = summary.message.splitlines()
    assert lines[0].startswith("check failed: 15 of 40 nodes are not verified.")
    assert "at most 10 error annotations per step" in lines[0]
    assert lines[1:7] == ["- m_untested_4@1 is untested",
                          *(f"- a_retest_{i}@1 needs a retest" for i in range(5))]
    assert "'chainml check'" in lines[-1]  # where the full report is


@pytest.mark.parametrize(("count", "annotated"), [(1, 1), (9, 9), (10, 10), (11, 9), (500, 9)])
def test_a_summary_only_when_nodes_are_left_out(count: int, annotated: int) -> None:
    failing = [node(f"n{i:03d}", Status.UNTESTED) for i in range(count)]
    found = within_limits(render_check(CheckResult(ok=False, checked=count, failing=failing),
                                       "github"))
    nodes = [a for a in found if "more failing nodes" not in a.title]
    assert len(nodes) == annotated
    assert len(found) == annotated + (count > annotated)
    if count > annotated:
        assert found[-1].title == f"chainml: {count - annotated} more failing nodes"


def test_errors_and_warnings_have_ten_each() -> None:
    failing = fifteen().failing
    stale = [node(f"stale_{i:02d}", Status.STALE) for i in range(25)]
    result = CheckResult(ok=False, checked=60, failing=failing, warnings=stale)
    found = within_limits(render_check(result, "github"))
    errors = [a for a in found if a.level == "error"]
    warnings = [a for a in found if a.level == "warning"]
    assert len(errors) == len(warnings) == PER_LEVEL
    assert warnings[0].title == "chainml: stale_00 is stale"
    assert warnings[-1].title == "chainml: 16 more warnings"
    assert found.index(errors[-1]) < found.index(warnings[0])  # errors first


def test_a_lower_limit_annotates_fewer() -> None:
    found = within_limits(render_check(fifteen(), "github", limit=3))
    assert len(found) == 4 and found[-1].title == "chainml: 12 more failing nodes"
    listed = [line for line in found[-1].message.splitlines() if line.startswith("- ")]
    assert listed[-1] == "- ... and 9 more"  # --limit names, then a count
    assert len(within_limits(render_check(fifteen(), "github", limit=15))) == PER_LEVEL


def test_the_summary_of_thousands_stays_short() -> None:
    failing = [node(f"model_with_a_rather_long_name_{i:05d}", Status.NEEDS_RETEST)
               for i in range(5000)]
    found = within_limits(render_check(CheckResult(ok=False, checked=5000, failing=failing),
                                       "github", limit=1000))
    assert found[-1].title == "chainml: 4991 more failing nodes"
    assert re.search(r"^- \.\.\. and \d+ more$", found[-1].message, re.M)


def test_passing_is_one_notice() -> None:
    found = within_limits(render_check(CheckResult(ok=True, checked=3), "github"))
    assert [a.level for a in found] == ["notice"]


# ---- 4,096 characters a message --------------------------------------------------------


def test_many_changed_ancestors_keep_the_commands() -> None:
    wide = node("wide", Status.NEEDS_RETEST,
                [change(f"upstream_source_{i:03d}", "wide", hops=12) for i in range(80)],
                suites=["offline-eval", "shadow"])
    (found,) = within_limits(render_check(CheckResult(ok=False, checked=1, failing=[wide]),
                                          "github"))
    lines = found.message.splitlines()
    assert lines[0] == "wide@1 (model) needs a retest:"
    assert lines[-3:] == ["to clear: chainml test record wide --passed --suite offline-eval",
                          "to clear: chainml test record wide --passed --suite shadow",
                          'to clear: chainml waive wide --reason "WHY"']  # all causes at once
    assert re.fullmatch(r"- \.\.\. and \d+ more reasons", lines[-4])
    assert lines[1].startswith("- ancestor upstream_source_000: ")
    assert "--cause" not in found.message


def test_one_cause_keeps_its_waiver_command() -> None:
    one = node("m", Status.NEEDS_RETEST, [change("src", "m")])
    (found,) = within_limits(render_check(CheckResult(ok=False, checked=1, failing=[one]),
                                          "github"))
    assert found.message.splitlines()[-1] == \
        'to clear: chainml waive m --reason "WHY" --cause src'


def test_the_limit_is_measured_after_escaping() -> None:
    # '%' triples when escaped and an emoji is two UTF-16 code units: a message of 4,000
    # characters as shown would be cut.
    heavy = [Reason(cause=f"c{i}", message=("%" * 200) + ("\U0001f680" * 150))
             for i in range(30)]
    entry = node("m", Status.NEEDS_RETEST, heavy)
    (found,) = within_limits(render_check(CheckResult(ok=False, checked=1, failing=[entry]),
                                          "github"))
    assert found.escaped > 3000  # filled, not emptied
    assert found.message.splitlines()[-1] == 'to clear: chainml waive m --reason "WHY"'


def test_commands_that_cannot_all_fit_are_counted() -> None:
    suites = [f"suite_{i:02d}_" + "s" * 80 for i in range(60)]
    entry = node("m", Status.UNTESTED, suites=suites)
    (found,) = within_limits(render_check(CheckResult(ok=False, checked=1, failing=[entry]),
                                          "github"))
    commands = [line for line in found.message.splitlines() if line.startswith("to clear: ")]
    kept = len(commands) - 1
    assert commands[:kept] == [f"to clear: chainml test record m --passed --suite {suite}"
                               for suite in suites[:kept]]
    assert commands[-1] == (f"to clear: ... and {60 - kept} more commands; chainml check "
                            "lists them all")


# ---- through the command line, on a real registry ---------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


def test_cli_fifteen_untested_nodes(url: str) -> None:
    with Registry.init(url=url, actor="gh") as reg:
        reg.register(kind="source", name="src", version="1")
        for i in range(15):
            reg.register(kind="model", name=f"model_{i:02d}", version="1", inputs=["src"])
    result = run(url, "check", "--format", "github")
    assert result.exit_code == 1, result.output
    found = within_limits(result.stdout)
    assert len(found) == PER_LEVEL
    assert found[-1].title == "chainml: 6 more failing nodes"


def test_cli_node_with_many_changed_ancestors(url: str) -> None:
    sources = [f"upstream_source_with_a_long_name_{i:03d}" for i in range(60)]
    with Registry.init(url=url, actor="gh") as reg:
        for name in sources:
            reg.register(kind="source", name=name, version="2026-11-01")
        reg.register(kind="model", name="wide", version="1", inputs=sources)
        reg.record_test("wide", passed=True)
        for name in sources:
            reg.register(kind="source", name=name, version="2026-11-08")
    result = run(url, "check", "--format", "github")
    assert result.exit_code == 1, result.output
    (found,) = within_limits(result.stdout)
    lines = found.message.splitlines()
    assert lines[-2:] == ["to clear: chainml test record wide --passed",
                          'to clear: chainml waive wide --reason "WHY"']
    assert re.fullmatch(r"- \.\.\. and 50 more reasons", lines[-3])
