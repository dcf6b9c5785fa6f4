"""Output formats of `chainml check` (chainml.render.report): pure functions, no database."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from chainml.errors import InvalidInput
from chainml.render.report import FORMATS, MAX_GROUPS, render_check
from chainml.schemas import CheckResult, Reason, Status, StatusEntry

HOSTILE = ("<script>alert(1)</script> ]]> \x00 \x1b[31mred\n::error::injected"
           " | `tick` [x](http://e.vil) &amp;")


def change(cause: str, old: str, new: str, path: list[str]) -> Reason:
    """A needs_retest reason as the registry words it."""
    via = " -> ".join(path)
    return Reason(cause=cause, from_=old, to=new, path=path,
                  message=f"ancestor {cause}: tested with {old}, now {new}, via {via}")


def entry(name: str, status: Status, reasons: list[Reason] | None = None, *,
          kind: str = "model", version: str = "1", owner: str | None = None) -> StatusEntry:
    return StatusEntry(name=name, kind=kind, version=version, status=status,
                       reasons=reasons or [], owner=owner)


@pytest.fixture
def small() -> CheckResult:
    """Six failing nodes over five causes, one stale warning, 40 checked."""
    feats = ["clicks_raw", "click_feats"]
    failing = [
        entry("fraud_scorer", Status.NEEDS_RETEST,
              [change("clicks_raw", "1", "2", [*feats, "fraud_scorer"])], version="4"),
        entry("fraud_policy", Status.NEEDS_RETEST,
              [change("clicks_raw", "1", "2", [*feats, "fraud_scorer", "fraud_policy"])],
              kind="policy", version="1.2"),
        entry("ranker", Status.NEEDS_RETEST,
              [change("clicks_raw", "1", "2", [*feats, "ranker"]),
               change("embed", "2", "3", ["embed", "ranker"])], version="7"),
        entry("embed", Status.UNTESTED, [Reason(cause="embed", to="3", path=["embed"],
                                                message="version 3 has no test run")],
              version="3"),
        entry("churn", Status.FAILED, [Reason(
            cause="churn", to="2024-11-01", path=["churn"], suite="offline-eval",
            message="the latest run of suite 'offline-eval' of version 2024-11-01 failed")],
              version="2024-11-01"),
        entry("ltv", Status.UNTESTED, [Reason(
            cause="ltv", to="5", path=["ltv"], suite="shadow",
            message="required suite 'shadow' has no run for version 5")], version="5"),
    ]
    stale = entry("pricing", Status.STALE, [Reason(
        cause="pricing", to="0.9", path=["pricing"],
        message="version 0.9 is older than its maximum age")], version="0.9")
    counts = {"verified": 31, "waived": 2, "needs_retest": 3, "untested": 2, "failed": 1,
              "stale": 1}
    return CheckResult(ok=False, checked=40, counts=counts, failing=failing, warnings=[stale])


@pytest.fixture
def passing() -> CheckResult:
    stale = entry("pricing", Status.STALE, [Reason(cause="pricing", message="45 days old")])
    return CheckResult(ok=True, checked=40, counts={"verified": 37, "waived": 2, "stale": 1},
                       warnings=[stale])


@pytest.fixture
def big() -> CheckResult:
    """2,000 failing nodes: 1,000 behind clicks_raw, 600 behind embed, 400 untested."""
    failing = [entry(f"model_{i:04d}", Status.NEEDS_RETEST,
                     [change("clicks_raw", "1", "2", ["clicks_raw", f"model_{i:04d}"])])
               for i in range(1000)]
    failing += [entry(f"ranker_{i:04d}", Status.NEEDS_RETEST,
                      [change("embed", "2", "3", ["embed", f"ranker_{i:04d}"])])
                for i in range(600)]
    failing += [entry(f"new_{i:04d}", Status.UNTESTED) for i in range(400)]
    return CheckResult(ok=False, checked=2400, failing=failing,
                       counts={"verified": 400, "needs_retest": 1600, "untested": 400})


@pytest.fixture
def hostile() -> CheckResult:
    """Hostile text in every untrusted field: names, versions, owners, causes, messages."""
    bad = entry("evil`|<b>", Status.NEEDS_RETEST,
                [Reason(cause="up,stream:x", from_=HOSTILE, to="2\n::warning::x", path=["a"],
                        message=HOSTILE)],
                version="1<script>\x00", owner=HOSTILE)
    bad2 = entry("ok_node", Status.FAILED, [Reason(cause="ok_node", message=HOSTILE)],
                 kind="model\x1b[0m")
    return CheckResult(ok=False, checked=3, failing=[bad, bad2],
                       counts={"needs_retest": 1, "failed": 1, "verified": 1})


# --- dispatch ----------------------------------------------------------------------

def test_unknown_format_lists_the_valid_ones(small: CheckResult) -> None:
    with pytest.raises(InvalidInput, match="text, json, junit, github, markdown"):
        render_check(small, "yaml")


def test_limit_must_be_positive(small: CheckResult) -> None:
    with pytest.raises(InvalidInput, match="at least 1"):
        render_check(small, "text", limit=0)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_renders_every_fixture(fmt: str, small: CheckResult, passing: CheckResult,
                                            big: CheckResult, hostile: CheckResult) -> None:
    for result in (small, passing, big, hostile):
        out = render_check(result, fmt)
        assert out.endswith("\n")
        assert "\x00" not in out and "\x1b" not in out


# --- text --------------------------------------------------------------------------

def test_text_groups_by_cause_with_clearing_commands(small: CheckResult) -> None:
    out = render_check(small, "text")
    lines = out.splitlines()
    assert lines[0] == "check failed: 6 of 40 nodes are not verified"
    assert ("clicks_raw 1 -> 2 is untested by 3 nodes: fraud_policy, fraud_scorer, ranker"
            in lines)
    assert "embed 2 -> 3 is untested by 1 node: ranker" in lines
    # the biggest group comes first
    assert out.index("clicks_raw 1 -> 2") < out.index("embed 2 -> 3")
    assert "chainml test record NODE --passed" in out
    assert 'chainml waive NODE --reason "WHY" --cause clicks_raw' in out
    assert "1 node has a current version with no test run: embed@3" in out
    assert "chainml test record embed --passed" in out
    assert "failed the latest test run of suite offline-eval: churn@2024-11-01" in out
    assert "chainml test record churn --passed --suite offline-eval" in out
    assert "no passing run of required suite shadow: ltv@5" in out
    assert "chainml test record ltv --passed --suite shadow" in out
    assert "1 node is stale" in out and "--strict" in out
    assert lines[-1].startswith("totals: 40 checked (31 verified,")
    assert lines[-1].endswith("6 failing, 1 warning")
    assert "→" not in out  # ASCII chrome only


def test_text_names_inputs_that_appeared_or_went_away() -> None:
    added = Reason(cause="geo", to="5", path=["geo", "m"], message="geo (5) is upstream ...")
    removed = Reason(cause="old_src", from_="2", path=[], message="no longer upstream")
    failing = [entry("m", Status.NEEDS_RETEST, [added, removed])]
    out = render_check(CheckResult(ok=False, checked=1, failing=failing), "text")
    assert "new upstream geo 5 is untested by 1 node: m" in out
    assert "removed upstream old_src (was 2) is untested by 1 node: m" in out
    assert "chainml waive m --reason \"WHY\" --cause old_src" in out


def test_text_passing_verdict(passing: CheckResult) -> None:
    out = render_check(passing, "text")
    assert out.splitlines()[0] == "check passed: all 40 nodes verified (2 waived, 1 stale)"
    assert "chainml register model pricing --version NEW" in out


def test_text_strict_makes_stale_fail() -> None:
    stale = entry("m", Status.STALE, [Reason(cause="m", message="too old")], kind="policy")
    out = render_check(CheckResult(ok=False, strict=True, checked=10, failing=[stale]), "text")
    lines = out.splitlines()
    assert lines[0] == "check failed (strict): 1 of 10 nodes is not verified"
    assert "1 node is stale: older than the max age: m@1" in lines
    assert "  to clear: retrain, then chainml register policy m --version NEW ..." in lines


def test_text_nothing_to_check() -> None:
    out = render_check(CheckResult(ok=True, checked=0), "text")
    assert out.splitlines()[0] == "check passed: no nodes to check"


def test_text_stays_readable_for_2000_failing_nodes(big: CheckResult) -> None:
    out = render_check(big, "text")
    lines = out.splitlines()
    assert len(lines) < 80
    assert max(map(len, lines)) <= 200
    assert lines[0] == "check failed: 2000 of 2400 nodes are not verified"
    assert lines[2].startswith("clicks_raw 1 -> 2 is untested by 1000 nodes: model_0000, ")
    assert "... and 950 more" in out  # 1,000 - 50
    assert "... and 550 more" in out and "... and 350 more" in out
    assert "model_0049" in out and "model_0050" not in out
    assert lines[-1] == ("totals: 2400 checked (400 verified, 400 untested, 1600 needs_retest); "
                         "2000 failing, 0 warnings")


def test_text_caps_the_number_of_groups() -> None:
    failing = [entry(f"m{i}", Status.NEEDS_RETEST, [change(f"src{i}", "1", "2", [f"src{i}"])])
               for i in range(MAX_GROUPS + 10)]
    out = render_check(CheckResult(ok=False, checked=100, failing=failing), "text")
    assert out.count("is untested by 1 node") == MAX_GROUPS
    assert "... and 10 more groups covering 10 nodes" in out


def test_text_limit_applies_per_group(small: CheckResult) -> None:
    out = render_check(small, "text", limit=1)
    assert "clicks_raw 1 -> 2 is untested by 3 nodes: fraud_policy, ... and 2 more" in out


def test_text_escapes_control_characters(hostile: CheckResult) -> None:
    out = render_check(hostile, "text")
    assert "\\x1b[31m" in out and "\\x00" in out and "\\x0a::warning::x" in out
    assert not any(line.startswith("::") for line in out.splitlines())


# --- required suites ---------------------------------------------------------------
# A run without --suite decides nothing for a node with required suites: the commands
# that clear it must name each suite, or following them changes nothing.

SUITES = {"m": ["eval", "shadow"]}


def _never_tested() -> CheckResult:
    """m requires eval and shadow and has no run at all: one reason, naming no suite."""
    m = entry("m", Status.UNTESTED, [Reason(cause="m", to="1", path=["m"],
                                            message="version 1 has no test run")])
    return CheckResult(ok=False, checked=1, failing=[m], counts={"untested": 1})


def _shadow_missing() -> CheckResult:
    """m's eval run passed; shadow has none."""
    m = entry("m", Status.UNTESTED, [Reason(
        cause="m", to="1", path=["m"], suite="shadow",
        message="required suite 'shadow' has no run for version 1")])
    return CheckResult(ok=False, checked=1, failing=[m], counts={"untested": 1})


