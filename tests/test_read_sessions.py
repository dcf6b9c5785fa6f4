"""Read sessions (``engine.read_session``): nothing in one is ever written, and on
PostgreSQL the statements a server process repeats stay prepared from one read to the
next (psycopg forgets them when a connection rolls back, so a read session there is a
READ ONLY transaction that commits)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from chainml.db import engine as dbe
from chainml.db.direct import PREPARED_IDS, Db
from chainml.errors import ChainmlError
from chainml.registry import Registry
from tests.chains import build_example


def _lock_counter(reg: Registry) -> int:
    with dbe.read_session(reg.engine) as s:
        return int(Db.over(s).rows("SELECT counter FROM write_lock")[0][0])


def test_what_a_read_session_writes_is_never_kept(registry: Registry) -> None:
    build_example(registry)
    before = _lock_counter(registry)
    refused = registry.engine.dialect.name == "postgresql"  # READ ONLY: refused at once
    try:
        with dbe.read_session(registry.engine) as s:
            s.execute(text("UPDATE write_lock SET counter = counter + 1"))
    except ChainmlError:
        assert refused
    else:
        assert not refused  # elsewhere rolled back at the end
    assert _lock_counter(registry) == before


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_reads_keep_their_prepared_statements_on_postgresql(registry: Registry) -> None:
    build_example(registry)
    for _ in range(8):  # psycopg prepares a statement on its fifth run on a connection
        registry.node("ranker")
    # One request at a time: the pool hands the same connection out each time.
    assert registry.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    with dbe.read_session(registry.engine) as s:
        prepared = Db.over(s).rows("SELECT count(*) FROM pg_prepared_statements")[0][0]
    assert prepared >= 5  # the node's row, versions, inputs, consumers, status facts...


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_statements_over_many_ids_are_planned_for_them(registry: Registry) -> None:
    build_example(registry)
    sql = "SELECT id, name FROM node WHERE id IN ({ids}) ORDER BY id"  # this test's own
    many = list(range(1, PREPARED_IDS + 50))

    def prepared() -> bool:
        with dbe.read_session(registry.engine) as s:
            return any(r[0].startswith("SELECT id, name FROM node WHERE id = ANY")
                       and r[0].endswith("ORDER BY id") for r in Db.over(s).rows(
                           "SELECT statement FROM pg_prepared_statements"))

    for _ in range(8):
        with dbe.read_session(registry.engine) as s:
            Db.over(s).rows_in(sql, many)
    assert not prepared()  # no generic plan made for it
    for _ in range(8):
        with dbe.read_session(registry.engine) as s:
            Db.over(s).rows_in(sql, [1, 2, 3])
    assert prepared()  # a node page's few ids: prepared



@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_token_check_on_postgresql_runs_outside_a_transaction(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every authenticated request checks its token: a BEGIN and a COMMIT around its one
    read would be two more round trips each time."""
    import psycopg

    from chainml import tokens

    token = registry.token_create("ci", scope="write").token
    states: list[object] = []
    read = tokens.reads.token

    def token_read(db: Db, name: str) -> object:
        states.append(db.conn.dbapi_connection.info.transaction_status)
        return read(db, name)

    monkeypatch.setattr(tokens.reads, "token", token_read)
    assert registry.authenticate(token, "write").name == "ci"
    assert states == [psycopg.pq.TransactionStatus.IDLE]  # not INTRANS: no BEGIN sent
    with pytest.raises(ChainmlError, match="not valid"):
        registry.authenticate(token + "x", "write")


def test_a_registry_url_is_rendered_once_whatever_the_sessions(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """``Db.over`` names the URL in its errors; rendering it costs as much as a small
    statement, and each session's engine (``execution_options``) is a new object."""
    url_type = type(registry.engine.url)
    render = url_type.render_as_string
    calls: list[bool] = []

    def counted(self: object, hide_password: bool = True) -> str:
        calls.append(hide_password)
        return render(self, hide_password=hide_password)  # type: ignore[arg-type]

    with dbe.read_session(registry.engine) as s:
        Db.over(s)  # rendered now, if no earlier test did
    monkeypatch.setattr(url_type, "render_as_string", counted)
    for _ in range(5):
        with dbe.read_session(registry.engine) as s:
            Db.over(s)
        with dbe.write_session(registry.engine) as s:
            Db.over(s)
    assert calls == []
