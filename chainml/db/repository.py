"""Queries and writes over the ORM tables. Every function takes the Session first;
the caller owns the transaction (``db.engine.write_session``/``read_session``).

Walks over the chain are recursive CTEs over the ``edge`` table, so their cost
follows the part of the chain they reach, not the size of the registry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    JSON,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    false,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from chainml.db import reads
from chainml.db.direct import Db
from chainml.db.models import (
    ApiToken,
    Deployment,
    Edge,
    Environment,
    Event,
    Node,
    RetestMark,
    SnapshotPair,
    Version,
    VersionInput,
    WriteLock,
)
from chainml.errors import InvalidInput, VersionNotFound

T = TypeVar("T")


# Ids per IN (...) list: few round trips, yet under SQLite's 32,766 bound parameters.
CHUNK = 2000


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# Rows that PostgreSQL gets as one INSERT rather than COPY, which costs two round trips
# (COPY, then its end) whatever the rows: the inputs of a version, the edges of a node.
# Not for a table with JSON columns: COPY stores None there as SQL NULL, an INSERT as
# JSON null, and a table keeps one of the two.
FEW_ROWS = 20


def bulk_insert(s: Session, model: Any, rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in as few round trips as possible.

    A plain executemany sends one statement per row on psycopg, and even batched
    multi-row INSERTs are slow there (psycopg re-parses every long statement in
    Python), so PostgreSQL gets COPY, unless the rows are few. Elsewhere, RETURNING
    makes SQLAlchemy's "insertmanyvalues" batch the rows into multi-row INSERTs from
    one cached statement (SQLite 3.35+, MariaDB 10.5+).
    """
    if not rows:
        return
    table = model.__table__
    conn = s.connection()
    if conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg" and (
            len(rows) > FEW_ROWS or any(isinstance(c.type, JSON) for c in table.columns)):
        _copy_rows(conn, table, rows)
        return
    stmt = insert(table).returning(*table.primary_key.columns)
    for part in chunks(list(rows), 10000):
        conn.execute(stmt, list(part)).close()


_TABLES = {m.__tablename__: m for m in (Node, Version, VersionInput, Edge, Event)}


