"""Status of one node, as pure functions of its facts (DESIGN.md, "Semantics").

Two evaluations live here and must always agree (tests/test_status_property.py):

* ``evaluate`` reads the persisted retest marks: what every command uses.
* ``recompute`` applies the definition directly (snapshot vs current lineage):
  the oracle, and the way marks are rebuilt for one node.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol, TypeVar, cast

from chainml.graph import Pair
from chainml.schemas import Reason, Status, StatusEntry, trusted


class TestRun(Protocol):
    """A test run as status reads it (an ORM row or ``db.reads.Run``)."""

    @property
    def suite(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def recorded_at(self) -> datetime: ...


class SnapshotRun(TestRun, Protocol):
    """A test run with its lineage snapshot (what ``recompute`` compares)."""

    @property
    def snapshot(self) -> list[list[int]]: ...


R = TypeVar("R", bound=TestRun)


class RetestMark(Protocol):
    """An open retest mark (an ORM row or ``db.reads.Mark``)."""

    @property
    def cause_id(self) -> int: ...
    @property
    def from_version_id(self) -> int | None: ...
    @property
    def to_version_id(self) -> int | None: ...
    @property
    def path(self) -> list[str]: ...


class Waiver(Protocol):
    """A live waiver (an ORM row or ``db.reads.LiveWaiver``)."""

    @property
    def id(self) -> int: ...
    @property
    def covers(self) -> list[list[int | None]]: ...


Entry = dict[str, Any]  # a StatusEntry as plain data (every field); see to_entries


def utcnow() -> datetime:
    """Naive UTC, the form every timestamp is stored in."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_entries(entries: list[Entry]) -> list[StatusEntry]:
    """Models from the entries built here; their types are ours, so no re-validation
    (it took 0.4 s for the 28,000 entries of a check after a hub change)."""
    out = []
    for e in entries:
        e["reasons"] = [trusted(Reason, r) for r in e["reasons"]]
        out.append(trusted(StatusEntry, e))
    return out


def _reason(*, cause: str, to: str | None = None, path: list[str], message: str,
            suite: str | None = None, **old: Any) -> Entry:
    return {"cause": cause, "from_": old.get("from"), "to": to, "path": path,
            "suite": suite, "message": message}


@dataclass(slots=True)
class Facts:
    """What status needs to know about one node, loaded once."""

    id: int
    name: str
    kind: str
    owner: str | None
    version: str | None
    version_created_at: datetime | None
    max_age_s: int | None
    required_suites: list[str]
    runs: Sequence[TestRun] = ()  # runs of the current version, oldest first
    labels: Mapping[int, str] = field(default_factory=dict)  # version id -> label
    names: Mapping[int, str] = field(default_factory=dict)  # node id -> name


def considered_runs(runs: Sequence[R], required: Sequence[str]) -> tuple[list[R], list[str]]:
    """The runs that decide the status, and the required suites that have none.

    With required suites: the latest run of each; otherwise the latest run of any suite.
    """
    if not runs:
        return [], list(required)
    if not required:
        return [runs[-1]], []
    latest: dict[str, R] = {}
    for r in runs:
        latest[r.suite] = r
    return [latest[s] for s in required if s in latest], [s for s in required if s not in latest]


def _suite(r: TestRun) -> str:
    return f" of suite '{r.suite}'" if r.suite else ""


def _own_state(f: Facts) -> tuple[Status, list[Entry]] | None:
    """untested / failed / missing-suite verdicts, which no upstream state can change."""
    if not f.runs:
        return Status.UNTESTED, [_reason(
            cause=f.name, to=f.version, path=[f.name],
            message=f"version {f.version} has no test run",
        )]
    considered, missing = considered_runs(f.runs, f.required_suites)
    failed = [r for r in considered if not r.passed]
    if failed:
        return Status.FAILED, [_reason(
            cause=f.name, to=f.version, path=[f.name], suite=r.suite or None,
            message=f"the latest run{_suite(r)} of version {f.version} failed",
        ) for r in failed]
    if missing:
        return Status.UNTESTED, [_reason(
            cause=f.name, to=f.version, path=[f.name], suite=s,
            message=f"required suite '{s}' has no run for version {f.version}",
        ) for s in missing]
    return None


def change_message(cause: str, old: str | None, new: str | None, path: Sequence[str]) -> str:
    via = " -> ".join(path)
    if old is None:
        return f"{cause} ({new}) is upstream since the last test, via {via}"
    if new is None:
        return f"{cause} (tested with {old}) is no longer upstream"
    return f"ancestor {cause}: tested with {old}, now {new}, via {via}"


