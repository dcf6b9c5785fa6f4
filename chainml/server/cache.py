"""What the pages compute at length, kept per worker process by registry generation.

``Cache`` computes a cold key while the request waits. ``Refreshed`` never makes a
request wait: it hands out what it last computed and recomputes in a thread of its own
when asked, for a value its user can check is still current (``Registry.reached``, which
each node page uses only at the generation it was read at).

The generation (``Registry.generation``: the newest event's id) changes with every
write, so an entry keyed by it is current until the next write; ``ttl`` bounds what
time alone changes (a node going stale, a waiver expiring). A cold key is computed
once: requests for it that arrive meanwhile wait for that computation instead of
starting their own (a gate takes seconds on a 100,000-node registry, and a page
opened by ten people after a write should not cost ten of them).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")


class Cache(Generic[T]):
    """The newest ``size`` values by key, each for ``ttl`` seconds at most."""

    def __init__(self, size: int = 64, ttl: float = 60.0) -> None:
        self.size, self.ttl = size, ttl
        self._items: OrderedDict[Hashable, tuple[float, T]] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or time.monotonic() - hit[0] > self.ttl:
                return None
            self._items.move_to_end(key)
            return hit[1]

    def put(self, key: Hashable, value: T) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value, else ``compute()``'s, computed once however many ask.

        A failure is not cached: it reaches the caller that computed, and the next
        request tries again (one waiting meanwhile computes it anew)."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            found = self.get(key)  # computed while this request waited
            if found is not None:
                return found
            try:
                value = compute()
                self.put(key, value)
                return value
            finally:
                with self._lock:
                    if self._computing.get(key) is gate:
                        del self._computing[key]


class Refreshed(Generic[T]):
    """The latest value of ``compute()`` (None before the first), recomputed in a thread
    of its own when ``refresh()`` is called, one computation at a time."""

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute = compute
        self._value: T | None = None
        self._lock = threading.Lock()
        self._running = False

    def value(self) -> T | None:
        return self._value

    def compute_now(self) -> None:
        """Compute it in this thread (a server starting, before its first request); a
        failure leaves the value as it was, for a later ``refresh``."""
        with self._lock:
            if self._running:
                return
            self._running = True
        self._run()

    def refresh(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._run, name="chainml-refresh", daemon=True).start()

    def _run(self) -> None:
        try:
            self._value = self._compute()
        except Exception:  # noqa: BLE001 - the registry went away: its users take the slow
            pass  # path meanwhile, the request that did will say so, the next asks again
        finally:
            with self._lock:
                self._running = False