def insert_rows(s: Session, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """``bulk_insert`` into one of the tables a chain file fills, by name."""
    bulk_insert(s, _TABLES[table], rows)


def _copy_rows(conn: Any, table: Any, rows: Sequence[dict[str, Any]]) -> None:
    """COPY ... FROM STDIN on the connection's own transaction."""
    cols = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    json_cols = {c for c in cols if isinstance(table.c[c].type, JSON)}
    sql = f"COPY {quote(table.name)} ({', '.join(quote(c) for c in cols)}) FROM STDIN"
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for row in rows:
            copy.write_row([json.dumps(row[c]) if c in json_cols and row[c] is not None
                            else row[c] for c in cols])


# Session.info key set by lock_writes: this transaction changes the registry (the
# webhook outbox, chainml.rules.outbox, finishes such transactions before they commit).
WRITE_LOCKED = "chainml.write_locked"


# Statements run for every write or every ingested event are built once (``bindparam``):
# building one and its cache key costs SQLAlchemy more than SQLite takes to run it
# (0.1 ms against 0.03).
_LOCK = update(WriteLock).where(WriteLock.id == 1).values(counter=WriteLock.counter + 1)


def lock_writes(s: Session) -> None:
    """Queue behind any other writer (row lock on PostgreSQL/MariaDB; SQLite: BEGIN IMMEDIATE)."""
    s.execute(_LOCK)
    s.info[WRITE_LOCKED] = True


def server_time(s: Session) -> datetime | None:
    """The database server's clock as naive UTC; None on SQLite (no server)."""
    dialect = s.connection().dialect.name
    if dialect == "postgresql":
        sql = "SELECT CAST(clock_timestamp() AT TIME ZONE 'UTC' AS timestamp)"
    elif dialect in ("mysql", "mariadb"):
        sql = "SELECT UTC_TIMESTAMP(6)"
    else:
        return None
    value = s.connection().exec_driver_sql(sql).scalar_one()
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


# ---- nodes ---------------------------------------------------------------------------------


def get_node(s: Session, name: str) -> Node | None:
    """The node named ``name``, as an ORM object to change (found by ``reads.find_node``)."""
    found = reads.find_node(Db.over(s), name)
    return None if found is None else s.get_one(Node, found.id)


def get_node_by_key(s: Session, name: str) -> Node | None:
    """The node whose name equals ``name`` ignoring case (the confusable check)."""
    return s.scalars(select(Node).where(Node.name_key == name.lower())).one_or_none()


def names_by_key(s: Session, names: Sequence[str]) -> dict[str, str]:
    """For each of ``names`` whose lower-cased form is taken: the existing name."""
    wanted = {n.lower(): n for n in names}
    out: dict[str, str] = {}
    n = Node.__table__
    for part in chunks(sorted(wanted)):
        for key, name in s.connection().execute(
                select(n.c.name_key, n.c.name).where(n.c.name_key.in_(part))).all():
            out[wanted[key]] = name
    return out


def require_node(s: Session, name: str) -> Node:
    """``reads.require_node`` (the same checks and 'Did you mean'), as an ORM object."""
    return s.get_one(Node, reads.require_node(Db.over(s), name).id)


_NODES_BY_NAME = select(Node).where(Node.name.in_(bindparam("names", expanding=True)))


def nodes_by_name(s: Session, names: Iterable[str]) -> dict[str, Node]:
    wanted = sorted(set(names))
    out: dict[str, Node] = {}
    for part in chunks(wanted):
        for n in s.scalars(_NODES_BY_NAME, {"names": list(part)}):
            out[n.name] = n
    return out


def list_nodes(s: Session, kind: str | None = None, retired: bool = False) -> Sequence[Node]:
    """The nodes of the current chain (``retired``: the retired ones instead)."""
    stmt = select(Node).where(Node.retired_at.is_not(None) if retired
                              else Node.retired_at.is_(None))
    if kind:
        stmt = stmt.where(Node.kind == kind)
    # Sorted here, not by the database: collations differ (MariaDB folds case, so
    # 'clicks_raw' < 'click_features' there), and the order must not depend on the backend.
    return sorted(s.scalars(stmt).all(), key=lambda n: n.name)


# ---- versions ------------------------------------------------------------------------------


_VERSION = select(Version).where(Version.node_id == bindparam("node_id"),
                                 Version.label == bindparam("label"))


def get_version(s: Session, node: Node, label: str) -> Version | None:
    return s.scalars(_VERSION, {"node_id": node.id, "label": label}).one_or_none()


def require_version(s: Session, node: Node, label: str) -> Version:
    if not isinstance(label, str):
        raise InvalidInput(f"A version label must be text, not {type(label).__name__}.")
    v = None if "\x00" in label else get_version(s, node, label)
    if v is None:
        raise VersionNotFound(node.name, label)
    return v


def versions_of(s: Session, node_id: int) -> Sequence[Version]:
    return s.scalars(select(Version).where(Version.node_id == node_id).order_by(Version.id)).all()


def inputs_of(s: Session, version_ids: Sequence[int]) -> Sequence[VersionInput]:
    rows: list[VersionInput] = []
    for part in chunks(version_ids):
        rows.extend(s.scalars(select(VersionInput).where(VersionInput.version_id.in_(part))))
    return rows


# An INSERT into the table, not an ORM object (registering a version reads it back only
# through queries): four times cheaper than flushing one, or than inserting through the
# mapped class.
_VERSIONS = cast(Table, Version.__table__)
_ADD_VERSION = insert(_VERSIONS).returning(_VERSIONS.c.id)


def add_version(
    s: Session, node: Node, label: str, meta: dict[str, Any], at: datetime, actor: str,
    inputs: Sequence[tuple[int, int | None, bool]],
) -> int:
    """Insert a version and its inputs as (upstream id, pinned version id, feedback);
    returns its id."""
    vid = int(s.execute(_ADD_VERSION, {"node_id": node.id, "label": label, "meta": meta,
                                       "created_at": at, "created_by": actor}).scalar_one())
    if len(inputs) > FEW_ROWS:
        bulk_insert(s, VersionInput, [
            {"version_id": vid, "upstream_id": u, "pinned_version_id": p, "feedback": fb}
            for u, p, fb in inputs
        ])
    elif inputs:
        # A version's few inputs (one, for most that pipelines report) as one plain
        # INSERT: SQLAlchemy's batching of a few rows cost more than the round trip.
        Db.over(s).rows(
            "INSERT INTO version_input (version_id, upstream_id, pinned_version_id, "
            "feedback) VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(inputs)),
            [x for u, p, fb in inputs for x in (vid, u, p, bool(fb))])
    return vid


_ADD_VERSIONS = insert(_VERSIONS).returning(_VERSIONS.c.id, sort_by_parameter_order=True)


def inserted_ids(s: Session, stmt: Any, table: Table, rows: Sequence[dict[str, Any]]
                 ) -> list[int]:
    """Insert ``rows`` (all with the same keys) with ``stmt`` (an INSERT ... RETURNING id
    ordered by parameter) and return their ids in order.

    On psycopg, one short INSERT per row, sent together in one pipeline
    (``executemany(returning=True)``), instead of SQLAlchemy's one INSERT of every row:
    psycopg parses a statement of over 50 parameters in Python at every call, 1.5 ms for
    the versions of a group commit of twelve runs, and PostgreSQL plans it anew."""
    if not rows:
        return []
    conn = s.connection()
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg":
        return [int(i) for i in s.execute(stmt, list(rows)).scalars()]
    from psycopg.types.json import Json

    s.flush()  # what the session holds goes first, as Session.execute would see to

    columns = list(rows[0])
    as_json = {c for c in columns if isinstance(table.c[c].type, JSON)}
    cur: Any = conn.connection.cursor()  # psycopg's own: executemany(returning=...)
    try:
        cur.executemany(
            f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES "
            f"({', '.join(['%s'] * len(columns))}) RETURNING id",
            [tuple(Json(r[c]) if c in as_json else r[c] for c in columns) for r in rows],
            returning=True)
        ids = []
        while True:
            ids.append(int(cur.fetchone()[0]))
            if not cur.nextset():
                return ids
    finally:
        cur.close()


_VERSION_INPUTS = cast(Table, VersionInput.__table__)


def add_versions(s: Session, rows: Sequence[dict[str, Any]],
                 inputs: Sequence[Sequence[tuple[int, int | None, bool]]]) -> list[int]:
    """``add_version`` of several versions (``rows``: node_id, label, meta, created_at,
    created_by; ``inputs``: each one's), a statement for the versions and one for their
    inputs; returns their ids, in order."""
    ids = inserted_ids(s, _ADD_VERSIONS, _VERSIONS, rows)
    pairs = [{"version_id": vid, "upstream_id": u, "pinned_version_id": p, "feedback": fb}
             for vid, ins in zip(ids, inputs, strict=True) for u, p, fb in ins]
    if pairs:
        s.execute(insert(_VERSION_INPUTS), pairs)
    return ids


_NODES = cast(Table, Node.__table__)
_POINT_AT = (update(_NODES).where(_NODES.c.id == bindparam("node_id"))
             .values(current_version_id=bindparam("vid"), updated_at=bindparam("at")))


def point_at(s: Session, node: Node, version_id: int, at: datetime) -> None:
    """Make ``version_id`` the node's current version: an UPDATE, and the loaded object
    told so without becoming a change to flush (a third of the cost of registering a
    version through the session)."""
    s.flush()  # the node's own pending changes first, in their order
    s.execute(_POINT_AT, {"node_id": node.id, "vid": version_id, "at": at})
    set_committed_value(node, "current_version_id", version_id)
    set_committed_value(node, "updated_at", at)


def point_many(s: Session, current: Mapping[int, int], at: datetime) -> None:
    """``point_at`` of several nodes (node id -> version id) whose objects were not loaded
    into the session."""
    s.execute(_POINT_AT, [{"node_id": n, "vid": v, "at": at} for n, v in current.items()])


def ids_by_name(s: Session, names: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in chunks(sorted(set(names))):
        out.update((n, i) for n, i in s.execute(select(Node.name, Node.id)
                                                .where(Node.name.in_(part))))
    return out


def only_version_ids(s: Session, node_ids: Sequence[int]) -> dict[int, int]:
    """The version id of each of ``node_ids``, nodes created just now with one version."""
    out: dict[int, int] = {}
    for part in chunks(sorted(node_ids)):
        out.update((n, v) for n, v in s.execute(
            select(Version.node_id, Version.id).where(Version.node_id.in_(part))))
    return out


def point_at_only_version(s: Session, node_ids: Sequence[int]) -> None:
    """Make the one version of each new node its current one: one UPDATE per chunk
    (an executemany would be one statement per node)."""
    version_of = select(Version.id).where(Version.node_id == Node.id).scalar_subquery()
    for part in chunks(sorted(node_ids)):
        s.execute(update(Node).where(Node.id.in_(part)).values(current_version_id=version_of)
                  .execution_options(synchronize_session=False))


def current_state(s: Session) -> tuple[list[Any], list[tuple[int, int, bool, int | None]]]:
    """Every node of the chain with its current version's label and metadata, and every
    edge: what ``export`` writes. Core rows, not ORM objects (100,000 nodes)."""
    n, v, e = Node.__table__, Version.__table__, Edge.__table__
    rows = s.connection().execute(
        select(n.c.id, n.c.name, n.c.kind, n.c.owner, n.c.description, n.c.tags, n.c.meta,
               n.c.needs_tests, n.c.max_age_s, n.c.required_suites,
               v.c.label, v.c.meta.label("version_meta"))
        .join(v, v.c.id == n.c.current_version_id)
        .where(n.c.retired_at.is_(None))).all()
    edges = raw_rows(s, select(e.c.upstream_id, e.c.downstream_id, e.c.feedback,
                               e.c.pinned_version_id))
    return list(rows), edges


class NamedInput(NamedTuple):
    """One input of a version, with what registering from that version says of it."""

    upstream_id: int
    pinned_version_id: int | None
    feedback: bool
    name: str  # the upstream's
    retired: bool  # the upstream is retired
    pinned_label: str | None


def inputs_named(s: Session, version_id: int) -> tuple[str | None, list[NamedInput]]:
    """A version's label and its inputs, each with its name, whether it is retired and
    its pin's label: one round trip for what a new version kept from its base needs
    (``inputs_of``, ``retired_among``, then the labels and names of its history event
    would be five). (None, []) when there is no such version."""
    label, out = inputs_named_of(s, [version_id]).get(version_id, (None, []))
    return label, out


def inputs_named_of(s: Session, version_ids: Sequence[int]
                    ) -> dict[int, tuple[str, list[NamedInput]]]:
    """``inputs_named`` of several versions (a group of ingested runs), in one statement."""
    out: dict[int, tuple[str, list[NamedInput]]] = {}
    if not version_ids:
        return out
    for vid, lab, u, p, fb, name, retired_at, pinned in Db.over(s).rows(
            "SELECT v.id, v.label, i.upstream_id, i.pinned_version_id, i.feedback, n.name, "
            "n.retired_at, p.label FROM version v "
            "LEFT JOIN version_input i ON i.version_id = v.id "
            "LEFT JOIN node n ON n.id = i.upstream_id "
            "LEFT JOIN version p ON p.id = i.pinned_version_id "
            f"WHERE v.id IN ({', '.join('?' * len(version_ids))}) "
            "ORDER BY v.id, i.upstream_id, i.feedback", list(version_ids)):
        rows = out.setdefault(vid, (lab, []))[1]
        if u is not None:  # the outer join's one row for a version without inputs
            rows.append(NamedInput(u, p, bool(fb), name, retired_at is not None, pinned))
    return out


# ---- edges ---------------------------------------------------------------------------------


def retired_among(s: Session, ids: Iterable[int]) -> list[str]:
    """Names of the retired nodes among ``ids``, sorted."""
    out: list[str] = []
    for part in chunks(sorted(set(ids))):
        out += s.scalars(select(Node.name).where(Node.id.in_(part),
                                                 Node.retired_at.is_not(None))).all()
    return sorted(out)


def drop_edges(s: Session, node_id: int) -> None:
    """A retired node reads nothing: its inputs leave the edge table (not its history)."""
    s.execute(delete(Edge).where(Edge.downstream_id == node_id))


def replace_edges(s: Session, node_id: int,
                  inputs: Iterable[tuple[int, int | None, bool]]) -> None:
    """Make the edge table hold exactly ``inputs`` (upstream id, pinned version id,
    feedback): those of ``node_id``'s new current version.

    Only the difference is written: a new version mostly reads what the one before did
    (each one an OpenLineage run registers does), and then this is one SELECT.
    """
    e = Edge.__table__
    want = {(u, bool(fb)): p for u, p, fb in inputs}
    have = {(u, bool(fb)): p for u, fb, p in s.connection().execute(
        select(e.c.upstream_id, e.c.feedback, e.c.pinned_version_id)
        .where(e.c.downstream_id == node_id))}
    # An edge whose pin changed is deleted and inserted again: two statements at most.
    gone = [k for k, p in have.items() if k not in want or want[k] != p]
    new = sorted(k for k, p in want.items() if k not in have or have[k] != p)
    if len(gone) == len(have) and have:
        s.execute(delete(Edge).where(Edge.downstream_id == node_id))
    else:
        for feedback in (False, True):
            ups = sorted(u for u, fb in gone if fb == feedback)
            for part in chunks(ups):
                s.execute(delete(Edge).where(Edge.downstream_id == node_id,
                                             Edge.feedback == feedback,
                                             Edge.upstream_id.in_(part)))
    bulk_insert(s, Edge, [
        {"upstream_id": u, "downstream_id": node_id, "feedback": fb,
         "pinned_version_id": want[(u, fb)]} for u, fb in new
    ])


def regular_upstreams(s: Session, node_id: int) -> set[int]:
    """The nodes ``node_id``'s current version reads (feedback inputs excluded)."""
    e = Edge.__table__
    stmt = select(e.c.upstream_id).where(e.c.downstream_id == node_id, e.c.feedback == false())
    return set(s.connection().execute(stmt).scalars())


def raw_rows(s: Session, stmt: Any) -> list[Any]:
    """Plain DB-API tuples for a statement whose only parameters are integers.

    Used where a walk returns hundreds of thousands of rows: building SQLAlchemy
    Row objects for the 300,000 edges below a hub costs half a second.
    """
    conn = s.connection()
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def consumers_of(s: Session, node_id: int) -> list[tuple[str, int]]:
    """(name, id) of every node whose current version reads ``node_id`` (feedback too),
    sorted by name whatever the backend's collation."""
    stmt = (select(Node.name, Node.id).join(Edge, Node.id == Edge.downstream_id)
            .where(Edge.upstream_id == node_id))
    return sorted({(n, i) for n, i in s.execute(stmt)})


def all_edges(s: Session) -> list[tuple[int, int, bool, int | None]]:
    e = Edge.__table__
    stmt = select(e.c.upstream_id, e.c.downstream_id, e.c.feedback, e.c.pinned_version_id)
    return [(u, d, fb, p) for u, d, fb, p in s.execute(stmt)]


# ---- test runs, marks, waivers ---------------------------------------------------------------


def add_snapshot(s: Session, run_id: int, pairs: Iterable[tuple[int, int]]) -> None:
    bulk_insert(s, SnapshotPair, [{"run_id": run_id, "node_id": n, "version_id": v}
                                  for n, v in sorted(set(pairs))])


def close_marks(s: Session, mark_ids: Sequence[int], at: datetime, why: str) -> None:
    """Close marks by id. A second version of a hub closes 25,000 at once: plain SQL
    with bound id lists (one array on PostgreSQL), not ORM statements compiled per chunk."""
    if not mark_ids:
        return
    s.flush()
    db = Db.over(s)
    db.rows_in("UPDATE retest_mark SET closed_at = ?, close_reason = ? WHERE id IN ({ids})",
               sorted(mark_ids), [db.time(at), why])


def add_marks(s: Session, rows: list[dict[str, Any]]) -> None:
    bulk_insert(s, RetestMark, rows)


# As for versions: an INSERT, not an ORM object; a fifth of ingesting an OpenLineage run
# went to flushing its three events.
_EVENTS = cast(Table, Event.__table__)
_ADD_EVENT = insert(_EVENTS).returning(_EVENTS.c.id)


def add_event(
    s: Session, at: datetime, actor: str, action: str, node: str | None = None,
    version: str | None = None, *, env_name: str | None = None, **details: Any,
) -> int:
    """Append an event to the history; returns its id."""
    s.flush()  # what came before it is written before it, as its id says
    return int(s.execute(_ADD_EVENT, {
        "at": at, "actor": actor, "action": action, "node_name": node,
        "version_label": version, "env_name": env_name, "details": details,
    }).scalar_one())


_ADD_EVENTS = insert(_EVENTS).returning(_EVENTS.c.id, sort_by_parameter_order=True)


def add_events(s: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """``add_event`` of several events (at, actor, action, node_name, version_label,
    env_name, details), in order: their ids follow it."""
    s.flush()
    return inserted_ids(s, _ADD_EVENTS, _EVENTS, rows)


def events(s: Session, node: str | None = None, limit: int | None = None,
           env: str | None = None) -> Sequence[Event]:
    """The history, oldest first: of one node (its own events and the releases that
    deployed it), of one environment, or both."""
    stmt = select(Event).order_by(Event.id.desc())
    if node is not None:
        released = (select(Deployment.event_id).join(Node, Node.id == Deployment.node_id)
                    .where(Node.name == node))
        stmt = stmt.where(or_(Event.node_name == node, Event.id.in_(released)))
    if env is not None:
        stmt = stmt.where(Event.env_name == env)
    if limit:
        stmt = stmt.limit(limit)
    return list(reversed(s.scalars(stmt).all()))


# ---- environments --------------------------------------------------------------------------


def add_environment(s: Session, name: str, after_id: int | None, description: str | None,
                    at: datetime, actor: str) -> Environment:
    env = Environment(name=name, name_key=name.lower(), after_id=after_id,
                      description=description, created_at=at, created_by=actor)
    s.add(env)
    s.flush()
    return env


def add_deployments(s: Session, env_id: int, rows: Sequence[tuple[int, int | None]],
                    event_id: int, at: datetime, actor: str, link: str | None,
                    note: str | None) -> None:
    """One deployment row per (node id, version id or None for an undeploy), in order."""
    bulk_insert(s, Deployment, [
        {"environment_id": env_id, "node_id": n, "version_id": v, "event_id": event_id,
         "deployed_at": at, "deployed_by": actor, "link": link, "note": note}
        for n, v in rows])


# ---- pictures (views.py) ---------------------------------------------------------------------


def walk(s: Session, start: int, downward: bool, depth: int | None) -> set[int]:
    """Ids within ``depth`` hops of ``start`` along regular edges (pinned ones included).

    Feedback edges are not followed: through a loop, "upstream of X" would reach X's own
    consumers, and "downstream" everything the loop feeds, so one direction would draw
    nearly the whole chain. Regular edges never close a cycle, so every walk ends.
    """
    e = Edge.__table__
    near, far = (e.c.upstream_id, e.c.downstream_id) if downward else (
        e.c.downstream_id, e.c.upstream_id)
    if depth is None:
        # Without a depth column UNION drops the rows of nodes reached twice (diamonds).
        seen = select(literal(start).label("id")).cte("walk_all", recursive=True)
        seen = seen.union(select(far).join(seen, near == seen.c.id).where(
            e.c.feedback == false()))
        return {i for (i,) in s.execute(select(seen.c.id))}
    first = select(literal(start).label("id"), literal(0).label("d"))
    reach = first.cte("walk", recursive=True)
    step: Select[tuple[int, int]] = select(far, (reach.c.d + 1)).join(
        reach, near == reach.c.id).where(e.c.feedback == false(), reach.c.d < depth)
    reach = reach.union(step)
    return {i for (i,) in s.execute(select(reach.c.id).distinct())}


def chain_nodes_with_labels(s: Session, ids: Sequence[int] | None
                            ) -> list[tuple[Node, str | None]]:
    """The nodes of the chain among ``ids`` (all when None; retired nodes left it), each
    with its current version's label."""
    stmt = select(Node, Version.label).join(
        Version, Version.id == Node.current_version_id, isouter=True).where(
        Node.retired_at.is_(None))
    if ids is None:
        return [(n, v) for n, v in s.execute(stmt)]
    out: list[tuple[Node, str | None]] = []
    for part in chunks(sorted(set(ids))):
        out.extend((n, v) for n, v in s.execute(stmt.where(Node.id.in_(part))))
    return out


def edges_among(s: Session, ids: list[int] | None) -> list[tuple[int, int, bool, int | None]]:
    if ids is None:
        return all_edges(s)
    out: list[tuple[int, int, bool, int | None]] = []
    e = Edge.__table__
    for part in chunks(ids):
        stmt = select(e.c.upstream_id, e.c.downstream_id, e.c.feedback, e.c.pinned_version_id
                      ).where(or_(e.c.upstream_id.in_(part), e.c.downstream_id.in_(part)))
        out.extend((u, d, fb, p) for u, d, fb, p in s.execute(stmt))
    return sorted(set(out))


def version_labels(s: Session, ids: list[int] | None) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    stmt = select(Version.node_id, Version.label).order_by(Version.id)
    parts = [None] if ids is None else list(chunks(ids))
    for part in parts:
        q = stmt if part is None else stmt.where(and_(Version.node_id.in_(part)))
        for nid, label in s.execute(q):
            out.setdefault(nid, []).append(label)
    return out


# ---- API tokens ---------------------------------------------------------------------------


def token_by_key(s: Session, name: str) -> ApiToken | None:
    """The token whose name equals ``name`` ignoring case (names stay taken for good)."""
    return s.scalars(select(ApiToken).where(ApiToken.name_key == name.lower())).first()


def tokens(s: Session) -> list[ApiToken]:
    return list(s.scalars(select(ApiToken).order_by(ApiToken.name)))


def add_token(s: Session, row: ApiToken) -> ApiToken:
    s.add(row)
    s.flush()
    return row

