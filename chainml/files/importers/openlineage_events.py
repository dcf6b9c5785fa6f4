"""OpenLineage events: read from text, files and folders, checked, and merged by run.

Pure (no registry, no chain file), so that ``chainml import openlineage`` and live
ingestion read events the same way. What is read:

* one JSON event, pretty-printed or not: the conformance files, and what the Python
  client's ``FileTransport`` writes (one file per event);
* a JSON array of events (a Marquez export);
* JSON lines, one event per line (``FileTransport`` with ``append: true``);
* a folder: every ``*.json``, ``*.jsonl`` and ``*.ndjson`` file below it, in the
  order of their paths. The order matters for nothing but the order of messages:
  events are merged by run and ordered by ``eventTime``, never by arrival.

Checked strictly, because lineage cannot be read without them: an event is a JSON
object; a run event has ``run.runId`` (a non-empty string) and ``job.namespace`` and
``job.name``; a job event ``job``; a dataset event ``dataset``; every dataset a
namespace and a name; ``inputs``/``outputs`` are lists; ``eventType`` is one of the
spec's; ``eventTime`` is present and an ISO 8601 date and time (events are ordered
by it). Leniently, since none of it changes what ran: ``schemaURL`` and ``producer``
may be missing (they say who wrote the event); an ``eventTime`` without a time zone
is UTC (the Python client's own examples write ``datetime.now().isoformat()``);
``runId`` need not be a UUID; a facet that breaks its schema is ignored or read for
what it holds. docs/importers.md ("Strict or lenient") has the table.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import groupby
from pathlib import Path
from typing import Any, Literal

from chainml.errors import InvalidInput
from chainml.files.importers.common import MAX_IMPORT_BYTES, MAX_IMPORT_DEPTH
from chainml.files.safeload import json_depth_ok, parse_json, read_text

EVENT_TYPES = frozenset({"START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"})
SUFFIXES = (".json", ".jsonl", ".ndjson")
# Events of one run with the same eventTime still have a lifecycle order.
_TYPE_RANK = {"START": 0, "RUNNING": 1, None: 2, "OTHER": 2, "COMPLETE": 3, "FAIL": 3,
              "ABORT": 3}
_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?\s*([Zz]|[+-]\d\d:?\d\d)?")

Key = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class DatasetRef:
    """A dataset an event names, with the facets that event gave it."""

    namespace: str
    name: str
    facets: Mapping[str, Any]

    @property
    def key(self) -> Key:
        """``(namespace, name)``."""
        return self.namespace, self.name


@dataclass(frozen=True)
class Event:
    """One checked event. ``kind`` is ``run``, ``job`` or ``dataset`` (the spec's three)."""

    where: str  # "file", "file line N" or "file event N", for messages
    kind: Literal["run", "job", "dataset"]
    time: datetime  # in UTC
    event_type: str | None = None
    run_id: str | None = None
    job: Key | None = None
    job_facets: Mapping[str, Any] = field(default_factory=dict)
    inputs: tuple[DatasetRef, ...] = ()
    outputs: tuple[DatasetRef, ...] = ()
    dataset: DatasetRef | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str | None] | None:
        """``(runId, eventType)`` of a run event: a second event with the same key is a
        re-delivery (merging is idempotent, so it changes nothing)."""
        return (self.run_id, self.event_type) if self.run_id is not None else None

    def order(self) -> tuple[datetime, int]:
        """When the event happened, as events may arrive in any order."""
        return self.time, _TYPE_RANK.get(self.event_type, 2)

    def digest(self) -> str:
        """A hash of the event's JSON, which orders events that happened at once the same
        way whatever order they came in."""
        blob = json.dumps(self.raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class Run:
    """A run's events merged: datasets are the union, facets the latest of each."""

    run_id: str
    job: Key
    where: str  # the first event's place
    inputs: set[Key] = field(default_factory=set)
    outputs: set[Key] = field(default_factory=set)
    event_types: set[str | None] = field(default_factory=set)
    job_facets: dict[str, Any] = field(default_factory=dict)
    last: datetime = datetime.min.replace(tzinfo=timezone.utc)

    @property
    def failed(self) -> bool:
        """A FAIL or ABORT event was seen."""
        return bool(self.event_types & {"FAIL", "ABORT"})


@dataclass
class Lineage:
    """Every run (run events merged by runId; each job event is a run of its own), the
    datasets named by dataset events, and every dataset's facets (the latest of each)."""

    runs: list[Run]
    static_datasets: set[Key]
    dataset_facets: dict[Key, dict[str, Any]]


# --- checking one event --------------------------------------------------------------------

def _text(value: object, where: str, path: str) -> str:
    if value is None:
        raise InvalidInput(f"{where}: {path} is missing.")
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{where}: {path} must be a non-empty string.")
    return value


def _facets(value: Mapping[str, Any]) -> Mapping[str, Any]:
    facets = value.get("facets")
    # A facet map of the wrong shape says nothing about lineage: ignored, not refused.
    return facets if isinstance(facets, dict) else {}


def _object(value: object, where: str, path: str, needs: str) -> dict[str, Any]:
    if value is None:
        raise InvalidInput(f"{where}: {path} is missing.")
    if not isinstance(value, dict):
        raise InvalidInput(f"{where}: {path} must be an object with {needs}.")
    return value


def _dataset(value: object, where: str, path: str) -> DatasetRef:
    item = _object(value, where, path, "namespace and name")
    return DatasetRef(_text(item.get("namespace"), where, f"{path}.namespace"),
                      _text(item.get("name"), where, f"{path}.name"), _facets(item))


def _datasets(event: dict[str, Any], side: str, where: str) -> tuple[DatasetRef, ...]:
    items = event.get(side)
    if items is None:
        return ()
    if not isinstance(items, list):
        raise InvalidInput(f"{where}: {side} must be a list of datasets.")
    return tuple(_dataset(item, where, f"{side}[{i}]") for i, item in enumerate(items))


def parse_time(value: object, where: str) -> datetime:
    """``eventTime`` in UTC; without a time zone it is taken as UTC (see the module doc).

    Raises:
        InvalidInput: missing, or not an ISO 8601 date and time.
    """
    text = _text(value, where, "eventTime")
    m = _TIME.fullmatch(text.strip())
    try:
        if m is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(g or 0) for g in m.groups()[:6])
        micro = int((m.group(7) or "0")[:6].ljust(6, "0"))
        zone = timezone.utc
        if m.group(8) and m.group(8) not in "Zz":
            sign = -1 if m.group(8)[0] == "-" else 1
            digits = m.group(8)[1:].replace(":", "")
            zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        # RFC 3339 allows a leap second (:60), which datetime cannot hold.
        when = datetime(year, month, day, hour, minute, min(second, 59), micro, zone)
    except ValueError:
        raise InvalidInput(f"{where}: eventTime {text[:40]!r} is not an ISO 8601 date and "
                           "time such as 2026-11-01T02:00:05Z.") from None
    return when.astimezone(timezone.utc)


