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
from typing import Any, cast

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
