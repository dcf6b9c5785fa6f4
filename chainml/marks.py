"""Retest marks: written in the same transaction as every change of a current version.

``propagate`` is the fast path for a change reaching many nodes: a reached node
is marked unless one of its deciding runs was taken against the cause's new
version (a rollback), in which case ``rebuild`` settles that node exactly.
``rebuild`` recomputes one node's open marks from the definition; it runs for
the changed node itself, after a test run, and after a change of settings.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from chainml import graph
from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import Node, VersionInput
from chainml.status import considered_runs, lineage_diff


def version_lineage(s: Session, version_id: int) -> tuple[set[graph.Pair], dict[int, int]]:
    """(node, version) pairs the version is built from, and next hops for paths."""
    seeds = [
        (u, p) for u, p in s.execute(
            select(VersionInput.upstream_id, VersionInput.pinned_version_id)
            .where(VersionInput.version_id == version_id, VersionInput.feedback.is_(False))
        )
    ]
    unpinned = [u for u, p in seeds if p is None]
    edges = repo.edges_above(s, unpinned)
    ids = set(unpinned) | {u for u, _, _ in edges} | {d for _, d, _ in edges}
    return graph.lineage(seeds, edges, repo.current_versions(s, ids))


def snapshot(pairs: set[graph.Pair]) -> list[list[int]]:
    return [[n, v] for n, v in sorted(pairs)]


def rebuild(s: Session, node: Node, at: datetime, event_id: int | None = None) -> int:
    """Make ``node``'s open marks match its definitional diff; returns how many closed.

    Marks are only closed when every deciding run passed: a failed or untested
    node keeps the reasons it already had.
    """
    if node.current_version_id is None or not node.needs_tests:
        return 0
    runs = repo.runs_for(s, node.id, node.current_version_id)
    considered, missing = considered_runs(runs, node.required_suites)
    pairs, towards = version_lineage(s, node.current_version_id)
    diff = lineage_diff((r.snapshot for r in considered), pairs)
    existing = repo.open_marks(s, [node.id]).get(node.id, [])
    all_passed = bool(considered) and all(r.passed for r in considered)
    # A kept mark must say what the deciding runs say, "from" included: after a promote
    # back to a version with older runs, a mark opened against newer runs is redone.
    to_close = [m.id for m in existing if all_passed
                and (m.cause_id not in diff
                     or (m.from_version_id, m.to_version_id) != diff[m.cause_id])]
    kept = {m.cause_id for m in existing if m.id not in to_close}
    new = {c: d for c, d in diff.items() if c not in kept}
    if to_close:
        why = "verified" if all_passed and not diff and not missing else "recomputed"
        repo.close_marks(s, to_close, at, why)
    if new:
        names = repo.names_by_id(s, [*new, *towards, node.id])
        rows = [_mark_row(node.id, c, old, now_v,
                          [names[i] for i in graph.path_towards(towards, c, node.id)],
                          event_id, at)
                for c, (old, now_v) in sorted(new.items())]
        repo.add_marks(s, rows)
    return len(to_close)


def _mark_row(node_id: int, cause: int, old: int | None, new: int | None, path: list[str],
              event_id: int | None, at: datetime) -> dict[str, Any]:
    return {"node_id": node_id, "cause_id": cause, "from_version_id": old,
            "to_version_id": new, "path": path, "event_id": event_id, "opened_at": at,
            "closed_at": None, "close_reason": None}


def propagate(s: Session, cause: Node, old_vid: int | None, new_vid: int, at: datetime,
              event_id: int | None, fresh: bool = False) -> int:
    """Mark every testable node a new current version of ``cause`` reaches; returns the count.

    The edge table must already hold ``cause``'s new inputs. ``fresh``: the version was
    created just now, so no snapshot can hold it, and a node with an open mark from this
    cause already knows what it was tested with: its snapshots need no probe.
    """
    db = Db.over(s)
    parent, depth = graph.bfs_tree(graph.adjacency(reads.edges_below(db, cause.id)), cause.id)
    if len(parent) == 1:
        return 0
    info = reads.node_info(db, parent)
    testable = sorted(n for n in parent if n != cause.id and info[n].needs_tests)
    existing = repo.open_mark_starts(s, cause.id)
    probes = _probe_snapshots(s, db, [n for n in testable if not fresh or n not in existing],
                              cause.id)
    paths = graph.name_paths(parent, depth, {i: r.name for i, r in info.items()})
    superseded: list[int] = []
    rows: list[dict[str, Any]] = []
    settle: list[int] = []
    for n in testable:
        seen = probes.get(n, [])
        if any(new_vid in versions for versions in seen):
            settle.append(n)  # tested against this very version before: decide exactly
            continue
        old = existing.get(n)
        if old is not None:
            superseded.append(old[0])
            start = old[1]
        else:
            start = next((v[0] for v in reversed(seen) if v), old_vid)
        rows.append(_mark_row(n, cause.id, start, new_vid, paths[n], event_id, at))
    repo.close_marks(s, superseded, at, "superseded")
    repo.add_marks(s, rows)
    for n in settle:
        rebuild(s, s.get_one(Node, n), at, event_id)
    return len(rows) + len(settle)


# Characters of a snapshot read from where the cause's first pair starts: enough for
# the same node at a few versions (pinned inputs); a longer run is read whole.
_WINDOW = 400
_PAIR = re.compile(r"\[\s*(\d+)\s*,\s*(\d+)\s*\]")


def _probe_snapshots(s: Session, db: Db, nodes: Sequence[int], cause_id: int
                     ) -> dict[int, list[list[int]]]:
    """For each node: the cause's versions in each deciding run's snapshot, oldest run first.

    Snapshots are thousands of pairs, sorted by node id, written as ``[[id, version],
    ...]``. Only a short window from where the cause's pair starts leaves the database
    (its own text search): reading 28,000 whole snapshots when a hub changed cost
    seconds, parsing them tens of seconds and gigabytes.
    """
    if not nodes:
        return {}
    suites = reads.required_suites(db, nodes)
    needle = f"[{cause_id},"
    mine = re.compile(rf"\[\s*{cause_id}\s*,\s*(\d+)\s*\]")
    out: dict[int, list[list[int]]] = {}
    for node, runs in reads.current_runs_probed(db, nodes, needle, _WINDOW):
        considered, _ = considered_runs(runs, suites[node])
        found = []
        for r in considered:
            window = r.window or ""
            hits = list(mine.finditer(window))
            # The cause's pairs are adjacent (sorted); they may go on past a full window
            # unless another node's pair (or the end of the list) follows them.
            if (hits and len(window) >= _WINDOW and "]]" not in window[hits[-1].end() - 1:]
                    and not _PAIR.search(window, hits[-1].end())):
                hits = list(mine.finditer(repo.snapshot_text(s, r.id)))
            found.append([int(m.group(1)) for m in hits])
        out[node] = found
    return out


def waiver_covers(s: Session, node: Node, cause_id: int | None) -> list[list[int | None]]:
    """The (cause, version) pairs a waiver granted now accepts.

    Without a cause: every open mark and every differing ancestor. With one: that
    cause, plus what changed only as a side effect (ancestors added or removed by
    a structural change, marks whose cause left the lineage) - never another
    cause that has a mark of its own.
    """
    marks = repo.open_marks(s, [node.id]).get(node.id, [])
    diff: dict[int, tuple[int | None, int | None]] = {}
    if node.current_version_id is not None:
        runs = repo.runs_for(s, node.id, node.current_version_id)
        considered, _ = considered_runs(runs, node.required_suites)
        pairs, _ = version_lineage(s, node.current_version_id)
        diff = lineage_diff((r.snapshot for r in considered), pairs)
    mark_causes = {m.cause_id for m in marks}
    out: set[tuple[int, int | None]] = set()
    for m in marks:
        if cause_id is None or m.cause_id == cause_id or m.cause_id not in diff:
            out.add((m.cause_id, m.to_version_id))
    for n, (_, new) in diff.items():
        if cause_id is None or n == cause_id or n not in mark_causes:
            out.add((n, new))
    return [[c, v] for c, v in sorted(out, key=lambda p: (p[0], p[1] or 0))]
