"""Importers (dbt, DVC, OpenLineage) on faithful small samples, and the shared name mapping."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from chainml.errors import CycleError, InvalidInput, KindRuleError
from chainml.files.chainfile import ChainFile, dump_chain, loads_chain, topological_order
from chainml.files.importers.common import ImporterWarning, map_names, parse_kind_map
from chainml.files.importers.dbt import import_dbt
from chainml.files.importers.dvc import import_dvc
from chainml.files.importers.openlineage import import_openlineage
from chainml.kinds import Kind
from chainml.names import check_name

DATA = Path(__file__).parent / "data" / "importers"
MANIFEST, DVC_YAML, EVENTS = DATA / "manifest.json", DATA / "dvc.yaml", DATA / "food_delivery.jsonl"


def by_name(f: ChainFile) -> dict[str, tuple[Kind, str, list[str]]]:
    return {n.name: (n.kind, n.version, n.inputs) for n in f.nodes}


def edges(f: ChainFile) -> int:
    return sum(len(n.inputs) for n in f.nodes)


def changed(a: ChainFile, b: ChainFile) -> set[str]:
    old, new = by_name(a), by_name(b)
    assert old.keys() == new.keys()
    return {n for n in old if old[n] != new[n]}


def valid_chain(f: ChainFile) -> None:
    """Every import is a chain file that round-trips and sorts topologically."""
    assert loads_chain(dump_chain(f), "c.yaml") == f
    topological_order(f)


# --- common --------------------------------------------------------------------------

def test_map_names_sanitises_and_keeps_valid_names() -> None:
    m = map_names(["model.pkg.a", "task:Apply Types", "s3://lake/events", "x" * 250])
    assert m["model.pkg.a"] == "model.pkg.a" and m["s3://lake/events"] == "s3://lake/events"
    assert m["task:Apply Types"] == "task:Apply_Types"
    assert len(m["x" * 250]) == 200 and m["x" * 250].startswith("x" * 191 + "-")
    for name in m.values():
        check_name(name)


def test_map_names_resolves_collisions_deterministically() -> None:
    raws = ["a b", "a_b", "A_B", "a:b", "é", "ü"]
    first = map_names(raws)
    shuffled = list(raws)
    random.Random(3).shuffle(shuffled)
    assert map_names(shuffled) == first
    assert len({v.lower() for v in first.values()}) == len(raws)
    assert first["A_B"] == "A_B"  # a valid name keeps itself; sorts before 'a_b'
    assert first["a_b"].startswith("a_b-") and first["a b"].startswith("a_b-")


@pytest.mark.parametrize("rule", ["tag=model", "tag:ml", "tag:ml=robot", "colour:red=model",
                                  "tag:=model"])
def test_bad_kind_map_rules(rule: str) -> None:
    with pytest.raises(InvalidInput, match="Invalid kind_map rule"):
        parse_kind_map([rule], ("tag", "path"))


def test_kind_map_as_mapping() -> None:
    rules = parse_kind_map({"tag:ml": "model"}, ("tag",))
    assert rules[0].kind is Kind.MODEL and rules[0].matches({"tag": ["x", "ml"]})


# --- dbt -----------------------------------------------------------------------------

def test_dbt_default_mapping() -> None:
    f = import_dbt(MANIFEST)
    nodes = by_name(f)
    assert len(nodes) == 12 and edges(f) == 14
    assert not any("unique_customers" in n for n in nodes)  # the test node is ignored
    assert nodes["jaffle_shop/source:ecom.raw_orders"][0] is Kind.SOURCE
    assert nodes["jaffle_shop/raw_payments"][0] is Kind.FEATURE  # a seed
    assert nodes["jaffle_shop/orders_snapshot"][0] is Kind.FEATURE
    assert nodes["jaffle_shop/churn_model"][0] is Kind.FEATURE  # no kind_map: SQL-ish
    dash = nodes["jaffle_shop/exposure:churn_dashboard"]
    assert dash[0] is Kind.CONSUMER
    assert dash[2] == ["jaffle_shop/churn_model", "jaffle_shop/customers"]
    manifest = json.loads(MANIFEST.read_text())
    checksum = manifest["nodes"]["model.jaffle_shop.stg_orders"]["checksum"]["checksum"]
    assert nodes["jaffle_shop/stg_orders"][1] == checksum[:12]
    assert nodes["jaffle_shop/customers"][2] == [
        "jaffle_shop/stg_customers", "jaffle_shop/stg_orders", "jaffle_shop/stg_payments"]
    model = next(n for n in f.nodes if n.name == "jaffle_shop/churn_model")
    assert model.owner == "ml-team" and model.tags == ["ml"]
    assert model.node_meta["dbt"]["unique_id"] == "model.jaffle_shop.churn_model"
    valid_chain(f)


@pytest.mark.parametrize(("kind_map", "expected"), [
    (["tag:ml=model"], {"jaffle_shop/churn_model": Kind.MODEL,
                        "jaffle_shop/churn_features": Kind.FEATURE}),
    (["path:models/ml/*=model"], {"jaffle_shop/churn_model": Kind.MODEL,
                                  "jaffle_shop/churn_features": Kind.MODEL}),
    (["resource:seed=source"], {"jaffle_shop/raw_payments": Kind.SOURCE}),
    (["tag:ml=consumer", "path:models/ml/*=model"], {"jaffle_shop/churn_model": Kind.CONSUMER,
                                                     "jaffle_shop/churn_features": Kind.MODEL}),
    ({"name:churn_*": "model"}, {"jaffle_shop/churn_features": Kind.MODEL}),
], ids=["tag", "path-glob", "resource", "first-match-wins", "mapping"])
def test_dbt_kind_map(kind_map: list[str], expected: dict[str, Kind]) -> None:
    nodes = by_name(import_dbt(MANIFEST, kind_map))
    assert {n: nodes[n][0] for n in expected} == expected


def test_dbt_kind_map_breaking_the_kind_rule_is_refused() -> None:
    with pytest.raises(KindRuleError, match=r"manifest.json \(node .jaffle_shop/stg_.*kind_map"):
        import_dbt(MANIFEST, ["path:models/staging/*=source"])


def test_dbt_reimport_changes_only_the_changed_node(tmp_path: Path) -> None:
    manifest = json.loads(MANIFEST.read_text())
    manifest["nodes"]["model.jaffle_shop.stg_orders"]["checksum"]["checksum"] = "ab" * 32
    changed_path = tmp_path / "manifest.json"
    changed_path.write_text(json.dumps(manifest))
    before, after = import_dbt(MANIFEST), import_dbt(changed_path)
    assert changed(before, after) == {"jaffle_shop/stg_orders"}
    assert by_name(after)["jaffle_shop/stg_orders"][1] == "abababababab"


@pytest.mark.parametrize(("mutate", "needle"), [
    (lambda m: m.update(nodes=[]), r"manifest.json \(nodes\): it is not an object"),
    (lambda m: m["nodes"]["model.jaffle_shop.orders"].update(depends_on={"nodes": "x"}),
     r"nodes\['model.jaffle_shop.orders'\]\): depends_on.nodes"),
    (lambda m: m["sources"].update({"bad": {"resource_type": "source"}}), "TYPE.PACKAGE.NAME"),
    (lambda m: m.clear(), "no 'nodes' or 'sources'"),
])
def test_dbt_malformed_manifest(tmp_path: Path, mutate: object, needle: str) -> None:
    manifest = json.loads(MANIFEST.read_text())
    mutate(manifest)  # type: ignore[operator]
    p = tmp_path / "manifest.json"
    p.write_text(json.dumps(manifest))
    with pytest.raises(InvalidInput, match=needle):
        import_dbt(p)


def test_dbt_not_json_and_too_big(tmp_path: Path) -> None:
    p = tmp_path / "manifest.json"
    p.write_text('{"nodes": {\n  "a": 1,\n}')
    with pytest.raises(InvalidInput, match="manifest.json line 3: is not valid JSON"):
        import_dbt(p)
    with pytest.raises(InvalidInput, match="larger than"):
        import_dbt(MANIFEST, max_bytes=1024 * 1024 // 64)


# --- DVC -----------------------------------------------------------------------------

def test_dvc_default_mapping_with_lock() -> None:
    f = import_dvc(DVC_YAML)
    nodes = by_name(f)
    stages = {n for n in nodes if n.startswith("stage:")}
    assert stages == {"stage:prepare", "stage:featurize", "stage:train", "stage:evaluate"}
    assert set(nodes) - stages == {"data/data.xml", "src/prepare.py", "src/featurization.py",
                                   "src/train.py", "src/evaluate.py"}
    assert edges(f) == 9
    assert all(nodes[s][0] is Kind.FEATURE for s in stages)
    assert all(nodes[s][0] is Kind.SOURCE for s in set(nodes) - stages)
    assert nodes["stage:evaluate"][2] == ["src/evaluate.py", "stage:featurize", "stage:train"]
    lock = (DATA / "dvc.lock").read_text()
    xml_md5 = lock.split("path: data/data.xml\n      hash: md5\n      md5: ")[1].split()[0]
    assert nodes["data/data.xml"][1] == xml_md5
    assert all(len(nodes[s][1]) == 12 for s in stages)
    train = next(n for n in f.nodes if n.name == "stage:train")
    assert train.meta["params"] == {"params.yaml": {
        "train.min_split": 0.01, "train.n_est": 50, "train.seed": 20170428}}
    valid_chain(f)


def test_dvc_kind_map() -> None:
    nodes = by_name(import_dvc(DVC_YAML, ["stage:train=model", "stage:evaluate=consumer"]))
    assert nodes["stage:train"][0] is Kind.MODEL and nodes["stage:evaluate"][0] is Kind.CONSUMER
    assert by_name(import_dvc(DVC_YAML, ["path:*.pkl=model"]))["stage:train"][0] is Kind.MODEL
    with pytest.raises(KindRuleError, match="dvc.yaml: "):
        import_dvc(DVC_YAML, ["stage:featurize=policy"])  # a policy may not read a source


def copy_pipeline(tmp_path: Path, lock_edit: tuple[str, str] | None = None) -> Path:
    shutil.copy(DVC_YAML, tmp_path / "dvc.yaml")
    lock = (DATA / "dvc.lock").read_text()
    if lock_edit:
        assert lock.count(lock_edit[0]) >= 1
        lock = lock.replace(*lock_edit)
    (tmp_path / "dvc.lock").write_text(lock)
    return tmp_path / "dvc.yaml"


def test_dvc_changed_output_hash_changes_only_its_stage(tmp_path: Path) -> None:
    lock = (DATA / "dvc.lock").read_text()
    train = lock[lock.index("  train:"):lock.index("  evaluate:")]
    old = train.split("path: model.pkl\n      hash: md5\n      md5: ")[1].split()[0]
    new_train = train.replace(old, "0" * 32)
    p = copy_pipeline(tmp_path, (train, new_train))
    assert changed(import_dvc(DVC_YAML), import_dvc(p)) == {"stage:train"}


def test_dvc_changed_source_hash_changes_the_source_and_its_locked_stage(tmp_path: Path) -> None:
    lock = (DATA / "dvc.lock").read_text()
    old = lock.split("path: data/data.xml\n      hash: md5\n      md5: ")[1].split()[0]
    p = copy_pipeline(tmp_path, (old, "f" * 32))
    # The stage's locked deps are part of its version: data and stage move together.
    assert changed(import_dvc(DVC_YAML), import_dvc(p)) == {"data/data.xml", "stage:prepare"}
    assert by_name(import_dvc(p))["data/data.xml"][1] == "f" * 32


def test_dvc_changed_param_changes_its_stage(tmp_path: Path) -> None:
    p = copy_pipeline(tmp_path, ("featurize.max_features: 100", "featurize.max_features: 200"))
    assert changed(import_dvc(DVC_YAML), import_dvc(p)) == {"stage:featurize"}


def test_dvc_without_lock(tmp_path: Path) -> None:
    shutil.copy(DVC_YAML, tmp_path / "dvc.yaml")
    nodes = by_name(import_dvc(tmp_path / "dvc.yaml"))
    assert nodes["data/data.xml"][1] == "unlocked"
    assert nodes["stage:train"][1].startswith("unlocked-")
    assert edges(import_dvc(tmp_path / "dvc.yaml")) == 9


def test_dvc_paths_under_outputs_wdir_and_foreach(tmp_path: Path) -> None:
    (tmp_path / "dvc.yaml").write_text("""\
