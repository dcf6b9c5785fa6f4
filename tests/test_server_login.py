"""The web UI under ``--require-token-for-reads``: a page asked for without a token sends
the browser to the sign-in form; a valid token is kept in a cookie (HttpOnly,
SameSite=Strict) that opens reads only, never writes; a bad, revoked or expired token is
refused with one sentence; ``next`` never leads off the site. Then the same in Chromium,
with axe-core on the form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import Settings, create_app
from tests.chains import build_example
from tests.serving import in_thread
from tests.test_server_browser import AXE, Watched, _chromium

BACKENDS = ["sqlite"]  # the HTTP layer; the registry calls are tested on every backend


@pytest.fixture
def locked(registry: Registry) -> tuple[TestClient, Registry]:
    build_example(registry)
    app = create_app(registry, Settings(require_token_for_reads=True))
    return TestClient(app, follow_redirects=False), registry


def test_pages_send_the_browser_to_the_form(locked: tuple[TestClient, Registry]) -> None:
    client, _ = locked
    for path in ("/", "/nodes/ranker", "/lineage/ranker?depth=3", "/envs", "/history"):
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login?next=%2F"), path
    assert client.get("/api/v1/nodes/ranker").status_code == 401  # the API says 401
    form = client.get("/login?next=/nodes/ranker")
    assert form.status_code == 200 and 'name="token"' in form.text
    assert client.get("/static/style.css").status_code == 200  # the form has its style


def test_a_token_opens_reads_only(locked: tuple[TestClient, Registry]) -> None:
    client, reg = locked
    reader = reg.token_create("viewer", scope="read").token
    writer = reg.token_create("ci", scope="write").token
    answer = client.post("/login", data={"token": reader, "next": "/nodes/ranker"})
    assert answer.status_code == 303 and answer.headers["location"] == "/nodes/ranker"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/nodes/ranker").status_code == 200
    assert client.get("/api/v1/check").status_code == 200
    assert "Sign out" in client.get("/").text
    runs = len(reg.node("ranker").versions)
    # The cookie is never a write credential, whatever scope its token has.
    for token in (reader, writer):
        client.cookies.set("chainml_token", token)
        assert client.post("/api/v1/runs", json={"node": "ranker", "passed": True}
                           ).status_code == 401
    assert len(reg.node("ranker").versions) == runs and not any(
        e.action == "test.recorded" and e.actor in ("viewer", "ci") for e in reg.log())
    out = client.post("/logout")
    assert out.status_code == 303 and 'chainml_token=""' in out.headers["set-cookie"]


def test_refusals_are_one_sentence(locked: tuple[TestClient, Registry], clock: Any) -> None:
    client, reg = locked
    revoked = reg.token_create("old", scope="read").token
    reg.token_revoke("old")
    brief = reg.token_create("brief", scope="read", expires="1h").token
    clock.advance(hours=2)
    for token, words in (("", "needs a token"), ("cml_nonsense", "not valid"),
                         (revoked, "revoked"), (brief, "expired")):
        answer = client.post("/login", data={"token": token, "next": "/"})
        assert answer.status_code == 401, (token, answer.text)
        assert words in answer.text and "set-cookie" not in answer.headers
    # A cookie holding a revoked token is refused, not ignored: back to the form.
    client.cookies.set("chainml_token", revoked)
    assert client.get("/nodes/ranker").status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil",
                                    "javascript:alert(1)"])
def test_next_stays_on_the_site(locked: tuple[TestClient, Registry], target: str) -> None:
    client, reg = locked
    token = reg.token_create("viewer", scope="read").token
    answer = client.post("/login", data={"token": token, "next": target})
    assert answer.headers["location"] == "/"


@pytest.fixture(scope="module")
def locked_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('login') / 'registry.db'}"
    reg = build_example(Registry.init(url=url))
    token = reg.token_create("viewer", scope="read").token
    try:
        with in_thread(create_app(reg, Settings(require_token_for_reads=True))) as base:
            yield base, token
    finally:
        reg.close()


def test_signing_in_in_a_browser(locked_site: tuple[str, str]) -> None:
    from playwright.sync_api import sync_playwright

    site, token = locked_site
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_chromium(),
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            watched = Watched(browser, site)
            page = watched.page
            page.goto(site + "/nodes/ranker")
            page.wait_for_url("**/login?next=**")
            page.evaluate(AXE.read_text(encoding="utf-8") + "\n;window.__axe = axe;")
            result = page.evaluate("window.__axe.run(document, {resultTypes: ['violations']})")
            assert [v["id"] for v in result["violations"]
                    if v["impact"] in ("serious", "critical")] == []
            page.get_by_label("Token").fill("cml_wrong")
            page.get_by_role("button", name="Sign in").click()
            assert "not valid" in page.get_by_role("alert").inner_text()
            page.get_by_label("Token").fill(token)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/nodes/ranker")
            assert "ranker" in page.title()
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url("**/login")
            page.goto(site + "/")
            page.wait_for_url("**/login?next=**")
            # The login POST with a wrong token answers 401: the browser logs that as a
            # failed resource; nothing else may go wrong.
            assert [p for p in watched.problems if "401" not in p] == []
            watched.close()
        finally:
            browser.close()
