"""Queries and writes over the webhook tables (migration 0006): hooks, the outbox of
notifications, their deliveries, and the gate's last verdict. The caller owns the
transaction, as in :mod:`chainml.db.repository`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from chainml.db.models import Delivery, GateVerdict, Hook, Node, Notification, RetestMark

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


# ---- hooks ------------------------------------------------------------------------------------


def active_hooks(s: Session) -> list[tuple[int, list[str]]]:
    """(id, events) of every hook not removed: the small read each write makes."""
    return [(i, list(e)) for i, e in s.execute(
        select(Hook.id, Hook.events).where(Hook.removed_at.is_(None)).order_by(Hook.id))]


def hooks(s: Session, include_removed: bool = False) -> Sequence[Hook]:
    stmt = select(Hook).order_by(Hook.id)
    if not include_removed:
        stmt = stmt.where(Hook.removed_at.is_(None))
    return s.scalars(stmt).all()


def hook_by_id(s: Session, hook_id: int) -> Hook | None:
    return s.get(Hook, hook_id)


def add_hook(s: Session, row: Hook) -> Hook:
    s.add(row)
    s.flush()
    return row


def cancel_pending(s: Session, hook_id: int, why: str) -> int:
    """Turn a removed hook's pending deliveries dead; returns how many."""
    done = s.execute(update(Delivery).where(Delivery.hook_id == hook_id,
                                            Delivery.state == PENDING)
                     .values(state=DEAD, last_error=why))
    return int(getattr(done, "rowcount", 0) or 0)


# ---- the outbox -------------------------------------------------------------------------------


def add_notification(s: Session, uuid: str, event: str, payload: dict[str, Any],
                     at: datetime, hook_ids: Sequence[int]) -> int:
    """One notification and a pending delivery of it to each of ``hook_ids``, due now."""
    row = Notification(uuid=uuid, event=event, payload=payload, created_at=at)
    s.add(row)
    s.flush()
    s.execute(insert(Delivery), [
        {"hook_id": h, "notification_id": row.id, "state": PENDING, "attempts": 0,
         "next_attempt_at": at, "last_status": None, "last_error": None,
         "delivered_at": None} for h in hook_ids])
    return row.id


def mark_facts(s: Session, mark_ids: Sequence[int]) -> list[tuple[str, str, list[str]]]:
    """(node, cause, path) of the marks ``mark_ids``, in id order."""
    if not mark_ids:
        return []
    rows = s.execute(select(RetestMark.node_id, RetestMark.cause_id, RetestMark.path)
                     .where(RetestMark.id.in_(list(mark_ids))).order_by(RetestMark.id)).all()
    names = node_names(s, [n for n, _, _ in rows] + [c for _, c, _ in rows])
    return [(names[n], names[c], list(p)) for n, c, p in rows]


def node_names(s: Session, ids: Sequence[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {i: n for i, n in s.execute(select(Node.id, Node.name).where(Node.id.in_(set(ids))))}


# ---- the gate's last verdict (check.changed) --------------------------------------------------


def verdict(s: Session) -> GateVerdict | None:
    return s.get(GateVerdict, 1)


def set_verdict(s: Session, ok: bool, failing: list[str], at: datetime) -> None:
    row = s.get(GateVerdict, 1)
    if row is None:
        s.add(GateVerdict(id=1, ok=ok, failing=failing, at=at))
    else:
        row.ok, row.failing, row.at = ok, failing, at
    s.flush()


# ---- deliveries -------------------------------------------------------------------------------


def deliveries(s: Session, hook_id: int | None, state: str | None, limit: int | None
               ) -> list[tuple[Delivery, Hook, Notification]]:
    """Deliveries, newest first, with their hook and notification."""
    stmt = (select(Delivery, Hook, Notification).join(Hook, Hook.id == Delivery.hook_id)
            .join(Notification, Notification.id == Delivery.notification_id)
            .order_by(Delivery.id.desc()))
    if hook_id is not None:
        stmt = stmt.where(Delivery.hook_id == hook_id)
    if state is not None:
        stmt = stmt.where(Delivery.state == state)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [(d, h, n) for d, h, n in s.execute(stmt)]


def delivery(s: Session, delivery_id: int) -> tuple[Delivery, Hook, Notification] | None:
    row = s.execute(select(Delivery, Hook, Notification)
                    .join(Hook, Hook.id == Delivery.hook_id)
                    .join(Notification, Notification.id == Delivery.notification_id)
                    .where(Delivery.id == delivery_id)).first()
    return (row[0], row[1], row[2]) if row is not None else None


def any_due(s: Session, now: datetime) -> bool:
    """Whether a pending delivery is due: the worker's cheap poll, before it writes."""
    return s.scalar(select(Delivery.id).where(Delivery.state == PENDING,
                                              Delivery.next_attempt_at <= now).limit(1)
                    ) is not None


def claim_due(s: Session, now: datetime, lease_until: datetime, limit: int
              ) -> list[tuple[Delivery, Hook, Notification]]:
    """Claim up to ``limit`` due deliveries: bump their attempts and move them out of
    reach until ``lease_until``. ``SKIP LOCKED`` lets concurrent workers on PostgreSQL
    and MariaDB claim disjoint rows without waiting; on SQLite the write transaction
    (BEGIN IMMEDIATE) serializes claimers."""
    ids = s.scalars(select(Delivery.id).where(Delivery.state == PENDING,
                                              Delivery.next_attempt_at <= now)
                    .order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
                    .with_for_update(skip_locked=True)).all()
    if not ids:
        return []
    s.execute(update(Delivery).where(Delivery.id.in_(ids))
              .values(attempts=Delivery.attempts + 1, next_attempt_at=lease_until))
    s.expire_all()
    return [(d, h, n) for d, h, n in s.execute(
        select(Delivery, Hook, Notification).join(Hook, Hook.id == Delivery.hook_id)
        .join(Notification, Notification.id == Delivery.notification_id)
        .where(Delivery.id.in_(ids)).order_by(Delivery.id))]


def finish(s: Session, delivery_id: int, attempt: int, **values: Any) -> bool:
    """Record an attempt's outcome, only if the delivery is still at that attempt (a
    worker whose lease ran out and was overtaken records nothing)."""
    done = s.execute(update(Delivery).where(Delivery.id == delivery_id,
                                            Delivery.attempts == attempt,
                                            Delivery.state == PENDING).values(**values))
    return bool(getattr(done, "rowcount", 0))


def requeue(s: Session, delivery_id: int, now: datetime) -> None:
    s.execute(update(Delivery).where(Delivery.id == delivery_id)
              .values(state=PENDING, attempts=0, next_attempt_at=now, delivered_at=None))
