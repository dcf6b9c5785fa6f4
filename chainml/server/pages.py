"""The web UI: server-rendered pages over the same library calls and models as the API.

Each page parses its query, calls the ``Registry`` and renders one template of
``templates/``; it links to its JSON twin under ``/api/v1/``. Jinja2 escapes every
value (``autoescape``), and no template marks registry text safe: the one piece of
markup built here is the lineage SVG, drawn by Graphviz from a view whose text
``render.dot`` escapes, then reduced by ``render.svgsafe`` to drawing elements and
same-site links. The pages run no inline script and load nothing from another host
(the CSP in ``app.py`` says so to the browser too).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from chainml.errors import ChainmlError, InvalidInput, NodeNotFound
from chainml.kinds import ALL_KINDS
from chainml.registry import Registry
from chainml.render import report
from chainml.render.text import STATUS_LABELS, clean, status_key
from chainml.render.view import ViewNode
from chainml.schemas import CheckResult, NodeOut, Status, StatusEntry
from chainml.server.auth import COOKIE, PageReader
from chainml.server.cache import Cache
from chainml.server.errors import status_of

router = APIRouter(include_in_schema=False)

DIRECTIONS = ("both", "upstream", "downstream")
MAX_DEPTH = 6
SEARCH_LIMIT = 200  # results listed; the rest are counted
GROUPS_SHOWN = 20  # cause groups per gate, as the text report
NAMES_SHOWN = 30  # node names per cause group
# How long the gate and environments pages wait for their content as of the registry
# now before they show what was computed before the latest writes (and reload until
# the new one is ready): cache.Current.
KEPT_WAIT = 1.0
ENV_ROWS = 500  # nodes in the environments table
IMPACT_ROWS = 500  # nodes listed by the impact preview, nearest first
LIST_SHOWN = 20  # items of a list in an event's details (the JSON has them all)
MAX_DRAWN = 400  # nodes a lineage drawing may hold: more is a wall, and slow for dot

Drawing = tuple[str, list[ViewNode]]  # sanitised SVG, the nodes drawn


# ---- links (every URL a page writes is built here, percent-encoded) --------------------


def _path(name: str) -> str:
    """A name as one path segment: '/' and ':' encoded, so 's3://lake/x' stays one
    segment and no browser resolves it as a scheme or a folder."""
    return quote(name, safe="")


def node_url(name: str) -> str:
    return f"/nodes/{_path(name)}"


def lineage_url(name: str, depth: int = 2, direction: str = "both") -> str:
    return f"/lineage/{_path(name)}?{urlencode({'depth': depth, 'direction': direction})}"


def impact_url(name: str) -> str:
    return f"/impact/{_path(name)}"


def history_url(node: str | None = None, env: str | None = None) -> str:
    query = {k: v for k, v in (("node", node), ("env", env)) if v}
    return "/history" + (f"?{urlencode(query)}" if query else "")


def api_url(path: str, **query: Any) -> str:
    """A JSON twin: ``path`` already encoded, ``query`` values encoded here."""
    pairs = {k: v for k, v in query.items() if v not in (None, "")}
    return f"/api/v1/{path}" + (f"?{urlencode(pairs, doseq=True)}" if pairs else "")


# ---- templates ----------------------------------------------------------------------------


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def _value(value: object) -> str:
    """A value from an event's details or a meta field as short text (the template
    escapes it): lists joined, mappings as key=value, booleans as yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        # A release of a whole 100,000-node chain is one event: listed whole, 2.5 MB.
        more = f", … and {len(value) - LIST_SHOWN} more" if len(value) > LIST_SHOWN else ""
        return ", ".join(_value(v) for v in value[:LIST_SHOWN]) + more
    if isinstance(value, dict):
        if "node" in value and "version" in value:
            return f"{value['node']}@{value['version']}"
        return " ".join(f"{k}={_value(v)}" for k, v in value.items())
    return clean(value, 2000)


def _status_label(status: object) -> str:
    key = getattr(status, "value", status)
    return STATUS_LABELS.get(key if isinstance(key, str) else None, str(key))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("chainml.server").joinpath("templates"))),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(node_url=node_url, lineage_url=lineage_url, impact_url=impact_url,
                       history_url=history_url, api_url=api_url, path=_path,
                       kinds=ALL_KINDS, directions=DIRECTIONS, max_depth=MAX_DEPTH)
    env.filters.update(when=_when, st=lambda s: status_key(getattr(s, "value", s)),
                       status_label=_status_label, clean=clean, value=_value)
    return env


