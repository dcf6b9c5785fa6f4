"""``plan``: what must be deployed together (DESIGN.md, "Environments, deployments and
training-serving skew").

The smallest release that brings the named nodes of an environment (by default every
node whose served version differs) to a target's versions (the registry's current ones,
or what another environment serves) while leaving no node it touches untested, failed,
skewed or missing an input. Every node whose serving lineage the release changes and
that would block it is added at a version verified against its new lineage (the
target's when it verifies, else the newest one that does), upstream first, until
nothing changes; a node absent from the environment that a planned version reads is
added at the target's version. A node with no such version blocks the plan, which says
the retest that would unblock it.

The pure helpers work on any ``release.ServedGraph``; ``plan`` reads what an environment
serves through a ``judge.Assignment``, with each trial release layered on it.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime

from chainml.db import reads
from chainml.db.direct import Db
from chainml.environments import judge, service
from chainml.environments.judge import Assignment
from chainml.environments.release import ServedGraph, refuse_cycle
from chainml.environments.status import Lineage
from chainml.errors import InvalidInput
from chainml.schemas import PlanBlocker, PlanNode, PlanPair, PlanResult, Status, StatusEntry

# ---- pure helpers -------------------------------------------------------------------------------


def upstream_first(view: ServedGraph, ids: Iterable[int], names: Mapping[int, str]
                   ) -> list[int]:
    """``ids`` in topological order of the graph ``view`` serves (a node after what it
    reads), ties by name; the inputs above ``ids`` must be read."""
    depth: dict[int, int] = {}

    def walk(node: int, seen: frozenset[int]) -> int:
        if node in depth:
            return depth[node]
        version = view.version(node)
        ups = [u for u, _ in view.inputs_of(version)] if version is not None else []
        d = 1 + max((walk(u, seen | {node}) for u in ups if u not in seen | {node}),
                    default=-1)
        depth[node] = d
        return d

    return sorted(set(ids), key=lambda i: (walk(i, frozenset()), names.get(i, "")))


def deploy_command(env: str, specs: Iterable[tuple[str, str]]) -> str:
    parts = " ".join(shlex.quote(f"{n}@{v}") for n, v in specs)
    return f"chainml deploy {parts} --env {shlex.quote(env)}"


def retest_command(name: str, version: str) -> str:
    return f"chainml test record {shlex.quote(name)} --version {shlex.quote(version)} --passed"


# ---- loading and the fixpoint ------------------------------------------------------------------


class _Target:
    """The versions a plan brings nodes to: the registry's current ones, or another
    environment's served ones."""

    def __init__(self, db: Db, to: str, before: Assignment) -> None:
        self.to = to
        self.before = before
        self.env: Assignment | None = None
        if to != "current":
            self.env = Assignment(db, reads.require_env(db, to), whole=True)

    def version(self, node: int) -> int | None:
        st = self.before.states.get(node)
        if st is None or st.retired:
            return None
        return self.env.version(node) if self.env is not None else st.current_version_id

    def defaults(self) -> dict[int, int]:
        """Every node whose served version in the environment differs from the target's:
        what the target environment deploys, or (to current) what the environment
        deploys, retired nodes left out."""
        pool = self.env.deployed_ids() if self.env is not None else self.before.deployed_ids()
        out = {n: self.version(n) for n in pool}
        return {n: v for n, v in out.items() if v is not None}


