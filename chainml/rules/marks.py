"""Retest marks: the persisted causes of needs_retest, kept exact at every write.

A node's open marks are, at all times, exactly its causes as DESIGN.md defines
them: one per ancestor whose versions in a deciding run's snapshot differ from
its versions in the node's lineage now (``status.lineage_diff``), with both
version sets. Status reads them instead of recomputing lineages.

Two ways keep them so:

* ``rebuild`` recomputes one node from the definition (its lineage, its deciding
  runs' snapshots): after its own version moves, a test run, a change of settings.
* ``propagate`` handles a node whose current version moved for everything below
  it. Only the moved node's contribution to their lineages changed, so only the
  ancestors in that contribution's difference (``changed_ancestors``: the node
  itself, plus what its new inputs add or drop) can have new versions there; for
  each of those, its versions in every reached node's lineage come from one walk
  (``versions_below``), and what each deciding run saw of it from ``snapshot_pair``
  rows. Other causes of the reached nodes cannot have changed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import Node
from chainml.rules import graph, outbox
from chainml.rules.status import Triple, considered_runs, lineage_diff


def version_lineage(s: Session, version_id: int) -> tuple[set[graph.Pair], dict[int, int]]:
    """(node, version) pairs the version is built from, and next hops for paths.

    The walk follows the edge table, which holds current versions' inputs; a retired
    node has none there, but keeps its current version and what it reads (DESIGN.md),
    so an old version that reads one is walked on through its current version's
    inputs (``test record --version`` of such a version)."""
    db = Db.over(s)
    seeds = reads.regular_inputs(db, version_id)
    frontier = [u for u, p in seeds if p is None]
    edges: list[tuple[int, int, int | None]] = []
    crossed: set[int] = set()
    while frontier:
        found = reads.edges_above(db, frontier)
        edges += found
        walked = set(frontier) | {u for u, _, pin in found if pin is None}
        retired = {n: v for n, v in reads.retired_current(db, walked).items()
                   if n not in crossed}
        crossed |= retired.keys()
        frontier = []
        reader = {v: n for n, v in retired.items()}
        for version, ins in reads.inputs_of_versions(db, retired.values()).items():
            edges += [(u, reader[version], pin) for u, pin in ins]
            frontier += [u for u, pin in ins if pin is None]
    ids = {u for u, p in seeds if p is None} | {u for u, _, _ in edges} \
        | {d for _, d, _ in edges}
    return graph.lineage(seeds, edges, reads.current_versions(db, ids))


def _paths(towards: Mapping[int, int], node: int, names: Mapping[int, str]
           ) -> dict[int, list[str]]:
    return {a: [names[i] for i in graph.path_towards(towards, a, node)] for a in towards}


def _mark_row(node_id: int, t: Triple, path: list[str], event_id: int | None,
              at: datetime) -> dict[str, Any]:
    cause, old, new = t
    return {"node_id": node_id, "cause_id": cause, "tested_versions": list(old),
            "now_versions": list(new), "path": path, "event_id": event_id, "opened_at": at,
            "closed_at": None, "close_reason": None}


def sync(node_id: int, existing: Sequence[Any], want: Mapping[Triple, list[str]],
         scope: set[int] | None, at: datetime, event_id: int | None
         ) -> tuple[list[int], list[dict[str, Any]]]:
    """Marks to close and rows to add so that ``node_id``'s open marks (those of causes
    in ``scope``, all when None) are exactly ``want``."""
    have = {}
    close = []
    for m in existing:
        if scope is not None and m.cause_id not in scope:
            continue
        t = (m.cause_id, tuple(m.tested_versions), tuple(m.now_versions))
        if t in want and t not in have:
            have[t] = m.id
        else:
            close.append(m.id)
    add = [_mark_row(node_id, t, path, event_id, at) for t, path in sorted(want.items())
           if t not in have]
    return close, add


def rebuild(s: Session, node: Node, at: datetime, event_id: int | None = None) -> int:
    """Make ``node``'s open marks exactly its causes now; returns how many closed."""
    db = Db.over(s)
    existing = reads.status_marks(db, [node.id]).get(node.id, [])
    want: dict[Triple, list[str]] = {}
    why = "retired" if node.retired_at is not None else "recomputed"
    if node.retired_at is None and node.current_version_id is not None and node.needs_tests:
        runs = reads.status_runs(db, [node.id]).get(node.id, [])
        deciding, missing = considered_runs(runs, node.required_suites)
        snaps = reads.snapshot_pairs(db, [r.id for r in deciding])
        pairs, towards = version_lineage(s, node.current_version_id)
        diff = lineage_diff([snaps[r.id] for r in deciding], pairs)
        names = reads.names(Db.over(s), [*towards, *(c for c, _, _ in diff), node.id])
        paths = _paths(towards, node.id, names)
        want = {t: paths.get(t[0], [names[t[0]]]) for t in diff}
        if not diff and deciding and all(r.passed for r in deciding) and not missing:
            why = "verified"
    close, add = sync(node.id, existing, want, None, at, event_id)
    repo.close_marks(s, close, at, why)
    repo.add_marks(s, add)
    outbox.marks_changed(s, add, close, why)
    return len(close)


