"""``/api/v1/``: every command of the command line over HTTP, calling the same library
functions, so validation, one-sentence errors and JSON shapes are the ``--json`` ones.

Lists keep their ``--json`` shape (a JSON array); ``limit`` and ``offset`` page them,
with the total in ``X-Total-Count`` and the next page in a ``Link`` header. Write
bodies are JSON objects whose fields are the command's options; the library checks
them, as it checks the command line's.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from chainml.errors import InvalidInput, unknown_field
from chainml.files.apply import ApplyResult
from chainml.ingest import service as ingest_service
from chainml.rules.gate import with_findings
from chainml.schemas import (
    CheckResult,
    DeliveryOut,
    EnvDiff,
    EnvironmentDetail,
    EnvironmentOut,
    EventOut,
    HookOut,
    ImpactResult,
    IngestResult,
    NodeDetail,
    NodeOut,
    PlanResult,
    RegisterResult,
    ReleaseResult,
    RetireResult,
    StatusEntry,
    TestRunOut,
    TokenCreated,
    TokenOut,
    UndeployResult,
    WaiverOut,
)
from chainml.server.auth import Admin, Reader, Writer
from chainml.server.errors import json_response
from chainml.server.lineage import read_events
from chainml.server.together import GroupCommit

router = APIRouter(prefix="/api/v1")
MAX_PAGE = 1000

Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, description="Items skipped.")]
Payload = Annotated[dict[str, Any], Body()]


def _page(request: Request, items: list[Any], limit: int, offset: int) -> Response:
    """One page of a list, its JSON shape unchanged; the total and the next page in
    headers."""
    total = len(items)
    headers = {"X-Total-Count": str(total)}
    if offset + limit < total:
        url = request.url.include_query_params(limit=limit, offset=offset + limit)
        headers["Link"] = f'<{url}>; rel="next"'
    return json_response(items[offset:offset + limit], headers=headers)


class Fields:
    """The fields of a write's JSON body: the command's options. ``parse`` refuses unknown
    and missing ones with one sentence (the library checks the values); ``openapi``
    documents them."""

    def __init__(self, what: str, required: dict[str, str],
                 optional: dict[str, str] | None = None) -> None:
        self.what = what
        self.required = required
        self.optional = optional or {}

    def parse(self, body: dict[str, Any]) -> dict[str, Any]:
        known = (*self.required, *self.optional)
        for key in body:
            if key not in known:
                raise unknown_field(self.what, key, known)
        missing = [k for k in self.required if k not in body]
        if missing:
            raise InvalidInput(f"{self.what} needs the field{'s' if len(missing) > 1 else ''} "
                               f"{', '.join(missing)}.")
        return body

    def openapi(self) -> dict[str, Any]:
        def prop(kind: str) -> dict[str, Any]:
            return {"type": "array", "items": {"type": "string"}} if kind == "list" \
                else {"type": kind}

        schema = {"type": "object", "required": list(self.required),
                  "properties": {k: prop(t) for k, t in {**self.required,
                                                          **self.optional}.items()},
                  "additionalProperties": False}
        return {"requestBody": {"required": True,
                                "content": {"application/json": {"schema": schema}}}}


PROMOTE = Fields("promote", {"node": "string", "version": "string"})
RETIRE = Fields("retire", {"node": "string"}, {"reason": "string"})
RUN = Fields("a test run", {"node": "string", "passed": "boolean"},
             {"version": "string", "suite": "string", "link": "string", "note": "string"})
WAIVER = Fields("a waiver", {"node": "string", "reason": "string"},
                {"cause": "string", "expires": "string", "env": "string"})
ENV = Fields("an environment", {"name": "string"}, {"after": "string", "description": "string"})
RELEASE = Fields("a release", {"env": "string", "nodes": "list"},
                 {"link": "string", "note": "string", "check": "boolean", "force": "boolean",
                  "reason": "string"})
UNDEPLOY = Fields("an undeploy", {"env": "string", "node": "string"})
TOKEN = Fields("a token", {"name": "string"}, {"scope": "string", "expires": "string"})
# register: a chain file's node (registration.NodeSpec checks it, as apply does)
NODE = Fields("a node version", {"kind": "string", "name": "string", "version": "string"},
              {"inputs": "list", "feedback": "list", "owner": "string",
               "description": "string", "tags": "list", "meta": "object",
               "node_meta": "object", "max_age": "string", "needs_tests": "boolean",
               "required_suites": "list"})


# ---- nodes ---------------------------------------------------------------------------------


@router.get("/nodes", response_model=list[NodeOut], tags=["nodes"])
def list_nodes(reg: Reader, request: Request, kind: str | None = None,
               owner: str | None = None, tag: str | None = None,
               q: Annotated[str | None, Query(description="Part of the name.")] = None,
               limit: Limit = 100, offset: Offset = 0) -> Response:
    """``chainml list``: the nodes of the current chain, by name, filtered."""
    items = reg.nodes(kind)
    if owner is not None:
        items = [n for n in items if n.owner == owner]
    if tag is not None:
        items = [n for n in items if tag in n.tags]
    if q:
        items = [n for n in items if q.lower() in n.name.lower()]
    return _page(request, items, limit, offset)


@router.get("/nodes/{name:path}", response_model=NodeDetail, tags=["nodes"])
def show_node(reg: Reader, name: str) -> Response:
    """``chainml show NODE``: settings, versions, inputs, consumers and status."""
    return json_response(reg.node(name))


@router.post("/nodes", response_model=RegisterResult, status_code=201, tags=["nodes"],
             openapi_extra=NODE.openapi())
def register(reg: Writer, body: Payload) -> Response:
    """``chainml register``: a node version (the fields of a chain file's node, with
    ``kind``, ``name`` and ``version``)."""
    return json_response(reg.register(**NODE.parse(body)), 201)


@router.post("/promote", response_model=RegisterResult, tags=["nodes"],
             openapi_extra=PROMOTE.openapi())
def promote(reg: Writer, body: Payload) -> Response:
    """``chainml promote NODE VERSION``: make an existing version current."""
    f = PROMOTE.parse(body)
    return json_response(reg.promote(f["node"], f["version"]))


@router.post("/retire", response_model=RetireResult, tags=["nodes"],
             openapi_extra=RETIRE.openapi())
def retire(reg: Writer, body: Payload) -> Response:
    """``chainml retire NODE``: take it out of the current chain."""
    f = RETIRE.parse(body)
    return json_response(reg.retire(f["node"], reason=f.get("reason")))


@router.get("/impact/{name:path}", response_model=ImpactResult, tags=["nodes"])
def impact(reg: Reader, name: str,
           max_depth: Annotated[int | None, Query(ge=0)] = None) -> Response:
    """``chainml impact NODE``: what a new version of it would mark for retest."""
    return json_response(reg.impact(name, max_depth))


# ---- tests, status and the gate ---------------------------------------------------------


@router.post("/runs", response_model=TestRunOut, status_code=201, tags=["tests"],
             openapi_extra=RUN.openapi())
def record_run(reg: Writer, body: Payload) -> Response:
    """``chainml test record``: a test run of a node's version (default: current)."""
    f = RUN.parse(body)
    return json_response(reg.record_test(f["node"], passed=f["passed"],
                                         version=f.get("version"), suite=f.get("suite"),
                                         link=f.get("link"), note=f.get("note")), 201)


