"""The HTML page in a real browser: headless Chromium (tests/browser.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chainml.render.dot import to_dot
from chainml.render.html import to_html
from chainml.render.run import render_bytes
from tests.browser import Browser
from tests.render_fixtures import fraud_view, hostile_view, need_binary

pytestmark = pytest.mark.browser


@pytest.fixture
def browser(tmp_path: Path) -> Any:
    exe = need_binary("chromium", "apt-get install chromium")
    b = Browser(exe, tmp_path / "profile")
    try:
        yield b
    finally:
        b.close()


def _center_of(browser: Browser, selector: str) -> tuple[float, float]:
    box = browser.evaluate(
        f"(function(){{var r=document.querySelector({json.dumps(selector)})"
        ".getBoundingClientRect();"
        "return [r.left+r.width/2, r.top+r.height/2, r.width, r.height];})()"
    )
    assert box[2] > 5 and box[3] > 5, f"{selector} is not visible: {box}"
    return box[0], box[1]


def test_graph_is_visible_and_click_shows_details(browser: Browser, tmp_path: Path) -> None:
    need_binary("dot", "apt-get install graphviz")
    view = fraud_view()
    page = tmp_path / "chain.html"
    page.write_text(to_html(view, render_bytes(to_dot(view, legend=False), "svg")), "utf-8")
    browser.open_page(page.as_uri())

    nodes = browser.evaluate("document.querySelectorAll('#graph svg g.node').length")
    assert nodes == len(view.nodes)
    size = browser.evaluate(
        "(function(){var r=document.querySelector('#graph svg').getBoundingClientRect();"
        "return [r.width, r.height];})()"
    )
    assert size[0] > 400 and size[1] > 150, size
    # The style sheet applied (a CSP hash mismatch would leave the page unstyled).
    assert browser.evaluate(
        "getComputedStyle(document.getElementById('details')).position"
    ) == "sticky"

    # Hovering shows a node's details while nothing is pinned by a click.
    browser.send("Input.dispatchMouseEvent", type="mouseMoved",
                 x=_center_of(browser, "#n4")[0], y=_center_of(browser, "#n4")[1])
    hovered = browser.evaluate("document.getElementById('details-body').textContent")
    assert "fraud/embed" in hovered and view.nodes[4].reasons[0] in hovered

    scorer = next(i for i, n in enumerate(view.nodes) if n.name == "fraud/scorer")
    x, y = _center_of(browser, f"#n{scorer}")
    browser.click(x, y)
    text = browser.evaluate("document.getElementById('details-body').textContent")
    assert "fraud/scorer" in text
    assert "3.1.0" in text and "fraud/embed@4" in text and "risk/thresholds" in text
    assert "ml-platform" in text and "The fraud/scorer model." in text
    assert browser.evaluate(f"document.getElementById('n{scorer}').classList.contains('selected')")

    # A node with open reasons shows them.
    failed = next(i for i, n in enumerate(view.nodes) if n.status == "failed")
    browser.click(*_center_of(browser, f"#n{failed}"))
    text = browser.evaluate("document.getElementById('details-body').textContent")
    assert view.nodes[failed].reasons[0] in text

    browser.screenshot(tmp_path / "chain.png")
    assert (tmp_path / "chain.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert browser.errors() == []


def test_table_only_page_works_without_svg(browser: Browser, tmp_path: Path) -> None:
    view = fraud_view()
    page = tmp_path / "table.html"
    page.write_text(to_html(view, None), "utf-8")
    browser.open_page(page.as_uri())
    assert browser.evaluate("document.querySelectorAll('#status-table tbody tr').length") == 12
    browser.click(*_center_of(browser, 'tr[data-id="n6"]'))
    text = browser.evaluate("document.getElementById('details-body').textContent")
    assert view.nodes[6].name in text and view.nodes[6].reasons[0] in text
    assert browser.errors() == []


def test_hostile_text_runs_no_script(browser: Browser, tmp_path: Path) -> None:
    need_binary("dot", "apt-get install graphviz")
    view = hostile_view()
    page = tmp_path / "hostile.html"
    page.write_text(to_html(view, render_bytes(to_dot(view, cluster=True), "svg")), "utf-8")
    browser.open_page(page.as_uri())
    # Anything injected would have created elements or run alert(); neither may happen.
    assert browser.evaluate("document.scripts.length") == 2
    assert browser.evaluate("document.querySelectorAll('img,iframe,object,embed').length") == 0
    browser.click(*_center_of(browser, "#n3"))
    text = browser.evaluate("document.getElementById('details-body').textContent")
    assert "<script>alert(1)</script>" in text  # shown as text, not run
    assert browser.evaluate("document.querySelectorAll('#details-body script,b').length") == 0
    assert not [e for e in browser.events if e.get("method") == "Page.javascriptDialogOpening"]
    assert browser.errors() == []
