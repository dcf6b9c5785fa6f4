"""The pages' cache (``chainml/server/cache.py``): a cold key is computed once however
many requests ask at the same time, failures are not kept, entries expire and the
oldest go first; the gate page follows every write. ``Refreshed`` never makes a reader
wait, and the node pages that use it follow every write too."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import create_app
from chainml.server.cache import Cache, Refreshed
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


def _settled(kept: Refreshed[Any]) -> Any:
    """``kept``'s value once its refresh, if one runs, has ended."""
    for _ in range(200):
        if not kept._running:
            return kept.value()
        time.sleep(0.01)
    raise AssertionError("the refresh did not end")


def test_refreshed_hands_out_what_it_has_and_computes_once_at_a_time() -> None:
    release = threading.Event()
    calls: list[int] = []

    def slow() -> int:
        calls.append(1)
        release.wait(5)
        return len(calls)

    kept: Refreshed[int] = Refreshed(slow)
    assert kept.value() is None
    for _ in range(5):
        kept.refresh()  # asked again while computing: still one computation
    assert kept.value() is None  # nobody waits for it
    release.set()
    assert _settled(kept) == 1 and len(calls) == 1
    kept.refresh()
    assert _settled(kept) == 2


def _answering(*answers: Any) -> Callable[[], int]:
    """A computation giving ``answers`` in turn (raising those that are exceptions)."""
    left = list(answers)

    def next_answer() -> int:
        answer = left.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return int(answer)

    return next_answer


def test_refreshed_keeps_its_value_when_a_computation_fails() -> None:
    kept: Refreshed[int] = Refreshed(_answering(7, RuntimeError("registry gone"), 9))
    kept.refresh()
    assert _settled(kept) == 7
    kept.refresh()
    assert _settled(kept) == 7
    kept.refresh()
    assert _settled(kept) == 9


def test_compute_now_computes_in_the_calling_thread_and_keeps_a_failure_out() -> None:
    kept: Refreshed[int] = Refreshed(_answering(RuntimeError("registry gone"), 3))
    kept.compute_now()
    assert kept.value() is None  # failed: nothing yet, and no exception for the caller
    kept.compute_now()
    assert kept.value() == 3  # no waiting: computed before it returned


def test_a_server_knows_what_changes_reach_before_its_first_request(
        registry: Registry) -> None:
    build_example(registry)
    app = create_app(registry)
    with TestClient(app):
        assert app.state.reached.value() == registry.reached()


def test_node_pages_follow_every_write(registry: Registry) -> None:
    """A node page uses what its worker keeps of each environment's changes only at the
    generation it was read at: after a write it is the page of a fresh server."""
    build_example(registry)
    registry.env_create("prod")
    registry.deploy([n.name for n in registry.nodes()], env="prod", force=True,
                    reason="start")
    app = create_app(registry)
    with TestClient(app) as client:
        # Computed when the server starts, before any page asks for it.
        assert _settled(app.state.reached)["prod"].generation == registry.generation()
        for version in ("2026-12-01", "2026-12-02", None):
            client.get("/nodes/ranker")
            assert _settled(app.state.reached)["prod"].generation == registry.generation()
            if version is not None:  # else the kept sets are current
                registry.register(kind="source", name="clicks_raw", version=version)
            with TestClient(create_app(registry)) as fresh:
                for name in ("ranker", "user_embedding", "clicks_raw"):
                    assert client.get(f"/nodes/{name}").text == fresh.get(
                        f"/nodes/{name}").text, (version, name)