EVAL = "chainml test record m --passed --suite eval"
SHADOW = "chainml test record m --passed --suite shadow"


def _junit_text(result: CheckResult, required_suites: dict[str, list[str]]) -> str:
    """The failure text of the first failing node."""
    xml = render_check(result, "junit", required_suites=required_suites)
    failure = _suite(xml).find("testcase/failure")
    assert failure is not None
    return failure.text or ""


def test_never_tested_node_gets_one_command_per_required_suite() -> None:
    result = _never_tested()
    text = render_check(result, "text", required_suites=SUITES)
    lines = text.splitlines()
    assert "1 node has no passing run of required suite eval: m@1" in lines
    assert "1 node has no passing run of required suite shadow: m@1" in lines
    assert f"  to clear: test the current version, then {EVAL}" in lines
    assert f"  to clear: test the current version, then {SHADOW}" in lines
    assert "chainml test record m --passed\n" not in text  # the command that looped
    assert "no test run: m@1" not in text

    github = render_check(result, "github", required_suites=SUITES)
    assert github.rstrip("\n").endswith(f"%0Ato clear: {EVAL}%0Ato clear: {SHADOW}")

    markdown = render_check(result, "markdown", required_suites=SUITES).splitlines()
    assert ("- 1 node has no passing run of required suite `eval`. To clear: test the current "
            f"version, then `{EVAL}`") in markdown
    assert ("- 1 node has no passing run of required suite `shadow`. To clear: test the "
            f"current version, then `{SHADOW}`") in markdown

    junit = _junit_text(result, required_suites=SUITES)
    assert junit.endswith(f"to clear:\n  {EVAL}\n  {SHADOW}")


