"""An independent reference model (test oracle) of chainml's status semantics.

Written from /work/shared/DESIGN.md ("Concepts", "Semantics", "Fine points,
settled", and "Environments, deployments and training–serving skew") and the rules
of the oracle brief only; it shares no code with the implementation. Where the
environment section is silent, the model's choice is marked CHOICE in a docstring.
It is deliberately slow and obvious: plain dicts of nodes, versions, runs, waivers
and deployments, and lineage recomputed from scratch on every query.

Ordering is by call order only ("Latest follows the registry's commit order,
never a client's clock"): `now` is used for a version's creation time (stale),
waiver expiry and the query time, never to order anything.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("source", "feature", "model", "policy", "consumer")
# DESIGN.md "Concepts", kinds table: who may consume whom (regular inputs only).
MAY_CONSUME: dict[str, frozenset[str]] = {
    "source": frozenset(),
    "feature": frozenset({"source", "feature", "model"}),
    "model": frozenset({"feature", "model", "source"}),
    "policy": frozenset({"model", "feature", "policy"}),
    "consumer": frozenset(KINDS),
}
NEEDS_TESTS_BY_KIND = frozenset({"model", "policy"})  # kinds table, last column
MAX_WAIVER_S = 90 * 86400  # "Default expiry 7 days; at most 90."
OK_STATUSES = frozenset({"verified", "waived", "stale"})
NAME_RE = re.compile(r"[A-Za-z0-9_\-./:]{1,200}")  # "Concepts": Node names
ENV_NAME_RE = re.compile(r"[A-Za-z0-9_\-./:]{1,100}")  # CHOICE: environment names

Pair = tuple[str, str]  # (ancestor name, version label)
Reason = tuple[str, frozenset[str], frozenset[str]]  # (cause, tested-with labels, now labels)
Input = tuple[str, str | None]  # (upstream name, pin label or None)


class Refused(Exception):
    """The real tool would refuse this with exit code 2; the model state is unchanged."""


@dataclass(frozen=True)
class Verdict:
    """One node's status ("Semantics"); reasons only for needs_retest/waived."""

    status: str
    reasons: frozenset[Reason] = frozenset()
    missing_suites: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Version:
    """"Version — an immutable snapshot": inputs (with pins), feedback, creation time."""

    label: str
    inputs: tuple[Input, ...]
    feedback: tuple[str, ...]
    created: float

    def content(self) -> tuple[frozenset[Input], frozenset[str]]:
        """"A version's content is its inputs (with pins), feedback inputs" (no metadata here)."""
        return frozenset(self.inputs), frozenset(self.feedback)

    def reads(self) -> set[str]:
        """Every node this version reads, regular or feedback, pinned or not."""
        return {u for u, _ in self.inputs} | set(self.feedback)


@dataclass
class Node:
    """A node; needs_tests, required suites and max age "belong to the node, not to a version"."""

    kind: str
    versions: dict[str, Version]
    current: str
    needs_tests: bool
    required_suites: frozenset[str] = frozenset()
    max_age_s: int | None = None
    retired: bool = False


@dataclass(frozen=True)
class Run:
    """A test run; `seq` is its commit order; snapshot = lineage of `version` when recorded."""

    seq: int
    node: str
    version: str
    suite: str
    passed: bool
    snapshot: frozenset[Pair]


@dataclass(frozen=True)
class Waiver:
    """"A waiver accepts exact facts": the triples it covers, the runs it was granted on, expiry."""

    expiry: float
    runs: frozenset[int]
    covers: frozenset[Reason]


@dataclass(frozen=True)
class Deployment:
    """"Deployments are append-only history"; version None records an undeploy."""

    seq: int
    env: str
    node: str
    version: str | None


@dataclass(frozen=True)
class EnvVerdict:
    """One deployed node's environment status ("Environments ... training–serving skew").

    reasons: for skewed/waived, (cause, tested-with labels, served labels) per differing
    ancestor; missing: for missing_input, the absent ancestors; missing_suites: for untested,
    the required suites without any run of the deployed version; against: for skewed/waived,
    the latest passing run of each skewed suite (what a waiver is granted on)."""

    status: str
    reasons: frozenset[Reason] = frozenset()
    missing: frozenset[str] = frozenset()
    missing_suites: frozenset[str] = frozenset()
    against: frozenset[int] = field(default=frozenset(), compare=False)  # the runs judged


