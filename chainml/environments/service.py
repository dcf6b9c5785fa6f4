"""What an environment serves and its status, read through ``chainml.db.reads``.

The reading half of environments: no SQLAlchemy, so the command line's ``status
--env`` and ``check --env`` run over a plain DB-API connection like ``status`` and
``check`` (``chainml.fast``); the ``Registry`` runs the same functions in its session.
The rules themselves are the pure functions of ``environments.status``.

One environment is loaded with a bounded number of queries, whatever its size: the
latest deployment per node, the inputs of every served version, the sources read
live, then (for status) the nodes' facts, the runs of the deployed versions, their
snapshots and the environment's waivers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from chainml.db import reads
from chainml.db.direct import Db
from chainml.environments import judge
from chainml.environments.status import (
    Lineage,
    Served,
    evaluate,
    serving_lineage,
    skew_basis,
)
from chainml.rules import gate
from chainml.rules.status import to_entries
from chainml.schemas import (
    CheckResult,
    EnvDiff,
    EnvDiffEntry,
    EnvironmentDetail,
    EnvironmentOut,
    ServedNode,
    Status,
    StatusEntry,
)

# A release is refused when a node it changes would be in one of these.
BLOCKING = frozenset({Status.UNTESTED, Status.FAILED, Status.SKEWED, Status.MISSING_INPUT})


@dataclass
class View:
    """What one environment serves (possibly after a release not yet recorded)."""

    env: reads.EnvRow
    latest: dict[int, reads.Deployed]  # node -> its latest deployment row (undeploys too)
    served: Served
    inputs: dict[int, list[tuple[int, int | None]]]  # served version -> regular inputs
    nodes: dict[int, reads.EnvNode] = field(default_factory=dict)  # deployed + live sources

    def inputs_of(self, version: int) -> list[tuple[int, int | None]]:
        return self.inputs.get(version, [])

    def version(self, node: int) -> int | None:
        return self.served.version(node)

    def lineage(self, node: int) -> Lineage:
        return serving_lineage(node, self.served.deployed[node], self.inputs_of, self.served)

    def live_sources_read(self) -> set[int]:
        """Sources not deployed here that a served version reads (unpinned)."""
        read = {u for v in self.served.deployed.values() for u, p in self.inputs_of(v)
                if p is None}
        return {u for u in read if u not in self.served.deployed and u in self.served.sources}


def load(db: Db, env: reads.EnvRow, release: Mapping[int, int | None] | None = None) -> View:
    """What ``env`` serves; with ``release`` (node -> version, None to undeploy), what it
    would serve after it."""
    latest = reads.latest_deployments(db, env.id)
    deployed = {n: d.version_id for n, d in latest.items() if d.version_id is not None}
    for node, version in (release or {}).items():
        if version is None:
            deployed.pop(node, None)
        else:
            deployed[node] = version
    inputs = reads.inputs_of_versions(db, deployed.values())
    sources: dict[int, int] = {}
    asked: set[int] = set(deployed)
    # Sources read nothing but feedback, so this ends after one round; the loop only
    # keeps the walk right whatever a registry holds.
    while True:
        wanted = {u for ins in inputs.values() for u, p in ins if p is None} - asked
        if not wanted:
            break
        asked |= wanted
        found = reads.live_sources(db, wanted)
        sources.update(found)
        more = set(found.values()) - set(inputs)
        if more:
            inputs.update(reads.inputs_of_versions(db, more))
    view = View(env=env, latest=latest, served=Served(deployed=deployed, sources=sources),
                inputs=inputs)
    view.nodes = reads.env_nodes(db, set(deployed) | view.live_sources_read())
    return view


def testable(view: View, ids: Iterable[int] | None = None) -> list[int]:
    """The deployed nodes that get an environment status: they need tests and are part
    of the chain (a retired node left status and check, though it may still be served)."""
    pool = view.served.deployed if ids is None else [i for i in ids if i in view.served.deployed]
    return sorted(i for i in pool
                  if view.nodes[i].needs_tests and not view.nodes[i].retired)


def statuses(db: Db, env: reads.EnvRow, ids: Iterable[int] | None, now: datetime,
             direct: bool = False) -> dict[int, StatusEntry]:
    """Environment status of the deployed nodes of ``ids`` (default: all) that get one
    (``direct``: from the definition alone, see ``judge``)."""
    return judge.judge(judge.Assignment(db, env), ids, now, direct_only=direct)


# ---- the questions ----------------------------------------------------------------------------


# The node named ``name``, deployed to the environment (else one sentence).
require_deployed = judge.require_deployed


def env_status(db: Db, env_name: str, name: str | None, now: datetime, direct: bool = False,
               *, kept: judge.Reached | None = None) -> list[StatusEntry]:
    """Environment status of every deployed node that needs tests (or of one), by name."""
    return to_entries(judge.env_status(db, env_name, name, now, direct, kept=kept))


def env_check(db: Db, env_name: str, names: Sequence[str], strict: bool, now: datetime
              ) -> CheckResult:
    """The deployment gate: ``check`` over what the environment serves, or over
    ``names`` (deployed there) and everything upstream of them in their serving lineage."""
    env = reads.require_env(db, env_name)
    if names:
        assign = judge.Assignment(db, env)
        scope: set[int] = set()
        for name in names:
            node = require_deployed(db, env, name)
            scope.add(node.id)
            assign.load_lineages([node.id])
            scope |= {n for n, _ in assign.lineage(node.id).pairs}
        entries = judge.judge(assign, sorted(scope), now)
    else:
        entries = statuses(db, env, None, now)
    ordered_ = sorted(entries.values(), key=lambda e: e.name)
    return gate.gate_result(ordered_, strict, list(names) or None, env.name)


def ordered(envs: Sequence[reads.EnvRow]) -> list[reads.EnvRow]:
    """Environments in promotion order: each after the one it follows, ties by name."""
    by_id = {e.id: e for e in envs}

    def depth(e: reads.EnvRow) -> int:
        seen: set[int] = set()
        d = 0
        while e.after_id is not None and e.after_id in by_id and e.id not in seen:
            seen.add(e.id)
            e = by_id[e.after_id]
            d += 1
        return d

    return sorted(envs, key=lambda e: (depth(e), e.name))


def env_out(env: reads.EnvRow, names: Mapping[int, str], counts: Mapping[int, int]
            ) -> EnvironmentOut:
    return EnvironmentOut(name=env.name, after=names.get(env.after_id or -1),
                          description=env.description, created_at=env.created_at,
                          created_by=env.created_by, deployed_nodes=counts.get(env.id, 0))


def env_list(db: Db) -> list[EnvironmentOut]:
    envs = reads.environments(db)
    names = {e.id: e.name for e in envs}
    counts = reads.deployed_counts(db)
    return [env_out(e, names, counts) for e in ordered(envs)]


def env_show(db: Db, env_name: str, now: datetime) -> EnvironmentDetail:
    """What the environment serves: every deployed node, and the sources they read live,
    each with its environment status when it has one."""
    env = reads.require_env(db, env_name)
    view = load(db, env)
    status = statuses(db, env, None, now)
    live = view.live_sources_read()
    ids = sorted(set(view.served.deployed) | live)
    labels = reads.labels(db, [view.served.version(i) for i in ids]
                          + [view.nodes[i].current_version_id for i in ids])
    nodes = []
    for i in ids:
        n = view.nodes[i]
        row = view.latest.get(i) if i in view.served.deployed else None
        nodes.append(ServedNode(
            name=n.name, kind=n.kind, version=labels[view.served.version(i) or -1],
            current_version=labels.get(n.current_version_id or -1), deployed=row is not None,
            deployed_at=row.deployed_at if row else None,
            deployed_by=row.deployed_by if row else None, link=row.link if row else None,
            note=row.note if row else None, retired=n.retired, status=status.get(i)))
    nodes.sort(key=lambda s: s.name)
    after = reads.environments(db) if env.after_id is not None else []
    detail = env_out(env, {e.id: e.name for e in after}, {env.id: len(view.served.deployed)})
    return EnvironmentDetail(**detail.model_dump(), nodes=nodes)


def served_versions(db: Db, view: View, ids: Collection[int]) -> dict[int, int]:
    """node -> served version, for those of ``ids`` the environment serves (a source never
    deployed there at its current version)."""
    sources = reads.live_sources(db, [i for i in ids if i not in view.served.deployed])
    out = {i: v for i, v in view.served.deployed.items() if i in ids}
    out.update(sources)
    return out


def env_diff(db: Db, a_name: str, b_name: str) -> EnvDiff:
    """Nodes whose served versions differ between two environments, with both."""
    a_env, b_env = reads.require_env(db, a_name), reads.require_env(db, b_name)
    a, b = load(db, a_env), load(db, b_env)
    ids = set(a.served.deployed) | set(b.served.deployed)
    a_of, b_of = served_versions(db, a, ids), served_versions(db, b, ids)
    differ = sorted(i for i in ids if a_of.get(i) != b_of.get(i))
    names = reads.names(db, differ)
    kinds = reads.env_nodes(db, differ)
    labels = reads.labels(db, [a_of.get(i) for i in differ] + [b_of.get(i) for i in differ])
    entries = [EnvDiffEntry(name=names[i], kind=kinds[i].kind,
                            a_version=labels.get(a_of.get(i) or -1),
                            b_version=labels.get(b_of.get(i) or -1)) for i in differ]
    entries.sort(key=lambda e: e.name)
    return EnvDiff(a=a_env.name, b=b_env.name, differences=entries,
                   same=len(ids) - len(differ))


def waiver_basis(db: Db, env: reads.EnvRow, node: int, now: datetime
                 ) -> tuple[StatusEntry, list[int], list[tuple[int, tuple[int, ...],
                                                          tuple[int, ...]]]]:
    """A deployed node's environment status, and what a waiver granted now would accept:
    the runs it is skewed against and the exact (ancestor, tested, served) facts."""
    assign = judge.Assignment(db, env)
    assign.load_lineages([node])
    facts, runs, evidence, waivers = judge.facts_direct(assign, {node: assign.lineage(node)},
                                                        now)
    entry = to_entries([evaluate(facts[node], evidence[node], runs[node],
                                 waivers.get(node, []), now)])[0]
    basis_runs, triples = skew_basis(facts[node], evidence[node], runs[node])
    return entry, basis_runs, triples
