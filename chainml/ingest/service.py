"""Live OpenLineage ingestion: events in, versions and marks out, as ``register`` would.

The rules (DESIGN.md, "Pipelines report themselves"):

* Events arrive at least once and out of order. Each is stored once: a second event
  with the same (run id, event type), or an event without a run with the same body,
  is a duplicate and changes nothing.
* A run's inputs and outputs are the union over its events. Only a ``COMPLETE`` run
  registers: the job's version (the mapping's version facet, else the run id) and a
  new version of each output dataset (its ``datasetVersion``, else the run id), each by
  :func:`chainml.rules.registration.register`, marks included. ``START``, ``RUNNING``,
  ``FAIL``, ``ABORT`` and ``OTHER`` are stored and register nothing.
* An event of a run already completed adds to the union: an output not yet registered
  gets its version then; an input adds only a finding.
* A dataset that is not a node yet becomes one: a ``source`` when read, a ``feature``
  read from its job when written (a mapping rule may choose the kind). A job first
  seen becomes a node whose inputs are what that run read; after that its declared
  inputs change only by ``register``, a chain file or ``apply``: a version registered
  from an event keeps them, and what the run read outside them (an *undeclared
  consumer*) is a finding in ``observed_input``, not an edge. An output dataset whose
  declared inputs leave its writer out is a finding the same way.

The caller holds the write lock and owns the transaction: a batch is stored and
registered whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import networkx as nx
from pydantic import ValidationError
from sqlalchemy.orm import Session

from chainml.db import ingested, reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import LineageRun, Node
from chainml.errors import InvalidInput
from chainml.files.importers.openlineage_events import (
    Event,
    Key,
    Run,
    in_time_order,
    merge,
    parse_event,
)
from chainml.ingest.mapping import Mapping, Place, version_label
from chainml.kinds import Kind
from chainml.rules import registration
from chainml.schemas import IngestedRun, IngestResult

COMPLETE = "COMPLETE"
MAX_RUN_ID = 255
FIRST_VERSION = "1"  # of a dataset first seen read, when no facet names its version


def dedup_key(event: Event) -> str:
    """What makes two deliveries the same event: (run id, event type) for a run event,
    else the event's body."""
    basis = (["run", event.run_id, event.event_type or ""] if event.run_id is not None
             else ["body", event.digest()])
    return hashlib.sha256(json.dumps(basis).encode("utf-8", "surrogatepass")).hexdigest()


def parse(events: Sequence[Any], source: str = "request") -> list[Event]:
    """Decoded events (dicts, or ``Event`` objects already checked) as ``Event`` objects,
    each checked as the tables need it; else one sentence naming the event ("request
    event 3: ...") and the field."""
    parsed = [e if isinstance(e, Event) else parse_event(e, f"{source} event {i + 1}")
              for i, e in enumerate(events)]
    check_storable(parsed)
    return parsed


def check_storable(events: Iterable[Event]) -> None:
    """Refuse what the tables cannot hold, before anything is written."""
    for event in events:
        if event.run_id is not None and len(event.run_id) > MAX_RUN_ID:
            raise InvalidInput(f"{event.where}: run.runId is longer than {MAX_RUN_ID} "
                               "characters (a UUID is expected).")


def ingest(s: Session, events: Sequence[Event], mapping: Mapping, at: datetime,
           actor: str) -> IngestResult:
    """Store ``events`` and register what their completed runs produced (module rules).

    Every new event is stored first; then the runs they complete (or add to) are
    settled upstream first - a run writing a dataset before the runs reading it - so
    that a batch holding a whole day of runs makes a dataset a job writes a ``feature``
    of that job, not a ``source``, whatever order the events came in.
    """
    check_storable(events)
    out = IngestResult(events=len(events))
    settler = _Settle(s, mapping, at, actor, out)
    # What each run of the batch stored before: its events' keys are what a re-delivery
    # repeats (a run event's key holds its run id), its bodies what the new ones add to.
    stored = {r: ingested.stored_of_run(s, r)
              for r in dict.fromkeys(e.run_id for e in events if e.run_id is not None)}
    keys = {k for rows in stored.values() for k, _ in rows}
    fresh: dict[str, list[Event]] = {}  # run id -> its new events, in arrival order
    settle: dict[str, Event] = {}  # run id -> its latest new event, by time
    completes: set[str] = set()
    datasets: list[Event] = []
    for event in in_time_order(events):
        key = dedup_key(event)
        if key in keys or (event.run_id is None and ingested.has_event(s, key)):
            out.duplicates += 1
            continue
        keys.add(key)
        ingested.add_event(s, key, event.run_id, event.event_type, naive(event.time),
                           dict(event.raw), at, actor)
        out.stored += 1
        if event.kind == "dataset":
            datasets.append(event)
        elif event.run_id is not None:
            fresh.setdefault(event.run_id, []).append(event)
            settle[event.run_id] = event
            if event.event_type == COMPLETE:
                completes.add(event.run_id)
    # Whether a run was completed before is known now: settling other runs of the batch
    # never completes it, and a run with no event stored before was never completed.
    done = {r: ingested.completed_run(s, r) if stored[r] else None for r in settle}
    runs = [e for r, e in settle.items() if r in completes or done[r] is not None]
    for event in upstream_first(runs, events):
        run_id = event.run_id or ""
        before = [parse_event(body, f"run {run_id[:60]!r}") for _, body in stored[run_id]]
        settler.run(run_id, done[run_id], before + fresh[run_id])
    # After the runs: a dataset a run of the batch writes is that run's feature, not a
    # source that a dataset event named first.
    for event in datasets:
        assert event.dataset is not None
        place = mapping.place("dataset", *event.dataset.key)
        if place is not None:
            settler.dataset(event.dataset.key, place, dict(event.dataset.facets))
    return out