def parse_event(raw: object, where: str) -> Event:
    """Check one decoded event (the rules in the module docstring).

    Args:
        raw: the decoded JSON value.
        where: the place for messages, such as ``events.jsonl line 3``.

    Raises:
        InvalidInput: one sentence naming ``where`` and the field.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where}: is not an OpenLineage event (a JSON object is "
                           f"expected, not {_json_type(raw)}).")
    if not {"run", "job", "dataset"} & raw.keys():
        raise InvalidInput(f"{where}: is not an OpenLineage event: it has no job, run or "
                           "dataset field.")
    if "run" not in raw and "job" not in raw:
        dataset = _dataset(raw["dataset"], where, "dataset")
        return Event(where, "dataset", parse_time(raw.get("eventTime"), where),
                     dataset=dataset, raw=raw)
    job = _object(raw.get("job"), where, "job", "namespace and name")
    key = (_text(job.get("namespace"), where, "job.namespace"),
           _text(job.get("name"), where, "job.name"))
    run_id = None
    if "run" in raw:
        run = _object(raw["run"], where, "run", "a runId")
        run_id = _text(run.get("runId"), where, "run.runId")
    etype = raw.get("eventType")
    if etype is not None and (not isinstance(etype, str) or etype not in EVENT_TYPES):
        raise InvalidInput(f"{where}: eventType {str(etype)[:40]!r} is not one of "
                           f"{', '.join(sorted(EVENT_TYPES))}.")
    return Event(where, "run" if run_id is not None else "job",
                 parse_time(raw.get("eventTime"), where), event_type=etype, run_id=run_id,
                 job=key, job_facets=_facets(job), inputs=_datasets(raw, "inputs", where),
                 outputs=_datasets(raw, "outputs", where), raw=raw)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    return {list: "an array", str: "a string", type(None): "null"}.get(type(value), "a number")


# --- reading text, files and folders -------------------------------------------------------

def _is_json_lines(text: str) -> bool:
    """More than one line, the first of them a whole JSON object: JSON lines. Anything
    else is read as one JSON value, whose errors then name their line."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2 or not lines[0].lstrip().startswith("{"):
        return False
    try:
        return isinstance(json.loads(lines[0]), dict)
    except (ValueError, RecursionError):
        return False


def parse_text(text: str, source: str) -> list[Event]:
    """The events of one file's text: a JSON event, a JSON array, or JSON lines.

    Args:
        text: the file's content.
        source: the file's name in messages.

    Raises:
        InvalidInput: not JSON, or an event breaking the rules (naming the line of JSON
            lines, the position in an array).
    """
    if not text.strip():
        return []
    if not _is_json_lines(text):
        data = parse_json(text, source, max_depth=MAX_IMPORT_DEPTH)
        if isinstance(data, list):
            return [parse_event(e, f"{source} event {i}") for i, e in enumerate(data, 1)]
        return [parse_event(data, source)]
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{where}: is not JSON ({exc.msg} at column {exc.colno}); "
                               "JSON lines hold one event per line.") from None
        except (ValueError, RecursionError):
            raise InvalidInput(f"{where}: is not JSON, or nests too deep.") from None
        if not json_depth_ok(raw, MAX_IMPORT_DEPTH):
            raise InvalidInput(f"{where}: nests deeper than {MAX_IMPORT_DEPTH} levels.")
        events.append(parse_event(raw, where))
    return events


