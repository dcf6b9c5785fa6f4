"""Live OpenLineage ingestion (DESIGN.md, "Pipelines report themselves"): what a batch of
events registers, idempotency and order, observed versus declared, the mapping file,
bad input, and every conformance event, on every backend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from chainml.cli import cli
from chainml.db import engine as dbe
from chainml.db import migrate
from chainml.db.models import Event as HistoryEvent
from chainml.db.models import LineageEvent, RetestMark, Version
from chainml.errors import InvalidInput
from chainml.ingest.mapping import Mapping, node_name, parse_mapping
from chainml.registry import Registry
from tests.clirun import error_line, ok, ok_json, run
from tests.shared import shared_path

RUN_A = "0176a8c2-fe01-7439-87e6-56a1a1b4029f"
RUN_B = "0176a8c2-fe01-7439-87e6-56a1a1b402a0"
RUN_C = "0176a8c2-fe01-7439-87e6-56a1a1b402a1"
JOB = "job:airflow/daily.features"
RAW = "dataset:postgres://db:5432/raw.clicks"
USERS = "dataset:postgres://db:5432/raw.users"
OUT = "dataset:postgres://db:5432/ml.features"


def ds(name: str, **facets: Any) -> dict[str, Any]:
    ns, _, rest = name.removeprefix("dataset:").rpartition("/")
    return {"namespace": ns, "name": rest, **({"facets": facets} if facets else {})}


def event(run_id: str, etype: str, *, job: str = JOB, inputs: tuple[str, ...] = (),
          outputs: tuple[str, ...] = (), t: int = 0, code: str | None = None,
          out_version: str | None = None) -> dict[str, Any]:
    ns, _, name = job.removeprefix("job:").partition("/")
    job_facets = {"sourceCodeLocation": {"type": "git", "url": "https://x/y",
                                         "version": code}} if code else {}
    return {"eventType": etype, "eventTime": f"2026-11-30T02:{t:02d}:00Z",
            "run": {"runId": run_id}, "job": {"namespace": ns, "name": name,
                                              "facets": job_facets},
            "inputs": [ds(i) for i in inputs],
            "outputs": [ds(o, version={"datasetVersion": out_version}) if out_version
                        else ds(o) for o in outputs],
            "producer": "https://example.com/tests", "schemaURL":
            "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


def day(run_id: str = RUN_A, **kw: Any) -> list[dict[str, Any]]:
    """A run as Airflow reports it: inputs and outputs on START, COMPLETE bare."""
    return [event(run_id, "START", inputs=(RAW, USERS), outputs=(OUT,), t=0, **kw),
            event(run_id, "COMPLETE", t=5, **kw)]


def count(reg: Registry, model: Any) -> int:
    with dbe.read_session(reg.engine) as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_a_completed_run_registers_its_job_and_outputs(registry: Registry) -> None:
    result = registry.ingest_events(day())
    assert (result.stored, result.duplicates) == (2, 0)
    assert [(r.job, r.version, r.created_version, r.outputs) for r in result.runs] == [
        (JOB, RUN_A, True, [f"{OUT}@{RUN_A}"])]
    job = registry.node(JOB)
    assert (job.kind, job.current_version) == ("feature", RUN_A)
    assert sorted(i.name for i in job.inputs) == [RAW, USERS]  # what the run read
    out = registry.node(OUT)
    assert (out.kind, [i.name for i in out.inputs]) == ("feature", [JOB])
    assert registry.node(RAW).kind == "source"
    assert job.meta["openlineage"] == {"type": "job", "namespace": "airflow",
                                            "name": "daily.features"}
    assert registry.findings() == []
    actions = [e.action for e in registry.log(JOB)]
    assert actions[-1] == "lineage.completed"


def test_redelivery_and_any_order_register_once(registry: Registry) -> None:
    events = day()
    registry.ingest_events(list(reversed(events)))  # COMPLETE first, then START
    before = (count(registry, Version), count(registry, HistoryEvent),
              count(registry, LineageEvent))
    again = registry.ingest_events(events + events)
    assert (again.stored, again.duplicates, again.runs) == (0, 4, [])
    assert (count(registry, Version), count(registry, HistoryEvent),
            count(registry, LineageEvent)) == before
    # Reordered across batches: the bare COMPLETE came alone, its START later.
    registry.ingest_events([event(RUN_B, "COMPLETE", t=9)])
    assert registry.node(JOB).current_version == RUN_B
    late = registry.ingest_events([event(RUN_B, "START", inputs=(RAW, USERS),
                                         outputs=(OUT,), t=6)])
    assert late.runs[0].outputs == [f"{OUT}@{RUN_B}"]  # the union, registered late
    assert registry.node(OUT).current_version == RUN_B
    assert registry.ingest_events([event(RUN_B, "START", t=6)]).duplicates == 1


def test_only_complete_registers(registry: Registry) -> None:
    result = registry.ingest_events([
        event(RUN_A, "START", inputs=(RAW,), outputs=(OUT,)),
        event(RUN_B, "START", inputs=(RAW,), outputs=(OUT,)),
        event(RUN_B, "FAIL", t=3),
        event(RUN_C, "START", inputs=(RAW,), outputs=(OUT,)),
        event(RUN_C, "ABORT", t=3),
        event(RUN_C, "RUNNING", t=2),
    ])
    assert (result.stored, result.runs, result.created) == (6, [], [])
    assert registry.nodes() == []
    assert count(registry, LineageEvent) == 6


def test_versions_come_from_facets_and_marks_follow(registry: Registry) -> None:
    registry.ingest_events(day(code="abc123", out_version="snap-1"))
    assert registry.node(JOB).current_version == "abc123"
    assert registry.node(OUT).current_version == "snap-1"
    registry.register(kind="model", name="ranker", version="1", inputs=[OUT])
    registry.record_test("ranker", passed=True)
    assert registry.check().ok
    # Same code, new data: the job keeps its version, the output gets a new one, and
    # the model reading it needs a retest, exactly as `register` would have said.
    result = registry.ingest_events(day(RUN_B, code="abc123", out_version="snap-2"))
    assert [(r.version, r.created_version, r.outputs) for r in result.runs] == [
        ("abc123", False, [f"{OUT}@snap-2"])]
    assert [v.label for v in registry.node(JOB).versions] == ["abc123"]
    assert result.marked == 1
    gate = registry.check()
    assert not gate.ok and [e.name for e in gate.failing] == ["ranker"]
    reasons = gate.failing[0].reasons
    assert [(r.cause, r.from_, r.to) for r in reasons] == [(OUT, "snap-1", "snap-2")]


def test_ingestion_marks_as_register_does(tmp_path: Path) -> None:
    """The oracle: the same changes typed as `register` commands in another registry
    leave the same statuses and reasons."""
    by_events = Registry.init(url=f"sqlite:///{tmp_path / 'a.db'}")
    by_hand = Registry.init(url=f"sqlite:///{tmp_path / 'b.db'}")
    by_events.ingest_events(day(code="v1"))
    by_hand.register(kind="source", name=RAW, version="1", inputs=[])
    by_hand.register(kind="source", name=USERS, version="1", inputs=[])
    by_hand.register(kind="feature", name=JOB, version="v1", inputs=[RAW, USERS])
    by_hand.register(kind="feature", name=OUT, version=RUN_A, inputs=[JOB])
    for reg in (by_events, by_hand):
        reg.register(kind="model", name="ranker", version="1", inputs=[OUT])
        reg.register(kind="policy", name="limits", version="1", inputs=["ranker"])
        reg.record_test("ranker", passed=True)
        reg.record_test("limits", passed=True)
    by_events.ingest_events(day(RUN_B, code="v2"))
    by_hand.register(kind="feature", name=JOB, version="v2")
    by_hand.register(kind="feature", name=OUT, version=RUN_B)

    def seen(reg: Registry) -> list[Any]:
        return [(e.name, e.version, e.status.value, sorted(
            (r.cause, r.from_, r.to) for r in e.reasons)) for e in reg.status()]

    assert seen(by_events) == seen(by_hand)
    assert seen(by_events)[0][2] == "needs_retest"
    assert count(by_events, RetestMark) == count(by_hand, RetestMark)


def test_undeclared_reads_are_findings_not_edges(registry: Registry, database_url: str
                                                 ) -> None:
    registry.register(kind="source", name=RAW, version="1", inputs=[])
    registry.register(kind="feature", name=JOB, version="hand", inputs=[RAW])
    result = registry.ingest_events(day())
    assert result.findings == 1 and result.runs[0].findings == [f"{JOB} <- {USERS}"]
    job = registry.node(JOB)
    assert [i.name for i in job.inputs] == [RAW]  # declared inputs kept
    assert [(f.input, f.times, f.first_run) for f in job.undeclared_inputs] == [
        (USERS, 1, RUN_A)]
    registry.ingest_events(day(RUN_B))
    assert [(f.input, f.times, f.last_run) for f in registry.findings()] == [
        (USERS, 2, RUN_B)]
    # The gate: reported with --observed, failing only under --strict.
    assert "undeclared" not in ok(database_url, "check").output
    text = run(database_url, "check", "--observed")
    assert text.exit_code == 0 and f"{JOB} read {USERS}" in text.output
    strict = ok_json_exit(database_url, "check", "--observed", "--strict", "--json")
    assert strict["ok"] is False and strict["observed"][0]["input"] == USERS
    assert f"{USERS} (last in run {RUN_B}, 2 runs)" in ok(database_url, "show", JOB).output
    # Declaring the input closes the finding.
    registry.register(kind="feature", name=JOB, version="hand2", inputs=[RAW, USERS])
    assert registry.findings() == []
    assert run(database_url, "check", "--observed", "--strict").exit_code == 0


def ok_json_exit(url: str, *args: str) -> Any:
    result = run(url, *args)
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.output)


def test_a_batch_is_settled_upstream_first(registry: Registry) -> None:
    """A day's events in one batch, the reader's COMPLETE before the writer's: the
    dataset the writer produces is a feature of it, not a source."""
    reader = event(RUN_B, "COMPLETE", job="job:airflow/train", inputs=(OUT,), t=1)
    writer = event(RUN_A, "COMPLETE", inputs=(RAW,), outputs=(OUT,), t=50)
    registry.ingest_events([reader, writer])
    out = registry.node(OUT)
    assert (out.kind, [i.name for i in out.inputs]) == ("feature", [JOB])
    assert registry.findings() == []


def test_across_batches_the_first_word_stays(registry: Registry) -> None:
    """A dataset first seen read is a source; its writer reported later is a finding on
    it (a source reads nothing), and its writes are new versions of it."""
    registry.ingest_events([event(RUN_B, "COMPLETE", job="job:airflow/train",
                                  inputs=(OUT,), t=1)])
    result = registry.ingest_events([event(RUN_A, "COMPLETE", inputs=(RAW,),
                                           outputs=(OUT,), t=50)])
    assert registry.node(OUT).kind == "source"
    assert registry.node(OUT).current_version == RUN_A
    assert result.runs[0].findings == [f"{OUT} <- {JOB}"]


def test_an_in_place_update_is_a_feedback_read(registry: Registry) -> None:
    table = "dataset:warehouse/agg.daily"
    first = registry.ingest_events([event(RUN_A, "COMPLETE", inputs=(RAW, table),
                                          outputs=(table,))])
    # The dataset did not exist when the job's first version was registered: its read
    # is a finding that says to declare it.
    assert first.runs[0].findings == [f"{JOB} <- {table}"]
    assert [i.name for i in registry.node(table).inputs] == [JOB]
    registry.register(kind="feature", name=JOB, version="declared", inputs=[RAW],
                      feedback=[table])
    assert registry.findings() == []
    second = registry.ingest_events([event(RUN_B, "COMPLETE", inputs=(RAW, table),
                                           outputs=(table,), code="v2")])
    assert second.runs[0].findings == [] and registry.node(JOB).feedback == [table]


def test_the_mapping_names_kinds_and_ignores(registry: Registry, tmp_path: Path,
                                             database_url: str) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        "chainml-mapping: 1\n"
        "rules:\n"
        "  - match: 'job:airflow/*'\n"
        "    name: 'train.{name}'\n"
        "    kind: model\n"
        "  - match: 'dataset:postgres://db:5432/raw.users'\n"
        "    ignore: true\n"
        "  - match: 'dataset:postgres://db:5432/*'\n"
        "    name: '{name}'\n"
        "job_version: [run.nominalTime.nominalStartTime, job.sourceCodeLocation.version]\n",
        encoding="utf-8")
    events = day(code="c0de")
    events[0]["run"]["facets"] = {"nominalTime": {"nominalStartTime": "2026-11-30"}}
    result = registry.ingest_events(events, mapping=_load(path))
    assert [(r.job, r.version) for r in result.runs] == [("train.daily.features",
                                                          "2026-11-30")]
    job = registry.node("train.daily.features")
    assert job.kind == "model" and [i.name for i in job.inputs] == ["raw.clicks"]
    assert [n.name for n in registry.nodes()] == ["ml.features", "raw.clicks",
                                                  "train.daily.features"]


def _load(path: Path) -> Mapping:
    from chainml.ingest.mapping import load_mapping

    return load_mapping(path)


@pytest.mark.parametrize(("data", "message"), [
    ({"rules": [{"match": "nodes:*"}]}, "must start with job: or dataset:"),
    ({"rules": [{"match": "job:*", "kind": "modle"}]}, "kind 'modle' is not one of"),
    ({"rules": [{"match": "job:*", "name": "{owner}"}]}, "may use only"),
    ({"rules": [{"match": "job:*", "colour": "red"}]}, "unknown key 'colour'"),
    ({"job_version": ["facets.version"]}, "job_version must be a list of facet paths"),
    ({"rule": []}, "unknown key 'rule'"),
    ({"chainml-mapping": 2}, "chainml-mapping must be 1"),
])
def test_a_bad_mapping_is_one_sentence(data: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_mapping(data, "m.yaml")
    assert str(caught.value).startswith("m.yaml") and "\n" not in str(caught.value)


def test_bad_events_change_nothing(registry: Registry, database_url: str,
                                   tmp_path: Path) -> None:
    good = day()
    bad = event(RUN_B, "COMPLETE")
    del bad["job"]["name"]
    with pytest.raises(InvalidInput, match=r"request event 3: job.name is missing"):
        registry.ingest_events([*good, bad])
    too_long = event("x" * 300, "COMPLETE")
    with pytest.raises(InvalidInput, match="run.runId is longer than 255"):
        registry.ingest_events([too_long])
    assert count(registry, LineageEvent) == 0 and registry.nodes() == []
    # From the command line: exit 2, one sentence, nothing stored.
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in [*good, bad]) + "\n", encoding="utf-8")
    result = run(database_url, "ingest", str(path))
    assert result.exit_code == 2
    assert error_line(result) == ("Error: events.jsonl line 3: job.name is missing.")
    mapping = tmp_path / "m.yaml"
    mapping.write_text("rules: [{match: 'x'}]\n", encoding="utf-8")
    result = run(database_url, "ingest", str(path), "--mapping", str(mapping))
    assert result.exit_code == 2 and "must start with job: or dataset:" in error_line(result)
    assert count(registry, LineageEvent) == 0
    # A kind rule the chain refuses fails the batch whole.
    path.write_text("\n".join(json.dumps(e) for e in good) + "\n", encoding="utf-8")
    mapping.write_text("rules: [{match: 'dataset:*ml.features', kind: source}]\n",
                       encoding="utf-8")
    result = run(database_url, "ingest", str(path), "--mapping", str(mapping))
    assert result.exit_code == 2, result.output
    assert count(registry, LineageEvent) == 0 and registry.nodes() == []


def test_ingest_reads_files_folders_and_stdin(database_url: str, tmp_path: Path) -> None:
    ok(database_url, "init")
    folder = tmp_path / "events"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "start.json").write_text(json.dumps(day()[0], indent=2), encoding="utf-8")
    (folder / "complete.jsonl").write_text(json.dumps(day()[1]) + "\n", encoding="utf-8")
    first = ok_json(database_url, "ingest", str(folder))
    assert (first["stored"], first["runs"][0]["job"]) == (2, JOB)
    piped = CliRunner().invoke(cli, ["ingest", "-", "--json"], input=json.dumps(day()),
                               env={"CHAINML_DATABASE_URL": database_url})
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.stdout)["duplicates"] == 2
    text = ok(database_url, "ingest", str(folder)).output
    assert text.startswith("2 events: 0 new, 2 duplicates.")


def test_every_conformance_event(tmp_path: Path) -> None:
    """Each file of ../shared/conformance/openlineage into a fresh registry: accepted
    (the four the schema refuses included: chainml is lenient where nothing about the
    run changes), and a COMPLETE run of a job with datasets registers it."""
    root = shared_path("conformance", "openlineage", "events")
    files = sorted(p for p in root.rglob("*.json"))
    assert len(files) >= 25
    for i, path in enumerate(files):
        reg = Registry.init(url=f"sqlite:///{tmp_path / f'{i}.db'}")
        try:
            result = reg.ingest(path)
            data = json.loads(path.read_text(encoding="utf-8"))
            events = data if isinstance(data, list) else [data]
            assert result.events == len(events), path
            completes = {(e["run"]["runId"], e["job"]["namespace"], e["job"]["name"])
                         for e in events if e.get("eventType") == "COMPLETE" and "run" in e}
            assert {(r.run_id, r.job) for r in result.runs} == {
                (rid, node_name(f"job:{ns}/{name}")) for rid, ns, name in completes}, path
            for r in result.runs:
                assert reg.node(r.job).current_version, path
            again = reg.ingest(path)
            assert again.stored == 0 and again.runs == [], path
        finally:
            reg.close()


def test_an_upgraded_registry_takes_events(tmp_path: Path) -> None:
    """A registry at the last release's schema upgrades and ingests; downgrading past
    0007 drops the ingestion tables and keeps the history."""
    fixture = Path(__file__).parent / "data" / "schemas" / "0005.db"
    db = tmp_path / "r.db"
    shutil.copy(fixture, db)
    reg = Registry.init(url=f"sqlite:///{db}")
    try:
        assert reg.ingest_events(day()).runs[0].job == JOB
    finally:
        reg.close()
    engine = dbe.create(f"sqlite:///{db}")
    try:
        migrate.downgrade(engine, "0006")
        from sqlalchemy import inspect

        tables = inspect(engine).get_table_names()
        assert not {"lineage_event", "lineage_run", "observed_input"} & set(tables)
        with engine.connect() as conn:
            actions = [a for (a,) in conn.exec_driver_sql("SELECT action FROM event")]
        assert "lineage.completed" in actions
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.HEAD
    finally:
        engine.dispose()


def test_concurrent_deliveries_register_once(database_url: str) -> None:
    """Two writers deliver the same COMPLETE at once (the at-least-once case): it is
    stored and registered once."""
    import threading

    if database_url.startswith("sqlite"):
        pytest.skip("one writer at a time on SQLite; the PostgreSQL/MariaDB runs race")
    Registry.init(url=database_url).close()
    results: list[Any] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        reg = Registry(url=database_url)
        try:
            results.append(reg.ingest_events(day()))
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            reg.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sum(r.stored for r in results) == 2
    assert sum(len(r.runs) for r in results) == 1
    reg = Registry(url=database_url)
    try:
        assert [v.label for v in reg.node(OUT).versions] == [RUN_A]
    finally:
        reg.close()



def test_the_replay_example_runs(tmp_path: Path) -> None:
    """examples/replay-day.sh, on a fresh registry in place of the demo's: every step it
    expects to pass passes and every one it expects to fail fails."""
    import os
    import subprocess
    import sys

    out = tmp_path / "demo-out"
    out.mkdir()
    Registry.init(out).close()
    script = Path(__file__).resolve().parent.parent / "examples" / "replay-day.sh"
    env = {**os.environ, "DEMO_OUT": str(out),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CHAINML_DATABASE_URL", None)
    done = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "14 events: 0 new, 14 duplicates." in done.stdout
    assert "undeclared: train_delivery_eta <- public.customers" in done.stdout
    assert done.stdout.count("(exit 1 - as expected)") == 2
    assert done.stdout.rstrip().endswith("totals: 1 checked (1 verified); 0 failing, 0 warnings")


def test_a_dataset_event_names_a_source_unless_a_run_writes_it(registry: Registry) -> None:
    def announce(name: str) -> dict[str, Any]:
        ns, _, rest = name.removeprefix("dataset:").rpartition("/")
        return {"eventTime": "2026-11-30T01:00:00Z", "producer": "https://example.com/t",
                "dataset": {"namespace": ns, "name": rest,
                            "facets": {"version": {"datasetVersion": "v7"}}}}

    lonely = "dataset:lake/reference.countries"
    result = registry.ingest_events([announce(lonely), announce(OUT), *day()])
    assert registry.node(lonely).kind == "source"
    assert registry.node(lonely).current_version == "v7"
    assert registry.node(OUT).kind == "feature"  # its writer ran in the same batch
    assert lonely in result.created and result.findings == 0
    again = registry.ingest_events([announce(lonely)])
    assert again.duplicates == 1 and again.created == []


def test_a_sql_jobs_version_is_its_query(registry: Registry) -> None:
    def sql(run_id: str, query: str) -> dict[str, Any]:
        e = event(run_id, "COMPLETE", inputs=(RAW,), outputs=(OUT,))
        e["job"]["facets"] = {"sql": {"query": query}}
        return e

    registry.ingest_events([sql(RUN_A, "INSERT INTO f SELECT * FROM raw.clicks")])
    registry.ingest_events([sql(RUN_B, "INSERT INTO f SELECT * FROM raw.clicks")])
    registry.ingest_events([sql(RUN_C, "INSERT INTO f SELECT DISTINCT * FROM raw.clicks")])
    labels = [v.label for v in registry.node(JOB).versions]
    assert len(labels) == 2 and all(len(x) == 12 for x in labels)  # hashed: no newline
    assert len(registry.node(OUT).versions) == 3  # every run wrote a new version
