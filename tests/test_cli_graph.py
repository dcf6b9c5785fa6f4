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
from tests.clirun import run
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
