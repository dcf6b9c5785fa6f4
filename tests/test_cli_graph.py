"""`chainml graph` end to end: every format parsed back, counts against the registry."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chainml.registry import Registry
from tests.chains import EXAMPLE, build_example
from tests.clirun import error_line, run
from tests.conftest import IN_CI

BACKENDS = ["sqlite", "postgresql"]
NODE_ID = re.compile(r"n\d+")
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT and not IN_CI, reason="Graphviz's dot is missing")
EDGES = sum(len(inputs) for *_, inputs in EXAMPLE)


@pytest.fixture
def url(registry: Registry, database_url: str) -> str:
    build_example(registry)
    registry.register(kind="source", name="clicks_raw", version="2026-11-08")
    return database_url


def graph(url: str, tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "out"
    result = run(url, "graph", *args, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "Wrote" in result.stderr
    return out


def svg_nodes(svg: bytes) -> list[ET.Element]:
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    return [g for g in root.iter(f"{ns}g") if (g.get("class") or "").split()[:1] == ["node"]
            and NODE_ID.fullmatch(g.get("id") or "")]


@needs_dot
def test_dot_output_lays_out_with_every_node_and_edge(url: str, tmp_path: Path) -> None:
    out = graph(url, tmp_path, "--format", "dot")
    laid = json.loads(subprocess.run(["dot", "-Tjson", str(out)], capture_output=True,
                                     check=True).stdout)
    names = {o.get("id") for o in laid["objects"] if NODE_ID.fullmatch(o.get("id") or "")}
    assert len(names) == 13
    drawn = [e for e in laid.get("edges", [])
             if NODE_ID.fullmatch(laid["objects"][e["tail"]].get("id") or "")]
    assert len(drawn) == EDGES


@needs_dot
def test_svg_and_png(url: str, tmp_path: Path) -> None:
    svg = graph(url, tmp_path, "--format", "svg").read_bytes()
    assert len(svg_nodes(svg)) == 13
    assert b"<script" not in svg
    png = graph(url, tmp_path, "--format", "png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@needs_dot
def test_focus_depth_and_impact(url: str, tmp_path: Path) -> None:
    svg = graph(url, tmp_path, "--focus", "fraud_scorer", "--depth", "1", "--format",
                "svg").read_bytes()
    titles = {n.find("{http://www.w3.org/2000/svg}title").text for n in svg_nodes(svg)}
    # Inputs one hop up, consumers one hop down (the pinned reader included).
    assert len(titles) == 5
    dot = graph(url, tmp_path, "--impact", "transactions_raw", "--format", "dot").read_text()
    lit = re.findall(r'^\s*n\d+ \[.*penwidth=3', dot, re.M)
    # transactions_raw, txn_features, fraud_scorer, fraud_rules, checkout_service.
    assert len(lit) == 5
    assert len(re.findall(r'^\s*n\d+ \[.*fontcolor="#9A9A9A"', dot, re.M)) == 8


def test_mermaid_counts(url: str, tmp_path: Path) -> None:
    text = graph(url, tmp_path, "--format", "mermaid").read_text()
    assert text.lstrip().startswith("---") or text.startswith("flowchart")
    nodes = re.findall(r"^\s+(n\d+)[\[\(\{>]", text, re.M)
    edges = re.findall(r"^\s+n\d+ (?:-->|-\.->)", text, re.M)
    assert len(set(nodes)) == 13
    assert len(edges) == EDGES


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows = 0
        self.scripts: list[dict[str, str | None]] = []
        self.csp = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        if tag == "tr" and d.get("data-node"):
            self.rows += 1
        if tag == "script":
            self.scripts.append(d)
        if tag == "meta" and d.get("http-equiv") == "Content-Security-Policy":
            self.csp = d.get("content") or ""


def test_html_is_self_contained(url: str, tmp_path: Path) -> None:
    page = graph(url, tmp_path, "--format", "html").read_text()
    parsed = _Collect()
    parsed.feed(page)
    assert "default-src 'none'" in parsed.csp
    assert all(not s.get("src") for s in parsed.scripts)
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert page.count("fraud_scorer") >= 1


def test_without_dot_svg_is_refused_but_text_formats_work(url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    result = run(url, "graph", "--format", "svg", "-o", str(tmp_path / "x.svg"))
    assert result.exit_code == 2
    assert "Graphviz" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "x.svg").exists()
    for fmt in ("dot", "mermaid", "html"):
        out = graph(url, tmp_path, "--format", fmt)
        assert out.stat().st_size > 0


def test_unknown_focus_and_empty_selection_are_bad_input(url: str, tmp_path: Path) -> None:
    result = run(url, "graph", "--focus", "nope", "--format", "dot", "-o", "-")
    assert result.exit_code == 2 and "No node named 'nope'" in result.stderr
    result = run(url, "graph", "--depth", "2", "--format", "dot", "-o", "-")
    assert result.exit_code == 2


# ---- the format follows the file name ------------------------------------------------------


def test_the_format_follows_the_suffix_and_a_contradiction_is_refused(url: str,
                                                                      tmp_path: Path) -> None:
    known = ".svg, .png, .pdf, .dot/.gv, .html/.htm, .mmd/.mermaid"
    for args, name, error in [
        (["--format", "png"], "chain.svg", "Error: --format png contradicts the name "
         "'{path}', whose '.svg' means svg; drop --format or name the file .png."),
        (["--format", "mermaid"], "chain.HTML", "Error: --format mermaid contradicts the name "
         "'{path}', whose '.html' means html; drop --format or name the file .mmd."),
        ([], "chain.jpg", "Error: Cannot tell the format from the name '{path}': chainml "
         f"writes {known}, not '.jpg'; name the file with one of these suffixes, or give "
         "--format."),
        ([], "chain.txt", "Error: Cannot tell the format from the name '{path}': chainml "
         f"writes {known}, not '.txt'; name the file with one of these suffixes, or give "
         "--format."),
    ]:
        path = tmp_path / name
        result = run(url, "graph", *args, "-o", str(path))
        assert result.exit_code == 2, result.output
        assert error_line(result) == error.format(path=path)
        assert not path.exists()
    for name, start in [("chain.gv", "digraph"), ("chain.dot", "digraph"),
                        ("chain.mermaid", "---"), ("CHAIN.MMD", "---"),
                        ("chain.htm", "<!DOCTYPE html>")]:
        path = tmp_path / name
        assert run(url, "graph", "-o", str(path)).exit_code == 0
        assert path.read_text().startswith(start), name
    # Said outright, any other name is taken as it is.
    path = tmp_path / "chain.txt"
    assert run(url, "graph", "--format", "dot", "-o", str(path)).exit_code == 0
    assert path.read_text().startswith("digraph")


@needs_dot
def test_png_and_pdf_from_the_suffix(url: str, tmp_path: Path) -> None:
    assert run(url, "graph", "-o", str(tmp_path / "c.png")).exit_code == 0
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert run(url, "graph", "-o", str(tmp_path / "c.pdf")).exit_code == 0
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")


# ---- --focus with a direction, on the example chain and its feedback loop -------------------


@pytest.fixture
def looped(registry: Registry, database_url: str) -> str:
    """examples/chain.yaml: its feedback loop runs from feed_app back to clicks_raw."""
    registry.apply(Path(__file__).resolve().parents[1] / "examples" / "chain.yaml")
    return database_url


def drawn(url: str, *args: str) -> set[str]:
    result = run(url, "graph", "--format", "dot", "-o", "-", *args)
    assert result.exit_code == 0, result.output
    return set(re.findall(r'^\s*n\d+ \[.*?label="([^"\\]+)\\n', result.stdout, re.M))


RANKER_UP = {"ranker", "click_features", "clicks_raw", "embedding_features", "user_embedding",
             "user_profiles"}
RANKER_DOWN = {"ranker", "ranking_safety", "feed_app"}


def test_a_direction_does_not_follow_the_feedback_loop(looped: str) -> None:
    # Through feed_app -> clicks_raw, "upstream of ranker" reached ranker's own consumers
    # and the fraud branch: 11 of 13 nodes.
    assert drawn(looped, "--focus", "ranker", "--upstream") == RANKER_UP
    assert drawn(looped, "--focus", "ranker", "--downstream") == RANKER_DOWN
    assert drawn(looped, "--focus", "clicks_raw", "--upstream") == {"clicks_raw"}
    assert drawn(looped, "--focus", "feed_app", "--downstream") == {"feed_app"}
    assert drawn(looped, "--focus", "ranker", "--upstream", "--depth", "1") == {
        "ranker", "click_features", "embedding_features"}


def test_both_directions_together_mean_both(looped: str) -> None:
    both = drawn(looped, "--focus", "ranker", "--upstream", "--downstream")
    assert both == RANKER_UP | RANKER_DOWN
    assert drawn(looped, "--focus", "ranker", "--downstream", "--upstream") == both
    assert drawn(looped, "--focus", "ranker") == both
    # The loop's edge between two nodes drawn is still drawn, dashed.
    dot = run(looped, "graph", "--format", "dot", "-o", "-", "--focus", "ranker").stdout
    assert len(re.findall(r"-> n\d+ \[.*label=feedback.*style=dashed", dot)) == 1


def test_no_legend(url: str) -> None:
    with_legend = run(url, "graph", "--format", "dot", "-o", "-").stdout
    without = run(url, "graph", "--format", "dot", "-o", "-", "--no-legend").stdout
    assert "cluster_legend" in with_legend
    assert "legend" not in without
    assert re.findall(r"^\s*n\d+ \[", without, re.M) == re.findall(r"^\s*n\d+ \[", with_legend,
                                                                  re.M)


def test_mermaid_honours_cluster(registry: Registry, database_url: str) -> None:
    registry.register(kind="source", name="lake/events", version="1")
    registry.register(kind="feature", name="team_a/sessions", version="1",
                      inputs=["lake/events"])
    registry.register(kind="model", name="team_a/scorer", version="1",
                      inputs=["team_a/sessions"])
    registry.register(kind="consumer", name="app", version="1", inputs=["team_a/scorer"])
    plain = run(database_url, "graph", "--format", "mermaid", "-o", "-")
    assert plain.exit_code == 0 and "subgraph" not in plain.stdout
    text = run(database_url, "graph", "--format", "mermaid", "-o", "-", "--cluster").stdout
    groups = re.findall(r'^    subgraph (c\d+)\["([^"]*)"\]\n((?:        .*\n)+)    end$',
                        text, re.M)
    members = {label: re.findall(r"^        (n\d+)", body, re.M) for _, label, body in groups}
    # Ids follow the display order, by name: app, lake/events, team_a/scorer, team_a/sessions.
    assert members == {"lake": ["n1"], "team_a": ["n2", "n3"]}
    assert re.search(r"^    n0\[/\"app<br/>1\"\\\]$", text, re.M)  # no namespace: outside


def test_mermaid_of_600_edges_leaves_nodes_out_and_says_so(url: str, tmp_path: Path) -> None:
    lines = ["chainml: 1", "nodes:"]
    lines += [f"  - {{name: wide_src_{i:02d}, kind: source, version: '1'}}" for i in range(20)]
    inputs = ", ".join(f"wide_src_{i:02d}" for i in range(20))
    lines += [f"  - {{name: wide_model_{j:02d}, kind: model, version: '1', inputs: [{inputs}]}}"
              for j in range(30)]
    chain = tmp_path / "wide.yaml"
    chain.write_text("\n".join(lines) + "\n", "utf-8")
    assert run(url, "apply", str(chain)).exit_code == 0
    result = run(url, "graph", "--format", "mermaid", "-o", "-")
    assert result.exit_code == 0, result.output
    edges = len(re.findall(r"^\s+n\d+ (?:-->|-\.->)", result.stdout, re.M))
    nodes = len(re.findall(r"^\s+n\d+[\[({]", result.stdout, re.M))
    assert edges <= 500
    left, total = 13 + 50 - nodes, EDGES + 600
    assert (f"Note: the Mermaid chart leaves out {left} of 63 nodes and {total - edges} of "
            f"{total} edges (Mermaid draws at most 500 edges)") in result.stderr, result.stderr
    assert "--format html or svg draws all of it" in result.stderr
    assert re.search(r'^    left_out\["Not drawn: .* edges\. --format html or svg draws all of '
                     r'it\."\]$', result.stdout, re.M)
    # The focus keeps the chart whole: a model and its 20 sources.
    focused = run(url, "graph", "--format", "mermaid", "-o", "-", "--focus", "wide_model_00")
    assert focused.exit_code == 0 and "leaves out" not in focused.stderr
    assert len(re.findall(r"^\s+n\d+ -->", focused.stdout, re.M)) == 20
