"""Driver errors in our words: which ones ask for a retry, and the one-sentence
RegistryUnavailable (exit 3) every backend failure becomes.

Free of SQLAlchemy: the direct read path (``db/direct.py``) uses it too.
"""

from __future__ import annotations

import re

from chainml.errors import RegistryUnavailable


def redact_text(url: str) -> str:
    """A URL string with its password hidden, without SQLAlchemy's parser:
    ``scheme://user:***@host/db``. The authority ends at the last '@' before the
    path, so a password with an unescaped '@' is hidden whole."""
    m = re.match(r"([^:/?#]+://)([^/?#]*)@(.*)", url, re.DOTALL)
    if not m:
        if "@" in url and not url.startswith("sqlite"):  # not a valid URL: hide more
            return re.sub(r"(://).*@", r"\1***@", url, count=1, flags=re.DOTALL)
        return url
    user, sep, _ = m.group(2).partition(":")
    return f"{m.group(1)}{user}{':***' if sep else ''}@{m.group(3)}"


class WriteConflict(RegistryUnavailable):
    """The database aborted the transaction because of another writer (a serialization
    failure, a deadlock, a lock wait timeout). Nothing was written; ``retrying`` runs the
    call again."""


# PostgreSQL SQLSTATEs and MySQL/MariaDB error numbers that ask the client to retry.
RETRY_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
RETRY_MYSQL_ERRORS = frozenset({1213, 1205})  # ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT
RETRY_ATTEMPTS = 6


def asks_for_retry(error: BaseException) -> bool:
    """True when the driver error is one the database says to retry."""
    orig = getattr(error, "orig", None) or error
    if getattr(orig, "sqlstate", None) in RETRY_SQLSTATES:  # psycopg
        return True
    return _errno(error) in RETRY_MYSQL_ERRORS  # PyMySQL: args = (errno, message)


_LOST = ("terminating connection", "server closed the connection", "connection already closed",
         "lost connection", "server has gone away", "connection is lost", "consuming input failed")
# Refusals that are about the database, not the input: a read-only transaction or role,
# missing privileges (PostgreSQL SQLSTATEs; MySQL/MariaDB error numbers).
_REFUSED_SQLSTATES = frozenset({"25006", "42501"})
_REFUSED_MYSQL = frozenset({1036, 1044, 1142, 1143, 1290})


def _errno(error: BaseException) -> int | None:
    code = next(iter(getattr(getattr(error, "orig", None) or error, "args", ())), None)
    return code if isinstance(code, int) else None


def refused(error: BaseException) -> bool:
    orig = getattr(error, "orig", None) or error
    return (getattr(orig, "sqlstate", None) in _REFUSED_SQLSTATES
            or _errno(error) in _REFUSED_MYSQL)


def unavailable(where: str, error: BaseException, password: str | None = None
                ) -> RegistryUnavailable:
    """A one-sentence RegistryUnavailable for a driver error.

    ``where`` is the registry's URL with the password already hidden; ``password``,
    when given, is also removed from the driver's own message.
    """
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = text[0] if text else type(error).__name__
    # Keep the sentence on one line even for a URL with a newline or control character.
    where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in where)
    if password:
        detail = detail.replace(password, "***")
    lowered = detail.lower()
    if asks_for_retry(error):
        return WriteConflict(
            f"Cannot use the registry at {where}: {detail}; another writer conflicted with "
            "this one and nothing was written, so run the command again.")
    if "locked" in lowered or "lock wait" in lowered:
        hint = "another process holds the registry; retry when it finishes"
    elif "readonly" in lowered or "read-only" in lowered or "read only" in lowered:
        hint = "the registry is read-only; check the file's permissions or the database role"
    elif _errno(error) == 1045 or "password authentication" in lowered:
        hint = "check the user name and password"
    elif any(w in lowered for w in ("permission denied", "command denied", "access denied")):
        hint = ("the database user may not do this; grant it the privileges on the registry's "
                "tables (or schema) or use another user")
    elif getattr(error, "connection_invalidated", False) or any(
            lost in lowered for lost in _LOST):
        hint = ("the connection to the database was lost; every command is all or nothing, "
                "so run it again")
    elif "disk" in lowered and "full" in lowered or "no space" in lowered:
        hint = "the disk is full; free space and retry (nothing was written)"
    elif "not a database" in lowered or "malformed" in lowered:
        hint = "the file is not a chainml registry or is damaged; check the path or restore it"
    else:
        hint = "check that the database is running and the URL is right"
    return RegistryUnavailable(f"Cannot use the registry at {where}: {detail}; {hint}.")


