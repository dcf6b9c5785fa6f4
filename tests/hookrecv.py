"""A real webhook receiver for tests: http.server in a thread, recording every request
and failing some of them on purpose."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def data(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers with 500 when ``fail(n)`` (n: the request's number from 1), else 204."""

    fail: Callable[[int], bool] = lambda n: False
    delay: float = 0.0  # seconds before each answer
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Receiver:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(owner.delay)
                with owner.lock:
                    n = len(owner.requests) + 1
                    status = 500 if owner.fail(n) else 204
                    owner.requests.append(Received(
                        {k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.status < 300]

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
