"""Import lineage from OpenLineage events: a JSON-lines file, or a JSON array of events.

Mapping:

* Events of one run (same ``run.runId``) are merged: producers often send inputs
  and outputs on START only (Marquez's seed does), or only on COMPLETE. A job is
  described by its latest run (the run whose last event comes last in the file),
  preferring runs that did not FAIL or ABORT and that carry datasets.
* Nodes: ``job:<namespace>/<name>`` for each job, kind ``feature`` (jobs with no
  outputs included); ``dataset:<namespace>/<name>`` for each dataset of those runs,
  kind ``source`` when no job produces it, else ``feature``. Names pass through
  :func:`common.map_names`. DatasetEvents (a ``dataset`` and no ``job``) add datasets.
* Edges: input dataset -> job -> output dataset. A job that reads a dataset it also
  writes (an in-place update) gets that dataset as a *feedback* input, so the graph
  stays acyclic.
* Versions: a job's is 12 hex digits of a hash of its sorted inputs and outputs
  and, when present, the ``sourceCodeLocation.version``, ``sourceCode``, ``sql`` and
  ``jobType`` facets. A dataset's is its ``version`` facet's ``datasetVersion`` (the
  last one seen); without one, ``1`` for a source, and for a produced dataset a hash
  of its producers, so that a change of producer is a new version (versions are
  immutable).
* ``kind_map`` rules, first match wins, PATTERN a glob on ``namespace/name``:
  ``job:*train*=model``, ``dataset:warehouse/ml.*=feature``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainml.errors import InvalidInput
from chainml.files.chainfile import ChainFile, ChainNode
from chainml.files.importers.common import (
    MAX_IMPORT_BYTES,
    MAX_IMPORT_DEPTH,
    KindMap,
    build_chain,
    clean_owner,
    clean_text,
    label_or_hash,
    make_node,
    map_names,
    parse_kind_map,
    pick_kind,
    short_hash,
)
from chainml.files.safeload import json_depth_ok, parse_json, read_text
from chainml.kinds import Kind

SELECTORS = ("job", "dataset")
EVENT_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"})
_CODE_FACETS = ("sourceCodeLocation", "sourceCode", "sql", "jobType")

Key = tuple[str, str]  # (namespace, name)


@dataclass
class _Run:
    job: Key
    inputs: set[Key] = field(default_factory=set)
    outputs: set[Key] = field(default_factory=set)
    failed: bool = False
    last: int = 0  # position of its last event in the file


def _events(text: str, filename: str) -> Iterator[tuple[str, object]]:
    """(place, event) pairs; place is 'line N' (JSON lines) or 'event N' (an array)."""
    if text.lstrip().startswith("["):
        events = parse_json(text, filename, max_depth=MAX_IMPORT_DEPTH)
        for i, event in enumerate(events):
            yield f"event {i}", event
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput(f"{filename} line {number}: is not a JSON event "
                               f"({str(exc)[:80]}).") from None
        if not json_depth_ok(event, MAX_IMPORT_DEPTH):
            raise InvalidInput(f"{filename} line {number}: nests too deep.")
        yield f"line {number}", event


def _key(value: object, where: str, what: str) -> Key:
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: {what} must be an object with namespace and name.")
    ns, name = value.get("namespace"), value.get("name")
    if not (isinstance(ns, str) and ns and isinstance(name, str) and name):
        raise InvalidInput(f"{where}: {what} needs a non-empty namespace and name.")
    return ns, name


def _facets(value: object) -> dict[str, Any]:
    facets = value.get("facets") if isinstance(value, dict) else None
    return facets if isinstance(facets, dict) else {}


class _Collector:
    """Runs, job facets and dataset facets gathered from the events."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.runs: dict[str, _Run] = {}
        self.job_facets: dict[Key, dict[str, Any]] = {}
        self.dataset_facets: dict[Key, dict[str, Any]] = {}
        self.extra_datasets: set[Key] = set()

    def datasets(self, event: dict[str, Any], side: str, where: str) -> set[Key]:
        items = event.get(side)
        items = [] if items is None else items
        if not isinstance(items, list):
            raise InvalidInput(f"{where}: {side} must be a list of datasets.")
        keys = set()
        for i, item in enumerate(items):
            key = _key(item, where, f"{side}[{i}]")
            self.dataset_facets.setdefault(key, {}).update(_facets(item))
            keys.add(key)
        return keys

    def add(self, position: int, place: str, event: object) -> None:
        where = f"{self.filename} {place}"
        if not isinstance(event, dict):
            raise InvalidInput(f"{where}: an event must be a JSON object.")
        if "job" not in event and "dataset" in event:  # a DatasetEvent
            key = _key(event["dataset"], where, "dataset")
            self.dataset_facets.setdefault(key, {}).update(_facets(event["dataset"]))
            self.extra_datasets.add(key)
            return
        job = _key(event.get("job"), where, "job")
        etype = event.get("eventType")
        if etype is not None and etype not in EVENT_TYPES:
            raise InvalidInput(f"{where}: eventType {str(etype)[:40]!r} is not one of "
                               f"{', '.join(sorted(EVENT_TYPES))}.")
        run = event.get("run")
        run_id = run.get("runId") if isinstance(run, dict) else f"job-event:{position}"
        if not isinstance(run_id, str) or not run_id:
            raise InvalidInput(f"{where}: run.runId must be a non-empty string.")
        record = self.runs.setdefault(run_id, _Run(job))
        if record.job != job:
            raise InvalidInput(f"{where}: run {run_id[:60]!r} was for job "
                               f"'{'/'.join(record.job)}' in an earlier event.")
        record.inputs |= self.datasets(event, "inputs", where)
        record.outputs |= self.datasets(event, "outputs", where)
        record.failed |= etype in ("FAIL", "ABORT")
        record.last = position
        self.job_facets.setdefault(job, {}).update(_facets(event.get("job")))

    def current_runs(self) -> dict[Key, _Run]:
        """The run that describes each job (see the module docstring)."""
        best: dict[Key, _Run] = {}
        for run in self.runs.values():
            rank = (not run.failed, bool(run.inputs or run.outputs), run.last)
            old = best.get(run.job)
            if old is None or rank > (not old.failed, bool(old.inputs or old.outputs), old.last):
                best[run.job] = run
        return best


