"""Timing whole ``chainml`` processes, the registries they run against, and the scenario.

Every chainml figure is a whole process started with ``subprocess.Popen`` and
reaped with ``os.wait4``, which hands back the child's own resource usage:
``ru_maxrss`` is its peak resident memory (KiB on Linux). What a user waits for
is the whole process - interpreter start-up and imports included - so that is
what is timed, from just before ``Popen`` to just after ``wait4`` (both done by a
small launcher process; see ``LAUNCHER``).

Each operation gets one untimed warm-up (page cache, ``.pyc`` files, the
database's buffers) and then ``runs`` timed runs; the median is reported and the
peak memory is the largest of the timed runs. Operations whose warm-up alone
takes long are measured fewer times, and say so in their note:
``SLOW`` seconds or more -> at most 3 runs; ``VERY_SLOW`` or more -> the warm-up is
the one and only run. ``apply`` of a fresh chain needs a fresh registry per run;
at 100,000 nodes it is run once.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import networkx as nx

from bench import floors
from bench.generate import NEEDS_TESTS, Chain
from bench.ingest import INGEST_OPERATIONS
from bench.serve import SERVE_OPERATIONS, ServeConfig

SLOW = 10.0
VERY_SLOW = 60.0
# A measured command that runs longer than this is killed and reported as "> OP_TIMEOUT"
# (python -m bench --op-timeout): one pathological operation must not eat the whole run.
OP_TIMEOUT = 600.0
# From this size on, apply (fresh, and again without changes) is timed once, no warm-up.
APPLY_ONCE_FROM = 50_000
# Recording a passing test for every testable node is setup, not measured. Through the
# Python API it is one transaction per node; after this many seconds the rest is
# written in bulk (see record_tests).
API_RECORD_BUDGET = 60.0
CHAINML = str(Path(sys.executable).with_name("chainml"))

# Targets from the issue (medians, whole process; 100,000 nodes, this 2-core machine).
# They are shown at every size: a smaller registry must meet them too.
# "derived" ones are not in the list: status is read in CI like check.
TARGETS: dict[str, tuple[float, str]] = {
    "help": (0.25, "issue"),
    "impact-typical": (0.5, "issue"),
    "impact-hub": (1.5, "issue"),
    "check": (1.0, "issue"),
    "register-hub": (5.0, "issue"),
    "apply": (60.0, "issue"),
    "status": (1.0, "derived: like check"),
    "status-dirty": (1.0, "derived: like check"),
    "env-check": (1.5, "issue"),
    "env-status-node": (0.3, "issue"),
    "env-plan": (3.0, "issue"),
    "env-deploy": (2.0, "issue"),
}
PEAK_MIB_TARGET = 1024.0
ENV_OPERATIONS = ("env-check", "env-status-node", "env-check-behind", "env-plan",
                  "env-deploy")
OPERATIONS = ("help", "apply", "apply-noop", "impact-hub", "impact-typical", "status",
              "graph-focus", "export", "register-hub", "check", "status-dirty", "test-record",
              *ENV_OPERATIONS, *SERVE_OPERATIONS, *INGEST_OPERATIONS)
# The environment the env operations ask about: every node deployed there at setup.
ENV_NAME = "prod"
# The release env-deploy records: this many testable leaves (all of them when fewer),
# each with a new version labelled RELEASE_LABEL, tested.
RELEASE_SIZE = 100
RELEASE_LABEL = "bench-rel"
# Up to this size the setup also reads every environment status back through the CLI.
ENV_STATUS_CHECK_MAX = 10_000


class BenchError(RuntimeError):
    """A step of the benchmark failed (a command's exit code, a broken invariant)."""


class TimedOut(BenchError):
    """A command ran longer than it may; it was killed."""

    def __init__(self, cmd: Sequence[str], seconds: float) -> None:
        super().__init__(f"{' '.join(cmd)} took more than {seconds:.0f} s and was killed")
        self.seconds = seconds


def log(text: str) -> None:
    """Progress goes to stderr; stdout stays for the final table."""
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


# ---- timing --------------------------------------------------------------------------------------

@dataclass
class Sample:
    seconds: float
    maxrss_kib: int
    rc: int


# Why a launcher: Linux carries the parent's peak RSS into a forked child's ru_maxrss
# (exec keeps the larger of the old and new images' high-water marks), so a child forked
# straight from this process - hundreds of MiB with a 100,000-node graph loaded - would
# report at least that much. A small interpreter started per run forks the command
# instead and times it from its fork to its wait4; its own start-up is not timed, and
# its ~10 MiB is well below any chainml process.
LAUNCHER = """
import json, os, subprocess, sys, time
stdout = open(sys.argv[1], "wb") if sys.argv[1] else subprocess.DEVNULL
stderr = open(sys.argv[2], "wb")
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[3:], stdout=stdout, stderr=stderr)
_, status, usage = os.wait4(proc.pid, 0)
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "maxrss_kib": usage.ru_maxrss,
                  "rc": os.waitstatus_to_exitcode(status)}))
"""


def run_once(cmd: Sequence[str], *, cwd: Path, env: dict[str, str],
             stdout: Path | None = None, expect: Iterable[int] = (0,),
             timeout: float = 3600.0) -> Sample:
    """Run one whole process; its wall time, its peak RSS (``os.wait4``) and exit code.

    Raises:
        BenchError: the exit code is not in ``expect`` (with the end of stderr).
    """
    with tempfile.NamedTemporaryFile(prefix="bench-stderr-") as err:
        launcher = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", LAUNCHER, str(stdout or ""), err.name, *cmd],
            cwd=cwd, env=env, stdout=subprocess.PIPE, start_new_session=True)
        try:
            report, _ = launcher.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, 9)  # the launcher and the command it started
            launcher.communicate()
            raise TimedOut(cmd, timeout) from None
        if launcher.returncode != 0:
            raise BenchError(f"the launcher for {' '.join(cmd)} failed ({launcher.returncode})")
        got = json.loads(report)
        rc = int(got["rc"])
        if rc not in set(expect):
            tail = Path(err.name).read_bytes().decode(errors="replace").strip()[-1500:]
            raise BenchError(f"{' '.join(cmd)} exited {rc} (expected {sorted(set(expect))}): "
                             f"{tail}")
    return Sample(float(got["seconds"]), int(got["maxrss_kib"]), rc)