def event_files(folder: Path) -> list[Path]:
    """Every ``*.json``, ``*.jsonl`` and ``*.ndjson`` file below ``folder``, by path."""
    found = []
    # os.walk does not follow symbolic links to folders, so a link loop cannot hang it.
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found += [Path(root, f) for f in files if f.lower().endswith(SUFFIXES)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_events(path: str | Path, *, max_bytes: int = MAX_IMPORT_BYTES) -> list[Event]:
    """The events of a file (any of the formats of :func:`parse_text`) or of a folder.

    Args:
        path: a file, or a folder read recursively (:func:`event_files`).
        max_bytes: the limit for each file.

    Raises:
        InvalidInput: unreadable, oversized or malformed input, or a folder without
            event files; the message names the file (relative to the folder).
    """
    p = Path(path)
    if not p.is_dir():
        return parse_text(read_text(p, max_bytes), p.name)
    files = event_files(p)
    if not files:
        raise InvalidInput(f"{p.name or p}: the folder holds no *.json, *.jsonl or *.ndjson "
                           "file.")
    events = []
    for f in files:
        events += parse_text(read_text(f, max_bytes), f"{p.name}/{f.relative_to(p).as_posix()}")
    return events


# --- merging ---------------------------------------------------------------------------------

def in_time_order(events: Iterable[Event]) -> list[Event]:
    """Events by ``eventTime`` (and lifecycle), whatever order they came in. Events of one
    moment go by digest, hashed only for them (hashing every event costs a second
    serialisation)."""
    out: list[Event] = []
    for _, group in groupby(sorted(events, key=Event.order), key=Event.order):
        same = list(group)
        out += sorted(same, key=lambda e: (e.digest(), e.where)) if len(same) > 1 else same
    return out


def merge(events: Iterable[Event]) -> Lineage:
    """Merge events by run, whatever their order (and however often each came).

    A run's inputs and outputs are the union over its events and its job facets the
    latest of each by ``eventTime``, so a re-delivered or reordered event changes
    nothing. A job event is a run of its own (it has no runId).

    Raises:
        InvalidInput: two events of one runId name different jobs.
    """
    runs: dict[tuple[str, ...], Run] = {}
    static: set[Key] = set()
    dataset_facets: dict[Key, dict[str, Any]] = {}
    for event in in_time_order(events):
        for ds in (*event.inputs, *event.outputs, *([event.dataset] if event.dataset else [])):
            dataset_facets.setdefault(ds.key, {}).update(ds.facets)
        if event.dataset is not None:
            static.add(event.dataset.key)
            continue
        assert event.job is not None
        if event.run_id is not None:
            rid: tuple[str, ...] = ("run", event.run_id)
        else:
            rid = ("job", *event.job, event.time.isoformat())
        run = runs.setdefault(rid, Run(event.run_id or f"job event at {rid[3]}", event.job,
                                       event.where))
        if run.job != event.job:
            raise InvalidInput(
                f"{event.where}: run {run.run_id[:60]!r} is for job '{'/'.join(event.job)}' "
                f"here but for job '{'/'.join(run.job)}' in {run.where}.")
        run.inputs.update(d.key for d in event.inputs)
        run.outputs.update(d.key for d in event.outputs)
        run.event_types.add(event.event_type)
        run.job_facets.update(event.job_facets)
        run.last = max(run.last, event.time)
    return Lineage(sorted(runs.values(), key=lambda r: (r.last, r.run_id)), static,
                   dataset_facets)