def test_without_required_suites_a_never_tested_node_gets_the_plain_command() -> None:
    for suites in (None, {}, {"other": ["eval"]}):
        out = render_check(_never_tested(), "text", required_suites=suites)
        assert "1 node has a current version with no test run: m@1" in out
        assert "  to clear: test the current version, then chainml test record m --passed\n" in out
        assert "--suite" not in out


@pytest.mark.parametrize("suites", [SUITES, None])
def test_a_missing_suite_is_named_alone(suites: dict[str, list[str]] | None) -> None:
    # The reason names the missing suite; the suite that passed is not asked for again.
    result = _shadow_missing()
    for fmt in ("text", "github", "markdown", "junit"):
        out = render_check(result, fmt, required_suites=suites)
        assert SHADOW in out, fmt
        assert "--suite eval" not in out, fmt
    assert f"  to clear: test the current version, then {SHADOW}" in render_check(
        result, "text", required_suites=suites).splitlines()


def test_failed_suite_names_that_suite() -> None:
    m = entry("m", Status.FAILED, [Reason(
        cause="m", to="1", path=["m"], suite="shadow",
        message="the latest run of suite 'shadow' of version 1 failed")])
    result = CheckResult(ok=False, checked=1, failing=[m])
    text = render_check(result, "text", required_suites=SUITES)
    assert f"  to clear: fix and retest, then {SHADOW}" in text.splitlines()
    assert "--suite eval" not in text
    assert _junit_text(result, required_suites=SUITES).endswith(f"to clear:\n  {SHADOW}")


