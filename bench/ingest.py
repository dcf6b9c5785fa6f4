"""Pipelines reporting to the server: OpenLineage ingestion and webhook delivery under load.

Two server operations, run by ``bench/serve.py`` on the same ``chainml serve`` as the
others (after them: both write):

* ``serve-ingest``: four producers (four ``bench.load`` processes, each an open loop at a
  quarter of ``ServeConfig.ingest_rate``) post OpenLineage ``COMPLETE`` run events to
  ``POST /api/v1/lineage`` with a write token for ``write_seconds``. Each event is a run
  of its own (a uuid) of one of ``JOBS`` jobs whose names are unique to this benchmark
  run, and carries a ``sourceCodeLocation`` version of its own, so that it registers
  exactly one new version of its job and one of the job's output dataset. The jobs form
  chains of ``GROUP`` (job ``j`` reads the dataset job ``j - 1`` writes), created by one
  batch before the phase. Nothing below the jobs needs tests, so an event opens no
  retest mark and never touches the benchmark's chain. Then every event answered 201
  must be in the registry exactly once:
  its job's version, its ``lineage_run`` row (with that version), its ``lineage_event``
  row and its output's version. Target (issue 16, at 100,000 nodes on PostgreSQL):
  >= 300 events/s for 60 s, p99 <= 150 ms, 0 errors, each once.
* ``serve-ingest-marked``: the same, on jobs whose outputs each feed a model that needs
  tests and has a passing test (registered and tested through the API before the
  phase, not measured): each event then opens or supersedes that model's retest mark,
  as a chain with models below its pipelines does; group commit registers such groups
  set-wise, marks included (chainml/ingest/group.py, chainml/rules/moves.py). A
  further check: after the phase, every model whose job got an event has an open
  retest mark. Same target.
* ``serve-hook-lag``: a webhook receiver in this process (``http.server`` in a thread,
  on a free loopback port) is registered with ``chainml hook add URL --event
  run.recorded``; then ``POST /api/v1/runs`` at ``ServeConfig.hook_rate`` for
  ``write_seconds``. Lag: when the receiver got a delivery minus the ``created_at`` of
  its notification (the registry's clock, inside the transaction of the change, on this
  same machine): the outbox and the worker inside ``chainml serve`` (which looks for due
  deliveries every ``CHAINML_HOOK_INTERVAL``, 1 s by default), not the HTTP request
  that made the change. Target: p95 <= 2 s; every run delivered. The hook is removed
  afterwards.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench import floors
from bench.serve import (
    CHAINML,
    PEAK_MIB_TARGET,
    WRITE_TIMEOUT,
    ServeConfig,
    Server,
    ServerError,
    _ms,
    _token,
    load,
    percentile,
    summary,
)

INGEST_OPERATIONS = ("serve-ingest", "serve-ingest-marked", "serve-hook-lag")
JOBS = 200  # distinct jobs the events are runs of
GROUP = 5  # job j reads what job j - 1 writes, within a group of GROUP jobs
PRODUCERS = 4
NAMESPACE = "bench"
PRODUCER = "https://bench.invalid/chainml-bench"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SEED_VERSION = "seed"  # of each job, from the batch before the phase
# The target for serve-ingest (100,000 nodes, PostgreSQL).
INGEST_TARGET_RATE = 300.0
INGEST_TARGET_P99 = 0.15
# serve-hook-lag's target, and how long to wait for the last deliveries after the phase.
HOOK_TARGET_P95 = 2.0
HOOK_WAIT = 60.0

Row = Callable[..., None]
Measured = Callable[..., tuple[dict[str, Any], float]]


# ---- serve-ingest --------------------------------------------------------------------------------

class _Names:
    """The jobs and datasets of one benchmark run (``tag``: unique to it)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def job(self, j: int) -> str:
        return f"bench-ingest-{self.tag}-{j}"

    def output(self, j: int) -> str:
        return f"ingest-{self.tag}-out-{j}"

    def source(self, j: int) -> str:
        return f"ingest-{self.tag}-src-{j // GROUP}"

    def read(self, j: int) -> str:
        """What job ``j`` reads: the output of the job before it, or its group's source."""
        return self.output(j - 1) if j % GROUP else self.source(j)

    def job_node(self, j: int) -> str:
        return f"job:{NAMESPACE}/{self.job(j)}"

    def output_node(self, j: int) -> str:
        return f"dataset:{NAMESPACE}/{self.output(j)}"

    def model(self, j: int) -> str:
        """The model reading job ``j``'s output (``serve-ingest-marked``)."""
        return f"ingest-{self.tag}-model-{j}"

    @property
    def job_prefix(self) -> str:  # for LIKE: no _ or % in it
        return f"job:{NAMESPACE}/bench-ingest-{self.tag}-"

    @property
    def output_prefix(self) -> str:
        return f"dataset:{NAMESPACE}/ingest-{self.tag}-out-"