@router.get("/status", response_model=list[StatusEntry], tags=["tests"])
def status(reg: Reader, request: Request, node: str | None = None, env: str | None = None,
           limit: Limit = MAX_PAGE, offset: Offset = 0) -> Response:
    """``chainml status [NODE] [--env ENV]``."""
    items = reg.env_status(env, node) if env is not None else reg.status(node)
    return _page(request, items, limit, offset)


@router.get("/check", response_model=CheckResult, tags=["tests"])
def check(reg: Reader, nodes: Annotated[list[str] | None, Query()] = None,
          env: str | None = None, strict: bool = False, observed: bool = False) -> Response:
    """``chainml check``: HTTP 200 either way; ``ok`` says whether the gate passes."""
    names = nodes or []
    result = reg.env_check(env, names, strict) if env is not None else reg.check(names, strict)
    if observed:
        result = with_findings(result, reg.findings(names))
    return json_response(result)


@router.post("/waivers", response_model=WaiverOut, status_code=201, tags=["tests"],
             openapi_extra=WAIVER.openapi())
def waive(reg: Writer, body: Payload) -> Response:
    """``chainml waive NODE``: accept its untested changes (or skew in ``env``) a while."""
    f = WAIVER.parse(body)
    extra: dict[str, Any] = {"expires": f["expires"]} if "expires" in f else {}
    return json_response(reg.waive(f["node"], reason=f["reason"], cause=f.get("cause"),
                                   env=f.get("env"), **extra), 201)