def test_retest_with_required_suites_names_every_suite() -> None:
    failing = [entry("m", Status.NEEDS_RETEST, [change("src", "1", "2", ["src", "m"])]),
               entry("plain", Status.NEEDS_RETEST, [change("src", "1", "2", ["src", "plain"])])]
    result = CheckResult(ok=False, checked=2, failing=failing)
    lines = render_check(result, "text", required_suites=SUITES).splitlines()
    # The nodes that need a run of each suite form their own group.
    assert "src 1 -> 2 is untested by 1 node: plain" in lines
    assert "  to clear: retest, then chainml test record plain --passed" in lines
    at = lines.index("src 1 -> 2 is untested by 1 node requiring suites eval, shadow: m")
    assert lines[at + 1:at + 4] == [
        f"  to clear: retest every required suite, then {EVAL}",
        f"       and: {SHADOW}",
        '        or: accept the change: chainml waive m --reason "WHY" --cause src',
    ]
    markdown = render_check(result, "markdown", required_suites=SUITES)
    assert (f"To clear: retest every required suite, then `{EVAL}` and `{SHADOW}`; or accept "
            'the change: `chainml waive m --reason "WHY" --cause src`') in markdown
    github = render_check(result, "github", required_suites=SUITES)
    m_line = next(line for line in github.splitlines() if "title=chainml%3A m " in line)
    assert f"%0Ato clear: {EVAL}%0Ato clear: {SHADOW}%0Ato clear: chainml waive m" in m_line
    cases = {c.get("name"): c.find("failure") for c in _suite(
        render_check(result, "junit", required_suites=SUITES)).findall("testcase")}
    m_failure = cases["m"]
    assert m_failure is not None
    assert f"to clear:\n  {EVAL}\n  {SHADOW}\n  chainml waive m" in (m_failure.text or "")


