"""``marks.propagate`` of a sequence of version moves, read and written set-wise.

Group commit (chainml/ingest/group.py) registers many versions in one transaction. One by
one, each move of a node's current version costs ``marks.propagate`` a walk below the
node, five reads and two writes, under the write lock. Here what every move of the
sequence needs is read once (one walk from all the moved nodes, the testable nodes'
runs, suites, snapshots and open marks), the moves are replayed in memory in their order
- each sees the marks the moves before it opened and closed - and the marks are written
with one statement for those closed and one for those added.

The reads hold for the whole sequence when the moves change nothing but the moved nodes'
current versions; the caller makes sure that:

* every move keeps the inputs of the version it replaces, so the edges stay and
  ``marks.changed_ancestors`` is the moved node alone;
* no moved node needs tests or has an open mark, so ``marks.rebuild`` of it writes
  nothing, and the testable nodes below (whose runs, snapshots and marks are read
  once) never move.

Then the rows are those the one-by-one path writes, in its order; a mark one move opens
and a later one closes is inserted closed, as it ends up. The tests compare both paths
(tests/test_ingest_group.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.rules import graph, marks, outbox
from chainml.rules.status import Triple, considered_runs, lineage_diff

SUPERSEDED = "superseded"  # why propagate closes a mark
LIVE = 0  # not a version id: a moved node's new version, in its walk (``propagate``)


class Move(NamedTuple):
    node: int  # node id
    version: int  # its new current version
    event: int  # the id of the history event that registered it


def propagate(s: Session, moves: Sequence[Move], at: datetime) -> list[int]:
    """``marks.propagate`` (and the empty ``marks.rebuild``) of each move in turn, under
    the module's conditions; how many testable nodes each move re-evaluated."""
    db = Db.over(s)
    moved = sorted({m.node for m in moves})
    edges, info = reads.walk_below_all(db, moved)
    live = graph.adjacency((u, d) for u, d, pin in edges if pin is None)
    pinned: dict[int, list[tuple[int, int]]] = {}
    for u, d, pin in edges:  # by consumer, as reads.pinned_consumers gives them
        if pin is not None:
            pinned.setdefault(u, []).append((d, pin))
    # Each moved node's versions below it, walked once whichever of its moves asks: LIVE
    # stands for the version a move gives it (version ids start at 1), a pin for itself.
    # The walk went along pinned edges too, so its live edges are also every edge below a
    # pinned consumer of the moved node.
    reach = {n: marks.versions_from(live, n, LIVE, pinned.get(n, []), lambda _: live)
             for n in moved}
    below = {n: sorted(x for x, vs in reach[n][0].items() if LIVE in vs
                       and info[x].needs_tests) for n in moved}
    testable = sorted({x for xs in below.values() for x in xs})
    if not testable:
        return [0] * len(moves)
    runs = reads.status_runs(db, testable)
    suites = reads.required_suites(db, testable)
    deciding = {n: considered_runs(runs.get(n, []), suites[n])[0] for n in testable}
    # What each deciding run saw of each moved node, indexed once rather than filtered
    # out of the run's pairs for every move and node.
    seen: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for run, pairs in reads.snapshot_pairs(
            db, [r.id for rs in deciding.values() for r in rs], moved).items():
        for pair in pairs:
            seen.setdefault((run, pair[0]), set()).add(pair)
    names = {i: r.name for i, r in info.items()}
    replay = _Replay(reads.status_marks(db, testable), names)
    counts = []
    for m in moves:
        if not below[m.node]:
            counts.append(0)
            continue
        now_of, parent = reach[m.node]
        for n in below[m.node]:
            diff = lineage_diff(
                [seen.get((r.id, m.node), set()) for r in deciding[n]],
                {(m.node, m.version if v == LIVE else v) for v in now_of.get(n, ())})
            want = {t: marks.named_path(parent, t[0], n, names) for t in diff}
            replay.sync(n, want, m, at)
        replay.tell(s)
        counts.append(len(below[m.node]))
    repo.close_marks(s, replay.closed, at, SUPERSEDED)
    repo.add_marks(s, replay.added)
    return counts


class _Replay:
    """The open marks of the testable nodes as the moves change them. A mark added here
    has no id yet: it is named by ``-(1 + its place in added)``, so that in id order it
    sorts after every stored mark, as its id will."""

    def __init__(self, stored: dict[int, list[reads.Mark]], names: dict[int, str]) -> None:
        self.open = {n: list(ms) for n, ms in stored.items()}
        self.names = names
        self.closed: list[int] = []  # stored marks to close
        self.added: list[dict[str, Any]] = []  # rows to insert, in the one-by-one order
        self._opened: list[dict[str, Any]] = []  # this move's, for its notifications
        self._gone: list[reads.Mark] = []

    def sync(self, node: int, want: dict[Triple, list[str]], move: Move, at: datetime
             ) -> None:
        """``marks.sync`` of ``node``'s marks of the moved node's causes, remembered."""
        have = self.open.get(node, [])
        gone, new = marks.sync(node, have, want, {move.node}, at, move.event)
        shut = set(gone)
        self._gone += [m for m in have if m.id in shut]
        kept = [m for m in have if m.id not in shut]
        for row in new:
            self.added.append(row)
            kept.append(reads.Mark(-len(self.added), node, row["cause_id"],
                                   row["tested_versions"], row["now_versions"], row["path"]))
        self.open[node] = kept
        self._opened += new
        for i in gone:
            if i > 0:
                self.closed.append(i)
            else:
                self.added[-i - 1].update(closed_at=at, close_reason=SUPERSEDED)

    def tell(self, s: Session) -> None:
        """The move's notifications, as ``marks.propagate`` gives them to the outbox."""
        opened, gone = self._opened, sorted(self._gone, key=_id_order)
        self._opened, self._gone = [], []
        n = self.names
        outbox.marks_told(
            s, len(opened),
            lambda k: [(n[r["node_id"]], n[r["cause_id"]], list(r["path"]))
                       for r in opened[:k]],
            len(gone), lambda k: [(n[m.node_id], n[m.cause_id], list(m.path))
                                  for m in gone[:k]], SUPERSEDED)


def _id_order(m: reads.Mark) -> tuple[int, int]:
    return (0, m.id) if m.id > 0 else (1, -m.id)
