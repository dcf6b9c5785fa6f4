"""Characters XML 1.0 forbids: refused at registration, replaced at output.

A description holding U+FFFE (or a C0 control other than tab, LF and CR, a lone
surrogate, U+FFFF) used to be stored, and then `graph --format svg` wrote an SVG no XML
parser opens and `--format html` failed. Every free-text field now refuses them with one
sentence naming the field and the code point (exit 2, registry unchanged), through the
Python API, the command line and chain files; and every XML writer (SVG through dot,
the HTML page, JUnit) writes U+FFFD for what a registry written before the rule holds.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, update

from chainml.db.engine import parse_url
from chainml.db.models import Node
from chainml.errors import InvalidInput
from chainml.names import NOT_XML
from chainml.registry import Registry
from tests.chains import build_example
from tests.clirun import error_line, ok, raw_dump, run
from tests.render_fixtures import need_binary

# One of each sort: C0 controls, U+FFFE and U+FFFF.
FORBIDDEN = ["\x01", "\x07", "\x0b", "\x0c", "\x1b", "\x1f", "\ufffe", "\uffff"]
# Allowed by XML 1.0 (and kept): tab, LF, CR, C1 controls, U+FFFD, a plane-1 noncharacter.
ALLOWED = "tab\there\nnew line\r\ncr \x85 \x9b \ufffd \U0001fffe \U0001f680"


def code(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def example(url: str) -> Registry:
    """The example chain with ranker and others needing a retest (waivers apply)."""
    registry = Registry.init(url=url, actor="xml")
    build_example(registry)
    registry.register(kind="source", name="clicks_raw", version="2026-11-08")
    return registry


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Registry]]:
    """One registry for the refusals: each must leave it as it was."""
    url = f"sqlite:///{tmp_path_factory.mktemp('xml') / 'registry.db'}"
    with example(url) as registry:
        yield url, registry


@pytest.fixture
def url(refusing: tuple[str, Registry]) -> str:
    return refusing[0]


@pytest.fixture
def reg(refusing: tuple[str, Registry]) -> Registry:
    return refusing[1]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[str, Registry]]:
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    with example(url) as registry:
        yield url, registry


def model(**extra: Any) -> Callable[[Registry], Any]:
    spec = {"kind": "model", "name": "ranker", "version": "9",
            "inputs": ["click_features", "embedding_features"], **extra}
    return lambda r: r.register(**spec)


# field -> a call that puts TEXT into that field through the Python API
API: dict[str, Callable[[str], Callable[[Registry], Any]]] = {
    "description": lambda t: model(description=f"about {t}"),
    "owner": lambda t: model(owner=f"team{t}"),
    "tag": lambda t: model(tags=["ok", f"pii{t}"]),
    "link": lambda t: lambda r: r.record_test("ranker", passed=True, link=f"https://ci/{t}"),
    "note": lambda t: lambda r: r.record_test("ranker", passed=False, note=f"flaky{t}"),
    "reason": lambda t: lambda r: r.waive("ranker", reason=f"harmless{t}"),
}


@pytest.mark.parametrize("ch", FORBIDDEN, ids=code)
@pytest.mark.parametrize("field", list(API))
def test_api_refuses(url: str, reg: Registry, field: str, ch: str) -> None:
    before = raw_dump(url)
    with pytest.raises(InvalidInput) as info:
        API[field](ch)(reg)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert message.startswith(f"The {field} ") and f" contains {code(ch)}, " in message
    assert "\n" not in message and ch not in message  # shown escaped, on one line
    assert raw_dump(url) == before


def test_api_refuses_in_retire_reason(url: str, reg: Registry) -> None:
    before = raw_dump(url)
    with pytest.raises(InvalidInput, match="The reason 'gone\\\\ufffe' contains U\\+FFFE"):
        reg.retire("feed_app", reason="gone\ufffe")
    assert raw_dump(url) == before


def test_names_labels_and_suites_refuse_them_by_their_own_rules(reg: Registry) -> None:
    # Stricter rules (ASCII names; printable labels and suites) speak first.
    for call in (lambda: reg.register(kind="source", name="a\ufffe", version="1"),
                 lambda: reg.register(kind="source", name="a", version="1\uffff"),
                 lambda: model(required_suites=["eval\x07"])(reg),
                 lambda: reg.record_test("ranker", passed=True, suite="s\ufffe")):
        with pytest.raises(InvalidInput, match=r"contains '\\(uff|x07)"):
            call()


def test_allowed_text_is_kept(fresh: tuple[str, Registry]) -> None:
    _, reg = fresh
    model(description=ALLOWED, meta={"ansi": "\x1b[31m\ufffe"})(reg)
    reg.record_test("ranker", passed=True, note=ALLOWED, link=ALLOWED)
    node = reg.node("ranker")
    assert node.versions[-1].meta == {"ansi": "\x1b[31m\ufffe"}  # JSON, not XML text
    assert "\U0001fffe" in (node.description or "") and "\x9b" in (node.description or "")


# ---- the command line --------------------------------------------------------------------

CLI: dict[str, Callable[[str], tuple[str, ...]]] = {
    "description": lambda t: ("register", "model", "m2", "--version", "1", "--input",
                              "click_features", "--description", t),
    "owner": lambda t: ("register", "model", "m2", "--version", "1", "--owner", t),
    "tag": lambda t: ("register", "model", "m2", "--version", "1", "--tag", t),
    "link": lambda t: ("test", "record", "ranker", "--passed", "--link", t),
    "note": lambda t: ("test", "record", "ranker", "--failed", "--note", t),
    "reason": lambda t: ("waive", "ranker", "--reason", t),
}


@pytest.mark.parametrize("ch", ["\x07", "\ufffe", "\uffff"], ids=code)
@pytest.mark.parametrize("field", [*CLI, "retire reason"])
def test_cli_refuses(url: str, reg: Registry, field: str, ch: str) -> None:
    args = (("retire", "feed_app", "--reason", f"x{ch}") if field == "retire reason"
            else CLI[field](f"x{ch}"))
    before = raw_dump(url)
    result = run(url, *args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    line = error_line(result)
    what = field.split()[-1]
    assert line == (f"Error: The {what} {repr('x' + ch)} contains {code(ch)}, a character XML "
                    "1.0 does not allow (SVG, HTML and JUnit reports could not show it); "
                    "remove it.")
    assert raw_dump(url) == before


# ---- chain files ---------------------------------------------------------------------------


@pytest.mark.parametrize(("suffix", "text"), [
    ("yaml", 'chainml: 1\nnodes:\n  - {name: fresh, kind: source, version: "1", '
             'description: "x\\uFFFEy"}\n'),
    ("yaml", 'chainml: 1\nnodes:\n  - {name: fresh, kind: source, version: "1", '
             'description: "bell\\a"}\n'),
    ("json", json.dumps({"chainml": 1, "nodes": [
        {"name": "fresh", "kind": "source", "version": "1", "description": "x\uffff"}]})),
    # An existing node, re-registered through the file.
    ("json", json.dumps({"chainml": 1, "nodes": [
        {"name": "clicks_raw", "kind": "source", "version": "2026-11-09",
         "description": "esc\x1b[0m"}]})),
], ids=["yaml-fffe", "yaml-bell", "json-ffff", "json-existing-esc"])
def test_chain_file_refused(url: str, reg: Registry, tmp_path: Path, suffix: str,
                            text: str) -> None:
    path = tmp_path / f"chain.{suffix}"
    path.write_text(text, encoding="utf-8")
    before = raw_dump(url)
    result = run(url, "apply", str(path))
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert re.fullmatch(rf"Error: {re.escape(str(path))} \(node '[a-z_]+'\): The description "
                        r"'.*' contains U\+[0-9A-F]{4}, a character XML 1\.0 does not allow "
                        r"\(SVG, HTML and JUnit reports could not show it\); remove it\.", line)
    assert raw_dump(url) == before
    with pytest.raises(InvalidInput, match=r"contains U\+"):
        reg.apply_text(text, f"again.{suffix}", dry_run=True)


def test_chain_file_owner_and_tags_are_refused_too(url: str, reg: Registry) -> None:
    before = raw_dump(url)
    for field in ('owner: "team\\uFFFE"', 'tags: ["pii\\uFFFF"]'):
        with pytest.raises(InvalidInput):
            reg.apply_text("chainml: 1\nnodes:\n  - {name: fresh, kind: source, version: '1', "
                           f"{field}}}\n", "c.yaml")
    assert raw_dump(url) == before


# ---- output: what a registry written before the rule holds ---------------------------------

OLD = "old\x01\x07\x0b\x1b\ufffe\uffff text"


@pytest.fixture
def old_registry(fresh: tuple[str, Registry]) -> str:
    """Free text that registration refuses today, written straight into the rows."""
    url = fresh[0]
    engine = create_engine(parse_url(url))
    try:
        with engine.begin() as conn:
            for name in ("ranker", "clicks_raw", "feed_app"):
                conn.execute(update(Node).where(Node.name == name).values(
                    description=OLD, owner=OLD, tags=[OLD, "ok"]))
    finally:
        engine.dispose()
    return url


def drawn(url: str, fmt: str, out: Path) -> None:
    result = run(url, "graph", "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def no_xml_forbidden(text: str) -> None:
    assert NOT_XML.search(text) is None, repr(NOT_XML.search(text))


def test_old_rows_render_as_svg(old_registry: str, tmp_path: Path) -> None:
    need_binary("dot", "apt-get install graphviz")
    out = tmp_path / "chain.svg"
    drawn(old_registry, "svg", out)
    text = out.read_text(encoding="utf-8")
    no_xml_forbidden(text)
    ET.fromstring(out.read_bytes())
    assert "\ufffd" in text  # shown as the replacement character, not dropped


def test_old_rows_render_as_html(old_registry: str, tmp_path: Path) -> None:
    need_binary("dot", "apt-get install graphviz")
    out = tmp_path / "chain.html"
    drawn(old_registry, "html", out)
    page = out.read_text(encoding="utf-8")
    no_xml_forbidden(page)
    svg = page[page.index("<svg"):page.index("</svg>") + len("</svg>")]
    ET.fromstring(svg.encode("utf-8"))  # the inline drawing is well-formed XML


def test_old_rows_render_as_dot_mermaid_and_junit(old_registry: str, tmp_path: Path) -> None:
    for fmt in ("dot", "mermaid"):
        out = tmp_path / f"chain.{fmt}"
        drawn(old_registry, fmt, out)
        no_xml_forbidden(out.read_text(encoding="utf-8"))
    result = run(old_registry, "check", "--format", "junit")
    assert result.exit_code == 1, result.output
    no_xml_forbidden(result.stdout)
    ET.fromstring(result.stdout.encode("utf-8"))


def test_old_rows_are_still_read_as_they_are(old_registry: str) -> None:
    # Only new text is refused; JSON carries the old text unchanged.
    assert json.loads(ok(old_registry, "show", "ranker", "--json").stdout)["description"] == OLD
