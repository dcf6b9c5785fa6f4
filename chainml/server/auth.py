"""Who may do what: every route names the scope it needs and gets the ``Registry`` to call,
recording the token's name as the actor of what it writes.

Reads are open unless the server was started with ``--require-token-for-reads`` (the
default off the loopback address); a token that is presented is checked even then (a
revoked token is refused, never ignored). Writes need a write token (unless
``--allow-anonymous-writes`` on the loopback address), token management an admin one.

A browser cannot send a Bearer header, so the web UI's login form keeps the token in a
cookie (HttpOnly, SameSite=Strict) that is honoured for **reads only**: a write needs
the header, so no other site can make a browser write with it (no CSRF). A page asked
for without a valid token sends the browser to the login form (``LoginNeeded``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from chainml.errors import Unauthorized
from chainml.registry import Registry

COOKIE = "chainml_token"


class LoginNeeded(Exception):
    """A page needs a read token: answered by a redirect to ``/login?next=PATH``."""

    def __init__(self, path: str, why: str) -> None:
        super().__init__(why)
        self.path = path


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
        if token is None and scope == "read":
            token = request.cookies.get(COOKIE) or None
        settings = request.app.state.settings
        if token is None and ((scope == "read" and not settings.require_token_for_reads)
                              or (scope == "write" and settings.anonymous_writes)):
            return reg
        who = reg.authenticate(token, scope)
        return reg.as_actor(who.name)

    return registry


def page_reader(request: Request) -> Registry:
    """``needs("read")`` for a page: without a valid token, the login form."""
    try:
        return needs("read")(request)
    except Unauthorized as e:
        query = f"?{request.url.query}" if request.url.query else ""
        raise LoginNeeded(request.url.path + query, str(e)) from None


Reader = Annotated[Registry, Depends(needs("read"))]
PageReader = Annotated[Registry, Depends(page_reader)]
Writer = Annotated[Registry, Depends(needs("write"))]
Admin = Annotated[Registry, Depends(needs("admin"))]
