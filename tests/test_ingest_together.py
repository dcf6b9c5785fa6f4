"""Group commit of OpenLineage requests (``Registry.ingest_together``, what the server does
with the requests that arrive together): one transaction, each request its own
savepoint. The oracle is the same requests sent alone, one after the other, on another
registry."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from chainml.db import engine as dbe
from chainml.db import repository as repo
from chainml.db.models import LineageEvent, LineageRun, Notification, Version
from chainml.errors import InvalidInput
from chainml.ingest.mapping import parse_mapping
from chainml.registry import Registry
from chainml.rules import outbox
from chainml.schemas import IngestResult
from chainml.server.app import Settings, create_app
from tests.conftest import Clock
from tests.test_ingest import JOB, OUT, RAW, USERS, count, day, event
from tests.test_ingest_statements import sqlite_statements

OTHER = "dataset:postgres://db:5432/ml.other"
# ml.features mapped to a source: a run that writes it is refused by the chain's kind rules
# once the events are stored (not when they are read).
MAPPING = parse_mapping({"rules": [{"match": "dataset:*ml.features", "kind": "source"}]},
                        "mapping.yaml")
RUNS = [f"0176a8c2-fe01-7439-87e6-56a1a1b4{i:04x}" for i in range(8)]


def _requests() -> list[tuple[list[dict[str, Any]], str]]:
    broken = event(RUNS[2], "COMPLETE", inputs=(RAW,), outputs=(OTHER,))
    del broken["job"]["name"]
    return [
        ([event(RUNS[0], "COMPLETE", inputs=(RAW,), outputs=(OTHER,), code="a")], "ci-a"),
        (day(RUNS[1]), "ci-b"),  # writes ml.features: refused
        ([broken], "ci-c"),  # malformed: refused before anything is written
        ([event(RUNS[3], "COMPLETE", inputs=(RAW, USERS), outputs=(OTHER,), code="b",
                out_version="7")], "ci-d"),
        ([event(RUNS[0], "COMPLETE", inputs=(RAW,), outputs=(OTHER,), code="a")], "ci-e"),
    ]


def _state(reg: Registry) -> Any:
    nodes = [(n.name, n.kind, n.current_version) for n in reg.nodes()]
    history = [(e.action, e.node, e.version, e.actor) for e in reg.log()]
    findings = [(f.node, f.input, f.first_run, f.last_run, f.times) for f in reg.findings()]
    # Times differ: the requests together are one write, at one time.
    return (nodes, history, [(e.name, e.status) for e in reg.status()], findings,
            count(reg, LineageEvent), count(reg, LineageRun), count(reg, Version))


def test_requests_together_are_the_requests_alone(registry: Registry, clock: Clock,
                                                  tmp_path: Path) -> None:
    requests = _requests()
    got = registry.ingest_together(requests, mapping=MAPPING)
    fresh_registry = Registry.init(tmp_path, actor="tester", clock=clock)

    alone: list[IngestResult | InvalidInput] = []
    for events, actor in requests:
        try:
            alone.append(fresh_registry.as_actor(actor).ingest_events(events,
                                                                      mapping=MAPPING))
        except InvalidInput as e:
            alone.append(e)
    assert [isinstance(r, IngestResult) for r in got] == [True, False, False, True, True]
    assert [type(r) for r in got] == [type(r) for r in alone]
    for mine, theirs in zip(got, alone, strict=True):
        if isinstance(mine, IngestResult):
            assert mine == theirs
    assert str(got[2]) == "request 3 event 1: job.name is missing."
    assert "ml.features" in str(got[1])
    assert got[4].duplicates == 1  # the first request's event, stored by then
    assert _state(registry) == _state(fresh_registry)
    assert {e.actor for e in registry.log() if e.node == JOB} == {"ci-a", "ci-d"}
    assert OUT not in {n.name for n in registry.nodes()}


def test_a_group_without_a_refusal_is_stored_without_savepoints(tmp_path: Path) -> None:
    """Savepoints cost two round trips a request: a group whose requests are all stored
    takes none, and is the same as the requests stored one after the other."""
    reg = Registry.init(tmp_path / "together", actor="tester")
    alone = Registry.init(tmp_path / "alone", actor="tester")
    requests = [r for i, r in enumerate(_requests()) if i in (0, 3, 4)]
    with sqlite_statements(reg) as seen:
        got = reg.ingest_together(requests, mapping=MAPPING)
    assert not [q for q in seen if "SAVEPOINT" in q.upper()], seen
    assert got == [alone.as_actor(actor).ingest_events(events, mapping=MAPPING)
                   for events, actor in requests]
    assert _state(reg) == _state(alone)


def test_a_lone_refused_request_is_refused_and_leaves_nothing(registry: Registry) -> None:
    before = _state(registry)
    got = registry.ingest_together([(day(RUNS[1]), "ci-b")], mapping=MAPPING)
    assert len(got) == 1 and isinstance(got[0], InvalidInput)
    assert "ml.features" in str(got[0])
    assert _state(registry) == before


def test_a_refused_request_leaves_no_notification(registry: Registry) -> None:
    """Its rows go with its savepoint; the marks it queued for the merged
    ``mark.opened`` notification must go too. A request that succeeds has its
    notifications written when its savepoint is released, as if it were sent alone."""
    registry.hook_add("http://127.0.0.1:9/hook", events=["mark.opened"])
    with dbe.write_session(registry.engine, commit=False) as s:
        repo.lock_writes(s)
        outbox.notify(s, "mark.opened", {"count": 1, "marks": [{"node": "a"}]})
        with pytest.raises(InvalidInput), outbox.savepoint(s):
            outbox.notify(s, "mark.opened", {"count": 2, "marks": [{"node": "b"}]})
            raise InvalidInput("refused")
        assert s.info[outbox._PENDING] == {"mark.opened": {"count": 1,
                                                           "marks": [{"node": "a"}]}}
        with outbox.savepoint(s):
            outbox.notify(s, "mark.opened", {"count": 1, "marks": [{"node": "c"}]})
        assert outbox._PENDING not in s.info
        written = [n.payload for n in s.scalars(select(Notification))]
        assert written == [{"count": 2, "marks": [{"node": "a"}, {"node": "c"}],
                            "truncated": False}]


def test_concurrent_requests_are_grouped_and_answered_each_as_alone(
        registry: Registry) -> None:
    """Requests posted at once to one server process: each answered as if alone (201 with
    its own result, or its own one-sentence refusal), stored once, in fewer transactions
    than requests."""
    token = registry.token_create("pipelines", scope="write").token
    app = create_app(registry, Settings(mapping=MAPPING))
    good = [[event(f"0176a8c2-fe01-7439-87e6-56a1a1b5{i:04x}", "COMPLETE",
                   job=f"job:airflow/j{i}", inputs=(RAW,), outputs=(f"{OTHER}{i}",),
                   code=f"c{i}")] for i in range(24)]
    refused = [day(f"0176a8c2-fe01-7439-87e6-56a1a1b6{i:04x}") for i in range(6)]
    bodies = good + refused
    with TestClient(app) as client:
        def post(body: list[dict[str, Any]]) -> Any:
            return client.post("/api/v1/lineage", json=body,
                               headers={"Authorization": f"Bearer {token}"})
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(post, bodies))
    for i, answer in enumerate(answers[:len(good)]):
        assert answer.status_code == 201, answer.text
        assert answer.json()["runs"][0]["job"] == f"job:airflow/j{i}"
    for answer in answers[len(good):]:
        assert answer.status_code == 400 and "ml.features" in answer.json()["error"]
    assert count(registry, LineageEvent) == len(good)
    assert {e.actor for e in registry.log() if e.action == "version.registered"} == {
        "pipelines"}
    assert app.state.together.transactions < len(bodies)
