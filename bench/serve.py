"""The server under load: ``chainml serve`` on the benchmark's registry, with the load
generator of ``bench/load.py`` (a process of its own) on the same machine.

The server is started once per size and backend, after everything else was measured
(``serve-runs`` writes thousands of test runs, which would change what the other
operations see): ``chainml serve --workers 2`` on PostgreSQL, one worker on SQLite
(the server refuses more: an embedded file is served by one process). Each operation:

* ``serve-node-page``, ``serve-node-api``: ``/nodes/{name}`` and ``/api/v1/nodes/{name}``
  at a constant arrival rate (open loop: latencies counted from when each request was
  due), names drawn at random from the chain; p50/p95/p99.
* ``serve-lineage``: ``/lineage/{name}?depth=2`` for distinct nodes, one after the other,
  so the per-process drawing cache never hits; p95.
* ``serve-gate``: ``/`` (the gate of the registry and of each environment): once per
  worker right after start, then cached, then right after each of a few writes (a
  test run posted); the slowest of those is held to the target. Each worker keeps the
  gate current in a thread of its own and a page waits for it up to a bound, else
  shows the previous one saying so: how long after a write the page shows it (the
  gate's freshness) is reported too.
* ``serve-saturation``: ``concurrency`` clients in a closed loop on
  ``/api/v1/nodes/{name}``: requests per second, and their latencies.
* ``serve-runs``: ``POST /api/v1/runs`` with a write token at a constant rate (each a
  unique ``link``); 0 errors, then every run must be in the registry exactly once, as
  a ``test_run`` row and as a ``test.recorded`` event.

Floors: the same HTTP stack answering ``/healthz`` under the same load (what uvicorn,
Starlette and the client cost by themselves), and the SQL each page needs at least.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench import floors
from bench.generate import NEEDS_TESTS, Chain

SERVE_OPERATIONS = ("serve-node-page", "serve-node-api", "serve-lineage", "serve-gate",
                    "serve-saturation", "serve-runs")
# op -> (the statistic the target is about, its bound, where it comes from)
SERVE_TARGETS: dict[str, tuple[str, float, str]] = {
    "serve-node-page": ("p99", 0.05, "issue"),
    "serve-node-api": ("p99", 0.05, "issue"),
    "serve-lineage": ("p95", 0.3, "issue"),
    "serve-gate": ("median", 1.5, "issue"),
}
ROOT = Path(__file__).resolve().parent.parent
CHAINML = str(Path(sys.executable).with_name("chainml"))
PEAK_MIB_TARGET = 1024.0
# The client gives up on a request after this long (it counts as an error).
READ_TIMEOUT = 60.0
WRITE_TIMEOUT = 900.0
# After a phase, the server may take this long to finish what the client gave up on;
# beyond it, it is restarted.
DRAIN_LIMIT = 60.0
# Node pages asked one after the other on the idle server, before the open loop.
UNLOADED = 30


@dataclass
class ServeConfig:
    """The load (issue 15). ``python -m bench --serve-seconds S`` shortens every phase."""

    rate: float = 200.0  # node reads per second (open loop)
    read_seconds: float = 30.0
    write_rate: float = 50.0  # POST /api/v1/runs per second (open loop)
    write_seconds: float = 60.0
    ingest_rate: float = 300.0  # OpenLineage COMPLETE events per second, 4 producers
    # POST /api/v1/runs per second while a hook listens: under what the 100,000-node
    # PostgreSQL registry records (~13 a second), so that the lag measures the outbox
    # and the worker, not a queue of runs waiting for the write lock (serve-runs does).
    hook_rate: float = 10.0
    lineage_requests: int = 40  # distinct nodes, one after the other
    concurrency: int = 64  # closed-loop clients at saturation
    saturation_seconds: float = 20.0
    floor_seconds: float = 10.0  # /healthz under the same load, for the HTTP floor
    workers: int = 2  # on PostgreSQL; SQLite is served by one
    seed: int = 15

    @classmethod
    def short(cls, seconds: float) -> ServeConfig:
        return cls(read_seconds=seconds, write_seconds=seconds, saturation_seconds=seconds,
                   floor_seconds=seconds,
                   lineage_requests=max(5, min(40, round(40 * seconds / 30))))


class ServerError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """``chainml serve`` in a process group of its own, on a free loopback port."""

    def __init__(self, cwd: Path, env: dict[str, str], workers: int, log: Path) -> None:
        self.cwd, self.env, self.workers, self.log_path = cwd, env, workers, log
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.peak_before = 0.0  # of the processes of an earlier start (restart)

    def start(self, timeout: float = 120.0) -> None:
        import httpx

        cmd = [CHAINML, "serve", "--port", str(self.port), "--workers", str(self.workers)]
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=self.cwd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError(f"chainml serve exited {self.proc.returncode}: "
                                  f"{self.log_path.read_text(errors='replace')[-1500:]}")
            try:
                ok = httpx.get(self.base_url + "/readyz", timeout=5).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok and len(self.pids()) >= self.workers:
                return
            time.sleep(0.2)
        raise ServerError(f"chainml serve was not ready after {timeout:.0f} s")

    def pids(self) -> list[int]:
        """The processes that answer: uvicorn's workers, or the one process."""
        if self.proc is None:
            return []
        if self.workers == 1:
            return [self.proc.pid]
        return [p for p in _proc_children(self.proc.pid) if b"spawn_main" in _cmdline(p)]

    def drain(self, limit: float) -> bool:
        """Wait until the workers are idle (under 10% of a core for half a second): an
        overloaded phase leaves requests the client gave up on still queued in the
        server, which would slow the next phase down. False if still busy after
        ``limit`` seconds."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            before = self.cpu_s()
            time.sleep(0.5)
            if self.cpu_s() - before < 0.05:
                return True
        return False

    def restart(self) -> None:
        self.stop()
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.start()

    def peak_mib(self) -> float:
        """The largest peak resident memory (VmHWM) of the answering processes so far."""
        now = max((_status_kib(p, "VmHWM") for p in self.pids()), default=0) / 1024
        return round(max(now, self.peak_before), 1)

    def cpu_s(self) -> float:
        return sum(_cpu_s(p) for p in self.pids())

    def stop(self) -> None:
        if self.proc is None:
            return
        self.peak_before = self.peak_mib()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # this group is the one we started
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        self.proc = None


# ---- the load, and what it measured --------------------------------------------------------------

def load(spec: dict[str, Any], files: Path, name: str, timeout: float = 3600.0
         ) -> dict[str, Any]:
    """Run ``bench.load`` in its own process with ``spec``; its records."""
    spec_file, out_file = files / f"{name}.spec.json", files / f"{name}.load.json"
    spec_file.write_text(json.dumps(spec))
    done = subprocess.run([sys.executable, "-m", "bench.load", str(spec_file), str(out_file)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise ServerError(f"the load generator failed: {done.stderr[-1500:]}")
    got: dict[str, Any] = json.loads(out_file.read_text())
    out_file.unlink()
    return got


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary(got: dict[str, Any], ok: Callable[[int], bool] = lambda s: s == 200
            ) -> dict[str, Any]:
    records = got["records"]
    lat = [r[1] for r in records]
    errors = [r for r in records if not ok(r[2])]
    return {
        "requests": len(records), "errors": len(errors),
        "error_samples": sorted({str(r[4] or r[2]) for r in errors})[:5],
        "p50_s": round(percentile(lat, 0.50), 5), "p95_s": round(percentile(lat, 0.95), 5),
        "p99_s": round(percentile(lat, 0.99), 5), "max_s": round(max(lat), 5),
        "mean_s": round(sum(lat) / len(lat), 5),
        "wall_s": round(got["wall_s"], 3),
        "achieved_per_s": round(len(records) / got["wall_s"], 1) if got["wall_s"] else None,
        "client_cpu_s": round(got["client_cpu_s"], 2),
        "bytes_mean": round(sum(r[3] for r in records) / len(records)),
        "connections": got.get("connections"),
    }


WINDOW_S = 5.0  # an open loop's latencies are also given per window of its phase


def p99_by_window(records: Sequence[Sequence[Any]], window: float = WINDOW_S) -> list[float]:
    """p99 of the requests due in each ``window`` seconds of an open loop, in order: a
    new server's first seconds and its steady state, which one p99 over the phase mixes."""
    by: dict[int, list[float]] = {}
    for r in records:
        by.setdefault(int(r[0] // window), []).append(r[1])
    return [round(percentile(by[k], 0.99), 5) for k in sorted(by)]


def _ms(x: float) -> str:
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


# ---- the operations -----------------------------------------------------------------------------

def _path(name: str) -> str:
    return quote(name, safe="")


def _token(cwd: Path, env: dict[str, str], name: str, files: Path) -> str:
    from bench.run import run_once

    target = files / "serve-token.txt"
    run_once([CHAINML, "token", "create", name, "--scope", "write", "--expires", "1d"],
             cwd=cwd, env=env, stdout=target)
    token = target.read_text().strip().splitlines()[-1].strip()
    target.unlink()
    return token


def operations(backend: Any, chain: Chain, db: floors.Sql, ids: dict[str, int], runs: int,
               files: Path, out: Any, want: Callable[[str], bool],
               step: Callable[[str], AbstractContextManager[None]],
               config: ServeConfig | None = None) -> None:
    """Start the server, measure the wanted serve operations, stop it."""
    from bench.run import log, time_call

    cfg = config or ServeConfig()
    size, bname = backend.size, backend.name
    workers = cfg.workers if bname != "sqlite" else 1
    rng = random.Random(cfg.seed)
    names = chain.names()
    testable = [n.name for n in chain.nodes if NEEDS_TESTS[n.kind]]
    server = Server(backend.cwd, backend.env(), workers, files / "serve.log")
    log(f"  starting chainml serve --workers {workers} on {bname}"
        + (" (SQLite: one process)" if bname == "sqlite" else ""))
    server.start()
    common = {"workers": workers, "server_processes": len(server.pids()),
              "envs": len(db.rows("SELECT id FROM environment"))}
    db.rollback()

    def row(op: str, s: dict[str, Any], floors_: list[dict[str, Any]], figure: str,
            cpu: float, **detail: Any) -> None:
        from bench.run import Timing, result_row

        stat, bound, source = SERVE_TARGETS.get(op, ("", None, ""))
        value = {"p99": s.get("p99_s"), "p95": s.get("p95_s"),
                 "median": s.get("p50_s")}.get(stat)
        peak = server.peak_mib()
        r = result_row(op, size, bname, Timing([s["p50_s"]]), floors_)
        met: bool | None = None
        if op == "serve-runs":
            met = s["errors"] == 0 and bool(detail.get("exactly_once"))
        elif bound is not None and value is not None:
            met = max(value, detail.get("slowest_s", 0.0)) <= bound and s["errors"] == 0
        if met is not None:
            met = met and peak <= PEAK_MIB_TARGET
        r.update({"runs": s["requests"], "median_s": s["p50_s"], "times_s": [],
                  "peak_mib": peak, "target_s": bound, "target_stat": stat or None,
                  "target_source": source, "met": met, "figure": figure,
                  "latency": {k: s[k] for k in ("p50_s", "p95_s", "p99_s", "max_s", "mean_s")},
                  "detail": {**common, **s, **detail, "after": dict(settled),
                             "server_cpu_s": round(cpu, 2),
                             # over the phase, per request answered (an overloaded
                             # server also spends CPU on those the client gave up on)
                             "server_cpu_ms_per_request": round(
                                 1000 * cpu / max(1, s["requests"] - s["errors"]), 2)}})
        if op == "serve-runs":
            r["target_text"] = "0 errors, each run once"
        elif bound is not None:
            r["target_text"] = f"{stat} ≤ {bound:g} s"
        out.results.append(r)
        fl = ", ".join(f"{f['name']} {_ms(f['seconds'])} (x{f['ratio']})" for f in floors_)
        log(f"  {op:<16} {figure}; {s['requests']} requests, {s['errors']} errors, server "
            f"{r['detail']['server_cpu_ms_per_request']:.1f} ms CPU a request answered, peak "
            f"{peak} MiB  ({fl})")

    def floor(name: str, seconds: float, chainml_s: float, **extra: Any) -> dict[str, Any]:
        return {"name": name, "seconds": round(seconds, 6),
                "ratio": round(chainml_s / seconds, 1) if seconds > 0 else None, **extra}

    settled: dict[str, Any] = {}

    def warm_up() -> None:
        # every worker imports, connects and renders once or more
        sample = [["GET", f"/nodes/{_path(n)}", None] for n in rng.choices(names, k=20)]
        sample += [["GET", f"/api/v1/nodes/{_path(n)}", None] for n in rng.choices(names, k=20)]
        load({"base_url": server.base_url, "mode": "open", "rate": 20, "seconds": 2,
              "requests": sample, "timeout": READ_TIMEOUT}, files, "serve-warmup")
        server.drain(DRAIN_LIMIT)

    def measured(name: str, spec: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """One load phase; then the server is left to finish what the client gave up on
        (or restarted, when that takes over DRAIN_LIMIT), so the next phase starts on an
        idle server."""
        before = server.cpu_s()
        got = load({"base_url": server.base_url, "timeout": READ_TIMEOUT, **spec}, files,
                   name)
        cpu = server.cpu_s() - before
        start = time.monotonic()
        drained = server.drain(DRAIN_LIMIT)
        settled.clear()
        settled.update(drain_s=round(time.monotonic() - start, 1), restarted=not drained)
        if not drained:
            log(f"  the server was still busy {DRAIN_LIMIT:.0f} s after {name}: restarting it")
            server.restart()
            warm_up()
        return got, cpu

    def healthz_open(seconds: float) -> dict[str, Any]:
        got, _ = measured("serve-healthz", {"mode": "open", "rate": cfg.rate,
                                            "seconds": seconds,
                                            "requests": [["GET", "/healthz", None]]})
        return summary(got)

    try:
        warm_up()

        http_floor: dict[str, Any] | None = None
        node_floor_s: float | None = None
        picked = rng.sample(names, min(len(names), 50))
        for op, prefix in (("serve-node-page", "/nodes/"), ("serve-node-api", "/api/v1/nodes/")):
            if not want(op):
                continue
            with step(op):
                if http_floor is None:  # on the idle server, before the node pages
                    http_floor = healthz_open(min(cfg.floor_seconds, cfg.read_seconds))
                # What one request costs on the idle server (one after the other): the
                # service time that bounds the rate it can sustain.
                alone, alone_cpu = measured(op + "-alone", {"mode": "sequential", "requests": [
                    ["GET", prefix + _path(n), None] for n in rng.choices(names, k=UNLOADED)]})
                u = summary(alone)
                count = max(1, round(cfg.rate * cfg.read_seconds))
                reqs = [["GET", prefix + _path(n), None] for n in rng.choices(names, k=count)]
                got, cpu = measured(op, {"mode": "open", "rate": cfg.rate,
                                         "seconds": cfg.read_seconds, "requests": reqs})
                s = summary(got)
                windows = p99_by_window(got["records"])
                if node_floor_s is None:
                    node_floor_s = time_call(floors.sql_node(db, picked), 50).median
                fl = [floor(f"GET /healthz at {cfg.rate:g}/s, p99", http_floor["p99_s"],
                            s["p99_s"]),
                      floor("SQL of a node (row, versions, edges, runs, marks, events)",
                            node_floor_s, s["p50_s"])]
                row(op, s, fl, f"p50 {_ms(s['p50_s'])} · p95 {_ms(s['p95_s'])} · "
                    f"p99 {_ms(s['p99_s'])} at {cfg.rate:g}/s (p99 by {WINDOW_S:g} s: "
                    f"{', '.join(f'{w * 1000:.0f}' for w in windows)} ms; alone: p50 "
                    f"{_ms(u['p50_s'])})",
                    cpu, rate=cfg.rate, seconds=cfg.read_seconds, p99_by_window_s=windows,
                    alone={"requests": u["requests"], "errors": u["errors"],
                           "p50_s": u["p50_s"], "p95_s": u["p95_s"], "max_s": u["max_s"],
                           "server_cpu_ms_per_request": round(
                               1000 * alone_cpu / max(1, u["requests"]), 2)})

        if want("serve-lineage"):
            with step("serve-lineage"):
                distinct = rng.sample(names, min(len(names), cfg.lineage_requests + 2))
                warm, cold = distinct[:2], distinct[2:]
                load({"base_url": server.base_url, "mode": "sequential", "requests": [
                    ["GET", f"/lineage/{_path(n)}?depth=2", None] for n in warm]},
                    files, "serve-lineage-warmup")
                got, cpu = measured("serve-lineage", {"mode": "sequential", "requests": [
                    ["GET", f"/lineage/{_path(n)}?depth=2", None] for n in cold]})
                s = summary(got)
                fl_t = time_call(floors.cycling(lambda i: floors.cte_neighbourhood(db, i, 2),
                                                [ids[n] for n in cold]), len(cold))
                row("serve-lineage", s,
                    [floor("2 depth-2 CTEs + rows", fl_t.median, s["p50_s"])],
                    f"p50 {_ms(s['p50_s'])} · p95 {_ms(s['p95_s'])} · max {_ms(s['max_s'])}, "
                    f"{len(cold)} distinct nodes", cpu, distinct_nodes=len(cold))

        if want("serve-gate"):
            with step("serve-gate"):
                gate_op(backend, db, testable, rng, files, cfg, server, workers, runs,
                        measured, floor, row)

        if want("serve-saturation"):
            with step("serve-saturation"):
                hz, _ = measured("serve-saturation-healthz", {
                    "mode": "closed", "concurrency": cfg.concurrency,
                    "seconds": min(cfg.floor_seconds, cfg.saturation_seconds),
                    "requests": [["GET", "/healthz", None]]})
                h = summary(hz)
                reqs = [["GET", f"/api/v1/nodes/{_path(n)}", None]
                        for n in rng.choices(names, k=5000)]
                got, cpu = measured("serve-saturation", {
                    "mode": "closed", "concurrency": cfg.concurrency,
                    "seconds": cfg.saturation_seconds, "requests": reqs})
                s = summary(got)
                rps, hrps = s["achieved_per_s"] or 0.0, h["achieved_per_s"] or 0.0
                # As time per request (1 / throughput), so the ratio reads like the others.
                fl = [floor(f"GET /healthz, {cfg.concurrency} clients: {hrps:.0f}/s",
                            1 / hrps if hrps else 0.0, 1 / rps if rps else 0.0,
                            requests_per_s=hrps)]
                row("serve-saturation", s, fl,
                    f"{rps:.0f} requests/s; p50 {_ms(s['p50_s'])} · p99 {_ms(s['p99_s'])} "
                    f"({cfg.concurrency} clients)", cpu, concurrency=cfg.concurrency,
                    requests_per_s=rps, client_cpu_share=round(
                        s["client_cpu_s"] / s["wall_s"], 2) if s["wall_s"] else None)

        if want("serve-runs"):
            with step("serve-runs"):
                _runs(backend, db, ids, testable, rng, files, out, cfg, server, measured,
                      floor, row)

        if want("serve-ingest"):  # bench/ingest.py
            from bench.ingest import ingest

            with step("serve-ingest"):
                ingest(backend, db, files, out, cfg, server, measured, floor, row)

        if want("serve-ingest-marked"):
            from bench.ingest import ingest

            with step("serve-ingest-marked"):
                ingest(backend, db, files, out, cfg, server, measured, floor, row,
                       marked=True)

        if want("serve-hook-lag"):
            from bench.ingest import hook_lag

            with step("serve-hook-lag"):
                hook_lag(backend, db, testable, rng, files, out, cfg, server, measured, floor,
                         row)
    finally:
        server.stop()


GATE_WRITES = 3  # writes after which the gate page is timed


def _generation_shown(page: str) -> int:
    """The registry generation a gate page says it shows (its ``data-generation``)."""
    marker = 'data-generation="'
    at = page.find(marker)
    if at < 0:
        raise ServerError("the gate page does not say which generation it shows")
    return int(page[at + len(marker):page.index('"', at + len(marker))])


def gate_op(backend: Any, db: floors.Sql, testable: Sequence[str], rng: random.Random,
            files: Path, cfg: ServeConfig, server: Server, workers: int, runs: int,
            measured: Callable[..., tuple[dict[str, Any], float]],
            floor: Callable[..., dict[str, Any]], row: Callable[..., None]) -> None:
    """``/`` on a started server (one request per worker at most), cached, and right after
    each of ``GATE_WRITES`` writes; then how long each write took to show on the page."""
    import httpx

    from bench.run import time_call

    cold = summary(load({"base_url": server.base_url, "mode": "sequential",
                         "requests": [["GET", "/", None]] * workers},
                        files, "serve-gate-cold"))
    got, cpu = measured("serve-gate", {"mode": "sequential",
                                       "requests": [["GET", "/", None]] * runs})
    s = summary(got)
    actor = f"bench-gate-{os.getpid()}-{int(time.time())}"
    token = _token(backend.cwd, backend.env(), actor, files)
    after: list[float] = []  # the first page after each write
    shown: list[float] = []  # from the write's answer until a page shows it
    stale: list[bool] = []
    with httpx.Client(base_url=server.base_url, timeout=READ_TIMEOUT) as client:
        for i in range(GATE_WRITES):
            answer = client.post("/api/v1/runs", headers={"Authorization": f"Bearer {token}"},
                                 json={"node": rng.choice(list(testable)), "passed": True,
                                       "link": f"https://bench.invalid/{actor}/{i}"})
            written = time.monotonic()
            if answer.status_code != 201:
                raise ServerError(f"the write before the gate failed: {answer.text[:300]}")
            (generation,), = db.rows("SELECT MAX(id) FROM event")
            db.rollback()
            while True:
                start = time.monotonic()
                page = client.get("/")
                if page.status_code != 200:
                    raise ServerError(f"the gate page failed: {page.text[:300]}")
                if len(after) == i:
                    after.append(time.monotonic() - start)
                    stale.append(_generation_shown(page.text) < generation)
                if _generation_shown(page.text) >= generation:
                    shown.append(time.monotonic() - written)
                    break
                if time.monotonic() - written > READ_TIMEOUT:
                    raise ServerError("the gate page never showed the write")
                time.sleep(0.1)
            server.drain(DRAIN_LIMIT)  # both workers done computing before the next write
    fl_t = time_call(floors.sql_status(db), runs)
    slowest = max(cold["max_s"], *after)
    row("serve-gate", s, [floor("SELECT testable nodes + open marks", fl_t.median, s["p50_s"])],
        f"median {_ms(s['p50_s'])} of {s['requests']} (cached); on a started server "
        f"{_ms(cold['max_s'])}; right after a write {', '.join(_ms(x) for x in after)} "
        f"({sum(stale)} of {len(stale)} showing the gate before it); the write shown after "
        f"{', '.join(_ms(x) for x in shown)}", cpu, slowest_s=round(slowest, 5),
        started_s=cold["max_s"], after_write_s=[round(x, 5) for x in after],
        after_write_older=stale, write_shown_s=[round(x, 5) for x in shown])


def _runs(backend: Any, db: floors.Sql, ids: dict[str, int], testable: Sequence[str],
          rng: random.Random, files: Path, out: Any, cfg: ServeConfig, server: Server,
          measured: Callable[..., tuple[dict[str, Any], float]],
          floor: Callable[..., dict[str, Any]], row: Callable[..., None]) -> None:
    """POST /api/v1/runs at ``write_rate`` for ``write_seconds``; then the registry must
    hold every one exactly once (a test_run row and a test.recorded event per link)."""
    from bench.run import time_call

    size, bname = backend.size, backend.name
    actor = f"bench-serve-{os.getpid()}-{int(time.time())}"
    token = _token(backend.cwd, backend.env(), actor, files)
    count = max(1, round(cfg.write_rate * cfg.write_seconds))
    prefix = f"https://bench.invalid/{actor}/"
    chosen = rng.choices(list(testable), k=count)
    reqs = [["POST", "/api/v1/runs", {"node": n, "passed": True, "link": f"{prefix}{i}",
                                      "note": f"{actor} request {i}"}]
            for i, n in enumerate(chosen)]
    # The client waits for every answer (WRITE_TIMEOUT): writes queue on the registry's
    # write lock, and a run the client gave up on would still be recorded afterwards.
    got, cpu = measured("serve-runs", {"mode": "open", "rate": cfg.write_rate,
                                       "seconds": cfg.write_seconds, "requests": reqs,
                                       "timeout": WRITE_TIMEOUT,
                                       "headers": {"Authorization": f"Bearer {token}"}})
    s = summary(got, ok=lambda st: st == 201)
    answered = {i for i, r in enumerate(got["records"]) if r[2] == 201}

    runs_by_link = Counter(link for (link,) in db.rows(
        "SELECT link FROM test_run WHERE link LIKE ?", (prefix + "%",)))
    event_links: Counter[str] = Counter()
    for (details,) in db.rows("SELECT details FROM event WHERE action = 'test.recorded' "
                              "AND actor = ?", (actor,)):
        d = json.loads(details) if isinstance(details, str) else details
        event_links[str(d.get("link"))] += 1
    db.rollback()
    expected = {f"{prefix}{i}" for i in range(count)}
    once_runs = {k for k, v in runs_by_link.items() if v == 1}
    once_events = {k for k, v in event_links.items() if v == 1}
    exactly_once = (once_runs == expected and set(runs_by_link) == expected
                    and once_events == expected and set(event_links) == expected)
    for what, got_n, ok in (
            ("serve-runs: every POST answered 201", len(answered), len(answered) == count),
            ("serve-runs: every run recorded exactly once (test_run by link)",
             len(once_runs), once_runs == expected and set(runs_by_link) == expected),
            ("serve-runs: every run's event recorded exactly once (by link)",
             len(once_events), once_events == expected and set(event_links) == expected)):
        out.checks.append({"size": size, "backend": bname, "what": what, "chainml": got_n,
                           "networkx": count, "equal": ok})
    lineage = sorted({ids[n] for n in chosen})[:50]
    fl_t = time_call(floors.cycling(lambda i: floors.cte_lineage(db, i), lineage), 50)
    row("serve-runs", s, [floor("lineage CTE of the tested node", fl_t.median, s["p50_s"])],
        f"p50 {_ms(s['p50_s'])} · p95 {_ms(s['p95_s'])} · p99 {_ms(s['p99_s'])} at "
        f"{cfg.write_rate:g}/s for {cfg.write_seconds:g} s, {s['errors']} errors, "
        f"{'each recorded once' if exactly_once else 'NOT each recorded once'}", cpu,
        rate=cfg.write_rate, seconds=cfg.write_seconds, exactly_once=exactly_once,
        test_runs_recorded=sum(runs_by_link.values()),
        events_recorded=sum(event_links.values()))

