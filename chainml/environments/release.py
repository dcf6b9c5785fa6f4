"""The writes of environments: create one, deploy a release, undeploy, waive skew.

Each function runs inside the caller's write transaction (``Registry`` opens it and
takes the write lock first), validates everything before writing anything, and
records one history event. Reads go through ``environments.service``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import Waiver
from chainml.environments import judge, service
from chainml.environments.status import Inputs
from chainml.errors import InvalidInput, NodeNotFound, ReleaseRefused, VersionNotFound
from chainml.names import check_env_name, check_label, check_name, check_text
from chainml.rules import outbox
from chainml.schemas import (
    EnvironmentOut,
    ReleaseItem,
    ReleaseResult,
    Status,
    UndeployResult,
    WaiverOut,
)


def create(s: Session, name: str, after: str | None, description: str | None,
           at: datetime, actor: str) -> EnvironmentOut:
    db = Db.over(s)
    check_env_name(name)
    check_text(description, "description", 2000)
    if after is not None and after == name:
        raise InvalidInput(f"Environment '{name}' cannot come after itself; name the "
                           "environment it is promoted from.")
    existing = reads.env_by_key(db, name)
    if existing is not None:
        same = "already exists" if existing.name == name else \
            f"differs from the existing '{existing.name}' only in letter case"
        raise InvalidInput(f"Environment '{name}' {same}; 'chainml env list' lists them.")
    before = reads.require_env(db, after) if after is not None else None
    repo.add_environment(s, name, before.id if before else None, description, at, actor)
    repo.add_event(s, at, actor, "env.created", env_name=name, after=after,
                   description=description)
    return EnvironmentOut(name=name, after=after, description=description, created_at=at,
                          created_by=actor, deployed_nodes=0)


def _parse(db: Db, specs: Sequence[str]) -> list[tuple[reads.NodeRow, int, str]]:
    """Each ``NODE[@VERSION]`` as (node, version id, label); the registry's current
    version without ``@``. Refuses unknown or retired nodes, unknown versions and a node
    named twice."""
    if isinstance(specs, str) or not isinstance(specs, Sequence):
        raise InvalidInput("deploy takes a list of 'NODE' or 'NODE@VERSION' specs.")
    if not specs:
        raise InvalidInput("Name at least one node to deploy (NODE or NODE@VERSION).")
    out: list[tuple[reads.NodeRow, int, str]] = []
    seen: set[int] = set()
    for spec in specs:
        if not isinstance(spec, str):
            raise InvalidInput(f"A release is made of 'NODE' or 'NODE@VERSION' specs, not "
                               f"{type(spec).__name__}.")
        name, sep, label = spec.partition("@")
        check_name(name)
        if sep:
            check_label(label)
        node = reads.find_node(db, name)
        if node is None:
            raise NodeNotFound(name, reads.suggest(db, name))
        if node.retired:
            raise InvalidInput(f"'{name}' is retired; register a version of it to revive it "
                               "before deploying it.")
        if node.id in seen:
            raise InvalidInput(f"'{name}' is named twice in one release; deploy one version "
                               "of each node.")
        seen.add(node.id)
        if sep:
            vid = reads.version_by_label(db, node.id, label)
            if vid is None:
                raise VersionNotFound(name, label)
        else:
            if node.current_version_id is None:
                raise InvalidInput(f"'{name}' has no current version to deploy.")
            vid = node.current_version_id
            label = reads.label(db, vid) or "?"
        out.append((node, vid, label))
    return out


class ServedGraph(Protocol):
    """What an environment serves, as a graph to walk up (``judge.Assignment``, or
    ``service.View``), with the inputs above the released nodes read."""

    def version(self, node: int) -> int | None: ...

    def inputs_of(self, version: int) -> Inputs: ...


def served_cycle(view: ServedGraph, released: set[int]) -> list[int] | None:
    """A cycle the environment would serve through a released node, in order (first ==
    last), or None. Each served version's inputs are fixed, so versions that never loop
    in the registry can loop once an environment mixes them (g 2 reads m, m 1 reads g);
    pinned inputs count, as in the registry's cycle rule."""
    if not _loops_above(view, released):
        return None
    for start in sorted(released):
        towards: dict[int, int] = {}  # input -> the node that reads it, towards start
        stack = [start]
        while stack:
            here = stack.pop()
            version = view.version(here)
            for upstream, _ in view.inputs_of(version) if version is not None else ():
                if upstream == start:
                    path = [start, here]
                    while path[-1] != start:
                        path.append(towards[path[-1]])
                    return path
                if upstream not in towards:
                    towards[upstream] = here
                    stack.append(upstream)
    return None


