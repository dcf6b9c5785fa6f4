"""The ASGI application behind ``chainml serve``: the HTTP API under ``/api/v1/``, the
health probes, and the web UI, over one ``Registry`` (one engine and connection pool
per server process; any number of processes may share a PostgreSQL registry).

Routes only parse, call the library and present (``api.py``, ``pages.py``); who may
do what is ``auth.py``; errors become one sentence with their status (``errors.py``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from anyio import to_thread
from fastapi import FastAPI
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles

from chainml.errors import RegistryUnavailable
from chainml.ingest.mapping import Mapping
from chainml.registry import Registry
from chainml.server import api, errors, pages
from chainml.server.cache import Current, Refreshed
from chainml.server.together import GroupCommit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Request threads per server process, and connections its engine keeps (main.py). A
# process runs Python on one core at a time: more threads than it can keep busy only
# take turns at the interpreter lock, and a burst then feeds itself (each request slower,
# so more at once). With 16 (and the warm-up below), a worker's first 5 s at 200 node
# pages/s had p99 37-188 ms; with 4, 28-38 ms, and writes kept their rate (20.0 runs/s
# against 17.6; 88 marked lineage events/s against 82). Beyond it requests wait in line,
# not for the lock.
REQUEST_THREADS = 4
MAX_BODY = 16 * 1024 * 1024  # bytes: a chain file's own limit
# Pages load nothing from another host, run no inline script and cannot be framed.
CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@dataclass
class Settings:
    """How the server was started (``chainml serve``'s options)."""

    require_token_for_reads: bool = False
    anonymous_writes: bool = False  # loopback only: a developer's own machine
    max_body: int = MAX_BODY
    hook_worker: bool = True  # send webhook deliveries from this process (docs/webhooks.md)
    mapping: Mapping | None = None  # POST /api/v1/lineage: names, kinds, version facets


class BodyLimit:
    """413 for a request body over ``limit`` bytes, whether it declares its length or
    streams it, before any route reads it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        if declared is not None:
            await self.app(scope, receive, send)  # the server stops at the declared length
            return
        # A streamed body: read it here, up to the limit, and hand it on whole.
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._too_large(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        mib = self.limit / (1024 * 1024)
        response = errors.error(413, f"The request body is over chainml's limit of "
                                     f"{mib:g} MiB.")
        await response(scope, receive, send)


class SecurityHeaders:
    """Headers every answer carries: no sniffing, no referrer, the pages' CSP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY"),
                            (b"content-security-policy", CSP.encode())]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(registry: Registry | None, settings: Settings | None = None) -> FastAPI:
    """The application over ``registry`` (its engine is shared by every request); None
    builds the routes alone, for their OpenAPI document (``apidoc``)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # The webhook worker: one thread per server process. Several processes (uvicorn
        # workers, servers sharing a registry) each run one; claims keep them apart.
        from chainml.hooks.worker import Worker

        to_thread.current_default_thread_limiter().total_tokens = REQUEST_THREADS
        reachable = False
        if registry is not None:
            try:  # before any thread of this process takes a connection
                registry.open_connections(REQUEST_THREADS)
                reachable = True
            except RegistryUnavailable:
                pass  # each request says so (503) until it is back
        worker = Worker(registry.engine).start() \
            if registry is not None and settings.hook_worker else None
        if reachable:
            # Ready before the first node page, not computed beside the first ones: a
            # page without it walks up its node's lineage, three times the work, and
            # the computation (0.5 s at 100,000 nodes) took the CPU the first pages
            # of a new server needed (p99 434 ms in its first 5 s at 200 pages/s).
            # A registry away at start is not waited for a second time: the first
            # node page asks for it (pages.node_page).
            await to_thread.run_sync(_app.state.reached.compute_now)
            # The gate page's first visitor would otherwise wait for the gate (seconds
            # at 100,000 nodes); computed here, it is current until the next write.
            await to_thread.run_sync(_app.state.gates.compute_now)
            assert registry is not None
            try:
                await to_thread.run_sync(pages.warm_up, _app, registry, REQUEST_THREADS)
            except RegistryUnavailable:
                pass  # gone since: each request says so (503) until it is back
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()

    app = FastAPI(title="chainml", version="1", openapi_url="/api/v1/openapi.json",
                  lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # Swagger UI would load from a CDN
                  description="The chainml registry over HTTP: every command of the command "
                              "line, with the same validation, errors and JSON shapes.")
    app.state.registry = registry
    # What each environment's changes reach, for the node pages (pages.node_page).
    app.state.reached = Refreshed(registry.reached) if registry is not None else None
    # The gate page's content, kept current in a thread of its own (pages.gate_page).
    app.state.gates = Current(functools.partial(pages.gates_now, registry),
                              wait=pages.KEPT_WAIT) if registry is not None else None
    app.state.envs = Current(functools.partial(pages.envs_now, registry),
                             wait=pages.KEPT_WAIT) if registry is not None else None
    # The writer of this process's POST /api/v1/lineage requests (group commit).
    app.state.together = GroupCommit(registry, settings.mapping) \
        if registry is not None else None
    app.state.settings = settings
    app.state.secrets = [registry.secret_url()] \
        if registry is not None else []
    errors.install(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=str(files("chainml.server").joinpath("static"))),
              name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        return errors.json_response({"ok": True})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> Response:
        assert registry is not None
        revision = registry.schema_revision()  # RegistryUnavailable: 503 by the handler
        if not revision.up_to_date:
            return errors.error(503, f"The registry's schema is at {revision.current}, not "
                                     f"{revision.head}; run 'chainml db upgrade'.")
        return errors.json_response({"ok": True, "schema": revision.current})

    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit, limit=settings.max_body)
    return app
