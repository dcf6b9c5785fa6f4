"""Plain DB-API access for the read-only commands users wait on (impact, status, check).

Importing SQLAlchemy costs ~0.3 s, most of a typical ``chainml impact``. For
SQLite and PostgreSQL URLs those commands open the driver directly
(``open_direct``); the queries themselves live once, as plain SQL, in
``db/reads.py``, and the Python API runs the same queries inside its SQLAlchemy
session (``Db.over``). Anything else (MariaDB, SQLite URLs with options)
goes through SQLAlchemy, with the same results.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chainml.db import failures
from chainml.db.location import resolve_url, sqlite_busy_timeout

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.orm import Session

# Ids per IN (...) list: few round trips, yet under SQLite's 32,766 bound parameters.
CHUNK = 2000
# On PostgreSQL, a statement over more ids than this is planned for them each time
# rather than run from a prepared, generic plan (``Db.rows``).
PREPARED_IDS = 100


# Keyed by the URL object's identity: hashing a URL renders it as text, the work this
# saves, and the engines of read and write sessions (``execution_options``) are new
# objects each time, while they share their engine's one URL object.
_URL_TEXTS: dict[int, tuple[URL, tuple[str, str]]] = {}
_URL_TEXTS_KEPT = 32


def _url_texts(engine: Engine) -> tuple[str, str]:
    """An engine's URL as error messages show it, and whole (to remove it from drivers'
    messages): rendered once per URL, not for each of the dozens of ``Db.over`` of a
    write or for each request's read."""
    url = engine.url
    kept = _URL_TEXTS.get(id(url))
    if kept is not None and kept[0] is url:
        return kept[1]
    if len(_URL_TEXTS) >= _URL_TEXTS_KEPT:
        _URL_TEXTS.clear()
    texts = (failures.redact_text(url.render_as_string(hide_password=True)),
             url.render_as_string(hide_password=False))
    _URL_TEXTS[id(url)] = (url, texts)  # holding the URL keeps its id from being reused
    return texts


class Db:
    """One read snapshot over a DB-API connection. SQL is written with ``?``
    placeholders and ``{ids}`` where a chunked IN list goes."""

    def __init__(self, conn: Any, backend: str, where: str, *, url: str | None = None,
                 dbapi: Any = sqlite3, owned: bool = True) -> None:
        self.conn = conn
        self.backend = backend  # sqlite | postgresql | mysql
        self.where = where  # the URL, credentials hidden
        self._url = url  # the real one: its secrets are removed from driver messages
        self._dbapi = dbapi
        self._pyformat = dbapi.paramstyle in ("format", "pyformat")
        self._owned = owned
        self._binary = backend == "postgresql" and getattr(dbapi, "__name__", "") == "psycopg"
        self._tuples_ok = dbapi.pq.ExecStatus.TUPLES_OK if self._binary else None
        # Reads kept for the next question asked over this connection (``reads.shared``):
        # the whole registry's status facts for the gate page, one node's rows for its
        # page. None, the default, keeps nothing: a reader that writes in between must
        # never see what it read before.
        self.memo: dict[Hashable, Any] | None = None

    @classmethod
    def over(cls, s: Session) -> Db:
        """The connection of a SQLAlchemy session, inside its transaction."""
        return cls.of(s.connection())

    @classmethod
    def of(cls, conn: Connection) -> Db:
        """A SQLAlchemy connection, in whatever transaction it is."""
        shown, real = _url_texts(conn.engine)
        return cls(conn.connection, conn.dialect.name, shown, url=real,
                   dbapi=conn.dialect.dbapi, owned=False)

    def rows(self, sql: str, params: Sequence[Any] = (), *, prepare: bool | None = None
             ) -> list[Any]:
        """``sql``'s rows ([] for a statement that returns none). ``prepare=False``: on
        PostgreSQL, planned for these parameters even if psycopg has prepared it (a
        generic plan, made for the few ids a node page asks about, can be the wrong one
        for the 60,000 of a gate)."""
        if self._pyformat:
            sql = sql.replace("?", "%s")
        # psycopg decodes binary results in C a quarter faster than text (the 332,478
        # edges below a hub); same Python values either way.
        cur = self.conn.cursor(binary=True) if self._binary else self.conn.cursor()
        try:
            if self._binary and prepare is not None:
                cur.execute(sql, tuple(params), prepare=prepare)
            else:
                cur.execute(sql, tuple(params))
            return list(cur.fetchall()) if self._has_rows(cur) else []
        except self._dbapi.Error as e:
            raise self.failure(e) from None
        finally:
            cur.close()

    def _has_rows(self, cur: Any) -> bool:
        """Whether the statement returned rows (a SELECT, not an INSERT or UPDATE)."""
        if self._binary:
            # psycopg builds ``description`` (an object per column) on each access: a
            # tenth of a node page's CPU, for a yes or no its result status gives.
            result = cur.pgresult
            return result is not None and result.status == self._tuples_ok
        return cur.description is not None

    def rows_in(self, sql: str, ids: Sequence[Any], params: Sequence[Any] = (),
                size: int = CHUNK) -> list[Any]:
        """``sql`` once per chunk of ``ids``, with ``{ids}`` replaced by its placeholders.

        ``sql`` says ``column IN ({ids})``. PostgreSQL gets ``column = ANY(array)`` in one
        statement instead: psycopg parses every statement's placeholders in Python, which
        cost 0.7 s for the 40 chunks of an 80,000-node impact.
        """
        out: list[Any] = []
        ids = list(ids)
        if self.backend == "postgresql" and " IN ({ids})" in sql:
            # As one text literal: psycopg adapts a list of 80,000 ints in Python (0.2 s).
            literal = "{" + ",".join(map(str, map(int, ids))) + "}"
            return self.rows(sql.replace(" IN ({ids})", " = ANY(CAST(? AS bigint[]))"),
                             [*params, literal],
                             prepare=False if len(ids) > PREPARED_IDS else None)
        for i in range(0, len(ids), size):
            part = ids[i:i + size]
            out += self.rows(sql.format(ids=",".join("?" * len(part))), [*params, *part])
        return out

    def as_text(self, column: str) -> str:
        """A JSON column read as text: psycopg would decode each value itself, through a
        slower path than ours (0.8 s for the 53,000 values of a check after a hub change)."""
        return f"CAST({column} AS TEXT)" if self.backend == "postgresql" else column

    def time(self, at: datetime) -> Any:
        """A datetime as a query parameter, compared like the stored values: SQLite keeps
        SQLAlchemy's text form, the servers a timestamp type."""
        return at.strftime("%Y-%m-%d %H:%M:%S.%f") if self.backend == "sqlite" else at

    def failure(self, error: BaseException) -> BaseException:
        """A driver error as ours: exit 3 for the database's trouble; bugs stay bugs."""
        bug: tuple[type[BaseException], ...] = (self._dbapi.ProgrammingError,
                                                 self._dbapi.IntegrityError)
        if isinstance(error, bug):
            return error
        return failures.unavailable(self.where, error, self._url)

    def close(self) -> None:
        if self._owned:
            try:
                self.conn.rollback()
            finally:
                self.conn.close()