def test_retest_of_a_single_required_suite() -> None:
    failing = [entry("m", Status.NEEDS_RETEST, [change("src", "1", "2", ["src", "m"])])]
    out = render_check(CheckResult(ok=False, checked=1, failing=failing), "text",
                       required_suites={"m": ["eval"]})
    assert "src 1 -> 2 is untested by 1 node requiring suite eval: m" in out
    assert f"  to clear: retest, then {EVAL}\n" in out


def test_nodes_with_the_same_suites_share_a_group() -> None:
    failing = [entry(n, Status.NEEDS_RETEST, [change("src", "1", "2", ["src", n])])
               for n in ("a", "b", "c")]
    failing += [entry(n, Status.UNTESTED, [Reason(cause=n, to="1", path=[n],
                                                  message="version 1 has no test run")])
                for n in ("x", "y")]
    suites = {"a": ["eval", "shadow"], "b": ["eval", "shadow"], "x": ["eval"], "y": ["eval"]}
    out = render_check(CheckResult(ok=False, checked=5, failing=failing), "text",
                       required_suites=suites)
    assert "src 1 -> 2 is untested by 2 nodes requiring suites eval, shadow: a, b" in out
    assert "chainml test record NODE --passed --suite eval\n       and: chainml test record " \
           "NODE --passed --suite shadow\n" in out
    assert "src 1 -> 2 is untested by 1 node: c" in out
    assert "2 nodes have no passing run of required suite eval: x@1, y@1" in out


def test_suite_names_are_quoted_and_escaped_per_format() -> None:
    odd = "ev;al$(rm -rf ~)`x`"
    result = _never_tested()
    suites = {"m": [odd]}
    quoted = "chainml test record m --passed --suite 'ev;al$(rm -rf ~)`x`'"
    assert f"then {quoted}\n" in render_check(result, "text", required_suites=suites)
    assert quoted in render_check(result, "github", required_suites=suites)
    assert quoted in _junit_text(result, required_suites=suites)
    markdown = render_check(result, "markdown", required_suites=suites)
    assert "`x`" not in markdown  # a backtick cannot open a code span
    assert "\\`x\\`" in markdown


def test_missing_suites() -> None:
    from chainml.render.report import missing_suites

    assert missing_suites(_never_tested().failing[0], ["eval", "shadow"]) == ["eval", "shadow"]
    assert missing_suites(_never_tested().failing[0]) == []
    assert missing_suites(_shadow_missing().failing[0], ["eval", "shadow"]) == ["shadow"]
    retest = entry("m", Status.NEEDS_RETEST, [change("src", "1", "2", ["src", "m"])])
    assert missing_suites(retest, ["eval", "shadow"]) == []


def test_json_ignores_required_suites(small: CheckResult) -> None:
    assert render_check(small, "json", required_suites={"ranker": ["eval"]}) == \
        render_check(small, "json")


# --- json --------------------------------------------------------------------------

def test_json_round_trips(small: CheckResult) -> None:
    out = render_check(small, "json")
    assert '"ok": false' in out and '"failing": [' in out and '"from": "1"' in out
    assert CheckResult.model_validate_json(out) == small


