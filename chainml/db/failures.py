"""Driver errors in our words: which ones ask for a retry, and the one-sentence
RegistryUnavailable (exit 3) every backend failure becomes.

Free of SQLAlchemy: the direct read path (``db/direct.py``) uses it too.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, unquote_plus

from chainml.errors import RegistryUnavailable

# Query parameters and key=value (libpq, ODBC) fields that carry a secret, by name, in any
# case: these names, and any name containing one of _SECRET_PARTS. A name ending in "file"
# or "path" names a file (passfile, private_key_file) and sslkey is a path too: shown.
_SECRET_NAMES = frozenset({"password", "passwd", "pwd", "pass", "passphrase", "secret",
                           "token", "key", "auth", "apikey", "api_key"})
_SECRET_PARTS = re.compile(r"pass(?:word|wd|phrase)|secret|token|api_?key|access_?key|"
                           r"private_?key|credential", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
# The password of user:password@host inside other text, with or without a scheme (a
# malformed URL, 'postgresql:/u:pw@h', too), up to the last '@' of the word.
_USERINFO = re.compile(r"((?:[A-Za-z][A-Za-z0-9+.-]*:/*)?[^\s:/?#@'\"]*):(\S*)@")
# name=value in a query string or a DSN; the value quoted (libpq) or up to a separator.
_PAIR = re.compile(r"(?<![\w.%-])([A-Za-z_][\w.%-]*)(\s*=\s*)"
                   r"('(?:[^'\\]|\\.)*'?|[^\s&;'\"]*)")
HIDDEN = "***"


def secret_name(name: str) -> bool:
    """True for a query parameter or DSN field whose value is a credential."""
    key = unquote(name).strip().lower()
    if key.endswith(("file", "path")):
        return False
    return key in _SECRET_NAMES or _SECRET_PARTS.search(key) is not None


def redact_text(text: str, *urls: str) -> str:
    """``text`` with every credential hidden, without SQLAlchemy's parser.

    ``text`` is a database URL (``scheme://user:***@host/db?sslpassword=***``) or any
    other text: a driver's message, a key=value DSN (``host=h password=***``). Hidden:
    the password of a URL's userinfo and the value of each query parameter or DSN field
    that carries a secret (``secret_name``). Each secret that ``urls`` (the real URLs the
    text may echo) carry is also replaced wherever it appears verbatim.
    """
    for secret in sorted({s for url in urls for s in secret_values(url)}, key=len,
                         reverse=True):
        text = text.replace(secret, HIDDEN)
    if _URL.match(text):
        scheme, userinfo, at, valid, more = _split(text)
        if at:
            user, sep, _ = userinfo.partition(":")
            # Not a valid URL (an unescaped '/', '?' or '#' before the '@'): hide the user too.
            userinfo = (f"{user}:{HIDDEN}" if sep else user) if valid else HIDDEN
        base, q, query = more.partition("?")
        if q:
            query = "&".join(_hide_param(part) for part in query.split("&"))
        return f"{scheme}{userinfo}{at}{base}{q}{query}"
    text = _USERINFO.sub(rf"\1:{HIDDEN}@", text)
    return _PAIR.sub(_hide_pair, text)


def secret_values(url: str) -> set[str]:
    """The secrets a URL (or a DSN, or text with URLs in it) carries, as written and as
    decoded, for their verbatim replacement in messages that may echo them."""
    found: list[str] = []
    if _URL.match(url):
        _, userinfo, at, valid, more = _split(url)
        if at:  # a parser may also take the password of an invalid URL after its ':'
            found += [userinfo.partition(":")[2]] if valid else [userinfo,
                                                                  userinfo.partition(":")[2]]
        for part in more.partition("?")[2].split("&"):
            name, sep, value = part.partition("=")
            if sep and secret_name(name):
                found.append(value)
    else:
        found += [m.group(2) for m in _USERINFO.finditer(url)]
        for m in _PAIR.finditer(url):
            value = m.group(3)
            if secret_name(m.group(1)):
                if value.startswith("'"):
                    value = re.sub(r"\\(.)", r"\1", value[1:].removesuffix("'"))
                found.append(value)
    forms = {form for value in found for form in (value, unquote(value), unquote_plus(value))}
    return {s for s in forms if s and s != HIDDEN}


def _split(url: str) -> tuple[str, str, str, bool, str]:
    """(scheme://, userinfo, '@' or '', valid, the rest) of a URL. The authority ends at
    the last '@' before the path, so a password with an unescaped '@' is taken whole; with
    an unescaped '/', '?' or '#' (not valid) the userinfo runs to the last '@'."""
    m = _URL.match(url)
    scheme, rest = (m.group(0), url[m.end():]) if m else ("", url)
    found = re.match(r"([^/?#]*)@(.*)", rest, re.DOTALL)
    if found:
        return scheme, found.group(1), "@", True, found.group(2)
    if "@" in rest and not scheme.startswith("sqlite"):  # a SQLite path may hold an '@'
        userinfo, at, more = rest.rpartition("@")
        return scheme, userinfo, at, False, more
    return scheme, "", "", True, rest


def _hide_param(part: str) -> str:
    name, sep, value = part.partition("=")
    return f"{name}={HIDDEN}" if sep and value and secret_name(name) else part


def _hide_pair(m: re.Match[str]) -> str:
    if not m.group(3) or not secret_name(m.group(1)):
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{HIDDEN}"


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


def unavailable(where: str, error: BaseException, url: str | None = None
                ) -> RegistryUnavailable:
    """A one-sentence RegistryUnavailable for a driver error.

    ``where`` is the registry's URL (credentials hidden here if not already); ``url``,
    the real one, when given: each secret it carries is also removed from the driver's
    own message, which may echo it.
    """
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = redact_text(text[0], *([url] if url else [])) if text else type(error).__name__
    # Keep the sentence on one line even for a URL with a newline or control character.
    where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in redact_text(where))
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


