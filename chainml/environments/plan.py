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

The pure helpers work on a ``service.View``; ``plan`` loads views through ``service``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from chainml.db import reads
from chainml.db.direct import Db
from chainml.environments import service
from chainml.environments.release import refuse_cycle
from chainml.environments.status import Lineage
from chainml.errors import InvalidInput
from chainml.schemas import PlanBlocker, PlanNode, PlanPair, PlanResult

# ---- pure helpers -------------------------------------------------------------------------------


def upstream_first(view: service.View, ids: Iterable[int], names: Mapping[int, str]
                   ) -> list[int]:
    """``ids`` in topological order of the graph ``view`` serves (a node after what it
    reads), ties by name."""
    depth: dict[int, int] = {}

    def walk(node: int, seen: frozenset[int]) -> int:
        if node in depth:
            return depth[node]
        version = view.served.version(node)
        ups = [u for u, _ in view.inputs_of(version)] if version is not None else []
        d = 1 + max((walk(u, seen | {node}) for u in ups if u not in seen | {node}),
                    default=-1)
        depth[node] = d
        return d

    return sorted(set(ids), key=lambda i: (walk(i, frozenset()), names.get(i, "")))


def differing(served: Callable[[int], int | None], target: Mapping[int, int]) -> list[int]:
    """The nodes of ``target`` whose served version differs from it."""
    return sorted(n for n, v in target.items() if served(n) != v)


def deploy_command(env: str, specs: Iterable[tuple[str, str]]) -> str:
    parts = " ".join(shlex.quote(f"{n}@{v}") for n, v in specs)
    return f"chainml deploy {parts} --env {shlex.quote(env)}"


def retest_command(name: str, version: str) -> str:
    return f"chainml test record {shlex.quote(name)} --version {shlex.quote(version)} --passed"


# ---- loading and the fixpoint ------------------------------------------------------------------


class _Target:
    """The versions a plan brings nodes to: the registry's current ones, or another
    environment's served ones."""

    def __init__(self, db: Db, to: str) -> None:
        self.db = db
        self.to = to
        self.view: service.View | None = None
        if to != "current":
            self.view = service.load(db, reads.require_env(db, to))
        self._current: dict[int, int | None] = {}

    def version(self, node: int) -> int | None:
        if self.view is not None:
            found = self.view.nodes.get(node)
            return None if found is None or found.retired else self.view.served.version(node)
        if node not in self._current:
            found = reads.env_nodes(self.db, [node]).get(node)
            ok = found is not None and not found.retired
            self._current[node] = found.current_version_id if found and ok else None
        return self._current[node]

    def defaults(self, before: service.View) -> dict[int, int]:
        """Every node whose served version in the environment differs from the target's:
        what the target environment deploys, or (to current) what the environment
        deploys, retired nodes left out."""
        pool: dict[int, int | None]
        if self.view is not None:
            pool = {n: v for n, v in self.view.served.deployed.items()
                    if not self.view.nodes[n].retired}
        else:
            pool = {n: before.nodes[n].current_version_id for n in before.served.deployed
                    if not before.nodes[n].retired}
        return {n: v for n, v in pool.items() if v is not None}


def _named(db: Db, target: _Target, names: Iterable[str]) -> dict[int, int]:
    out: dict[int, int] = {}
    for name in names:
        node = reads.require_node(db, name)
        if node.retired:
            raise InvalidInput(f"'{name}' is retired, so it is not in the plan's scope; "
                               "register a version of it to revive it.")
        version = target.version(node.id)
        if version is None:
            where = f"'{target.to}' does not serve it" if target.view is not None \
                else "it has no current version"
            raise InvalidInput(f"'{name}' is not in the plan's scope: {where}.")
        out[node.id] = version
    return out


def _fixable(view: service.View, line: Lineage, target: _Target) -> dict[int, int] | None:
    """The absent inputs of ``line`` at the target's versions; None when one has none."""
    out: dict[int, int] = {}
    for a in line.absent:
        v = target.version(a)
        if v is None:
            return None
        out[a] = v
    return out