def test_json_survives_lone_surrogates(hostile: CheckResult) -> None:
    # model_dump_json refuses a lone surrogate; the fallback replaces it with U+FFFD.
    odd = hostile.model_copy(update={"scope": ["a\ud800b"]})
    out = render_check(odd, "json")
    back = CheckResult.model_validate_json(out)
    assert back.scope == ["a\ufffdb"]
    assert back.failing == hostile.failing


# --- junit -------------------------------------------------------------------------

def _suite(xml: str) -> ET.Element:
    suite = ET.fromstring(xml.encode()).find("testsuite")
    assert suite is not None
    return suite


def test_junit_counts_and_failures(small: CheckResult) -> None:
    suite = _suite(render_check(small, "junit"))
    cases = suite.findall("testcase")
    assert suite.get("name") == "chainml check"
    assert suite.get("tests") == str(len(cases)) == "8"  # 6 failing + 1 stale + the rest
    assert suite.get("failures") == "6" and suite.get("skipped") == "1"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["checked"] == "40" and props["ok"] == "false"
    failures = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert set(failures) == {"fraud_scorer", "fraud_policy", "ranker", "embed", "churn", "ltv"}
    ranker = failures["ranker"]
    assert ranker is not None and ranker.get("type") == "needs_retest"
    assert "--cause embed" in (ranker.text or "")
    assert [c.get("name") for c in cases if c.find("skipped") is not None] == ["pricing"]
    assert cases[-1].get("name") == "all 33 other checked nodes pass"


def test_xml_replaces_what_xml_1_0_cannot_carry() -> None:
    # A safety net under the visible escaping: ElementTree would write these verbatim.
    from chainml.render.report import _xml

    assert _xml("a\x00b\x1bc\ud800d\ufffee\uffff") == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffd"
    assert _xml("tab\tnl\ncr\r é 🙂 \ufffd") == "tab\tnl\ncr\r é 🙂 \ufffd"


def test_junit_passing(passing: CheckResult) -> None:
    suite = _suite(render_check(passing, "junit"))
    assert suite.get("failures") == "0" and suite.get("tests") == "2"


def test_junit_hostile_text_stays_text(hostile: CheckResult) -> None:
    xml = render_check(hostile, "junit")
    suite = _suite(xml)  # parses although the input held \x00, \x1b and ]]>
    assert not list(suite.iter("script")) and not list(suite.iter("b"))
    names = [c.get("name") for c in suite.findall("testcase")]
    assert "evil`|<b>" in names
    failure = suite.find("testcase/failure")
    assert failure is not None and "]]>" in (failure.text or "")
    assert "<script>" in (failure.text or "")  # as text, escaped in the file
    assert "<script>" not in xml


# --- github ------------------------------------------------------------------------

def test_github_one_annotation_per_node(small: CheckResult) -> None:
    lines = render_check(small, "github").splitlines()
    assert len(lines) == 7
    assert sum(line.startswith("::error title=") for line in lines) == 6
    assert lines[-1].startswith("::warning title=chainml%3A pricing is stale::")
    churn = next(line for line in lines if "churn" in line)
    assert churn.endswith("%0Ato clear: chainml test record churn --passed --suite offline-eval")


def test_github_cannot_be_injected(hostile: CheckResult) -> None:
    out = render_check(hostile, "github")
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(re.match(r"::(error|warning) title=[^:,]*::", line) for line in lines)
    # the newline in the message is shown as \x0a: GitHub cannot read it as a line break
    assert "\\x0a::error::injected" in out
    assert "\n::error::injected" not in out and "%0A::error::injected" not in out
    # ',' and ':' in the node's name would end the title property; they are escaped
    assert "evil`|<b>" in out and "title=chainml%3A evil" in out


def test_github_caps_annotations(big: CheckResult) -> None:
    # GitHub shows 10 error annotations a step: 9 nodes and one that stands for the rest
    # (tests/test_conformance_github.py holds the limits in full).
    lines = render_check(big, "github", limit=50).splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("::error title=chainml%3A 1991 more failing nodes::")
    assert render_check(big, "github", limit=3).splitlines()[-1].startswith(
        "::error title=chainml%3A 1997 more failing nodes::")


