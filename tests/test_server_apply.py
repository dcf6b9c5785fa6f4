"""Chain files and imports over HTTP: ``POST /api/v1/apply`` and ``POST
/api/v1/import/{tool}`` take the file as the body and answer the ``ApplyResult`` that
``chainml apply``/``import --json`` write, with the same refusals."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import create_app

BACKENDS = ["sqlite", "postgresql"]
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
IMPORTS = Path(__file__).resolve().parent / "data" / "importers"


@pytest.fixture
def api(registry: Registry) -> tuple[TestClient, dict[str, str]]:
    token = registry.token_create("ci", scope="write").token
    return TestClient(create_app(registry)), {"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/yaml"}


def test_apply_a_chain_file(api: tuple[TestClient, dict[str, str]],
                            registry: Registry) -> None:
    client, headers = api
    text = (EXAMPLES / "chain.yaml").read_text(encoding="utf-8")
    planned = client.post("/api/v1/apply", params={"dry_run": "true"}, content=text,
                          headers=headers)
    assert planned.status_code == 200 and planned.json()["dry_run"] is True
    assert registry.nodes() == []
    done = client.post("/api/v1/apply", content=text, headers=headers).json()
    assert done["items"] and len(registry.nodes()) == len(done["items"])
    again = client.post("/api/v1/apply", content=text, headers=headers).json()
    assert again["items"] == [] and again["unchanged"] == len(done["items"])
    assert {e.actor for e in registry.log()} >= {"ci"}


def test_import_another_tools_file(api: tuple[TestClient, dict[str, str]],
                                   registry: Registry) -> None:
    client, headers = api
    manifest = (IMPORTS / "manifest.json").read_text(encoding="utf-8")
    answer = client.post("/api/v1/import/dbt", params={"kind_map": "tag:ml=model"},
                         content=manifest, headers=headers)
    assert answer.status_code == 200, answer.text
    assert any(n.kind == "model" for n in registry.nodes())
    events = (IMPORTS / "food_delivery.jsonl").read_text(encoding="utf-8")
    answer = client.post("/api/v1/import/openlineage", content=events, headers=headers)
    assert answer.status_code == 200 and answer.json()["file"].endswith("events.jsonl")


@pytest.mark.parametrize(("path", "body", "status", "words"), [
    ("/api/v1/apply", "chainml: 1\nnodes:\n  - {name: a, kind: sauce, version: '1'}\n", 400,
     "sauce"),
    ("/api/v1/apply", "", 400, "The body is empty"),
    ("/api/v1/apply", "nodes: [", 400, "request"),
    ("/api/v1/import/airflow", "{}", 400, "Unknown importer 'airflow'"),
    ("/api/v1/import/dbt", "{not json", 400, "manifest.json"),
])
def test_refusals_change_nothing(api: tuple[TestClient, dict[str, str]], registry: Registry,
                                 path: str, body: str, status: int, words: str) -> None:
    client, headers = api
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert registry.nodes() == []


def test_a_read_token_cannot_apply(api: tuple[TestClient, dict[str, str]],
                                   registry: Registry) -> None:
    client, _ = api
    reader = registry.token_create("viewer", scope="read").token
    text = (EXAMPLES / "chain.yaml").read_text(encoding="utf-8")
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {reader}"}, 403)):
        assert client.post("/api/v1/apply", content=text, headers=headers
                           ).status_code == status
    assert registry.nodes() == []
