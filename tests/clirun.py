"""Helpers for driving the command line in-process (click's CliRunner) in tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, inspect, text

from chainml.cli import cli
from chainml.db.engine import parse_url
from chainml.registry import Registry, utcnow
from tests.chains import build_example
from tests.conftest import create_database, drop_database

ENV = "CHAINML_DATABASE_URL"
ACTOR = "cli-tester"


def run(url: str | None, *args: str) -> Result:
    """``chainml ARGS`` with CHAINML_DATABASE_URL=url (None: unset), as the user would type it."""
    env = {ENV: url, "CHAINML_ACTOR": ACTOR, "CHAINML_DEBUG": None}
    return CliRunner().invoke(cli, list(args), env=env, prog_name="chainml")


def ok(url: str | None, *args: str) -> Result:
    """Run and require exit code 0, with nothing on stderr."""
    result = run(url, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr == "", result.stderr
    return result


def ok_json(url: str | None, *args: str) -> Any:
    """Run with ``--json`` and return the parsed document."""
    return json.loads(ok(url, *args, "--json").stdout)


def error_line(result: Result) -> str:
    """The one ``Error: ...`` line of a failed command (stderr must hold nothing else but,
    for a click usage error, the ``Usage:``/``Try`` preamble)."""
    err = result.stderr
    assert "Traceback" not in result.output, result.output
    lines = err.splitlines()
    if lines and lines[0].startswith("Usage: "):
        assert len(lines) == 4 and lines[1].startswith("Try ") and lines[2] == "", err
        lines = lines[3:]
    assert len(lines) == 1, f"expected one error line, got {err!r}"
    assert lines[0].startswith("Error: "), err
    return lines[0]


def dump(url: str) -> str:
    """Everything a user can read: list, show of every node, log and status (all JSON)."""
    parts = [ok(url, "list", "--json").stdout]
    for node in json.loads(parts[0]):
        parts.append(ok(url, "show", node["name"], "--json").stdout)
    parts.append(ok(url, "log", "--json").stdout)
    parts.append(ok(url, "status", "--json").stdout)
    return "".join(parts)


def raw_dump(url: str, engine: Engine | None = None) -> str:
    """Every row of every table, in a stable order: 'byte for byte' at the SQL level."""
    own = engine is None
    engine = engine or create_engine(parse_url(url))
    try:
        with engine.connect() as conn:
            out = []
            for table in sorted(inspect(conn).get_table_names()):
                quoted = conn.dialect.identifier_preparer.quote(table)
                rows = conn.execute(text(f"SELECT * FROM {quoted}")).all()
                out.append(f"{table}: {sorted(repr(tuple(r)) for r in rows)}")
            return "\n".join(out)
    finally:
        if own:
            engine.dispose()


def example_registry(url: str, *, tested: bool = True,
                     clock: Callable[[], datetime] | None = None) -> str:
    """Initialise ``url`` with the docs' example chain through the Python API (real clock:
    the CLI writes with the real clock too, and runs are ordered by time)."""
    reg = Registry.init(url=url, actor="api", clock=clock)
    try:
        build_example(reg, tested=tested)
    finally:
        reg.close()
    return url


class PastClock:
    """A strictly increasing clock that starts ``days`` before now."""

    def __init__(self, days: float) -> None:
        self.now = utcnow() - timedelta(days=days)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


class Databases:
    """Empty databases that outlive one test (module-scoped fixtures), dropped on close."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.created: list[tuple[str, str]] = []

    def new(self, backend: str) -> str:
        """A URL to a new empty database (SQLite file, PostgreSQL schema, MariaDB database)."""
        if backend == "sqlite":
            return f"sqlite:///{self.folder / f't_{uuid.uuid4().hex[:12]}.db'}"
        url, name = create_database(backend)
        self.created.append((backend, name))
        return url

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, *exc: object) -> None:
        for backend, name in self.created:
            drop_database(backend, name)
