"""Environment status, as pure functions of what an environment serves (DESIGN.md,
"Environments, deployments and training–serving skew").

The registry's status compares a node's deciding run with its lineage *now*; an
environment's compares the deployed version's runs with its *serving* lineage: the
same walk up the inputs, taken with the versions the environment runs. A run counts
when its snapshot equals that lineage exactly, whenever it was recorded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from chainml.rules.graph import Pair
from chainml.rules.status import (
    FAILED,
    MISSING_INPUT,
    SKEWED,
    STALE,
    UNTESTED,
    VERIFIED,
    WAIVED,
    Entry,
    TestRun,
    Triple,
    Waiver,
    by_node,
    considered_runs,
)

# (upstream node id, pinned version id or None) of one version's regular inputs.
Inputs = Sequence[tuple[int, int | None]]


@dataclass(frozen=True)
class Served:
    """What one environment serves.

    ``deployed``: node id -> the version deployed there (undeployed nodes left out).
    ``sources``: every source's registry current version; a source never deployed to
    the environment is taken at it (live data flows in). Any other node never deployed
    is absent.
    """

    deployed: Mapping[int, int]
    sources: Mapping[int, int]

    def version(self, node: int) -> int | None:
        found = self.deployed.get(node)
        return found if found is not None else self.sources.get(node)


class Serves(Protocol):
    """What an environment serves, as the walk asks it: node -> version, None if absent."""

    def version(self, node: int) -> int | None: ...


@dataclass
class Lineage:
    """A deployed version's serving lineage: its (ancestor, version) pairs, the
    ancestors the environment lacks, and BFS parents towards the node (for paths)."""

    pairs: set[Pair] = field(default_factory=set)
    absent: set[int] = field(default_factory=set)
    parent: dict[int, int] = field(default_factory=dict)


def serving_lineage(node: int, version: int, inputs_of: Callable[[int], Inputs],
                    served: Serves) -> Lineage:
    """The lineage of ``node`` at ``version`` with the environment's versions.

    Each regular input counts at the version the environment serves (a pinned one at
    its pin, without crossing it); the walk goes on through the inputs of each served
    version. An input the environment does not serve is absent and ends that path.
    ``inputs_of`` gives them sorted by (upstream, pin), as ``reads.inputs_of_versions``
    does: the first way found to an ancestor is the path its reasons name.
    """
    out = Lineage()
    seen = {node}
    queue = deque([(node, version)])
    while queue:
        here, here_version = queue.popleft()
        for upstream, pin in inputs_of(here_version):
            out.parent.setdefault(upstream, here)
            if pin is not None:
                out.pairs.add((upstream, pin))
                continue
            serving = served.version(upstream)
            if serving is None:
                out.absent.add(upstream)
                continue
            out.pairs.add((upstream, serving))
            if upstream not in seen:
                seen.add(upstream)
                queue.append((upstream, serving))
    return out


def path_to(parent: Mapping[int, int], ancestor: int, node: int) -> list[int]:
    """ancestor -> ... -> node through the BFS parents of ``serving_lineage``."""
    path = [ancestor]
    while path[-1] != node and path[-1] in parent:
        path.append(parent[path[-1]])
    return path


# A live waiver granted for one node in one environment: the registry's shape.
EnvWaiver = Waiver


@dataclass(slots=True)
class EnvFacts:
    """What environment status needs about one deployed node."""

    id: int
    name: str
    kind: str
    owner: str | None
    env: str
    version: str  # the deployed label
    version_created_at: datetime | None
    max_age_s: int | None
    required_suites: list[str]
    names: Mapping[int, str]  # node id -> name, for every node named in a reason
    labels: Mapping[int, str]  # version id -> label


def _reason(*, cause: str, message: str, path: list[str], tested: Sequence[str] = (),
            now: Sequence[str] = (), suite: str | None = None) -> Entry:
    return {"cause": cause, "from_": ", ".join(tested) or None, "to": ", ".join(now) or None,
            "tested_with": list(tested), "now": list(now), "path": path, "suite": suite,
            "message": message}


def skew_message(env: str, cause: str, tested: Sequence[str], serving: Sequence[str],
                 via: Sequence[str]) -> str:
    """One differing ancestor in words: what the environment serves against what the
    deployed version was tested with."""
    route = " -> ".join(via)
    if not tested:
        return f"serves {cause} {', '.join(serving)} in {env}, which was not upstream when " \
               f"tested, via {route}"
    if not serving:
        return f"{cause} (tested with {', '.join(tested)}) is not upstream in {env}"
    return f"serves {cause} {', '.join(serving)} in {env}, tested with {', '.join(tested)}, " \
           f"via {route}"


def _names(f: EnvFacts, ids: Iterable[int]) -> list[str]:
    return [f.names.get(i, "?") for i in ids]


def _labels(f: EnvFacts, ids: Iterable[int]) -> list[str]:
    return [f.labels.get(i, "?") for i in ids]


def skew_triples(snapshot: Iterable[Pair], lineage: Iterable[Pair]) -> list[Triple]:
    """Per differing ancestor: (ancestor, versions tested with, versions served), sorted
    (``rules.status.lineage_diff`` of one snapshot). Only the ancestors in the symmetric
    difference are grouped: a lineage holds thousands of pairs, and few differ."""
    then, now = frozenset(snapshot), frozenset(lineage)
    if then == now:
        return []
    differ = {n for n, _ in then ^ now}
    old: dict[int, list[int]] = {n: [] for n in differ}
    new: dict[int, list[int]] = {n: [] for n in differ}
    for pairs, into in ((then, old), (now, new)):
        for n, v in pairs:
            if n in differ:
                into[n].append(v)
    return sorted((n, tuple(sorted(set(old[n]))), tuple(sorted(set(new[n])))) for n in differ)


def covered(waivers: Sequence[EnvWaiver], triples: Iterable[Triple], run_ids: Sequence[int]
            ) -> list[int] | None:
    """Ids of the waivers that together accept every one of ``triples`` against the runs
    ``run_ids`` (the latest passing run of each suite the node is skewed in); None when
    some triple is not accepted."""
    accepted: set[Triple] = set()
    ids: list[int] = []
    against = sorted(run_ids)
    for w in waivers:
        if sorted(w.runs) != against:
            continue  # granted against other runs: a newer test ended it
        ids.append(w.id)
        accepted.update((int(c), tuple(t), tuple(n)) for c, t, n in w.covers)
    if all(t in accepted for t in triples):
        return ids
    return None


class Undecided(Exception):
    """Evidence that cannot answer a question from what it holds: the caller takes the
    node the direct way (``Direct``)."""


class Evidence(Protocol):
    """How a deployed version's runs compare with its serving lineage.

    ``Direct`` holds the lineage and every run's snapshot (the definition);
    ``FromMarks`` answers from the registry's retest marks when the environment serves
    the registry's current versions along the node's whole lineage (the same lineage),
    and raises ``Undecided`` where they do not say.
    """

    @property
    def absent(self) -> set[int]: ...

    def counts(self, run: TestRun) -> bool:
        """Whether the run's snapshot equals the serving lineage."""

    def triples(self, run: TestRun) -> list[Triple]:
        """(ancestor, versions tested with, versions served) per differing ancestor."""

    def via(self, cause: int, f: EnvFacts) -> list[str]:
        """The path, by name, from ``cause`` down to the node (a served cause)."""


