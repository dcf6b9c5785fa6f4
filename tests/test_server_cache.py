"""The pages' cache (``chainml/server/cache.py``): a cold key is computed once however
many requests ask at the same time, failures are not kept, entries expire and the
oldest go first. ``Refreshed`` never makes a reader wait, and the node pages that use it
follow every write. ``Current`` makes a reader wait a bounded time for the newest
generation, else hands out the previous value saying so; the gate page that uses it
follows every write, and says when it shows an older one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import create_app
from chainml.server.cache import Cache, Current, Refreshed
from tests.chains import build_example
from tests.serving import held


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


class Slow:
    """A computation for ``Current``: (generation, value) with the generation read from
    ``self.generation`` when it starts, each call blocked until ``go`` is set (when
    ``hold`` is) and failing with ``fail`` when it is set."""

    def __init__(self) -> None:
        self.generation = 1
        self.calls = 0
        self.hold = False
        self.go = threading.Event()
        self.fail: Exception | None = None

    def __call__(self) -> tuple[int, str]:
        generation = self.generation
        self.calls += 1
        if self.hold:
            assert self.go.wait(10), "never released"
        if self.fail is not None:
            raise self.fail
        return generation, f"gate at {generation}"


def _settle(current: Current[Any]) -> None:
    for _ in range(500):
        if not current._running:
            return
        time.sleep(0.01)
    raise AssertionError("the computation did not end")


def test_current_is_computed_at_start_and_current_until_the_next_generation() -> None:
    slow = Slow()
    current: Current[str] = Current(slow, wait=5)
    current.compute_now()
    kept, fresh = current.get(1)
    assert (kept.value, kept.generation, fresh, slow.calls) == ("gate at 1", 1, True, 1)
    assert current.get(1)[0] is kept and slow.calls == 1  # no computation while current
    slow.generation = 2
    kept, fresh = current.get(2)  # computed in its thread; this request waited for it
    assert (kept.value, fresh, slow.calls) == ("gate at 2", True, 2)


def test_a_slow_computation_hands_out_the_previous_value_after_the_wait() -> None:
    slow = Slow()
    current: Current[str] = Current(slow, wait=0.2)
    current.compute_now()
    slow.generation, slow.hold = 2, True
    got: list[tuple[str, int, bool]] = []

    def ask() -> None:
        kept, fresh = current.get(2)
        got.append((kept.value, kept.generation, fresh))

    started = time.monotonic()
    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    waited = time.monotonic() - started
    assert got == [("gate at 1", 1, False)] * 6  # the previous one, and each is told so
    assert 0.2 <= waited < 2.0
    assert slow.calls == 2  # six requests, one computation
    slow.go.set()
    _settle(current)
    assert current.get(2)[0].value == "gate at 2" and current.get(2)[1]
    assert slow.calls == 2


def test_a_write_during_the_computation_needs_another() -> None:
    """The generation is read before the computation: a value begun at 2 is not current
    for a request that saw 3, written while it was computed."""
    slow = Slow()
    current: Current[str] = Current(slow, wait=0.05)
    current.compute_now()
    slow.generation, slow.hold = 2, True
    assert current.get(2)[1] is False  # the computation at 2 runs on, held
    slow.generation = 3  # a write, while it runs
    slow.go.set()
    _settle(current)
    assert current.value() is not None and current.value().value == "gate at 2"
    current.wait = 5
    kept, fresh = current.get(3)
    assert (kept.value, fresh, slow.calls) == ("gate at 3", True, 3)


def test_with_nothing_kept_a_request_waits_however_long_and_gets_a_failure() -> None:
    slow = Slow()
    slow.fail = RuntimeError("registry gone")
    current: Current[str] = Current(slow, wait=0.05)
    current.compute_now()  # a server starting while the registry is away
    assert current.value() is None
    with pytest.raises(RuntimeError, match="registry gone"):
        current.get(1)
    slow.fail, slow.hold = None, True
    threading.Timer(0.3, slow.go.set).start()
    kept, fresh = current.get(1)  # longer than the wait: there is nothing else to show
    assert (kept.value, fresh) == ("gate at 1", True)


def test_a_failure_with_a_value_kept_hands_it_out_and_the_next_request_tries_again() -> None:
    slow = Slow()
    current: Current[str] = Current(slow, wait=5)
    current.compute_now()
    slow.generation, slow.fail = 2, RuntimeError("registry gone")
    kept, fresh = current.get(2)  # failed at once: no need to wait out the bound
    assert (kept.value, fresh, slow.calls) == ("gate at 1", False, 2)
    slow.fail = None
    assert current.get(2)[0].value == "gate at 2" and slow.calls == 3


def test_time_alone_has_it_recomputed_for_the_next_request() -> None:
    """A node goes stale and a waiver ends with time, without a write: a value older than
    the ttl is handed out as it is (the registry has not changed) and recomputed."""
    slow = Slow()
    current: Current[str] = Current(slow, wait=5, ttl=0.1)
    current.compute_now()
    first = current.get(1)[0]
    time.sleep(0.15)
    slow.hold = True
    again, fresh = current.get(1)
    assert fresh and again is first  # not waited for
    assert slow.calls == 2  # but being recomputed
    slow.go.set()
    _settle(current)
    newer, fresh = current.get(1)
    assert fresh and newer is not first and newer.at > first.at and slow.calls == 2


def test_the_gate_page_says_when_it_shows_an_older_gate(registry: Registry,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """While the gate of the newest write is computed beyond the wait, the page shows
    the previous one with its generation, and asks the browser to reload; once it is
    computed, the page is the current one again."""
    build_example(registry)
    for node in registry.status():
        registry.record_test(node.name, passed=True)
    go = held(monkeypatch)
    app = create_app(registry)
    with TestClient(app) as client:
        before = registry.generation()
        page = client.get("/").text
        assert "data-reload-after" not in page and "reload.js" not in page
        assert f'data-generation="{before}"' in page
        go.clear()
        registry.register(kind="source", name="clicks_raw", version="2026-12-01")
        stale = client.get("/").text
        assert "is untested by" not in stale  # the gate before the write ...
        assert f"it shows event #{before}, the registry is at #{registry.generation()}" \
            in stale  # ... saying so
        assert 'data-reload-after="1500"' in stale and "/static/reload.js" in stale
        assert f"(as of event #{before})" in stale  # beside the verdict it shows
        assert client.get("/static/reload.js").status_code == 200
        go.set()
        _settle(app.state.gates)
        fresh = client.get("/").text
        assert "clicks_raw 2026-11-01 → 2026-12-01 is untested by" in fresh
        assert "data-reload-after" not in fresh and "(as of event" not in fresh
        assert f'data-generation="{registry.generation()}"' in fresh


def test_the_environments_page_follows_writes_and_says_when_it_shows_an_older_one(
        registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    build_example(registry)
    registry.env_create("prod")
    registry.deploy(["click_features", "ranker"], env="prod", force=True, reason="start")
    go = held(monkeypatch, "envs_now")
    app = create_app(registry)
    with TestClient(app) as client:
        assert app.state.envs.value() is None  # not computed when the worker starts
        first = client.get("/envs").text
        assert "data-reload-after" not in first
        assert f'data-generation="{registry.generation()}"' in first
        go.clear()
        before = registry.generation()
        registry.deploy(["user_embedding"], env="prod", force=True, reason="more")
        older = client.get("/envs").text
        assert f"it shows event #{before}, the registry is at #{registry.generation()}" \
            in older
        assert 'href="/nodes/user_embedding"' not in older
        go.set()
        _settle(app.state.envs)
        now = client.get("/envs").text
        assert 'href="/nodes/user_embedding"' in now and "data-reload-after" not in now
        with TestClient(create_app(registry)) as fresh:  # the same page as a new worker's
            assert fresh.get("/envs").text.split("<main")[1].split("Computed")[0] == \
                now.split("<main")[1].split("Computed")[0]
