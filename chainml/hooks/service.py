"""Hooks and their deliveries: add, list, remove, show, replay.

Each function runs inside the caller's session (``Registry`` opens it and, for the
writes, takes the write lock first, so hook changes are ordered with every other
change); the writes record a history event (``log``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from chainml.db import hooks as db
from chainml.db import repository as repo
from chainml.db.models import Delivery, Hook, Notification
from chainml.errors import InvalidInput
from chainml.hooks import policy
from chainml.rules import outbox
from chainml.schemas import DeliveryOut, HookOut


def hook_out(h: Hook, cancelled: int = 0) -> HookOut:
    return HookOut(id=h.id, url=h.url, events=list(h.events), format=h.format,
                   secret_env=h.secret_env, max_attempts=h.max_attempts,
                   state="removed" if h.removed_at is not None else "active",
                   created_at=h.created_at, created_by=h.created_by, removed_at=h.removed_at,
                   cancelled=cancelled)


def delivery_out(d: Delivery, h: Hook, n: Notification) -> DeliveryOut:
    return DeliveryOut(id=d.id, hook=h.id, url=h.url, notification=n.uuid, event=n.event,
                       created_at=n.created_at, state=d.state, attempts=d.attempts,
                       max_attempts=h.max_attempts,
                       next_attempt_at=d.next_attempt_at if d.state == db.PENDING else None,
                       last_status=d.last_status, last_error=d.last_error,
                       delivered_at=d.delivered_at, payload=dict(n.payload))


def add(s: Session, url: str, events: list[str], secret_env: str | None, format: str,
        max_attempts: int, at: datetime, actor: str) -> HookOut:
    """Add a hook (its arguments checked by ``policy`` already)."""
    row = db.add_hook(s, Hook(url=url, events=events, format=format, secret_env=secret_env,
                              max_attempts=max_attempts, created_at=at, created_by=actor))
    repo.add_event(s, at, actor, "hook.added", hook=row.id, url=policy.shown_url(url),
                   events=events, format=format, secret_env=secret_env)
    outbox.forget_hooks(s)
    if "check.changed" in events:
        outbox.gate_verdict(s)  # the verdict the first change is compared with
    return hook_out(row)


def require(s: Session, hook_id: int) -> Hook:
    row = db.hook_by_id(s, hook_id) if isinstance(hook_id, int) else None
    if row is None:
        raise InvalidInput(f"No hook with id {hook_id!r}; 'chainml hook list' lists them.")
    return row


def remove(s: Session, hook_id: int, at: datetime, actor: str) -> HookOut:
    """Remove a hook: it gets nothing more, and its pending deliveries turn dead."""
    row = require(s, hook_id)
    if row.removed_at is not None:
        raise InvalidInput(f"Hook {hook_id} was already removed on "
                           f"{row.removed_at.isoformat(sep=' ', timespec='seconds')}.")
    row.removed_at, row.removed_by = at, actor
    cancelled = db.cancel_pending(s, row.id, "the hook was removed")
    repo.add_event(s, at, actor, "hook.removed", hook=row.id, url=policy.shown_url(row.url),
                   cancelled=cancelled)
    outbox.forget_hooks(s)
    return hook_out(row, cancelled)


def listing(s: Session, include_removed: bool) -> list[HookOut]:
    return [hook_out(h) for h in db.hooks(s, include_removed)]


def deliveries(s: Session, hook_id: int | None, state: str | None, limit: int | None
               ) -> list[DeliveryOut]:
    if hook_id is not None:
        require(s, hook_id)
    return [delivery_out(d, h, n) for d, h, n in db.deliveries(s, hook_id, state, limit)]


def replay(s: Session, delivery_id: int, at: datetime, actor: str) -> DeliveryOut:
    """Queue a delivered or dead delivery again, due now, with its attempts reset (the
    same notification id: a receiver that de-duplicates sees it once)."""
    found = db.delivery(s, delivery_id) if isinstance(delivery_id, int) else None
    if found is None:
        raise InvalidInput(f"No delivery with id {delivery_id!r}; 'chainml hook deliveries' "
                           "lists them.")
    d, h, n = found
    if h.removed_at is not None:
        raise InvalidInput(f"Delivery {d.id} is to hook {h.id}, which was removed; add the "
                           "hook again to receive new notifications.")
    if d.state == db.PENDING:
        raise InvalidInput(f"Delivery {d.id} is pending already (attempt {d.attempts} of "
                           f"{h.max_attempts}); the worker sends it when it is due.")
    was = d.state
    db.requeue(s, d.id, at)
    repo.add_event(s, at, actor, "hook.replayed", hook=h.id, delivery=d.id,
                   notification=n.uuid, event=n.event, was=was)
    s.expire(d)
    return delivery_out(d, h, n)
