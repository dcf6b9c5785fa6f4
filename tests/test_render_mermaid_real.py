"""Mermaid charts through the real Mermaid, as GitHub and GitLab draw them.

String checks (test_render_mermaid.py) cannot tell whether a chart renders: Mermaid
refuses more than 500 edges ("Edge limit exceeded", thrown by ``parse()`` as well as
``render()``) and silently draws a source longer than 50,000 characters as a red
"Maximum text size in diagram exceeded" box. So every chart here goes through
``mermaid.parse()`` and ``mermaid.render()`` of npm's mermaid (pinned in
tests/js/package.json; ``npm ci --prefix tests/js``) in headless Chromium, with
Mermaid's default limits, and the drawn SVG is counted.

Without the bundle or Chromium these tests are skipped with the reason; under
CI=true they fail.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chainml.registry import Registry
from chainml.render.mermaid import MAX_EDGES, MAX_TEXT, mermaid_chart, to_mermaid
from chainml.render.view import GraphView, ViewEdge, ViewNode
from tests.browser import Browser
from tests.chains import EXAMPLE, build_example
from tests.clirun import run
from tests.render_fixtures import IN_CI, fraud_view, hostile_view, need_binary

pytestmark = pytest.mark.browser

BACKENDS = ["sqlite"]  # the charts do not depend on the database
BUNDLE = Path(os.environ.get("CHAINML_TEST_MERMAID_JS")
              or Path(__file__).parent / "js" / "node_modules" / "mermaid" / "dist"
              / "mermaid.min.js")

# Parses, renders, and reads back what the SVG holds. Mermaid's own defaults
# (maxEdges 500, maxTextSize 50,000), as on GitHub.
_DRAW = """(async function(src, id) {
  try { await mermaid.parse(src); } catch (e) { return {error: 'parse: ' + String(e)}; }
  let svg;
  try { svg = (await mermaid.render(id, src)).svg; }
  catch (e) { return {error: 'render: ' + String(e)}; }
  const box = document.createElement('div');
  box.innerHTML = svg;
  document.body.appendChild(box);
  const all = (sel) => Array.from(box.querySelectorAll(sel));
  const out = {
    tooBig: svg.includes('Maximum text size in diagram exceeded'),
    syntaxError: svg.includes('Syntax error'),
    nodes: all('g.node').map((g) => g.id.replace(id + '-flowchart-', '').replace(/-\\d+$/, '')),
    labels: all('g.node').map((g) => g.textContent),
    links: all('path.flowchart-link').length,
    clusters: all('g.cluster').map((g) => g.textContent),
    active: all('script, img, iframe, object, embed, a').length,
  };
  box.remove();
  return out;
})"""


class RealMermaid:
    """One Chromium page with mermaid.min.js loaded, drawing one chart at a time."""

    def __init__(self, browser: Browser, page: Path) -> None:
        self.browser = browser
        self.count = 0
        page.write_text(
            '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
            f'<script src="{BUNDLE.resolve().as_uri()}"></script><script>'
            "window.alerted=0;window.alert=function(){window.alerted++;};"
            "mermaid.initialize({startOnLoad:false,securityLevel:'strict'});</script>"
            "</body></html>", "utf-8")
        browser.open_page(page.as_uri())
        version = browser.evaluate("typeof mermaid === 'undefined' ? null : 'loaded'")
        assert version == "loaded", f"{BUNDLE} did not load"

    def draw(self, source: str) -> dict[str, Any]:
        """Draw ``source``; fail the test unless Mermaid draws it as a chart."""
        self.count += 1
        drawn: dict[str, Any] = self.browser.evaluate(
            f"{_DRAW}({json.dumps(source)}, 'chart{self.count}')",
            await_promise=True, timeout=300)
        assert "error" not in drawn, drawn.get("error", "")[:300]
        assert not drawn["tooBig"] and not drawn["syntaxError"]
        assert drawn["active"] == 0
        assert self.browser.evaluate("window.alerted") == 0
        return drawn

    def refuses(self, source: str) -> str:
        """The error or the failure box Mermaid shows instead of ``source``."""
        self.count += 1
        drawn: dict[str, Any] = self.browser.evaluate(
            f"{_DRAW}({json.dumps(source)}, 'chart{self.count}')",
            await_promise=True, timeout=300)
        if "error" in drawn:
            return str(drawn["error"])
        return "Maximum text size in diagram exceeded" if drawn["tooBig"] else ""


@pytest.fixture(scope="module")
def mermaid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealMermaid]:
    exe = need_binary("chromium", "apt-get install chromium")
    if not BUNDLE.is_file():
        message = f"the mermaid bundle {BUNDLE} is missing (npm ci --prefix tests/js)"
        if IN_CI:
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("mermaid")
    browser = Browser(exe, folder / "profile")
    try:
        yield RealMermaid(browser, folder / "mermaid.html")
    finally:
        browser.close()


def _node_ids(source: str) -> list[str]:
    return re.findall(r"^\s+(n\d+|left_out)[\[({]", source, re.M)


def _grid(sources: int, models: int) -> GraphView:
    """Every model reads every source: sources x models edges."""
    nodes = [ViewNode(name=f"src_{i:02d}", kind="source", version="1") for i in range(sources)]
    nodes += [ViewNode(name=f"model_{j:02d}", kind="model", version="2", status="needs_retest")
              for j in range(models)]
    edges = [ViewEdge(upstream=f"src_{i:02d}", downstream=f"model_{j:02d}")
             for i in range(sources) for j in range(models)]
    return GraphView(nodes=nodes, edges=edges)


def _fenced_chart(markdown: str) -> str:
    """The body of the report's ```mermaid block, as GitHub hands it to Mermaid."""
    match = re.search(r"^(`{3,})mermaid\n(.*?)\n\1$", markdown, re.M | re.S)
    assert match, markdown[-500:]
    return match[2]


