"""A server process keeps its database connections: its engine's pool holds one per
request thread, opened before the first request, and requests reuse them rather than
connecting again (a new PostgreSQL session starts with cold caches, and psycopg prepares
a statement only on a connection's fifth run of it)."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from chainml.registry import Registry
from chainml.server import main
from chainml.server.app import REQUEST_THREADS, create_app
from tests.chains import build_example


def _counting(engine: Any) -> list[int]:
    opened = [0]

    @event.listens_for(engine, "connect")
    def _connect(*_: Any) -> None:
        opened[0] += 1

    return opened


def test_a_server_opens_its_connections_at_start_and_keeps_them(
        registry: Registry) -> None:
    build_example(registry)
    url = registry.engine.url.render_as_string(hide_password=False)
    # As many as the server keeps (main.py): more than the threads that may hold one at
    # once here (a request, the webhook worker, the kept sets' refresh).
    reg = Registry(url, pool_size=REQUEST_THREADS)
    engine = reg.engine
    opened = _counting(engine)
    already = engine.pool.checkedin()  # type: ignore[attr-defined]
    server_db = engine.dialect.name != "sqlite"
    with TestClient(create_app(reg)) as client:
        at_start = opened[0]
        for _ in range(3):
            for path in ("/nodes/ranker", "/api/v1/nodes/ranker", "/api/v1/status", "/"):
                assert client.get(path).status_code == 200
        if server_db:
            assert engine.pool.checkedin() == REQUEST_THREADS  # type: ignore[attr-defined]
            assert at_start == REQUEST_THREADS - already  # the schema check opened one
            assert opened[0] == at_start  # no request connected again
    engine.dispose()


def test_opening_the_pool_of_an_embedded_registry_opens_nothing(tmp_path: Any) -> None:
    reg = Registry.init(tmp_path)
    opened = _counting(reg.engine)
    reg.open_connections(8)
    assert opened[0] == 0


def test_the_served_application_pools_a_connection_per_request_thread(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    url = registry.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CHAINML_DATABASE_URL", url)
    thresholds = gc.get_threshold()
    engine = main.app_from_env().state.registry.engine
    try:
        if engine.dialect.name != "sqlite":
            assert engine.pool.size() == REQUEST_THREADS
    finally:
        engine.dispose()
        # A worker's collector settings, left to the tests that come after (one of them
        # checks that app_from_env changes them) would make them depend on the order.
        gc.unfreeze()
        gc.set_threshold(*thresholds)