@dataclass
class Direct:
    """Evidence from the definition: the serving lineage and the runs' snapshots."""

    lineage: Lineage
    snapshots: Mapping[int, frozenset[Pair]]  # run id -> snapshot

    @property
    def absent(self) -> set[int]:
        return self.lineage.absent

    def counts(self, run: TestRun) -> bool:
        return self.snapshots[run.id] == self.lineage.pairs

    def triples(self, run: TestRun) -> list[Triple]:
        return skew_triples(self.snapshots[run.id], self.lineage.pairs)

    def via(self, cause: int, f: EnvFacts) -> list[str]:
        return _names(f, path_to(self.lineage.parent, cause, f.id))


@dataclass(slots=True)
class FromMarks:
    """Evidence from the registry's open retest marks, for a node deployed at its current
    version whose lineage the environment serves at the registry's current versions: its
    serving lineage is then its lineage now, and the marks are exactly how the deciding
    runs' snapshots differ from it (``rules.marks``), one row per differing ancestor,
    with the path to it.

    ``seen``: for runs other than a single deciding one, each cause's versions in the
    run's snapshot (run id -> cause -> sorted versions), read by index. A deciding run
    agrees with the lineage on every ancestor that is no cause, so the causes decide it;
    any other run that agrees on the causes may still differ elsewhere: ``Undecided``.
    """

    deciding: Sequence[int]  # run ids
    marks: Sequence[Any]  # status.RetestMark
    seen: Mapping[int, Mapping[int, tuple[int, ...]]] = field(default_factory=dict)
    absent: set[int] = field(default_factory=set)

    def _now(self) -> dict[int, tuple[int, ...]]:
        return {m.cause_id: tuple(m.now_versions) for m in self.marks}

    def _single(self, run: TestRun) -> bool:
        return len(self.deciding) == 1 and run.id == self.deciding[0]

    def counts(self, run: TestRun) -> bool:
        if not self.marks:
            # Every deciding run counts, and they are the latest of their suites, so the
            # others cannot change which run decides: they are left out.
            return run.id in self.deciding
        if self._single(run):
            return False
        agrees = all(self.seen.get(run.id, {}).get(c, ()) == v for c, v in self._now().items())
        if run.id in self.deciding or not agrees:
            return agrees
        raise Undecided(run.id)

    def triples(self, run: TestRun) -> list[Triple]:
        if self._single(run):
            return sorted((m.cause_id, tuple(m.tested_versions), tuple(m.now_versions))
                          for m in self.marks)
        if run.id not in self.deciding:
            raise Undecided(run.id)
        seen = self.seen.get(run.id, {})
        return sorted((c, seen.get(c, ()), v) for c, v in self._now().items()
                      if seen.get(c, ()) != v)

    def via(self, cause: int, f: EnvFacts) -> list[str]:
        for m in self.marks:
            if m.cause_id == cause:
                return list(m.path)
        raise Undecided(cause)