# --- renderer output ------------------------------------------------------------------------


@pytest.mark.parametrize("cluster", [False, True])
def test_fixture_views_render(mermaid: RealMermaid, cluster: bool) -> None:
    view = fraud_view()
    drawn = mermaid.draw(to_mermaid(view, cluster=cluster))
    assert drawn["nodes"] == [f"n{i}" for i in range(len(view.nodes))]
    assert drawn["links"] == len(view.edges)
    assert sorted(drawn["clusters"]) == (
        sorted(["s3://lake", "warehouse", "fraud", "risk", "search", "app"]) if cluster else [])


@pytest.mark.parametrize("cluster", [False, True])
def test_hostile_text_renders_as_text(mermaid: RealMermaid, cluster: bool) -> None:
    view = hostile_view()
    drawn = mermaid.draw(to_mermaid(view, cluster=cluster))
    assert len(drawn["nodes"]) == len(view.nodes) and drawn["links"] == len(view.edges)
    assert 'a/b:c.d-e_f"><script>alert(1)</script>' in drawn["labels"]
    assert "x\\N\\G\\l" in drawn["labels"]
    if cluster:  # "a/b:c.d-e_f", "s3://lake/events", "ns/model" and "ns/policy" have one
        assert sorted(drawn["clusters"]) == ["a", "ns", "s3://lake"]


def test_600_edges_are_cut_to_what_mermaid_draws(mermaid: RealMermaid) -> None:
    view = _grid(20, 30)
    # The control: all 600 edges are what Mermaid refuses, so this test can see it.
    assert "Edge limit exceeded" in mermaid.refuses(
        mermaid_chart(view, max_edges=10**6).text)
    chart = mermaid_chart(view, hint="the whole chain: chainml graph --format html")
    assert not chart.complete and chart.edges <= MAX_EDGES
    drawn = mermaid.draw(chart.text)
    assert drawn["links"] == chart.edges == 20 * (chart.nodes - 20)
    assert drawn["nodes"][-1] == "left_out"
    assert len(drawn["nodes"]) == chart.nodes + 1
    note = drawn["labels"][-1]
    assert note.startswith(f"Not drawn: {50 - chart.nodes} of 50 nodes and 100 of 600 edges")
    assert "Mermaid draws at most 500 edges" in note and "--format html" in note


def test_long_source_is_cut_to_what_mermaid_draws(mermaid: RealMermaid) -> None:
    # 1,500 nodes with long names: few edges, far more than 50,000 characters.
    nodes = [ViewNode(name=f"team_{i % 7}/{'feature_' * 6}{i}", kind="feature", version="1.0")
             for i in range(1500)]
    edges = [ViewEdge(upstream=nodes[i].name, downstream=nodes[i + 1].name)
             for i in range(0, 1500, 3)]
    view = GraphView(nodes=nodes, edges=edges, title="long")
    # The control: Mermaid draws the uncut source as a failure box, without an error.
    assert mermaid.refuses(mermaid_chart(view, max_text=10**7).text) == (
        "Maximum text size in diagram exceeded")
    for cluster in (False, True):
        chart = mermaid_chart(view, cluster=cluster)
        assert not chart.complete and "50,000 characters" in (chart.reason or "")
        assert len(chart.text.encode("utf-16-le")) // 2 <= MAX_TEXT
        drawn = mermaid.draw(chart.text)
        assert len(drawn["nodes"]) == chart.nodes + 1 and drawn["links"] == chart.edges
        assert len(drawn["clusters"]) == (7 if cluster else 0)


