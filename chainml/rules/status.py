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
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from chainml.rules.graph import Pair

if TYPE_CHECKING:  # the command line's status reads these entries as plain data
    from chainml.schemas import StatusEntry

# The status values (``schemas.Status``'s), as plain text in the entries built here:
# ``chainml status`` writes them without importing pydantic (``to_entries`` makes them
# ``Status`` members for the models).
VERIFIED = "verified"
UNTESTED = "untested"
FAILED = "failed"
NEEDS_RETEST = "needs_retest"
WAIVED = "waived"
STALE = "stale"
SKEWED = "skewed"  # environment statuses only
MISSING_INPUT = "missing_input"


class TestRun(Protocol):
    """A test run as status reads it (an ORM row or ``db.reads.Run``)."""

    @property
    def id(self) -> int: ...
    @property
    def suite(self) -> str: ...
    @property
    def passed(self) -> bool: ...
    @property
    def recorded_at(self) -> datetime: ...


R = TypeVar("R", bound=TestRun)

# One cause of needs_retest: (ancestor id, its version ids in a deciding run's snapshot,
# its version ids in the lineage now), both sorted. Either side may be empty.
Triple = tuple[int, tuple[int, ...], tuple[int, ...]]


class RetestMark(Protocol):
    """An open retest mark (an ORM row or ``db.reads.Mark``)."""

    @property
    def cause_id(self) -> int: ...
    @property
    def tested_versions(self) -> list[int]: ...
    @property
    def now_versions(self) -> list[int]: ...
    @property
    def path(self) -> list[str]: ...


class Waiver(Protocol):
    """A live waiver (an ORM row or ``db.reads.LiveWaiver``)."""

    @property
    def id(self) -> int: ...
    @property
    def covers(self) -> list[Any]: ...
    @property
    def runs(self) -> list[int]: ...


Entry = dict[str, Any]  # a StatusEntry as plain data (every field); see to_entries


def utcnow() -> datetime:
    """Naive UTC, the form every timestamp is stored in."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def to_entries(entries: list[Entry]) -> list[StatusEntry]:
    """Models from the entries built here; their types are ours, so no re-validation
    (it took 0.4 s for the 28,000 entries of a check after a hub change)."""
    from chainml.schemas import Reason, Status, StatusEntry, trusted

    member = {s.value: s for s in Status}
    out = []
    for e in entries:
        e["status"] = member[e["status"]]
        e["reasons"] = [trusted(Reason, r) for r in e["reasons"]]
        out.append(trusted(StatusEntry, e))
    return out


def _reason(*, cause: str, to: str | None = None, path: list[str], message: str,
            suite: str | None = None) -> Entry:
    """A reason about the node itself (untested, failed, missing suite, stale)."""
    return {"cause": cause, "from_": None, "to": to, "tested_with": [],
            "now": [to] if to else [], "path": path, "suite": suite, "message": message}


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

    ``runs`` are in commit order (by id, never by a machine's clock). With required
    suites: the latest run of each; otherwise the latest run of any suite.
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


def _own_state(f: Facts) -> tuple[str, list[Entry]] | None:
    """untested / failed / missing-suite verdicts, which no upstream state can change."""
    if not f.runs:
        return UNTESTED, [_reason(
            cause=f.name, to=f.version, path=[f.name],
            message=f"version {f.version} has no test run",
        )]
    considered, missing = considered_runs(f.runs, f.required_suites)
    failed = [r for r in considered if not r.passed]
    if failed:
        return FAILED, [_reason(
            cause=f.name, to=f.version, path=[f.name], suite=r.suite or None,
            message=f"the latest run{_suite(r)} of version {f.version} failed",
        ) for r in failed]
    if missing:
        return UNTESTED, [_reason(
            cause=f.name, to=f.version, path=[f.name], suite=s,
            message=f"required suite '{s}' has no run for version {f.version}",
        ) for s in missing]
    return None


def _joined(labels: Sequence[str]) -> str:
    return ", ".join(labels)


def change_message(cause: str, old: Sequence[str], new: Sequence[str],
                   path: Sequence[str]) -> str:
    """One reason in words; ``old``/``new`` are the cause's versions then and now."""
    via = " -> ".join(path)
    if not old:
        return f"{cause} ({_joined(new)}) is upstream since the last test, via {via}"
    if not new:
        return f"{cause} (tested with {_joined(old)}) is no longer upstream"
    return f"ancestor {cause}: tested with {_joined(old)}, now {_joined(new)}, via {via}"


def change_reason(cause: str, old: Sequence[str], new: Sequence[str],
                  path: list[str]) -> Entry:
    return {"cause": cause, "from_": _joined(old) or None, "to": _joined(new) or None,
            "tested_with": list(old), "now": list(new), "path": path, "suite": None,
            "message": change_message(cause, old, new, path)}