@dataclass
class Timing:
    """Timed runs of one operation (whole processes, or an in-process floor)."""

    times: list[float]
    peak_kib: int = 0
    note: str = ""
    timed_out: bool = False  # then times holds the limit: a lower bound, not a measurement

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def peak_mib(self) -> float | None:
        return round(self.peak_kib / 1024, 1) if self.peak_kib else None


def measure(cmd: Callable[[int], Sequence[str]], runs: int, *, cwd: Path, env: dict[str, str],
            stdout: Path | None = None, expect: Iterable[int] = (0,)) -> Timing:
    """Warm-up, then ``runs`` timed runs of ``cmd(i)`` (``i`` = 0 for the warm-up, so a
    command that must differ each time - a new version label - can)."""
    expect = tuple(expect)
    try:
        warm = run_once(cmd(0), cwd=cwd, env=env, stdout=stdout, expect=expect,
                        timeout=OP_TIMEOUT)
    except TimedOut as e:
        return Timing([e.seconds], 0, f"killed after {e.seconds:.0f} s: did not finish", True)
    if warm.seconds >= VERY_SLOW:
        return Timing([warm.seconds], warm.maxrss_kib,
                      f"1 run without warm-up (it took {warm.seconds:.0f} s)")
    note = ""
    if warm.seconds >= SLOW and runs > 3:
        runs, note = 3, f"3 runs (warm-up took {warm.seconds:.0f} s)"
    samples = [run_once(cmd(i), cwd=cwd, env=env, stdout=stdout, expect=expect,
                        timeout=OP_TIMEOUT) for i in range(1, runs + 1)]
    return Timing([s.seconds for s in samples], max(s.maxrss_kib for s in samples), note)


def time_call(fn: Callable[[], Any], runs: int) -> Timing:
    """Warm-up plus ``runs`` timed calls in this process (the floors).

    ``fn.prepare()`` (if any) runs untimed before each call, ``fn.cleanup()`` at the end.
    """
    prepare = getattr(fn, "prepare", None)
    times = []
    for i in range(runs + 1):
        if prepare:
            prepare()
        start = time.perf_counter()
        fn()
        if i:  # the first call is the warm-up
            times.append(time.perf_counter() - start)
    cleanup = getattr(fn, "cleanup", None)
    if cleanup:
        cleanup()
    return Timing(times)


# ---- registries ----------------------------------------------------------------------------------

def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHAINML_DATABASE_URL", "CHAINML_DEBUG")}
    env["CHAINML_ACTOR"] = "bench"
    return env


class Backend:
    """A registry the benchmark can create fresh, point chainml at, and query raw."""

    name = ""

    def __init__(self, size: int, work: Path) -> None:
        self.size = size
        self.work = work
        self.cwd = work / f"{self.name}-{size}"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return base_env()

    def _clear(self) -> None:
        raise NotImplementedError

    def fresh(self) -> None:
        """An empty registry at chainml's schema, made by ``chainml init``."""
        self._clear()
        shutil.rmtree(self.cwd, ignore_errors=True)
        self.cwd.mkdir(parents=True)
        run_once([CHAINML, "init"], cwd=self.cwd, env=self.env())

    def sql(self) -> floors.Sql:
        raise NotImplementedError

    def settle(self) -> None:
        """After the bulk load, before measuring: what the database would do by itself."""

    def drop(self) -> None:
        self._clear()
        shutil.rmtree(self.cwd, ignore_errors=True)

    def server_version(self) -> str:
        raise NotImplementedError


class SqliteBackend(Backend):
    """The default: ``.chainml/registry.db`` in a folder, found from the working directory."""

    name = "sqlite"

    @property
    def path(self) -> Path:
        return self.cwd / ".chainml" / "registry.db"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _clear(self) -> None:
        pass

    def sql(self) -> floors.Sql:
        return floors.connect_sqlite(str(self.path))

    def server_version(self) -> str:
        import sqlite3

        return sqlite3.sqlite_version