def _named(db: Db, target: _Target, names: Iterable[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for name in names:
        node = reads.require_node(db, name)
        if node.retired:
            raise InvalidInput(f"'{name}' is retired, so it is not in the plan's scope; "
                               "register a version of it to revive it.")
        version = target.version(node.id)
        if version is None:
            where = f"'{target.to}' does not serve it" if target.env is not None \
                else "it has no current version"
            raise InvalidInput(f"'{name}' is not in the plan's scope: {where}.")
        out[node.id] = version
    return out


def _fixable(line: Lineage, target: _Target) -> dict[int, int] | None:
    """The absent inputs of ``line`` at the target's versions; None when one has none."""
    out: dict[int, int] = {}
    for a in line.absent:
        v = target.version(a)
        if v is None:
            return None
        out[a] = v
    return out


def _trial(after: Assignment, node: int, version: int, target: _Target
           ) -> tuple[Assignment, Lineage] | None:
    """``after`` with ``node`` at ``version`` (and the absent inputs that brings in at the
    target's versions), with the node's serving lineage; None when an input cannot be
    had."""
    trial = after.with_release({node: version})
    trial.load_lineages([node])
    line = trial.lineage(node)
    if line.absent:
        extra = _fixable(line, target)
        if extra is None:
            return None
        trial = trial.with_release(extra)
        trial.load_lineages([node])
        line = trial.lineage(node)
    return trial, line


def _choose(after: Assignment, node: int, versions: list[int], target: _Target,
            judged: StatusEntry, now: datetime) -> int | None:
    """A version of ``node`` verified against the lineage the release gives it: the
    target's when it verifies, else the newest that does. ``judged``: its status as
    ``after`` serves it, which blocks."""
    preferred = target.version(node)
    candidates = ([preferred] if preferred is not None else []) \
        + [v for v in versions if v != preferred]
    for v in candidates:
        if v == after.version(node) and judged.status != Status.MISSING_INPUT:
            continue  # judged already, and no input to bring in would change that
        tried = _trial(after, node, v, target)
        if tried is None:
            continue
        trial, _ = tried
        entry = judge.judge(trial, [node], now)[node]
        if entry.status not in service.BLOCKING:
            return v
    return None


def _blocker(db: Db, after: Assignment, node: int, target: _Target,
             judged: Mapping[int, StatusEntry], now: datetime) -> PlanBlocker:
    version = target.version(node) or after.version(node)
    if version is None or version == after.version(node):
        view, entry = after, judged[node]
        view.load_lineages([node])
        line = view.lineage(node)
    else:
        view = after.with_release({node: version})
        view.load_lineages([node])
        line = view.lineage(node)
        entry = judge.judge(view, [node], now)[node]
    names = reads.names(db, {n for n, _ in line.pairs} | {node})
    labels = reads.labels(db, [v for _, v in line.pairs])
    pairs = sorted((names[n], labels[v]) for n, v in line.pairs)
    label = entry.version or "?"
    return PlanBlocker(node=names[node], version=label, status=entry.status,
                       reasons=[r.message for r in entry.reasons],
                       tested_with=[PlanPair(node=n, version=v) for n, v in pairs],
                       retest=retest_command(names[node], label))


def plan(db: Db, env_name: str, to: str, names: Iterable[str], now: datetime) -> PlanResult:
    """The release that brings ``names`` (default: every differing node) of ``env_name``
    to the versions of ``to`` ("current" or an environment) with nothing left broken."""
    if not isinstance(to, str) or not to:
        raise InvalidInput("--to takes 'current' or an environment name.")
    names = list(names)
    env = reads.require_env(db, env_name)
    before = Assignment(db, env, whole=True)
    target = _Target(db, to, before)
    wanted = _named(db, target, names) if names else target.defaults()
    release = {n: v for n, v in wanted.items() if before.version(n) != v}
    why = {n: "named" for n in release}
    blocked: dict[int, PlanBlocker] = {}
    budget = 4 * (len(before.deployed_ids()) + len(release)) + 8
    versions: dict[int, list[int]] = {}
    after = before
    while True:
        after = before.with_release(release)
        after.read_inputs(release.values())
        lacking: dict[int, int] = {}
        for v in release.values():
            for u, pin in after.inputs_of(v):
                got = target.version(u)
                if pin is None and after.version(u) is None and got is not None:
                    lacking[u] = got
        if lacking:
            release.update(lacking)
            why.update({u: "input" for u in lacking})
            continue
        entries = judge.judge(after, after.reached_by(set(release)), now)
        failing = [i for i, e in entries.items()
                   if e.status in service.BLOCKING and i not in blocked]
        if not failing:
            break
        after.load_lineages(failing, pins_too=True)
        bad = upstream_first(after, failing, {i: entries[i].name for i in failing})
        versions.update(reads.versions_of_nodes(db, [i for i in bad if i not in versions]))
        # Blocking a node changes nothing else: go on down the list until a node gets a
        # version, which changes lineages below it, then judge again.
        for node in bad:
            budget -= 1
            choice = None
            if why.get(node) not in ("named", "input") and budget > 0:
                choice = _choose(after, node, versions[node], target, entries[node], now)
            if choice is None:
                blocked[node] = _blocker(db, after, node, target, entries, now)
                continue
            release[node] = choice
            why[node] = "lineage"
            break
    refuse_cycle(db, after, set(release),
                 f"No plan for '{env.name}': the release would make it serve",
                 "name versions whose inputs do not loop")
    return _result(db, env, to, before, after, release, why, blocked, target)


def _result(db: Db, env: reads.EnvRow, to: str, before: Assignment, after: Assignment,
            release: Mapping[int, int], why: Mapping[int, str],
            blocked: Mapping[int, PlanBlocker], target: _Target) -> PlanResult:
    ids = [n for n, v in release.items() if before.version(n) != v]
    names = reads.names(db, ids)
    kinds = {n: after.states[n].kind for n in ids}
    labels = reads.labels(db, [release[n] for n in ids]
                          + [before.version(n) for n in ids]
                          + [target.version(n) for n in ids])
    after.load_lineages(list(ids) + list(blocked), pins_too=True)
    items = [PlanNode(node=names[n], kind=kinds[n], version=labels[release[n]],
                      previous=labels.get(before.version(n) or -1),
                      target=labels.get(target.version(n) or -1), why=why.get(n, "lineage"))
             for n in upstream_first(after, ids, names)]
    ok = not blocked
    command = deploy_command(env.name, [(i.node, i.version) for i in items]) \
        if ok and items else None
    order = upstream_first(after, blocked, {n: b.node for n, b in blocked.items()})
    return PlanResult(env=env.name, to=to, ok=ok, nodes=items,
                      blocked=[blocked[n] for n in order], command=command)