# ---- environments ---------------------------------------------------------------------------


@router.get("/envs", response_model=list[EnvironmentOut], tags=["environments"])
def env_list(reg: Reader) -> Response:
    """``chainml env list``."""
    return json_response(reg.env_list())


@router.post("/envs", response_model=EnvironmentOut, status_code=201, tags=["environments"],
             openapi_extra=ENV.openapi())
def env_create(reg: Writer, body: Payload) -> Response:
    """``chainml env create NAME``."""
    f = ENV.parse(body)
    return json_response(reg.env_create(f["name"], after=f.get("after"),
                                        description=f.get("description")), 201)


@router.get("/envs/{env}", response_model=EnvironmentDetail, tags=["environments"])
def env_show(reg: Reader, env: str) -> Response:
    """``chainml env show ENV``: what it serves, with environment status."""
    return json_response(reg.env_show(env))


@router.get("/envs/{a}/diff/{b}", response_model=EnvDiff, tags=["environments"])
def env_diff(reg: Reader, a: str, b: str) -> Response:
    """``chainml env diff A B``."""
    return json_response(reg.env_diff(a, b))


@router.post("/deployments", response_model=ReleaseResult, tags=["environments"],
             openapi_extra=RELEASE.openapi())
def deploy(reg: Writer, body: Payload) -> Response:
    """``chainml deploy NODE[@VERSION]... --env ENV``: 200 recorded (or, with ``check``,
    judged); 409 refused by the guard, with the result."""
    f = RELEASE.parse(body)
    return json_response(reg.deploy(f["nodes"], env=f["env"], link=f.get("link"),
                                    note=f.get("note"), check=bool(f.get("check", False)),
                                    force=bool(f.get("force", False)), reason=f.get("reason")))


@router.post("/undeployments", response_model=UndeployResult, tags=["environments"],
             openapi_extra=UNDEPLOY.openapi())
def undeploy(reg: Writer, body: Payload) -> Response:
    """``chainml undeploy NODE --env ENV``."""
    f = UNDEPLOY.parse(body)
    return json_response(reg.undeploy(f["node"], env=f["env"]))


@router.get("/plan", response_model=PlanResult, tags=["environments"])
def plan(reg: Reader, env: str, to: str = "current",
         nodes: Annotated[list[str] | None, Query()] = None) -> Response:
    """``chainml plan --env ENV --to current|ENV [NODE]...``; ``ok`` false when blocked."""
    return json_response(reg.plan(env, to=to, nodes=nodes or []))


# ---- history and pictures -----------------------------------------------------------------


@router.get("/log", response_model=list[EventOut], tags=["history"])
def log(reg: Reader, request: Request, node: str | None = None, env: str | None = None,
        limit: Limit = 100, offset: Offset = 0) -> Response:
    """``chainml log [NODE] [--env ENV]``, newest first (the command prints oldest first):
    the first page is the latest ``limit`` events."""
    return _page(request, reg.log(node, None, env)[::-1], limit, offset)