def _final(f: Facts, reasons: list[Entry], covered: bool, waiver_ids: list[int],
           now: datetime) -> Entry:
    entry = _entry(f, VERIFIED, [])
    if reasons:
        entry["status"] = WAIVED if covered else NEEDS_RETEST
        entry["reasons"] = reasons
        entry["waivers"] = waiver_ids if covered else []
        return entry
    if f.max_age_s and f.version_created_at is not None:
        if now - f.version_created_at > timedelta(seconds=f.max_age_s):
            entry["status"] = STALE
            entry["reasons"] = [_reason(
                cause=f.name, to=f.version, path=[f.name],
                message=f"version {f.version} is older than its maximum age",
            )]
    return entry


def covered_triples(waivers: Iterable[Waiver], deciding: Sequence[int]
                    ) -> tuple[set[Triple], list[int]]:
    """The exact facts the live waivers accept, and their ids.

    A waiver counts only against the runs it was granted on: a newer deciding run
    (or a promote to another version) ends it.
    """
    accepted: set[Triple] = set()
    ids: list[int] = []
    runs = sorted(deciding)
    for w in waivers:
        if sorted(w.runs) != runs:
            continue
        ids.append(w.id)
        accepted.update((int(c), tuple(t), tuple(n)) for c, t, n in w.covers)
    return accepted, ids


def _mark_triple(m: RetestMark) -> Triple:
    return (m.cause_id, tuple(m.tested_versions), tuple(m.now_versions))


def _reasons(triples: Iterable[tuple[Triple, list[str]]], f: Facts) -> list[Entry]:
    out = []
    for (cause, old, new), path in triples:
        name = f.names.get(cause, "?")
        out.append(change_reason(name, [f.labels.get(v, "?") for v in old],
                                 [f.labels.get(v, "?") for v in new], path))
    return out


def evaluate(f: Facts, marks: Sequence[RetestMark], waivers: Sequence[Waiver],
             now: datetime) -> Entry:
    """Status from persisted marks (the fast path every command uses)."""
    own = _own_state(f)
    if own is not None:
        return _entry(f, *own)
    # A plain loop: after a hub change this runs for 25,000 nodes.
    reasons = _reasons(((_mark_triple(m), m.path) for m in marks), f)
    if not waivers:  # the common case, without building an empty coverage per node
        return _final(f, reasons, False, [], now)
    deciding, _ = considered_runs(f.runs, f.required_suites)
    accepted, ids = covered_triples(waivers, [r.id for r in deciding])
    covered = all(_mark_triple(m) in accepted for m in marks)
    return _final(f, reasons, covered, ids, now)


def _entry(f: Facts, status: str, reasons: list[Entry]) -> Entry:
    last = f.runs[-1].recorded_at if f.runs else None
    return {"name": f.name, "kind": f.kind, "version": f.version, "status": status,
            "reasons": reasons, "owner": f.owner, "last_run": last, "waivers": [],
            "required_suites": list(f.required_suites)}


def by_node(pairs: Iterable[Pair]) -> dict[int, tuple[int, ...]]:
    """A lineage (or snapshot) grouped per ancestor: its sorted version ids."""
    out: dict[int, list[int]] = {}
    for n, v in pairs:
        out.setdefault(n, []).append(v)
    return {n: tuple(sorted(set(vs))) for n, vs in out.items()}


def lineage_diff(snapshots: Iterable[Iterable[Pair]], lineage: Iterable[Pair]) -> set[Triple]:
    """The causes: per deciding run's snapshot, every ancestor whose versions there
    differ from its versions in the lineage now (DESIGN.md: a cause is one ancestor)."""
    now_of = by_node(lineage)
    out: set[Triple] = set()
    for snap in snapshots:
        then_of = by_node(snap)
        for n in then_of.keys() | now_of.keys():
            old, new = then_of.get(n, ()), now_of.get(n, ())
            if old != new:
                out.add((n, old, new))
    return out


def recompute(f: Facts, snapshots: Mapping[int, set[Pair]], lineage: set[Pair],
              waivers: Sequence[Waiver], now: datetime,
              paths: Mapping[int, list[str]] | None = None) -> Entry:
    """Status straight from the definition: the deciding runs' snapshots (by run id)
    against the current lineage."""
    own = _own_state(f)
    if own is not None:
        return _entry(f, *own)
    deciding, _ = considered_runs(f.runs, f.required_suites)
    diff = sorted(lineage_diff([snapshots.get(r.id, set()) for r in deciding], lineage))
    reasons = _reasons(((t, list((paths or {}).get(t[0], [f.names.get(t[0], "?"), f.name])))
                        for t in diff), f)
    accepted, ids = covered_triples(waivers, [r.id for r in deciding])
    covered = all(t in accepted for t in diff)
    return _final(f, reasons, covered, ids, now)
