"""Environment status at scale: which nodes can be judged from the registry's marks, and
the direct way for the others.

The definition (``status.Direct``) needs every judged node's serving lineage and every
run's snapshot: on 100,000 deployed nodes, tens of millions of pairs. But an environment
mostly serves the registry's current versions, and where it serves them along a node's
whole lineage, that serving lineage *is* the node's lineage now, which the registry's
retest marks already compare with the deciding runs (``status.FromMarks``). So:

* ``Assignment`` says what the environment serves (possibly after a release not yet
  recorded), read whole or node by node;
* the nodes served at a version other than their current one (or absent, or retired)
  are the *changed* ones; a node deployed at its current version that no change reaches
  along current edges is judged from marks, the rest (and any the marks leave
  ``Undecided``) the direct way, over lineages loaded upwards from them only.

Both ways must give the same entries: tests/test_env_judge.py compares them on random
registries, and the lockstep test compares the result with the reference model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from chainml.db import reads
from chainml.db.direct import Db
from chainml.environments.status import (
    Direct,
    EnvFacts,
    FromMarks,
    Inputs,
    Lineage,
    Undecided,
    evaluate,
    path_to,
    serving_lineage,
)
from chainml.errors import InvalidInput
from chainml.rules.status import Entry, considered_runs, to_entries

if TYPE_CHECKING:  # ``status --env`` writes the entries as plain data, without pydantic
    from chainml.schemas import StatusEntry

# Above this many nodes, read whole tables rather than by id.
WHOLE = 5_000
# Changed nodes walked down in SQL up to this many; beyond, over the edges in memory.
WALK_IN_SQL = 500
# Up to this many nodes judged, decide from the lineages above them alone (one walk up)
# rather than from every change in the environment (which reads what it serves whole).
ABOVE_UP_TO = 20


@dataclass(frozen=True)
class Reached:
    """Of one environment as the registry stood at ``generation`` (``reads.latest_event``):
    every node whose lineage there holds a changed node. ``split`` asks it of the nodes it
    judges, one walk up from each; a caller that judges one node at a time (a server's
    node pages) keeps this instead, and ``env_status`` uses it only while the registry
    is still at that generation."""

    env: str
    generation: int
    nodes: frozenset[int]


def reached(db: Db, env: reads.EnvRow) -> Reached:
    """``Reached`` of ``env`` as this connection sees the registry (the whole environment
    is read: 0.1-0.5 s at 100,000 nodes)."""
    generation = reads.latest_event(db)
    _, changed = reads.env_summary(db, env.id)
    return Reached(env.name, generation,
                   frozenset(_below_changed(db, changed)) if changed else frozenset())


class Assignment:
    """What one environment serves: node -> version (DESIGN.md: deployed, else a source
    at its current version, else absent), after ``release`` (node -> version, None to
    undeploy) when given.

    ``whole`` reads every deployment and node at once; otherwise they are read as the
    walks reach them (``resolve``). Releases tried on top of one another share the reads
    (``with_release``).
    """

    def __init__(self, db: Db, env: reads.EnvRow, release: Mapping[int, int | None] | None = None,
                 *, whole: bool = False, _base: Assignment | None = None) -> None:
        self.db = db
        self.env = env
        self.release = dict(release or {})
        self._memo: dict[int, int | None] = {}  # node -> version(node), once settled
        self._changed: set[int] | None = None  # every changed node (``whole`` only)
        # Every node a changed node reaches, when the caller kept it (``Reached``): only
        # without a release, which would change what is changed.
        self.reached: frozenset[int] | None = None
        self.whole: bool
        self._deployed: dict[int, int]
        self.states: dict[int, reads.NodeState]
        self._inputs: dict[int, list[tuple[int, int | None]]]
        if _base is not None:
            self.whole = _base.whole
            self._deployed = _base._deployed
            self.states = _base.states
            self._inputs = _base._inputs
            return
        self.whole = whole
        self._deployed = reads.served_map(db, env.id) if whole else {}
        self.states = reads.node_states(db) if whole else {}
        self._inputs = {}

    def read_whole(self) -> None:
        """Read every deployment and node at once (cheaper than by id for many)."""
        if not self.whole:
            self._deployed.update(reads.served_map(self.db, self.env.id))
            self.states.update(reads.node_states(self.db))
            self.whole = True

    def add_deployed(self, deployed: Mapping[int, int]) -> None:
        """Deployments read elsewhere (``reads.env_summary``); the nodes' facts are read
        as walks reach them."""
        self._deployed.update(deployed)

    def with_release(self, release: Mapping[int, int | None]) -> Assignment:
        return Assignment(self.db, self.env, {**self.release, **release}, _base=self)

    def resolve(self, ids: Iterable[int]) -> None:
        """Read the deployments and facts of ``ids`` not read yet."""
        missing = [i for i in ids if i not in self.states]
        if not missing:
            return
        states, served = reads.states_served(self.db, self.env.id, missing)
        self.states.update(states)
        self._deployed.update(served)

    def deployed(self, node: int) -> int | None:
        """The version deployed to the environment (a live source is not deployed)."""
        if node in self.release:
            return self.release[node]
        return self._deployed.get(node)

    def version(self, node: int) -> int | None:
        if node in self._memo:
            return self._memo[node]
        found = self._version(node)
        if node in self.states:  # settled: its deployment has been read
            self._memo[node] = found
        return found

    def _version(self, node: int) -> int | None:
        found = self.deployed(node)
        if found is not None or node in self.release:
            return found
        st = self.states.get(node)
        if st is not None and st.kind == "source" and not st.retired:
            return st.current_version_id
        return None

    def deployed_ids(self) -> set[int]:
        """Every node deployed (``whole`` only)."""
        assert self.whole
        out = set(self._deployed) | {n for n, v in self.release.items() if v is not None}
        return out - {n for n, v in self.release.items() if v is None}

    def testable(self, ids: Iterable[int] | None) -> list[int]:
        """Of ``ids`` (default: every deployed node), those deployed that get a status:
        they need tests and are part of the chain."""
        pool = self.deployed_ids() if ids is None else set(ids)
        self.resolve(pool)
        states, deployed, release = self.states, self._deployed, self.release
        return sorted(i for i in pool
                      if (release[i] if i in release else deployed.get(i)) is not None
                      and states[i].needs_tests and not states[i].retired)

    def changed(self, node: int) -> bool:
        """Served otherwise than at the registry's current version (or retired)."""
        if self.whole:
            return node in self.changed_nodes()
        st = self.states[node]
        return st.retired or self.version(node) != st.current_version_id

    def changed_nodes(self) -> set[int]:
        """Every changed node (``whole`` only): one pass over what was read, as ``changed``
        and ``version`` say it (100,000 method calls cost 0.2 s)."""
        assert self.whole
        if self._changed is None:
            out: set[int] = set()
            deployed, release = self._deployed, self.release
            for n, st in self.states.items():
                v = release[n] if n in release else deployed.get(n)
                if v is None and n not in release and st.kind == "source" and not st.retired:
                    v = st.current_version_id
                if st.retired or v != st.current_version_id:
                    out.add(n)
            self._changed = out
        return self._changed

    # ---- walks ---------------------------------------------------------------------------------

    def inputs_of(self, version: int) -> Inputs:
        return self._inputs.get(version, [])

    def read_inputs(self, versions: Iterable[int]) -> None:
        """Read the inputs of ``versions`` (and the facts of what they read)."""
        wanted = set(versions) - self._inputs.keys()
        if wanted:
            self._inputs.update(reads.inputs_of_versions(self.db, wanted))
        self.resolve({u for v in versions for u, _ in self.inputs_of(v)})

    def load_lineages(self, ids: Iterable[int], *, pins_too: bool = False) -> None:
        """Read the inputs of every version the serving lineages of ``ids`` walk (with
        ``pins_too``, every version above them along any regular input, as the cycle
        rule walks)."""
        self.resolve(ids)
        frontier = {v for v in (self.version(i) for i in ids) if v is not None}
        while frontier:
            wanted = frontier - self._inputs.keys()
            got = reads.inputs_of_versions(self.db, wanted)
            self._inputs.update(got)
            ups = {u for ins in got.values() for u, pin in ins if pins_too or pin is None}
            self.resolve(ups)
            frontier = {v for v in (self.version(u) for u in ups) if v is not None} \
                - self._inputs.keys()

    def lineage(self, node: int) -> Lineage:
        """The serving lineage of a deployed node (``load_lineages`` first)."""
        version = self.deployed(node)
        assert version is not None
        return serving_lineage(node, version, self.inputs_of, self)

    def read_by(self, ids: Collection[int]) -> set[int]:
        """The nodes whose served version reads one of ``ids`` (pinned or not)."""
        rows = reads.readers(self.db, ids)
        self.resolve({n for n, _, _, _ in rows})
        return {n for n, v, _, _ in rows if self.version(n) == v}

    def reached_by(self, released: Collection[int]) -> set[int]:
        """The nodes whose serving lineage holds one of ``released``: those whose served
        version reads one (pinned or not), and, along unpinned inputs, whatever reads
        them; the released nodes themselves too."""
        out = set(released)
        frontier: set[int] = set(released)
        first = True
        while frontier:
            rows = reads.readers(self.db, frontier)
            self.resolve({n for n, _, _, _ in rows})
            step = {n for n, v, _, pinned in rows
                    if self.version(n) == v and (first or not pinned)}
            first = False
            frontier = step - out
            out |= step
        return out