GRAPH_TYPES = {"svg": "image/svg+xml", "dot": "text/vnd.graphviz; charset=utf-8",
               "mermaid": "text/plain; charset=utf-8"}


@router.get("/graph/{name:path}", tags=["history"],
            responses={200: {"content": {t: {} for t in GRAPH_TYPES.values()}}})
def graph(reg: Reader, name: str, depth: Annotated[int, Query(ge=0, le=10)] = 2,
          direction: str = "both", format: str = "svg") -> Response:
    """``chainml graph --focus NODE --depth N``: the lineage around one node, as SVG
    (drawn by Graphviz on the server), DOT or Mermaid."""
    from chainml.render import dot, mermaid, run

    if direction not in ("both", "upstream", "downstream"):
        raise InvalidInput("direction is both, upstream or downstream.")
    if format not in GRAPH_TYPES:
        raise InvalidInput(f"format is one of {', '.join(GRAPH_TYPES)}.")
    view = reg.graph_view(focus=name, direction=direction, depth=depth)
    if format == "mermaid":
        text = mermaid.mermaid_chart(view, first=[name]).text
    elif format == "dot":
        text = dot.to_dot(view)
    else:
        text = run.render_bytes(dot.to_dot(view), "svg").decode()
    return Response(text, media_type=GRAPH_TYPES[format])


def _text_body(what: str, example: str) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {
        "application/yaml": {"schema": {"type": "string", "description": what,
                                        "example": example}},
        "application/json": {"schema": {"type": "string", "description": what}}}}}


async def _text(request: Request) -> str:
    from chainml.files.safeload import decode

    body = await request.body()
    if not body.strip():
        raise InvalidInput("The body is empty; send the file's text.")
    return decode(body, "the body")


@router.post("/apply", response_model=ApplyResult, tags=["chain files"],
             openapi_extra=_text_body("A chain file (YAML or JSON).",
                                      "chainml: 1\nnodes:\n  - name: clicks_raw\n"
                                      "    kind: source\n    version: '2026-11-08'\n"))
async def apply(reg: Writer, request: Request, dry_run: bool = False,
                prune: bool = False) -> Response:
    """``chainml apply``: make the registry match the chain file in the body (one
    transaction; ``dry_run`` plans only; ``prune`` retires what it leaves out)."""
    text = await _text(request)
    result = await run_in_threadpool(reg.apply_text, text, "request", dry_run=dry_run,
                                     prune=prune)
    return json_response(result)


@router.post("/import/{tool}", response_model=ApplyResult, tags=["chain files"],
             openapi_extra=_text_body("The tool's file: a dbt manifest.json, a dvc.yaml, "
                                      "or OpenLineage events (JSON, array or lines).",
                                      "stages: {}\n"))
async def import_(reg: Writer, request: Request, tool: str,
                  kind_map: Annotated[list[str] | None, Query()] = None,
                  dry_run: bool = False, prune: bool = False) -> Response:
    """``chainml import TOOL``: another tool's chain, applied like a chain file."""
    text = await _text(request)
    result = await run_in_threadpool(reg.import_text, tool, text, kind_map=kind_map or [],
                                     dry_run=dry_run, prune=prune)
    return json_response(result)


@router.get("/export", tags=["chain files"])
def export(reg: Reader) -> Response:
    """``chainml export``: the current chain as a chain file (JSON)."""
    from chainml.files.chainfile import dump_chain

    return Response(dump_chain(reg.export(), "json"), media_type="application/json")


# ---- tokens -------------------------------------------------------------------------------


@router.get("/tokens", response_model=list[TokenOut], tags=["tokens"])
def token_list(reg: Admin) -> Response:
    """``chainml token list`` (admin)."""
    return json_response(reg.token_list())


@router.post("/tokens", response_model=TokenCreated, status_code=201, tags=["tokens"],
             openapi_extra=TOKEN.openapi())
