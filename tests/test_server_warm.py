"""A server process warms up before its first request (``pages.warm_up``): it compiles
every template and renders one node's page once per kept connection, so that the first
requests of a new worker are not the ones that pay for it."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server import pages
from chainml.server.app import REQUEST_THREADS, create_app
from tests.chains import build_example


def _spy(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the node pages ``reg`` reads, in order."""
    read: list[str] = []
    real = reg.node_overview

    def overview(name: str, **kwargs: Any) -> Any:
        read.append(name)
        return real(name, **kwargs)

    monkeypatch.setattr(reg, "node_overview", overview)
    return read


def _compiled() -> set[str]:
    return {key[1] for key in (pages._TEMPLATES.cache or {})}


def test_a_new_server_renders_the_newest_node_before_its_first_request(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    build_example(registry)
    newest = registry.log(limit=1)[-1].node
    assert newest is not None
    assert pages._TEMPLATES.cache is not None
    pages._TEMPLATES.cache.clear()
    read = _spy(registry, monkeypatch)
    with TestClient(create_app(registry)) as client:
        assert read == [newest] * REQUEST_THREADS  # before any request
        assert _compiled() == set(pages._TEMPLATES.list_templates())
        assert client.get(f"/nodes/{newest}").status_code == 200
        assert len(read) == REQUEST_THREADS + 1


def test_the_warm_up_names_a_node_when_the_newest_event_names_none(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    build_example(registry)
    registry.env_create("prod")  # an event that names no node
    assert registry.log(limit=1)[-1].node is None
    read = _spy(registry, monkeypatch)
    pages.warm_up(create_app(registry), registry, 2)
    assert len(read) == 2 and read[0] == read[1] is not None


def test_an_empty_registry_compiles_the_templates_and_renders_no_page(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    assert pages._TEMPLATES.cache is not None
    pages._TEMPLATES.cache.clear()
    read = _spy(registry, monkeypatch)
    pages.warm_up(create_app(registry), registry, REQUEST_THREADS)
    assert read == []
    assert _compiled() == set(pages._TEMPLATES.list_templates())


def test_the_newest_node_may_be_retired(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    build_example(registry)
    newest = "old_clicks"
    registry.register(kind="source", name=newest, version="v1")
    registry.retire(newest, reason="gone")  # its page shows its history
    read = _spy(registry, monkeypatch)
    with TestClient(create_app(registry)) as client:
        assert read == [newest] * REQUEST_THREADS
        assert client.get("/healthz").status_code == 200
