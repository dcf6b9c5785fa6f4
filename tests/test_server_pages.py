"""The web UI over the ASGI app: every page answers HTML for the example chain, unknown
nodes get a one-sentence 404 page, registry text is escaped everywhere, search finds by
name, owner, tag and kind, the lineage drawing links every node to its own lineage page
and follows the depth, and no page reaches for another host or runs inline script."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.render import dot, svgsafe
from chainml.render.text import STATUS_COLORS
from chainml.render.view import GraphView, ViewNode
from chainml.server.app import create_app
from tests.chains import EXAMPLE, build_example

HOSTILE_NAME = "team-a/../x:y_-.z"  # every kind of character a name may hold
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(2)>"


@pytest.fixture
def reg(registry: Registry) -> Registry:
    build_example(registry)
    registry.register(kind="model", name="ranker", version="1.5.0", owner="ana",
                      tags=["ads", "ranking"], description="Ranks the feed.",
                      inputs=["click_features", "embedding_features"])
    registry.env_create("staging")
    for name in ("ranker", "ranking_safety"):
        registry.record_test(name, passed=True)
    registry.deploy([name for _, name, _, _ in EXAMPLE], env="staging")
    return registry


@pytest.fixture
def client(reg: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(reg)) as c:
        yield c


@pytest.fixture
def hostile(reg: Registry) -> Registry:
    reg.register(kind="model", name=HOSTILE_NAME, version="1", inputs=["ranker"],
                 description=SCRIPT, owner=IMG, tags=["<b>bold</b>"],
                 meta={"<i>k</i>": SCRIPT})
    reg.record_test(HOSTILE_NAME, passed=False, note=SCRIPT)
    reg.deploy([HOSTILE_NAME], env="staging", force=True, reason=SCRIPT)
    return reg


def url(prefix: str, name: str, query: str = "") -> str:
    return f"/{prefix}/{quote(name, safe='')}" + (f"?{query}" if query else "")


PAGES = ["/", "/search?q=rank", "/nodes/ranker", "/lineage/ranker",
         "/lineage/ranker?depth=1&direction=upstream", "/impact/click_features", "/envs",
         "/history", "/history?node=ranker&env=staging&limit=5"]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_answers_html_with_its_json_twin(client: TestClient, page: str) -> None:
    got = client.get(page)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/html")
    assert got.text.startswith("<!doctype html>")
    assert 'href="/api/v1/' in got.text  # the JSON twin
    twin = re.search(r'class="twin" href="([^"]+)"', got.text)
    assert twin is not None
    assert client.get(twin.group(1).replace("&amp;", "&")).status_code == 200


def test_the_gate_shows_the_check_and_each_environment(client: TestClient,
                                                        reg: Registry) -> None:
    reg.register(kind="source", name="clicks_raw", version="2026-12-01")
    page = client.get("/").text
    assert "failed:" in page and "staging" in page
    assert "clicks_raw 2026-11-01 → 2026-12-01 is untested by" in page
    assert "chainml test record NODE --passed" in page  # the command that clears them
    assert 'href="/nodes/ranker"' in page


def test_the_gate_names_the_first_nodes_of_a_group_and_counts_the_rest(
        registry: Registry) -> None:
    from chainml.server.pages import NAMES_SHOWN

    registry.register(kind="source", name="s", version="1")
    for i in range(NAMES_SHOWN + 5):
        registry.register(kind="model", name=f"m{i:02d}", version="1", inputs=["s"])
        registry.record_test(f"m{i:02d}", passed=True)
    registry.register(kind="source", name="s", version="2")
    with TestClient(create_app(registry)) as client:
        page = client.get("/").text
    assert f"s 1 → 2 is untested by {NAMES_SHOWN + 5} nodes" in page
    shown = re.findall(r'class="chip [^"]*" href="/nodes/(m\d\d)"', page)
    assert shown == [f"m{i:02d}" for i in range(NAMES_SHOWN)]
    assert "and 5 more" in page


def test_the_impact_preview_lists_the_nearest_and_counts_the_rest(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from chainml.server import pages

    monkeypatch.setattr(pages, "IMPACT_ROWS", 3)
    registry.register(kind="source", name="s", version="1")
    for name in ("f1", "f2"):
        registry.register(kind="feature", name=name, version="1", inputs=["s"])
    for name in ("m1", "m2", "m3"):
        registry.register(kind="model", name=name, version="1", inputs=["f1"])
    with TestClient(create_app(registry)) as client:
        page = client.get("/impact/s").text
    assert "would reach <b>5</b> nodes downstream and mark <b>3</b>" in page  # the models
    listed = re.findall(r'<a class="node" href="/nodes/(\w+)"', page)
    assert listed == ["f1", "f2", "m1"], listed  # distance 1, then the nearest of 2
    assert "… and 2 more nodes, further away" in page


def test_the_history_lists_the_first_items_of_a_long_detail(
        registry: Registry) -> None:
    from chainml.server.pages import LIST_SHOWN

    registry.register(kind="source", name="s", version="1")
    names = [f"m{i:02d}" for i in range(LIST_SHOWN + 4)]
    for name in names:
        registry.register(kind="model", name=name, version="1", inputs=["s"])
    registry.env_create("prod")
    registry.deploy(names, env="prod", force=True, reason="all of it")
    with TestClient(create_app(registry)) as client:
        page = client.get("/history?env=prod").text
    shown = [n for n in names if f"{n}@1" in page]
    assert shown == names[:LIST_SHOWN], shown
    assert "… and 4 more" in page


def test_the_node_page_has_versions_inputs_consumers_runs_and_deployments(
        client: TestClient) -> None:
    page = client.get("/nodes/ranker").text
    for text in ("1.4.0", "1.5.0", 'href="/nodes/click_features"',
                 'href="/nodes/ranking_safety"', "passed", "staging", "verified",
                 'href="/lineage/ranker?depth=2&amp;direction=both"'):
        assert text in page, text


@pytest.mark.parametrize("page", ["/nodes/nope", "/lineage/nope", "/impact/nope"])
def test_an_unknown_node_is_a_404_page_of_one_sentence(client: TestClient, page: str) -> None:
    got = client.get(page)
    assert got.status_code == 404
    assert got.headers["content-type"].startswith("text/html")
    sentence = re.search(r'<p class="sentence">(.*?)</p>', got.text, re.S)
    assert sentence is not None and sentence.group(1).startswith("No node named")
    assert sentence.group(1).count(". ") == 0


@pytest.mark.parametrize("page", ["/lineage/ranker?depth=7", "/lineage/ranker?depth=x",
                                  "/lineage/ranker?direction=sideways", "/history?limit=0",
                                  "/history?env=nowhere"])
def test_bad_controls_are_refused_in_a_sentence(client: TestClient, page: str) -> None:
    got = client.get(page)
    assert got.status_code == 400
    assert got.headers["content-type"].startswith("text/html")
    assert '<p class="sentence">' in got.text


def test_hostile_text_renders_as_text_on_every_page(client: TestClient,
                                                    hostile: Registry) -> None:
    pages = ["/", url("nodes", HOSTILE_NAME), url("lineage", HOSTILE_NAME),
             url("impact", "ranker"), f"/search?q={quote(HOSTILE_NAME)}",
             f"/history?node={quote(HOSTILE_NAME)}", "/history", "/envs"]
    for page in pages:
        got = client.get(page)
        assert got.status_code == 200, (page, got.text)
        assert HOSTILE_NAME in got.text, page
        for raw in ("<script", "<img", "<b>bold", "<i>k"):
            assert raw not in got.text, (page, raw)
    node = client.get(url("nodes", HOSTILE_NAME)).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in node
    assert "&lt;img src=x onerror=alert(2)&gt;" in node


def test_search_finds_by_name_owner_tag_and_kind(client: TestClient) -> None:
    def found(q: str) -> set[str]:
        page = client.get("/search", params={"q": q}).text
        return set(re.findall(r'<a class="node" href="/nodes/([^"]+)">', page))

    assert found("fraud") == {"fraud_scorer", "fraud_rules"}
    assert found("owner:ana") == {"ranker"}
    assert found("ana") == {"ranker"}
    assert found("tag:ads") == {"ranker"}
    assert found("kind:policy") == {"fraud_rules", "ranking_safety"}
    assert found("kind:model rank") == {"ranker"}
    assert found("nothing-like-this") == set()
    assert "No node matches" in client.get("/search?q=zzz").text


def _svg(page: str) -> str:
    match = re.search(r"<svg .*?</svg>", page, re.S)
    assert match is not None
    return match.group(0)


def test_the_lineage_drawing_links_each_node_to_its_lineage(client: TestClient) -> None:
    svg = _svg(client.get("/lineage/embedding_features?depth=1").text)
    links = set(re.findall(r'xlink:href="(/lineage/[^"]+)"', svg))
    expected = {"/lineage/" + n + "?depth=1&amp;direction=both"
                for n in ("embedding_features", "user_embedding", "fraud_scorer", "ranker")}
    assert links == expected
    assert 'target="_top"' in svg
    # Every link is a node of the drawing; nothing else links.
    assert svg.count("href=") == svg.count('class="node') == len(links)
    # A link followed is a page focused on that node.
    assert client.get("/lineage/ranker?depth=1&direction=both").status_code == 200


def test_depth_changes_how_many_nodes_are_drawn(client: TestClient) -> None:
    def drawn(depth: int) -> int:
        svg = _svg(client.get(f"/lineage/embedding_features?depth={depth}").text)
        return svg.count('class="node')

    counts = [drawn(d) for d in range(4)]
    assert counts[0] == 1
    assert counts[0] < counts[1] < counts[2] <= counts[3]
    upstream = _svg(client.get("/lineage/ranker?depth=6&direction=upstream").text)
    assert "feed_app" not in upstream and "clicks_raw" in upstream


def test_a_lineage_too_large_to_draw_is_listed(client: TestClient,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from chainml.server import pages

    monkeypatch.setattr(pages, "MAX_DRAWN", 3)
    page = client.get("/lineage/embedding_features?depth=1").text
    assert "<figure" not in page and "too many to draw" in page
    assert 'href="/nodes/fraud_scorer"' in page


def test_lineage_is_drawn_once_per_registry_generation(client: TestClient, reg: Registry,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from chainml.render import run

    calls = []
    real = run.render_bytes

    def counting(source: str, fmt: str, **kw: float) -> bytes:
        calls.append(fmt)
        return real(source, fmt, **kw)

    monkeypatch.setattr(run, "render_bytes", counting)
    before = reg.generation()
    client.get("/lineage/ranker?depth=2")
    client.get("/lineage/ranker?depth=2")
    assert len(calls) == 1
    client.get("/lineage/ranker?depth=3")
    assert len(calls) == 2
    assert "#ec8a6e" not in _svg(client.get("/lineage/ranker?depth=2").text).lower()
    reg.record_test("ranking_safety", passed=False)
    assert reg.generation() > before
    page = client.get("/lineage/ranker?depth=2").text
    assert len(calls) == 3
    assert "#ec8a6e" in _svg(page).lower()  # ranking_safety is drawn failed now


def test_generation_is_the_newest_event(registry: Registry) -> None:
    assert registry.generation() == 0
    registry.register(kind="source", name="raw", version="1")
    first = registry.generation()
    assert first == registry.log()[-1].id
    registry.register(kind="source", name="raw", version="2")
    assert registry.generation() > first


OTHER_HOST = re.compile(r"https?://[^\s\"'<>)]+")
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


class Tags(HTMLParser):
    """Every tag and attribute of a page, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def test_no_page_or_asset_reaches_another_host(client: TestClient, hostile: Registry) -> None:
    texts = {page: client.get(page).text for page in PAGES}
    texts[url("nodes", HOSTILE_NAME)] = client.get(url("nodes", HOSTILE_NAME)).text
    texts[url("lineage", HOSTILE_NAME)] = client.get(url("lineage", HOSTILE_NAME)).text
    for asset in ("/static/style.css", "/static/favicon.svg"):
        got = client.get(asset)
        assert got.status_code == 200
        texts[asset] = got.text
    for page, text in texts.items():
        assert set(OTHER_HOST.findall(text)) <= NAMESPACES, page
        for found in re.findall(r"url\(([^)]*)\)", text):
            assert found.strip("\"'").startswith("/static/"), (page, found)
        if page.startswith("/static/"):
            continue
        parsed = Tags()
        parsed.feed(text)
        for tag, attrs in parsed.tags:
            assert tag not in ("script", "style", "iframe", "object", "embed"), (page, tag)
            for name, value in attrs:
                assert name != "style" and not name.startswith("on"), (page, tag, name)
                if (tag, name, value) == ("link", "href", "data:,"):
                    continue  # the empty icon: no request for /favicon.ico at all
                if name in ("href", "xlink:href", "src", "action"):
                    # A path on this host: never a scheme, never '//host'.
                    assert re.fullmatch(r"/(?!/)[^:]*", value or ""), (page, name, value)


