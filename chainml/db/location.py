"""Where the registry is: ``--db``, CHAINML_DATABASE_URL, or the nearest
``.chainml/registry.db`` (as git finds ``.git``); and SQLite's busy timeout.

Free of SQLAlchemy, so the direct read path can resolve a URL without it.
"""

from __future__ import annotations

import os
from pathlib import Path

from chainml.errors import InvalidInput

ENV_URL = "CHAINML_DATABASE_URL"
REGISTRY_DIR = ".chainml"
REGISTRY_FILE = "registry.db"


def find_registry(start: Path | None = None) -> Path | None:
    """Return the nearest ``.chainml/registry.db`` at or above ``start``, if any."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / REGISTRY_DIR / REGISTRY_FILE
        if candidate.is_file():
            return candidate
    return None


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def resolve_url(explicit: str | None = None, start: Path | None = None) -> str:
    """The database URL to use: ``--db``, then the environment, then the nearest registry.

    Raises:
        InvalidInput: when there is none, with the command that creates one.
    """
    url = explicit or os.environ.get(ENV_URL)
    if url:
        return url
    found = find_registry(start)
    if found is None:
        raise InvalidInput(
            "No chainml registry here or in any parent folder; run 'chainml init' to create "
            f".chainml/{REGISTRY_FILE}, or set {ENV_URL}."
        )
    return sqlite_url(found)


ENV_BUSY_TIMEOUT = "CHAINML_SQLITE_BUSY_TIMEOUT"
DEFAULT_BUSY_TIMEOUT = 30.0


def sqlite_busy_timeout() -> float:
    """Seconds a SQLite writer waits for another one (CHAINML_SQLITE_BUSY_TIMEOUT, default 30)."""
    raw = os.environ.get(ENV_BUSY_TIMEOUT, "").strip()
    if not raw:
        return DEFAULT_BUSY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:  # also refuses nan
        raise InvalidInput(f"{ENV_BUSY_TIMEOUT}={raw[:40]!r} is not a number of seconds from 0 "
                           "to 86400.")
    return value