def run_event(names: _Names, j: int, run_id: str, version: str, when: datetime
              ) -> dict[str, Any]:
    """A COMPLETE event of job ``j``, shaped as tests/test_ingest.py builds them."""
    return {
        "eventType": "COMPLETE",
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {"runId": run_id},
        "job": {"namespace": NAMESPACE, "name": names.job(j), "facets": {
            "sourceCodeLocation": {"type": "git", "url": f"https://bench.invalid/{names.tag}",
                                   "version": version}}},
        "inputs": [{"namespace": NAMESPACE, "name": names.read(j)}],
        "outputs": [{"namespace": NAMESPACE, "name": names.output(j)}],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def _parallel_load(specs: list[dict[str, Any]], files: Path, name: str
                   ) -> list[dict[str, Any]]:
    """Run several ``bench.load`` processes at once (the producers); their records."""
    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        futures = [pool.submit(load, spec, files, f"{name}-p{p}")
                   for p, spec in enumerate(specs)]
        return [f.result() for f in futures]


def ingest(backend: Any, db: floors.Sql, files: Path, out: Any, cfg: ServeConfig,
           server: Server, measured: Measured, floor: Callable[..., dict[str, Any]],
           row: Row, *, marked: bool = False) -> None:
    """``serve-ingest``, or ``serve-ingest-marked`` (module docstring)."""
    op = "serve-ingest-marked" if marked else "serve-ingest"
    from bench.run import log

    size, bname = backend.size, backend.name
    tag = f"{os.getpid()}-{int(time.time())}" + ("-m" if marked else "")
    actor = f"bench-ingest-{tag}"
    names = _Names(tag)
    token = _token(backend.cwd, backend.env(), actor, files)
    auth = {"Authorization": f"Bearer {token}"}
    now = datetime.now(timezone.utc)

    # Setup, not measured: one batch creating every job and dataset (writers first within
    # a batch, so each output is a feature of its job and each job reads the one before).
    seed_runs = [str(uuid.uuid4()) for _ in range(JOBS)]
    seed = [run_event(names, j, seed_runs[j], SEED_VERSION, now) for j in range(JOBS)]
    got = load({"base_url": server.base_url, "mode": "sequential", "timeout": WRITE_TIMEOUT,
                "headers": auth, "requests": [["POST", "/api/v1/lineage", seed]]},
               files, f"{op}-seed")
    status, err = got["records"][0][2], got["records"][0][4]
    if status != 201:
        raise ServerError(f"the batch creating the {JOBS} ingestion jobs got {status}: {err}")
    if marked:  # a tested model below each output
        models = [["POST", "/api/v1/nodes", {
            "kind": "model", "name": names.model(j), "version": "1",
            "inputs": [names.output_node(j)], "needs_tests": True}] for j in range(JOBS)]
        tests = [["POST", "/api/v1/runs", {"node": names.model(j), "passed": True}]
                 for j in range(JOBS)]
        got = load({"base_url": server.base_url, "mode": "sequential",
                    "timeout": WRITE_TIMEOUT, "headers": auth, "requests": models + tests},
                   files, f"{op}-models")
        refused = [r for r in got["records"] if r[2] != 201]
        if refused:
            raise ServerError(f"registering the {JOBS} models below the ingestion jobs got "
                              f"{refused[0][2]}: {refused[0][4]}")

    # The HTTP floor: GET /healthz at the same rate, before the phase.
    hz, _ = measured(f"{op}-healthz", {
        "mode": "open", "rate": cfg.ingest_rate,
        "seconds": min(cfg.floor_seconds, cfg.write_seconds),
        "requests": [["GET", "/healthz", None]]})
    h = summary(hz)

    count = max(PRODUCERS, round(cfg.ingest_rate * cfg.write_seconds))
    jobs = [i % JOBS for i in range(count)]
    runs = [str(uuid.uuid4()) for _ in range(count)]
    versions = [f"e{i}" for i in range(count)]
    events = [run_event(names, jobs[i], runs[i], versions[i],
                        now + timedelta(seconds=i / cfg.ingest_rate)) for i in range(count)]
    # Producer p sends events p, p + 4, ...: its own open loop at a quarter of the rate.
    share = [list(range(p, count, PRODUCERS)) for p in range(PRODUCERS)]
    specs = [{"base_url": server.base_url, "mode": "open",
              "rate": cfg.ingest_rate / PRODUCERS, "seconds": len(mine) * PRODUCERS
              / cfg.ingest_rate, "timeout": WRITE_TIMEOUT, "headers": auth,
              "requests": [["POST", "/api/v1/lineage", events[i]] for i in mine]}
             for mine in share]
    log(f"  {op}: {PRODUCERS} producers, {count} COMPLETE events at "
        f"{cfg.ingest_rate:g}/s for {cfg.write_seconds:g} s ({JOBS} jobs)")
    before = server.cpu_s()
    results = _parallel_load(specs, files, op)
    cpu = server.cpu_s() - before
    # Then the server is left to settle (or restarted) as after every phase; this also
    # sets what the row says about it ("after").
    measured(f"{op}-settle", {"mode": "sequential",
                                      "requests": [["GET", "/healthz", None]]})

    # One record per event, in event order; the producers' walls overlap.
    status_of: dict[int, int] = {}
    records: list[list[Any]] = []
    for mine, res in zip(share, results, strict=True):
        for i, r in zip(mine, res["records"], strict=True):
            status_of[i] = int(r[2])
            records.append(r)
    merged = {"records": records, "wall_s": max(r["wall_s"] for r in results),
              "client_cpu_s": sum(r["client_cpu_s"] for r in results),
              "connections": sum(r.get("connections") or 0 for r in results)}
    s = summary(merged, ok=lambda st: st == 201)
    answered = {i for i, st in status_of.items() if st == 201}
    refused = {i for i, st in status_of.items() if st != 201 and st != 0}

    # -- exactly once, from the registry's own tables
    # Everything the seed batch registered is left out (its job versions are SEED_VERSION,
    # its outputs' versions and its runs are named by its run ids).
    seeded = set(seed_runs)
    job_versions = Counter((n, label) for n, label in db.rows(
        "SELECT n.name, v.label FROM version v JOIN node n ON n.id = v.node_id "
        "WHERE n.name LIKE ? AND v.label <> ?", (names.job_prefix + "%", SEED_VERSION)))
    output_versions = Counter((n, label) for n, label in db.rows(
        "SELECT n.name, v.label FROM version v JOIN node n ON n.id = v.node_id "
        "WHERE n.name LIKE ?", (names.output_prefix + "%",)) if label not in seeded)
    lineage_runs = Counter((r, j, v) for r, j, v in db.rows(
        "SELECT run_id, job, job_version FROM lineage_run WHERE job LIKE ?",
        (names.job_prefix + "%",)) if r not in seeded)
    stored = Counter(r for (r,) in db.rows(
        "SELECT run_id FROM lineage_event WHERE received_by = ?", (actor,)) if r not in seeded)
    findings = db.rows(
        "SELECT count(*) FROM observed_input o JOIN node n ON n.id = o.node_id "
        "WHERE n.name LIKE ? OR n.name LIKE ?",
        (names.job_prefix + "%", names.output_prefix + "%"))[0][0]
    open_marks = dict(db.rows(
        "SELECT n.name, count(*) FROM retest_mark m JOIN node n ON n.id = m.node_id "
        "WHERE m.closed_at IS NULL AND n.name LIKE ? GROUP BY n.name",
        (f"ingest-{tag}-model-%",))) if marked else {}
    db.rollback()

    def once(counter: Counter[Any], key: Callable[[int], Any]) -> tuple[int, bool]:
        """How many answered events are there exactly once; and whether that is all of
        them, with none of the refused ones (an event without an answer may be either)."""
        good = sum(1 for i in answered if counter.get(key(i)) == 1)
        bad = any(counter.get(key(i)) for i in refused)
        sent = {key(i) for i in range(count)}
        stray = any(k not in sent for k in counter)
        return good, good == len(answered) and not bad and not stray

    checks = [
        ("every event answered 201", len(answered), len(answered) == count),
        ("every answered event registered its job's version exactly once",
         *once(job_versions, lambda i: (names.job_node(jobs[i]), versions[i]))),
        ("every answered event's run recorded exactly once (lineage_run, that version)",
         *once(lineage_runs, lambda i: (runs[i], names.job_node(jobs[i]), versions[i]))),
        ("every answered event stored exactly once (lineage_event)",
         *once(stored, lambda i: runs[i])),
        ("every answered event registered its output's version exactly once",
         *once(output_versions, lambda i: (names.output_node(jobs[i]), runs[i]))),
    ]
    if marked:
        hit = {names.model(jobs[i]) for i in answered}
        # Its job's and its output's new versions (and those of the jobs above it in its
        # chain) are each a cause of its own.
        checks.append(("every model below an event's job has an open retest mark",
                       sum(bool(open_marks.get(m)) for m in hit),
                       all(open_marks.get(m) for m in hit)))
    exactly_once = all(ok for _, _, ok in checks[1:])
    for what, got_n, ok in checks:
        out.checks.append({"size": size, "backend": bname, "what": f"{op}: {what}",
                           "chainml": got_n, "networkx": count, "equal": ok})

    events_per_s = round(len(answered) / merged["wall_s"], 1) if merged["wall_s"] else 0.0
    fl = [floor(f"GET /healthz at {cfg.ingest_rate:g}/s, p99", h["p99_s"], s["p99_s"])]
    row(op, s, fl,
        f"{events_per_s:g} events/s (offered {cfg.ingest_rate:g}/s, {PRODUCERS} producers); "
        f"p50 {_ms(s['p50_s'])} · p95 {_ms(s['p95_s'])} · p99 {_ms(s['p99_s'])}, "
        f"{s['errors']} errors, {'each once' if exactly_once else 'NOT each once'}", cpu,
        rate=cfg.ingest_rate, seconds=cfg.write_seconds, producers=PRODUCERS, jobs=JOBS,
        group=GROUP, events_per_s=events_per_s, exactly_once=exactly_once,
        job_versions_registered=sum(job_versions.values()),
        output_versions_registered=sum(output_versions.values()),
        lineage_runs_recorded=sum(lineage_runs.values()),
        findings=findings)
    r = out.results[-1]
    # Sustained: an open loop's latencies count from when each event was due, so a p99
    # within the bound means the offered rate was kept up with (0.98: the wall also holds
    # the last answers).
    met = (cfg.ingest_rate >= INGEST_TARGET_RATE and s["errors"] == 0 and exactly_once
           and s["p99_s"] <= INGEST_TARGET_P99 and events_per_s >= 0.98 * cfg.ingest_rate
           and r["peak_mib"] <= PEAK_MIB_TARGET)
    r.update(target_s=INGEST_TARGET_P99, target_stat="p99", target_source="issue", met=met,
             target_text=f"≥ {INGEST_TARGET_RATE:g} events/s, p99 ≤ "
                         f"{INGEST_TARGET_P99:g} s, 0 errors, each once")


# ---- serve-hook-lag ------------------------------------------------------------------------------

class Receiver:
    """A webhook receiver on a free loopback port: what arrived, and when (wall clock)."""

    def __init__(self) -> None:
        self.arrivals: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                at = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with receiver.lock:
                    receiver.arrivals.append({
                        "at": at, "delivery": self.headers.get("X-Chainml-Delivery"),
                        "event": self.headers.get("X-Chainml-Event"),
                        "attempt": self.headers.get("X-Chainml-Attempt"), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/bench-hook"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                       name="bench-hook-receiver")

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def snapshot(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.arrivals)


def _created_at(body: Any) -> float | None:
    """The notification's ``created_at`` (naive UTC ISO + Z) as a Unix time."""
    text = body.get("created_at") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text.removesuffix("Z"))
    except ValueError:
        return None
    return when.replace(tzinfo=timezone.utc).timestamp()


def _link(arrival: dict[str, Any]) -> str:
    """The ``link`` of the run a ``run.recorded`` delivery is about."""
    body = arrival["body"]
    data = body.get("data") if isinstance(body, dict) else None
    return str(data.get("link")) if isinstance(data, dict) else ""


def hook_lag(backend: Any, db: floors.Sql, testable: Sequence[str], rng: random.Random,
             files: Path, out: Any, cfg: ServeConfig, server: Server, measured: Measured,
             floor: Callable[..., dict[str, Any]], row: Row) -> None:
    """``serve-hook-lag`` (module docstring)."""
    from bench.run import log, run_once

    size, bname = backend.size, backend.name
    env = backend.env()
    actor = f"bench-hook-{os.getpid()}-{int(time.time())}"
    token = _token(backend.cwd, env, actor, files)
    count = max(1, round(cfg.hook_rate * cfg.write_seconds))
    prefix = f"https://bench.invalid/{actor}/"
    reqs = [["POST", "/api/v1/runs", {"node": n, "passed": True, "link": f"{prefix}{i}",
                                      "note": f"{actor} request {i}"}]
            for i, n in enumerate(rng.choices(list(testable), k=count))]
    interval = float(env.get("CHAINML_HOOK_INTERVAL") or 1.0)  # the server's

    with Receiver() as receiver:
        target = files / "serve-hook-add.json"
        run_once([CHAINML, "hook", "add", receiver.url, "--event", "run.recorded", "--json"],
                 cwd=backend.cwd, env=env, stdout=target)
        hook_id = int(json.loads(target.read_text())["id"])
        target.unlink()
        try:
            log(f"  serve-hook-lag: hook {hook_id} -> {receiver.url}; {count} runs at "
                f"{cfg.hook_rate:g}/s")
            got, cpu = measured("serve-hook-lag", {
                "mode": "open", "rate": cfg.hook_rate, "seconds": cfg.write_seconds,
                "requests": reqs, "timeout": WRITE_TIMEOUT,
                "headers": {"Authorization": f"Bearer {token}"}})
            posts = summary(got, ok=lambda st: st == 201)
            answered = {f"{prefix}{i}" for i, r in enumerate(got["records"]) if r[2] == 201}
            # What the registry recorded (a POST whose answer was lost may have been
            # recorded, or not): every one of those must be delivered, and nothing else.
            recorded = {link for (link,) in db.rows(
                "SELECT link FROM test_run WHERE link LIKE ?", (prefix + "%",))}
            db.rollback()
            # The server was left idle by measured(); deliveries still due arrive within
            # an interval or two. Wait for every recorded run (or HOOK_WAIT).
            deadline = time.monotonic() + HOOK_WAIT
            while time.monotonic() < deadline:
                seen = {_link(a) for a in receiver.snapshot()}
                if recorded <= seen:
                    break
                time.sleep(0.2)
            time.sleep(min(2.0, 2 * interval))  # repeats of the last ones, if any
            arrivals = receiver.snapshot()
        finally:
            run_once([CHAINML, "hook", "remove", str(hook_id)], cwd=backend.cwd, env=env,
                     stdout=files / "serve-hook-remove.txt")

    first: dict[str, dict[str, Any]] = {}
    per_delivery = Counter(a["delivery"] for a in arrivals)
    for a in sorted(arrivals, key=lambda a: a["at"]):
        link = _link(a)
        if link.startswith(prefix) and link not in first:
            first[link] = a
    lags = [a["at"] - c for a in first.values()
            if (c := _created_at(a["body"])) is not None]
    delivered = len(set(first) & recorded)
    missing = len(recorded) - delivered
    stray = len(set(first) - recorded)
    repeated = sum(n - 1 for n in per_delivery.values() if n > 1)
    if not lags:
        raise ServerError(f"no delivery of the {len(answered)} runs reached the receiver "
                          f"within {HOOK_WAIT:g} s")
    s = {"requests": len(first), "errors": posts["errors"] + missing + stray,
         "error_samples": posts["error_samples"],
         "p50_s": round(percentile(lags, 0.50), 5), "p95_s": round(percentile(lags, 0.95), 5),
         "p99_s": round(percentile(lags, 0.99), 5), "max_s": round(max(lags), 5),
         "mean_s": round(sum(lags) / len(lags), 5), "wall_s": posts["wall_s"],
         "client_cpu_s": posts["client_cpu_s"], "connections": posts["connections"]}
    everyone = delivered == len(recorded) and not stray
    out.checks.append({"size": size, "backend": bname,
                       "what": "serve-hook-lag: every run recorded was delivered to the hook",
                       "chainml": delivered, "networkx": len(recorded), "equal": everyone})
    fl = [floor(f"the worker's poll interval ({interval:g} s)", interval, s["p95_s"])]
    row("serve-hook-lag", s, fl,
        f"lag p50 {_ms(s['p50_s'])} · p95 {_ms(s['p95_s'])} · p99 {_ms(s['p99_s'])}; "
        f"{delivered}/{len(recorded)} runs recorded delivered ({repeated} repeats); "
        f"{count} runs posted at {cfg.hook_rate:g}/s for {cfg.write_seconds:g} s, "
        f"{posts['errors']} errors", cpu,
        rate=cfg.hook_rate, seconds=cfg.write_seconds, posted=count, answered=len(answered),
        recorded=len(recorded), delivered=delivered, missing=missing, stray=stray,
        repeated=repeated, arrivals=len(arrivals),
        lag_from="notification created_at (registry clock, in the change's transaction)",
        posts={k: posts[k] for k in ("requests", "errors", "error_samples", "p50_s",
                                     "p95_s", "p99_s", "max_s")})
    r = out.results[-1]
    met = everyone and s["errors"] == 0 and s["p95_s"] <= HOOK_TARGET_P95 \
        and r["peak_mib"] <= PEAK_MIB_TARGET
    r.update(target_s=HOOK_TARGET_P95, target_stat="p95", target_source="issue", met=met,
             target_text=f"lag p95 ≤ {HOOK_TARGET_P95:g} s, every run delivered")
