"""Finding the registry, building engines, and turning driver errors into ours.

The default registry is ``.chainml/registry.db`` in the current folder or the
nearest parent that has one (as git finds ``.git``); ``CHAINML_DATABASE_URL``
or ``--db`` name another database.
"""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.orm import Session

from chainml.db import failures
from chainml.db.direct import Db
from chainml.db.failures import (  # noqa: F401 - re-exported
    RETRY_ATTEMPTS,
    RETRY_MYSQL_ERRORS,
    RETRY_SQLSTATES,
    WriteConflict,
    asks_for_retry,
)
from chainml.db.location import (  # noqa: F401 - re-exported
    DEFAULT_BUSY_TIMEOUT,
    ENV_BUSY_TIMEOUT,
    ENV_URL,
    REGISTRY_DIR,
    REGISTRY_FILE,
    find_registry,
    resolve_url,
    sqlite_busy_timeout,
    sqlite_url,
)
from chainml.errors import InvalidInput, RegistryUnavailable

# A plain "postgresql://" or "mysql://" URL would pick drivers we do not ship.
_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    # The URL most tools hand out (Airflow, Superset, older SQLAlchemy docs). The server
    # and the libpq options are the same; only the client library differs, and chainml's
    # retries know psycopg 3's errors, not psycopg2's.
    "postgresql+psycopg2": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
# The driver chainml ships for each server backend: (URL scheme, extra that installs it).
SHIPPED_DRIVERS = {
    "postgresql": ("postgresql+psycopg", "chainml[postgres]"),
    "mysql": ("mysql+pymysql", "chainml[mysql]"),
    "mariadb": ("mariadb+pymysql", "chainml[mysql]"),
}
# Query parameters that name the database when the URL's path does not.
_DATABASE_PARAMS = ("dbname", "database", "db")
# Connections beyond ``pool_size`` an engine may open for a moment (create).
POOL_OVERFLOW = 8


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
    if (parsed.get_backend_name() in SHIPPED_DRIVERS and not parsed.database
            and not any(parsed.query.get(key) for key in _DATABASE_PARAMS)):
        # Without one the server picks a default (PostgreSQL: the user's name, often
        # "postgres"), and the registry would land among whatever else lives there.
        scheme = SHIPPED_DRIVERS[parsed.get_backend_name()][0].partition("+")[0]
        raise InvalidInput(
            f"The database URL {redact(parsed)!r} names no database; add it after the host, "
            f"as in {scheme}://user@host/chainml."
        )
    return parsed


def redact(url: str | URL) -> str:
    """The URL without its credentials (the password, secret query parameters), for every
    message and log line (``failures.redact_text``)."""
    if isinstance(url, URL):
        return failures.redact_text(url.render_as_string(hide_password=True))
    try:
        return failures.redact_text(make_url(url).render_as_string(hide_password=True))
    except Exception:
        return failures.redact_text(url)


def create(url: str, *, create_file: bool = False, pool_size: int | None = None
           ) -> Engine:
    """Build an engine; SQLite gets WAL, a busy timeout, foreign keys and IMMEDIATE writes.

    A SQLite file is opened only if it exists: a misspelt path must not leave a new
    empty file behind. ``create_file`` (``chainml init``) creates it, in an existing
    folder. ``pool_size``: connections a PostgreSQL or MySQL engine keeps open (a
    server's request threads); SQLAlchemy's default keeps 5.
    """
    parsed = parse_url(url)
    kwargs: dict[str, Any] = {}
    backend = parsed.get_backend_name()
    busy = sqlite_busy_timeout() if backend == "sqlite" else 0.0
    if backend == "sqlite":
        kwargs["connect_args"] = {"timeout": busy}
    else:
        # A connection the server dropped (a restart, a failover) is replaced when it is
        # taken from the pool, not handed to a request: ``chainml serve`` recovers alone.
        kwargs["pool_pre_ping"] = True
        if pool_size is not None:
            # Kept open, not closed when returned: each new database session starts with
            # cold caches and psycopg prepares a statement only on a connection's fifth
            # run of it. The overflow is for the few threads outside the server's pool.
            kwargs["pool_size"], kwargs["max_overflow"] = pool_size, POOL_OVERFLOW
    if backend == "postgresql":
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
        raise InvalidInput(_missing_driver(parsed, e.name)) from None
    if backend == "sqlite":
        _configure_sqlite(engine, busy)
        _open_file(engine, parsed, create_file)
    else:
        _refuse_unknown_options(engine, parsed)
    return engine


def _missing_driver(url: URL, module: str | None) -> str:
    backend = url.get_backend_name()
    shipped, extra = SHIPPED_DRIVERS.get(backend, ("", ""))
    if not shipped:
        return f"The driver for {backend} is not installed ({module})."
    if url.drivername == shipped:
        return f"The driver for {backend} is not installed ({module}); pip install '{extra}'."
    return (f"The database URL {redact(url)!r} asks for the driver {url.drivername}, which is "
            f"not installed ({module}); chainml talks to {backend} through {shipped}: write "
            f"{shipped}://... (pip install '{extra}').")


