"""Mermaid flowcharts (chainml.render.mermaid): structure and hostile text."""

from __future__ import annotations

import re

import pytest

from chainml.render.mermaid import MERMAID_SHAPES, mermaid_text, to_mermaid, to_mermaid_block
from chainml.render.text import STATUS_COLORS
from chainml.render.view import mark_impact
from tests.render_fixtures import HOSTILE, HOSTILE_LABELS, fraud_view, hostile_view

NODE_LINE = re.compile(r'^    (n\d+)(\[\(|\(\[|\{\{|\[/|\[)"([^"\n]*)"(\)\]|\]\)|\}\}|\\\]|\])$')
EDGE_LINE = re.compile(r'^    (n\d+) (-->|-\.->)(?:\|"([^"\n]*)"\|)? (n\d+)$')


def parse(source: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Nodes {id: (opening, label)} and edges [(up, arrow, label, down)]; fails on stray lines."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    lines = source.splitlines()
    if lines[0] == "---":
        assert lines[2] == "---" and lines[1].startswith('title: "')
        lines = lines[3:]
    assert lines[0] == "flowchart LR"
    for line in lines[1:]:
        if m := NODE_LINE.match(line):
            nodes[m[1]] = (m[2], m[3])
        elif m := EDGE_LINE.match(line):
            edges.append((m[1], m[2], m[3] or "", m[4]))
        else:
            assert re.fullmatch(r"    (classDef \w+ [\w:#,.\-]+|class [n\d,]+ \w+)", line), line
    return nodes, edges


def test_fixture_structure() -> None:
    view = fraud_view()
    source = to_mermaid(view)
    nodes, edges = parse(source)
    assert len(nodes) == 12 and len(edges) == 13
    for i, node in enumerate(view.nodes):
        opening, label = nodes[f"n{i}"]
        assert opening == MERMAID_SHAPES[node.kind][0]
        assert label == f"{node.name}<br/>{node.version}"
    assert [e for e in edges if e[1] == "-.->"] == [("n10", "-.->", "feedback", "n0")]
    assert [e for e in edges if e[2].startswith("@")] == [("n4", "-->", "@4", "n5")]
    for status, color in STATUS_COLORS.items():
        key = status or "none"
        assert f"classDef st_{key} fill:{color}," in source
    assert "class n5 st_verified" in source and "class n6 st_failed" in source
    assert "class n0,n1,n2,n3,n10,n11 st_none" in source
    assert source.startswith('---\ntitle: "Fraud & search chain"\n---\nflowchart LR\n')


def test_highlight_and_fade_classes() -> None:
    source = to_mermaid(mark_impact(fraud_view(), "fraud/embed", {"fraud/scorer"}))
    assert "class n4,n5 hl" in source
    assert re.search(r"class n0,n1,n2,n3,n6,.* faded", source)


def test_block_is_fenced() -> None:
    block = to_mermaid_block(fraud_view())
    lines = block.splitlines()
    assert lines[0] == "```mermaid" and lines[-1] == "```"
    assert sum(1 for ln in lines if ln.startswith("```")) == 2


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#amp;"), ("#", "#35;"),
        ("`", "#96;"), ("%%", "#37;#37;"), (";", "#59;"), ("[x]", "#91;x#93;"),
        ("a\nb", "a b"), ("\u202eevil", "evil"), ("emoji \U0001f680", "emoji \U0001f680"),
        ("s3://lake/events", "s3://lake/events"), ("a/b:c.d-e_f", "a/b:c.d-e_f"),
        ("*bold* _it_ $$x$$", "#42;bold#42; _it_ #36;#36;x#36;#36;"),
    ],
)
def test_mermaid_text(text: str, escaped: str) -> None:
    assert mermaid_text(text) == escaped


@pytest.mark.parametrize("text", HOSTILE + HOSTILE_LABELS)
def test_escaped_text_has_nothing_raw(text: str) -> None:
    out = mermaid_text(text, 200)
    for raw in ('"', "<", ">", "`", "%", "\n", "\r", "\u2028", "\u202e", "\x00", "\\"):
        assert raw not in out, (raw, out)


def test_hostile_view() -> None:
    view = hostile_view()
    source = to_mermaid(view)
    nodes, edges = parse(source)  # every line is a node, an edge or a class: nothing injected
    assert len(nodes) == len(view.nodes) and len(edges) == len(view.edges)
    assert "%%" not in source and "```" not in source and "<script" not in source.lower()
    # No click line (the only way to a link); "javascript:alert" in a label is just text.
    assert not re.search(r"^\s*click\b", source, re.M)
    for _, label in nodes.values():
        assert not set(label.replace("<br/>", "")) & set('"<>`%\n')
    assert nodes["n0"][1] == (
        "a/b:c.d-e_f<br/>#quot;#gt;#lt;script#gt;alert#40;1#41;#lt;/script#gt;"
    )
    assert ("n5", "-.->", "feedback @#lt;IMG_SRC=/etc/passwd#gt;", "n1") in edges
    title = source.splitlines()[1]
    assert re.fullmatch(r'title: "[\w .,:/()&+!?-]*"', title), title
    block = to_mermaid_block(view)
    assert sum(1 for ln in block.splitlines() if ln.startswith("```")) == 2
