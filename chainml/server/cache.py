"""What the pages compute at length, kept per worker process by registry generation.

``Cache`` computes a cold key while the request waits. ``Refreshed`` never makes a
request wait: it hands out what it last computed and recomputes in a thread of its own
when asked, for a value its user can check is still current (``Registry.reached``, which
each node page uses only at the generation it was read at). ``Current`` lies between:
a request waits for the value of the registry's newest generation up to a bound, then
takes the previous one, which says which generation it is of (the gate and
environments pages).

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
from dataclasses import dataclass
from datetime import UTC, datetime
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


@dataclass(frozen=True)
class Stamped(Generic[T]):
    """A value and the registry generation it was computed at (read before it: a write
    during the computation makes it look older than it is, never newer)."""

    value: T
    generation: int
    computed_at: datetime  # UTC, for people
    at: float  # time.monotonic(), for the ttl


class Current(Generic[T]):
    """The value of ``compute()`` (which returns it with its generation) for the newest
    generation, computed in a thread of its own, one computation at a time.

    ``get(generation)`` returns it when current: computed at ``generation`` or later.
    Otherwise it starts a computation (unless one runs) and waits for it up to
    ``wait`` seconds, then returns the value computed before, not current. With no
    value yet it waits for the computation, and gets its error when it fails. A value
    ``ttl`` seconds old is still returned as current (the registry has not changed;
    time alone may have made a node stale or ended a waiver since), and recomputed in
    the background for the next request. On a 100,000-node registry the gate takes
    seconds; a page that waited for it after every write was slow for whoever came
    first, each time.
    """

    def __init__(self, compute: Callable[[], tuple[int, T]], *, wait: float,
                 ttl: float = 60.0) -> None:
        self._compute = compute
        self.wait, self.ttl = wait, ttl
        self._cond = threading.Condition()
        self._kept: Stamped[T] | None = None
        self._running = False
        self._round = 0  # computations started
        self._failed: tuple[int, Exception] | None = None  # the last failed one

    def value(self) -> Stamped[T] | None:
        return self._kept

    def _current(self, generation: int) -> bool:
        kept = self._kept
        return kept is not None and kept.generation >= generation

    def get(self, generation: int) -> tuple[Stamped[T], bool]:
        """The value for ``generation`` and True, or after ``wait`` seconds the previous
        value and False."""
        deadline = time.monotonic() + self.wait
        with self._cond:
            if self._current(generation):
                assert self._kept is not None
                if time.monotonic() - self._kept.at > self.ttl and not self._running:
                    self._start()
                return self._kept, True
            while not self._current(generation):
                if not self._running:
                    self._start()
                awaited = self._round
                left = deadline - time.monotonic()
                if self._kept is not None and left <= 0:
                    return self._kept, False
                self._cond.wait(left if self._kept is not None else None)
                failed = self._failed
                if failed is not None and failed[0] == awaited and not self._running:
                    if self._kept is None:
                        raise failed[1]
                    return self._kept, False  # the next request tries again
            assert self._kept is not None
            return self._kept, True

    def compute_now(self) -> None:
        """Compute it in this thread (a server starting, before its first request); a
        failure leaves it as it was, for the first request to compute again."""
        with self._cond:
            if self._running:
                return
            self._running = True
            self._round += 1
            number = self._round
        self._run(number)

    def _start(self) -> None:
        """Under the condition's lock."""
        self._running = True
        self._round += 1
        threading.Thread(target=self._run, args=(self._round,), name="chainml-current",
                         daemon=True).start()

    def _run(self, number: int) -> None:
        try:
            generation, value = self._compute()
        except Exception as error:  # noqa: BLE001 - handed to the requests waiting
            with self._cond:
                self._failed = (number, error)
                self._running = False
                self._cond.notify_all()
            return
        with self._cond:
            if self._kept is None or generation >= self._kept.generation:
                self._kept = Stamped(value, generation, datetime.now(UTC), time.monotonic())
            self._running = False
            self._cond.notify_all()