def token_create(reg: Admin, body: Payload) -> Response:
    """``chainml token create NAME`` (admin): the token is in the answer, this once."""
    f = TOKEN.parse(body)
    return json_response(reg.token_create(f["name"], scope=f.get("scope", "read"),
                                          expires=f.get("expires", "90d")), 201)


@router.post("/tokens/{name}/revoke", response_model=TokenOut, tags=["tokens"])
def token_revoke(reg: Admin, name: str) -> Response:
    """``chainml token revoke NAME`` (admin)."""
    return json_response(reg.token_revoke(name))


# ---- webhooks (docs/webhooks.md) ------------------------------------------------------------

HOOK = Fields("a hook", {"url": "string", "events": "list"},
              {"secret_env": "string", "format": "string", "max_attempts": "integer"})


@router.get("/hooks", response_model=list[HookOut], tags=["hooks"])
def hook_list(reg: Admin, all: bool = False) -> Response:
    """``chainml hook list`` (admin); ``all``: with the removed ones."""
    return json_response(reg.hook_list(include_removed=all))


@router.post("/hooks", response_model=HookOut, status_code=201, tags=["hooks"],
             openapi_extra=HOOK.openapi())
def hook_add(reg: Admin, body: Payload) -> Response:
    """``chainml hook add URL --event ...`` (admin). ``secret_env`` names a variable of the
    server's environment (where its worker signs)."""
    f = HOOK.parse(body)
    return json_response(reg.hook_add(f["url"], events=f["events"],
                                      secret_env=f.get("secret_env"),
                                      format=f.get("format", "json"),
                                      max_attempts=f.get("max_attempts", 8)), 201)


@router.post("/hooks/{hook_id}/remove", response_model=HookOut, tags=["hooks"])
def hook_remove(reg: Admin, hook_id: int) -> Response:
    """``chainml hook remove ID`` (admin)."""
    return json_response(reg.hook_remove(hook_id))


@router.get("/hooks/deliveries", response_model=list[DeliveryOut], tags=["hooks"])
def hook_deliveries(reg: Admin, request: Request, hook: int | None = None,
                    state: str | None = None, limit: Limit = 100, offset: Offset = 0
                    ) -> Response:
    """``chainml hook deliveries`` (admin), newest first."""
    return _page(request, reg.hook_deliveries(hook=hook, state=state, limit=None), limit,
                 offset)


@router.post("/hooks/deliveries/{delivery_id}/replay", response_model=DeliveryOut,
             tags=["hooks"])
def hook_replay(reg: Admin, delivery_id: int) -> Response:
    """``chainml hook replay DELIVERY_ID`` (admin)."""
    return json_response(reg.hook_replay(delivery_id))


# ---- what pipelines report ----------------------------------------------------------------


@router.post("/lineage", response_model=IngestResult, status_code=201, tags=["lineage"],
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": {
                     "description": "An OpenLineage RunEvent, DatasetEvent or JobEvent, or "
                                    "a JSON array of them; Content-Encoding: gzip accepted.",
                     "oneOf": [{"type": "object"},
                               {"type": "array", "items": {"type": "object"}}]}}}}})
async def lineage(reg: Writer, request: Request) -> Response:
    """``chainml ingest``: OpenLineage events, at the path OpenLineage's HTTP transport
    posts to. Each event is stored once (a re-delivery is a duplicate); a COMPLETE run
    registers the job's version and a new version of each output dataset."""
    events = read_events(await request.body(), request.headers.get("content-encoding"),
                         request.app.state.settings.max_body)
    # Checked in the thread pool, as the synchronous routes' work is; then stored with the
    # other requests waiting in this process, in one transaction (together.py).
    parsed = await run_in_threadpool(ingest_service.parse, events)
    together: GroupCommit = request.app.state.together
    result = await asyncio.wrap_future(together.submit(parsed, reg.actor))
    return json_response(result, 201)
