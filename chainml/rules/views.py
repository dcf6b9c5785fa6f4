"""Building a ``render.view.GraphView`` from the registry: only the part asked for.

With ``focus`` the neighbourhood is found by recursive CTEs in the database, so
drawing 500 nodes of a 100,000-node registry loads about 500 nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import Node
from chainml.names import unify_newlines
from chainml.render.view import GraphView, ViewEdge, ViewNode
from chainml.schemas import StatusEntry


def neighbourhood(s: Session, node: Node, direction: str, depth: int | None) -> set[int]:
    """``node`` with its ancestors ("upstream"), descendants ("downstream") or both, within
    ``depth`` hops. Feedback edges are not followed (``repo.walk``); those among the nodes
    kept are still drawn."""
    keep = {node.id}
    if direction in ("both", "downstream"):
        keep |= repo.walk(s, node.id, True, depth)
    if direction in ("both", "upstream"):
        keep |= repo.walk(s, node.id, False, depth)
    return keep


def build_view(s: Session, ids: Sequence[int] | None, statuses: dict[int, StatusEntry],
               title: str | None = None) -> GraphView:
    """The view of the nodes ``ids`` (all when None) and the edges among them."""
    nodes = sorted(repo.chain_nodes_with_labels(s, ids), key=lambda p: p[0].name)
    names = {n.id: n.name for n, _ in nodes}
    edges = repo.edges_among(s, list(names) if ids is not None else None)
    edges = [x for x in edges if x[0] in names and x[1] in names]
    pins = reads.labels(Db.over(s), [p for _, _, _, p in edges])
    labels = repo.version_labels(s, list(names) if ids is not None else None)
    inputs: dict[int, list[str]] = {}
    consumers: dict[int, list[str]] = {}
    for u, d, fb, p in edges:
        if not fb:
            inputs.setdefault(d, []).append(names[u] + (f"@{pins[p]}" if p else ""))
        consumers.setdefault(u, []).append(names[d])
    view_nodes = []
    for n, label in nodes:
        st = statuses.get(n.id)
        view_nodes.append(ViewNode(
            name=n.name, kind=n.kind, version=label, status=st.status.value if st else None,
            owner=n.owner, description=unify_newlines(n.description), tags=list(n.tags),
            meta=dict(n.meta),
            versions=labels.get(n.id, []), inputs=sorted(inputs.get(n.id, [])),
            consumers=sorted(consumers.get(n.id, [])),
            reasons=[r.message for r in st.reasons] if st else [],
        ))
    view_edges = [ViewEdge(upstream=names[u], downstream=names[d], feedback=fb,
                           pin=pins.get(p) if p else None)
                  for u, d, fb, p in sorted(edges, key=lambda x: (names[x[0]], names[x[1]]))]
    return GraphView(nodes=view_nodes, edges=view_edges, title=title)