class Blocked(Exception):
    """`deploy` refuses the release (exit 1, nothing recorded): {node: its verdict after} of
    the nodes that block it, and of every node it judges."""

    def __init__(self, blocked: dict[str, EnvVerdict], checked: dict[str, EnvVerdict]) -> None:
        super().__init__(", ".join(f"{n} would be {v.status}" for n, v in sorted(blocked.items())))
        self.blocked, self.checked = blocked, checked


# deploy refuses a release that leaves one of these (DESIGN "deploy ... refuses").
BLOCKING = frozenset({"untested", "failed", "skewed", "missing_input"})
# An environment's serving lineage marks an absent unpinned input with this label (never a
# real version label: labels may not contain "@"); such a node is missing_input anyway.
ABSENT = "@absent"


def _check_max_age(max_age_s: int | None) -> None:
    """A maximum age is None (leave alone), 0 (no maximum) or a positive number of seconds."""
    if max_age_s is not None and max_age_s < 0:
        raise Refused("negative max age")


def _labels(pairs: frozenset[Pair], name: str) -> frozenset[str]:
    return frozenset(label for n, label in pairs if n == name)


class Model:
    """The whole registry: nodes, runs (in commit order), waivers per node, and environments
    with their deployments (in commit order) and waivers per environment and node."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.runs: list[Run] = []
        self.waivers: dict[str, list[Waiver]] = {}
        self.envs: dict[str, str | None] = {}  # environment → the one it comes after
        self.deployments: list[Deployment] = []  # append-only, in commit order
        self.env_waivers: dict[tuple[str, str], list[Waiver]] = {}  # (env, node) → waivers

    # ---------------------------------------------------------------- helpers
    def _live(self, name: str) -> Node:
        """Unknown or retired node → Refused (it is not in the current chain)."""
        node = self.nodes.get(name)
        if node is None or node.retired:
            raise Refused(f"no live node {name!r}")
        return node

    def _cur(self, name: str) -> Version:
        node = self.nodes[name]
        return node.versions[node.current]

    def _live_names(self) -> list[str]:
        return [n for n, node in self.nodes.items() if not node.retired]

    def _ancestors(self, name: str) -> set[str]:
        """Names upstream of `name` over current regular edges (pinned too; feedback never)."""
        seen: set[str] = set()
        todo = [u for u, _ in self._cur(name).inputs]
        while todo:
            u = todo.pop()
            if u not in seen:
                seen.add(u)
                todo.extend(w for w, _ in self._cur(u).inputs)
        return seen

    def _closes_cycle(self, name: str, inputs: Sequence[Input]) -> bool:
        """"The graph of all edges must stay acyclic" — feedback edges never count."""
        return any(u == name or name in self._ancestors(u) for u, _ in inputs)

    def _lineage(self, version: Version, path: tuple[str, ...] = ()) -> frozenset[Pair]:
        """"Lineage is a set of (ancestor, version) pairs".

        Through an unpinned input: its current version plus that version's lineage;
        through a pinned input `X@v`: the pair (X, v) only, and stop there.
        """
        pairs: set[Pair] = set()
        for u, pin in version.inputs:
            if pin is not None:
                pairs.add((u, pin))
                continue
            assert u not in path, f"cycle through {u}"
            pairs.add((u, self.nodes[u].current))
            pairs |= self._lineage(self._cur(u), path + (u,))
        return frozenset(pairs)

    def _deciding_runs(self, name: str) -> list[Run]:
        """"Latest run": of each required suite (else of any suite), current version only."""
        node = self.nodes[name]
        own = [r for r in self.runs if r.node == name and r.version == node.current]
        if not node.required_suites:
            return own[-1:]
        latest: dict[str, Run] = {}
        for r in own:
            if r.suite in node.required_suites:
                latest[r.suite] = r
        return sorted(latest.values(), key=lambda r: r.seq)

    def _reasons(self, name: str, deciding: list[Run]) -> frozenset[Reason]:
        """"A cause is one ancestor whose pairs differ" between a deciding run's snapshot
        and the current lineage; one triple per deciding run and differing ancestor."""
        now_pairs = self._lineage(self._cur(name))
        reasons: set[Reason] = set()
        for r in deciding:
            for a in {n for n, _ in r.snapshot | now_pairs}:
                before, after = _labels(r.snapshot, a), _labels(now_pairs, a)
                if before != after:
                    reasons.add((a, before, after))
        return frozenset(reasons)

    # ---------------------------------------------------------------- writes
    def register(self, kind: str, name: str, version: str, *, inputs: Sequence[Input],
                 feedback: Sequence[str] = (), needs_tests: bool | None = None,
                 required_suites: Sequence[str] | None = None, max_age_s: int | None = None,
                 now: float) -> None:
        """`chainml register`; refusals in the brief's order; same label + same content is a no-op
        (current unchanged) unless the node is retired, which revives it at that version."""
        _check_max_age(max_age_s)
        pairs = [(u, pin) for u, pin in inputs]  # accept lists as well as tuples
        self._register(kind, name, version, pairs, list(feedback), now, check_cycle=True)
        self._set(name, needs_tests, required_suites, max_age_s)

    def _register(self, kind: str, name: str, label: str, inputs: list[Input],
                  feedback: list[str], now: float, *, check_cycle: bool) -> None:
        """One registration. Name/label syntax (DESIGN "Concepts") first, then the brief's order:
        kind change, unknown/retired input, input twice, self input, kind rule, bad pin,
        immutable content, cycle (new versions only; `apply` defers it to its final state)."""
        if not NAME_RE.fullmatch(name) or kind not in KINDS:
            raise Refused("invalid name or kind")
        bad = [c for c in label if c.isspace() or c == "@" or not c.isprintable()]
        if not (1 <= len(label) <= 100) or bad:
            raise Refused("invalid version label")
        if any(n != name and n.lower() == name.lower() for n in self.nodes):
            raise Refused("name confusable with an existing one")
        existing = self.nodes.get(name)
        if existing is not None and existing.kind != kind:
            raise Refused("kind differs from the node's kind")
        read = [u for u, _ in inputs] + feedback
        if any(u not in self.nodes or self.nodes[u].retired for u in read):
            raise Refused("input unknown or retired")
        if len(set(read)) != len(read):
            raise Refused("input given twice")
        if name in read:
            raise Refused("a node may not read itself (kind rule or cycle)")
        if any(self.nodes[u].kind not in MAY_CONSUME[kind] for u, _ in inputs):
            raise Refused("kind rule")
        if any(pin is not None and pin not in self.nodes[u].versions for u, pin in inputs):
            raise Refused("pin to an unknown version")
        new = Version(label, tuple(inputs), tuple(feedback), now)
        if existing is not None and label in existing.versions:
            if existing.versions[label].content() != new.content():
                raise Refused("versions are immutable")
            if existing.retired:  # "Registering a retired name again revives it."
                existing.retired, existing.current = False, label
            return
        if check_cycle and self._closes_cycle(name, inputs):
            raise Refused("would close a cycle")
        if existing is None:
            self.nodes[name] = Node(kind, {label: new}, label, kind in NEEDS_TESTS_BY_KIND)
        else:
            existing.versions[label] = new
            existing.current, existing.retired = label, False

    def _set(self, name: str, needs_tests: bool | None, required_suites: Sequence[str] | None,
             max_age_s: int | None) -> None:
        """Node settings: None leaves a setting alone; max_age_s=0 means "no maximum age"."""
        node = self.nodes[name]
        if needs_tests is not None:
            node.needs_tests = needs_tests
        if required_suites is not None:
            node.required_suites = frozenset(required_suites)
        if max_age_s is not None:
            node.max_age_s = max_age_s or None

    def settings(self, name: str, *, needs_tests: bool | None = None,
                 required_suites: Sequence[str] | None = None, max_age_s: int | None = None,
                 now: float) -> None:
        """Change node settings ("changing them is logged, and creates no version")."""
        self._live(name)
        _check_max_age(max_age_s)
        self._set(name, needs_tests, required_suites, max_age_s)

    def promote(self, name: str, version: str, *, now: float) -> None:
        """`chainml promote`: make an existing version current (rollback)."""
        node = self._live(name)
        if version not in node.versions:
            raise Refused("unknown version")
        if version == node.current:
            return
        target = node.versions[version]
        if any(self.nodes[u].retired for u in target.reads()):
            raise Refused("that version reads a retired node; revive it first")
        if self._closes_cycle(name, target.inputs):
            raise Refused("would close a cycle")
        node.current = version

    def _readers(self, name: str) -> list[str]:
        return [n for n in self._live_names() if name in self._cur(n).reads()]

    def retire(self, name: str, *, now: float) -> None:
        """"Nothing is ever deleted": retire, refused while a live current version reads it."""
        node = self.nodes.get(name)
        if node is None:
            raise Refused("unknown node")
        if node.retired:
            return
        if self._readers(name):
            raise Refused(f"still read by {self._readers(name)}")
        node.retired = True

    def record(self, name: str, *, passed: bool, suite: str | None = None,
               version: str | None = None, now: float) -> None:
        """`chainml test record`: the snapshot is that version's lineage computed now."""
        node = self._live(name)
        label = node.current if version is None else version
        if label not in node.versions:
            raise Refused("unknown version")
        snapshot = self._lineage(node.versions[label])
        self.runs.append(Run(len(self.runs), name, label, suite or "", passed, snapshot))

    def waive(self, name: str, *, cause: str | None = None, expires_s: float = 7 * 86400,
              now: float) -> None:
        """`chainml waive`: covers needs_retest causes only; without cause, every open one."""
        self._live(name)
        verdict = self._verdict(name, now)
        if verdict is None or verdict.status not in ("needs_retest", "waived"):
            raise Refused("nothing to waive")
        if not (0 < expires_s <= MAX_WAIVER_S):
            raise Refused("expiry out of range")
        covers = frozenset(r for r in verdict.reasons if cause is None or r[0] == cause)
        if not covers:
            raise Refused("not an open cause")
        runs = frozenset(r.seq for r in self._deciding_runs(name))
        self.waivers.setdefault(name, []).append(Waiver(now + expires_s, runs, covers))

    def apply(self, nodes: list[dict[str, Any]], *, prune: bool, now: float) -> None:
        """`chainml apply`: one transaction — all of it happens, or Refused with no change."""
        trial = copy.deepcopy(self)
        trial._apply(nodes, prune, now)
        self.__dict__.update(trial.__dict__)

    def _apply(self, decls: list[dict[str, Any]], prune: bool, now: float) -> None:
        names = [d["name"] for d in decls]
        if len(set(names)) != len(names):
            raise Refused("a node declared twice")
        todo, order = list(decls), list[dict[str, Any]]()
        while todo:  # declared regular inputs first; declaration order otherwise
            ready = [d for d in todo
                     if not any(u in names and u not in {o["name"] for o in order}
                                for u, _ in d["inputs"])]
            if not ready:
                raise Refused("declared nodes form a cycle")
            order.append(ready[0])
            todo.remove(ready[0])
        for d in order:
            kind = d["kind"]
            inputs = [(u, p) for u, p in d["inputs"]]
            self._register(kind, d["name"], d["version"], inputs, list(d.get("feedback") or []),
                           now, check_cycle=False)
            nt, rs = d.get("needs_tests"), d.get("required_suites")
            node = self.nodes[d["name"]]
            # A chain file states the current state: the declared version becomes current
            # even when it already existed (apply is declarative, unlike register).
            if node.current != d["version"]:
                self.promote(d["name"], d["version"], now=now)
            node.needs_tests = kind in NEEDS_TESTS_BY_KIND if nt is None else nt
            node.required_suites = frozenset(rs or [])
            _check_max_age(d.get("max_age_s"))
            node.max_age_s = d.get("max_age_s") or None
        if prune:
            for n in self._live_names():
                if n not in names:
                    self.nodes[n].retired = True
        if any(self.nodes[u].retired for n in self._live_names() for u in self._cur(n).reads()):
            raise Refused("a pruned node is still read")
        if any(n in self._ancestors(n) for n in self._live_names()):
            raise Refused("the result would hold a cycle")

    # ---------------------------------------------------------------- queries
    def _verdict(self, name: str, now: float) -> Verdict | None:
        """The "Semantics" section, in the brief's order of checks."""
        node = self.nodes[name]
        if node.retired or not node.needs_tests:
            return None
        if not any(r.node == name and r.version == node.current for r in self.runs):
            return Verdict("untested", missing_suites=node.required_suites)
        deciding = self._deciding_runs(name)
        if any(not r.passed for r in deciding):
            return Verdict("failed")
        missing = node.required_suites - {r.suite for r in deciding}
        if missing:
            return Verdict("untested", missing_suites=frozenset(missing))
        reasons = self._reasons(name, deciding)
        if reasons:
            run_ids = frozenset(r.seq for r in deciding)
            live = [w for w in self.waivers.get(name, []) if now < w.expiry and w.runs == run_ids]
            covered = all(any(r in w.covers for w in live) for r in reasons)
            return Verdict("waived" if covered else "needs_retest", reasons)
        created = self._cur(name).created
        if node.max_age_s and now - created > node.max_age_s:
            return Verdict("stale")
        return Verdict("verified")

    def status(self, name: str, *, now: float) -> Verdict | None:
        """Status of one node; None when it needs no tests or is retired; unknown → Refused."""
        if name not in self.nodes:
            raise Refused("unknown node")
        return self._verdict(name, now)

    def statuses(self, *, now: float) -> dict[str, Verdict]:
        """Every live node that needs tests."""
        out = {n: self._verdict(n, now) for n in self._live_names()}
        return {n: v for n, v in out.items() if v is not None}

    def check(self, *, now: float, strict: bool = False) -> tuple[bool, frozenset[str]]:
        """The CI gate: failing unless verified/waived/stale; stale fails under --strict."""
        failing = frozenset(n for n, v in self.statuses(now=now).items()
                            if v.status not in OK_STATUSES or (strict and v.status == "stale"))
        return not failing, failing

    def impact(self, name: str) -> frozenset[str]:
        """Live nodes reached downstream over current, unpinned, non-feedback edges."""
        self._live(name)
        reached: set[str] = set()
        todo = [name]
        while todo:
            x = todo.pop()
            for n in self._live_names():
                if n not in reached and (x, None) in self._cur(n).inputs:
                    reached.add(n)
                    todo.append(n)
        return frozenset(reached - {name})

    def lineage(self, name: str) -> frozenset[Pair]:
        """Lineage of the node's current version; unknown or retired → Refused."""
        self._live(name)
        return self._lineage(self._cur(name))

    # ---------------------------------------------------------------- environments
    # DESIGN.md "Environments, deployments and training–serving skew". Where the page is
    # silent, the choice is marked CHOICE.

    def _env(self, env: str) -> None:
        if env not in self.envs:
            raise Refused(f"no environment {env!r}")

    def env_create(self, name: str, *, after: str | None = None, now: float) -> None:
        """`chainml env create NAME [--after ENV]`.

        CHOICE (the implementation's): an environment name is 1 to 100 of the characters a
        node name may hold; an existing name is refused (exit 2); --after must name an
        existing environment."""
        if not ENV_NAME_RE.fullmatch(name):
            raise Refused("invalid environment name")
        if name in self.envs:
            raise Refused("environment exists")
        if after is not None:
            self._env(after)
        self.envs[name] = after

    def _serving(self, env: str, release: dict[str, str] | None = None
                 ) -> tuple[dict[str, str], set[str]]:
        """("serving versions", deployed names) of `env`, after `release` if given.

        "the latest per node and environment is what that environment serves"; a source
        never deployed is served at its registry current version; any other node never
        deployed is absent. CHOICE: an undeployed source falls back to its registry current
        version like a never-deployed one (live data flows in again); an undeployed other
        node is absent. CHOICE (the implementation's): a retired source that the environment
        does not serve by a deployment is absent (it left the chain: no live data flows from
        it), while a deployment of a retired node stands until undeployed."""

        def live_source(n: str) -> bool:
            return self.nodes[n].kind == "source" and not self.nodes[n].retired

        served = {n: node.current for n, node in self.nodes.items() if live_source(n)}
        deployed: set[str] = set()
        for d in self.deployments:
            if d.env != env:
                continue
            if d.version is None:
                deployed.discard(d.node)
                served.pop(d.node, None)
                if live_source(d.node):
                    served[d.node] = self.nodes[d.node].current
            else:
                deployed.add(d.node)
                served[d.node] = d.version
        for n, label in (release or {}).items():
            deployed.add(n)
            served[n] = label
        return served, deployed

    def _serves_cycle(self, served: dict[str, str]) -> bool:
        """Whether the served versions' inputs loop. CHOICE (the implementation's, as in
        "the graph of all edges must stay acyclic"): a pinned input counts as an edge
        here, though a serving lineage does not cross it (`g 2` reads `m@1`, `m 1` reads
        `g`: a cycle); feedback inputs never count."""
        state: dict[str, bool] = {}  # False: on the path; True: done

        def loops(n: str) -> bool:
            state[n] = False
            for u, _ in self.nodes[n].versions[served[n]].inputs:
                if u in served and (state.get(u) is False or (u not in state and loops(u))):
                    return True
            state[n] = True
            return False

        return any(n not in state and loops(n) for n in sorted(served))

    def _serving_lineage(self, served: dict[str, str], name: str
                         ) -> tuple[frozenset[Pair], frozenset[str]]:
        """"Serving lineage": the lineage of `name`'s served version computed with the
        environment's serving versions (pairs; a pinned input counts at its pin and is not
        crossed); with the absent ancestors met on the way (those make it missing_input).

        CHOICE (the implementation's): a pinned input is never missing — the consumer reads a
        frozen artifact, whatever the environment serves of that node. CHOICE: feedback inputs
        are never read here (they "never enter snapshots or impact"). An absent unpinned input
        is marked (X, ABSENT) and not crossed. A cycle among served versions raises Refused
        (deploy refuses it)."""
        pairs: set[Pair] = set()
        missing: set[str] = set()

        def walk(node: str, path: tuple[str, ...]) -> None:
            for u, pin in self.nodes[node].versions[served[node]].inputs:
                if pin is not None:
                    pairs.add((u, pin))
                elif u not in served:
                    missing.add(u)
                    pairs.add((u, ABSENT))
                elif u in path:
                    raise Refused(f"the environment would serve a cycle through {u}")
                else:
                    pairs.add((u, served[u]))
                    walk(u, path + (u,))

        walk(name, (name,))
        return frozenset(pairs), frozenset(missing)

    def _env_verdict(self, env: str, name: str, served: dict[str, str], deployed: set[str],
                     now: float) -> EnvVerdict | None:
        """"Environment status of each node deployed to E that needs tests", checked in this
        order: missing_input, untested (no run of the deployed version at all), then each
        required suite (else all runs as one) judged on its own, the worst winning
        (failed > untested > skewed), then waived, stale, verified.

        "The runs that count are the runs of the deployed version whose snapshot equals its
        serving lineage", whenever recorded; "latest" is commit order. Per suite: latest
        counting run passed → fine, failed → failed; no counting run → skewed against its
        latest passing run, or failed when it has only failed runs (CHOICE, the
        implementation's); no run of that suite → untested (CHOICE). CHOICE: a retired
        deployed node has no environment status (it left status)."""
        node = self.nodes[name]
        if name not in deployed or node.retired or not node.needs_tests:
            return None
        label = served[name]
        lineage, missing = self._serving_lineage(served, name)
        if missing:
            return EnvVerdict("missing_input", missing=missing)
        own = [r for r in self.runs if r.node == name and r.version == label]
        if not own:
            return EnvVerdict("untested", missing_suites=node.required_suites)
        failed, untested, against = False, set[str](), list[Run]()
        suites: list[str | None] = [*sorted(node.required_suites)] or [None]
        for suite in suites:
            runs = own if suite is None else [r for r in own if r.suite == suite]
            counting = [r for r in runs if r.snapshot == lineage]
            passing = [r for r in runs if r.passed]
            if not runs:
                untested.add(str(suite))
            elif counting:
                failed |= not counting[-1].passed
            elif passing:
                against.append(passing[-1])
            else:
                failed = True
        if failed:
            return EnvVerdict("failed")
        if untested:
            return EnvVerdict("untested", missing_suites=frozenset(untested))
        if against:
            reasons: set[Reason] = set()
            for r in against:
                for a in {n for n, _ in r.snapshot | lineage}:
                    before, after = _labels(r.snapshot, a), _labels(lineage, a)
                    if before != after:
                        reasons.add((a, before, after))
            run_ids = frozenset(r.seq for r in against)
            live = [w for w in self.env_waivers.get((env, name), [])
                    if now < w.expiry and w.runs == run_ids]
            covered = all(any(x in w.covers for w in live) for x in reasons)
            return EnvVerdict("waived" if covered else "skewed", frozenset(reasons),
                              against=run_ids)
        created = node.versions[label].created
        if node.max_age_s and now - created > node.max_age_s:
            return EnvVerdict("stale")
        return EnvVerdict("verified")

    def env_statuses(self, env: str, *, now: float) -> dict[str, EnvVerdict]:
        """`chainml status --env ENV`: every node deployed to ENV that needs tests."""
        self._env(env)
        served, deployed = self._serving(env)
        out = {n: self._env_verdict(env, n, served, deployed, now) for n in sorted(deployed)}
        return {n: v for n, v in out.items() if v is not None}

    def env_status(self, env: str, name: str, *, now: float) -> EnvVerdict | None:
        self._env(env)
        if name not in self.nodes:
            raise Refused("unknown node")
        served, deployed = self._serving(env)
        return self._env_verdict(env, name, served, deployed, now)

    def served(self, env: str) -> dict[str, str]:
        """What ENV serves: node → version, sources taken live included."""
        self._env(env)
        return self._serving(env)[0]

    def deployed(self, env: str) -> set[str]:
        """The nodes ENV serves by a deployment (its latest record for them is no undeploy)."""
        self._env(env)
        return self._serving(env)[1]

    def deploy(self, env: str, specs: Sequence[tuple[str, str | None]], *, force: bool = False,
               reason: str | None = None, check: bool = False,
               now: float) -> dict[str, EnvVerdict]:
        """`chainml deploy NODE[@VERSION]... --env ENV`: one release, all or nothing.

        Bad input → Refused (exit 2): unknown environment, an empty release, a node named
        twice, an unknown or retired node, an unknown version, --force without --reason
        (CHOICES, the implementation's), a release after which the environment would serve
        a cycle, pinned inputs counted (CHOICE, `_serves_cycle`). Then the gate. The nodes
        it judges ("checked") are those that need tests and are deployed after the release,
        and either belong to it or hold one of its nodes in their serving lineage — a
        pinned input counts, but is not crossed.
        CHOICE (the implementation's reading of "a release after which E would hold a node
        that is ..."): that is whether or not the release changes their versions or
        pairs (a node redeployed at the version E serves, or a source deployed at the
        version E takes live, is judged again). It is Blocked (exit 1, nothing recorded)
        when one of them would be untested, failed, skewed or missing_input; --force records
        it anyway; --check records nothing (and is Blocked the same way: exit 1).
        Returns the verdicts after the release of every node it judges."""
        self._env(env)
        names = [n for n, _ in specs]
        if not names or len(set(names)) != len(names):
            raise Refused("empty release or a node named twice")
        release: dict[str, str] = {}
        for n, label in specs:
            node = self._live(n)
            label = node.current if label is None else label
            if label not in node.versions:
                raise Refused(f"{n} has no version {label}")
            release[n] = label
        if force and not (reason and reason.strip()):
            raise Refused("--force needs --reason")
        after, deployed = self._serving(env, release)
        if self._serves_cycle(after):
            raise Refused("the environment would serve a cycle")
        checked: dict[str, EnvVerdict] = {}
        for n in sorted(deployed):
            lineage = self._serving_lineage(after, n)[0]  # raises Refused on a cycle
            if n in release or {a for a, _ in lineage} & set(release):
                verdict = self._env_verdict(env, n, after, deployed, now)
                if verdict is not None:
                    checked[n] = verdict
        blocked = {n: v for n, v in checked.items() if v.status in BLOCKING}
        if blocked and not force:
            raise Blocked(blocked, checked)
        if not check:
            for n in names:
                self.deployments.append(Deployment(len(self.deployments), env, n, release[n]))
        return checked

    def undeploy(self, env: str, name: str, *, now: float) -> None:
        """`chainml undeploy NODE --env ENV`: refused (exit 2) unless ENV serves a deployment
        of NODE. CHOICE: allowed for a retired node (its deployment stands otherwise);
        never gated."""
        self._env(env)
        if name not in self.nodes:
            raise Refused("unknown node")
        if name not in self._serving(env)[1]:
            raise Refused(f"{name} is not deployed to {env}")
        self.deployments.append(Deployment(len(self.deployments), env, name, None))

    def waive_env(self, env: str, name: str, *, cause: str | None = None,
                  expires_s: float = 7 * 86400, now: float) -> None:
        """`chainml waive NODE --env ENV`: covers skew causes only (as `waive` covers
        needs_retest causes only), the exact (ancestor, tested-with, served) facts, and only
        against the latest passing run(s) it was granted on."""
        self._env(env)
        self._live(name)
        verdict = self.env_status(env, name, now=now)
        if verdict is None or verdict.status not in ("skewed", "waived"):
            raise Refused("nothing to waive in this environment")
        if not (0 < expires_s <= MAX_WAIVER_S):
            raise Refused("expiry out of range")
        covers = frozenset(r for r in verdict.reasons if cause is None or r[0] == cause)
        if not covers:
            raise Refused("not an open cause")
        self.env_waivers.setdefault((env, name), []).append(
            Waiver(now + expires_s, verdict.against, covers))