# ---- which way -------------------------------------------------------------------------------


def _below_changed(db: Db, changed: Collection[int]) -> set[int]:
    """Every node whose lineage now holds one of the ``changed`` nodes."""
    if len(changed) <= WALK_IN_SQL:
        return reads.reached_below(db, sorted(changed))
    down: dict[int, list[int]] = {}
    for u, d in reads.unpinned_edges(db):
        down.setdefault(u, []).append(d)
    seen: set[int] = set()
    queue = deque(changed)
    while queue:
        for d in down.get(queue.popleft(), ()):
            if d not in seen:
                seen.add(d)
                queue.append(d)
    return seen


def _above_changed(assign: Assignment, ids: list[int]) -> set[int]:
    """Of ``ids``, those whose lineage now holds a changed node, from the current edges
    above them alone."""
    edges = reads.edges_above(assign.db, ids)
    down: dict[int, list[int]] = {}
    for u, d, pin in edges:
        if pin is None:
            down.setdefault(u, []).append(d)
    above = {u for u, _, _ in edges}
    assign.resolve(above)
    seen: set[int] = set()
    queue = deque(n for n in above if assign.changed(n))
    while queue:
        for d in down.get(queue.popleft(), ()):
            if d not in seen:
                seen.add(d)
                queue.append(d)
    return seen & set(ids)