def _loops_above(view: ServedGraph, released: set[int]) -> bool:
    """Whether any cycle lies above the released nodes: one depth-first pass over what
    they read, rather than a walk per released node (a release of 100 nodes shares most
    of what is above them)."""
    done: set[int] = set()
    for root in sorted(released):
        if root in done:
            continue
        on_path = {root}
        stack = [(root, iter(_ups(view, root)))]
        while stack:
            here, ups = stack[-1]
            nxt = next(ups, None)
            if nxt is None:
                stack.pop()
                on_path.discard(here)
                done.add(here)
            elif nxt in on_path:
                return True
            elif nxt not in done:
                on_path.add(nxt)
                stack.append((nxt, iter(_ups(view, nxt))))
    return False


def _ups(view: ServedGraph, node: int) -> list[int]:
    version = view.version(node)
    return [u for u, _ in view.inputs_of(version)] if version is not None else []


def refuse_cycle(db: Db, view: ServedGraph | judge.Assignment, released: set[int], lead: str,
                 advice: str) -> None:
    """InvalidInput (exit 2) when ``view`` serves a cycle through a released node:
    ``lead`` a cycle, a -> b -> a (each reads the next); ``advice``.

    With an ``Assignment``, what is above the release is read first, unless nothing it
    serves reads a released node: then no cycle can pass through one (a release of
    leaves, the common case, reads nothing more)."""
    if isinstance(view, judge.Assignment):
        if not view.read_by(released):
            return
        view.load_lineages(released, pins_too=True)
    loop = served_cycle(view, released)
    if loop is not None:
        names = reads.names(db, loop)
        raise InvalidInput(f"{lead} a cycle, {' -> '.join(names[i] for i in loop)} (each "
                           f"reads the next); {advice}.")


def refusal(result: ReleaseResult) -> str:
    """The one sentence a refused release raises with."""
    parts = []
    for e in result.problems:
        why = "; ".join(r.message for r in e.reasons[:3])
        more = f"; and {len(e.reasons) - 3} more" if len(e.reasons) > 3 else ""
        parts.append(f"{e.name} {e.version} would be {e.status.value} ({why}{more})")
    return (f"Release to '{result.env}' refused, nothing recorded: {'; '.join(parts)}; "
            "'chainml deploy ... --check' shows how to clear each, and --force --reason "
            "records it anyway.")


def deploy(s: Session, env_name: str, specs: Sequence[str], *, link: str | None,
           note: str | None, check: bool, force: bool, reason: str | None, at: datetime,
           actor: str) -> ReleaseResult:
    db = Db.over(s)
    check_text(link, "link", 2000)
    check_text(note, "note", 10000)
    check_text(reason, "reason", 2000)
    if force and not (reason and reason.strip()):
        raise InvalidInput("--force needs a --reason that says why the release goes out "
                           "untested; it is kept in the history.")
    env = reads.require_env(db, env_name)
    parsed = _parse(db, specs)
    released = {node.id: vid for node, vid, _ in parsed}
    before = judge.Assignment(db, env)
    after = before.with_release(released)
    refuse_cycle(db, after, set(released),
                 f"Release to '{env.name}' refused, nothing recorded: {env.name} would serve",
                 "deploy versions whose inputs do not loop")
    previous = reads.labels(db, [before.version(n.id) for n, _, _ in parsed])
    items = [ReleaseItem(node=n.name, kind=n.kind, version=label,
                         previous=previous.get(before.version(n.id) or -1))
             for n, _, label in parsed]
    entries = judge.judge(after, after.reached_by(set(released)), at)
    checked = sorted(entries.values(), key=lambda e: e.name)
    problems = [e for e in checked if e.status in service.BLOCKING]
    result = ReleaseResult(env=env.name, ok=not problems, recorded=False, check=check,
                           forced=force and not check, reason=reason, link=link, note=note,
                           nodes=items, checked=checked, problems=problems)
    if check:
        return result
    if problems and not force:
        raise ReleaseRefused(refusal(result), result)
    event = repo.add_event(
        s, at, actor, "deploy", env_name=env.name,
        nodes=[{"node": i.node, "version": i.version, "previous": i.previous} for i in items],
        forced=force, reason=reason, link=link, note=note,
        problems=[f"{e.name}: {e.status.value}" for e in problems] or None)
    repo.add_deployments(s, env.id, [(n.id, vid) for n, vid, _ in parsed], event, at, actor,
                         link, note)
    result.recorded = True
    result.event = event
    result.deployed_at = at
    result.deployed_by = actor
    outbox.notify(s, "deploy.done", {
        "env": env.name, "action": "deploy", "actor": actor, "event": event,
        "nodes": [{"name": i.node, "version": i.version, "previous": i.previous}
                  for i in items], "forced": result.forced, "reason": reason, "link": link})
    return result


