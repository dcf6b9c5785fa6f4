"""``/api/v1/`` over the ASGI app, on every backend: the same answers as the command line,
tokens and scopes, errors as one sentence with their status, nothing written when a
request is refused, and no secret in any answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import Settings, create_app
from tests.chains import build_example, build_feature_chain
from tests.conftest import Clock


@pytest.fixture
def reg(registry: Registry) -> Registry:
    return build_example(registry)


@pytest.fixture
def client(reg: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(reg)) as c:
        yield c


@pytest.fixture
def tokens(reg: Registry) -> dict[str, str]:
    return {scope: reg.token_create(f"{scope}-bot", scope=scope).token
            for scope in ("read", "write", "admin")}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def events(reg: Registry) -> int:
    return len(reg.log())


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ok"] is True


def test_reads_answer_what_the_library_answers(client: TestClient, reg: Registry) -> None:
    got = client.get("/api/v1/nodes/ranker")
    assert got.status_code == 200
    assert got.json() == json.loads(reg.node("ranker").model_dump_json(by_alias=True))
    status = client.get("/api/v1/status").json()
    assert status == [json.loads(e.model_dump_json(by_alias=True)) for e in reg.status()]
    impact = client.get("/api/v1/impact/click_features").json()
    assert {e["name"] for e in impact["impacted"]} == {
        e.name for e in reg.impact("click_features").impacted}


def test_lists_page_without_changing_their_shape(client: TestClient, reg: Registry) -> None:
    everything = [n.name for n in reg.nodes()]
    first = client.get("/api/v1/nodes", params={"limit": 5})
    assert [n["name"] for n in first.json()] == everything[:5]
    assert first.headers["X-Total-Count"] == str(len(everything))
    next_url = first.headers["Link"].split(";")[0].strip("<>")
    second = client.get(next_url)
    assert [n["name"] for n in second.json()] == everything[5:10]
    models = client.get("/api/v1/nodes", params={"kind": "model"}).json()
    assert {n["name"] for n in models} == {n.name for n in reg.nodes("model")}


def test_the_gate_answers_200_with_ok_false(client: TestClient, reg: Registry) -> None:
    reg.register(kind="source", name="clicks_raw", version="2026-12-01")
    got = client.get("/api/v1/check")
    assert got.status_code == 200 and got.json()["ok"] is False
    assert got.json() == json.loads(reg.check().model_dump_json(by_alias=True))


def test_writes_need_a_write_token_and_name_it_in_the_history(
        client: TestClient, reg: Registry, tokens: dict[str, str]) -> None:
    run = {"node": "ranker", "passed": True}
    before = events(reg)
    for headers, code in (({}, 401), (auth(tokens["read"]), 403),
                          (auth("cml_1_" + "x" * 43), 401), (auth("not a token"), 401),
                          ({"Authorization": "Basic abc"}, 401)):
        answer = client.post("/api/v1/runs", json=run, headers=headers)
        assert answer.status_code == code, (headers, answer.text)
        assert set(answer.json()) == {"error"}
    assert events(reg) == before  # nothing recorded
    done = client.post("/api/v1/runs", json=run, headers=auth(tokens["write"]))
    assert done.status_code == 201 and done.json()["recorded_by"] == "write-bot"
    assert reg.log(limit=1)[0].actor == "write-bot"


def test_revoked_and_expired_tokens_are_refused(reg: Registry, clock: Clock) -> None:
    app = create_app(reg)
    short = reg.token_create("short", scope="write", expires="1h").token
    revoked = reg.token_create("gone", scope="write").token
    reg.token_revoke("gone")
    clock.advance(hours=2)
    with TestClient(app) as c:
        for token, state in ((short, "expired"), (revoked, "revoked")):
            answer = c.post("/api/v1/runs", json={"node": "ranker", "passed": True},
                            headers=auth(token))
            assert answer.status_code == 401
            assert answer.json() == {"error": f"The token presented is {state}."}
            assert token not in answer.text


def test_reads_can_require_a_token(reg: Registry, tokens: dict[str, str]) -> None:
    with TestClient(create_app(reg, Settings(require_token_for_reads=True))) as c:
        assert c.get("/api/v1/nodes").status_code == 401
        assert c.get("/api/v1/nodes", headers=auth(tokens["read"])).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open


def test_errors_are_one_sentence_with_their_status(client: TestClient,
                                                   tokens: dict[str, str]) -> None:
    w = auth(tokens["write"])
    missing = client.get("/api/v1/nodes/rankr")
    assert missing.status_code == 404
    assert missing.json() == {"error": "No node named 'rankr'. Did you mean 'ranker'?"}
    unknown = client.post("/api/v1/runs", json={"node": "ranker", "passd": True}, headers=w)
    assert unknown.status_code == 400 and "did you mean 'passed'" in unknown.json()["error"]
    not_json = client.post("/api/v1/runs", content=b"{nope", headers={
        **w, "Content-Type": "application/json"})
    assert not_json.status_code == 422 and set(not_json.json()) == {"error"}
    conflict = client.post("/api/v1/nodes", headers=w, json={
        "kind": "model", "name": "ranker", "version": "1.4.0", "inputs": ["clicks_raw"]})
    assert conflict.status_code == 409 and "ranker" in conflict.json()["error"]
    assert client.get("/api/v1/nope").json()["error"].endswith("the API is under /api/v1/.")


def test_oversized_bodies_get_413_and_change_nothing(reg: Registry,
                                                     tokens: dict[str, str]) -> None:
    before = events(reg)
    with TestClient(create_app(reg, Settings(max_body=1024))) as c:
        big = {"node": "ranker", "passed": True, "note": "x" * 4096}
        answer = c.post("/api/v1/runs", json=big, headers=auth(tokens["write"]))
        assert answer.status_code == 413 and "limit" in answer.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield json.dumps(big).encode()

        streamed = c.post("/api/v1/runs", content=chunks(), headers={
            **auth(tokens["write"]), "Content-Type": "application/json"})
        assert streamed.status_code == 413
    assert events(reg) == before


def test_a_refused_release_is_409_with_its_result(registry: Registry,
                                                  clock: Clock) -> None:
    reg = build_feature_chain(registry)
    reg.env_create("prod")
    reg.deploy(["F", "M", "P"], env="prod")
    reg.register(kind="feature", name="F", version="5", inputs=["raw"])
    write = reg.token_create("ci", scope="write").token
    with TestClient(create_app(reg)) as c:
        answer = c.post("/api/v1/deployments", json={"env": "prod", "nodes": ["F"]},
                        headers=auth(write))
        assert answer.status_code == 409
        body: dict[str, Any] = answer.json()
        assert body["error"].startswith("Release to 'prod' refused")
        assert {p["name"] for p in body["result"]["problems"]} == {"M", "P"}
        check = c.get("/api/v1/check", params={"env": "prod"}).json()
        assert check["ok"] is True  # nothing was deployed
        plan = c.get("/api/v1/plan", params={"env": "prod"}).json()
        assert plan == json.loads(reg.plan("prod").model_dump_json(by_alias=True))


def test_tokens_are_managed_with_an_admin_token_and_never_shown_again(
        client: TestClient, tokens: dict[str, str]) -> None:
    assert client.get("/api/v1/tokens", headers=auth(tokens["write"])).status_code == 403
    made = client.post("/api/v1/tokens", json={"name": "deployer", "scope": "write"},
                       headers=auth(tokens["admin"]))
    assert made.status_code == 201 and made.json()["token"].startswith("cml_")
    listed = client.get("/api/v1/tokens", headers=auth(tokens["admin"]))
    assert "deployer" in {t["name"] for t in listed.json()}
    for secret in (*tokens.values(), made.json()["token"]):
        assert secret not in listed.text
    gone = client.post("/api/v1/tokens/deployer/revoke", headers=auth(tokens["admin"]))
    assert gone.json()["state"] == "revoked"


def test_openapi_lists_every_route(client: TestClient) -> None:
    spec = client.get("/api/v1/openapi.json").json()
    for path in ("/api/v1/nodes", "/api/v1/nodes/{name}", "/api/v1/runs", "/api/v1/check",
                 "/api/v1/deployments", "/api/v1/plan", "/api/v1/tokens"):
        assert path in spec["paths"], path


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    headers = client.get("/api/v1/nodes").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in headers["content-security-policy"]
