"""The load generator of the server operations: ``python -m bench.load SPEC OUT``.

It runs in a process of its own (not in the benchmark's, which holds a 100,000-node
graph whose garbage collection would pause the client), on one asyncio loop, and writes
what every request got to ``OUT`` (JSON).

The client is a minimal HTTP/1.1 one over asyncio streams (keep-alive connections
reused, ``Content-Length`` or chunked bodies), not ``Client``: on this
2-core machine the client shares the cores with the server, and httpx spent ~10 ms of
CPU per request with hundreds of connections open (its pool), more than the server
itself, so the figures would have measured the client. This one costs well under 1 ms
a request (``client_cpu_s`` in the results says how much).

Three ways to send (``SPEC["mode"]``):

* ``open``: a constant arrival rate. Request ``i`` is due at ``start + i / rate`` and is
  sent then whatever the earlier ones are doing (no limit on requests in flight), and its
  latency is counted **from the time it was due**, not from when it was sent. A server
  (or a client) that falls behind therefore shows it in the latencies: no coordinated
  omission, where a closed loop would quietly send less and report only the fast ones.
* ``closed``: ``concurrency`` clients, each sending its next request as soon as the
  previous one is answered, for ``seconds``: the throughput at saturation.
* ``sequential``: one request after the other (a cold page, the gate).

Each request is ``[method, path, body or null]``; they are used in order, cycling.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

Record = list[Any]  # [due offset s, latency s, status (0: no answer), bytes, error or None]
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
# uvicorn closes a keep-alive connection idle for 5 s (timeout_keep_alive); one idle
# longer than this is closed here instead of being reused into that race, which
# surfaced as a request failing with IncompleteReadError after a lull.
IDLE_MAX_S = 4.0


class Client:
    """Keep-alive HTTP/1.1 to one host: an idle connection is reused, else one is opened
    (no limit: an open loop must not queue in the client)."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.timeout = timeout
        self.idle: list[tuple[float, Conn]] = []  # (idle since, connection), newest last
        self.opened = 0

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        async with asyncio.timeout(self.timeout):
            return await self._request(method, path, body)

    async def _request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        now = time.monotonic()
        while self.idle and now - self.idle[0][0] > IDLE_MAX_S:
            self.idle.pop(0)[1][1].close()
        if self.idle:
            reader, writer = self.idle.pop()[1]
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.opened += 1
        try:
            data = b"" if body is None else json.dumps(body).encode()
            head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"{self.extra}")
            if body is not None:
                head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
            writer.write(head.encode() + b"\r\n" + data)
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                if line:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
            if "content-length" in headers:
                content = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    parts.append(await reader.readexactly(size + 2))
                    if size == 0:
                        break
                content = b"".join(p[:-2] for p in parts)
            else:
                content = await reader.read()
                headers["connection"] = "close"
        except BaseException:
            writer.close()
            raise
        if headers.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle.append((time.monotonic(), (reader, writer)))
        return status, content

    async def close(self) -> None:
        for _, (_, writer) in self.idle:
            writer.close()
        self.idle.clear()


async def _send(client: Client, req: list[Any]) -> tuple[int, int, str | None]:
    method, path, body = req
    try:
        status, content = await client.request(method, path, body)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError,
            TimeoutError) as e:
        return 0, 0, f"{type(e).__name__}: {e}"[:300]
    err = None if status < 400 else content[:300].decode(errors="replace")
    return status, len(content), err


async def open_loop(client: Client, reqs: list[list[Any]], rate: float,
                    seconds: float) -> list[Record]:
    count = max(1, round(rate * seconds))
    records: list[Record] = [[] for _ in range(count)]
    start = time.perf_counter()

    async def one(i: int, due: float) -> None:
        status, size, err = await _send(client, reqs[i % len(reqs)])
        records[i] = [round(due - start, 6), time.perf_counter() - due, status, size, err]

    tasks = []
    for i in range(count):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    return records


async def closed_loop(client: Client, reqs: list[list[Any]], concurrency: int,
                      seconds: float) -> list[Record]:
    records: list[Record] = []
    start = time.perf_counter()
    stop = start + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        while time.perf_counter() < stop:
            i = next(counter)
            sent = time.perf_counter()
            status, size, err = await _send(client, reqs[i % len(reqs)])
            records.append([round(sent - start, 6), time.perf_counter() - sent, status, size,
                            err])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records


async def sequential(client: Client, reqs: list[list[Any]]) -> list[Record]:
    records: list[Record] = []
    start = time.perf_counter()
    for req in reqs:
        sent = time.perf_counter()
        status, size, err = await _send(client, req)
        records.append([round(sent - start, 6), time.perf_counter() - sent, status, size, err])
    return records


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    client = Client(spec["base_url"], spec.get("headers") or {}, spec.get("timeout", 120.0))
    try:
        reqs = spec["requests"]
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.perf_counter()
        if spec["mode"] == "open":
            records = await open_loop(client, reqs, spec["rate"], spec["seconds"])
        elif spec["mode"] == "closed":
            records = await closed_loop(client, reqs, spec["concurrency"], spec["seconds"])
        elif spec["mode"] == "sequential":
            records = await sequential(client, reqs)
        else:
            raise ValueError(f"unknown mode {spec['mode']!r}")
        wall = time.perf_counter() - wall
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        await client.close()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"records": records, "wall_s": wall, "client_cpu_s": cpu,
            "connections": client.opened}


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    out = asyncio.run(run(spec))
    Path(argv[1]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