def _choose(db: Db, env: reads.EnvRow, release: Mapping[int, int], node: int,
            target: _Target, now: datetime) -> int | None:
    """A version of ``node`` verified against the lineage ``release`` gives it: the
    target's when it verifies, else the newest that does."""
    candidates: list[int] = []
    preferred = target.version(node)
    if preferred is not None:
        candidates.append(preferred)
    candidates += [v for v in reads.node_version_ids(db, node) if v != preferred]
    for v in candidates:
        trial = {**release, node: v}
        view = service.load(db, env, trial)
        line = view.lineage(node)
        if line.absent:
            extra = _fixable(view, line, target)
            if extra is None:
                continue
            view = service.load(db, env, {**trial, **extra})
            line = view.lineage(node)
        entry = service.evaluate_nodes(db, view, {node: line}, now)[node]
        if entry.status not in service.BLOCKING:
            return v
    return None


def _blocker(db: Db, env: reads.EnvRow, release: Mapping[int, int], node: int,
             target: _Target, now: datetime) -> PlanBlocker:
    before = service.load(db, env, release)
    version = target.version(node) or before.served.deployed.get(node) \
        or before.served.version(node)
    view = service.load(db, env, {**release, node: version}) if version is not None else before
    line = view.lineage(node)
    entry = service.evaluate_nodes(db, view, {node: line}, now)[node]
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
    target = _Target(db, to)
    before = service.load(db, env)
    wanted = _named(db, target, names) if names else target.defaults(before)
    release = {n: v for n, v in wanted.items() if before.served.version(n) != v}
    why = {n: "named" for n in release}
    blocked: dict[int, PlanBlocker] = {}
    budget = 4 * (len(before.served.deployed) + len(release)) + 8
    after = before
    while True:
        after = service.load(db, env, release)
        lacking: dict[int, int] = {}
        for v in release.values():
            for u, pin in after.inputs_of(v):
                got = target.version(u)
                if pin is None and after.served.version(u) is None and got is not None:
                    lacking[u] = got
        if lacking:
            release.update(lacking)
            why.update({u: "input" for u in lacking})
            continue
        lines = service.touched(after, release)
        entries = service.evaluate_nodes(db, after, lines, now)
        known = reads.names(db, entries)
        bad = upstream_first(after, [i for i, e in entries.items()
                                     if e.status in service.BLOCKING and i not in blocked],
                             known)
        if not bad:
            break
        node = bad[0]
        budget -= 1
        choice = None
        if why.get(node) not in ("named", "input") and budget > 0:
            choice = _choose(db, env, release, node, target, now)
        if choice is None:
            blocked[node] = _blocker(db, env, release, node, target, now)
            continue
        release[node] = choice
        why[node] = "lineage"
    refuse_cycle(db, after, set(release),
                 f"No plan for '{env.name}': the release would make it serve",
                 "name versions whose inputs do not loop")
    return _result(db, env, to, before, after, release, why, blocked, target)


def _result(db: Db, env: reads.EnvRow, to: str, before: service.View, after: service.View,
            release: Mapping[int, int], why: Mapping[int, str],
            blocked: Mapping[int, PlanBlocker], target: _Target) -> PlanResult:
    ids = [n for n, v in release.items() if before.served.version(n) != v]
    names = reads.names(db, ids)
    kinds = {n: after.nodes[n].kind for n in ids}
    labels = reads.labels(db, [release[n] for n in ids]
                          + [before.served.version(n) for n in ids]
                          + [target.version(n) for n in ids])
    items = [PlanNode(node=names[n], kind=kinds[n], version=labels[release[n]],
                      previous=labels.get(before.served.version(n) or -1),
                      target=labels.get(target.version(n) or -1), why=why.get(n, "lineage"))
             for n in upstream_first(after, ids, names)]
    ok = not blocked
    command = deploy_command(env.name, [(i.node, i.version) for i in items]) \
        if ok and items else None
    order = upstream_first(after, blocked, {n: b.node for n, b in blocked.items()})
    return PlanResult(env=env.name, to=to, ok=ok, nodes=items,
                      blocked=[blocked[n] for n in order], command=command)

