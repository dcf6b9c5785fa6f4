"""The HTML page in a real browser: headless Chromium driven over the DevTools pipe.

No extra Python package: Chromium's ``--remote-debugging-pipe`` speaks the
Chrome DevTools Protocol as NUL-terminated JSON messages on file descriptors 3
(commands in) and 4 (replies and events out), which the stdlib can drive.
"""

from __future__ import annotations

import base64
import fcntl
import html
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from chainml.render.dot import to_dot
from chainml.render.html import to_html
from chainml.render.mermaid import to_mermaid
from chainml.render.run import render_bytes
from tests.render_fixtures import fraud_view, hostile_view, need_binary

pytestmark = pytest.mark.browser

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars",
    "--remote-debugging-pipe", "about:blank",
]


class Browser:
    """A minimal CDP client over Chromium's debugging pipe (one page, flat sessions)."""

    def __init__(self, exe: str, profile: Path) -> None:
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Move the child's ends above 10 so that dup2 onto 3 and 4 cannot clobber them.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
        for fd in (to_child_r, from_child_w):
            os.close(fd)

        def wire() -> None:  # runs in the child, between fork and exec
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        self.proc = subprocess.Popen(
            [exe, *CHROMIUM_FLAGS[:-1], f"--user-data-dir={profile}", CHROMIUM_FLAGS[-1]],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            # close_fds=False keeps 3 and 4 open across exec; every other descriptor
            # Python made is close-on-exec anyway.
            preexec_fn=wire, close_fds=False,
        )
        os.close(hi_r)
        os.close(hi_w)
        self.out = os.fdopen(to_child_w, "wb", buffering=0)
        self.inp = os.fdopen(from_child_r, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.inp.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the debugging pipe")
            self.buffer += chunk
        raw, _, self.buffer = self.buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """Send one command (to the page session once attached) and return its result."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        self.out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def open_page(self, url: str) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=1400, height=1000,
                  deviceScaleFactor=1, mobile=False)
        self.send("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw {result['exceptionDetails']}")
        return result["result"].get("value")

    def click(self, x: float, y: float) -> None:
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left",
                      clickCount=1)

    def screenshot(self, path: Path) -> None:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def errors(self) -> list[str]:
        """Console errors, exceptions and CSP reports seen so far."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
            elif method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(json.dumps(params.get("args"))[:500])
        return found

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        self.inp.close()


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


def test_mermaid_renders_in_browser(browser: Browser, tmp_path: Path) -> None:
    """Optional: with CHAINML_TEST_MERMAID_JS=path/to/mermaid.min.js (npm's mermaid)."""
    script = os.environ.get("CHAINML_TEST_MERMAID_JS")
    if not script or not Path(script).is_file():
        pytest.skip("set CHAINML_TEST_MERMAID_JS to a local mermaid.min.js to run this check")
    sources = [to_mermaid(fraud_view()), to_mermaid(hostile_view())]
    page = tmp_path / "mermaid.html"
    blocks = "".join(f'<pre class="mermaid">{html.escape(s)}</pre>' for s in sources)
    page.write_text(
        f'<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>{blocks}'
        f'<script src="{Path(script).resolve().as_uri()}"></script><script>'
        "window.alerted=0;window.alert=function(){window.alerted++;};"
        "mermaid.initialize({startOnLoad:false,securityLevel:'strict'});"
        "mermaid.run().then(function(){window.done='ok';})"
        ".catch(function(e){window.done=String(e);});</script></body></html>",
        "utf-8",
    )
    browser.open_page(page.as_uri())
    deadline = time.monotonic() + 30
    while browser.evaluate("window.done || null") is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert browser.evaluate("window.done") == "ok"
    assert browser.evaluate("window.alerted") == 0
    assert browser.evaluate("document.querySelectorAll('pre script, pre img').length") == 0
    labels = browser.evaluate(
        "Array.from(document.querySelectorAll('pre.mermaid')[1].querySelectorAll('.nodeLabel'))"
        ".map(function(e){return e.textContent;})"
    )
    assert 'a/b:c.d-e_f"><script>alert(1)</script>' in labels
    assert "x\\N\\G\\l" in labels
