"""The pages' cache (``chainml/server/cache.py``): a cold key is computed once however
many requests ask at the same time, failures are not kept, entries expire and the
oldest go first; the gate page follows every write."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import create_app
from chainml.server.cache import Cache
from tests.chains import build_example


def test_a_cold_key_is_computed_once_for_every_request_waiting_on_it() -> None:
    cache: Cache[int] = Cache()
    calls: list[int] = []
    started = threading.Event()

    def slow() -> int:
        started.set()
        time.sleep(0.3)
        calls.append(1)
        return 42

    got: list[int] = []
    threads = [threading.Thread(target=lambda: got.append(cache.get_or_compute("k", slow)))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert started.is_set()
    assert got == [42] * 8
    assert len(calls) == 1


def test_a_failure_is_not_kept() -> None:
    cache: Cache[int] = Cache()

    def broken() -> int:
        raise RuntimeError("registry away")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", broken)
    assert cache.get("k") is None
    assert cache.get_or_compute("k", lambda: 7) == 7


def test_entries_expire_and_the_oldest_go_first() -> None:
    cache: Cache[str] = Cache(size=2, ttl=0.2)
    for key in ("a", "b", "c"):
        cache.put(key, key.upper())
    assert cache.get("a") is None  # pushed out by c
    assert (cache.get("b"), cache.get("c")) == ("B", "C")
    time.sleep(0.3)
    assert cache.get("b") is None and cache.get("c") is None
    assert cache.get_or_compute("b", lambda: "again") == "again"


def test_the_gate_page_follows_every_write(registry: Registry) -> None:
    build_example(registry)
    for node in registry.status():
        registry.record_test(node.name, passed=True)
    with TestClient(create_app(registry)) as client:
        before = client.get("/").text
        assert "clicks_raw 2026-11-01 → 2026-12-01" not in before
        assert client.get("/").text == before  # from the cache, same answer
        registry.register(kind="source", name="clicks_raw", version="2026-12-01")
        after = client.get("/").text
        assert "clicks_raw 2026-11-01 → 2026-12-01 is untested by" in after
        for node in registry.status():
            registry.record_test(node.name, passed=True)
        assert "is untested by" not in client.get("/").text


def test_the_cache_is_kept_per_application(registry: Registry) -> None:
    build_example(registry)
    apps: list[Any] = [create_app(registry), create_app(registry)]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        assert a.get("/").status_code == b.get("/").status_code == 200
    assert apps[0].state.gates is not apps[1].state.gates