def open_direct(url: str) -> Db | None:
    """A read snapshot without SQLAlchemy, or None where this URL needs it.

    Raises:
        RegistryUnavailable: the database cannot be reached.
        SchemaOutdated: the registry is empty, older or newer than this chainml.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return None
    if scheme in ("sqlite", "sqlite+pysqlite"):
        return _open_sqlite(url, rest)
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        return _open_postgresql(url, rest)
    return None


def _open_sqlite(url: str, rest: str) -> Db | None:
    path = rest[1:] if rest.startswith("/") else ""
    # Options, escapes and in-memory databases: SQLAlchemy's parser knows them all.
    if not path or any(c in path for c in "?%") or not os.path.isfile(path):
        return None
    where = failures.redact_text(url)
    try:
        # mode=rw: a file deleted since the check above is an error, not a new empty file.
        conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=rw", uri=True,
                               timeout=sqlite_busy_timeout(), isolation_level=None)
    except sqlite3.Error as e:
        raise failures.unavailable(where, e, url) from None
    db = Db(conn, "sqlite", where, url=url)
    try:
        db.rows("BEGIN")  # one snapshot for every query of the command
        _check_schema(db, missing=lambda e: "no such table" in str(e))
    except BaseException:
        conn.close()
        raise
    return db


def _open_postgresql(url: str, rest: str) -> Db | None:
    if not rest.rpartition("@")[2].partition("?")[0].partition("/")[2]:
        return None  # no database in the path: SQLAlchemy's parser decides (engine.parse_url)
    try:
        import psycopg
    except ImportError:
        return None  # SQLAlchemy says which extra to install
    where = failures.redact_text(f"postgresql+psycopg://{rest}")
    try:
        conn = psycopg.connect(f"postgresql://{rest}", connect_timeout=10)
    except psycopg.OperationalError as e:
        raise failures.unavailable(where, e, url) from None
    except psycopg.Error:
        conn = None  # a URL libpq reads differently: leave it to SQLAlchemy's parser
    if conn is None:
        return None
    db = Db(conn, "postgresql", where, url=url, dbapi=psycopg)
    try:
        # Every query of the command sees the same committed state; a read-only
        # REPEATABLE READ transaction never fails for a concurrent writer.
        db.rows("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        _check_schema(db, missing=lambda e: getattr(e, "sqlstate", None) == "42P01")
    except BaseException:
        conn.close()
        raise
    return db


def _check_schema(db: Db, missing: Any) -> None:
    from chainml.db.migrate import VERSION_TABLE, schema_error

    cur = db.conn.cursor()
    try:
        cur.execute(f"SELECT version_num FROM {VERSION_TABLE}")
        found = cur.fetchall()
        rev = found[0][0] if found else None
    except db._dbapi.Error as e:
        if not missing(e):
            raise db.failure(e) from None
        rev = None
    finally:
        cur.close()
    problem = schema_error(rev, db.where)
    if problem is not None:
        raise problem


@contextmanager
def reading(url: str | None) -> Iterator[Db]:
    """A read snapshot of the registry at ``url`` (None: the usual search), direct where
    possible, else through SQLAlchemy."""
    resolved = resolve_url(url)
    db = open_direct(resolved)
    if db is not None:
        try:
            yield db
        finally:
            db.close()
        return
    from chainml.db import engine as dbe
    from chainml.db.migrate import check_schema

    engine = dbe.create(resolved)
    try:
        check_schema(engine)
        with dbe.read_session(engine) as s:
            yield Db.over(s)
    finally:
        engine.dispose()
