"""A group of lineage requests registered set-wise, when that is the same as one by one.

Group commit (``Registry.ingest_together``) stores the requests a server holds at once in
one transaction. One by one, each completed run costs ~25 statements under the write
lock (its event, its nodes, and for the job and each output: the label's check, the base
version's inputs, the version, its inputs, its history event, the node's new current
version, the walk below it for marks, its own marks), ~40 when models below need tests
(the marks pass of each new version reads their runs, snapshots and marks), and the
lock bounds the events per second. Most groups a busy fleet sends are the same shape:
each request one fresh ``COMPLETE`` run of a known job, reading and writing known
datasets, registering a new version of the job and of each output. For such a group
everything is read and written with a statement per kind of row, the retest marks the
new versions open and supersede included (``chainml.rules.moves``).

``ingest_group`` answers None (and writes nothing) for any group it cannot show to be
of that shape; the caller then stores the requests one by one (``service.ingest``). The
conditions, each what makes a step of the one-by-one path a no-op, a plain insert, or
a read that no other step of the group changes:

* each request one run event, ``COMPLETE``, of a run no other request of the group names
  and of which nothing was stored before (no duplicate, no union with earlier events);
* the job and every dataset mapped, every node there and live, no dataset read and
  written by the same run, and no node both a job and a dataset in the group (nothing
  created, no feedback input, no revival);
* each new version's label new for its node, also within the group (every ``register``
  creates a version that keeps the current one's inputs), none of those inputs retired,
  and each label valid as ``register`` checks it;
* each run's inputs declared by its job and each output declaring the job (no finding);
* no node getting a new version needs tests or has an open mark (its own runs and marks
  stay as they are; the nodes below that need tests are ``moves``' to replay).

Then the rows are exactly those of the one-by-one path, in its order: the received
events, then per request the job's version, each output's (sorted, as ``_Settle.run``
takes them), the run, and the history events in the same sequence, then the marks. The
tests compare both paths on the same requests (tests/test_ingest_group.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from chainml.db import ingested
from chainml.db import repository as repo
from chainml.errors import InvalidInput
from chainml.files.importers.openlineage_events import Event, merge
from chainml.ingest.mapping import Mapping
from chainml.ingest.service import (
    COMPLETE,
    dedup_key,
    job_version,
    naive,
    output_version,
)
from chainml.rules import moves, registration
from chainml.schemas import IngestedRun, IngestResult


@dataclass
class _Run:
    """One request's run, as the one-by-one path would settle it."""

    event: Event
    actor: str
    job: str  # node names
    label: str  # the job's new version
    reads: list[str]  # datasets read, by their keys' order
    outputs: list[tuple[str, str]] = field(default_factory=list)  # (node, new label)


def _plan(requests: Sequence[tuple[Sequence[Event], str]], mapping: Mapping
          ) -> list[_Run] | None:
    """What each request's run registers, from its event alone; None for a request of
    another shape."""
    runs: list[_Run] = []
    for events, actor in requests:
        if len(events) != 1:
            return None
        event = events[0]
        if event.kind == "dataset" or event.run_id is None or event.event_type != COMPLETE:
            return None
        lineage = merge([event])
        run, facets = lineage.runs[0], lineage.dataset_facets
        job = mapping.place("job", *run.job)
        places = {k: mapping.place("dataset", *k) for k in run.inputs | run.outputs}
        if job is None or any(p is None for p in places.values()) \
                or run.inputs & run.outputs:
            return None
        names = {k: p.name for k, p in places.items() if p is not None}
        runs.append(_Run(
            event=event, actor=actor, job=job.name, label=job_version(mapping, run, [event]),
            reads=[names[k] for k in sorted(run.inputs)],
            outputs=[(names[k], output_version(mapping, facets.get(k, {}), run.run_id))
                     for k in sorted(run.outputs)]))
    jobs = {r.job for r in runs}
    datasets = {n for r in runs for n in [*r.reads, *(o for o, _ in r.outputs)]}
    run_ids = [r.event.run_id for r in runs]
    # Two keys of one run mapped to one node are one node to the one-by-one path.
    if jobs & datasets or len(set(run_ids)) != len(run_ids) or any(
            len({r.job, *r.reads, *(o for o, _ in r.outputs)}) != 1 + len(r.reads)
            + len(r.outputs) for r in runs):
        return None
    return runs


def _valid(kind: str, name: str, label: str) -> bool:
    try:
        registration.NodeSpec.model_validate({"kind": kind, "name": name, "version": label})
    except (ValidationError, InvalidInput):
        return False
    return True


