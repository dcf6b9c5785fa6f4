"""Crashes: ``kill -9`` a large ``chainml apply`` and a registration with a large impact set
at seeded random moments, many times. After every kill the registry is exactly what it
was before the command or exactly what an uninterrupted run leaves (compared through
SQL: every node with its kind and current version, and the row count of every table,
open marks and the write-lock counter included), the SQLite file passes
``PRAGMA integrity_check``, and ``chainml check`` still answers with 0 or 1.

The default run kills each command 8 times on SQLite; ``pytest -m slow
tests/test_crash.py`` kills each 50 times on SQLite and on PostgreSQL (whose copies are
databases cloned from a template database).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chainml.cli import cli
from chainml.db.engine import parse_url
from chainml.registry import Registry
from tests.conftest import POSTGRES_URL, _unreachable

SEED = int(os.environ.get("CHAINML_CRASH_SEED", "4242"))
CHAINML = str(Path(sys.executable).with_name("chainml"))
FEATURES = 20  # hub -> 20 features -> the models
BASE_MODELS = 980  # in the registry before the big apply
NEW_MODELS = 4000  # added by the big apply (with hub moved to version 2)
TABLES = ["node", "version", "version_input", "edge", "test_run", "waiver", "event"]


def chain_yaml(models: int, hub_version: str) -> str:
    lines = ["chainml: 1", "nodes:", f"  - {{name: hub, kind: source, version: '{hub_version}'}}"]
    lines += [f"  - {{name: hub_f{i}, kind: feature, version: '1', inputs: [hub]}}"
              for i in range(FEATURES)]
    lines += [f"  - {{name: hub_m{j}, kind: model, version: '1', inputs: [hub_f{j % FEATURES}]}}"
              for j in range(models)]
    return "\n".join(lines) + "\n"


def dump(url: str) -> tuple[Any, ...]:
    """What a crash must not leave half-done: nodes with kind and current version, the
    size of every table, open and closed marks, and the write-lock counter."""
    engine = create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            nodes = sorted(tuple(r) for r in conn.execute(text(
                "SELECT n.name, n.kind, v.label FROM node n "
                "LEFT JOIN version v ON v.id = n.current_version_id")))
            counts = tuple(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar()
                           for t in TABLES)
            marks = tuple(conn.execute(text(
                f"SELECT COUNT(*) FROM retest_mark WHERE closed_at IS {state}")).scalar()
                for state in ("NULL", "NOT NULL"))
            lock = conn.execute(text("SELECT counter FROM write_lock")).scalar()
            return (tuple(nodes), counts, marks, lock)
    finally:
        engine.dispose()


def check_answers(url: str, real_process: bool) -> int:
    """``chainml check`` on the registry: exit 0 or 1, one answer, no traceback."""
    env = {"CHAINML_DATABASE_URL": url, "CHAINML_DEBUG": None}
    if real_process:
        done = subprocess.run([CHAINML, "check"], env={**os.environ, **{
            k: v for k, v in env.items() if v is not None}}, capture_output=True, text=True,
            timeout=120)
        output, code = done.stdout + done.stderr, done.returncode
    else:
        result = CliRunner().invoke(cli, ["check"], env=env, prog_name="chainml")
        assert result.exception is None or isinstance(result.exception, SystemExit), \
            result.exception
        output, code = result.output, result.exit_code
    assert code in (0, 1), output
    assert "Traceback" not in output and "Internal error" not in output, output
    return code


# ---- backends: a fresh copy of the "before" registry per kill ----------------------------


class SqliteCopies:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.template = tmp / "template" / "registry.db"
        self.template.parent.mkdir()
        self.n = 0
        self.probes: dict[str, sqlite3.Connection] = {}

    def template_url(self) -> str:
        return f"sqlite:///{self.template}"

    def fresh(self) -> str:
        self.n += 1
        target = self.tmp / f"copy{self.n}" / "registry.db"
        target.parent.mkdir()
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def writer_holds_lock(self, url: str) -> bool:
        """Whether some writer is inside its write transaction right now (a probe that
        takes and drops the lock at once, without waiting)."""
        if url not in self.probes:
            self.probes[url] = sqlite3.connect(make_url(url).database or "", timeout=0,
                                               isolation_level=None)
        try:
            self.probes[url].execute("BEGIN IMMEDIATE")
            self.probes[url].execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True

    def verify(self, url: str) -> None:
        engine = create_engine(parse_url(url))
        try:
            with engine.connect() as conn:
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        finally:
            engine.dispose()

    def discard(self, url: str) -> None:
        probe = self.probes.pop(url, None)
        if probe is not None:
            probe.close()
        shutil.rmtree(Path(make_url(url).database or "").parent, ignore_errors=True)

    def close(self) -> None:
        for probe in self.probes.values():
            probe.close()


class PostgresCopies:
    """Databases cloned from a template database (CREATE DATABASE ... TEMPLATE)."""

    def __init__(self) -> None:
        self.prefix = f"crash_{uuid.uuid4().hex[:10]}"
        self.admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        self.template = f"{self.prefix}_tmpl"
        self.made: list[str] = []
        self.probes: dict[str, psycopg.Connection[Any]] = {}
        try:
            self._sql(f"CREATE DATABASE {self.template}")
        except Exception as e:  # noqa: BLE001 - any failure to reach the server
            self.admin.dispose()
            _unreachable("postgresql", e)
        self.made.append(self.template)

    def _sql(self, sql: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(sql))

    def _url(self, db: str) -> str:
        return make_url(POSTGRES_URL).set(database=db).render_as_string(hide_password=False)

    def template_url(self) -> str:
        return self._url(self.template)

    def fresh(self) -> str:
        db = f"{self.prefix}_{len(self.made)}"
        self._sql(f"CREATE DATABASE {db} TEMPLATE {self.template}")
        self.made.append(db)
        return self._url(db)

    def writer_holds_lock(self, url: str) -> bool:
        if url not in self.probes:
            self.probes[url] = psycopg.connect(make_url(url).set(
                drivername="postgresql").render_as_string(hide_password=False))
        conn = self.probes[url]
        try:
            conn.execute("SELECT counter FROM write_lock FOR UPDATE NOWAIT")
            return False
        except psycopg.errors.LockNotAvailable:
            return True
        finally:
            conn.rollback()

    def verify(self, url: str) -> None:
        pass

    def discard(self, url: str) -> None:
        probe = self.probes.pop(url, None)
        if probe is not None:
            probe.close()
        db = make_url(url).database
        self._sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.made.remove(db)

    def close(self) -> None:
        for probe in self.probes.values():
            probe.close()
        for db in reversed(self.made):
            self._sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        self.admin.dispose()


Copies = SqliteCopies | PostgresCopies


@pytest.fixture(params=["sqlite", "postgresql"])
def copies(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Copies]:
    made: Copies = SqliteCopies(tmp_path) if request.param == "sqlite" else PostgresCopies()
    try:
        yield made
    finally:
        made.close()


# ---- the kill loop ---------------------------------------------------------------------------


@dataclass
class Outcome:
    before: int = 0
    after: int = 0
    inside: int = 0  # kills that landed while the command held the write lock
    delays: list[float] = field(default_factory=list)
    seconds: float = 0.0
    window: tuple[float, float] = (0.0, 0.0)

    def summary(self, what: str) -> str:
        return (f"{what}: {len(self.delays)} kills over a {self.seconds:.1f}s run (write "
                f"transaction {self.window[0]:.2f}-{self.window[1]:.2f}s): {self.inside} inside "
                f"it; {self.before} left 'before', {self.after} 'after'")


def run_command(url: str, args: list[str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CHAINML_DATABASE_URL": url, "CHAINML_ACTOR": "crash"}
    env.pop("CHAINML_DEBUG", None)
    return subprocess.Popen([CHAINML, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def calibrate(copies: Copies, args: list[str]) -> tuple[tuple[Any, ...], float,
                                                       tuple[float, float]]:
    """One uninterrupted run on a copy: the "after" state, the run's duration and when
    (from the start) the command held the write lock."""
    url = copies.fresh()
    started = time.monotonic()
    proc = run_command(url, args)
    held: list[float] = []
    while proc.poll() is None:
        if copies.writer_holds_lock(url):
            held.append(time.monotonic() - started)
        time.sleep(0.005)
    seconds = time.monotonic() - started
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    after = dump(url)
    copies.discard(url)
    assert held, "never saw the command inside its write transaction"
    return after, seconds, (held[0], held[-1])


def kill_loop(copies: Copies, args: list[str], kills: int,
              prepare: Callable[[str], None]) -> Outcome:
    """Build the "before" registry, learn "after" and the timing from one uninterrupted
    run, then kill the command ``kills`` times at seeded, stratified moments: three in
    four inside the write transaction (once the command is seen holding the write lock,
    after a stratified share of the transaction's measured length), the rest at a
    stratified delay from the start of the run (some after its end)."""
    prepare(copies.template_url())
    before = dump(copies.template_url())
    after, seconds, (start, end) = calibrate(copies, args)
    assert after != before
    rng = random.Random(SEED)
    out = Outcome(seconds=seconds, window=(start, end))
    inside = kills * 3 // 4
    for i in range(kills):
        url = copies.fresh()
        proc = run_command(url, args)
        if i < inside:
            while proc.poll() is None and not copies.writer_holds_lock(url):
                time.sleep(0.002)
            # The probe sees the lock a little after it is taken: aim at 80% of the length.
            delay = (i + rng.random()) / inside * (end - start) * 0.8
        else:
            delay = (i - inside + rng.random()) / (kills - inside) * seconds * 1.1
        out.delays.append(round(delay, 3))
        time.sleep(delay)
        holding = copies.writer_holds_lock(url)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            out.inside += holding
        proc.wait(timeout=60)
        if proc.stderr is not None:
            proc.stderr.close()
        state = dump(url)
        assert state in (before, after), f"kill {i} at {delay:.2f}s left a third state"
        if state == before:
            out.before += 1
        else:
            out.after += 1
        copies.verify(url)
        check_answers(url, real_process=i == kills - 1)
        copies.discard(url)
    print(out.summary(args[0]))
    return out


def prepare_apply(url: str) -> None:
    with Registry.init(url=url, actor="setup") as reg:
        reg.apply_text(chain_yaml(BASE_MODELS, "1"), "base.yaml")
        for j in range(0, BASE_MODELS, 97):
            reg.record_test(f"hub_m{j}", passed=True)


def crash_apply(copies: Copies, tmp: Path, kills: int) -> Outcome:
    big = tmp / "big.yaml"
    big.write_text(chain_yaml(BASE_MODELS + NEW_MODELS, "2"))
    assert big.read_text().count("- {name:") >= 5000
    return kill_loop(copies, ["apply", str(big)], kills, prepare_apply)


def prepare_register(url: str) -> None:
    prepare_apply(url)
    with Registry(url, actor="setup") as reg:
        reg.apply_text(chain_yaml(BASE_MODELS + NEW_MODELS, "2"), "big.yaml")


def crash_register(copies: Copies, kills: int) -> Outcome:
    return kill_loop(copies, ["register", "source", "hub", "--version", "3"], kills,
                     prepare_register)


def test_kill_apply(tmp_path: Path) -> None:
    copies = SqliteCopies(tmp_path)
    out = crash_apply(copies, tmp_path, 8)
    assert out.before + out.after == 8


def test_kill_register_with_large_impact(tmp_path: Path) -> None:
    copies = SqliteCopies(tmp_path)
    out = crash_register(copies, 8)
    assert out.before + out.after == 8


@pytest.mark.slow
def test_kill_apply_many_times(copies: Copies, tmp_path: Path) -> None:
    out = crash_apply(copies, tmp_path, 50)
    assert out.inside >= 25  # most kills landed inside the write transaction
    assert out.before + out.after == 50


@pytest.mark.slow
def test_kill_register_many_times(copies: Copies) -> None:
    out = crash_register(copies, 50)
    assert out.before + out.after == 50
