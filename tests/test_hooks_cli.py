"""``chainml hook`` on the command line and ``/api/v1/hooks`` over HTTP: the JSON
shapes, bad input refused in one sentence with nothing recorded, and a delivery
worker run once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import Settings, create_app
from tests.chains import build_feature_chain
from tests.clirun import error_line, ok, ok_json, raw_dump, run
from tests.hookrecv import Receiver

SECRET_ENV = "CHAINML_TEST_HOOK_SECRET"


@pytest.fixture
def url(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(SECRET_ENV, "s")
    monkeypatch.setenv("CHAINML_HOOK_BACKOFF_BASE", "0")
    reg = Registry.init(url=database_url)
    build_feature_chain(reg)
    reg.close()
    return database_url


def test_add_list_deliver_replay_remove(url: str) -> None:
    with Receiver(fail=lambda n: n == 1) as receiver:
        made = ok_json(url, "hook", "add", receiver.url, "--event", "run.recorded",
                       "--event", "mark.closed", "--secret-env", SECRET_ENV)
        assert {k: made[k] for k in ("id", "url", "events", "format", "secret_env",
                                     "max_attempts", "state")} == {
            "id": 1, "url": receiver.url, "events": ["mark.closed", "run.recorded"],
            "format": "json", "secret_env": SECRET_ENV, "max_attempts": 8, "state": "active"}
        assert ok_json(url, "hook", "list")[0]["id"] == 1
        assert "run.recorded" in ok(url, "hook", "list").stdout
        ok(url, "test", "record", "M", "--passed")
        pending = ok_json(url, "hook", "deliveries")
        assert [(d["event"], d["state"], d["attempts"]) for d in pending] == [
            ("run.recorded", "pending", 0)]
        assert pending[0]["payload"]["node"] == "M"
        first = ok_json(url, "hook", "run", "--once")
        assert first == {"attempted": 2, "delivered": 1, "retrying": 1, "dead": 0}
        assert ok_json(url, "hook", "deliveries", "--state", "delivered")[0]["attempts"] == 2
        assert ok(url, "hook", "run", "--once").stdout == \
            "Attempted 0: 0 delivered, 0 to retry, 0 dead.\n"
        again = ok_json(url, "hook", "replay", "1")
        assert again["state"] == "pending" and again["attempts"] == 0
        ok(url, "hook", "run", "--once")
        assert len(receiver.delivered()) == 2
    text = ok(url, "hook", "deliveries").stdout
    assert "run.recorded" in text and "delivered" in text
    removed = ok_json(url, "hook", "remove", "1")
    assert removed["state"] == "removed" and ok_json(url, "hook", "list") == []
    assert [e["action"] for e in ok_json(url, "log")][-4:] == [
        "hook.added", "test.recorded", "hook.replayed", "hook.removed"]


@pytest.mark.parametrize("args, words", [
    (("add", "ftp://example.com/x", "--event", "run.recorded"), "http:// or https://"),
    (("add", "http://example.com/x", "--event", "mark.open"), "did you mean 'mark.opened'"),
    (("add", "http://example.com/x"), "at least one --event"),
    (("add", "http://example.com/x", "--event", "run.recorded", "--secret-env", "UNSET_VAR"),
     "UNSET_VAR is not set"),
    (("add", "http://example.com/x", "--event", "run.recorded", "--format", "xml"),
     "format is one of json, slack"),
    (("add", "http://example.com/x", "--event", "run.recorded", "--max-attempts", "0"),
     "--max-attempts"),
    (("remove", "7"), "No hook with id 7"),
    (("replay", "7"), "No delivery with id 7"),
    (("deliveries", "--state", "lost"), "state is one of pending, delivered, dead"),
    (("deliveries", "--hook", "3"), "No hook with id 3"),
], ids=["scheme", "event", "no-event", "env", "format", "attempts", "remove", "replay",
        "state", "hook"])
def test_bad_input_is_one_sentence_and_records_nothing(url: str, args: tuple[str, ...],
                                                       words: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UNSET_VAR", raising=False)
    before = raw_dump(url)
    result = run(url, "hook", *args)
    assert result.exit_code == 2 and words in error_line(result), result.output
    assert raw_dump(url) == before


def test_an_unreachable_registry_is_exit_3(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'none.db'}", "hook", "list")
    assert result.exit_code == 3 and "no registry" in error_line(result)


# ---- HTTP API ---------------------------------------------------------------------------------


@pytest.fixture
def client(url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    reg = Registry(url)
    tokens = {s: reg.token_create(f"{s}-bot", scope=s).token for s in ("write", "admin")}
    with TestClient(create_app(reg, Settings(hook_worker=False))) as c:
        yield c, tokens
    reg.close()


def test_the_api_manages_hooks_with_an_admin_token(
        client: tuple[TestClient, dict[str, str]]) -> None:
    c, tokens = client
    admin = {"Authorization": f"Bearer {tokens['admin']}"}
    writer = {"Authorization": f"Bearer {tokens['write']}"}
    body = {"url": "http://127.0.0.1:9/h", "events": ["run.recorded"]}
    assert c.post("/api/v1/hooks", json=body, headers=writer).status_code == 403
    assert c.get("/api/v1/hooks").status_code == 401
    made = c.post("/api/v1/hooks", json=body, headers=admin)
    assert made.status_code == 201 and made.json()["events"] == ["run.recorded"]
    bad = c.post("/api/v1/hooks", json={**body, "url": "file:///etc/passwd"}, headers=admin)
    assert bad.status_code == 400 and "http://" in bad.json()["error"]
    typo = c.post("/api/v1/hooks", json={**body, "event": ["x"]}, headers=admin)
    assert typo.status_code == 400
    assert c.post("/api/v1/runs", json={"node": "M", "passed": True},
                  headers=writer).status_code == 201
    listed = c.get("/api/v1/hooks/deliveries", headers=admin)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "1"
    (delivery,) = listed.json()
    assert delivery["event"] == "run.recorded" and delivery["state"] == "pending"
    refused = c.post(f"/api/v1/hooks/deliveries/{delivery['id']}/replay", headers=admin)
    assert refused.status_code == 400 and "pending already" in refused.json()["error"]
    assert [h["id"] for h in c.get("/api/v1/hooks", headers=admin).json()] == [1]
    gone = c.post("/api/v1/hooks/1/remove", headers=admin)
    assert gone.status_code == 200 and gone.json()["cancelled"] == 1
    assert c.get("/api/v1/hooks", headers=admin).json() == []
    assert len(c.get("/api/v1/hooks?all=true", headers=admin).json()) == 1


@pytest.mark.parametrize("command", [("hook", "run", "--once"), ("serve",)])
def test_a_bad_worker_setting_is_exit_2(url: str, command: tuple[str, ...],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINML_HOOK_TIMEOUT", "ten")
    result = run(url, *command)
    assert result.exit_code == 2 and "CHAINML_HOOK_TIMEOUT must be a number" in \
        error_line(result)
