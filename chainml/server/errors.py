"""Errors as HTTP answers: one sentence in ``{"error": ...}``, with the status DESIGN.md
gives each kind (the command line's exit codes, in HTTP).

=====================================  ======  ==========================================
raised                                 status  why
=====================================  ======  ==========================================
NodeNotFound, VersionNotFound          404     the thing named does not exist
VersionConflict, CycleError            409     the request conflicts with what is there
ReleaseRefused                         409     the guard refused it (the result is sent)
InvalidInput (anything else)           400     the request breaks a rule
a body FastAPI cannot parse            422     not JSON, or not the shape asked for
Unauthorized / Forbidden               401/403 no valid token / a token without the scope
RegistryUnavailable, SchemaOutdated    503     the registry is down or on another schema
anything else                          500     a bug: logged with its traceback, not sent
=====================================  ======  ==========================================
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from pydantic_core import to_json
from starlette.exceptions import HTTPException

from chainml.errors import (
    ChainmlError,
    CycleError,
    Forbidden,
    NodeNotFound,
    RegistryUnavailable,
    ReleaseRefused,
    SchemaOutdated,
    Unauthorized,
    VersionConflict,
    VersionNotFound,
)
from chainml.server.auth import LoginNeeded

log = logging.getLogger("chainml.server")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    """Models or plain data as JSON, by alias ('from'), as ``--json`` prints them."""
    return Response(to_json(data, by_alias=True), status_code=status,
                    media_type="application/json", headers=headers)


def error(status: int, sentence: str, **extra: Any) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return json_response({"error": sentence, **extra}, status, headers)


def status_of(e: ChainmlError) -> int:
    if isinstance(e, NodeNotFound | VersionNotFound):
        return 404
    if isinstance(e, VersionConflict | CycleError | ReleaseRefused):
        return 409
    if isinstance(e, Unauthorized):
        return 401
    if isinstance(e, Forbidden):
        return 403
    if isinstance(e, RegistryUnavailable | SchemaOutdated):
        return 503
    return 400


def _validation_sentence(e: RequestValidationError) -> str:
    first = e.errors()[0] if e.errors() else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request"
    what = str(first.get("msg", "is not valid")).rstrip(".")
    return f"{where}: {what[0].lower() + what[1:] if what else 'is not valid'}."


def install(app: FastAPI) -> None:
    @app.exception_handler(ChainmlError)
    async def chainml_error(request: Request, e: ChainmlError) -> Response:
        extra: dict[str, Any] = {}
        if isinstance(e, ReleaseRefused):
            extra["result"] = e.result
        return error(status_of(e), str(e), **extra)

    @app.exception_handler(LoginNeeded)
    async def login_needed(request: Request, e: LoginNeeded) -> Response:
        return RedirectResponse(f"/login?{urlencode({'next': e.path})}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> Response:
        return error(422, _validation_sentence(e))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> Response:
        sentence = e.detail if isinstance(e.detail, str) else "The request failed."
        if e.status_code == 404 and sentence == "Not Found":
            sentence = f"Nothing at {request.url.path}; the API is under /api/v1/."
        elif e.status_code == 405:
            sentence = f"{request.method} is not allowed on {request.url.path}."
        return error(e.status_code, sentence)

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception) -> Response:
        import traceback

        from chainml.fast import redact

        # A driver's message can carry the database URL: credentials never reach the log.
        text = redact("".join(traceback.format_exception(e)), *app.state.secrets)
        log.error("unexpected error answering %s %s\n%s", request.method, request.url.path,
                  text)
        return error(500, "chainml failed unexpectedly; the server's log has the details.")