def _dataset_label(facets: dict[str, Any], producers: list[str]) -> str:
    version = facets.get("version")
    if isinstance(version, dict) and version.get("datasetVersion") not in (None, ""):
        return label_or_hash(str(version["datasetVersion"]))
    return short_hash(producers) if producers else "1"


def _job_node(run: _Run, name: str, inputs: list[str], feedback: list[str],
              outputs: list[str], facets: dict[str, Any], kind: Kind, filename: str) -> ChainNode:
    # _producer and _schemaURL say who reported a facet, not what the job is.
    code = {k: {f: v for f, v in facets[k].items() if not f.startswith("_")}
            if isinstance(facets[k], dict) else facets[k] for k in _CODE_FACETS if k in facets}
    label = short_hash({"inputs": inputs, "feedback": feedback, "outputs": outputs,
                        "code": code})
    owners = (facets.get("ownership") or {}).get("owners") if isinstance(
        facets.get("ownership"), dict) else None
    owner = clean_owner(owners[0].get("name")) if isinstance(owners, list) and owners \
        and isinstance(owners[0], dict) else None
    doc = facets.get("documentation")
    location = facets.get("sourceCodeLocation")
    meta = {"code_version": location["version"]} if isinstance(location, dict) \
        and isinstance(location.get("version"), str) else {}
    return make_node(
        filename, name=name, kind=kind, version=label, inputs=inputs, feedback=feedback,
        owner=owner, meta=meta,
        description=clean_text(doc.get("description")) if isinstance(doc, dict) else None,
        node_meta={"openlineage": {"type": "job", "namespace": run.job[0], "name": run.job[1]}})


def import_openlineage(
    path: str | Path, kind_map: KindMap = None, *, max_bytes: int = MAX_IMPORT_BYTES
) -> ChainFile:
    """Read OpenLineage run events into a chain file (rules in the module docstring).

    Args:
        path: a ``.jsonl`` file (one event per line) or a JSON array of events.
        kind_map: rules such as ``["job:*train*=model"]``.
        max_bytes: size limit, 16 MiB by default.

    Raises:
        InvalidInput: unreadable, oversized or malformed events (naming the line), a
            bad kind_map rule, a kind_map that breaks the kind rule, or a cycle.
    """
    rules = parse_kind_map(kind_map, SELECTORS)
    filename = Path(path).name
    collector = _Collector(filename)
    for position, (place, event) in enumerate(_events(read_text(path, max_bytes), filename)):
        collector.add(position, place, event)
    runs = collector.current_runs()
    produced: dict[Key, set[Key]] = {}
    for job, run in runs.items():
        for ds in run.outputs:
            produced.setdefault(ds, set()).add(job)
    datasets = collector.extra_datasets.union(*(r.inputs | r.outputs for r in runs.values()))
    names = map_names([f"job:{ns}/{n}" for ns, n in runs]
                      + [f"dataset:{ns}/{n}" for ns, n in datasets])
    job_name = {job: names[f"job:{job[0]}/{job[1]}"] for job in runs}
    ds_name = {ds: names[f"dataset:{ds[0]}/{ds[1]}"] for ds in datasets}
    nodes = []
    for job, run in runs.items():
        inputs = sorted(ds_name[d] for d in run.inputs - run.outputs)
        feedback = sorted(ds_name[d] for d in run.inputs & run.outputs)
        kind = pick_kind(rules, {"job": [f"{job[0]}/{job[1]}"]}, Kind.FEATURE)
        nodes.append(_job_node(run, job_name[job], inputs, feedback,
                               sorted(ds_name[d] for d in run.outputs),
                               collector.job_facets.get(job, {}), kind, filename))
    for ds in datasets:
        producers = sorted(job_name[j] for j in produced.get(ds, ()))
        facets = collector.dataset_facets.get(ds, {})
        doc = facets.get("documentation")
        nodes.append(make_node(
            filename, name=ds_name[ds], inputs=producers,
            kind=pick_kind(rules, {"dataset": [f"{ds[0]}/{ds[1]}"]},
                           Kind.FEATURE if producers else Kind.SOURCE),
            version=_dataset_label(facets, producers),
            description=clean_text(doc.get("description")) if isinstance(doc, dict) else None,
            node_meta={"openlineage": {"type": "dataset", "namespace": ds[0], "name": ds[1]}}))
    return build_chain(nodes, filename)
