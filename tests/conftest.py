"""Shared fixtures: a fresh registry per test on every backend.

Backends: SQLite always; PostgreSQL at CHAINML_TEST_POSTGRES_URL (default: the
local server); MariaDB at CHAINML_TEST_MYSQL_URL. Outside CI an unreachable
server is a skip with the reason; under CI=true it is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chainml.registry import Registry

POSTGRES_URL = os.environ.get(
    "CHAINML_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MYSQL_URL = os.environ.get("CHAINML_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = [b for b in os.environ.get("CHAINML_TEST_BACKENDS", "sqlite,postgresql,mysql").split(",")
            if b]


class Clock:
    """A controllable clock (naive UTC), so expiry and max-age tests need no sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)  # strictly increasing, like real writes
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def _unreachable(backend: str, error: Exception) -> None:
    msg = f"{backend} is not reachable ({type(error).__name__}: {str(error).splitlines()[0]})"
    if IN_CI:
        pytest.fail(msg + "; under CI=true every backend must run.")
    pytest.skip(msg)


def _server_url(backend: str) -> str:
    return POSTGRES_URL if backend == "postgresql" else MYSQL_URL


def create_database(backend: str) -> tuple[str, str]:
    """A new empty PostgreSQL schema or MariaDB database: (URL, its name)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_server_url(backend), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f"CREATE SCHEMA {name}"))
            else:
                conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        _unreachable(backend, e)
    finally:
        admin.dispose()
    base = make_url(_server_url(backend))
    url = (base.update_query_dict({"options": f"-csearch_path={name}"})
           if backend == "postgresql" else base.set(database=name))
    return url.render_as_string(hide_password=False), name


def drop_database(backend: str, name: str) -> None:
    admin = create_engine(_server_url(backend), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if backend == "postgresql":
                conn.execute(text(f"DROP SCHEMA {name} CASCADE"))
            else:
                conn.execute(text(f"DROP DATABASE {name}"))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database of the requested backend, dropped afterwards."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.db'}"
        return
    url, name = create_database(backend)
    try:
        yield url
    finally:
        drop_database(backend, name)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test that asks for a database runs once per backend.
    if "database_url" in metafunc.fixturenames and not any(
        m.name == "parametrize" and "database_url" in m.args[0]
        for m in metafunc.definition.iter_markers()
    ):
        backends = getattr(metafunc.module, "BACKENDS", BACKENDS)
        metafunc.parametrize("database_url", backends, indirect=True)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(database_url: str, clock: Clock) -> Iterator[Registry]:
    reg = Registry.init(url=database_url, actor="tester", clock=clock)
    yield reg
    reg.close()


@pytest.fixture
def make_chain(registry: Registry) -> Callable[..., Registry]:
    """Register a chain from compact specs: (kind, name, version, [inputs])."""

    def build(*specs: tuple[str, str, str, list[str]]) -> Registry:
        for kind, name, version, inputs in specs:
            registry.register(kind=kind, name=name, version=version, inputs=inputs)
        return registry

    return build
