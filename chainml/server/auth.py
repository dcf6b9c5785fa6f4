"""Who may do what: every route names the scope it needs and gets the ``Registry`` to call,
recording the token's name as the actor of what it writes.

Reads are open unless the server was started with ``--require-token-for-reads`` (the
default off the loopback address); a token that is presented is checked even then (a
revoked token is refused, never ignored). Writes need a write token (unless
``--allow-anonymous-writes`` on the loopback address), token management an admin one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from chainml.errors import Unauthorized
from chainml.registry import Registry


def bearer(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer`` header; None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send the token as 'Authorization: Bearer <token>'.")
    return token.strip()


def needs(scope: str) -> Callable[[Request], Registry]:
    def registry(request: Request) -> Registry:
        reg: Registry = request.app.state.registry
        token = bearer(request)
        settings = request.app.state.settings
        if token is None and ((scope == "read" and not settings.require_token_for_reads)
                              or (scope == "write" and settings.anonymous_writes)):
            return reg
        who = reg.authenticate(token, scope)
        return reg.as_actor(who.name)

    return registry


Reader = Annotated[Registry, Depends(needs("read"))]
Writer = Annotated[Registry, Depends(needs("write"))]
Admin = Annotated[Registry, Depends(needs("admin"))]