_TEMPLATES = _env()


def _render(request: Request, template: str, http_status: int = 200, **context: Any
            ) -> Response:
    html = _TEMPLATES.get_template(template).render(request=request, **context)
    return HTMLResponse(html, status_code=http_status)


def _failure(request: Request, e: ChainmlError) -> Response:
    """The library's one sentence as a page, with the API's status (404 for an unknown
    node)."""
    code = status_of(e)
    title = "Not found" if code == 404 else "Cannot show this"
    look_for = e.name if isinstance(e, NodeNotFound) else None
    return _render(request, "error.html", code, title=title, sentence=str(e),
                   look_for=look_for)


def _guard(page: Callable[..., Response]) -> Callable[..., Response]:
    """``page`` answering a ChainmlError with an HTML page rather than the API's JSON."""

    @functools.wraps(page)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return page(*args, **kwargs)
        except ChainmlError as e:
            request = kwargs["request"]
            return _failure(request, e)

    return wrapped


def _number(text: str, what: str, low: int, high: int) -> int:
    """A whole number from a query parameter, refused in one sentence (as an HTML page,
    not FastAPI's JSON 422) when it is not one or out of range."""
    value = int(text) if text.strip().isdigit() and len(text) < 8 else None
    if value is None or not low <= value <= high:
        raise InvalidInput(f"{what} is a whole number from {low} to {high}, not "
                           f"{clean(text, 40)!r}.")
    return value


# ---- the gate -----------------------------------------------------------------------------


def _gate(result: CheckResult) -> dict[str, Any]:
    """What the gate template shows of one check: verdict, counts and groups by cause,
    each with the first NAMES_SHOWN of its nodes. Only that is kept between requests,
    not the 28,000 entries of a 100,000-node check after a hub change."""
    groups = report.cause_groups(result, show=lambda s: clean(s, 400))
    return {"ok": result.ok, "verdict": report.verdict(result),
            "groups": [{"headline": g.headline, "warning": g.warning, "ways": g.ways,
                        "nodes": [(e.name, e.status) for e in g.nodes[:NAMES_SHOWN]],
                        "total": len(g.nodes)} for g in groups[:GROUPS_SHOWN]],
            "more_groups": len(groups) - GROUPS_SHOWN,
            "counts": sorted(result.counts.items(), key=lambda kv: -kv[1])}


Gates = tuple[dict[str, Any], list[tuple[Any, dict[str, Any]]]]


def gates_now(reg: Registry) -> tuple[int, Gates]:
    """The gate page's content, with the generation it was computed at (read first)."""
    generation = reg.generation()
    result, envs = reg.gates()
    return generation, (_gate(result), [(e, _gate(r)) for e, r in envs])


@router.get("/", response_class=HTMLResponse)
@_guard
def gate_page(reg: PageReader, request: Request) -> Response:
    # Seconds on a 100,000-node registry: computed at start and after each write in a
    # thread of each worker, however many people look; a page waits for the newest up
    # to KEPT_WAIT seconds, then shows the previous one, saying so (cache.Current).
    generation = reg.generation()
    kept, current = request.app.state.gates.get(generation)
    gate, envs = kept.value
    return _render(request, "gate.html", gate=gate, envs=envs,
                   kept=kept, current=current, generation=generation)


# ---- search -------------------------------------------------------------------------------


@router.get("/search", response_class=HTMLResponse)
@_guard
def search_page(reg: PageReader, request: Request, q: str = "") -> Response:
    q = q[:400]
    found: list[NodeOut] = []
    total = 0
    statuses: dict[str, StatusEntry] = {}
    if q.split():
        found, total = reg.search(q, SEARCH_LIMIT)
        # Only the rows shown: the status of every node of a large registry costs seconds.
        statuses = reg.statuses([n.name for n in found]) if found else {}
    return _render(request, "search.html", q=q, results=found, total=total,
                   statuses=statuses, searched=bool(q.split()), twin=_search_twin(q.split()))


