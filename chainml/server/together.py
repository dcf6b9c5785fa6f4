"""Group commit for ``POST /api/v1/lineage``: the requests a server process holds at once
are stored in one transaction (``Registry.ingest_together``).

Every write waits for the registry's one write lock, and each used to take it, write
and commit alone. Here one thread per process takes every request waiting, stores them
in one transaction (each request in a savepoint of its own, so a refused one fails
alone), commits once, and answers each. While it writes, the next requests queue, and
they are the next group: a group grows with the load, and an idle server answers a
single request as soon as it arrives. A failure of the transaction itself (the
registry gone) is every request's answer; nothing of any of them is stored.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from chainml.ingest.mapping import Mapping
from chainml.registry import Registry
from chainml.schemas import IngestResult

MAX_GROUP = 64  # requests in one transaction: bounds how long one holds the write lock


@dataclass
class _Request:
    events: list[Any]  # parsed Events
    actor: str
    answer: Future[IngestResult]


class GroupCommit:
    """One process's writer of lineage requests (started on the first)."""

    def __init__(self, registry: Registry, mapping: Mapping | None) -> None:
        self.registry = registry
        self.mapping = mapping
        self._queue: queue.SimpleQueue[_Request] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.transactions = 0  # groups stored (or failed) so far: the tests look

    def submit(self, events: list[Any], actor: str) -> Future[IngestResult]:
        """Queue one request's parsed events; the future holds its result or its error."""
        request = _Request(events, actor, Future())
        self._queue.put(request)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="chainml-lineage",
                                                daemon=True)
                self._thread.start()
        return request.answer

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._store(group)

    def _store(self, group: list[_Request]) -> None:
        self.transactions += 1
        try:
            results = self.registry.ingest_together([(r.events, r.actor) for r in group],
                                                    mapping=self.mapping)
        except BaseException as e:  # noqa: BLE001 - whatever it is, each request is told
            for r in group:
                r.answer.set_exception(e)
            return
        for r, result in zip(group, results, strict=True):
            if isinstance(result, IngestResult):
                r.answer.set_result(result)
            else:
                r.answer.set_exception(result)
