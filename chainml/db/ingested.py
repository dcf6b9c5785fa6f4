"""Queries and writes over the ingestion tables (migration 0007): received OpenLineage
events, completed runs, and undeclared-consumer findings. The caller owns the
transaction, as in :mod:`chainml.db.repository`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chainml.db.models import Edge, LineageEvent, LineageRun, ObservedInput


def has_event(s: Session, key: str) -> bool:
    return s.scalar(select(LineageEvent.id).where(LineageEvent.dedup_key == key)) is not None


def add_event(s: Session, key: str, run_id: str | None, event_type: str | None,
              event_time: datetime, body: dict[str, Any], at: datetime, actor: str) -> None:
    s.add(LineageEvent(dedup_key=key, run_id=run_id, event_type=event_type,
                       event_time=event_time, body=body, received_at=at, received_by=actor))
    s.flush()


def run_events(s: Session, run_id: str) -> Sequence[dict[str, Any]]:
    """The bodies of every event received for ``run_id``, in arrival order."""
    return s.scalars(select(LineageEvent.body).where(LineageEvent.run_id == run_id)
                     .order_by(LineageEvent.id)).all()


def completed_run(s: Session, run_id: str) -> LineageRun | None:
    return s.scalars(select(LineageRun).where(LineageRun.run_id == run_id)).one_or_none()


def add_run(s: Session, run_id: str, job: str, job_version: str, outputs: list[str],
            at: datetime) -> LineageRun:
    run = LineageRun(run_id=run_id, job=job, job_version=job_version, outputs=outputs,
                     completed_at=at)
    s.add(run)
    s.flush()
    return run


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


def declared(s: Session, node_id: int) -> set[int]:
    """The nodes the current version of ``node_id`` reads (regular, feedback, pinned)."""
    return set(s.scalars(select(Edge.upstream_id).where(Edge.downstream_id == node_id)))
