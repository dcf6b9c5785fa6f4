"""The webhooks' transactional outbox (docs/webhooks.md): a notification is written in
the same transaction as the change that causes it, so a change committed is a
notification committed (and a change rolled back leaves none), whatever happens to the
process afterwards. ``chainml.hooks`` delivers what it writes.

The write paths call one function, ``notify(s, event, payload)`` (the marks code calls
``marks_changed``, which builds the payload and calls it). It reads the small ``hook``
table once per transaction and writes nothing unless an active hook subscribes to the
event; then it writes the notification and one pending delivery per subscribed hook.

``mark.opened`` and ``mark.closed`` are merged per transaction: a change that opens 300
marks (or an ``apply`` of 40 nodes) is one notification listing the first
``MAX_LISTED`` marks and counting all. They, and ``check.changed``, are written by a
``before_commit`` listener on every session that took the registry's write lock
(``repository.lock_writes``): the last moment of the change's own transaction.

``check.changed`` costs a whole ``check`` of the registry inside every write while a
hook subscribes to it (and only then): the gate's verdict is recomputed and compared
with the last one kept in ``gate_verdict``. Time alone (a waiver expiring, a node
growing stale) flips nothing until the next write.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from chainml.db import hooks as db
from chainml.db import repository as repo
from chainml.rules.status import utcnow

MAX_LISTED = 100  # marks or nodes a notification names; "count" says how many there were
MERGED = ("mark.opened", "mark.closed")
_HOOKS = "chainml.hooks"  # Session.info: the active hooks, read once per transaction
_PENDING = "chainml.outbox"  # Session.info: the merged mark events of this transaction
WRITE_TIME = "chainml.write_time"  # Session.info: the write's time (Registry._write_time)


@contextmanager
def savepoint(s: Session) -> Iterator[None]:
    """A part of a write that may fail alone (one request of a group commit): on an
    exception its rows are rolled back to the savepoint and the marks it queued for the
    merged notifications are forgotten with them."""
    saved = copy.deepcopy(s.info.get(_PENDING))
    try:
        with s.begin_nested():
            yield
    except BaseException:
        s.info.pop(_PENDING, None)
        if saved is not None:
            s.info[_PENDING] = saved
        raise


def subscribers(s: Session, event_name: str) -> list[int]:
    """Ids of the active hooks subscribed to ``event_name``."""
    if _HOOKS not in s.info:
        s.info[_HOOKS] = db.active_hooks(s)
    return [i for i, events in s.info[_HOOKS] if event_name in events]


def forget_hooks(s: Session) -> None:
    """Read the hook table again at the next notification (after a hook change)."""
    s.info.pop(_HOOKS, None)


def notify(s: Session, event_name: str, payload: dict[str, Any]) -> None:
    """Queue ``event_name`` with ``payload`` (JSON data) for the hooks subscribed to it, in
    ``s``'s transaction; nothing when no active hook subscribes."""
    ids = subscribers(s, event_name)
    if not ids:
        return
    if event_name in MERGED:
        merged = s.info.setdefault(_PENDING, {}).setdefault(
            event_name, {"count": 0, "marks": []})
        merged["count"] += payload.get("count", len(payload.get("marks", [])))
        merged["marks"] += payload.get("marks", [])[:MAX_LISTED - len(merged["marks"])]
        return
    _write(s, event_name, payload, ids)


def _write(s: Session, event_name: str, payload: dict[str, Any], ids: list[int]) -> None:
    at = repo.server_time(s) or utcnow()
    db.add_notification(s, str(uuid.uuid4()), event_name, payload, at, ids)


Fact = tuple[str, str, list[str]]  # a mark's node, cause and path, by name


def marks_changed(s: Session, opened: list[dict[str, Any]], closed: list[int],
                  why: str) -> None:
    """``mark.opened`` for the mark rows just added, ``mark.closed`` for the mark ids just
    closed (``why``: verified, superseded, recomputed, retired)."""
    def opened_facts(room: int) -> list[Fact]:
        rows = opened[:room]
        names = db.node_names(s, [r["node_id"] for r in rows] + [r["cause_id"] for r in rows])
        return [(names[r["node_id"]], names[r["cause_id"]], list(r["path"])) for r in rows]

    marks_told(s, len(opened), opened_facts, len(closed),
               lambda room: db.mark_facts(s, sorted(closed)[:room]), why)


def marks_told(s: Session, opened: int, opened_facts: Callable[[int], list[Fact]],
               closed: int, closed_facts: Callable[[int], list[Fact]], why: str) -> None:
    """``marks_changed`` of ``opened`` marks and ``closed`` ones whose facts (in id order)
    the callables give, as many as asked: read only when a hook subscribes and there is
    room in the notification (a set-wise writer knows them without a read)."""
    if opened and subscribers(s, "mark.opened"):
        notify(s, "mark.opened", {"count": opened, "marks": [
            {"node": n, "cause": c, "path": list(p)}
            for n, c, p in opened_facts(_room(s, "mark.opened"))]})
    if closed and subscribers(s, "mark.closed"):
        notify(s, "mark.closed", {"count": closed, "marks": [
            {"node": n, "cause": c, "path": p, "reason": why}
            for n, c, p in closed_facts(_room(s, "mark.closed"))]})


def _room(s: Session, event_name: str) -> int:
    """How many more marks this transaction's notification of ``event_name`` lists."""
    merged = s.info.get(_PENDING, {}).get(event_name)
    return MAX_LISTED - (len(merged["marks"]) if merged else 0)


@event.listens_for(Session, "before_commit")
def _before_commit(s: Session) -> None:
    """Write the merged mark notifications and compare the gate's verdict, last thing in
    a registry write's transaction."""
    if not s.info.get(repo.WRITE_LOCKED):
        return  # not a registry change (a read, a delivery worker's claim)
    pending = s.info.pop(_PENDING, {})
    for name in MERGED:
        merged = pending.get(name)
        ids = subscribers(s, name)
        if merged and merged["count"] and ids:
            merged["truncated"] = merged["count"] > len(merged["marks"])
            _write(s, name, merged, ids)
    ids = subscribers(s, "check.changed")
    if ids:
        s.flush()
        changed = gate_verdict(s)
        if changed is not None:
            _write(s, "check.changed", changed, ids)


def gate_verdict(s: Session) -> dict[str, Any] | None:
    """Recompute the registry gate and keep its verdict; the ``check.changed`` payload
    when it flipped since the verdict kept last (None otherwise, and the first time)."""
    from chainml.db.direct import Db
    from chainml.rules import gate

    # "now" as the writer sees it: a Registry given a clock (tests) judges waivers and
    # staleness by that clock, and so does the gate here.
    result = gate.check(Db.over(s), (), False, s.info.get(WRITE_TIME) or utcnow())
    failing = [e.name for e in result.failing]
    last = db.verdict(s)
    if last is not None and last.ok == result.ok and list(last.failing) == failing[:MAX_LISTED]:
        return None
    was = None if last is None else last.ok
    db.set_verdict(s, result.ok, failing[:MAX_LISTED], repo.server_time(s) or utcnow())
    if was is None or was == result.ok:
        return None
    return {"ok": result.ok, "was_ok": was, "failing": failing[:MAX_LISTED],
            "failing_count": len(failing), "counts": result.counts,
            "truncated": len(failing) > MAX_LISTED}