def rebuild_all(s: Session, at: datetime) -> int:
    """``rebuild`` every node of the chain; returns how many marks closed."""
    return sum(rebuild(s, node, at) for node in repo.list_nodes(s))


def changed_ancestors(s: Session, node: Node, old_vid: int | None, new_vid: int) -> set[int]:
    """The ancestors whose versions may differ below ``node`` after its current version
    went from ``old_vid`` to ``new_vid``: the node itself, and, when the inputs differ,
    every ancestor in the difference of the two versions' lineages."""
    out = {node.id}
    db = Db.over(s)
    if old_vid is None or set(reads.regular_inputs(db, old_vid)) == set(
            reads.regular_inputs(db, new_vid)):
        return out
    before, _ = version_lineage(s, old_vid)
    after, _ = version_lineage(s, new_vid)
    return out | {n for n, _ in before ^ after}


def walk(adj: Mapping[int, Sequence[int]], starts: Iterable[int],
         parent: dict[int, int]) -> set[int]:
    """Every node reached from ``starts`` (included); records a BFS parent for paths."""
    seen = set(starts)
    queue = deque(sorted(seen))
    while queue:
        here = queue.popleft()
        for nxt in sorted(adj.get(here, ())):
            if nxt not in seen:
                seen.add(nxt)
                parent.setdefault(nxt, here)
                queue.append(nxt)
    return seen


def versions_below(db: Db, ancestor: int, current: int | None,
                   adj: graph.Adjacency | None = None
                   ) -> tuple[dict[int, set[int]], dict[int, int]]:
    """For every node whose lineage holds ``ancestor``: its versions of it there.

    Through a live (unpinned) path it is ``current``; through a pinned input
    ``ancestor@v`` it is v, for that consumer and everything reading it live.
    Also returns BFS parents (towards ``ancestor``) to name a path. ``adj``: the
    live edges below ``ancestor`` when the caller has them already (a hub's walk
    is 300,000 edges).
    """
    if adj is None:
        adj = graph.adjacency(reads.edges_below(db, ancestor))
    return versions_from(adj, ancestor, current, reads.pinned_consumers(db, ancestor),
                         lambda c: graph.adjacency(reads.edges_below(db, c)))


