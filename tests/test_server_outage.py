"""A registry that goes away: the server answers 503 with one sentence (no traceback,
no credential), keeps its probes honest, writes nothing, and answers again by itself
when the database comes back. The database "goes away" behind a TCP forwarder the test
stops and starts (tests/tcpproxy.py), on PostgreSQL and MariaDB."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from chainml.registry import Registry
from chainml.server.app import create_app
from tests.chains import build_example
from tests.tcpproxy import Proxy

PASSWORD = "pw-never-shown-7731"


@pytest.fixture
def through_proxy(database_url: str) -> Iterator[tuple[str, Proxy]]:
    reg = Registry.init(url=database_url)
    build_example(reg)
    reg.close()
    url = make_url(database_url)
    proxy = Proxy(url.host or "127.0.0.1", url.port or (5432 if "postgres" in url.drivername
                                                         else 3306))
    # PostgreSQL's trust authentication ignores a password: it is only there to be hidden
    # (MariaDB's root has none and refuses one).
    hidden = url.set(host="127.0.0.1", port=proxy.port,
                     password=PASSWORD if url.drivername.startswith("postgresql") else None)
    try:
        yield hidden.render_as_string(hide_password=False), proxy
    finally:
        proxy.close()


@pytest.mark.parametrize("database_url", ["postgresql", "mysql"], indirect=True)
def test_the_server_answers_503_while_the_registry_is_away_and_recovers(
        through_proxy: tuple[str, Proxy], caplog: pytest.LogCaptureFixture) -> None:
    url, proxy = through_proxy
    caplog.set_level(logging.DEBUG)
    reg = Registry(url)
    token = reg.token_create("ci", scope="write").token
    events = len(reg.log())
    with TestClient(create_app(reg)) as c:
        assert c.get("/api/v1/nodes/ranker").status_code == 200
        proxy.stop()
        answers = [c.get("/api/v1/nodes/ranker"), c.get("/api/v1/check"),
                   c.post("/api/v1/runs", json={"node": "ranker", "passed": True},
                          headers={"Authorization": f"Bearer {token}"}),
                   c.get("/readyz")]
        for answer in answers:
            assert answer.status_code == 503, answer.text
            body = answer.json()
            assert set(body) == {"error"} and body["error"].count("\n") == 0
            assert "Traceback" not in answer.text and PASSWORD not in answer.text
        assert c.get("/healthz").status_code == 200  # the process is up
        proxy.start()
        assert c.get("/api/v1/nodes/ranker").status_code == 200
        assert c.get("/readyz").status_code == 200
        assert c.get("/api/v1/log").headers["X-Total-Count"] == str(events)  # nothing written
    reg.close()
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_server_started_while_the_registry_is_away_waits_for_it_once(
        through_proxy: tuple[str, Proxy], monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening the pool fails, so what changes reach is not computed at start (it would
    wait out the connection timeout a second time); the first node page asks for it."""
    url, proxy = through_proxy
    reg = Registry(url)
    asked: list[int] = []
    reached = reg.reached

    def counted() -> Any:
        asked.append(1)
        return reached()

    monkeypatch.setattr(reg, "reached", counted)
    proxy.stop()
    with TestClient(create_app(reg)) as c:
        assert asked == []
        assert c.get("/nodes/ranker").status_code == 503
        proxy.start()
        assert c.get("/nodes/ranker").status_code == 200
    reg.close()