stages:
  split:
    cmd: python split.py
    deps: [raw]
    outs: [data/split]
  fit:
    wdir: models
    cmd: python fit.py
    deps: [../data/split/train.csv, fit.py]
    outs: [model.bin]
  sweep:
    foreach: [1, 2]
    do:
      cmd: python sweep.py ${item}
      deps: [models/model.bin]
""")
    with pytest.warns(ImporterWarning, match=r"dvc.yaml line 11 \(stage 'sweep'\)"):
        f = import_dvc(tmp_path / "dvc.yaml")
    nodes = by_name(f)
    assert nodes["stage:fit"][2] == ["models/fit.py", "stage:split"]
    assert "stage:sweep" not in nodes


@pytest.mark.parametrize(("text", "needle"), [
    ("stages:\n  a:\n    cmd: x\n    deps: data\n", r"dvc.yaml line 4 \(stage 'a'\): deps must be"),
    ("stages:\n  a:\n    cmd: 3\n", r"line 2 \(stage 'a'\): cmd must be"),
    ("stages:\n  a:\n    cmd: x\n    outs: [{}]\n", r"outs\[0\] must be a path"),
    ("plots: []\n", "no 'stages:' section"),
    ("stages: [a]\n", "stages must be a mapping"),
    ("stages:\n  a: &x {cmd: y}\n", "anchor"),
])
def test_dvc_malformed(tmp_path: Path, text: str, needle: str) -> None:
    (tmp_path / "dvc.yaml").write_text(text)
    with pytest.raises(InvalidInput, match=needle):
        import_dvc(tmp_path / "dvc.yaml")


def test_dvc_malformed_lock(tmp_path: Path) -> None:
    p = copy_pipeline(tmp_path)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages:\n  train:\n    deps: [model.pkl]\n")
    with pytest.raises(InvalidInput, match=r"dvc.lock line 4 \(stage 'train'\): deps must be"):
        import_dvc(p)


# --- OpenLineage ---------------------------------------------------------------------

def test_openlineage_default_mapping() -> None:
    f = import_openlineage(EVENTS)
    nodes = by_name(f)
    jobs = {n for n in nodes if n.startswith("job:")}
    assert len(jobs) == 6 and len(nodes) == 11 and edges(f) == 10
    assert "dataset:food_delivery/public.orders_staging" not in nodes  # from a FAILed run
    assert all(nodes[j][0] is Kind.FEATURE for j in jobs)
    # Every dataset here is produced by a job, so none is a source.
    assert all(nodes[d][0] is Kind.FEATURE for d in set(nodes) - jobs)
    assert nodes["job:food_delivery/email_discounts"][2] == [
        "dataset:food_delivery/public.customers", "dataset:food_delivery/public.orders_7_days"]
    # Inputs and outputs sent on COMPLETE only are merged into the run.
    model = "dataset:s3://ml-artifacts/delivery_eta/model"
    assert nodes[model] == (Kind.FEATURE, "2026-11-01.1", ["job:food_delivery/train_delivery_eta"])
    assert nodes["job:food_delivery/train_delivery_eta"][2] == [
        "dataset:food_delivery/public.orders_7_days"]
    valid_chain(f)


def test_openlineage_kind_map_and_json_array(tmp_path: Path) -> None:
    nodes = by_name(import_openlineage(EVENTS, ["job:*train*=model"]))
    assert nodes["job:food_delivery/train_delivery_eta"][0] is Kind.MODEL
    events = [json.loads(line) for line in EVENTS.read_text().splitlines()]
    (tmp_path / "events.json").write_text(json.dumps(events, indent=1))
    assert import_openlineage(tmp_path / "events.json") == import_openlineage(EVENTS)


def edit_events(tmp_path: Path, old: str, new: str) -> Path:
    text = EVENTS.read_text()
    assert old in text
    p = tmp_path / "events.jsonl"
    p.write_text(text.replace(old, new))
    return p


def test_openlineage_changed_dataset_version_changes_only_it(tmp_path: Path) -> None:
    p = edit_events(tmp_path, '"datasetVersion": "2026-11-01.1"',
                    '"datasetVersion": "2026-11-08.1"')
    assert changed(import_openlineage(EVENTS), import_openlineage(p)) == {
        "dataset:s3://ml-artifacts/delivery_eta/model"}


def test_openlineage_changed_code_version_changes_only_the_job(tmp_path: Path) -> None:
    p = edit_events(tmp_path, "9f3c2a1b7d4e", "0000000000ff")
    assert changed(import_openlineage(EVENTS), import_openlineage(p)) == {
        "job:food_delivery/train_delivery_eta"}


def event(job: str, inputs: list[str], outputs: list[str], run: str = "r") -> str:
    ds = lambda n: {"namespace": "ns", "name": n}  # noqa: E731
    return json.dumps({"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00Z",
                       "run": {"runId": run}, "job": {"namespace": "ns", "name": job},
                       "inputs": [ds(n) for n in inputs], "outputs": [ds(n) for n in outputs]})


def test_openlineage_in_place_update_is_feedback_and_real_cycle_refused(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(event("dedupe", ["t", "raw"], ["t"]) + "\n")
    nodes = {n.name: n for n in import_openlineage(p).nodes}
    assert nodes["job:ns/dedupe"].inputs == ["dataset:ns/raw"]
    assert nodes["job:ns/dedupe"].feedback == ["dataset:ns/t"]
    assert nodes["dataset:ns/raw"].kind is Kind.SOURCE and nodes["dataset:ns/raw"].version == "1"
    dataset_event = {"eventTime": "2026-01-01T00:00:00Z", "dataset": {
        "namespace": "ns", "name": "lookup", "facets": {"version": {"datasetVersion": "v7"}}}}
    p.write_text(event("dedupe", ["t", "raw"], ["t"]) + "\n" + json.dumps(dataset_event) + "\n")
    nodes = {n.name: n for n in import_openlineage(p).nodes}
    assert (nodes["dataset:ns/lookup"].kind, nodes["dataset:ns/lookup"].version) == (
        Kind.SOURCE, "v7")
    p.write_text(event("a", ["x"], ["y"], "1") + "\n" + event("b", ["y"], ["x"], "2") + "\n")
    with pytest.raises(CycleError, match="e.jsonl: "):
        import_openlineage(p)


T = '"eventTime": "2026-01-01T00:00:00Z", '


@pytest.mark.parametrize(("line", "needle"), [
    ("{not json", r"e.jsonl line 2: is not JSON \(Expecting property name .* at column 2\)"),
    ('{' + T + '"eventType": "START", "run": {"runId": "x"}, "job": {"namespace": "ns"}}',
     "e.jsonl line 2: job.name is missing"),
    ('{' + T + '"run": {"runId": "x"}, "job": {"namespace": "ns", "name": ""}}',
     "e.jsonl line 2: job.name must be a non-empty string"),
    ('{' + T + '"eventType": "DONE", "run": {"runId": "x"}, "job": {"namespace": "ns", '
     '"name": "j"}}', "e.jsonl line 2: eventType 'DONE'"),
    ('{' + T + '"eventType": ["START"], "run": {"runId": "x"}, "job": {"namespace": "ns", '
     '"name": "j"}}', r"e.jsonl line 2: eventType \"\['START'\]\" is not one of"),
    ('{"eventTime": "2026-01-02T00:00:00Z", "run": {"runId": "r"}, '
     '"job": {"namespace": "ns", "name": "other"}}',
     "e.jsonl line 2: run 'r' is for job 'ns/other' here but for job 'ns/a' in e.jsonl line 1"),
    ('{' + T + '"run": {"runId": "x"}, "job": {"namespace": "ns", "name": "j"}, "inputs": {}}',
     "e.jsonl line 2: inputs must be a list"),
    ('{' + T + '"run": {"runId": "x"}, "job": {"namespace": "ns", "name": "j"}, '
     '"inputs": [{"name": "t"}]}', r"e.jsonl line 2: inputs\[0\].namespace is missing"),
    ('{"run": {"runId": "x"}, "job": {"namespace": "ns", "name": "j"}}',
     "e.jsonl line 2: eventTime is missing"),
    ('{"eventTime": "yesterday", "run": {"runId": "x"}, "job": {"namespace": "ns", "name": "j"}}',
     "e.jsonl line 2: eventTime 'yesterday' is not an ISO 8601 date and time"),
    ('{' + T + '"run": {}, "job": {"namespace": "ns", "name": "j"}}',
     "e.jsonl line 2: run.runId is missing"),
    ('{' + T + '"run": {"runId": "x"}}', "e.jsonl line 2: job is missing"),
    ('{"chainml": 1, "nodes": []}',
     "e.jsonl line 2: is not an OpenLineage event: it has no job, run or dataset field"),
    ("[1]", r"e.jsonl line 2: is not an OpenLineage event \(a JSON object is expected, "
     r"not an array\)"),
])
def test_openlineage_malformed(tmp_path: Path, line: str, needle: str) -> None:
    p = tmp_path / "e.jsonl"
    p.write_text(event("a", [], ["y"]) + "\n" + line + "\n")
    with pytest.raises(InvalidInput, match=needle):
        import_openlineage(p)


def test_foreign_text_loses_what_xml_forbids() -> None:
    # A dbt description or an OpenLineage facet nobody can edit: cleaned, not refused.
    from chainml.files.importers.common import clean_text

    assert clean_text("a\x00b\x1bc\ufffed\uffffe\ud800f\r\ng\rh\ti") == "abcdef\ng\nh\ti"
    assert clean_text("\x00\ufffe") is None