class PostgresBackend(Backend):
    """A fresh schema per size in the given database; chainml reaches it through
    CHAINML_DATABASE_URL with ``options=-csearch_path=<schema>``."""

    name = "postgresql"

    def __init__(self, size: int, work: Path, pg_url: str) -> None:
        super().__init__(size, work)
        parts = urlsplit(pg_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.password = parts.password
        self.dbname = (parts.path or "/test").lstrip("/") or "test"
        self.schema = f"chainml_bench_{size}_{os.getpid()}"

    @property
    def conninfo(self) -> str:
        info = f"host={self.host} port={self.port} user={self.user} dbname={self.dbname}"
        return info + (f" password={self.password}" if self.password else "")

    @property
    def url(self) -> str:
        auth = self.user + (f":{quote(self.password)}" if self.password else "")
        return (f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{self.dbname}"
                f"?options=-csearch_path%3D{self.schema}")

    def env(self) -> dict[str, str]:
        env = base_env()
        env["CHAINML_DATABASE_URL"] = self.url
        return env

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(statement)

    def _clear(self) -> None:
        self._admin(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def fresh(self) -> None:
        self._clear()
        self._admin(f'CREATE SCHEMA "{self.schema}"')
        shutil.rmtree(self.cwd, ignore_errors=True)
        self.cwd.mkdir(parents=True)
        run_once([CHAINML, "init"], cwd=self.cwd, env=self.env())

    def sql(self) -> floors.Sql:
        return floors.connect_postgres(self.conninfo, self.schema)

    def settle(self) -> None:
        # A normally configured server's autovacuum vacuums and analyzes tables after a
        # bulk load (PostgreSQL 13+ also on inserts alone); on a server without it (like
        # ours: autovacuum = off) the planner would guess at a 466,000-row edge table and
        # index-only scans would still visit every row, for chainml and the CTE floors
        # alike. VACUUM (ANALYZE) once, so every run sees the same, realistic plans.
        # SQLite is left alone: it never analyzes by itself, so users get its defaults.
        import psycopg

        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            tables = [t for (t,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (self.schema,))]
            for table in tables:
                conn.execute(f'VACUUM (ANALYZE) "{self.schema}"."{table}"')

    def server_version(self) -> str:
        import psycopg

        with psycopg.connect(self.conninfo) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def make_backend(name: str, size: int, work: Path, pg_url: str) -> Backend:
    if name == "sqlite":
        return SqliteBackend(size, work)
    if name == "postgresql":
        return PostgresBackend(size, work, pg_url)
    raise BenchError(f"unknown backend {name!r}; use sqlite or postgresql")


def has_command(name: str) -> bool:
    """Whether this chainml has the sub-command (apply and export arrived late)."""
    probe = subprocess.run([CHAINML, name, "--help"], capture_output=True, env=base_env())
    return probe.returncode == 0


# ---- setup that is not measured ------------------------------------------------------------------

def load_via_api(backend: Backend, chain: Chain) -> float:
    """Register every node through ``Registry.register`` (used when ``apply`` is missing)."""
    from chainml import Registry

    start = time.perf_counter()
    with Registry(backend.url, actor="bench") as reg:
        for i, n in enumerate(chain.nodes):
            reg.register(kind=n.kind, name=n.name, version="1",
                         inputs=[chain.nodes[u].name for u in n.inputs])
            if i and i % 2000 == 0:
                log(f"  registered {i}/{chain.size}")
        # Feedback last: a feedback input may name a node registered later.
        for n in chain.nodes:
            if n.feedback:
                reg.register(kind=n.kind, name=n.name, version="1-fb",
                             inputs=[chain.nodes[u].name for u in n.inputs],
                             feedback=[chain.nodes[u].name for u in n.feedback])
    return time.perf_counter() - start


def record_tests(backend: Backend, chain: Chain) -> dict[str, Any]:
    """A passing run for every node that needs tests, so that a hub change has thousands
    of verified nodes to mark.

    Through ``Registry.record_test`` (one transaction per node) until ``API_RECORD_BUDGET``
    seconds have passed; the rest is inserted in bulk with the same lineage
    snapshot rows ``record_test`` stores (every unpinned ancestor with its current
    version; the benchmark chain has no pins). ``status`` afterwards must report every
    one of them verified - the scenario checks that, which is what guards the bulk path
    against drifting from chainml's.
    """
    from chainml import Registry

    testable = [n.name for n in chain.nodes if NEEDS_TESTS[n.kind]]
    start = time.perf_counter()
    method, done = "api", 0
    with Registry(backend.url, actor="bench") as reg:
        for name in testable:
            reg.record_test(name, passed=True)
            done += 1
            if time.perf_counter() - start > API_RECORD_BUDGET:
                break
        per = (time.perf_counter() - start) / max(1, done)
        if done < len(testable):
            method = f"api for {done}, bulk insert for {len(testable) - done}"
            log(f"  record_test took {per * 1000:.0f} ms a node; inserting the other "
                f"{len(testable) - done} in bulk")
            _bulk_record(reg.engine, set(testable[done:]))
    return {"what": "record passing tests", "method": method, "nodes": len(testable),
            "seconds": round(time.perf_counter() - start, 2),
            "api_ms_per_node": round(per * 1000, 1)}


# Each run's snapshot: every unpinned ancestor at its current version, found by the
# database itself (22,000 runs of ~1,000 ancestors each at 100,000 nodes: 22 million
# rows that Python would otherwise compute and ship one by one). Parameters: the
# node, then its run.
_SNAPSHOT_INSERT = (
    "INSERT INTO snapshot_pair (run_id, node_id, version_id) "
    "WITH RECURSIVE up(id) AS ("
    " SELECT e.upstream_id FROM edge e WHERE e.downstream_id = {p} AND e.feedback = {no}"
    " AND e.pinned_version_id IS NULL UNION"
    " SELECT e.upstream_id FROM edge e JOIN up ON e.downstream_id = up.id"
    " WHERE e.feedback = {no} AND e.pinned_version_id IS NULL) "
    "SELECT {p}, n.id, n.current_version_id FROM node n JOIN up ON n.id = up.id"
)


def _bulk_record(engine: Any, wanted: set[str], copy: bool | None = None) -> None:
    """A passing run of each of ``wanted`` with its snapshot rows, in one transaction.

    On SQLite (or ``copy=False``) the database computes each run's snapshot with
    ``_SNAPSHOT_INSERT``. On PostgreSQL that was ~30 ms a run (one recursive statement
    each, 22,000 at 100,000 nodes: 12 minutes, over 25 under load), so there the same rows
    are computed here, by a walk up the regular, unpinned edges read from the registry,
    and streamed with ``COPY ... FROM STDIN``: the rows are the same (every unpinned
    ancestor at its current version), only the statement that writes them differs.
    """
    from sqlalchemy import insert, select

    from chainml.db.models import Node, TestRun

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    sqlite = engine.dialect.name == "sqlite"
    if copy is None:
        copy = engine.dialect.name == "postgresql"
    sql = _SNAPSHOT_INSERT.format(p="?" if sqlite else "%s", no="0" if sqlite else "FALSE")
    with engine.begin() as conn:
        nodes = {nm: (i, v) for i, nm, v in conn.execute(
            select(Node.id, Node.name, Node.current_version_id))}
        conn.execute(insert(TestRun.__table__), [
            {"node_id": nodes[name][0], "version_id": nodes[name][1], "suite": "",
             "passed": True, "recorded_at": now, "recorded_by": "bench-bulk", "link": None,
             "note": None} for name in sorted(wanted)])
        runs = conn.execute(select(TestRun.id, TestRun.node_id).where(
            TestRun.recorded_by == "bench-bulk")).all()
        cur = conn.connection.dbapi_connection.cursor()
        try:
            if copy:
                _copy_snapshots(cur, runs, {i: v for i, v in nodes.values()})
            else:
                cur.executemany(sql, [(node_id, run_id) for run_id, node_id in runs])
        finally:
            cur.close()


def _copy_snapshots(cur: Any, runs: Sequence[tuple[int, int]], current: dict[int, int]
                    ) -> None:
    """``_SNAPSHOT_INSERT`` of every run, as one ``COPY`` (psycopg): the ancestors along the
    edges that statement follows (regular, unpinned), each at its current version."""
    cur.execute("SELECT upstream_id, downstream_id FROM edge "
                "WHERE NOT feedback AND pinned_version_id IS NULL")
    ups: dict[int, list[int]] = {}
    for up, down in cur.fetchall():
        ups.setdefault(down, []).append(up)
    # The foreign key to test_run holds by construction (the runs were inserted just
    # before, in this transaction); checking it row by row after the COPY was ~5 of its
    # 8 minutes at 100,000 nodes. Skipped where the role may (a superuser, like the
    # default --pg-url's), checked otherwise.
    cur.execute("SAVEPOINT bench_replica")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
        replica = True
    except Exception:  # noqa: BLE001 - not allowed for this role: keep the checks
        cur.execute("ROLLBACK TO SAVEPOINT bench_replica")
        replica = False
    with cur.copy("COPY snapshot_pair (run_id, node_id, version_id) FROM STDIN") as copy:
        for run_id, node_id in runs:
            seen: set[int] = set()
            todo = list(ups.get(node_id, ()))
            while todo:
                u = todo.pop()
                if u not in seen:
                    seen.add(u)
                    todo.extend(ups.get(u, ()))
            prefix = f"{run_id}\t"
            copy.write("".join(f"{prefix}{a}\t{current[a]}\n" for a in seen))
    if replica:
        cur.execute("SET LOCAL session_replication_role = DEFAULT")
    cur.execute("RELEASE SAVEPOINT bench_replica")


# ---- environments: setup that is not measured ----------------------------------------------------

def release_nodes(chain: Chain, g: nx.DiGraph[str]) -> list[str]:
    """The nodes of ``env-deploy``'s release: testable leaves (no consumer in ``g``, no
    feedback input of anything, none of the picks), sorted by name, ``RELEASE_SIZE`` of
    them spread evenly (all of them when there are fewer: 26 at 1,000 nodes)."""
    fed = {chain.nodes[u].name for n in chain.nodes for u in n.feedback}
    picked = set(chain.picks.values())
    leaves = sorted(n.name for n in chain.nodes
                    if NEEDS_TESTS[n.kind] and g.out_degree(n.name) == 0
                    and n.name not in fed and n.name not in picked)
    if len(leaves) <= RELEASE_SIZE:
        return leaves
    return [leaves[i * len(leaves) // RELEASE_SIZE] for i in range(RELEASE_SIZE)]


def deploy_everything(backend: Backend) -> dict[str, Any]:
    """``chainml env create ENV_NAME``, then every node deployed there at its current
    version as one release, written in bulk (see ``_bulk_deploy``)."""
    from chainml import Registry

    start = time.perf_counter()
    run_once([CHAINML, "env", "create", ENV_NAME], cwd=backend.cwd, env=backend.env())
    with Registry(backend.url, actor="bench") as reg:
        nodes = _bulk_deploy(reg.engine, ENV_NAME)
    return {"what": f"env create {ENV_NAME}, deploy every node at its current version",
            "method": "bulk insert: one deploy event, one deployment row per node",
            "nodes": nodes, "seconds": round(time.perf_counter() - start, 2)}


def _bulk_deploy(engine: Any, env_name: str) -> int:
    """What ``chainml deploy`` of every node at its current version records, in one
    transaction: the write lock taken, one ``deploy`` event (its details as
    ``environments.release.deploy`` writes them) and one deployment row per node by
    ``INSERT ... SELECT``. Returns the number of nodes deployed."""
    from sqlalchemy import DateTime, Integer, String, insert, literal, null, select, update

    from chainml.db.models import Deployment, Environment, Event, Node, Version, WriteLock

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    note = "benchmark setup: every node at its current version (bulk insert)"
    current = (Node.current_version_id.is_not(None), Node.retired_at.is_(None))
    with engine.begin() as conn:
        conn.execute(update(WriteLock).where(WriteLock.id == 1)
                     .values(counter=WriteLock.counter + 1))
        env_id = conn.execute(select(Environment.id).where(Environment.name == env_name)
                              ).scalar_one()
        released = conn.execute(select(Node.name, Version.label)
                                .join(Version, Version.id == Node.current_version_id)
                                .where(*current).order_by(Node.id)).all()
        event = conn.execute(insert(Event).values(
            at=now, actor="bench", action="deploy", node_name=None, version_label=None,
            env_name=env_name,
            details={"nodes": [{"node": name, "version": label, "previous": None}
                               for name, label in released],
                     "forced": False, "reason": None, "link": None, "note": note,
                     "problems": None}))
        event_id = event.inserted_primary_key[0]
        columns = ["environment_id", "node_id", "version_id", "event_id", "deployed_at",
                   "deployed_by", "link", "note"]
        conn.execute(insert(Deployment).from_select(columns, select(
            literal(env_id, Integer), Node.id, Node.current_version_id,
            literal(event_id, Integer), literal(now, DateTime), literal("bench-bulk", String),
            null(), literal(note, String)).where(*current).order_by(Node.id)))
    return len(released)


def new_release_versions(backend: Backend, chain: Chain, names: Sequence[str]
                         ) -> dict[str, Any]:
    """A new version (``RELEASE_LABEL``, same inputs) of each of ``names``, with a passing
    test, through ``Registry.register`` and ``Registry.record_test``."""
    from chainml import Registry

    kinds = {n.name: n.kind for n in chain.nodes}
    start = time.perf_counter()
    with Registry(backend.url, actor="bench") as reg:
        for name in names:
            reg.register(kind=kinds[name], name=name, version=RELEASE_LABEL)
            reg.record_test(name, passed=True)
    return {"what": f"register {RELEASE_LABEL} of {len(names)} testable leaves, test them",
            "method": "api", "nodes": len(names),
            "seconds": round(time.perf_counter() - start, 2)}


# ---- the scenario --------------------------------------------------------------------------------

@dataclass
class Outcome:
    """What one size x backend produced."""

    results: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    setup: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _floor(name: str, timing: Timing, chainml_s: float) -> dict[str, Any]:
    return {"name": name, "seconds": round(timing.median, 6),
            "ratio": round(chainml_s / timing.median, 1) if timing.median > 0 else None}


def result_row(op: str, size: int, backend: str, t: Timing, floors_: list[dict[str, Any]],
               detail: dict[str, Any] | None = None) -> dict[str, Any]:
    target, source = TARGETS.get(op, (None, ""))
    peak = t.peak_mib
    met: bool | None = None
    if t.timed_out:
        met = False
    elif target is not None or peak is not None:
        met = ((target is None or t.median <= target)
               and (peak is None or peak <= PEAK_MIB_TARGET))
    return {"op": op, "size": size, "backend": backend, "runs": len(t.times),
            "median_s": round(t.median, 4), "times_s": [round(x, 4) for x in t.times],
            "peak_mib": peak, "target_s": target, "target_source": source,
            "peak_target_mib": PEAK_MIB_TARGET, "met": met, "floors": floors_,
            "timed_out": t.timed_out,
            "note": t.note, "detail": detail or {},
            # The machine is shared: the 1-minute load average when the row was taken says
            # how much other work competed for the 2 cores.
            "load1": round(os.getloadavg()[0], 2)}


def scenario(chain: Chain, chain_file: Path, backend: Backend, runs: int,
             only: set[str] | None, work: Path, serve_config: ServeConfig | None = None
             ) -> Outcome:
    """Load the chain into a fresh registry and measure every operation (see the docs)."""
    out = Outcome()
    size, bname = chain.size, backend.name
    env, g = backend.env(), chain.graph()
    picks = chain.picks
    files = work / f"out-{bname}-{size}"
    files.mkdir(parents=True, exist_ok=True)
    want = (lambda op: True) if not only else (lambda op: op in only)

    def add(op: str, t: Timing, fl: list[dict[str, Any]], detail: dict[str, Any] | None = None
            ) -> dict[str, Any]:
        row = result_row(op, size, bname, t, fl, detail)
        out.results.append(row)
        floor_text = ", ".join(f"{f['name']} x{f['ratio']}" for f in fl)
        log(f"  {op:<15} median {row['median_s']:.3f} s  peak {row['peak_mib']} MiB  "
            f"({floor_text}) {t.note}")
        return row

    @contextmanager
    def step(op: str) -> Iterator[None]:
        # One failing operation (a chainml bug, a broken invariant) is recorded and the
        # rest still run: a 25-minute run should not be lost to one command.
        try:
            yield
        except Exception as e:  # noqa: BLE001 - recorded and reported, never swallowed
            log(f"  {op}: FAILED: {type(e).__name__}: {e}")
            out.errors.append({"size": size, "backend": bname, "op": op,
                               "error": f"{type(e).__name__}: {e}"[:3000]})

    def chainml(*args: str) -> Callable[[int], list[str]]:
        return lambda _i: [CHAINML, *args]

    # -- start-up
    if want("help"):
        with step("help"):
            t = measure(chainml("--help"), runs, cwd=work, env=env)
            pyfloor = measure(lambda _i: [sys.executable, "-c", "pass"], runs, cwd=work, env=env)
            add("help", t, [_floor("python -c pass (process)", pyfloor, t.median)])

    # -- load: apply of the whole chain on a fresh registry (each run needs a fresh one)
    apply_ok = has_command("apply")
    if apply_ok:
        n_apply = 1 if size >= APPLY_ONCE_FROM else runs + 1  # +1: warm-up
        samples: list[Sample] = []
        for i in range(n_apply):
            backend.fresh()
            log(f"  apply {chain_file.name} on a fresh {bname} registry ({i + 1}/{n_apply})")
            samples.append(run_once([CHAINML, "apply", str(chain_file)], cwd=backend.cwd,
                                    env=env, timeout=7200))
        timed = samples if n_apply == 1 else samples[1:]
        t = Timing([s.seconds for s in timed], max(s.maxrss_kib for s in timed),
                   "1 run on a fresh registry" if n_apply == 1 else
                   "a fresh registry for every run")
        if want("apply"):
            with step("apply"):
                db = backend.sql()
                names = chain.names()
                index = {nm: i for i, nm in enumerate(names)}
                edges = [(index[u], index[d]) for u, d in chain.edges()]
                fl = time_call(floors.bulk_insert(db, names, [n.kind for n in chain.nodes], edges),
                               1 if size >= APPLY_ONCE_FROM else runs)
                db.close()
                add("apply", t, [_floor("bulk INSERT nodes+versions+edges", fl, t.median)])
    else:
        backend.fresh()
        log(f"  chainml apply is not available: loading {size} nodes through Registry.register")
        secs = load_via_api(backend, chain)
        out.setup.append({"what": "load through Registry.register (apply missing)",
                          "seconds": round(secs, 2), "size": size, "backend": bname})

    db = backend.sql()
    ids = floors.node_ids(db)
    if len(ids) != size:
        raise BenchError(f"the registry holds {len(ids)} nodes, expected {size}")

    if apply_ok and want("apply-noop"):
        with step("apply-noop"):
            if size >= APPLY_ONCE_FROM:
                try:
                    once = run_once([CHAINML, "apply", str(chain_file)], cwd=backend.cwd,
                                    env=env, timeout=OP_TIMEOUT)
                    t = Timing([once.seconds], once.maxrss_kib, "1 run, no warm-up")
                except TimedOut as e:
                    t = Timing([e.seconds], 0, f"killed after {e.seconds:.0f} s: did not finish",
                               True)
            else:
                t = measure(chainml("apply", str(chain_file)), runs, cwd=backend.cwd, env=env)
            fl = time_call(floors.sql_export(db), runs)
            add("apply-noop", t, [_floor("SELECT nodes+edges", fl, t.median)])

    # -- setup: every testable node passes
    log("  recording a passing test for every testable node (setup, not measured)")
    rec = record_tests(backend, chain)
    rec.update(size=size, backend=bname)
    out.setup.append(rec)
    log(f"  ... {rec['nodes']} nodes in {rec['seconds']} s ({rec['method']})")

    testable = {n.name for n in chain.nodes if NEEDS_TESTS[n.kind]}
    # -- setup for the env operations: ENV_NAME serves every node at its current version,
    # and a release of RELEASE_SIZE testable leaves is registered and tested
    env_ready = False
    release: list[str] = []
    # The server operations run last, on that registry too (prod serving every node).
    serving = any(want(op) for op in (*SERVE_OPERATIONS, *INGEST_OPERATIONS))
    if serving or any(want(op) for op in ENV_OPERATIONS):
        with step("env-setup"):
            log(f"  creating {ENV_NAME} and deploying every node there (setup, not measured)")
            dep = deploy_everything(backend)
            dep.update(size=size, backend=bname)
            out.setup.append(dep)
            log(f"  ... {dep['nodes']} nodes in {dep['seconds']} s ({dep['method']})")
            served = _served_count(backend, files / "env-list.json")
            out.checks.append({"size": size, "backend": bname,
                               "what": f"{ENV_NAME} serves every node (env list)",
                               "chainml": served, "networkx": size, "equal": served == size})
            if served != size:
                raise BenchError(f"env list says {ENV_NAME} serves {served} nodes, "
                                 f"expected {size}")
            if size <= ENV_STATUS_CHECK_MAX:
                target = files / "env-status-setup.json"
                run_once([CHAINML, "status", "--env", ENV_NAME, "--json"], cwd=backend.cwd,
                         env=env, stdout=target, timeout=OP_TIMEOUT)
                served_entries = json.loads(target.read_text())
                env_verified = {e["name"] for e in served_entries if e["status"] == "verified"}
                out.checks.append({"size": size, "backend": bname,
                                   "what": f"all verified in {ENV_NAME} after setup",
                                   "chainml": len(env_verified), "networkx": len(testable),
                                   "equal": env_verified == testable})
                if env_verified != testable:
                    raise BenchError(f"status --env {ENV_NAME}: {len(env_verified)} of "
                                     f"{len(testable)} testable nodes verified after setup")
            release = release_nodes(chain, g)
            env_ready = True
    backend.settle()

    # -- impact
    for op, pick in (("impact-hub", picks["hub"]), ("impact-typical", picks["typical"])):
        if not want(op):
            continue
        with step(op):
            target = files / f"{op}.json"
            t = measure(chainml("impact", pick, "--json"), runs, cwd=backend.cwd, env=env,
                        stdout=target)
            got = {e["name"] for e in json.loads(target.read_text())["impacted"]}
            expected = nx.descendants(g, pick)
            out.checks.append({"size": size, "backend": bname, "what": op, "node": pick,
                               "chainml": len(got), "networkx": len(expected),
                               "equal": got == expected})
            fl = [_floor("recursive CTE", time_call(floors.cte_descendants(db, ids[pick]), runs),
                         t.median),
                  _floor("networkx.descendants", time_call(floors.nx_descendants(g, pick), runs),
                         t.median)]
            add(op, t, fl, {"node": pick, "impacted": len(got)})
            if got != expected:
                raise BenchError(f"impact of {pick} selected {len(got)} nodes, "
                                 f"networkx.descendants {len(expected)}; they differ")

    status_floor = floors.sql_status(db)

    # -- status with everything verified
    if want("status"):
        with step("status"):
            target = files / "status.json"
            t = measure(chainml("status", "--json"), runs, cwd=backend.cwd, env=env,
                        stdout=target)
            entries = json.loads(target.read_text())
            verified = sum(1 for e in entries if e["status"] == "verified")
            out.checks.append({"size": size, "backend": bname,
                               "what": "all verified after setup", "chainml": verified,
                               "networkx": len(testable), "equal": verified == len(testable)})
            add("status", t, [_floor("SELECT testable nodes + open marks",
                                     time_call(status_floor, runs), t.median)],
                {"entries": len(entries), "verified": verified})
            if verified != len(testable):
                raise BenchError(f"after recording tests {verified} of {len(testable)} "
                                 "testable nodes are verified")

    # -- graph of a ~500-node neighbourhood
    if want("graph-focus"):
        with step("graph-focus"):
            t = measure(chainml("graph", "--focus", picks["focus"], "--depth", "3",
                                "--format", "dot", "-o", str(files / "focus.dot")),
                        runs, cwd=backend.cwd, env=env)
            fl = time_call(floors.cte_neighbourhood(db, ids[picks["focus"]], 3), runs)
            add("graph-focus", t, [_floor("2 depth-3 CTEs + rows", fl, t.median)],
                {"node": picks["focus"], "nodes": chain.stats.get("focus_neighbourhood")})

    # -- export
    if want("export"):
        with step("export"):
            if has_command("export"):
                t = measure(chainml("export", "-o", str(files / "export.yaml")), runs,
                            cwd=backend.cwd, env=env)
                fl = time_call(floors.sql_export(db), runs)
                add("export", t, [_floor("SELECT nodes+edges", fl, t.median)],
                    {"bytes": (files / "export.yaml").stat().st_size})
            else:
                log("  chainml export is not available: skipped")

    # -- a new version of the hub: ~80% of the registry marked
    hub = picks["hub"]
    hub_kind = next(n.kind for n in chain.nodes if n.name == hub)
    if (want("register-hub") or want("check") or want("status-dirty") or want("test-record")
            or env_ready or serving):  # the env and serve operations ask about its new version
        with step("register-hub"):
            target = files / "register.json"
            t = measure(lambda i: [CHAINML, "register", hub_kind, hub, "--version",
                                   f"bench-{i}", "--json"],
                        runs, cwd=backend.cwd, env=env, stdout=target)
            marked = json.loads(target.read_text()).get("marked")
            fl = time_call(floors.cte_register(db, ids[hub]), runs)
            if want("register-hub"):
                add("register-hub", t,
                    [_floor("CTE + INSERT marks (rolled back)", fl, t.median)],
                    {"node": hub, "marked": marked})

    # -- the CI gate with thousands failing (exit 1 expected)
    if want("check"):
        with step("check"):
            t = measure(chainml("check"), runs, cwd=backend.cwd, env=env,
                        stdout=files / "check.txt", expect=(1,))
            add("check", t, [_floor("SELECT testable nodes + open marks",
                                    time_call(status_floor, runs), t.median)])

    if want("status-dirty"):
        with step("status-dirty"):
            target = files / "status-dirty.json"
            t = measure(chainml("status", "--json"), runs, cwd=backend.cwd, env=env,
                        stdout=target)
            entries = json.loads(target.read_text())
            failing = sum(1 for e in entries if e["status"] != "verified")
            add("status-dirty", t, [_floor("SELECT testable nodes + open marks",
                                           time_call(status_floor, runs), t.median)],
                {"entries": len(entries), "not_verified": failing})

    # -- recording one test (closes that node's marks)
    record_tested = False  # then picks["record"] has a run with the hub's new version
    if want("test-record"):
        with step("test-record"):
            node = picks["record"]
            t = measure(chainml("test", "record", node, "--passed"), runs, cwd=backend.cwd,
                        env=env)
            record_tested = True
            fl = time_call(floors.cte_lineage(db, ids[node]), runs)
            add("test-record", t, [_floor("lineage CTE", fl, t.median)],
                {"node": node, "ancestors": chain.stats.get("record_ancestors")})

    if env_ready:
        env_ready = False
        with step("env-setup"):
            _env_operations_setup(backend, hub, release, files, out)
            env_ready = True
    if env_ready:
        _env_operations(backend, chain, g, db, ids, release, record_tested, runs, files, out,
                        want, step, add)
    if serving:
        from bench import serve

        with step("serve"):
            serve.operations(backend, chain, db, ids, runs, files, out, want, step,
                             serve_config)
    db.close()
    return out


def _served_count(backend: Backend, target: Path) -> int | None:
    """How many nodes ``chainml env list --json`` says ENV_NAME serves."""
    run_once([CHAINML, "env", "list", "--json"], cwd=backend.cwd, env=backend.env(),
             stdout=target, timeout=OP_TIMEOUT)
    return next((int(e["deployed_nodes"]) for e in json.loads(target.read_text())
                 if e["name"] == ENV_NAME), None)


def _env_operations_setup(backend: Backend, hub: str, release: Sequence[str], files: Path,
                          out: Outcome) -> None:
    """Setup (not measured) after ``test-record``: the hub's new version deployed alone
    with --force, which leaves what it reaches skewed in ENV_NAME; then the release nodes
    retested on top of it, so that their release passes the guard."""
    size, bname = backend.size, backend.name
    log(f"  deploying the hub {hub} alone to {ENV_NAME} with --force (setup, not measured)")
    target = files / "env-hub-deploy.json"
    sample = run_once([CHAINML, "deploy", hub, "--env", ENV_NAME, "--force", "--reason",
                       "bench", "--json"], cwd=backend.cwd, env=backend.env(), stdout=target,
                      timeout=7200)
    got = json.loads(target.read_text())
    if not got.get("recorded"):
        raise BenchError(f"deploy {hub} --force recorded nothing: {str(got)[:500]}")
    out.setup.append({"what": f"deploy the hub alone to {ENV_NAME} (--force)",
                      "method": "chainml deploy HUB --force --reason bench --json",
                      "seconds": round(sample.seconds, 2),
                      "peak_mib": round(sample.maxrss_kib / 1024, 1),
                      "left_broken": len(got.get("problems", [])),
                      "size": size, "backend": bname})
    log(f"  ... {sample.seconds:.1f} s, peak {sample.maxrss_kib / 1024:.0f} MiB, "
        f"{len(got.get('problems', []))} nodes left failing")


def _env_operations(backend: Backend, chain: Chain, g: nx.DiGraph[str], db: floors.Sql,
                    ids: dict[str, int], release: Sequence[str], record_tested: bool,
                    runs: int, files: Path, out: Outcome, want: Callable[[str], bool],
                    step: Callable[[str], Any], add: Callable[..., dict[str, Any]]) -> None:
    """The env operations (docs/performance.md): ENV_NAME serves every node, the hub's new
    version alone (forced), and RELEASE_SIZE tested leaves wait for their release."""
    size, bname, env, cwd = backend.size, backend.name, backend.env(), backend.cwd
    hub, node = chain.picks["hub"], chain.picks["record"]
    env_id = floors.env_id(db, ENV_NAME)
    testable = {n.name for n in chain.nodes if NEEDS_TESTS[n.kind]}

    def check_row(what: str, chainml_: Any, expected: Any, equal: bool, **extra: Any) -> None:
        out.checks.append({"size": size, "backend": bname, "what": what, **extra,
                           "chainml": chainml_, "networkx": expected, "equal": equal})

    def cmd(*args: str) -> Callable[[int], list[str]]:
        return lambda _i: [CHAINML, *args]

    # -- the deployment gate: what the hub reaches fails (exit 1 expected)
    if want("env-check"):
        with step("env-check"):
            t = measure(cmd("check", "--env", ENV_NAME), runs, cwd=cwd, env=env,
                        stdout=files / "env-check.txt", expect=(1,))
            # The sanity check reads the JSON report (one more, untimed, run).
            target = files / "env-check.json"
            run_once([CHAINML, "check", "--env", ENV_NAME, "--format", "json"], cwd=cwd,
                     env=env, stdout=target, expect=(1,), timeout=OP_TIMEOUT)
            got = json.loads(target.read_text())
            failing = {e["name"] for e in got["failing"]}
            # Everything deployed, so: the testable nodes the hub reaches, and the hub
            # itself when it needs tests (its new version has no run); not picks["record"]
            # once test-record ran: its run saw the hub's new version, which prod now serves.
            expected = (nx.descendants(g, hub) | {hub}) & testable
            if record_tested:
                expected.discard(node)
            check_row(f"check --env {ENV_NAME} fails what the hub reaches", len(failing),
                      len(expected), failing == expected, node=hub)
            fl = time_call(floors.sql_env_check(db, env_id), runs)
            add("env-check", t,
                [_floor("SELECT latest deployments + testable nodes + open marks", fl,
                        t.median)],
                {"checked": got.get("checked"), "failing": len(failing)})

    # -- one deep node's environment status
    if want("env-status-node"):
        with step("env-status-node"):
            target = files / "env-status-node.json"
            t = measure(cmd("status", "--env", ENV_NAME, node, "--json"), runs, cwd=cwd,
                        env=env, stdout=target)
            entries = json.loads(target.read_text())
            status = entries[0]["status"] if len(entries) == 1 else None
            expected_status = "verified" if record_tested else "skewed"
            check_row(f"status --env {ENV_NAME} of the test-record node", status,
                      expected_status, status == expected_status, node=node)
            fl = time_call(floors.cte_env_lineage(db, env_id, ids[node]), runs)
            add("env-status-node", t,
                [_floor("lineage CTE + latest deployments of it", fl, t.median)],
                {"node": node, "status": status})

    # -- setup: the registry moves ahead of prod by RELEASE_SIZE tested leaves
    rel = new_release_versions(backend, chain, release)
    rel.update(size=size, backend=bname)
    out.setup.append(rel)
    log(f"  ... {rel['what']} in {rel['seconds']} s")

    # -- the gate again, now that those leaves are served at other than their current
    # versions: they are judged by their serving lineage (no target; see the docs)
    if want("env-check-behind"):
        with step("env-check-behind"):
            t = measure(cmd("check", "--env", ENV_NAME), runs, cwd=cwd, env=env,
                        stdout=files / "env-check-behind.txt", expect=(1,))
            fl = time_call(floors.sql_env_check(db, env_id), runs)
            add("env-check-behind", t,
                [_floor("SELECT latest deployments + testable nodes + open marks", fl,
                        t.median)], {"behind": len(release)})

    # -- the plan to current: the release, nothing else
    if want("env-plan"):
        with step("env-plan"):
            target = files / "env-plan.json"
            t = measure(cmd("plan", "--env", ENV_NAME, "--to", "current", "--json"), runs,
                        cwd=cwd, env=env, stdout=target)
            got = json.loads(target.read_text())
            planned = {n["node"] for n in got["nodes"]}
            check_row(f"plan --env {ENV_NAME} --to current is the release", len(planned),
                      len(release), bool(got.get("ok")) and planned == set(release))
            fl = time_call(floors.sql_env_plan(db, env_id), runs)
            add("env-plan", t,
                [_floor("SELECT latest deployments + current versions", fl, t.median)],
                {"planned": len(planned), "ok": got.get("ok")})

    # -- the release itself: recorded again on every run
    if want("env-deploy"):
        with step("env-deploy"):
            target = files / "env-deploy.json"
            t = measure(cmd("deploy", *release, "--env", ENV_NAME, "--json"), runs, cwd=cwd,
                        env=env, stdout=target)
            got = json.loads(target.read_text())
            deployed = {n["node"] for n in got["nodes"]}
            check_row(f"deploy of the release to {ENV_NAME} is recorded", len(deployed),
                      len(release), bool(got.get("recorded")) and deployed == set(release))
            versions = dict(db.rows(
                "SELECT n.id, n.current_version_id FROM node n WHERE n.name IN ("
                + ",".join("?" * len(release)) + ")", list(release)))
            db.rollback()
            fl = time_call(floors.insert_deployments(
                db, env_id, [(ids[nm], versions[ids[nm]]) for nm in release]), runs)
            add("env-deploy", t,
                [_floor(f"INSERT {len(release)} deployments (rolled back)", fl, t.median)],
                {"nodes": len(release), "checked": len(got.get("checked", []))})