def split(assign: Assignment, ids: list[int]) -> tuple[list[int], list[int]]:
    """``ids`` (deployed, testable) into (judged from marks, judged directly)."""
    if not ids:
        return [], []
    if assign.whole:
        changed = assign.changed_nodes()
        at_current = [i for i in ids if i not in changed]
    else:
        at_current = [i for i in ids if not assign.changed(i)]
    below: Collection[int]
    if assign.reached is not None and not assign.release:
        below = assign.reached
    elif len(ids) <= ABOVE_UP_TO or not assign.whole:
        below = _above_changed(assign, at_current)
    else:
        below = _below_changed(assign.db, assign.changed_nodes())
    fast = [i for i in at_current if i not in below]
    chosen = set(fast)
    return fast, [i for i in ids if i not in chosen]


# ---- the two ways ----------------------------------------------------------------------------


def _from_marks(assign: Assignment, ids: list[int], now: datetime
                ) -> tuple[dict[int, Entry], list[int]]:
    """Entries of ``ids`` from the registry's marks, and the ids the marks leave open."""
    if not ids:
        return {}, []
    db = assign.db
    wanted = set(ids)
    scope = None if len(ids) > WHOLE else ids
    nodes = {n.id: n for n in reads.status_nodes(db, scope) if n.id in wanted}
    runs = reads.status_runs(db, scope)
    marks = reads.status_marks(db, scope)
    waivers = reads.env_waivers(db, assign.env.id, scope, now)
    # Runs besides a single deciding one are told apart by their causes' versions.
    deciding: dict[int, list[int]] = {}
    probe: set[int] = set()
    causes: set[int] = set()
    named: set[int] = set()  # what the reasons name: the marks' causes and versions
    labelled: set[int] = set()
    for i in ids:
        rs = runs.get(i, [])
        chosen, _ = considered_runs(rs, nodes[i].required_suites)
        deciding[i] = [r.id for r in chosen]
        ms = marks.get(i)
        if not ms:
            continue
        for m in ms:
            named.add(m.cause_id)
            labelled.update(m.tested_versions)
            labelled.update(m.now_versions)
        if not (len(rs) == 1 and len(chosen) == 1):
            probe.update(r.id for r in rs)
            causes.update(m.cause_id for m in ms)
    seen: dict[int, dict[int, tuple[int, ...]]] = {}
    if probe:
        got: dict[int, dict[int, list[int]]] = {}
        for run, pairs in reads.snapshot_pairs(db, sorted(probe), sorted(causes)).items():
            for cause, v in pairs:
                got.setdefault(run, {}).setdefault(cause, []).append(v)
        seen = {r: {c: tuple(sorted(vs)) for c, vs in by.items()} for r, by in got.items()}
    names = reads.names(db, named)
    labels = reads.labels(db, labelled)
    out: dict[int, Entry] = {}
    open_: list[int] = []
    env = assign.env.name
    for i in ids:
        n = nodes[i]
        facts = EnvFacts(i, n.name, n.kind, n.owner, env, n.label, n.created_at, n.max_age_s,
                         n.required_suites, names, labels)
        ev = FromMarks(deciding[i], marks.get(i, ()), seen)
        try:
            out[i] = evaluate(facts, ev, runs.get(i, ()), waivers.get(i, ()), now)
        except Undecided:
            open_.append(i)
    return out, open_


