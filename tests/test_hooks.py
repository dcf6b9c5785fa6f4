"""Webhooks on every backend: the outbox is written with the change or not at all, one
notification per change, deliveries reach a real HTTP receiver at least once, signed
and de-duplicable, dead letters and replay, and two workers never send one delivery at
the same time."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from chainml.errors import InvalidInput
from chainml.hooks import signing
from chainml.hooks.policy import WorkerSettings
from chainml.registry import Registry
from chainml.rules import outbox
from tests.chains import build_example, build_feature_chain
from tests.hookrecv import Receiver

SECRET_ENV = "CHAINML_TEST_HOOK_SECRET"
SECRET = "test-secret-\u00e9"  # not ASCII: the secret is signed as UTF-8
FAST = WorkerSettings(timeout=5, backoff_base=0, backoff_cap=0, batch=4)
ALL = ["mark.opened", "mark.closed", "run.recorded", "deploy.done", "check.changed"]


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def notifications(reg: Registry) -> list[tuple[str, str, Any]]:
    """(uuid, event, payload) of every notification, in order."""
    import json

    with reg.engine.connect() as conn:
        rows = conn.execute(text("SELECT uuid, event, payload FROM notification ORDER BY id"))
        return [(u, e, json.loads(p) if isinstance(p, str) else p) for u, e, p in rows]


def states(reg: Registry) -> Counter[str]:
    return Counter(d.state for d in reg.hook_deliveries(limit=None))


def drain(reg: Registry, settings: WorkerSettings = FAST) -> None:
    """Deliver until nothing is due (backoff 0: every retry is due at once)."""
    for _ in range(50):
        reg.deliver_due(settings)
        if not states(reg)["pending"]:
            return
    raise AssertionError(f"deliveries still pending: {states(reg)}")


# ---- the outbox -------------------------------------------------------------------------------


def test_no_subscribed_hook_writes_no_notification(registry: Registry) -> None:
    build_example(registry, tested=True)
    assert notifications(registry) == []
    registry.hook_add("http://127.0.0.1:9/x", events=["deploy.done"])
    registry.register(kind="source", name="clicks_raw", version="2026-11-02")
    registry.record_test("ranker", passed=True)
    assert notifications(registry) == []  # marks and runs: nobody subscribed
    registry.env_create("prod")
    registry.deploy(["clicks_raw"], env="prod")
    assert [e for _, e, _ in notifications(registry)] == ["deploy.done"]


def test_one_notification_per_change_listing_the_marks(registry: Registry) -> None:
    build_example(registry, tested=True)
    hook = registry.hook_add("http://127.0.0.1:9/x", events=["mark.opened", "mark.closed"])
    registry.register(kind="source", name="clicks_raw", version="2026-11-02")
    (uuid, event, payload), = notifications(registry)
    marked = sorted(e.name for e in registry.status() if e.status.value == "needs_retest")
    assert event == "mark.opened" and payload["count"] == len(marked) == 5
    assert not payload["truncated"] and sorted(m["node"] for m in payload["marks"]) == marked
    assert {m["cause"] for m in payload["marks"]} == {"clicks_raw"}
    ranker = next(m for m in payload["marks"] if m["node"] == "ranker")
    assert ranker["path"][0] == "clicks_raw" and ranker["path"][-1] == "ranker"
    registry.record_test("ranker", passed=True)
    _, event, payload = notifications(registry)[-1]
    assert event == "mark.closed" and payload == {
        "count": 1, "truncated": False, "marks": [{"node": "ranker", "cause": "clicks_raw",
                                                   "path": ranker["path"],
                                                   "reason": "verified"}]}
    assert [(d.hook, d.state, d.attempts) for d in registry.hook_deliveries()] == [
        (hook.id, "pending", 0), (hook.id, "pending", 0)]


def test_a_long_list_is_capped_and_counted(registry: Registry,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "MAX_LISTED", 2)
    build_example(registry, tested=True)
    registry.hook_add("http://127.0.0.1:9/x", events=["mark.opened"])
    registry.register(kind="source", name="user_profiles", version="v13")
    (_, _, payload), = notifications(registry)
    assert payload["count"] == 5 and len(payload["marks"]) == 2 and payload["truncated"]


def test_a_change_rolled_back_leaves_no_notification(registry: Registry,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    build_example(registry, tested=True)
    registry.hook_add("http://127.0.0.1:9/x", events=ALL)
    before = notifications(registry)
    real = outbox.marks_changed

    def then_fail(*args: Any) -> None:
        real(*args)  # the notification is queued (and flushed) in the transaction...
        raise RuntimeError("the process dies before the commit")

    monkeypatch.setattr(outbox, "marks_changed", then_fail)
    with pytest.raises(RuntimeError):
        registry.register(kind="source", name="clicks_raw", version="2026-11-02")
    with pytest.raises(RuntimeError):
        registry.record_test("ranker", passed=False)
    monkeypatch.undo()
    monkeypatch.setenv(SECRET_ENV, SECRET)
    with pytest.raises(InvalidInput):  # refused: a cycle
        registry.register(kind="source", name="clicks_raw", version="x",
                          inputs=["feed_app"])
    registry.apply_text("chainml: 1\nnodes:\n  - name: clicks_raw\n    kind: source\n"
                        "    version: '9'\n", "c.yaml", dry_run=True)
    assert notifications(registry) == before  # ...and rolled back with the change
    assert registry.node("clicks_raw").current_version == "2026-11-01"


def test_the_events_and_their_payloads(registry: Registry) -> None:
    build_feature_chain(registry)
    registry.env_create("prod")
    registry.hook_add("http://127.0.0.1:9/x", events=["run.recorded", "deploy.done",
                                                      "check.changed"])
    registry.register(kind="feature", name="F", version="5", inputs=["raw"])  # gate fails
    registry.record_test("M", passed=True, suite=None, link="https://ci/1")
    registry.record_test("P", passed=True)  # the gate passes again
    registry.deploy(["raw", "F", "M", "P"], env="prod")
    registry.undeploy("P", env="prod")
    got = [(e, p) for _, e, p in notifications(registry)]
    assert [e for e, _ in got] == ["check.changed", "run.recorded", "run.recorded",
                                   "check.changed", "deploy.done", "deploy.done"]
    assert got[0][1] == {"ok": False, "was_ok": True, "failing": ["M", "P"],
                         "failing_count": 2, "counts": {"needs_retest": 2},
                         "truncated": False}
    assert got[1][1]["node"] == "M" and got[1][1]["outcome"] == "passed" and \
        got[1][1]["link"] == "https://ci/1" and got[1][1]["actor"] == "tester"
    assert got[3][1]["ok"] is True and got[3][1]["was_ok"] is False
    assert got[4][1]["env"] == "prod" and [n["name"] for n in got[4][1]["nodes"]] == [
        "raw", "F", "M", "P"] and got[4][1]["action"] == "deploy"
    assert got[5][1]["action"] == "undeploy" and got[5][1]["nodes"] == [
        {"name": "P", "version": None, "previous": "1"}]


def test_hook_changes_are_in_the_history(registry: Registry) -> None:
    made = registry.hook_add("https://u:pw@example.com/h?token=t", events=["mark.opened"],
                             secret_env=SECRET_ENV, format="slack", max_attempts=3)
    assert (made.state, made.secret_env, made.format, made.max_attempts) == (
        "active", SECRET_ENV, "slack", 3)
    registry.hook_remove(made.id)
    assert registry.hook_list() == []
    assert [h.state for h in registry.hook_list(include_removed=True)] == ["removed"]
    log = [(e.action, e.details) for e in registry.log()]
    assert log[-2][0] == "hook.added" and log[-2][1]["url"] == "https://example.com/h"
    assert log[-1][0] == "hook.removed"
    assert SECRET not in repr(log)
    with pytest.raises(InvalidInput, match="already removed"):
        registry.hook_remove(made.id)
    with pytest.raises(InvalidInput, match="No hook with id 99"):
        registry.hook_remove(99)


# ---- delivery ---------------------------------------------------------------------------------


def test_every_notification_arrives_signed_despite_failures(registry: Registry) -> None:
    with Receiver(fail=lambda n: n % 3 == 0) as receiver:  # a third of the requests fail
        registry.hook_add(receiver.url, events=ALL, secret_env=SECRET_ENV)
        build_example(registry, tested=True)
        registry.register(kind="source", name="clicks_raw", version="2026-11-02")
        for name in ("user_embedding", "ranker", "ranking_safety"):
            registry.record_test(name, passed=True)
        sent = notifications(registry)
        assert len(sent) >= 10
        drain(registry)
        assert states(registry) == Counter(delivered=len(sent))
        got = receiver.requests
    assert any(r.status == 500 for r in got)
    delivered = [r for r in got if r.status == 204]
    by_id = {r.headers["x-chainml-delivery"]: r for r in delivered}
    assert set(by_id) == {u for u, _, _ in sent}  # each at least once
    for uuid, event, payload in sent:
        r = by_id[uuid]
        assert r.data == {"id": uuid, "event": event, "data": payload,
                          "created_at": r.data["created_at"]}
        assert r.headers["x-chainml-event"] == event
        assert r.headers["content-type"] == "application/json"
        assert signing.verify(SECRET, r.headers["x-chainml-signature"], r.body)
        assert r.headers["x-chainml-signature"].startswith(
            f"t={r.headers['x-chainml-timestamp']},v1=")
    retried = [d for d in registry.hook_deliveries(limit=None) if d.attempts > 1]
    assert retried and all(d.last_status == 204 for d in retried)


def test_dead_letters_and_replay(registry: Registry) -> None:
    failing = True
    with Receiver(fail=lambda n: failing) as receiver:
        hook = registry.hook_add(receiver.url, events=["run.recorded"], max_attempts=3)
        build_feature_chain(registry)
        drain(registry)
        dead = registry.hook_deliveries(state="dead")
        assert len(dead) == 2 and len(receiver.requests) == 6
        assert all((d.attempts, d.last_status, d.last_error) == (3, 500,
                                                                 "HTTP 500 Internal Server Error")
                   for d in dead)
        failing = False
        again = registry.hook_replay(dead[0].id)
        assert (again.state, again.attempts, again.notification) == (
            "pending", 0, dead[0].notification)
        with pytest.raises(InvalidInput, match="pending already"):
            registry.hook_replay(dead[0].id)
        drain(registry)
        assert states(registry) == Counter(delivered=1, dead=1)
        assert receiver.requests[-1].headers["x-chainml-delivery"] == dead[0].notification
        registry.hook_replay(dead[0].id)  # a delivered one may be sent again too
        drain(registry)
        assert len(receiver.delivered()) == 2
    assert [(e.action, e.details.get("was")) for e in registry.log()][-2:] == [
        ("hook.replayed", "dead"), ("hook.replayed", "delivered")]
    with pytest.raises(InvalidInput, match="No delivery with id 999"):
        registry.hook_replay(999)
    assert [d.id for d in registry.hook_deliveries(hook=hook.id, state="dead")] == [dead[1].id]


def test_removing_a_hook_cancels_its_pending_deliveries(registry: Registry) -> None:
    hook = registry.hook_add("http://127.0.0.1:9/x", events=["run.recorded"])
    build_feature_chain(registry)
    assert registry.hook_remove(hook.id).cancelled == 2
    assert states(registry) == Counter(dead=2)
    assert {d.last_error for d in registry.hook_deliveries()} == {"the hook was removed"}
    with pytest.raises(InvalidInput, match="was removed"):
        registry.hook_replay(registry.hook_deliveries()[0].id)
    registry.record_test("M", passed=True)
    assert len(registry.hook_deliveries()) == 2  # nothing new for a removed hook


def test_a_slack_hook_gets_text(registry: Registry, receiver: Receiver) -> None:
    registry.hook_add(receiver.url, events=["run.recorded"], format="slack")
    build_feature_chain(registry)
    drain(registry)
    assert sorted(r.data["text"] for r in receiver.requests) == [  # sent concurrently
        "chainml: M 1 passed, recorded by tester", "chainml: P 1 passed, recorded by tester"]
    assert "x-chainml-signature" not in receiver.requests[0].headers  # no secret: unsigned


def test_a_missing_secret_fails_the_attempt_without_sending(
        registry: Registry, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.hook_add(receiver.url, events=["run.recorded"], secret_env=SECRET_ENV,
                      max_attempts=1)
    build_feature_chain(registry)
    monkeypatch.delenv(SECRET_ENV)
    drain(registry)
    assert receiver.requests == [] and states(registry) == Counter(dead=2)
    assert "CHAINML_TEST_HOOK_SECRET" in (registry.hook_deliveries()[0].last_error or "")


def test_two_workers_never_send_one_delivery_at_once(registry: Registry,
                                                     database_url: str) -> None:
    with Receiver() as receiver:
        registry.hook_add(receiver.url, events=["run.recorded"])
        registry.register(kind="source", name="raw", version="1")
        registry.register(kind="model", name="m", version="1", inputs=["raw"])
        for i in range(40):
            registry.record_test("m", passed=i % 2 == 0)
        workers = [Registry(database_url) for _ in range(3)]
        errors: list[BaseException] = []

        def work(reg: Registry) -> None:
            try:
                reg.deliver_due(WorkerSettings(timeout=5, backoff_base=0, backoff_cap=0,
                                               batch=3))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for w in workers:
            w.close()
        assert errors == []
        seen = Counter(r.headers["x-chainml-delivery"] for r in receiver.requests)
    assert len(seen) == 40 and set(seen.values()) == {1}  # no failure: exactly once
    assert states(registry) == Counter(delivered=40)


def test_a_waiver_that_clears_the_gate_is_a_check_change(registry: Registry) -> None:
    build_feature_chain(registry)
    registry.hook_add("http://127.0.0.1:9/x", events=["check.changed", "mark.closed"])
    registry.register(kind="feature", name="F", version="5", inputs=["raw"])
    registry.waive("M", reason="same output")
    assert [p["ok"] for _, _, p in notifications(registry)] == [False]
    registry.waive("P", reason="same output")
    got = notifications(registry)
    assert [(e, p["ok"]) for _, e, p in got] == [("check.changed", False),
                                                 ("check.changed", True)]
    assert got[1][2]["counts"] == {"waived": 2}