def _open_file(engine: Engine, url: URL, create_file: bool) -> None:
    """Open a SQLite registry file only where it exists (or, with ``create_file``, in a
    folder that exists), with both answers in our words instead of sqlite's "unable to
    open database file"."""
    where = redact(url)

    @event.listens_for(engine, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> None:
        path = str(cargs[0]) if cargs else ""
        if cparams.get("uri") or path in ("", ":memory:"):
            return  # in memory, or a file: URI whose mode the user chose
        file = os.path.abspath(path)
        if create_file:
            folder = os.path.dirname(file)
            if not os.path.isdir(folder):
                raise InvalidInput(
                    f"Cannot create the registry at {where}: the folder {folder} does not "
                    "exist; create it first or choose another path.")
            return
        if not os.path.exists(file):
            raise RegistryUnavailable(
                f"There is no registry at {where}: the file {file} does not exist; check "
                f"the path, or create one with 'chainml init --db {where}'.")
        # mode=rw: should the file vanish in between, opening fails instead of
        # creating an empty one.
        cargs[0] = f"{Path(file).as_uri()}?mode=rw"
        cparams["uri"] = True


def _refuse_unknown_options(engine: Engine, url: URL) -> None:
    """A query parameter the driver does not know (a misspelt or miscased ``?PassWord=``)
    is a wrong URL, exit 2, not a bug: PyMySQL raises TypeError for it, psycopg a
    ProgrammingError ("invalid connection option")."""

    @event.listens_for(engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except TypeError as e:
            if "keyword argument" not in str(e):
                raise
            detail = str(e)
        except dialect.loaded_dbapi.ProgrammingError as e:
            if "invalid connection option" not in str(e):
                raise
            detail = str(e)
        detail = failures.redact_text((detail.strip().splitlines() or [""])[0],
                                      url.render_as_string(hide_password=False))
        raise InvalidInput(
            f"The database URL {redact(url)!r} has an option the "
            f"{url.get_backend_name()} driver does not know ({detail}); check its query "
            "parameters."
        ) from None


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


def unavailable(url: str | URL, error: BaseException) -> RegistryUnavailable:
    """A one-sentence RegistryUnavailable for a driver error, credentials removed."""
    real = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    return failures.unavailable(redact(url), error, real)


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
        if e.connection_invalidated or type(e) is exc.DatabaseError or failures.refused(e):
            raise unavailable(url, e) from None
        raise


def refresh_statistics(engine: Engine, tables: list[str]) -> None:
    """VACUUM (ANALYZE) freshly loaded tables on PostgreSQL; nothing elsewhere.

    Right after a bulk load the planner has no statistics and the visibility map is
    empty, so walks scan instead of seeking and "index-only" scans still visit every
    row: the 80,000-node walk below a hub took 1.4 s instead of 0.9 s. Autovacuum
    would fix both, later, where it is on. Best effort: a role that may not vacuum
    (not the owner) leaves it to autovacuum.
    """
    if engine.dialect.name != "postgresql":
        return
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(quote(t) for t in tables)}")
    except exc.DBAPIError:
        pass


@contextmanager
def write_session(engine: Engine, *, commit: bool = True) -> Iterator[Session]:
    """One write transaction: commits on success (``commit=False``: a dry run, rolled
    back at the end all the same), rolls back on any error."""
    bound = engine.execution_options(chainml_write=True)
    with translate_errors(engine.url), Session(bound, expire_on_commit=False) as s:
        with s.begin() as tx:
            yield s
            if not commit:
                tx.rollback()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """One read-only scope: rolled back at the end, but on PostgreSQL a READ ONLY
    transaction (the server refuses any write in it) that is committed. psycopg forgets
    every statement it has prepared on a connection when that connection rolls back:
    ended by ROLLBACK, reads were planned by PostgreSQL each time (0.2-1.6 ms a
    statement, most of a node page's database time), never prepared."""
    if engine.dialect.name != "postgresql":
        with translate_errors(engine.url), Session(engine) as s:
            yield s
        return
    bound = engine.execution_options(postgresql_readonly=True)
    with translate_errors(engine.url), Session(bound) as s:
        yield s
        s.commit()


@contextmanager
def one_read(engine: Engine) -> Iterator[Db]:
    """A connection for a single read statement (a token check on every request). On
    PostgreSQL it runs outside any transaction, as one round trip instead of three
    (BEGIN, the statement, COMMIT); elsewhere in a read session."""
    if engine.dialect.name != "postgresql":
        with read_session(engine) as s:
            yield Db.over(s)
        return
    with translate_errors(engine.url), engine.connect().execution_options(
            isolation_level="AUTOCOMMIT") as conn:
        yield Db.of(conn)


def schema_revision(engine: Engine, table: str) -> str | None:
    """The revision Alembic recorded in ``table``, or None for an empty database."""
    from sqlalchemy import inspect, text

    with translate_errors(engine.url), engine.connect() as conn:
        if not inspect(conn).has_table(table):
            return None
        rows = conn.execute(text(f"SELECT version_num FROM {table}")).scalars().all()
        return rows[0] if rows else None


def open_pool(engine: Engine, count: int) -> None:
    """Open ``count`` connections of a PostgreSQL or MySQL engine's pool now and keep them
    (a server about to take requests: its first ones need not connect); nothing on
    SQLite, whose connections cost nothing to open."""
    if engine.dialect.name == "sqlite":
        return
    with translate_errors(engine.url), ExitStack() as held:
        for _ in range(min(count, engine.pool.size())):  # type: ignore[attr-defined]
            held.enter_context(engine.connect())
