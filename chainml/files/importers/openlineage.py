"""Import lineage from OpenLineage events: a file or a folder of them.

Reading and checking the events, and merging a run's events, is
:mod:`chainml.files.importers.openlineage_events` (formats, and what is strict or
lenient, in its docstring). Mapping:

* Runs: a run's inputs and outputs are the union over its events, whatever their
  order (producers often send inputs and outputs on START only, as Marquez's seed
  does, or only on COMPLETE). A job is described by one run: the latest by
  ``eventTime``, preferring runs that did not FAIL or ABORT and that name datasets.
* A job none of whose runs names a dataset is left out (with a note): such events
  say nothing about its lineage, so importing a run's COMPLETE event after its
  START keeps the inputs the START gave the job.
* Nodes: ``job:<namespace>/<name>`` for each job, kind ``feature`` (jobs with no
  outputs included); ``dataset:<namespace>/<name>`` for each dataset of those runs,
  kind ``source`` when no job produces it, else ``feature``. Names pass through
  :func:`common.map_names`. DatasetEvents (a ``dataset`` and no ``job``) add datasets.
* Edges: input dataset -> job -> output dataset. A job that reads a dataset it also
  writes (an in-place update) gets that dataset as a *feedback* input, so the graph
  stays acyclic.
* Versions: a job's is 12 hex digits of a hash of its sorted inputs and outputs
  and, when present, the ``sourceCodeLocation.version``, ``sourceCode``, ``sql`` and
  ``jobType`` facets of its run. A dataset's is its ``version`` facet's
  ``datasetVersion`` (the latest by ``eventTime``); without one, ``1`` for a source,
  and for a produced dataset a hash of its producers, so that a change of producer is
  a new version (versions are immutable).
* ``kind_map`` rules, first match wins, PATTERN a glob on ``namespace/name``:
  ``job:*train*=model``, ``dataset:warehouse/ml.*=feature``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainml.files.chainfile import ChainFile, ChainNode
from chainml.files.importers.common import (
    MAX_IMPORT_BYTES,
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
    warn,
)
from chainml.files.importers.openlineage_events import Key, Lineage, Run, merge, read_events
from chainml.kinds import Kind

SELECTORS = ("job", "dataset")
_CODE_FACETS = ("sourceCodeLocation", "sourceCode", "sql", "jobType")


def current_runs(lineage: Lineage) -> dict[Key, Run]:
    """The run that describes each job (see the module docstring); jobs whose runs name
    no dataset are left out, with a note."""
    best: dict[Key, Run] = {}
    for run in lineage.runs:  # by time, so a later run wins a tie
        rank = (not run.failed, bool(run.inputs or run.outputs))
        old = best.get(run.job)
        if old is None or rank >= (not old.failed, bool(old.inputs or old.outputs)):
            best[run.job] = run
    for job, run in sorted(best.items()):
        if not (run.inputs or run.outputs):
            warn(f"{run.where}: job '{'/'.join(job)}' is left out: its run {run.run_id[:60]!r} "
                 "names no input or output dataset, which says nothing about its lineage.")
            del best[job]
    return best


def _dataset_label(facets: dict[str, Any], producers: list[str]) -> str:
    version = facets.get("version")
    if isinstance(version, dict) and version.get("datasetVersion") not in (None, ""):
        return label_or_hash(str(version["datasetVersion"]))
    return short_hash(producers) if producers else "1"


def _job_node(run: Run, name: str, inputs: list[str], feedback: list[str],
              outputs: list[str], kind: Kind, filename: str) -> ChainNode:
    facets = run.job_facets
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
    """Read OpenLineage events into a chain file (rules in the module docstring).

    Args:
        path: a file holding one JSON event, a JSON array of events or JSON lines, or a
            folder of such files (``*.json``, ``*.jsonl``, ``*.ndjson``, recursively).
        kind_map: rules such as ``["job:*train*=model"]``.
        max_bytes: size limit of each file, 16 MiB by default.

    Raises:
        InvalidInput: unreadable, oversized or malformed events (naming the file, the
            line or array position, and the field), a bad kind_map rule, a kind_map that
            breaks the kind rule, or a cycle.
    """
    rules = parse_kind_map(kind_map, SELECTORS)
    filename = Path(path).name or str(path)
    lineage = merge(read_events(path, max_bytes=max_bytes))
    runs = current_runs(lineage)
    produced: dict[Key, set[Key]] = {}
    for job, run in runs.items():
        for ds in run.outputs:
            produced.setdefault(ds, set()).add(job)
    datasets = lineage.static_datasets.union(*(r.inputs | r.outputs for r in runs.values()))
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
                               sorted(ds_name[d] for d in run.outputs), kind, filename))
    for ds in datasets:
        producers = sorted(job_name[j] for j in produced.get(ds, ()))
        facets = lineage.dataset_facets.get(ds, {})
        doc = facets.get("documentation")
        nodes.append(make_node(
            filename, name=ds_name[ds], inputs=producers,
            kind=pick_kind(rules, {"dataset": [f"{ds[0]}/{ds[1]}"]},
                           Kind.FEATURE if producers else Kind.SOURCE),
            version=_dataset_label(facets, producers),
            description=clean_text(doc.get("description")) if isinstance(doc, dict) else None,
            node_meta={"openlineage": {"type": "dataset", "namespace": ds[0], "name": ds[1]}}))
    return build_chain(nodes, filename)