def upstream_first(runs: Sequence[Event], events: Sequence[Event]) -> list[Event]:
    """``runs`` (one event each) ordered so that a run comes after every run of the batch
    writing a dataset it reads; by time where the datasets say nothing (or loop)."""
    outputs: dict[str, set[Key]] = {}
    inputs: dict[str, set[Key]] = {}
    for e in events:
        if e.run_id is not None:
            outputs.setdefault(e.run_id, set()).update(d.key for d in e.outputs)
            inputs.setdefault(e.run_id, set()).update(d.key for d in e.inputs)
    order = {id(e): i for i, e in enumerate(in_time_order(runs))}
    ranked = sorted(runs, key=lambda e: order[id(e)])
    writers: dict[Key, list[int]] = {}
    for i, e in enumerate(ranked):
        for k in outputs.get(e.run_id or "", ()):
            writers.setdefault(k, []).append(i)
    graph: nx.DiGraph[int] = nx.DiGraph()
    graph.add_nodes_from(range(len(ranked)))
    for i, e in enumerate(ranked):
        for k in inputs.get(e.run_id or "", set()) - outputs.get(e.run_id or "", set()):
            graph.add_edges_from((w, i) for w in writers.get(k, ()) if w != i)
    try:
        return [ranked[i] for i in nx.lexicographical_topological_sort(graph)]
    except nx.NetworkXUnfeasible:
        return ranked


def job_version(mapping: Mapping, run: Run, events: Sequence[Event]) -> str:
    """The job's version a run registers: the mapping's version facet, else the run id."""
    run_facets: dict[str, Any] = {}
    for event in in_time_order(events):
        facets = (event.raw.get("run") or {}).get("facets")
        if isinstance(facets, dict):
            run_facets.update(facets)
    found = mapping.job_version_of(run.job_facets, run_facets)
    return version_label(found if found is not None else run.run_id)


def output_version(mapping: Mapping, facets: dict[str, Any], run_id: str) -> str:
    """The version a run registers of a dataset it wrote: its version facet, else the
    run id."""
    return version_label(mapping.dataset_version_of(facets) or run_id)


def naive(when: datetime) -> datetime:
    return when.astimezone(timezone.utc).replace(tzinfo=None)