def ingest_group(s: Session, requests: Sequence[tuple[Sequence[Event], str]],
                 mapping: Mapping, at: datetime) -> list[IngestResult] | None:
    """Store and register ``requests`` (each (events, actor)) set-wise, each request's
    result in its place; None, with nothing written, when the group is not of the shape
    the module describes. The caller holds the write lock."""
    runs = _plan(requests, mapping)
    if not runs or ingested.runs_stored(s, [r.event.run_id or "" for r in runs]):
        return None
    names = sorted({n for r in runs for n in [r.job, *r.reads, *(o for o, _ in r.outputs)]})
    nodes = ingested.group_nodes(s, names)
    if len(nodes) != len(names) or any(n.retired for n in nodes.values()):
        return None
    # The versions, in the one-by-one order: each run's job, then its outputs.
    new = [v for r in runs for v in [(r.job, r.label, r.actor),
                                     *((o, label, r.actor) for o, label in r.outputs)]]
    touched = sorted({nodes[n].id for n, _, _ in new})
    # Marks are replayed set-wise (chainml.rules.moves) unless a moved node needs tests
    # or has an open mark: then its own runs or marks would change within the group.
    marked = ingested.marks_may_change(s, touched)
    if marked and (any(nodes[n].needs_tests for n, _, _ in new)
                   or ingested.any_open_mark(s, touched)):
        return None
    pairs = [(nodes[n].id, label) for n, label, _ in new]
    if len(set(pairs)) != len(pairs) or ingested.labels_taken(
            s, sorted({i for i, _ in pairs}), sorted({label for _, label in pairs})) & set(pairs):
        return None
    if not all(_valid(nodes[n].kind, n, label) for n, label, _ in new):
        return None
    bases = repo.inputs_named_of(s, sorted(
        {v for n, _, _ in new if (v := nodes[n].current_version_id) is not None}))
    if any(row.retired for _, rows in bases.values() for row in rows):
        return None
    declared = ingested.declared(s, touched)
    for r in runs:
        job = nodes[r.job].id
        if any(nodes[d].id not in declared[job] for d in r.reads) or any(
                job not in declared[nodes[o].id] for o, _ in r.outputs):
            return None
    return _write(s, runs, nodes, new, bases, at, marked)


def _write(s: Session, runs: list[_Run], nodes: dict[str, ingested.GroupNode],
           new: list[tuple[str, str, str]],
           bases: dict[int, tuple[str, list[repo.NamedInput]]], at: datetime,
           marked: bool) -> list[IngestResult]:
    ingested.add_events(s, [
        {"dedup_key": dedup_key(r.event), "run_id": r.event.run_id,
         "event_type": r.event.event_type, "event_time": naive(r.event.time),
         "body": dict(r.event.raw), "received_at": at, "received_by": r.actor}
        for r in runs])
    # Each new version keeps the inputs of the version current before it (for a node with
    # two new versions in the group, the first of them: the same inputs).
    base_of = {n.id: bases.get(n.current_version_id) for n in nodes.values()
               if n.current_version_id is not None}
    previous = {i: (b[0] if b else None) for i, b in base_of.items()}
    kept = {i: (b[1] if b else []) for i, b in base_of.items()}
    rows: list[dict[str, Any]] = []
    inputs: list[list[tuple[int, int | None, bool]]] = []
    history: list[tuple[str, str, str, str, dict[str, Any]]] = []
    for name, label, actor in new:
        node = nodes[name].id
        base = kept.get(node, [])
        rows.append({"node_id": node, "label": label, "meta": {}, "created_at": at,
                     "created_by": actor})
        inputs.append([(r.upstream_id, None if r.feedback else r.pinned_version_id,
                        r.feedback) for r in base])
        history.append(("version.registered", name, label, actor, {
            "previous": previous.get(node),
            "inputs": sorted(r.name + (f"@{r.pinned_label}" if r.pinned_version_id
                                       is not None else "")
                             for r in base if not r.feedback),
            "feedback": sorted(r.name for r in base if r.feedback),
            "meta": {}}))
        previous[node] = label
    ids = repo.add_versions(s, rows, inputs)
    current = {int(row["node_id"]): vid for row, vid in zip(rows, ids, strict=True)}
    results: list[IngestResult] = []
    events: list[dict[str, Any]] = []
    registered: list[int] = []  # the place in events of each new version's event
    step = iter(history)
    run_rows: list[dict[str, Any]] = []
    for r in runs:
        outputs = [f"{o}@{label}" for o, label in r.outputs]
        for _ in range(1 + len(r.outputs)):
            action, name, label, actor, details = next(step)
            registered.append(len(events))
            events.append({"at": at, "actor": actor, "action": action, "node_name": name,
                           "version_label": label, "env_name": None, "details": details})
        events.append({"at": at, "actor": r.actor, "action": "lineage.completed",
                       "node_name": r.job, "version_label": r.label, "env_name": None,
                       "details": {"run": r.event.run_id, "outputs": outputs,
                                   "undeclared": []}})
        run_rows.append({"run_id": r.event.run_id, "job": r.job, "job_version": r.label,
                         "outputs": [o for o, _ in r.outputs], "completed_at": at})
        results.append(IngestResult(events=1, stored=1, runs=[IngestedRun(
            run_id=r.event.run_id or "", job=r.job, version=r.label, created_version=True,
            outputs=outputs)]))
    event_ids = repo.add_events(s, events)
    repo.point_many(s, current, at)
    ingested.add_runs(s, run_rows)
    if marked:
        counts = iter(moves.propagate(s, [
            moves.Move(int(row["node_id"]), vid, event_ids[e])
            for row, vid, e in zip(rows, ids, registered, strict=True)], at))
        for r, result in zip(runs, results, strict=True):
            result.marked = sum(next(counts) for _ in range(1 + len(r.outputs)))
    return results