def undeploy(s: Session, env_name: str, name: str, at: datetime, actor: str
             ) -> UndeployResult:
    db = Db.over(s)
    env = reads.require_env(db, env_name)
    view = service.load(db, env)
    node = reads.require_node(db, name)
    if node.id not in view.served.deployed:
        was = "was already undeployed from" if node.id in view.latest else "is not deployed to"
        raise InvalidInput(f"'{name}' {was} '{env.name}'; nothing to undeploy.")
    label = reads.label(db, view.served.deployed[node.id]) or "?"
    event = repo.add_event(s, at, actor, "undeploy", node.name, label, env_name=env.name)
    repo.add_deployments(s, env.id, [(node.id, None)], event, at, actor, None, None)
    after = service.load(db, env, {node.id: None})
    broken = []
    for i in service.testable(after):
        line = after.lineage(i)
        if line.absent:
            broken.append(after.nodes[i].name)
    outbox.notify(s, "deploy.done", {
        "env": env.name, "action": "undeploy", "actor": actor, "event": event,
        "nodes": [{"name": node.name, "version": None, "previous": label}],
        "forced": False, "reason": None, "link": None})
    return UndeployResult(env=env.name, node=node.name, version=label, event=event,
                          undeployed_at=at, undeployed_by=actor, missing_input=sorted(broken))


def waive(s: Session, env_name: str, name: str, cause: str | None, reason: str,
          span: timedelta, at: datetime, actor: str) -> WaiverOut:
    """Accept a deployed node's skew in one environment (every cause, or one)."""
    db = Db.over(s)
    env = reads.require_env(db, env_name)
    node = service.require_deployed(db, env, name)
    cause_node = reads.require_node(db, cause) if cause else None
    if not node.needs_tests:
        raise InvalidInput(f"'{name}' needs no tests, so it cannot be skewed in '{env.name}'; "
                           "a waiver covers skew only.")
    entry, runs, triples = service.waiver_basis(db, env, node.id, at)
    if entry.status not in (Status.SKEWED, Status.WAIVED):
        raise InvalidInput(f"'{name}' is {entry.status.value} in '{env.name}'; an environment "
                           "waiver covers skew (serving inputs other than those tested) only.")
    causes = {r.cause for r in entry.reasons}
    if cause and cause not in causes:
        raise InvalidInput(f"'{cause}' is not a cause of the skew of '{name}' in "
                           f"'{env.name}'; its causes: {', '.join(sorted(causes))}.")
    covers = [[c, list(t), list(n)] for c, t, n in triples
              if cause_node is None or c == cause_node.id]
    w = Waiver(node_id=node.id, cause_id=cause_node.id if cause_node else None,
               environment_id=env.id, reason=reason, granted_by=actor, granted_at=at,
               expires_at=at + span, covers=covers, runs=runs)
    s.add(w)
    s.flush()
    repo.add_event(s, at, actor, "waiver.granted", node.name, entry.version,
                   env_name=env.name, waiver=w.id, cause=cause, reason=reason,
                   expires_at=w.expires_at.isoformat())
    return WaiverOut(id=w.id, node=node.name, env=env.name, cause=cause, reason=reason,
                     granted_by=actor, granted_at=at, expires_at=w.expires_at,
                     covers=[r for r in entry.reasons if not cause or r.cause == cause])
