"""Nothing is lost when the server dies: ``chainml serve`` (with its webhook worker) is
killed with SIGKILL while it writes changes and sends their notifications, then
restarted; every notification committed with a change reaches the receiver at least
once (SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chainml.hooks import signing
from chainml.registry import Registry
from tests.chains import build_feature_chain
from tests.hookrecv import Receiver
from tests.serving import free_port

CHAINML = str(Path(sys.executable).with_name("chainml"))
SECRET_ENV = "CHAINML_TEST_HOOK_SECRET"
EVENTS = ["mark.opened", "mark.closed", "run.recorded", "check.changed"]


def _serve(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "CHAINML_DATABASE_URL": url, SECRET_ENV: "crash-secret",
           "CHAINML_HOOK_TIMEOUT": "1", "CHAINML_HOOK_BACKOFF_BASE": "0.05",
           "CHAINML_HOOK_BACKOFF_CAP": "0.5", "CHAINML_HOOK_INTERVAL": "0.1"}
    proc = subprocess.Popen([CHAINML, "serve", "--port", str(port)], env=env,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5):
                return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"chainml serve did not answer: {proc.stderr.read().decode()}")


def _post(base: str, path: str, body: dict[str, object], token: str) -> None:
    request = urllib.request.Request(base + path, method="POST", data=json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status in (200, 201)


def _changes(base: str, token: str, start: int, count: int) -> None:
    """A new version of the source (marks open, the gate fails), then the retests (marks
    close, the gate passes): four or more notifications each."""
    for i in range(start, start + count):
        _post(base, "/api/v1/nodes", {"kind": "source", "name": "raw", "version": f"r{i}"},
              token)
        _post(base, "/api/v1/runs", {"node": "M", "passed": True}, token)
        _post(base, "/api/v1/runs", {"node": "P", "passed": True}, token)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_sigkill_mid_stream_loses_no_notification(database_url: str) -> None:
    # A slow receiver at first: the kill finds deliveries in flight and others queued.
    with Receiver(fail=lambda n: n % 3 == 0, delay=0.3) as receiver:
        os.environ[SECRET_ENV] = "crash-secret"
        try:
            reg = Registry.init(url=database_url)
            build_feature_chain(reg)
            reg.hook_add(receiver.url, events=EVENTS, secret_env=SECRET_ENV)
            token = reg.token_create("ci", scope="write").token
        finally:
            del os.environ[SECRET_ENV]
        proc, base = _serve(database_url)
        try:
            _changes(base, token, 0, 4)
            for _ in range(500):  # kill it while it is sending
                if receiver.requests:
                    break
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            assert proc.returncode == -signal.SIGKILL
            pending = [d for d in reg.hook_deliveries(limit=None) if d.state == "pending"]
            assert pending, "the kill came too late to interrupt anything"
            receiver.delay = 0.01
            proc, base = _serve(database_url)
            _changes(base, token, 4, 3)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                states = {d.state for d in reg.hook_deliveries(limit=None)}
                if states == {"delivered"}:
                    break
                time.sleep(0.2)
        finally:
            proc.kill()
            proc.wait(30)
        deliveries = reg.hook_deliveries(limit=None)
        with reg.engine.connect() as conn:
            committed = {u for (u,) in conn.exec_driver_sql("SELECT uuid FROM notification")}
        reg.close()
        got = receiver.delivered()
    assert {d.state for d in deliveries} == {"delivered"}, [
        (d.id, d.state, d.attempts, d.last_error) for d in deliveries]
    assert len(committed) >= 7 * 4
    received = {r.headers["x-chainml-delivery"] for r in got}
    assert received == committed  # every one at least once, and nothing else
    assert all(signing.verify("crash-secret", r.headers["x-chainml-signature"], r.body)
               for r in got)
    assert len(got) >= len(committed)  # repeats are allowed (at least once), de-duplicable