def versions_from(adj: Mapping[int, Sequence[int]], ancestor: int, current: int | None,
                  pinned: Iterable[tuple[int, int]],
                  below: Callable[[int], Mapping[int, Sequence[int]]]
                  ) -> tuple[dict[int, set[int]], dict[int, int]]:
    """``versions_below`` from the edges: ``adj`` the live ones below ``ancestor``,
    ``pinned`` its (consumer, pinned version) pairs in order, ``below(c)`` the live
    edges below consumer ``c``."""
    parent: dict[int, int] = {}
    out: dict[int, set[int]] = {}
    if current is not None:
        for n in walk(adj, [ancestor], parent) - {ancestor}:
            out.setdefault(n, set()).add(current)
    for consumer, pin in pinned:
        parent.setdefault(consumer, ancestor)
        for n in walk(below(consumer), [consumer], parent):
            out.setdefault(n, set()).add(pin)
    return out, parent


def propagate(s: Session, cause: Node, old_vid: int | None, new_vid: int, at: datetime,
              event_id: int | None) -> int:
    """Refresh the marks of every testable node below ``cause``, whose current version
    just moved from ``old_vid`` to ``new_vid``; returns how many were re-evaluated.
    The edge table must already hold the new inputs."""
    db = Db.over(s)
    edges, info = reads.walk_below(db, cause.id)
    adj = graph.adjacency(edges)
    below = [n for n in info if n != cause.id]
    if not below:
        return 0
    testable = sorted(n for n in below if info[n].needs_tests)
    if not testable:
        return 0
    changed = sorted(changed_ancestors(s, cause, old_vid, new_vid))
    now_of: dict[int, dict[int, set[int]]] = {}
    parents: dict[int, dict[int, int]] = {}
    for a in changed:
        if a == cause.id:
            now_of[a], parents[a] = versions_below(db, a, new_vid, adj)
        else:
            now_of[a], parents[a] = versions_below(db, a, reads.current_versions(db, [a]).get(a))
    runs = reads.status_runs(db, testable)
    suites = reads.required_suites(db, testable)
    deciding = {n: considered_runs(runs.get(n, []), suites[n])[0] for n in testable}
    snaps = reads.snapshot_pairs(db, [r.id for rs in deciding.values() for r in rs], changed)
    names = {i: r.name for i, r in info.items()}
    names.update(reads.names(db, {*changed, *(p for ps in parents.values()
                                              for p in ps.values())} - names.keys()))
    existing = reads.status_marks(db, testable)
    scope = set(changed)
    close: list[int] = []
    add: list[dict[str, Any]] = []
    for n in testable:
        snapshot_diff = lineage_diff(
            [snaps[r.id] for r in deciding[n]],
            {(a, v) for a in changed for v in now_of[a].get(n, ())})
        want = {t: named_path(parents[t[0]], t[0], n, names) for t in snapshot_diff}
        gone, new = sync(n, existing.get(n, []), want, scope, at, event_id)
        close += gone
        add += new
    repo.close_marks(s, close, at, "superseded")
    repo.add_marks(s, add)
    outbox.marks_changed(s, add, close, "superseded")
    return len(testable)


def named_path(parent: Mapping[int, int], ancestor: int, node: int,
               names: Mapping[int, str]) -> list[str]:
    """The path ancestor -> ... -> node through BFS parents; just the ancestor's name
    when it no longer reaches the node."""
    if node not in parent:
        return [names[ancestor]]
    path = [node]
    while path[-1] != ancestor:
        path.append(parent[path[-1]])
    return [names[i] for i in reversed(path)]


def waiver_facts(s: Session, node: Node, cause_id: int | None
                 ) -> tuple[list[list[Any]], list[int]]:
    """What a waiver granted now accepts: the exact open causes (those of ``cause_id``
    only, when given) as [cause, [tested], [now]], and the deciding runs' ids."""
    db = Db.over(s)
    marks = reads.status_marks(db, [node.id]).get(node.id, [])
    covers = sorted({(m.cause_id, tuple(m.tested_versions), tuple(m.now_versions))
                     for m in marks if cause_id is None or m.cause_id == cause_id})
    runs = reads.status_runs(db, [node.id]).get(node.id, [])
    deciding, _ = considered_runs(runs, node.required_suites)
    return [[c, list(t), list(n)] for c, t, n in covers], sorted(r.id for r in deciding)