def facts_direct(assign: Assignment, lines: Mapping[int, Lineage], now: datetime
                 ) -> tuple[dict[int, EnvFacts], dict[int, list[reads.Run]],
                            dict[int, Direct], dict[int, list[reads.LiveWaiver]]]:
    """What the definition needs about the deployed nodes of ``lines``: their facts,
    the runs of their deployed versions, the evidence (lineage and snapshots), waivers."""
    db = assign.db
    ids = sorted(lines)
    vids = [assign.deployed(i) or -1 for i in ids]
    versions = reads.versions(db, vids)
    info = reads.env_nodes(db, ids)
    runs_of = reads.version_runs(db, vids)
    snaps = reads.snapshot_pairs(db, [r.id for rs in runs_of.values() for r in rs])
    shots = {run: frozenset(pairs) for run, pairs in snaps.items()}
    # A reason names an ancestor where a run's snapshot and the lineage differ, with its
    # versions on both sides and its way down to the node, or an absent one: of the
    # 67,000 ancestors of the hundred leaves a 100,000-node environment serves behind,
    # a handful (reading every name and label took a tenth of the environment's gate).
    named: set[int] = set(ids)
    labelled: set[int] = set(vids)
    for i, vid in zip(ids, vids, strict=True):
        line = lines[i]
        differ = set(line.absent)
        mine = [shots[r.id] for r in runs_of.get(vid, [])]
        for shot in mine:
            differ.update(a for a, _ in shot ^ line.pairs)
        if not differ:
            continue
        for pairs in (*mine, line.pairs):
            labelled.update(v for a, v in pairs if a in differ)
        for a in differ:
            named.update(path_to(line.parent, a, i))
    names = reads.names(db, named)
    labels = reads.labels(db, labelled)
    facts: dict[int, EnvFacts] = {}
    runs: dict[int, list[reads.Run]] = {}
    evidence: dict[int, Direct] = {}
    for i, vid in zip(ids, vids, strict=True):
        n = info[i]
        facts[i] = EnvFacts(id=i, name=n.name, kind=n.kind, owner=n.owner, env=assign.env.name,
                            version=labels[vid], version_created_at=versions[vid].created_at,
                            max_age_s=n.max_age_s, required_suites=list(n.required_suites),
                            names=names, labels=labels)
        runs[i] = runs_of.get(vid, [])
        evidence[i] = Direct(lines[i], {r.id: shots[r.id] for r in runs[i]})
    return facts, runs, evidence, reads.env_waivers(db, assign.env.id, ids, now)


