"""What a new version of a node would mark: every node it reaches, with one
shortest path to each. Writes nothing.

Returns plain data (the ``ImpactResult`` shape of docs/json.md): the command
line serialises it directly, the Python API validates it into the model.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any

from chainml.db import reads
from chainml.db.direct import Db
from chainml.rules import graph


def impact(db: Db, name: str, max_depth: int | None = None) -> dict[str, Any]:
    node = reads.require_live(db, name)
    edges, info = reads.walk_below(db, node.id)
    parent, depth = graph.bfs_tree(graph.adjacency(edges), node.id, max_depth)
    label = reads.labels(db, [node.current_version_id]).get(node.current_version_id or -1)
    # bfs_tree lists nodes level by level; sorting each level by name gives the result's
    # (distance, name) order with C-level keys, and parents still come before children,
    # so each path extends its parent's: linear in the output.
    names = {i: r.name for i, r in info.items()}
    order: list[int] = []
    for _, level in groupby((n for n in parent if n != node.id), depth.__getitem__):
        order += sorted(level, key=names.__getitem__)
    paths = {node.id: [node.name]}
    impacted = []
    for n in order:
        row = info[n]
        path = paths[n] = paths[parent[n]] + [row.name]
        impacted.append({"name": row.name, "kind": row.kind, "distance": depth[n],
                         "path": path, "needs_tests": row.needs_tests})
    return {"node": name, "version": label, "impacted": impacted}