# --- the command line ------------------------------------------------------------------------


def test_demo_chain_graph_and_report(mermaid: RealMermaid, registry: Registry,
                                     database_url: str) -> None:
    build_example(registry)
    registry.register(kind="source", name="clicks_raw", version="2026-11-08")
    for args in ((), ("--impact", "clicks_raw"), ("--cluster",),
                 ("--focus", "ranker", "--depth", "1")):
        result = run(database_url, "graph", "--format", "mermaid", "-o", "-", *args)
        assert result.exit_code == 0, result.output
        assert "leaves out" not in result.stderr
        drawn = mermaid.draw(result.stdout)
        if not args:
            assert len(drawn["nodes"]) == len(EXAMPLE)
            assert drawn["links"] == sum(len(inputs) for *_, inputs in EXAMPLE)
    report = run(database_url, "check", "--format", "markdown")
    assert report.exit_code == 1, report.output
    assert "left out" not in report.stdout
    chart = _fenced_chart(report.stdout)
    drawn = mermaid.draw(chart)
    assert len(drawn["nodes"]) == len(_node_ids(chart)) > 3


@pytest.fixture
def grid_url(registry: Registry, database_url: str, tmp_path: Path) -> str:
    """12 sources read by 48 models (576 edges); every model tested, then every source moves."""
    lines = ["chainml: 1", "nodes:"]
    lines += [f"  - {{name: src_{i:02d}, kind: source, version: '1'}}" for i in range(12)]
    inputs = ", ".join(f"src_{i:02d}" for i in range(12))
    lines += [f"  - {{name: model_{j:02d}, kind: model, version: '1', inputs: [{inputs}]}}"
              for j in range(48)]
    chain = tmp_path / "grid.yaml"
    chain.write_text("\n".join(lines) + "\n", "utf-8")
    assert run(database_url, "apply", str(chain)).exit_code == 0
    for j in range(48):
        registry.record_test(f"model_{j:02d}", passed=True)
    for i in range(12):
        registry.register(kind="source", name=f"src_{i:02d}", version="2")
    return database_url


def test_12_sources_48_models_report(mermaid: RealMermaid, grid_url: str) -> None:
    report = run(grid_url, "check", "--format", "markdown")
    assert report.exit_code == 1, report.output
    text = report.stdout
    assert "<summary>Affected part of the chain (7 of 60 nodes and 84 of 576 edges left out)" \
        in text
    assert ("The chart leaves out 7 of 60 nodes and 84 of 576 edges, as Mermaid draws at "
            "most 500 edges; `chainml graph --format html` draws the whole chain.") in text
    chart = _fenced_chart(text)
    assert "flowchart LR" in chart.splitlines()[:4]
    drawn = mermaid.draw(chart)
    assert len(drawn["nodes"]) == 53 + 1 and drawn["links"] == 12 * 41
    assert drawn["labels"][-1].startswith("Not drawn: 7 of 60 nodes and 84 of 576 edges")


def test_12_sources_48_models_graph(mermaid: RealMermaid, grid_url: str) -> None:
    result = run(grid_url, "graph", "--format", "mermaid", "-o", "-")
    assert result.exit_code == 0, result.output
    assert "leaves out 7 of 60 nodes and 84 of 576 edges" in result.stderr
    assert "--format html or svg draws all of it" in result.stderr
    drawn = mermaid.draw(result.stdout)
    assert drawn["links"] == 492 and drawn["nodes"][-1] == "left_out"
    # Focused on one model, the chart is whole again: 13 nodes, 12 edges.
    focused = run(grid_url, "graph", "--format", "mermaid", "-o", "-", "--focus", "model_07")
    assert focused.exit_code == 0 and "leaves out" not in focused.stderr
    drawn = mermaid.draw(focused.stdout)
    assert len(drawn["nodes"]) == 13 and drawn["links"] == 12
