"""A real server for tests: ``chainml serve`` as a process (started on a free port, waited
for, stopped with its log returned), or the ASGI app on uvicorn in a thread."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHAINML = str(Path(sys.executable).with_name("chainml"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    """GET ``url``: (status, body), an HTTP error's status included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def serving(url: str, *extra: str) -> subprocess.Popen[bytes]:
    """``chainml serve`` on ``url``, answering /healthz; ``proc.base`` is its address."""
    port = free_port()
    env = {**os.environ, "CHAINML_DATABASE_URL": url}
    proc = subprocess.Popen([CHAINML, "serve", "--port", str(port), *extra], env=env,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if get(base + "/healthz")[0] == 200:
                proc.base = base  # type: ignore[attr-defined]
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"chainml serve did not answer: {proc.stderr.read().decode()}")


def stop(proc: subprocess.Popen[bytes]) -> str:
    """Stop the server; its log (standard error)."""
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    return err.decode()


@contextmanager
def in_thread(app: Any) -> Iterator[str]:
    """An ASGI app on a live uvicorn in a thread of this process; yields its address."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def held(monkeypatch: Any, compute: str = "gates_now") -> threading.Event:
    """Make a kept page's computation (``pages.gates_now``, ``pages.envs_now``) wait for
    the returned event (set at first), and its pages wait 0.2 s for it: the seconds it
    takes on a 100,000-node registry, on demand. Apps created afterwards use it."""
    from chainml.server import pages

    go = threading.Event()
    go.set()
    real = getattr(pages, compute)

    def waiting(reg: Any) -> Any:
        assert go.wait(20), "the held computation was never released"
        return real(reg)

    monkeypatch.setattr(pages, compute, waiting)
    monkeypatch.setattr(pages, "KEPT_WAIT", 0.2)
    return go
