"""The reads users wait on, as plain SQL over a ``direct.Db``: finding a node,
the walk below it, node facts and labels, and what status is computed from.

Plain SQL (portable across SQLite, PostgreSQL and MariaDB) rather than
SQLAlchemy expressions: the command line runs these without importing
SQLAlchemy at all (see ``db/direct.py``), and rows stay plain tuples, which
matters when a walk returns 300,000 edges.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import NamedTuple

from chainml.db.direct import Db
from chainml.errors import InvalidInput, NodeNotFound


class NodeRow(NamedTuple):
    id: int
    name: str
    kind: str
    needs_tests: bool
    current_version_id: int | None


class NodeInfo(NamedTuple):
    id: int
    name: str
    kind: str
    needs_tests: bool


def find_node(db: Db, name: str) -> NodeRow | None:
    found = db.rows("SELECT id, name, kind, needs_tests, current_version_id FROM node "
                    "WHERE name = ?", [name])
    # Exact, whatever the collation: MariaDB's default one ignores case.
    for row in found:
        if row[1] == name:
            return NodeRow(row[0], row[1], row[2], bool(row[3]), row[4])
    return None


def require_node(db: Db, name: str) -> NodeRow:
    if not isinstance(name, str):
        raise InvalidInput(f"A node name must be text, not {type(name).__name__}.")
    node = None if "\x00" in name else find_node(db, name)  # PostgreSQL refuses a NUL
    if node is None:
        raise NodeNotFound(name, suggest(db, name))
    return node


def suggest(db: Db, name: str) -> str | None:
    """The closest existing name, for 'Did you mean ...?'."""
    if "\x00" not in name:
        same = db.rows("SELECT name FROM node WHERE name_key = ?", [name.lower()])
        if same:
            return str(same[0][0])
    names = [r[0] for r in db.rows("SELECT name FROM node")]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return close[0] if close else None


# A walk step reads only ix_edge_walk_down: (upstream_id, feedback, pinned_version_id,
# downstream_id). Feedback inputs and pinned inputs do not pass a change on.
_REACH_DOWN = (
    "WITH RECURSIVE reach(id) AS ("
    " SELECT id FROM node WHERE id = ? UNION"
    " SELECT e.downstream_id FROM edge e JOIN reach ON e.upstream_id = reach.id"
    " WHERE e.feedback = FALSE AND e.pinned_version_id IS NULL) "
)


def edges_below(db: Db, start: int) -> list[tuple[int, int]]:
    """The edges a change of ``start`` travels: from every node it reaches."""
    return db.rows(_REACH_DOWN + "SELECT e.upstream_id, e.downstream_id FROM edge e"
                   " JOIN reach ON e.upstream_id = reach.id"
                   " WHERE e.feedback = FALSE AND e.pinned_version_id IS NULL", [start])


def node_info(db: Db, ids: Iterable[int]) -> dict[int, NodeInfo]:
    rows = db.rows_in("SELECT id, name, kind, needs_tests FROM node WHERE id IN ({ids})",
                      sorted(set(ids)))
    return {r[0]: NodeInfo(r[0], r[1], r[2], bool(r[3])) for r in rows}


def labels(db: Db, version_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in version_ids if i is not None})
    return dict(db.rows_in("SELECT id, label FROM version WHERE id IN ({ids})", wanted))


def names(db: Db, ids: Iterable[int]) -> dict[int, str]:
    return dict(db.rows_in("SELECT id, name FROM node WHERE id IN ({ids})", sorted(set(ids))))