def test_every_answer_carries_the_csp(client: TestClient) -> None:
    for page in ("/", "/nodes/ranker", "/nodes/nope", "/static/style.css"):
        csp = client.get(page).headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "default-src 'self'" in csp


def test_the_pages_use_the_graphs_status_colours(client: TestClient) -> None:
    css = client.get("/static/style.css").text
    for status, colour in STATUS_COLORS.items():
        assert f"--st-{status or 'none'}: {colour};" in css


def test_dot_links_only_same_site_paths_and_svgsafe_keeps_only_those() -> None:
    view = GraphView(nodes=[ViewNode(name="a:b/c", kind="source"),
                            ViewNode(name="d", kind="model")])
    source = dot.to_dot(view, links={"a:b/c": "/lineage/a%3Ab%2Fc?depth=2&direction=both"})
    assert 'href="/lineage/a%3Ab%2Fc?depth=2&amp;direction=both"' in source
    assert "href" not in dot.to_dot(view)  # no links unless asked for
    for bad in ("javascript:alert(1)", "//evil.example/x", "https://evil.example/",
                '/x" onclick="y', "/x\\N"):
        with pytest.raises(ValueError):
            dot.to_dot(view, links={"d": bad})
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
           '<a xlink:href="/lineage/d" target="_top"><text>d</text></a>'
           '<a xlink:href="javascript:alert(1)" target="_blank"><text>x</text></a>'
           '<a href="//evil.example/"><text>y</text></a></svg>')
    kept = svgsafe.sanitize_svg(svg, links=True)
    assert kept.count("href") == 1 and 'xlink:href="/lineage/d"' in kept
    assert 'target="_top"' in kept and "_blank" not in kept
    assert "href" not in svgsafe.sanitize_svg(svg)  # off by default


def test_the_gates_read_together_are_the_checks_read_apart(reg: Registry) -> None:
    """``Registry.gates`` shares the whole-registry status reads between ``check`` and
    each ``check --env``: what it says must be what each says alone, a skewed
    environment and a retested node included; and a write in between is seen."""
    reg.env_create("prod", after="staging")
    reg.deploy(["click_features"], env="prod", force=True, reason="skew")
    reg.register(kind="feature", name="click_features", version="1.4.0", inputs=["clicks_raw"])
    failing: list[list[str]] = []
    for _ in range(2):
        result, envs = reg.gates()
        assert result == reg.check()
        assert [(e.name, r) for e, r in envs] == [
            (e.name, reg.env_check(e.name)) for e in reg.env_list()]
        assert not result.ok and [e.name for e, _ in envs] == ["staging", "prod"]
        failing.append([e.name for e in result.failing])
        reg.record_test(failing[-1][0], passed=True)
    assert failing[1] == failing[0][1:]
