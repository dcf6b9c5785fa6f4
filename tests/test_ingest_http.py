"""``POST /api/v1/lineage`` as real producers use it: the ``openlineage-python`` client's
HTTP transport (plain and gzip, with an API key) posting to a running ``chainml serve``,
and the body rules (batches, gzip bombs, bad events, tokens) through the ASGI app."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from chainml.registry import Registry
from chainml.server.app import Settings, create_app
from tests.serving import serving, stop
from tests.shared import shared_path
from tests.test_ingest import JOB, OUT, RUN_A, RUN_B, day, event

BACKENDS = ["sqlite", "postgresql"]


def _emit(base: str, token: str | None, compression: str | None, run_id: str) -> None:
    from openlineage.client import OpenLineageClient
    from openlineage.client.event_v2 import (
        InputDataset,
        Job,
        OutputDataset,
        Run,
        RunEvent,
        RunState,
    )
    from openlineage.client.facet_v2 import source_code_location_job
    from openlineage.client.transport.http import HttpConfig, HttpTransport

    config: dict[str, Any] = {"url": base}
    if token:
        config["auth"] = {"type": "api_key", "apiKey": token}
    if compression:
        config["compression"] = compression
    client = OpenLineageClient(transport=HttpTransport(HttpConfig.from_dict(config)))
    code = source_code_location_job.SourceCodeLocationJobFacet(
        type="git", url="https://example.com/repo", version=f"code-{run_id[-4:]}")
    job = Job(namespace="ml", name="train_ranker", facets={"sourceCodeLocation": code})
    client.emit(RunEvent(eventType=RunState.START, eventTime="2026-11-30T02:00:00+00:00",
                         run=Run(runId=run_id), job=job,
                         inputs=[InputDataset(namespace="warehouse", name="ml.clicks")]))
    client.emit(RunEvent(eventType=RunState.COMPLETE, eventTime="2026-11-30T03:00:00+00:00",
                         run=Run(runId=run_id), job=job,
                         outputs=[OutputDataset(namespace="s3://models", name="ranker")]))


def test_the_openlineage_client_reports_to_chainml(database_url: str) -> None:
    reg = Registry.init(url=database_url)
    token = reg.token_create("airflow", scope="write").token
    reg.close()
    workers = ["--workers", "2"] if database_url.startswith("postgresql") else []
    proc = serving(database_url, *workers)
    try:
        base = proc.base  # type: ignore[attr-defined]
        _emit(base, token, None, "0190a7a1-3c1e-7b5e-9a11-7c3f2d0a0001")
        _emit(base, token, "gzip", "0190a7a1-3c1e-7b5e-9a11-7c3f2d0a0002")
        from requests import HTTPError

        with pytest.raises(HTTPError, match="401"):
            _emit(base, None, None, "0190a7a1-3c1e-7b5e-9a11-7c3f2d0a0003")
    finally:
        log = stop(proc)
    assert token not in log and "Traceback" not in log
    reg = Registry(url=database_url)
    try:
        job = reg.node("job:ml/train_ranker")
        assert [v.label for v in job.versions] == ["code-0001", "code-0002"]
        assert [i.name for i in job.inputs] == ["dataset:warehouse/ml.clicks"]
        model = reg.node("dataset:s3://models/ranker")
        assert [v.label for v in model.versions] == [
            "0190a7a1-3c1e-7b5e-9a11-7c3f2d0a0001", "0190a7a1-3c1e-7b5e-9a11-7c3f2d0a0002"]
        assert {e.actor for e in reg.log("job:ml/train_ranker")} == {"airflow"}
    finally:
        reg.close()


@pytest.fixture
def client(registry: Registry) -> TestClient:
    return TestClient(create_app(registry, Settings(max_body=64 * 1024)))


@pytest.fixture
def writer(registry: Registry) -> dict[str, str]:
    return {"Authorization": f"Bearer {registry.token_create('w', scope='write').token}"}


def test_batches_gzip_and_duplicates(client: TestClient, writer: dict[str, str],
                                     registry: Registry) -> None:
    answer = client.post("/api/v1/lineage", json=day(), headers=writer)
    assert answer.status_code == 201 and answer.json()["runs"][0]["job"] == JOB
    again = client.post("/api/v1/lineage", content=gzip.compress(json.dumps(day()).encode()),
                        headers={**writer, "Content-Encoding": "gzip",
                                 "Content-Type": "application/json"})
    assert again.status_code == 201 and again.json()["duplicates"] == 2
    start, complete = day(RUN_B)  # one event per request, as the transports send them
    assert client.post("/api/v1/lineage", json=start, headers=writer).json()["runs"] == []
    single = client.post("/api/v1/lineage", json=complete, headers=writer)
    assert single.json()["runs"][0]["version"] == RUN_B
    assert registry.node(OUT).current_version == RUN_B
    checked = client.get("/api/v1/check", params={"observed": "true"}).json()
    assert checked["observed"] == []
    assert "observed" not in client.get("/api/v1/check").json()


@pytest.mark.parametrize(("body", "headers", "status", "words"), [
    (b"", {}, 400, "The body is empty"),
    (b"{", {}, 400, "the body"),
    (b"[1]", {}, 400, "request event 1: is not an OpenLineage event"),
    (json.dumps({"eventType": "DONE", "eventTime": "2026-11-30T00:00:00Z",
                 "run": {"runId": RUN_A}, "job": {"namespace": "a", "name": "b"}}).encode(),
     {}, 400, "eventType 'DONE' is not one of"),
    (b"not gzip", {"Content-Encoding": "gzip"}, 400, "is not gzip data"),
    (gzip.compress(b"[" + b" " * (200 * 1024) + b"]"), {"Content-Encoding": "gzip"}, 400,
     "decompressed body is over"),
    (b"{}", {"Content-Encoding": "br"}, 400, "is not accepted"),
    (b"x" * (65 * 1024), {}, 413, "over chainml's limit"),
])
def test_bad_bodies_are_one_sentence_and_store_nothing(
        client: TestClient, writer: dict[str, str], registry: Registry, body: bytes,
        headers: dict[str, str], status: int, words: str) -> None:
    answer = client.post("/api/v1/lineage", content=body,
                         headers={**writer, "Content-Type": "application/json", **headers})
    assert answer.status_code == status, answer.text
    assert words in answer.json()["error"] and "\n" not in answer.json()["error"]
    assert registry.nodes() == [] and registry.log() == [e for e in registry.log()
                                                         if e.action == "token.created"]


def test_tokens_guard_the_endpoint(client: TestClient, registry: Registry) -> None:
    reader = registry.token_create("r", scope="read").token
    revoked = registry.token_create("old", scope="write").token
    registry.token_revoke("old")
    for headers, status in (({}, 401), ({"Authorization": f"Bearer {reader}"}, 403),
                            ({"Authorization": f"Bearer {revoked}"}, 401),
                            ({"Authorization": "Bearer cml_nonsense"}, 401)):
        answer = client.post("/api/v1/lineage", json=day(), headers=headers)
        assert answer.status_code == status, (headers, answer.text)
    assert registry.nodes() == []


def test_the_marquez_seed_over_http(client: TestClient, writer: dict[str, str],
                                    registry: Registry) -> None:
    """Marquez's demo seed, one event per request in a shuffled order: the same chain as
    in one batch settled upstream first, except that a dataset read before its writer
    reported is a source (the first word stays) with the writer as a finding."""
    path = shared_path("conformance", "openlineage", "events", "marquez",
                       "docker_metadata.json")
    events = json.loads(path.read_text(encoding="utf-8"))
    for e in events:
        assert client.post("/api/v1/lineage", json=e, headers=writer).status_code == 201
    completes = {e["job"]["name"] for e in events if e["eventType"] == "COMPLETE"}
    jobs = {n.name for n in registry.nodes() if n.name.startswith("job:")}
    assert jobs == {f"job:food_delivery/{j}" for j in completes}
    for f in registry.findings():  # every finding is a writer reported after a reader
        assert f.node.startswith("dataset:") and f.input.startswith("job:")
        assert registry.node(f.node).kind == "source"


def test_a_dataset_without_namespace_is_refused(client: TestClient,
                                               writer: dict[str, str]) -> None:
    answer = client.post("/api/v1/lineage", json=[event(RUN_A, "COMPLETE", inputs=("x",))],
                         headers=writer)
    assert answer.status_code == 400 and "namespace" in answer.json()["error"]

