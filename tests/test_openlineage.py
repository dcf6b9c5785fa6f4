"""OpenLineage import against what real producers write: the conformance events in
``../shared/conformance/openlineage`` (Marquez's and OpenLineage's own test events, the
Marquez seed), files written by the ``openlineage-python`` client's FileTransport, and
the formats, run merging and bad input of docs/importers.md."""

from __future__ import annotations

import json
import random
import re
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from chainml.errors import InvalidInput
from chainml.files.chainfile import ChainFile, dump_chain, loads_chain, topological_order
from chainml.files.importers.common import ImporterWarning
from chainml.files.importers.openlineage import import_openlineage
from chainml.files.importers.openlineage_events import merge, parse_text, read_events
from chainml.registry import Registry
from tests.clirun import dump, error_line, ok, run
from tests.shared import SHARED, shared_path

BACKENDS = ["sqlite"]  # the importer's logic; apply itself is tested on every backend

EVENTS = ("conformance", "openlineage", "events")
DS = "dataset:my-datasource-namespace/instance.schema."
JOB = "job:my-scheduler-namespace/"
FILE = "dataset:file.localhost/file://localhost/"
NO_DATASETS = "names no input or output dataset"

# Every conformance file: the edges its import declares ("a -> b" an input, "a ~> b" a
# feedback input), or the note that leaves its only job out.
SIMPLE = {f"{DS}input-1 -> {JOB}myjob", f"{DS}input-2 -> {JOB}myjob",
          f"{JOB}myjob -> {DS}output-1"}
IN_PLACE = {f"{DS}table ~> {JOB}myjob.mytask", f"{JOB}myjob.mytask -> {DS}table"}
EXPECTED: dict[str, set[str] | str] = {
    "marquez/1.json": {f"{FILE}in_file1.txt -> {JOB}myjob", f"{FILE}in_file2.txt -> {JOB}myjob",
                       f"{JOB}myjob -> {FILE}out_file1.txt"},
    "marquez/2.json": {f"{FILE}in_file3.txt -> {JOB}myjob", f"{JOB}myjob -> {FILE}out_file2.txt"},
    "marquez/docker_metadata.json": "checked in test_marquez_seed",
    "marquez/event_additional_facet.json": IN_PLACE,
    "marquez/event_dataset_event.json": set(),  # one source, no edge
    "marquez/event_full.json": IN_PLACE,
    "marquez/event_job_event.json": {f"{DS}input-1 -> {JOB}myjob",
                                     f"{JOB}myjob -> {DS}output-1"},
    "marquez/event_large.json": IN_PLACE,
    "marquez/event_namespace_naming.json": {
        f"dataset:s3://blob-source/instance.schema.table -> {JOB}myjob.mytask",
        f"{JOB}myjob.mytask -> dataset:s3://blob-sink/instance.schema.table"},
    "marquez/event_required_nanoseconds.json": NO_DATASETS,
    "marquez/event_required_no_timezone.json": NO_DATASETS,
    "marquez/event_required_only.json": NO_DATASETS,
    "marquez/event_simple.json": SIMPLE,
    "marquez/event_unicode.json": {e.replace("myjob", "myjob.buggy_task_") for e in SIMPLE},
    "marquez/event_without_schema_url.json": SIMPLE,
    "marquez/null_nominal_end_time.json": {
        f"{DS}in_table_with_no_facets -> {JOB}myjob.task",
        f"{JOB}myjob.task -> {DS}out_table_with_no_facets"},
    "openlineage/client_python_tests_example_full_event.json": IN_PLACE,
    "openlineage/proxy_fluentd_events_event_full.json": IN_PLACE,
    "openlineage/proxy_fluentd_events_event_invalid_dataset_facet.json": {
        f"{JOB}myjob -> {DS}output-1"},
    "openlineage/proxy_fluentd_events_event_invalid_input_dataset_facet.json": {
        f"{DS}input-1 -> {JOB}myjob"},
    "openlineage/proxy_fluentd_events_event_invalid_job_facet.json": NO_DATASETS,
    "openlineage/proxy_fluentd_events_event_invalid_output_dataset_facet.json": {
        f"{JOB}myjob -> {DS}output-1"},
    "openlineage/proxy_fluentd_events_event_invalid_run_facet.json": NO_DATASETS,
    "openlineage/proxy_fluentd_events_event_simple.json": SIMPLE,
    "openlineage/spec_tests_example_full_event.json": NO_DATASETS,
}


