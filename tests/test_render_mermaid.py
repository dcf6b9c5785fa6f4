"""Mermaid flowcharts (chainml.render.mermaid): structure and hostile text."""

from __future__ import annotations

import re

import pytest

from chainml.render.dot import to_dot
from chainml.render.mermaid import (
    MAX_EDGES,
    MERMAID_SHAPES,
    mermaid_chart,
    mermaid_text,
    to_mermaid,
    to_mermaid_block,
)
from chainml.render.text import STATUS_COLORS, namespace
from chainml.render.view import GraphView, ViewEdge, ViewNode, mark_impact
from tests.render_fixtures import HOSTILE, HOSTILE_LABELS, fraud_view, hostile_view

NODE_LINE = re.compile(
    r'^ {4,8}(n\d+)(\[\(|\(\[|\{\{|\[/|\[)"([^"\n]*)"(\)\]|\]\)|\}\}|\\\]|\])$')
EDGE_LINE = re.compile(r'^    (n\d+) (-->|-\.->)(?:\|"([^"\n]*)"\|)? (n\d+)$')
SUBGRAPH_LINE = re.compile(r'^    subgraph (c\d+)\["([^"\n]*)"\]$')
NOTE_LINE = re.compile(r'^    left_out\["(Not drawn: [^"\n]*)"\]$')
OTHER_LINE = re.compile(
    r"    (classDef \w+ [\w:#,.\- ]+|class [nc\d,]+ \w+|class left_out note|end"
    r"|%% chainml: Not drawn: [\w ,.:/-]+)")


def parse(source: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str]]]:
    """Nodes {id: (opening, label)} and edges [(up, arrow, label, down)]; fails on stray lines."""
    nodes, edges, _ = parse_all(source)
    return nodes, edges


def parse_all(source: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str, str, str]],
                                    dict[str, tuple[str, list[str]]]]:
    """:func:`parse` plus the subgraphs {id: (label, member ids)} (the note is node "left_out")."""
    nodes: dict[str, tuple[str, str]] = {}
    edges: list[tuple[str, str, str, str]] = []
    groups: dict[str, tuple[str, list[str]]] = {}
    lines = source.splitlines()
    if lines[0] == "---":
        assert lines[2] == "---" and lines[1].startswith('title: "')
        lines = lines[3:]
    assert lines[0] == "flowchart LR"
    inside: str | None = None
    for line in lines[1:]:
        if m := NODE_LINE.match(line):
            assert (inside is not None) == line.startswith(" " * 8), line
            nodes[m[1]] = (m[2], m[3])
            if inside is not None:
                groups[inside][1].append(m[1])
        elif m := EDGE_LINE.match(line):
            edges.append((m[1], m[2], m[3] or "", m[4]))
        elif m := SUBGRAPH_LINE.match(line):
            assert inside is None, "subgraphs are not nested"
            inside = m[1]
            groups[inside] = (m[2], [])
        elif m := NOTE_LINE.match(line):
            nodes["left_out"] = ("[", m[1])
        else:
            assert OTHER_LINE.fullmatch(line), line
            if line == "    end":
                inside = None
    assert inside is None
    return nodes, edges, groups


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


# --- clusters ---------------------------------------------------------------------------------


def _dot_clusters(dot: str) -> dict[str, set[str]]:
    """Node ids per namespace box of the DOT source, by the box's label."""
    found: dict[str, set[str]] = {}
    for body in re.findall(r"subgraph cluster_(?!legend)\w+ \{(.*?)\n\t\}", dot, re.S):
        label = re.search(r'\blabel=(?:"([^"]*)"|(\S+))', body)
        assert label, body
        found[label[1] or label[2]] = set(re.findall(r"^\t\t(n\d+) \[", body, re.M))
    return found


def test_cluster_groups_as_the_dot_picture_does() -> None:
    view = fraud_view()
    nodes, edges, groups = parse_all(to_mermaid(view, cluster=True))
    assert len(nodes) == 12 and len(edges) == 13
    mine = {label: set(members) for label, members in groups.values()}
    assert mine == _dot_clusters(to_dot(view, cluster=True, legend=False))
    assert mine == {
        "s3://lake": {"n0"}, "warehouse": {"n1"}, "fraud": {"n2", "n3", "n4", "n5"},
        "risk": {"n6", "n7"}, "search": {"n8", "n9"}, "app": {"n10", "n11"},
    }
    assert "class c0,c1,c2,c3,c4,c5 namespace" in to_mermaid(view, cluster=True)
    # Without --cluster there is no subgraph at all.
    assert parse_all(to_mermaid(view))[2] == {}


def test_cluster_leaves_names_without_namespace_outside() -> None:
    view = hostile_view()
    nodes, _, groups = parse_all(to_mermaid(view, cluster=True))
    assert len(nodes) == len(view.nodes)
    inside = {member for _, members in groups.values() for member in members}
    for i, node in enumerate(view.nodes):
        assert (f"n{i}" in inside) == (namespace(node.name) is not None)


def test_cluster_labels_are_escaped() -> None:
    names = [f"{h[:30]}/node{i}" for i, h in enumerate(HOSTILE)] + ["plain"]
    view = GraphView(nodes=[ViewNode(name=n, kind="feature") for n in names])
    source = to_mermaid(view, cluster=True)
    _, _, groups = parse_all(source)  # every line known: nothing injected
    assert len(groups) >= len(HOSTILE) - 2  # a few prefixes are empty or repeat
    for label, _ in groups.values():
        assert not set(label) & set('"<>`%\n[]')
    assert "%%" not in source.replace("%% chainml:", "")


