"""The delivery worker: claim due deliveries, POST them, record what happened.

A claim is its own short transaction: it bumps the delivery's attempt counter and moves
its ``next_attempt_at`` past the attempt's timeout (a lease), so no other worker takes
it while it is being sent (PostgreSQL and MariaDB claim with ``FOR UPDATE SKIP LOCKED``;
SQLite has one writer at a time). The POST happens outside any transaction; the outcome
is recorded only if the delivery is still at the attempt claimed. A worker that dies
between the two leaves the delivery due again when the lease ends: delivery is at least
once, and the notification id lets receivers drop the repeats.

It runs inside ``chainml serve`` (one thread per server process, started by the app's
lifespan) or alone (``chainml hook run``). Sending uses the standard library only.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chainml.db import engine as dbe
from chainml.db import hooks as db
from chainml.db import repository as repo
from chainml.hooks import formats, policy, signing
from chainml.rules.status import utcnow
from chainml.schemas import DeliverResult

log = logging.getLogger("chainml.hooks")
USER_AGENT = "chainml-hooks/1"


@dataclass(frozen=True)
class Claim:
    """A claimed delivery, as plain data (sent after its session has closed)."""

    id: int
    attempt: int
    max_attempts: int
    url: str
    format: str
    secret_env: str | None
    uuid: str
    event: str
    body: bytes


def _now(s: Session) -> datetime:
    return repo.server_time(s) or utcnow()


def claim(engine: Engine, settings: policy.WorkerSettings) -> list[Claim]:
    """Claim up to ``settings.batch`` due deliveries (none: no write transaction)."""
    with dbe.read_session(engine) as s:
        if not db.any_due(s, _now(s)):
            return []
    with dbe.write_session(engine) as s:
        now = _now(s)
        rows = db.claim_due(s, now, now + timedelta(seconds=settings.lease), settings.batch)
        return [Claim(id=d.id, attempt=d.attempts, max_attempts=h.max_attempts, url=h.url,
                      format=h.format, secret_env=h.secret_env, uuid=n.uuid, event=n.event,
                      body=formats.body(h.format, n.uuid, n.event, n.created_at,
                                        dict(n.payload)))
                for d, h, n in rows]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer, not a delivery: it fails the attempt (and a POST is never
    replayed as a GET elsewhere)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def headers(c: Claim, timestamp: int, secret: str | None) -> dict[str, str]:
    out = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
           "X-Chainml-Delivery": c.uuid, "X-Chainml-Event": c.event,
           "X-Chainml-Attempt": str(c.attempt), "X-Chainml-Timestamp": str(timestamp)}
    if secret is not None:
        out["X-Chainml-Signature"] = signing.header(secret, timestamp, c.body)
    return out


def send(c: Claim, timeout: float) -> tuple[int | None, str | None]:
    """POST one claimed delivery: (HTTP status or None, error or None)."""
    secret = None
    if c.secret_env is not None:
        secret = os.environ.get(c.secret_env)
        if not secret:
            return None, (f"the environment variable {c.secret_env} (the signing secret) is "
                          "not set where the worker runs; nothing was sent")
    request = urllib.request.Request(c.url, data=c.body, method="POST",
                                     headers=headers(c, int(time.time()), secret))
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=timeout) as answer:
            answer.read(65536)
            status = int(answer.status)
            return status, None if 200 <= status < 300 else f"HTTP {status}"
    except urllib.error.HTTPError as e:
        return e.code, f"HTTP {e.code} {e.reason}"[:500]
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", None) or e
        return None, f"{type(e).__name__}: {reason}"[:500]


def record(engine: Engine, outcomes: list[tuple[Claim, tuple[int | None, str | None]]],
           settings: policy.WorkerSettings, result: DeliverResult,
           rng: random.Random | None = None) -> None:
    """Write the outcome of each attempt: delivered (2xx), due again after a backoff, or
    dead after the hook's last attempt."""
    with dbe.write_session(engine) as s:
        now = _now(s)
        for c, (status, error) in outcomes:
            result.attempted += 1
            if status is not None and 200 <= status < 300:
                db.finish(s, c.id, c.attempt, state=db.DELIVERED, last_status=status,
                          last_error=None, delivered_at=now)
                result.delivered += 1
            elif c.attempt >= c.max_attempts:
                db.finish(s, c.id, c.attempt, state=db.DEAD, last_status=status,
                          last_error=error)
                result.dead += 1
                log.warning("chainml hook delivery %s to %s is dead after %s attempts: %s",
                            c.id, policy.shown_url(c.url), c.attempt, error)
            else:
                wait = policy.backoff(c.attempt, settings.backoff_base, settings.backoff_cap,
                                      rng)
                db.finish(s, c.id, c.attempt, last_status=status, last_error=error,
                          next_attempt_at=now + timedelta(seconds=wait))
                result.retrying += 1


def deliver_due(engine: Engine, settings: policy.WorkerSettings | None = None,
                stop: threading.Event | None = None) -> DeliverResult:
    """Send every delivery due now (claiming batches until none is left), concurrently
    within a batch; returns what happened."""
    settings = settings or policy.WorkerSettings.from_env()
    result = DeliverResult()
    with ThreadPoolExecutor(max_workers=settings.batch,
                            thread_name_prefix="chainml-hook-send") as pool:
        while stop is None or not stop.is_set():
            claimed = claim(engine, settings)
            if not claimed:
                break
            sent = list(pool.map(lambda c: send(c, settings.timeout), claimed))
            record(engine, list(zip(claimed, sent, strict=True)), settings, result)
    return result


def run(engine: Engine, settings: policy.WorkerSettings | None = None,
        stop: threading.Event | None = None) -> None:
    """Deliver forever (until ``stop`` is set): a pass every ``settings.interval`` seconds.
    A pass that fails (the registry unreachable for a while) is logged and retried."""
    settings = settings or policy.WorkerSettings.from_env()
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            deliver_due(engine, settings, stop)
        except Exception as e:  # keep the server's worker alive through an outage
            log.warning("chainml hook worker: %s: %s", type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "")
        stop.wait(settings.interval)


class Worker:
    """The worker as a daemon thread (``chainml serve`` starts one per process)."""

    def __init__(self, engine: Engine, settings: policy.WorkerSettings | None = None) -> None:
        self.settings = settings or policy.WorkerSettings.from_env()
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=run, args=(engine, self.settings,
                                                         self.stop_event),
                                       name="chainml-hooks", daemon=True)

    def start(self) -> Worker:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(self.settings.timeout + 5)
