"""Finding the registry, building engines, and turning driver errors into ours.

The default registry is ``.chainml/registry.db`` in the current folder or the
nearest parent that has one (as git finds ``.git``); ``CHAINML_DATABASE_URL``
or ``--db`` name another database.
"""

from __future__ import annotations

import functools
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

from chainml.errors import InvalidInput, RegistryUnavailable

ENV_URL = "CHAINML_DATABASE_URL"
REGISTRY_DIR = ".chainml"
REGISTRY_FILE = "registry.db"

# A plain "postgresql://" or "mysql://" URL would pick drivers we do not ship.
_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}


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


def parse_url(url: str) -> URL:
    """Parse and normalise a URL; a malformed one is bad input (exit 2)."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        raise InvalidInput(
            f"Invalid database URL {redact(url)!r}; use sqlite:///path/registry.db, "
            "postgresql://user@host/db or mysql://user@host/db."
        ) from None
    driver = _DEFAULT_DRIVERS.get(parsed.drivername)
    if driver:
        parsed = parsed.set(drivername=driver)
    return parsed


def redact(url: str | URL) -> str:
    """The URL without its password, for every message and log line."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Unparseable: drop anything between '://' and '@' wholesale.
        return re.sub(r"(://)[^@/]*@", r"\1***@", url)


def create(url: str) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout, foreign keys and IMMEDIATE writes."""
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    busy = sqlite_busy_timeout() if backend == "sqlite" else 0.0
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": busy}
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
        # Writers queue on the write_lock row and must then see what the writer before
        # them committed: READ COMMITTED, whatever default_transaction_isolation says
        # (under REPEATABLE READ/SERIALIZABLE the queued writer fails with 40001).
        kwargs["isolation_level"] = "READ COMMITTED"
    elif backend in ("mysql", "mariadb"):
        kwargs["connect_args"] = {"connect_timeout": 10, "charset": "utf8mb4"}
        kwargs["isolation_level"] = "READ COMMITTED"
    try:
        engine = create_engine(parsed, **kwargs)
    except exc.NoSuchModuleError:
        raise InvalidInput(
            f"Unsupported database URL {redact(parsed)!r}; chainml works with sqlite, "
            "postgresql and mysql/mariadb."
        ) from None
    except ImportError as e:
        raise InvalidInput(
            f"The driver for {backend} is not installed ({e.name}); "
            "install chainml[postgres] or chainml[mysql]."
        ) from None
    if backend == "sqlite":
        _configure_sqlite(engine, busy)
    return engine


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


def _configure_sqlite(engine: Engine, busy: float) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write
    # lock up front; SQLAlchemy's documented recipe hands BEGIN to us instead
    # (dialects/sqlite "Serializable isolation / Savepoints / Transactional DDL").
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy * 1000)}")
        try:
            cur.execute("PRAGMA journal_mode=WAL")
        except Exception:
            # A read-only file cannot switch journal mode; reads still work.
            pass
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # Writers take the lock at BEGIN so two writers never deadlock upgrading
        # a read lock; readers keep a plain deferred BEGIN.
        if conn.get_execution_options().get("chainml_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


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


P = ParamSpec("P")
T = TypeVar("T")


def retrying(fn: Callable[P, T]) -> Callable[P, T]:
    """Run a whole write call again (up to RETRY_ATTEMPTS times, with jittered backoff)
    when the database aborted its transaction for a conflicting writer."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                return fn(*args, **kwargs)
            except WriteConflict:
                if attempt == RETRY_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.5, 1.0) * min(1.0, 0.02 * 2**attempt))
        raise AssertionError("unreachable")

    return run


_LOST = ("terminating connection", "server closed the connection", "connection already closed",
         "lost connection", "server has gone away", "connection is lost", "consuming input failed")
# Refusals that are about the database, not the input: a read-only transaction or role,
# missing privileges (PostgreSQL SQLSTATEs; MySQL/MariaDB error numbers).
_REFUSED_SQLSTATES = frozenset({"25006", "42501"})
_REFUSED_MYSQL = frozenset({1036, 1044, 1142, 1143, 1290})


def _errno(error: BaseException) -> int | None:
    code = next(iter(getattr(getattr(error, "orig", None) or error, "args", ())), None)
    return code if isinstance(code, int) else None


def _refused(error: BaseException) -> bool:
    orig = getattr(error, "orig", None) or error
    return (getattr(orig, "sqlstate", None) in _REFUSED_SQLSTATES
            or _errno(error) in _REFUSED_MYSQL)


def unavailable(url: str | URL, error: BaseException) -> RegistryUnavailable:
    """A one-sentence RegistryUnavailable for a driver error, password removed."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()
    detail = text[0] if text else type(error).__name__
    # Keep the sentence on one line even for a URL with a newline or control character.
    where = "".join(c if c.isprintable() else repr(c)[1:-1] for c in redact(url))
    if isinstance(url, URL) and url.password:
        detail = detail.replace(str(url.password), "***")
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


@contextmanager
def translate_errors(url: str | URL) -> Iterator[None]:
    """Turn driver-level failures (connection lost, locked, read-only, full) into exit 3."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as e:
        raise unavailable(url, e) from None
    except exc.DataError as e:
        # A value the database cannot store (too long, out of range, a NUL character):
        # bad input, and the transaction has been rolled back already.
        text = str(e.orig or e).strip().splitlines()
        raise InvalidInput(
            f"The database refused a value: {text[0] if text else type(e).__name__}."
        ) from None
    except exc.DBAPIError as e:
        # A plain DatabaseError is the driver's "not a database" / damaged file.
        if e.connection_invalidated or type(e) is exc.DatabaseError or _refused(e):
            raise unavailable(url, e) from None
        raise


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """One write transaction: commits on success, rolls back on any error."""
    bound = engine.execution_options(chainml_write=True)
    with translate_errors(engine.url), Session(bound, expire_on_commit=False) as s, s.begin():
        yield s


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """One read-only scope (rolled back at the end)."""
    with translate_errors(engine.url), Session(engine) as s:
        yield s
