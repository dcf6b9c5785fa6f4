"""Queries and writes over the ingestion tables (migration 0007): received OpenLineage
events, completed runs, and undeclared-consumer findings. The caller owns the
transaction, as in :mod:`chainml.db.repository`.

The queries run for every event are plain SQL (``Db``) or built once (``bindparam``):
building an ORM statement and its cache key costs SQLAlchemy more than SQLite takes to
run it (0.1 ms against 0.03), and executing one through the session costs more again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db.direct import Db
from chainml.db.models import LineageEvent, LineageRun, ObservedInput

_COMPLETED_RUN = select(LineageRun).where(LineageRun.run_id == bindparam("run_id"))
# Rows written once per event: INSERTs into the tables, not ORM objects (nothing reads
# them back in the same transaction but through a query), four times cheaper than
# flushing an object (or inserting through the mapped class, which costs the same).
_ADD_EVENT = insert(cast(Table, LineageEvent.__table__))
_ADD_RUN = insert(cast(Table, LineageRun.__table__))


def has_event(s: Session, key: str) -> bool:
    return bool(Db.over(s).rows("SELECT id FROM lineage_event WHERE dedup_key = ?", [key]))


def stored_of_run(s: Session, run_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(dedup key, body) of every event received for ``run_id`` so far, in arrival
    order: what de-duplicates a new event of the run and what it adds to, one query."""
    db = Db.over(s)
    rows = db.rows(f"SELECT dedup_key, {db.as_text('body')} FROM lineage_event "
                   "WHERE run_id = ? ORDER BY id", [run_id])
    return list(zip((k for k, _ in rows), reads.json_many([b for _, b in rows]), strict=True))


def add_event(s: Session, key: str, run_id: str | None, event_type: str | None,
              event_time: datetime, body: dict[str, Any], at: datetime, actor: str) -> None:
    s.execute(_ADD_EVENT, {"dedup_key": key, "run_id": run_id, "event_type": event_type,
                           "event_time": event_time, "body": body, "received_at": at,
                           "received_by": actor})


def completed_run(s: Session, run_id: str) -> LineageRun | None:
    return s.scalars(_COMPLETED_RUN, {"run_id": run_id}).one_or_none()


def add_run(s: Session, run_id: str, job: str, job_version: str, outputs: list[str],
            at: datetime) -> None:
    s.execute(_ADD_RUN, {"run_id": run_id, "job": job, "job_version": job_version,
                         "outputs": outputs, "completed_at": at})


def record_finding(s: Session, node_id: int, input_id: int, run_id: str, at: datetime
                   ) -> bool:
    """Note that ``node_id`` was seen reading ``input_id`` in ``run_id``; True when this
    is the first time."""
    row = s.scalars(select(ObservedInput).where(ObservedInput.node_id == node_id,
                                                ObservedInput.input_id == input_id)
                    ).one_or_none()
    if row is None:
        s.add(ObservedInput(node_id=node_id, input_id=input_id, first_run=run_id,
                            first_seen=at, last_run=run_id, last_seen=at, times=1))
        s.flush()
        return True
    if row.last_run != run_id:
        row.last_run, row.last_seen, row.times = run_id, at, row.times + 1
    return False


def declared(s: Session, node_ids: Sequence[int]) -> dict[int, set[int]]:
    """For each of ``node_ids``: the nodes its current version reads (regular, feedback,
    pinned). A run's job and outputs, so one query (the list is short)."""
    out: dict[int, set[int]] = {n: set() for n in node_ids}
    for up, down in Db.over(s).rows_in(
            "SELECT upstream_id, downstream_id FROM edge WHERE downstream_id IN ({ids})",
            sorted(out)):
        out[down].add(up)
    return out


# ---- the group path (chainml/ingest/group.py): a group's facts read and its rows written
# set-wise, a statement each, whatever the number of requests


class GroupNode(NamedTuple):
    id: int
    name: str
    kind: str
    current_version_id: int | None
    retired: bool
    needs_tests: bool


def _in(n: int) -> str:
    return ", ".join("?" * n)


def runs_stored(s: Session, run_ids: Sequence[str]) -> bool:
    """Whether any event of ``run_ids`` was stored before."""
    return bool(run_ids) and bool(Db.over(s).rows(
        f"SELECT 1 FROM lineage_event WHERE run_id IN ({_in(len(run_ids))})", run_ids))


def group_nodes(s: Session, names: Sequence[str]) -> dict[str, GroupNode]:
    rows = Db.over(s).rows(
        "SELECT id, name, kind, current_version_id, retired_at, needs_tests FROM node "
        f"WHERE name IN ({_in(len(names))})", names) if names else []
    return {r[1]: GroupNode(r[0], r[1], r[2], r[3], r[4] is not None, bool(r[5]))
            for r in rows}


def labels_taken(s: Session, node_ids: Sequence[int], labels: Sequence[str]
                 ) -> set[tuple[int, str]]:
    """The (node, label) pairs among ``node_ids`` x ``labels`` that are versions already."""
    if not node_ids or not labels:
        return set()
    return {(n, label) for n, label in Db.over(s).rows(
        f"SELECT node_id, label FROM version WHERE node_id IN ({_in(len(node_ids))}) "
        f"AND label IN ({_in(len(labels))})", [*node_ids, *labels])}


def marks_may_change(s: Session, node_ids: Sequence[int]) -> bool:
    """Whether a new current version of any of ``node_ids`` could open or close a retest
    mark: one of them, or a node below one along any edge, needs tests, or one of them
    has an open mark (a superset of what ``marks.propagate`` and ``marks.rebuild`` act
    on: they walk unpinned regular edges only)."""
    db = Db.over(s)
    marks = f"node_id IN ({_in(len(node_ids))})"
    # Each node's flag is read as the walk reaches it: joined after the walk, PostgreSQL
    # hashed every testable node of the registry (28,000: 24 ms) for a walk of ten.
    return bool(db.rows(
        "WITH RECURSIVE reach(id, needs) AS ("
        f" SELECT id, needs_tests FROM node WHERE id IN ({_in(len(node_ids))}) UNION"
        " SELECT n.id, n.needs_tests FROM edge e JOIN reach ON e.upstream_id = reach.id"
        " JOIN node n ON n.id = e.downstream_id) "
        "SELECT 1 FROM reach WHERE needs = TRUE "
        f"UNION ALL SELECT 1 FROM retest_mark WHERE closed_at IS NULL AND {marks} "
        "LIMIT 1",  # the walk below a hub stops at the first node that needs tests
        [*node_ids, *node_ids]))


def any_open_mark(s: Session, node_ids: Sequence[int]) -> bool:
    return bool(node_ids) and bool(Db.over(s).rows(
        f"SELECT 1 FROM retest_mark WHERE closed_at IS NULL AND node_id IN "
        f"({_in(len(node_ids))}) LIMIT 1", node_ids))


def add_events(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    """``add_event`` of several received events, in order."""
    s.execute(_ADD_EVENT, list(rows))


def add_runs(s: Session, rows: Sequence[dict[str, Any]]) -> None:
    s.execute(_ADD_RUN, list(rows))