def _direct(assign: Assignment, ids: list[int], now: datetime) -> dict[int, Entry]:
    if not ids:
        return {}
    assign.load_lineages(ids)
    lines = {i: assign.lineage(i) for i in ids}
    facts, runs, evidence, waivers = facts_direct(assign, lines, now)
    return {i: evaluate(facts[i], evidence[i], runs[i], waivers.get(i, []), now)
            for i in sorted(ids)}


def judge(assign: Assignment, ids: Iterable[int] | None, now: datetime,
          *, direct_only: bool = False) -> dict[int, StatusEntry]:
    """Environment status of ``ids`` (default: every deployed node) that get one, by node
    id. ``direct_only`` judges every node by the definition (the tests' oracle)."""
    plain = entries(assign, ids, now, direct_only=direct_only)
    return dict(zip(plain, to_entries(list(plain.values())), strict=True))


def entries(assign: Assignment, ids: Iterable[int] | None, now: datetime,
            *, direct_only: bool = False) -> dict[int, Entry]:
    """``judge``'s entries as plain data (``rules.status.Entry``), which ``chainml status
    --env`` writes as they are."""
    if ids is None and not assign.whole and not assign.release and not direct_only:
        return _judge_served(assign, now)
    if ids is not None and not assign.whole:
        ids = list(ids)
        if len(ids) > ABOVE_UP_TO:
            assign.read_whole()
    if ids is None:
        assign.read_whole()
    cands = assign.testable(ids)
    fast, slow = ([], cands) if direct_only else split(assign, cands)
    out, open_ = _from_marks(assign, fast, now)
    out.update(_direct(assign, sorted(slow + open_), now))
    return out


def _judge_served(assign: Assignment, now: datetime) -> dict[int, Entry]:
    """Every node the environment serves as it is (``status --env``, ``check --env``),
    from two lean reads: its testable deployed nodes with their versions, and the changed
    nodes, rather than every node and deployment (0.6 s of a 100,000-node check)."""
    served, changed = reads.env_summary(assign.db, assign.env.id)
    assign.add_deployed({n: v for n, (v, _) in served.items()})
    below = _below_changed(assign.db, changed) if changed else set()
    fast = sorted(n for n, (v, current) in served.items()
                  if v == current and n not in below)
    chosen = set(fast)
    out, open_ = _from_marks(assign, fast, now)
    out.update(_direct(assign, sorted([n for n in served if n not in chosen] + open_), now))
    return out


# ---- the questions the command line asks without pydantic ------------------------------------


def require_deployed(db: Db, env: reads.EnvRow, name: str) -> reads.NodeRow:
    """The node named ``name``, deployed to the environment (else one sentence)."""
    node = reads.require_node(db, name)
    latest = reads.latest_deployments(db, env.id, [node.id]).get(node.id)
    if latest is None or latest.version_id is None:
        how = "was undeployed from" if latest is not None else "is not deployed to"
        raise InvalidInput(f"'{name}' {how} '{env.name}'; 'chainml env show "
                           f"{env.name}' lists what it serves.")
    if node.retired:
        raise InvalidInput(f"'{name}' is retired: it is no longer part of the chain (its "
                           "history stays in chainml log; registering it again revives it).")
    return node


def env_status(db: Db, env_name: str, name: str | None, now: datetime, direct: bool = False,
               *, kept: Reached | None = None) -> list[Entry]:
    """Environment status of every deployed node that needs tests (or of one), by name, as
    plain data (``service.env_status`` makes them models). ``kept``: the environment's
    ``Reached`` from an earlier read, used if the registry has not changed since."""
    env = reads.require_env(db, env_name)
    ids = [require_deployed(db, env, name).id] if name is not None else None
    assign = Assignment(db, env)
    if (kept is not None and kept.env == env.name
            and kept.generation == reads.latest_event(db)):
        assign.reached = kept.nodes
    found = entries(assign, ids, now, direct_only=direct)
    return sorted(found.values(), key=lambda e: str(e["name"]))
