"""API tokens as pure functions: their text, their digest, what a scope allows.

A token is ``cml_<id>_<secret>``: the id finds its row, the secret (32 random bytes,
URL-safe) is never stored, only its SHA-256 digest, compared in constant time. A
digest of a random secret needs no salt or slow hash: nothing can be guessed from it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime

PREFIX = "cml_"
SCOPES = ("read", "write", "admin")  # each allows what the ones before it allow
_TOKEN = re.compile(r"cml_([1-9][0-9]{0,17})_([A-Za-z0-9_-]{43})")


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def token_text(token_id: int, secret: str) -> str:
    return f"{PREFIX}{token_id}_{secret}"


def parse(text: str) -> tuple[int, str] | None:
    """(id, secret) of a token's text; None when it is not shaped like one."""
    found = _TOKEN.fullmatch(text) if isinstance(text, str) else None
    return (int(found.group(1)), found.group(2)) if found else None


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def matches(secret: str, stored: str) -> bool:
    """Whether ``secret`` is the one whose digest is ``stored``, in constant time."""
    return hmac.compare_digest(digest(secret), stored)


def allows(scope: str, needed: str) -> bool:
    """Whether a token of ``scope`` may do what needs ``needed``."""
    return SCOPES.index(scope) >= SCOPES.index(needed)


def state(expires_at: datetime | None, revoked_at: datetime | None, now: datetime) -> str:
    """active, expired or revoked."""
    if revoked_at is not None:
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return "active"