def _final(f: Facts, reasons: list[Entry], covered: bool, waiver_ids: list[int],
           now: datetime) -> Entry:
    entry = _entry(f, Status.VERIFIED, [])
    if reasons:
        entry["status"] = Status.WAIVED if covered else Status.NEEDS_RETEST
        entry["reasons"] = reasons
        entry["waivers"] = waiver_ids if covered else []
        return entry
    if f.max_age_s and f.version_created_at is not None:
        if now - f.version_created_at > timedelta(seconds=f.max_age_s):
            entry["status"] = Status.STALE
            entry["reasons"] = [_reason(
                cause=f.name, to=f.version, path=[f.name],
                message=f"version {f.version} is older than its maximum age",
            )]
    return entry


def _coverage(waivers: Iterable[Waiver]) -> tuple[set[tuple[int, int | None]], list[int]]:
    pairs: set[tuple[int, int | None]] = set()
    ids: list[int] = []
    for w in waivers:
        ids.append(w.id)
        pairs.update((c, v) for c, v in w.covers if c is not None)
    return pairs, ids


def evaluate(f: Facts, marks: Sequence[RetestMark], waivers: Sequence[Waiver],
             now: datetime) -> Entry:
    """Status from persisted marks (the fast path every command uses)."""
    own = _own_state(f)
    if own is not None:
        return _entry(f, *own)
    reasons = []
    for m in marks:  # a plain loop: after a hub change this runs for 25,000 nodes
        cause = f.names.get(m.cause_id, "?")
        old = f.labels.get(m.from_version_id or -1)
        new = f.labels.get(m.to_version_id or -1)
        reasons.append({"cause": cause, "from_": old, "to": new, "path": m.path, "suite": None,
                        "message": change_message(cause, old, new, m.path)})
    if not waivers:  # the common case, without building an empty coverage per node
        return _final(f, reasons, False, [], now)
    pairs, ids = _coverage(waivers)
    covered = all((m.cause_id, m.to_version_id) in pairs for m in marks)
    return _final(f, reasons, covered, ids, now)


def _entry(f: Facts, status: Status, reasons: list[Entry]) -> Entry:
    last = f.runs[-1].recorded_at if f.runs else None
    return {"name": f.name, "kind": f.kind, "version": f.version, "status": status,
            "reasons": reasons, "owner": f.owner, "last_run": last, "waivers": []}


def lineage_diff(snapshots: Iterable[Iterable[Sequence[int]]], lineage: set[Pair]
                 ) -> dict[int, tuple[int | None, int | None]]:
    """Per ancestor whose pair differs: (version in the snapshot, version now).

    None on one side means the ancestor was added to (or removed from) the lineage.
    """
    now_of: dict[int, int] = {}
    for n, v in sorted(lineage):
        now_of.setdefault(n, v)
    diff: dict[int, tuple[int | None, int | None]] = {}
    for snap in snapshots:
        pairs = {(int(n), int(v)) for n, v in snap}
        then_of: dict[int, int] = {}
        for n, v in sorted(pairs):
            then_of.setdefault(n, v)
        for n, v in sorted(pairs - lineage):
            diff.setdefault(n, (v, now_of.get(n)))
        for n, v in sorted(lineage - pairs):
            diff.setdefault(n, (then_of.get(n), v))
    return diff


def recompute(f: Facts, lineage: set[Pair], waivers: Sequence[Waiver], now: datetime,
              paths: Mapping[int, list[str]] | None = None) -> Entry:
    """Status straight from the definition: snapshots against the current lineage."""
    own = _own_state(f)
    if own is not None:
        return _entry(f, *own)
    considered, _ = considered_runs(cast(Sequence[SnapshotRun], f.runs), f.required_suites)
    diff = lineage_diff((r.snapshot for r in considered), lineage)
    reasons = []
    for n, (old, new) in sorted(diff.items()):
        name = f.names.get(n, "?")
        path = list((paths or {}).get(n, [name, f.name]))
        o, w = f.labels.get(old or -1), f.labels.get(new or -1)
        reasons.append(_reason(cause=name, **{"from": o}, to=w, path=path,
                              message=change_message(name, o, w, path)))
    pairs, ids = _coverage(waivers)
    covered = all((n, new) in pairs for n, (_, new) in diff.items())
    return _final(f, reasons, covered, ids, now)