def edges(chain: ChainFile) -> set[str]:
    return ({f"{i} -> {n.name}" for n in chain.nodes for i in n.inputs}
            | {f"{f} ~> {n.name}" for n in chain.nodes for f in n.feedback})


def inputs_of(chain: ChainFile) -> dict[str, list[str]]:
    return {n.name: n.inputs for n in chain.nodes}


def importing(path: Path) -> tuple[ChainFile, list[str]]:
    """The chain and the notes of an import; the chain must round-trip as a chain file."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chain = import_openlineage(path)
    assert loads_chain(dump_chain(chain), "c.yaml") == chain
    topological_order(chain)
    return chain, [str(w.message) for w in caught if w.category is ImporterWarning]


def event(job: str, inputs: Sequence[str] = (), outputs: Sequence[str] = (),
          run_id: str = "r1", etype: str | None = "COMPLETE",
          time: str = "2026-11-01T02:00:00Z", **extra: Any) -> dict[str, Any]:
    """A run event of namespace ``ns``, with every field a producer sends."""
    out = {"eventTime": time, "run": {"runId": run_id}, "job": {"namespace": "ns", "name": job},
           "inputs": [{"namespace": "ns", "name": n} for n in inputs],
           "outputs": [{"namespace": "ns", "name": n} for n in outputs],
           "producer": "https://example.com/producer",
           "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}
    if etype is not None:
        out["eventType"] = etype
    return out | extra


def lines(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


# --- every conformance file -------------------------------------------------------------

def _conformance_files() -> list[str]:
    folder = SHARED.joinpath(*EVENTS)
    if not folder.is_dir():
        return ["(missing)"]  # one test that skips, or fails under CI=true
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))


def test_every_conformance_file_is_in_the_table() -> None:
    shared_path(*EVENTS)
    assert set(_conformance_files()) == set(EXPECTED)


@pytest.mark.parametrize("name", _conformance_files())
def test_conformance_file_imports(name: str) -> None:
    chain, notes = importing(shared_path(*EVENTS) / name)
    expected = EXPECTED[name]
    if isinstance(expected, str):
        if expected == NO_DATASETS:
            assert chain.nodes == [] and len(notes) == 1 and NO_DATASETS in notes[0], notes
            assert notes[0].startswith(Path(name).name + ": job '")
        return
    assert notes == []
    assert edges(chain) == expected


def test_marquez_seed() -> None:
    """The 26 events Marquez seeds its demo with: inputs and outputs on START only."""
    chain, notes = importing(shared_path(*EVENTS, "marquez", "docker_metadata.json"))
    assert notes == [] and len(chain.nodes) == 26
    nodes = inputs_of(chain)
    fd = "dataset:food_delivery/public."
    assert nodes["job:food_delivery/etl_orders_7_days"] == [
        f"{fd}categories", f"{fd}menu_items", f"{fd}menus", f"{fd}orders"]
    assert nodes["job:food_delivery/etl_delivery_7_days"] == [
        f"{fd}customers", f"{fd}drivers", f"{fd}order_status", f"{fd}orders_7_days",
        f"{fd}restaurants"]
    assert nodes["job:food_delivery/email_discounts"] == [f"{fd}customers", f"{fd}discounts"]
    assert nodes[f"{fd}discounts"] == ["job:food_delivery/delivery_times_7_days"]
    assert nodes[f"{fd}top_delivery_times"] == ["job:food_delivery/delivery_times_7_days"]
    assert nodes["job:food_delivery/etl_orders"] == []
    # Every table is written by a job, so there is no source; email_discounts writes nothing.
    assert {n.kind.value for n in chain.nodes} == {"feature"}
    assert not any("job:food_delivery/email_discounts" in ins for ins in nodes.values())


def test_the_conformance_folders_merge_runs_across_files() -> None:
    chain, notes = importing(shared_path(*EVENTS, "marquez"))
    assert edges(chain) >= {*EXPECTED["marquez/1.json"], *EXPECTED["marquez/2.json"]}
    nodes = inputs_of(chain)
    # event_simple.json and event_without_schema_url.json are one run of myjob; so are
    # 1.json (RUNNING) and 2.json (COMPLETE), another run of it. The latest run (2.json,
    # 2020-12-29) describes the job, with the inputs of both its events.
    assert nodes[f"{JOB}myjob"] == [f"{FILE}in_file1.txt", f"{FILE}in_file2.txt",
                                   f"{FILE}in_file3.txt"]
    assert {n.name for n in chain.nodes} >= {f"{FILE}out_file1.txt", f"{FILE}out_file2.txt"}
    assert [n for n in notes if "my-namespace/myjob" in n] and len(notes) == 1
    whole, _ = importing(shared_path(*EVENTS))
    assert {n.name for n in whole.nodes} >= {n.name for n in chain.nodes}


# --- schema-invalid files: what chainml accepts, and how ----------------------------------

def test_no_schema_url_is_accepted() -> None:
    """Lenient: schemaURL (and producer) say who wrote an event, not what ran."""
    with_url, _ = importing(shared_path(*EVENTS, "marquez", "event_simple.json"))
    without, _ = importing(shared_path(*EVENTS, "marquez", "event_without_schema_url.json"))
    assert without == with_url
    assert edges(importing(shared_path(*EVENTS, "marquez", "1.json"))[0])


def test_event_time_without_time_zone_is_utc() -> None:
    naive, = read_events(shared_path(*EVENTS, "marquez", "event_required_no_timezone.json"))
    zoned, = read_events(shared_path(*EVENTS, "marquez", "event_required_nanoseconds.json"))
    assert naive.time == zoned.time == datetime(2020, 12, 28, 19, 51, 1, 641499, timezone.utc)


def test_naive_times_order_runs_as_utc(tmp_path: Path) -> None:
    # 10:00+02:00 is 08:00 UTC, so the naive 09:00 run is the later one and describes the job.
    p = tmp_path / "e.jsonl"
    p.write_text(lines(event("j", ["b"], run_id="2", time="2026-01-01T09:00:00"),
                       event("j", ["a"], run_id="1", time="2026-01-01T10:00:00+02:00")))
    assert inputs_of(import_openlineage(p))["job:ns/j"] == ["dataset:ns/b"]


@pytest.mark.parametrize(("time", "utc"), [
    ("2026-11-01T02:00:05Z", datetime(2026, 11, 1, 2, 0, 5, tzinfo=timezone.utc)),
    ("2026-11-01T02:00:05.123456789+01:00",
     datetime(2026, 11, 1, 1, 0, 5, 123456, tzinfo=timezone.utc)),
    ("2026-11-01 02:00:05-0130", datetime(2026, 11, 1, 3, 30, 5, tzinfo=timezone.utc)),
    ("2026-11-01T02:00:05", datetime(2026, 11, 1, 2, 0, 5, tzinfo=timezone.utc)),
])
def test_event_times(time: str, utc: datetime) -> None:
    parsed, = parse_text(json.dumps(event("j", time=time)), "e.json")
    assert parsed.time == utc


@pytest.mark.parametrize("time", ["2026-11-01", "2026-13-01T00:00:00Z", "1 Nov 2026", "", 5])
def test_event_time_must_be_a_date_and_time(time: object) -> None:
    with pytest.raises(InvalidInput, match=r"^e.json: eventTime "):
        parse_text(json.dumps(event("j", time=time)), "e.json")  # type: ignore[arg-type]


# --- formats ------------------------------------------------------------------------------

START = event("train", ["features"], [], etype="START", time="2026-11-01T02:00:00Z")
COMPLETE = event("train", [], ["model"], etype="COMPLETE", time="2026-11-01T03:00:00Z")
TRAIN = {"dataset:ns/features -> job:ns/train", "job:ns/train -> dataset:ns/model"}


@pytest.mark.parametrize("form", ["pretty", "compact", "array", "jsonl", "ndjson", "folder"])
def test_every_format_gives_the_same_chain(tmp_path: Path, form: str) -> None:
    if form == "pretty":
        p = tmp_path / "e.json"
        p.write_text(json.dumps(START | {"outputs": COMPLETE["outputs"]}, indent=2))
    elif form == "compact":
        p = tmp_path / "e.json"
        p.write_text(json.dumps(START | {"outputs": COMPLETE["outputs"]}) + "\n")
    elif form == "array":
        p = tmp_path / "e.json"
        p.write_text(json.dumps([COMPLETE, START], indent=4))
    elif form in ("jsonl", "ndjson"):
        p = tmp_path / f"e.{form}"
        p.write_text(lines(COMPLETE, START))
    else:
        p = tmp_path / "events"
        (p / "2026" / "11").mkdir(parents=True)
        (p / "2026" / "11" / "b-complete.json").write_text(json.dumps(COMPLETE, indent=2))
        (p / "a-start.JSON").write_text(json.dumps(START))
        (p / "README.md").write_text("not read")
        (p / "2026" / "notes.txt").write_text("{not read either")
    assert edges(import_openlineage(p)) == TRAIN


def test_folder_order_and_arrival_order_do_not_matter(tmp_path: Path) -> None:
    other = [event("score", ["model"], ["scores"], run_id="r2", etype=t,
                   time=f"2026-11-02T0{i}:00Z")  # no seconds: accepted too
             for i, t in enumerate(["START", "RUNNING", "COMPLETE"])]
    # Two reports of one moment that disagree: either may win, but always the same one.
    datasets = [{"eventTime": "2026-11-01T00:00:00Z", "dataset": {
        "namespace": "ns", "name": "features", "facets": {"version": {"datasetVersion": v}}}}
        for v in ("v7", "v8")]
    events = [START, COMPLETE, *other, *datasets]
    (tmp_path / "in-order.jsonl").write_text(lines(*events))
    reference = import_openlineage(tmp_path / "in-order.jsonl")
    assert inputs_of(reference)["dataset:ns/features"] == [] and edges(reference) >= TRAIN
    assert {n.name: n.version for n in reference.nodes}["dataset:ns/features"] in ("v7", "v8")
    for seed in range(8):
        shuffled = events + random.Random(seed).sample(events, 3)  # and some sent twice
        random.Random(seed).shuffle(shuffled)
        folder = tmp_path / f"run{seed}"
        folder.mkdir()
        for i, e in enumerate(shuffled):
            (folder / f"{i:02}.json").write_text(json.dumps(e, indent=2))
        assert import_openlineage(folder) == reference


def test_run_events_merge_and_duplicates_are_idempotent() -> None:
    start, complete = START | {"run": {"runId": "r"}}, COMPLETE | {"run": {"runId": "r"}}
    once = merge(parse_text(lines(start, complete), "e.jsonl"))
    twice = merge(parse_text(lines(complete, start, complete, start), "e.jsonl"))
    (run_once,), (run_twice,) = once.runs, twice.runs
    for r in (run_once, run_twice):
        assert (r.inputs, r.outputs) == ({("ns", "features")}, {("ns", "model")})
        assert r.event_types == {"START", "COMPLETE"}
        assert r.last == datetime(2026, 11, 1, 3, tzinfo=timezone.utc)
    assert {e.key for e in parse_text(lines(start, complete), "e.jsonl")} == {
        ("r", "START"), ("r", "COMPLETE")}


def test_job_and_dataset_events(tmp_path: Path) -> None:
    job_event = {k: v for k, v in event("design", ["raw"], ["clean"]).items()
                 if k not in ("run", "eventType")}
    dataset_event = {"eventTime": "2026-11-01T00:00:00Z",
                     "dataset": {"namespace": "ns", "name": "lookup"}}
    p = tmp_path / "e.jsonl"
    p.write_text(lines(job_event, dataset_event))
    chain = import_openlineage(p)
    assert edges(chain) == {"dataset:ns/raw -> job:ns/design", "job:ns/design -> dataset:ns/clean"}
    assert {n.name: n.kind.value for n in chain.nodes}["dataset:ns/lookup"] == "source"


# --- a run's events in separate imports -----------------------------------------------------

def test_start_then_complete_without_datasets_keeps_the_inputs(
        registry: Registry, tmp_path: Path) -> None:
    start = START | {"outputs": COMPLETE["outputs"]}
    complete = COMPLETE | {"outputs": []}
    (tmp_path / "start.json").write_text(json.dumps(start, indent=2))
    (tmp_path / "complete.json").write_text(json.dumps(complete, indent=2))
    registry.import_file("openlineage", tmp_path / "start.json")
    before = registry.node("job:ns/train")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = registry.import_file("openlineage", tmp_path / "complete.json")
    assert result.items == [] and NO_DATASETS in str(caught[0].message)
    after = registry.node("job:ns/train")
    assert after == before and [i.name for i in after.versions[-1].inputs] == [
        "dataset:ns/features"]


# --- bad input: exit 2, one sentence, nothing imported -------------------------------------

GOOD = json.dumps(START, indent=2)


@pytest.mark.parametrize(("files", "needle"), [
    ({"e.json": GOOD.replace('"job"', '"job" "x"', 1)},
     r"e.json line \d+: is not valid JSON \(Expecting ':' delimiter\)"),
    ({"e.jsonl": lines(START) + "{oops}\n"}, "e.jsonl line 2: is not JSON"),
    ({"e.json": json.dumps({"chainml": 1, "nodes": []}, indent=2)},
     "e.json: is not an OpenLineage event: it has no job, run or dataset field"),
    ({"e.json": json.dumps({k: v for k, v in START.items() if k != "eventTime"}, indent=2)},
     "e.json: eventTime is missing"),
    ({"e.jsonl": lines(START, START | {"job": {"namespace": "ns"}})},
     "e.jsonl line 2: job.name is missing"),
    ({"e.json": json.dumps([START, START | {"run": {"id": "x"}}])},
     "e.json event 2: run.runId is missing"),
    ({"e.json": json.dumps(START | {"outputs": [{"namespace": "ns", "name": 7}]})},
     r"e.json: outputs\[0\].name must be a non-empty string"),
    ({"ev/a.json": GOOD, "ev/deep/b.jsonl": lines(START, {"eventTime": 1})},
     "ev/deep/b.jsonl line 2: is not an OpenLineage event"),
    ({"ev/notes.txt": "x"}, r"ev: the folder holds no \*.json, \*.jsonl or \*.ndjson file"),
])
def test_bad_input_is_refused_with_one_sentence(database_url: str, tmp_path: Path,
                                                files: dict[str, str], needle: str) -> None:
    ok(database_url, "init")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(event("before", ["x"], ["y"])))
    ok(database_url, "import", "openlineage", str(good))
    before = dump(database_url)
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    target = tmp_path / next(iter(files)).split("/")[0]
    result = run(database_url, "import", "openlineage", str(target))
    assert result.exit_code == 2, result.output
    line = error_line(result)
    assert re.search(needle, line), line
    assert dump(database_url) == before


def test_cli_imports_a_folder(database_url: str, tmp_path: Path) -> None:
    ok(database_url, "init")
    folder = tmp_path / "lineage"
    (folder / "run-1").mkdir(parents=True)
    (folder / "run-1" / "start.json").write_text(json.dumps(START, indent=2))
    (folder / "run-1" / "complete.json").write_text(json.dumps(COMPLETE, indent=2))
    out = ok(database_url, "import", "openlineage", str(folder), "--kind-map",
             "job:*train*=model").stdout
    assert "+ job:ns/train (model)" in out and f"Applied {folder}: 3 add" in out
    again = ok(database_url, "import", "openlineage", str(folder), "--kind-map",
               "job:*train*=model").stdout
    assert again.startswith("Nothing to change: the registry already matches")


# --- files written by the openlineage-python client itself ----------------------------------

def _emit(transport_config: dict[str, Any], naive_complete: bool) -> None:
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
    from openlineage.client.transport.file import FileConfig, FileTransport

    client = OpenLineageClient(transport=FileTransport(FileConfig.from_dict(transport_config)))
    code = source_code_location_job.SourceCodeLocationJobFacet(
        type="git", url="https://example.com/repo", version="abc123")
    job = Job(namespace="ml", name="train_ranker", facets={"sourceCodeLocation": code})
    run_id = "0190a7a1-3c1e-7b5e-9a11-7c3f2d0a1b01"
    client.emit(RunEvent(
        eventType=RunState.START, eventTime="2026-11-01T02:00:00+00:00", run=Run(runId=run_id),
        job=job, inputs=[InputDataset(namespace="warehouse", name="ml.click_features")]))
    # The client's own examples send datetime.now().isoformat(): no time zone.
    complete_time = "2026-11-01T03:00:00" if naive_complete else "2026-11-01T03:00:00Z"
    client.emit(RunEvent(
        eventType=RunState.COMPLETE, eventTime=complete_time, run=Run(runId=run_id),
        job=Job(namespace="ml", name="train_ranker"),
        outputs=[OutputDataset(namespace="s3://models", name="ranker")]))


@pytest.mark.parametrize(("config", "target"), [
    ({"append": False}, "folder"),                      # one compact file per event
    ({"append": False, "debug_mode": True}, "folder"),  # one pretty-printed file per event
    ({"append": True}, "file"),                         # JSON lines
])
def test_files_written_by_the_openlineage_python_client(
        registry: Registry, tmp_path: Path, config: dict[str, Any], target: str) -> None:
    folder = tmp_path / "ol"
    folder.mkdir()
    log = folder / ("events.jsonl" if config["append"] else "events")
    _emit({"type": "file", "log_file_path": str(log), **config}, naive_complete=True)
    written = sorted(folder.iterdir())
    assert len(written) == (1 if config["append"] else 2)
    if config.get("debug_mode"):
        assert written[0].read_text().startswith("{\n  ")
    result = registry.import_file("openlineage", folder if target == "folder" else log,
                                  kind_map=["job:ml/train*=model"])
    assert sorted((i.node, i.kind) for i in result.items) == [
        ("dataset:s3://models/ranker", "feature"),
        ("dataset:warehouse/ml.click_features", "source"), ("job:ml/train_ranker", "model")]
    job = registry.node("job:ml/train_ranker")
    assert [i.name for i in job.versions[-1].inputs] == ["dataset:warehouse/ml.click_features"]
    assert job.versions[-1].meta == {"code_version": "abc123"}
    assert [i.name for i in registry.node("dataset:s3://models/ranker").versions[-1].inputs] == [
        "job:ml/train_ranker"]


def test_client_output_matches_the_spec_shape(tmp_path: Path) -> None:
    """The client's files import exactly like the same events written by hand."""
    _emit({"type": "file", "log_file_path": str(tmp_path / "e.jsonl"), "append": True},
          naive_complete=False)
    by_client = import_openlineage(tmp_path / "e.jsonl")
    assert edges(by_client) == {
        "dataset:warehouse/ml.click_features -> job:ml/train_ranker",
        "job:ml/train_ranker -> dataset:s3://models/ranker"}