def _search_twin(terms: list[str]) -> str:
    """The API's nearest query: /api/v1/nodes filters by exact kind, owner and tag, and
    by part of the name."""
    query: dict[str, str] = {}
    for term in terms:
        field, sep, value = term.partition(":")
        if sep and field.lower() in ("kind", "owner", "tag"):
            query.setdefault(field.lower(), value)
        else:
            query.setdefault("q", term)
    return api_url("nodes", **query)


# ---- one node -----------------------------------------------------------------------------


@router.get("/nodes/{name:path}", response_class=HTMLResponse)
@_guard
def node_page(reg: PageReader, request: Request, name: str) -> Response:
    # What each environment's changes reach, kept per worker while the registry does not
    # change (app.py): without it a deployed node's status there reads every ancestor (a
    # deep node's on a 100,000-node registry, 1,000 rows; most of its page).
    reached = request.app.state.reached
    kept = reached.value()
    overview = reg.node_overview(name, kept=kept)
    if kept is None or not overview.served.keys() <= kept.keys() \
            or any(r.generation != overview.generation for r in kept.values()):
        reached.refresh()
    detail, history, env_status = overview.node, overview.history, overview.env_status
    served = overview.served
    events = history.events
    runs = [e for e in reversed(events) if e.action == "test.recorded"]
    releases = list(reversed(history.releases))
    status = detail.status
    return _render(request, "node.html", node=detail, status=status,
                   ways=report.clear_ways(status) if status and status.status not in
                   (Status.VERIFIED, Status.WAIVED) else [],
                   runs=runs, releases=releases, served=served, env_status=env_status,
                   history=list(reversed(events))[:50], events_total=len(events),
                   env_ways={env: report.clear_ways(e, env) for env, e in env_status.items()
                             if e is not None and e.status is not Status.VERIFIED})


def warm_up(app: Any, reg: Registry, times: int) -> None:
    """Compile every template and render one node's page ``times`` times, as requests
    would, before this process takes any: a new worker's first pages compiled the
    templates (0.4 s) and ran their first statements on cold connections while
    requests queued behind them (at 200 pages/s, those of the first half second took
    up to 0.4-0.7 s). The renders take the pool's connections in turn (it hands out
    the longest idle one first). The node is the one the newest of the last 20 events
    names; when none names one (an empty registry), no page is rendered."""
    for template in _TEMPLATES.list_templates():
        _TEMPLATES.get_template(template)
    name = next((e.node for e in reversed(reg.log(limit=20)) if e.node), None)
    if name is None:
        return
    request = Request({"type": "http", "method": "GET", "path": node_url(name),
                       "headers": [], "query_string": b"", "app": app})
    for _ in range(times):
        node_page(reg=reg, request=request, name=name)


# ---- lineage ------------------------------------------------------------------------------


def _cache(request: Request, name: str, size: int) -> Cache[Any]:
    """The worker's cache called ``name`` (made on first use)."""
    state = request.app.state
    if not hasattr(state, name):
        setattr(state, name, Cache(size=size))
    cache: Cache[Any] = getattr(state, name)
    return cache


def _draw(reg: Registry, name: str, depth: int, direction: str) -> Drawing:
    """The lineage around ``name`` as sanitised SVG (every node a link to its own
    lineage page, the focus in bold; "" when over MAX_DRAWN nodes) and its nodes."""
    from chainml.render import dot, run, svgsafe

    view = reg.graph_view(focus=name, direction=direction, depth=depth)
    nodes = sorted(view.nodes, key=lambda n: (n.name != name, n.name))
    if len(view.nodes) > MAX_DRAWN:
        return "", nodes
    view = view.model_copy(update={"title": None, "nodes": [
        n.model_copy(update={"highlighted": n.name == name}) for n in view.nodes]})
    links = {n.name: lineage_url(n.name, depth, direction) for n in view.nodes}
    source = dot.to_dot(view, legend=False, links=links)
    svg = svgsafe.sanitize_svg(run.render_bytes(source, "svg", timeout=30), links=True)
    return svg, nodes