def test_github_passing_is_a_notice() -> None:
    out = render_check(CheckResult(ok=True, checked=5), "github")
    assert out == "::notice title=chainml check::check passed: all 5 nodes verified\n"


# --- markdown ----------------------------------------------------------------------

def test_markdown_comment(small: CheckResult) -> None:
    out = render_check(small, "markdown")
    lines = out.splitlines()
    assert lines[0] == "### chainml check: failed"
    assert "**check failed: 6 of 40 nodes are not verified.**" in lines
    assert "| node | kind | version | status | why |" in lines
    assert any(line.startswith("| `churn` | `model` | `2024-11-01` | failed |") for line in lines)
    assert ("- `clicks_raw` `1` → `2` is untested by 3 nodes. To clear: retest, then "
            "`chainml test record NODE --passed`; or accept the change: "
            '`chainml waive NODE --reason "WHY" --cause clicks_raw`') in lines
    assert "<details>" not in out  # no chart given


def test_markdown_truncates_rows(big: CheckResult) -> None:
    lines = render_check(big, "markdown", limit=10).splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert len(rows) == 10
    assert "| ... and 1990 more | | | | |" in lines


def test_markdown_escapes_hostile_text(hostile: CheckResult) -> None:
    out = render_check(hostile, "markdown")
    assert "<script>" not in out and "<b>" not in out and "&lt;script&gt;" in out
    assert "](http" not in out  # no link syntax survives
    assert "&amp;amp;" in out  # an entity in the input is shown, not decoded
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3  # header + 2 nodes: no newline broke a row
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 6  # 5 cells, no stray separators


def test_markdown_renders_without_html_or_links(hostile: CheckResult) -> None:
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(
        render_check(hostile, "markdown"))
    assert "<script" not in html and "<a " not in html and "<b>" not in html
    assert html.count("<tr>") == 3


def test_markdown_embeds_mermaid_in_details(small: CheckResult) -> None:
    chart = 'flowchart LR\n  clicks_raw --> click_feats\n  x["```\x00"]'
    out = render_check(small, "markdown", mermaid=chart)
    assert "\x00" not in out
    assert "<details><summary>Affected part of the chain</summary>" in out
    # a fence longer than the ``` inside the chart, so the chart cannot close it
    assert "\n````mermaid\nflowchart LR\n" in out
    assert out.rstrip().endswith("````\n\n</details>")


def test_markdown_says_what_a_cut_chart_leaves_out(small: CheckResult) -> None:
    from chainml.render.mermaid import mermaid_chart
    from chainml.render.view import GraphView, ViewEdge, ViewNode

    nodes = [ViewNode(name=f"s{i}", kind="source") for i in range(12)]
    nodes += [ViewNode(name=f"m{j}", kind="model", status="needs_retest") for j in range(48)]
    edges = [ViewEdge(upstream=f"s{i}", downstream=f"m{j}") for i in range(12) for j in range(48)]
    chart = mermaid_chart(GraphView(nodes=nodes, edges=edges), max_nodes=60)
    out = render_check(small, "markdown", mermaid=chart)
    assert ("<details><summary>Affected part of the chain (7 of 60 nodes and 84 of 576 edges "
            "left out)</summary>") in out
    assert ("\nThe chart leaves out 7 of 60 nodes and 84 of 576 edges, as Mermaid draws at most "
            "500 edges; `chainml graph --format html` draws the whole chain.\n\n```mermaid\n"
            ) in out
    assert chart.text.strip("\n") in out
    whole = mermaid_chart(GraphView(nodes=nodes[:13], edges=edges[:1]))
    out = render_check(small, "markdown", mermaid=whole)
    assert "<summary>Affected part of the chain</summary>" in out and "left out" not in out
