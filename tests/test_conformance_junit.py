"""`chainml check --format junit` against the schema a real reader enforces.

Jenkins' xUnit plugin validates every JUnit report against its junit-10.xsd before it
reads it, and skips an invalid one whole: a gate whose report is skipped shows nothing.
Each report here, from passing, failing, waived, stale and hostile registries (and one
holding text written before registration refused what XML cannot carry), must validate
with a real XSD validator, and its counts must agree with its testcases, as junitparser
and CI viewers count them. The schema is read from ../shared/conformance (see
tests/shared.py).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from sqlalchemy import create_engine, update

from chainml.db.engine import parse_url
from chainml.db.models import Node
from chainml.registry import Registry
from chainml.render.report import render_check
from chainml.schemas import CheckResult, Reason, Status, StatusEntry
from tests.chains import TESTABLE, build_example
from tests.clirun import PastClock, run
from tests.shared import shared_path

# Characters XML 1.0 forbids, as a registry written before registration refused them
# may hold them, and the render functions may be handed anything.
NOT_XML = "\x01\x07\x0b\x1b\ufffe\uffff"
HOSTILE = ("<script>alert(1)</script> ]]> <![CDATA[x]]> &amp; \" ' \n\r\t "
           "::error::x %0A ${{ secrets.X }} \u202eevil \U0001f680")


@pytest.fixture(scope="module")
def schema() -> Any:
    path = shared_path("conformance", "junit", "jenkins-xunit-junit-10.xsd")
    return xmlschema.XMLSchema(str(path))


def conforms(schema: Any, report: str) -> ET.Element:
    """Validate ``report`` against the XSD and check its counts; return the root."""
    errors = [str(e.reason) for e in schema.iter_errors(report)]
    assert not errors, f"{errors[:3]}\n{report[:2000]}"
    root = ET.fromstring(report.encode("utf-8"))
    suites = root.findall("testsuite")
    assert root.tag == "testsuites" and len(suites) == 1
    suite = suites[0]
    cases = suite.findall("testcase")
    failures = [c for c in cases if c.find("failure") is not None]
    skipped = [c for c in cases if c.find("skipped") is not None]
    assert suite.get("tests") == root.get("tests") == str(len(cases))
    assert suite.get("failures") == root.get("failures") == str(len(failures))
    assert suite.get("errors") == root.get("errors") == "0"
    assert suite.get("skipped") == str(len(skipped))
    assert all(c.get("name") for c in cases)
    return suite


def check_junit(url: str, *args: str, expect: int) -> str:
    result = run(url, "check", "--format", "junit", *args)
    assert result.exit_code == expect, result.output
    assert result.stderr == ""
    return result.stdout


# ---- registries ------------------------------------------------------------------------


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'registry.db'}"


@pytest.fixture
def reg(url: str) -> Iterator[Registry]:
    with Registry.init(url=url, actor="conformance") as registry:
        yield registry


def passing(reg: Registry) -> None:
    build_example(reg)


def failing(reg: Registry) -> None:
    build_example(reg)
    reg.register(kind="source", name="clicks_raw", version="2026-11-08")
    reg.record_test("user_embedding", passed=True)
    reg.record_test("ranker", passed=False, link="https://ci.example/1")
    reg.register(kind="model", name="ranker_v2", version="1", inputs=["click_features"],
                 required_suites=["offline-eval", "shadow"], owner="ranking-team")


def waived(reg: Registry) -> None:
    build_example(reg)
    reg.register(kind="source", name="clicks_raw", version="2026-11-08")
    for name in TESTABLE:
        if reg.status(name)[0].status is Status.NEEDS_RETEST:
            reg.waive(name, reason="the new snapshot only adds a column", expires="7d")


def hostile(reg: Registry) -> None:
    """Every field that reaches the report, as hostile as registration lets it be."""
    owner = "<b onmouseover=alert(1)>x</b> ]]> &amp; ::error::x %0A"
    reg.register(kind="source", name="::error::src", version='"><script>alert(1)</script>',
                 description=HOSTILE, owner=owner, tags=["<t>", "]]>"])
    reg.register(kind="model", name="a/b:c.d-e_f", version="]]>&amp;#quot;%0A::x",
                 inputs=["::error::src"], owner=owner, description=HOSTILE,
                 required_suites=["ev;al$(rm-rf~)`x`", "<suite>"])
    reg.register(kind="model", name="s3://lake/m", version="1", inputs=["::error::src"],
                 owner=owner)
    reg.record_test("s3://lake/m", passed=True, link="javascript:alert(1)", note=HOSTILE)
    reg.register(kind="source", name="::error::src", version="%25%0D%0A")
    reg.waive("s3://lake/m", reason=HOSTILE, expires="1d")


BUILDERS: dict[str, tuple[Callable[[Registry], None], int]] = {
    "empty": (lambda reg: None, 0),
    "passing": (passing, 0),
    "failing": (failing, 1),
    "waived": (waived, 0),
    "hostile": (hostile, 1),
}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_every_report_validates(schema: Any, url: str, reg: Registry, name: str) -> None:
    build, expect = BUILDERS[name]
    build(reg)
    suite = conforms(schema, check_junit(url, expect=expect))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["ok"] == ("true" if expect == 0 else "false")


def test_failing_report_has_a_failure_per_node(schema: Any, url: str, reg: Registry) -> None:
    failing(reg)
    suite = conforms(schema, check_junit(url, expect=1))
    failed = {c.get("name"): c.find("failure") for c in suite.findall("testcase")
              if c.find("failure") is not None}
    assert {"ranker", "ranker_v2", "fraud_scorer", "fraud_rules", "ranking_safety"} <= set(
        failed)
    v2 = failed["ranker_v2"]
    assert v2 is not None and v2.get("type") == "untested"
    assert "--suite offline-eval" in (v2.text or "") and "--suite shadow" in (v2.text or "")


def test_waived_report_counts_the_waivers(schema: Any, url: str, reg: Registry) -> None:
    waived(reg)
    suite = conforms(schema, check_junit(url, expect=0))
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert int(props["count.waived"] or 0) >= 1


def test_stale_is_skipped_and_fails_under_strict(schema: Any, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'stale.db'}"
    with Registry.init(url=url, actor="conformance", clock=PastClock(days=40)) as reg:
        build_example(reg)
        reg.register(kind="model", name="ranker", version="1.4.0",
                     inputs=["click_features", "embedding_features"], max_age="30d")
    suite = conforms(schema, check_junit(url, expect=0))
    assert [c.get("name") for c in suite.findall("testcase")
            if c.find("skipped") is not None] == ["ranker"]
    suite = conforms(schema, check_junit(url, "--strict", expect=1))
    failure = next(c.find("failure") for c in suite.findall("testcase")
                   if c.get("name") == "ranker")
    assert failure is not None and failure.get("type") == "stale"


def test_a_scoped_report_validates(schema: Any, url: str, reg: Registry) -> None:
    failing(reg)
    conforms(schema, check_junit(url, "fraud_rules", "ranker", expect=1))


def test_old_rows_with_characters_xml_forbids_still_validate(schema: Any, url: str,
                                                             reg: Registry) -> None:
    # Written before registration refused them: the report shows them escaped.
    failing(reg)
    engine = create_engine(parse_url(url))
    try:
        with engine.begin() as conn:
            conn.execute(update(Node).where(Node.name == "ranker").values(
                owner=f"team{NOT_XML}", description=NOT_XML, tags=[NOT_XML]))
    finally:
        engine.dispose()
    report = check_junit(url, expect=1)
    suite = conforms(schema, report)
    ranker = next(c for c in suite.findall("testcase") if c.get("name") == "ranker")
    failure = ranker.find("failure")
    assert failure is not None and "owner: team\\x01\\x07\\x0b\\x1b\\ufffe\\uffff" in (
        failure.text or "")


# ---- the render function, handed what no registry holds ------------------------------


def test_unvalidated_results_still_validate(schema: Any) -> None:
    bad = f"{HOSTILE}{NOT_XML}\x00\ud800"
    failing_entries = [
        StatusEntry(name=bad, kind=bad, version=bad, status=Status.NEEDS_RETEST, owner=bad,
                    reasons=[Reason(cause=bad, from_=bad, to=bad, path=[bad], message=bad,
                                    suite=bad)], required_suites=[bad]),
        StatusEntry(name="plain", kind="model", version="1", status=Status.FAILED,
                    reasons=[Reason(cause="plain", message=bad)]),
    ]
    warnings = [StatusEntry(name=bad, kind="model", version="1", status=Status.STALE)]
    result = CheckResult(ok=False, checked=7, scope=[bad], failing=failing_entries,
                         warnings=warnings, counts={bad: 1, "needs_retest": 1})
    suite = conforms(schema, render_check(result, "junit"))
    assert len(suite.findall("testcase")) == 4  # 2 failing, 1 warning, "all 4 other"


def test_the_schema_refuses_what_the_old_report_wrote(schema: Any) -> None:
    # The check above is not vacuous: the report before this fix failed Jenkins' schema.
    old = ('<testsuites name="chainml check" tests="0" failures="0" errors="0" skipped="0">'
           '<testsuite name="chainml check" tests="0" failures="0" errors="0" skipped="0"/>'
           "</testsuites>")
    assert not schema.is_valid(old)
    assert schema.is_valid(old.replace(' skipped="0">', ">", 1))
