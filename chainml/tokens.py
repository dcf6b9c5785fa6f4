"""API tokens: create, list, revoke, and who presents one (``chainml serve``).

The rules (the token's text, its digest, what a scope allows) are the pure functions of
``rules.tokens``; this module reads and writes the ``api_token`` table inside the
caller's session, like ``environments.release``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import ApiToken
from chainml.errors import Forbidden, InvalidInput, Unauthorized
from chainml.names import check_token_name
from chainml.rules import tokens as rules
from chainml.schemas import TokenCreated, TokenOut


def _out(t: ApiToken | reads.TokenRow, now: datetime) -> TokenOut:
    return TokenOut(name=t.name, scope=t.scope, state=rules.state(t.expires_at, t.revoked_at,
                                                                   now),
                    created_at=t.created_at, created_by=t.created_by, expires_at=t.expires_at,
                    revoked_at=t.revoked_at)


def create(s: Session, name: str, scope: str, lifetime: timedelta | None, at: datetime,
           actor: str) -> TokenCreated:
    check_token_name(name)
    if scope not in rules.SCOPES:
        raise InvalidInput(f"A token's scope is one of {', '.join(rules.SCOPES)}, not "
                           f"{scope!r}.")
    taken = repo.token_by_key(s, name)
    if taken is not None:
        same = "is taken" if taken.name == name else f"differs from '{taken.name}' only in case"
        raise InvalidInput(f"Token name '{name}' {same} (names stay taken after a revoke: "
                           "they are actors in the history); pick another.")
    secret = rules.new_secret()
    row = ApiToken(name=name, name_key=name.lower(), scope=scope,
                   secret_digest=rules.digest(secret), created_at=at, created_by=actor,
                   expires_at=at + lifetime if lifetime is not None else None)
    repo.add_token(s, row)
    repo.add_event(s, at, actor, "token.created", token=name, scope=scope,
                   expires_at=row.expires_at.isoformat() if row.expires_at else None)
    return TokenCreated(**_out(row, at).model_dump(), token=rules.token_text(row.id, secret))


def listing(s: Session, now: datetime) -> list[TokenOut]:
    return [_out(t, now) for t in repo.tokens(s)]


def revoke(s: Session, name: str, at: datetime, actor: str) -> TokenOut:
    row = repo.token_by_key(s, name)
    if row is None or row.name != name:
        raise InvalidInput(f"No token named {name!r}; 'chainml token list' lists them.")
    if row.revoked_at is not None:
        raise InvalidInput(f"Token '{name}' was already revoked on "
                           f"{row.revoked_at.isoformat(sep=' ', timespec='seconds')}.")
    row.revoked_at, row.revoked_by = at, actor
    repo.add_event(s, at, actor, "token.revoked", token=name)
    return _out(row, at)


def authenticate(db: Db, text: str | None, needed: str, now: datetime) -> TokenOut:
    """The token ``text`` names, if it is active and its scope allows ``needed``; else
    Unauthorized (none, malformed, unknown, expired, revoked) or Forbidden (scope). The
    messages never repeat the text presented."""
    if not text:
        raise Unauthorized(f"This needs a token with the {needed} scope: send "
                           "'Authorization: Bearer <token>' ('chainml token create').")
    parsed = rules.parse(text)
    row = reads.token(db, parsed[0]) if parsed is not None else None
    # The digest is compared even when no row matched, so a miss takes the same time.
    valid = rules.matches(parsed[1] if parsed else "", row.secret_digest if row
                          else rules.digest("none"))
    if row is None or not valid:
        raise Unauthorized("The token presented is not valid.")
    state = rules.state(row.expires_at, row.revoked_at, now)
    if state != "active":
        raise Unauthorized(f"The token presented is {state}.")
    if not rules.allows(row.scope, needed):
        raise Forbidden(f"Token '{row.name}' has the {row.scope} scope; this needs {needed}.")
    return _out(row, now)
