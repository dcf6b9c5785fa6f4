"""The self-contained HTML page (chainml.render.html) and the SVG sanitiser."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

import pytest

from chainml.render.dot import to_dot
from chainml.render.html import CSP, json_for_script, to_html
from chainml.render.run import render_bytes
from chainml.render.svgsafe import UnsafeSvg, sanitize_svg
from chainml.render.view import GraphView
from tests.render_fixtures import HOSTILE, big_view, fraud_view, hostile_view, need_binary


class Page(HTMLParser):
    """Collects tags (with attributes), script and style bodies, and visible text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.styles: list[str] = []
        self.text: list[str] = []
        self._open: str | None = None
        self._attrs: dict[str, str | None] = {}
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in ("script", "style"):
            self._open, self._attrs = tag, dict(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == self._open:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open == "script":
            self.scripts.append((self._attrs, data))
        elif self._open == "style":
            self.styles.append(data)
        else:
            self.text.append(data)

    def ids(self, tag: str, cls: str) -> list[str]:
        return [a["id"] or "" for t, a in self.tags
                if t == tag and (a.get("class") or "").split()[:1] == [cls] and a.get("id")]

    def data(self) -> dict[str, dict[str, dict[str, object]]]:
        block = next(body for attrs, body in self.scripts if attrs.get("id") == "chain-data")
        loaded: dict[str, dict[str, dict[str, object]]] = json.loads(block)
        return loaded


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.fixture
def fraud_svg() -> bytes:
    need_binary("dot", "apt-get install graphviz")
    return render_bytes(to_dot(fraud_view(), legend=False), "svg")


def test_page_with_graph(fraud_svg: bytes) -> None:
    view = fraud_view()
    text = to_html(view, fraud_svg)
    page = Page(text)
    node_ids = [i for i in page.ids("g", "node") if re.fullmatch(r"n\d+", i)]
    assert sorted(node_ids, key=lambda i: int(i[1:])) == [f"n{i}" for i in range(12)]
    assert len([i for i in page.ids("g", "edge") if re.fullmatch(r"e\d+", i)]) == 13
    rows = [a["data-id"] for t, a in page.tags if t == "tr" and "data-id" in a]
    assert rows == [f"n{i}" for i in range(12)]
    data = page.data()
    assert sorted(data["nodes"]) == sorted(node_ids)
    scorer = data["nodes"]["n5"]
    assert scorer["name"] == "fraud/scorer" and scorer["version"] == "3.1.0"
    assert scorer["inputs"] == ["fraud/embed@4", "fraud/account_age"]
    assert scorer["consumers"] == ["risk/thresholds", "risk/allowlist"]
    assert data["nodes"]["n6"]["reasons"] == view.nodes[6].reasons
    assert "12 nodes: 1 verified, 1 untested, 1 needs retest, 1 failed" in text
    legend = text[text.index('<section id="legend"'):text.index('<section id="status"')]
    for word in ("source", "feature", "model", "policy", "consumer", "verified", "untested",
                 "needs retest", "failed", "waived", "stale", "no tests needed", "feedback"):
        assert word in legend


def test_page_is_self_contained_with_strict_csp(fraud_svg: bytes) -> None:
    text = to_html(fraud_view(), fraud_svg)
    page = Page(text)
    csp = [a["content"] for t, a in page.tags
           if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == [CSP]
    policy = dict(part.split(" ", 1) for part in CSP.split("; "))
    assert policy["default-src"] == "'none'" and policy["img-src"] == "data:"
    scripts = [body for attrs, body in page.scripts if "type" not in attrs]
    assert len(page.scripts) == 2 and len(scripts) == 1
    assert policy["script-src"] == sha256(scripts[0])
    assert len(page.styles) == 1 and policy["style-src"] == sha256(page.styles[0])
    assert "unsafe" not in CSP
    # Nothing to fetch: no src/href anywhere, no url(), no http(s) but SVG namespaces.
    for tag, attrs in page.tags:
        assert "src" not in attrs and "href" not in attrs and "xlink:href" not in attrs, tag
        assert "style" not in attrs, tag  # a style attribute would need 'unsafe-inline'
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
    assert "url(" not in text and "@import" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {
        "http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"
    }


def test_page_without_svg_has_table_and_legend_only() -> None:
    page = Page(to_html(fraud_view(), None))
    assert page.ids("g", "node") == []
    assert [t for t, a in page.tags if t == "svg" and a.get("class") != "icon"] == []
    assert len([a for t, a in page.tags if t == "tr" and "data-id" in a]) == 12
    assert any(t == "section" and a.get("id") == "legend" for t, a in page.tags)
    assert "apt-get install graphviz" in "".join(page.text)


def test_hostile_text_is_only_ever_escaped() -> None:
    need_binary("dot", "apt-get install graphviz")
    view = hostile_view()
    text = to_html(view, render_bytes(to_dot(view, cluster=True), "svg"))
    text.encode("utf-8")  # lone surrogates were replaced
    page = Page(text)
    # Only our own elements: two scripts, no img/iframe/object, no handler, no link.
    assert [t for t, _ in page.tags if t == "script"] == ["script", "script"]
    injected = {"img", "iframe", "object", "embed", "b", "foreignobject", "image", "use"}
    assert not {t for t, _ in page.tags} & injected
    titles = 0
    for _, attrs in page.tags:
        assert not any(k.startswith("on") or k.endswith("href") or k == "src" for k in attrs)
        for key, value in attrs.items():
            if key == "xlink:title":  # a tooltip: text, so hostile text may show there
                titles += 1
            else:
                assert "javascript:" not in (value or ""), (key, value)
    assert titles >= len(view.nodes)
    for raw in ("<script>alert", "<IMG", "<img", "<b onmouseover", "<svg onload", "\u202e"):
        assert raw not in text, raw
    # The text is there, as text: visible in the table after unescaping.
    visible = "".join(page.text)
    assert "<script>alert(1)</script>" in visible and '<IMG SRC="/etc/passwd">' in visible
    # The JSON block: no raw < > &, and it decodes back to the cleaned text.
    block = next(body for attrs, body in page.scripts if attrs.get("id") == "chain-data")
    assert not set(block) & set("<>&\u2028\u2029")
    node = page.data()["nodes"]["n3"]
    reasons = node["reasons"]
    assert isinstance(reasons, list) and reasons[3] == HOSTILE[3]
    assert node["versions"] == view.nodes[3].versions
    assert node["owner"] == HOSTILE[3]


def test_json_for_script() -> None:
    out = json_for_script({"x": "</script><!-- & \u2028\u2029 \ud800"})
    assert out == (
        '{"x":"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028\\u2029 \\ud800"}'
    )
    assert json.loads(out) == {"x": "</script><!-- & \u2028\u2029 \ud800"}


EVIL_SVG = """<?xml version="1.0"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<!-- a comment -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     onload="alert(1)" width="10pt">
<script>alert(1)</script>
<g id="n0" class="node" onclick="alert(2)" style="background:url(https://e.vil/x)">
<title>n0</title>
<a xlink:href="javascript:alert(3)" href="javascript:alert(4)" xlink:title="tip &lt;b&gt;">
<text fill="javascript:alert(5)">&lt;script&gt;label</text></a>
<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>
<image xlink:href="data:image/png;base64,AAAA"/>
<set attributeName="onmouseover" to="alert(6)"/>
<animate attributeName="href" values="javascript:alert(7)"/>
<use xlink:href="#n0"/>
</g>
</svg>"""


def test_sanitize_svg_strips_everything_active() -> None:
    clean = sanitize_svg(EVIL_SVG)
    assert clean.startswith('<svg ') and clean.endswith("</svg>")
    lowered = clean.lower()
    for bad in ("<script", "onload", "onclick", "href", "javascript", "foreignobject", "<image",
                "<set", "<animate", "<use", "url(", "style=", "doctype", "<?xml", "<!--"):
        assert bad not in lowered, bad
    assert 'xlink:title="tip &lt;b&gt;"' in clean and "&lt;script&gt;label" in clean
    assert 'class="node"' in clean and 'width="10pt"' in clean
    assert 'xmlns="http://www.w3.org/2000/svg"' in clean


@pytest.mark.parametrize(
    "bad",
    [
        '<!DOCTYPE svg [<!ENTITY a "aaaa">]><svg xmlns="http://www.w3.org/2000/svg">&a;</svg>',
        "<svg xmlns='http://www.w3.org/2000/svg'><g></svg>",
        "<html><body>not svg</body></html>",
        "<svg>no namespace</svg>",
    ],
)
def test_sanitize_svg_refuses(bad: str) -> None:
    with pytest.raises(UnsafeSvg):
        to_html(fraud_view(), bad)


def test_sanitize_svg_replaces_characters_xml_forbids() -> None:
    # An SVG drawn from a registry written before registration refused them.
    svg = ('<svg xmlns="http://www.w3.org/2000/svg"><title>a\ufffeb\uffffc\x07d</title>'
           "<text>x\x1by</text></svg>")
    assert sanitize_svg(svg).endswith('><title>a\ufffdb\ufffdc\ufffdd</title>'
                                      "<text>x\ufffdy</text></svg>")


def test_empty_and_big_views() -> None:
    page = Page(to_html(GraphView(nodes=[], edges=[]), None))
    assert page.data() == {"nodes": {}, "byName": {}}
    big = big_view(5000)
    page = Page(to_html(big, None))
    assert len(page.data()["nodes"]) == 5000