def _uncounted(f: EnvFacts, ev: Evidence, runs: Sequence[TestRun]
               ) -> tuple[list[TestRun], list[str]]:
    """The latest counting run of each suite that decides (see ``considered_runs``), and
    the suites with no counting run ("" = any suite, for a node without required ones)."""
    counting = [r for r in runs if ev.counts(r)]
    considered, missing = considered_runs(counting, f.required_suites)
    if not f.required_suites and not counting:
        missing = [""]  # no run counts at all: judged against the latest passing one
    return considered, missing


def _latest_passing(runs: Sequence[TestRun], suite: str) -> TestRun | None:
    for r in reversed(runs):
        if r.passed and (suite == "" or r.suite == suite):
            return r
    return None


def skew_basis(f: EnvFacts, ev: Evidence, runs: Sequence[TestRun]
               ) -> tuple[list[int], list[Triple]]:
    """What a skewed node is judged against: the latest passing run of each suite that has
    no counting run (sorted ids), and every (ancestor, tested, served) that differs from
    them. What an environment waiver granted now records (``runs``, ``covers``)."""
    _, missing = _uncounted(f, ev, runs)
    ids: list[int] = []
    triples: set[Triple] = set()
    for suite in missing:
        latest = _latest_passing(runs, suite)
        if latest is not None:
            ids.append(latest.id)
            triples.update(ev.triples(latest))
    return sorted(set(ids)), sorted(triples)