# --- Mermaid's limits -------------------------------------------------------------------------


def _grid(sources: int, models: int) -> GraphView:
    nodes = [ViewNode(name=f"src_{i:02d}", kind="source") for i in range(sources)]
    nodes += [ViewNode(name=f"model_{j:02d}", kind="model", status="needs_retest")
              for j in range(models)]
    edges = [ViewEdge(upstream=f"src_{i:02d}", downstream=f"model_{j:02d}")
             for i in range(sources) for j in range(models)]
    return GraphView(nodes=nodes, edges=edges)


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_a_chart_that_fits_is_whole_and_has_no_note() -> None:
    chart = mermaid_chart(fraud_view(), hint="never shown")
    assert chart.complete and chart.reason is None
    assert (chart.nodes, chart.edges, chart.total_nodes, chart.total_edges) == (12, 13, 12, 13)
    assert chart.text == to_mermaid(fraud_view())
    assert "left_out" not in chart.text and "%%" not in chart.text


def test_more_than_500_edges_leaves_out_whole_nodes_and_says_so() -> None:
    view = _grid(20, 30)  # 600 edges
    chart = mermaid_chart(view, hint="chainml graph --format html draws all of it.")
    nodes, edges, _ = parse_all(chart.text)
    assert len(edges) == chart.edges <= MAX_EDGES
    # Whole nodes: every source, and models each with all 20 of their inputs.
    assert chart.nodes == 45 and chart.edges == 500
    drawn = {label.split("<br/>")[0] for key, (_, label) in nodes.items() if key != "left_out"}
    assert {f"src_{i:02d}" for i in range(20)} <= drawn
    assert chart.left_out == "5 of 50 nodes and 100 of 600 edges"
    assert chart.reason == "Mermaid draws at most 500 edges"
    note = ("Not drawn: 5 of 50 nodes and 100 of 600 edges, as Mermaid draws at most 500 "
            "edges. chainml graph --format html draws all of it.")
    assert nodes["left_out"][1] == note
    assert f"    %% chainml: {note}" in chart.text
    assert "class left_out note" in chart.text
    # The limit is Mermaid's "fewer than maxEdges + 1": exactly 500 is drawn whole.
    assert mermaid_chart(_grid(20, 25)).complete


def test_max_nodes_caps_and_names_readability() -> None:
    chart = mermaid_chart(_grid(12, 48), max_nodes=60)
    assert chart.reason == "Mermaid draws at most 500 edges"  # 60 nodes fit, edges do not
    chart = mermaid_chart(fraud_view(), max_nodes=5)
    assert chart.nodes == 5 and not chart.complete
    assert chart.reason == "more than 5 nodes do not make a readable chart"
    assert len(parse(chart.text)[0]) == 5 + 1


def test_the_kept_part_is_whole_lineages() -> None:
    view = fraud_view()
    chart = mermaid_chart(view, max_nodes=4)
    labels = {label.split("<br/>")[0] for key, (_, label) in parse(chart.text)[0].items()
              if key != "left_out"}
    # Each kept node comes with its inputs: a chain from a source, not scattered boxes.
    assert labels == {"s3://lake/events", "fraud/sessions", "fraud/embed", "warehouse/accounts"}


def test_focus_and_impact_are_kept_first() -> None:
    view = fraud_view()
    chart = mermaid_chart(view, max_nodes=3, first=["search/ranker"])
    labels = {label.split("<br/>")[0] for key, (_, label) in parse(chart.text)[0].items()
              if key != "left_out"}
    # The focus, then what is one hop away (in display order): nearest first.
    assert labels == {"search/ranker", "fraud/account_age", "search/safety"}
    lit = mark_impact(view, "search/ranker", {"search/safety", "app/search_ui"})
    chart = mermaid_chart(lit, max_nodes=3)
    assert re.search(r"^    class n\d+,n\d+,n\d+ hl$", chart.text, re.M)
    assert "faded" not in chart.text.split("classDef faded")[1]


def test_text_limit_counts_as_javascript_does() -> None:
    # Astral-plane characters are two UTF-16 units each: Mermaid counts them twice.
    nodes = [ViewNode(name=f"\U0001f680{i}" + "\U0001f9ea" * 50, kind="feature")
             for i in range(200)]
    view = GraphView(nodes=nodes)
    whole = mermaid_chart(view, max_text=10**6).text
    assert len(whole) < 20_000 < _length(whole)
    chart = mermaid_chart(view, max_text=20_000)
    assert not chart.complete and _length(chart.text) <= 20_000
    assert chart.reason == "Mermaid draws at most 20,000 characters of source"
    # The largest part that fits: allowed one more node, it still draws as many.
    assert mermaid_chart(view, max_text=20_000, max_nodes=chart.nodes + 1).nodes == chart.nodes


def test_huge_view_is_cut_quickly_and_fits() -> None:
    from tests.render_fixtures import big_view

    chart = mermaid_chart(big_view(20_000))
    assert chart.edges <= MAX_EDGES and _length(chart.text) <= 50_000
    assert chart.total_nodes == 20_000 and chart.nodes > 100