@router.get("/lineage/{name:path}", response_class=HTMLResponse)
@_guard
def lineage_page(reg: PageReader, request: Request, name: str, depth: str = "2",
                 direction: str = "both") -> Response:
    hops = _number(depth, "depth", 0, MAX_DEPTH)
    if direction not in DIRECTIONS:
        raise InvalidInput("direction is both, upstream or downstream.")
    key = (reg.generation(), name, hops, direction)
    svg, nodes = _cache(request, "lineage_svgs", 64).get_or_compute(
        key, lambda: _draw(reg, name, hops, direction))
    return _render(request, "lineage.html", name=name, depth=hops, direction=direction,
                   svg=Markup(svg),  # sanitised by _draw: drawing elements, same-site links
                   nodes=nodes, max_drawn=MAX_DRAWN)


# ---- impact, environments, history ---------------------------------------------------------


@router.get("/impact/{name:path}", response_class=HTMLResponse)
@_guard
def impact_page(reg: PageReader, request: Request, name: str) -> Response:
    result = reg.impact(name)
    entries = sorted(result.impacted, key=lambda e: (e.distance, e.name))
    # A hub reaches 80,000 nodes on a 100,000-node registry: listed whole, 42 MB of page
    # and seconds to render. The nearest are listed, the rest counted.
    return _render(request, "impact.html", result=result, entries=entries[:IMPACT_ROWS],
                   total=len(entries), marked=sum(1 for e in entries if e.needs_tests))


def envs_now(reg: Registry) -> tuple[int, dict[str, Any]]:
    """The environments page's content, with the generation it was computed at (read
    first): each environment's heading, and the first ENV_ROWS nodes any of them serves
    (by name) with what each serves of them. Seconds on a 100,000-node registry, where
    every environment's status of every node is computed to show 500."""
    generation = reg.generation()
    envs = [reg.env_show(e.name) for e in reg.env_list()]
    rows: dict[str, dict[str, Any]] = {}
    for env in envs:
        for n in env.nodes:
            row = rows.setdefault(n.name, {"kind": n.kind, "current": n.current_version})
            row[env.name] = n
    names = sorted(rows)[:ENV_ROWS]
    return generation, {"envs": [e.model_copy(update={"nodes": []}) for e in envs],
                        "rows": {n: rows[n] for n in names}, "names": names,
                        "total": len(rows)}


@router.get("/envs", response_class=HTMLResponse)
@_guard
def envs_page(reg: PageReader, request: Request) -> Response:
    # Kept per worker like the gate (gate_page), but computed on the first request only,
    # not when the worker starts: fewer people open it.
    generation = reg.generation()
    kept, current = request.app.state.envs.get(generation)
    return _render(request, "envs.html", **kept.value, kept=kept, current=current,
                   generation=generation)


@router.get("/history", response_class=HTMLResponse)
@_guard
def history_page(reg: PageReader, request: Request, node: str = "", env: str = "",
                 limit: str = "100") -> Response:
    count = _number(limit, "limit", 1, 1000)
    events = reg.log(node or None, count, env or None)
    return _render(request, "history.html", events=list(reversed(events)), node=node,
                   env=env, limit=count, envs=reg.env_list())


# ---- signing in (--require-token-for-reads) -------------------------------------------------

MAX_LOGIN_BODY = 4096
SESSION_HOURS = 12


def _next(target: str) -> str:
    """Where to go after signing in: a path on this site only (no open redirect)."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) \
        else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/") -> Response:  # noqa: A002 - the URL's word
    """The token form: browsers cannot send a Bearer header."""
    return _render(request, "login.html", next=_next(next), failed=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    """Check the token (any scope reads) and keep it in a read-only session cookie."""
    body = await request.body()
    form = parse_qs(body[:MAX_LOGIN_BODY].decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _next((form.get("next") or ["/"])[0])
    reg: Registry = request.app.state.registry
    try:
        who = reg.authenticate(token or None, "read")
    except ChainmlError as e:
        return _render(request, "login.html", status_of(e), next=target, failed=str(e))
    answer = RedirectResponse(target, status_code=303)
    hours = SESSION_HOURS * 3600
    if who.expires_at is not None:
        hours = max(0, min(hours, int((who.expires_at - datetime.utcnow()).total_seconds())))
    answer.set_cookie(COOKIE, token, max_age=hours, httponly=True, samesite="strict",
                      secure=request.url.scheme == "https", path="/")
    return answer


@router.post("/logout")
def logout() -> Response:
    answer = RedirectResponse("/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/")
    return answer