class _Settle:
    """Register what one completed run (or one dataset event) makes known."""

    def __init__(self, s: Session, mapping: Mapping, at: datetime, actor: str,
                 out: IngestResult) -> None:
        self.s, self.mapping, self.at, self.actor, self.out = s, mapping, at, actor, out
        self._nodes: dict[str, Node] = {}  # only id and kind are read: they never change

    def node(self, name: str) -> Node | None:
        found = self._nodes.get(name) or repo.get_node(self.s, name)
        if found is not None:
            self._nodes[name] = found
        return found

    def load(self, names: Iterable[str]) -> None:
        """Look up the nodes named ``names`` that ``node`` has not seen: one query."""
        self._nodes.update(repo.nodes_by_name(self.s, set(names) - self._nodes.keys()))

    def is_new(self, node: Node, label: str) -> bool:
        """Whether ``node`` has no version ``label`` yet."""
        return reads.version_by_label(Db.over(self.s), node.id, label) is None

    def register(self, new_of: Node | None = None, **spec: Any) -> None:
        """``registration.register`` of ``spec``; ``new_of``: its node, when it is known to
        exist without the version ``spec`` gives (``is_new``): not looked up again."""
        try:
            parsed = registration.NodeSpec.model_validate(spec)
        except ValidationError as e:
            inner = (e.errors()[0].get("ctx") or {}).get("error")
            raise (inner if isinstance(inner, InvalidInput)
                   else InvalidInput(f"'{spec['name']}': {e.errors()[0]['msg']}.")) from None
        known = (new_of, None) if new_of is not None else None
        self.out.marked += registration.register(self.s, parsed, self.at, self.actor,
                                                  known=known).marked

    def dataset(self, key: Key, place: Place, facets: dict[str, Any]) -> Node:
        """The dataset's node, created as a source (or the rule's kind) when new."""
        node = self.node(place.name)
        if node is None:
            label = version_label(self.mapping.dataset_version_of(facets) or FIRST_VERSION)
            self.register(kind=(place.kind or Kind.SOURCE).value, name=place.name,
                          version=label, inputs=[], node_meta=_meta("dataset", key))
            self.out.created.append(place.name)
            node = self.node(place.name)
            assert node is not None
        return node

    def run(self, run_id: str, done: LineageRun | None, events: Sequence[Event]) -> None:
        """Settle ``run_id``, whose events (all it has, in arrival order) are ``events``;
        ``done``: its row when it was completed before."""
        lineage = merge(events)
        run = lineage.runs[0]
        job = self.mapping.place("job", *run.job)
        if job is None:
            return
        places = {k: p for k in run.inputs | run.outputs
                  if (p := self.mapping.place("dataset", *k)) is not None}
        self.load([job.name, *(p.name for p in places.values())])
        read = sorted(k for k in run.inputs - run.outputs if k in places)
        for k in read:
            self.dataset(k, places[k], lineage.dataset_facets.get(k, {}))
        entry = IngestedRun(run_id=run_id, job=job.name, version=done.job_version if done
                            else job_version(self.mapping, run, events))
        if done is None:
            entry.created_version = self._register_job(run, job, entry.version, places)
        node = self.node(job.name)
        assert node is not None
        registered = list(done.outputs) if done else []
        written: list[Node] = []  # outputs that existed: does each declare the job?
        for k in sorted(run.outputs):
            if k in places and places[k].name not in registered:
                out = self._output(node, k, places[k], lineage.dataset_facets.get(k, {}),
                                   entry)
                if out is not None:
                    written.append(out)
                registered.append(places[k].name)
        # What the job and its outputs read, in one query: registering an output changes
        # no one's inputs but its own, and those only when it is created.
        declared = ingested.declared(self.s, [node.id, *(w.id for w in written)])
        for out in written:
            if node.id not in declared[out.id]:
                self._finding(out, node, run_id, entry)
        for k in sorted(run.inputs):
            if k in places:
                reads = self.dataset(k, places[k], lineage.dataset_facets.get(k, {}))
                if reads.id not in declared[node.id] and reads.id != node.id:
                    self._finding(node, reads, run_id, entry)
        if done is None:
            ingested.add_run(self.s, run_id, job.name, entry.version, registered, self.at)
        elif len(registered) != len(done.outputs):
            done.outputs = registered
        if done is None or entry.outputs or entry.findings:
            repo.add_event(self.s, self.at, self.actor, "lineage.completed", job.name,
                           entry.version, run=run_id, outputs=entry.outputs,
                           undeclared=entry.findings)
            self.out.runs.append(entry)

    def _register_job(self, run: Run, job: Place, label: str, places: dict[Key, Place]
                      ) -> bool:
        node = self.node(job.name)
        if node is not None:
            if not self.is_new(node, label):
                return False  # a run of a known version: nothing new about the job
            # Keeps its inputs.
            self.register(new_of=node, kind=node.kind, name=job.name, version=label)
            return True
        ins = sorted(places[k].name for k in run.inputs - run.outputs if k in places)
        # An in-place dataset (read and written) that is no node yet cannot be a feedback
        # input of the job's first version (it would read a node that does not exist):
        # the read becomes a finding, which says to declare it.
        back = sorted(places[k].name for k in run.inputs & run.outputs
                      if k in places and self.node(places[k].name) is not None)
        self.register(kind=(job.kind or Kind.FEATURE).value, name=job.name, version=label,
                      inputs=ins, feedback=back, node_meta=_meta("job", run.job))
        self.out.created.append(job.name)
        return True

    def _output(self, job: Node, key: Key, place: Place, facets: dict[str, Any],
                entry: IngestedRun) -> Node | None:
        """Register the version of an output dataset the run wrote; returns its node when
        it existed before (whether it declares the job is for the caller to check)."""
        label = output_version(self.mapping, facets, entry.run_id)
        node = self.node(place.name)
        if node is None:
            self.register(kind=(place.kind or Kind.FEATURE).value, name=place.name,
                          version=label, inputs=[job.name], node_meta=_meta("dataset", key))
            self.out.created.append(place.name)
            entry.outputs.append(f"{place.name}@{label}")
            return None
        if self.is_new(node, label):
            self.register(new_of=node, kind=node.kind, name=place.name, version=label)
            entry.outputs.append(f"{place.name}@{label}")
        return node

    def _finding(self, node: Node, read: Node, run_id: str, entry: IngestedRun) -> None:
        if ingested.record_finding(self.s, node.id, read.id, run_id, self.at):
            self.out.findings += 1
        entry.findings.append(f"{node.name} <- {read.name}")


def _meta(what: str, key: Key) -> dict[str, Any]:
    return {"openlineage": {"type": what, "namespace": key[0], "name": key[1]}}
