"""DOT source (chainml.render.dot) and rendering it with Graphviz (chainml.render.run)."""

from __future__ import annotations

import json
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from graphviz.quoting import quote  # type: ignore[import-untyped, unused-ignore]

from chainml.errors import InvalidInput
from chainml.render.dot import SHAPES, STATUS_COLORS, dot_text, to_dot
from chainml.render.run import DotNotFound, RenderError, dot_available, render_bytes
from chainml.render.text import clean
from chainml.render.view import GraphView, mark_impact
from tests.render_fixtures import HOSTILE, big_view, fraud_view, hostile_view, need_binary

SVG = "{http://www.w3.org/2000/svg}"
NODE_ID = re.compile(r"n\d+")
EDGE_ID = re.compile(r"e\d+")
# What dot draws with; anything else in the SVG would be injected.
SVG_TAGS = {"svg", "g", "title", "polygon", "polyline", "path", "ellipse", "text", "a"}


@pytest.fixture
def dot() -> str:
    return need_binary("dot", "apt-get install graphviz")


def layout(source: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(render_bytes(source, "json"))
    return data


def drawn(data: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, edges) of the chain itself in dot's JSON, legend left out."""
    nodes = [o for o in data["objects"] if NODE_ID.fullmatch(o.get("id", ""))]
    edges = [e for e in data.get("edges", []) if EDGE_ID.fullmatch(e.get("id", ""))]
    return nodes, edges


def svg_tree(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)


def svg_groups(root: ET.Element, cls: str, pattern: re.Pattern[str]) -> list[ET.Element]:
    return [
        g for g in root.iter(f"{SVG}g")
        if g.get("class", "").split()[:1] == [cls] and pattern.fullmatch(g.get("id", ""))
    ]


# --- the DOT source itself (no Graphviz needed) ---------------------------------------------


# Environment statuses (skewed, missing_input) only appear in graph --env pictures
# (tests/test_graph_env.py); the registry's views hold the others.
REGISTRY_COLORS = {k: v for k, v in STATUS_COLORS.items() if k not in ("skewed", "missing_input")}


def test_source_layout_shapes_and_legend() -> None:
    view = fraud_view()
    source = to_dot(view)
    assert source.startswith("digraph chainml {")
    assert "rankdir=LR" in source
    assert "subgraph cluster_legend {" in source
    for kind, shape in SHAPES.items():
        assert f"shape={shape}" in source, kind
        assert f"legend_kind_{kind}" in source
    for color in REGISTRY_COLORS.values():  # the fraud view holds every registry status
        assert f'fillcolor="{color}"' in source
    assert len(set(SHAPES.values())) == 5 and len(set(STATUS_COLORS.values())) == 9
    assert "legend" not in to_dot(view, legend=False)


def test_source_labels_edges_and_ids() -> None:
    source = to_dot(fraud_view())
    assert 'label="fraud/scorer\\n3.1.0"' in source
    assert re.search(r'n4 -> n5 \[[^\]]*label="?@4', source)
    feedback = re.search(r"n10 -> n0 \[([^\]]*)\]", source)
    assert feedback and "style=dashed" in feedback[1] and "constraint=false" in feedback[1]
    assert "label=feedback" in feedback[1]
    # Node ids are generated: names only appear inside quoted labels/tooltips.
    assert re.findall(r"^\s*(n\d+) \[", source, re.M) == [f"n{i}" for i in range(12)]


def test_highlight_and_fade() -> None:
    view = mark_impact(fraud_view(), "fraud/embed", {"fraud/scorer"})
    source = to_dot(view, legend=False)
    embed = re.search(r"^\s*n4 \[(.*)\]$", source, re.M)
    events = re.search(r"^\s*n0 \[(.*)\]$", source, re.M)
    assert embed and "penwidth=3" in embed[1]
    assert events and 'fillcolor="#F2F2F259"' in events[1]


def test_cluster_by_namespace() -> None:
    source = to_dot(fraud_view(), cluster=True)
    clusters = re.findall(r"subgraph (cluster_\w+) \{", source)
    assert clusters == [
        "cluster_legend", "cluster_s3___lake", "cluster_warehouse", "cluster_fraud",
        "cluster_risk", "cluster_search", "cluster_app",
    ]
    assert 'label="s3://lake"' in source


def test_dot_text_never_becomes_an_html_label() -> None:
    for text in ['<IMG SRC="/etc/passwd">', "<b>x</b>", "<>", "<" + "x" * 50 + ">"]:
        quoted = quote(dot_text(text))
        assert quoted.startswith('"') and quoted.endswith('"'), quoted
    assert dot_text("a\\Nb") == "a\\\\Nb"
    assert dot_text('say "hi"') == 'say \\"hi\\"'
    assert dot_text("ends with \\") == "ends with \\\\"
    assert dot_text("a & b") == "a &amp; b"
    assert dot_text("two\nlines") == "two lines"
    # One break, not two: a CRLF was an empty line in the page and two spaces here.
    assert dot_text("two\r\nlines") == "two lines"
    assert clean("a\r\nb\rc", keep_newlines=True) == "a\nb\nc"


@pytest.mark.parametrize("cluster", [False, True])
def test_hostile_source_has_no_html_label_link_or_raw_text(cluster: bool) -> None:
    source = to_dot(hostile_view(), cluster=cluster)
    # The one HTML-like label is the legend's table, made of our own words only.
    html_like = [line for line in source.splitlines() if re.search(r"=\s*<", line)]
    assert [line.split()[0] for line in html_like] == ["legend_table"], "HTML-like label"
    assert re.fullmatch(r'[\w\s<>="#/@.\]-]*', html_like[0].split("label=", 1)[1]), html_like
    assert not re.search(r"=\s*<", to_dot(hostile_view(), cluster=cluster, legend=False))
    assert not re.search(r"\b(URL|href|image|shapefile|imagepath|fontpath)\s*=", source, re.I)
    assert "<script>" in source  # inside a quoted string, as text
    for line in source.splitlines():
        assert "\x00" not in line and "\u202e" not in line
    # Every quoted string is closed on its own line: nothing broke out of a label.
    for line in source.splitlines():
        body = re.sub(r'"(?:[^"\\]|\\.)*"', 'Q', line)
        assert '"' not in body, line


# --- through Graphviz -----------------------------------------------------------------------


def test_dot_json_has_every_node_and_edge(dot: str) -> None:
    view = fraud_view()
    for cluster in (False, True):
        nodes, edges = drawn(layout(to_dot(view, cluster=cluster)))
        assert len(nodes) == len(view.nodes) == 12
        assert len(edges) == len(view.edges) == 13
        labels = {n["id"]: n["label"] for n in nodes}
        assert labels["n5"] == "fraud/scorer\\n3.1.0"
        shapes = {n["id"]: n["shape"] for n in nodes}
        assert [shapes[f"n{i}"] for i in range(12)] == [SHAPES[n.kind] for n in view.nodes]
        dashed = [e for e in edges if e.get("style") == "dashed"]
        assert [e["id"] for e in dashed] == ["e12"]
        assert [e["label"] for e in edges if e.get("label", "").startswith("@")] == ["@4"]


def test_svg_parses_with_node_and_edge_counts(dot: str) -> None:
    view = fraud_view()
    root = svg_tree(render_bytes(to_dot(view, cluster=True), "svg"))
    nodes = svg_groups(root, "node", NODE_ID)
    edges = svg_groups(root, "edge", EDGE_ID)
    assert len(nodes) == 12 and len(edges) == 13
    texts = ["".join(t.itertext()) for t in nodes[5].iter(f"{SVG}text")]
    assert texts == ["fraud/scorer", "3.1.0"]
    assert {g.get("id") for g in root.iter(f"{SVG}g") if "cluster" in g.get("class", "")}


def test_png_and_pdf_magic(dot: str) -> None:
    source = to_dot(fraud_view())
    assert render_bytes(source, "png").startswith(b"\x89PNG\r\n\x1a\n")
    assert render_bytes(source, "pdf").startswith(b"%PDF")


@pytest.mark.parametrize("cluster", [False, True])
def test_hostile_text_renders_as_text_only(dot: str, cluster: bool) -> None:
    view = hostile_view()
    svg = render_bytes(to_dot(view, cluster=cluster), "svg")
    root = svg_tree(svg)  # well-formed XML, whatever the text held
    assert {el.tag.removeprefix(SVG) for el in root.iter()} <= SVG_TAGS
    for el in root.iter():
        for key, value in el.attrib.items():
            assert not key.lower().startswith("on") and not key.endswith("href"), key
            assert "javascript:" not in value.lower() or key.endswith("title"), (key, value)
    text = svg.decode()
    for raw in ("<script", "<IMG", "<img", "<b ", "<svg onload", "<![CDATA["):
        assert raw not in text
    assert len(svg_groups(root, "node", NODE_ID)) == len(view.nodes)
    assert len(svg_groups(root, "edge", EDGE_ID)) == len(view.edges)
    # Backslash escapes stayed literal: \N would have printed the node id instead.
    labels = {g.get("id"): ["".join(t.itertext()) for t in g.iter(f"{SVG}text")]
              for g in svg_groups(root, "node", NODE_ID)}
    assert labels["n2"] == ["x", "\\N\\G\\l"]
    assert labels["n0"] == ["a/b:c.d-e_f", '"><script>alert(1)</script>']
    assert labels["n1"] == ["s3://lake/events", "<IMG_SRC=/etc/passwd>"]
    assert labels["n4"][1] == "%%{init}%%"


def test_every_hostile_string_alone_renders(dot: str) -> None:
    # One node per string, as description, owner, version-free title: dot must accept all.
    for text in HOSTILE:
        view = GraphView.model_validate({
            "nodes": [{"name": "m", "kind": "model", "status": "failed", "description": text,
                       "owner": text, "version": "1"}],
            "edges": [], "title": text,
        })
        svg_tree(render_bytes(to_dot(view), "svg"))


def test_big_chain_with_clusters_renders_in_reasonable_time(dot: str) -> None:
    view = big_view(5000)
    start = time.monotonic()
    svg = render_bytes(to_dot(view, cluster=True), "svg")
    elapsed = time.monotonic() - start
    root = svg_tree(svg)
    assert len(svg_groups(root, "node", NODE_ID)) == 5000
    assert len(svg_groups(root, "edge", EDGE_ID)) == len(view.edges)
    assert elapsed < 90, f"5,000 nodes took {elapsed:.1f} s"


# --- the legend -----------------------------------------------------------------------------


def three_nodes() -> GraphView:
    """clicks_raw -> click_features -> ranker, as after the README's first three commands."""
    return GraphView.model_validate({"title": "chainml", "nodes": [
        {"name": "clicks_raw", "kind": "source", "version": "1"},
        {"name": "click_features", "kind": "feature", "version": "1", "inputs": ["clicks_raw"]},
        {"name": "ranker", "kind": "model", "version": "1", "status": "untested",
         "inputs": ["click_features"]},
    ], "edges": [{"upstream": "clicks_raw", "downstream": "click_features"},
                 {"upstream": "click_features", "downstream": "ranker"}]})


def test_the_legend_explains_only_what_is_drawn() -> None:
    source = to_dot(three_nodes())
    kinds = re.compile(r"^\s*legend_kind_(\w+) \[", re.M)
    assert kinds.findall(source) == ["source", "feature", "model"]
    assert re.findall(r'ID="legend_status_(\w+)"', source) == ["untested", "none"]
    assert "legend_edge" not in source  # only plain inputs: nothing to tell apart
    full = to_dot(fraud_view())
    assert kinds.findall(full) == list(SHAPES)
    assert len(re.findall(r'ID="legend_status_(\w+)"', full)) == len(REGISTRY_COLORS)
    assert re.findall(r'ID="legend_edge_(\w+)"', full) == ["input", "feedback", "pinned"]


def _extent(data: dict[str, Any], pattern: re.Pattern[str]) -> tuple[float, float]:
    """(width, height) in points of the box around the objects whose id matches."""
    boxes = []
    for o in data["objects"]:
        if pattern.fullmatch(o.get("id", "")):
            x, y = map(float, o["pos"].split(","))
            w, h = float(o["width"]) * 36, float(o["height"]) * 36
            boxes.append((x - w, y - h, x + w, y + h))
    return (max(b[2] for b in boxes) - min(b[0] for b in boxes),
            max(b[3] for b in boxes) - min(b[1] for b in boxes))


def test_the_legend_of_a_small_chain_is_small(dot: str) -> None:
    data = layout(to_dot(three_nodes()))
    legend = next(o for o in data["objects"] if o.get("name") == "cluster_legend")
    x0, y0, x1, y1 = map(float, legend["bb"].split(","))
    width, height = _extent(data, NODE_ID)
    # It used to be 1.5 times the chain's width and 6 times its height.
    assert x1 - x0 < width and y1 - y0 < 3 * height
    # On a chain with every kind, status and edge style it stays under the chain's size.
    data = layout(to_dot(fraud_view()))
    legend = next(o for o in data["objects"] if o.get("name") == "cluster_legend")
    x0, y0, x1, y1 = map(float, legend["bb"].split(","))
    width, height = _extent(data, NODE_ID)
    assert x1 - x0 < width / 2 and y1 - y0 < height


# --- errors ---------------------------------------------------------------------------------


def test_dot_not_found_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert not dot_available()
    with pytest.raises(DotNotFound) as info:
        render_bytes("digraph {}", "png")
    err = info.value
    assert isinstance(err, InvalidInput) and err.exit_code == 2
    message = str(err)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert "mermaid" in message and "html" in message and message.count(". ") == 0


def test_bad_source_and_format(dot: str) -> None:
    with pytest.raises(RenderError, match="dot failed"):
        render_bytes("digraph { a -> ", "svg")
    with pytest.raises(InvalidInput, match="Unknown image format"):
        render_bytes("digraph {}", "gif")


def test_timeout_is_a_render_error(dot: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def slow(*args: Any, **kwargs: Any) -> Any:
        raise subprocess.TimeoutExpired(args[0], kwargs.get("timeout", 0))

    monkeypatch.setattr(subprocess, "run", slow)
    with pytest.raises(RenderError, match="did not finish"):
        render_bytes("digraph {}", "svg", timeout=1)


def test_dot_cannot_read_files_even_if_asked(dot: str) -> None:
    # Defence in depth: the renderers never emit image=, but dot runs restricted anyway.
    source = (
        'digraph { a [image="/etc/hostname" label="x"]; '
        'b [label=<<IMG SRC="/etc/hostname"/>>] }'
    )
    try:
        out = render_bytes(source, "svg")
    except RenderError as exc:
        assert "ignored" in str(exc) or "dot failed" in str(exc)
    else:
        assert b"/etc/hostname" not in out