def evaluate(f: EnvFacts, ev: Evidence, runs: Sequence[TestRun],
             waivers: Sequence[EnvWaiver], now: datetime) -> Entry:
    """Environment status of one deployed node that needs tests. ``runs``: every run of
    the deployed version, in commit order (by id). ``Undecided`` when ``ev`` cannot say."""
    entry: Entry = {"name": f.name, "kind": f.kind, "version": f.version,
                    "status": VERIFIED, "reasons": [], "owner": f.owner,
                    "last_run": runs[-1].recorded_at if runs else None, "waivers": [],
                    "required_suites": list(f.required_suites)}
    if ev.absent:
        entry["status"] = MISSING_INPUT
        entry["reasons"] = [_reason(
            cause=name, path=ev.via(a, f),
            message=f"reads {name}, which {f.env} does not serve (deploy it there first)")
            for a, name in sorted(((a, f.names.get(a, "?")) for a in ev.absent),
                                  key=lambda x: x[1])]
        return entry
    if not runs:
        entry["status"] = UNTESTED
        entry["reasons"] = [_reason(cause=f.name, path=[f.name], now=[f.version],
                                    message=f"version {f.version} has no test run")]
        return entry
    considered, missing = _uncounted(f, ev, runs)
    failed = [r for r in considered if not r.passed]
    if failed:
        entry["status"] = FAILED
        entry["reasons"] = [_reason(
            cause=f.name, path=[f.name], now=[f.version], suite=r.suite or None,
            message=f"the latest run{_of_suite(r.suite)} of version {f.version} with what "
                    f"{f.env} serves failed") for r in failed]
        return entry
    if missing:
        return _not_counting(entry, f, ev, runs, waivers, missing)
    if f.max_age_s and f.version_created_at is not None \
            and now - f.version_created_at > timedelta(seconds=f.max_age_s):
        entry["status"] = STALE
        entry["reasons"] = [_reason(cause=f.name, path=[f.name], now=[f.version],
                                    message=f"version {f.version} is older than its maximum "
                                            f"age (time to retrain)")]
    return entry


def _of_suite(suite: str) -> str:
    return f" of suite '{suite}'" if suite else ""


def _not_counting(entry: Entry, f: EnvFacts, ev: Evidence, runs: Sequence[TestRun],
                  waivers: Sequence[EnvWaiver], suites: Sequence[str]) -> Entry:
    """No run with this serving lineage for ``suites`` ("" = any suite): skewed against
    the latest passing run of each, untested or failed when there is none."""
    reasons: list[Entry] = []
    skewed_against: list[int] = []
    triples: set[Triple] = set()
    worst = SKEWED
    for suite in suites:
        of_suite = [r for r in runs if suite == "" or r.suite == suite]
        passing = [r for r in of_suite if r.passed]
        if not passing:
            worst = _worse(worst, FAILED if of_suite else UNTESTED)
            what = "has only failed runs" if of_suite else "has no run"
            reasons.append(_reason(
                cause=f.name, path=[f.name], now=[f.version], suite=suite or None,
                message=f"version {f.version}{_of_suite(suite)} {what}"))
            continue
        latest = passing[-1]
        if latest.id not in skewed_against:
            skewed_against.append(latest.id)
        differ = ev.triples(latest)
        triples.update(differ)
        for cause, old, new in differ:
            name = f.names.get(cause, "?")
            tested, serving = _labels(f, old), _labels(f, new)
            via = ev.via(cause, f) if new else [name]
            suffix = f" (suite '{suite}')" if suite else ""
            reasons.append(_reason(cause=name, tested=tested, now=serving, path=via,
                                   suite=suite or None,
                                   message=skew_message(f.env, name, tested, serving, via)
                                   + suffix))
    entry["status"] = worst
    entry["reasons"] = reasons
    if worst == SKEWED and waivers:
        # Every suite skewed against its latest passing run: a waiver (or several) must
        # accept the differences against exactly those runs.
        ids = covered(waivers, triples, skewed_against)
        if ids is not None:
            entry["status"] = WAIVED
            entry["waivers"] = ids
    return entry


_SEVERITY = {SKEWED: 0, UNTESTED: 1, FAILED: 2}


def _worse(a: str, b: str) -> str:
    return a if _SEVERITY[a] >= _SEVERITY[b] else b


def waiver_facts(snapshot: Iterable[Pair], lineage: Iterable[Pair]) -> list[list[Any]]:
    """What an environment waiver granted now accepts: [cause, [tested], [served]]."""
    return [[c, list(t), list(n)] for c, t, n in skew_triples(snapshot, lineage)]


def versions_of(pairs: Iterable[Pair]) -> dict[int, tuple[int, ...]]:
    """A lineage per ancestor (re-exported for callers that print it)."""
    return by_node(pairs)
