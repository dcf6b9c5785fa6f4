"""Building a ``render.view.GraphView`` from the registry: only the part asked for.

With ``focus`` the neighbourhood is found by recursive CTEs in the database, so
drawing 500 nodes of a 100,000-node registry loads about 500 nodes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, and_, literal, or_, select
from sqlalchemy.orm import Session

from chainml.db import repository as repo
from chainml.db.models import Edge, Node, Version
from chainml.render.view import GraphView, ViewEdge, ViewNode
from chainml.schemas import StatusEntry


def _walk(s: Session, start: int, downward: bool, depth: int | None) -> set[int]:
    """Ids within ``depth`` hops of ``start`` along every edge, feedback included."""
    e = Edge.__table__
    if depth is None:
        # No depth column: UNION then drops revisits, which ends the walk even
        # around a feedback loop (with a depth every lap would be a new row).
        near, far = (e.c.upstream_id, e.c.downstream_id) if downward else (
            e.c.downstream_id, e.c.upstream_id)
        seen = select(literal(start).label("id")).cte("walk_all", recursive=True)
        seen = seen.union(select(far).join(seen, near == seen.c.id))
        return {i for (i,) in s.execute(select(seen.c.id))}
    first = select(literal(start).label("id"), literal(0).label("d"))
    reach = first.cte("walk", recursive=True)
    near, far = (e.c.upstream_id, e.c.downstream_id) if downward else (
        e.c.downstream_id, e.c.upstream_id)
    step: Select[tuple[int, int]] = select(far, (reach.c.d + 1)).join(reach, near == reach.c.id)
    if depth is not None:
        step = step.where(reach.c.d < depth)
    reach = reach.union(step)
    return {i for (i,) in s.execute(select(reach.c.id).distinct())}


def neighbourhood(s: Session, node: Node, direction: str, depth: int | None) -> set[int]:
    keep = {node.id}
    if direction in ("both", "downstream"):
        keep |= _walk(s, node.id, True, depth)
    if direction in ("both", "upstream"):
        keep |= _walk(s, node.id, False, depth)
    return keep


def build_view(s: Session, ids: Sequence[int] | None, statuses: dict[int, StatusEntry],
               title: str | None = None) -> GraphView:
    """The view of the nodes ``ids`` (all when None) and the edges among them."""
    stmt = select(Node, Version.label).join(
        Version, Version.id == Node.current_version_id, isouter=True).where(
        Node.retired_at.is_(None))  # retired nodes left the chain (and have no edges)
    nodes: list[tuple[Node, str | None]] = []
    if ids is None:
        nodes = [(n, v) for n, v in s.execute(stmt.order_by(Node.name))]
    else:
        for part in repo.chunks(sorted(set(ids))):
            nodes.extend((n, v) for n, v in s.execute(stmt.where(Node.id.in_(part))))
        nodes.sort(key=lambda p: p[0].name)
    names = {n.id: n.name for n, _ in nodes}
    edges = _edges_among(s, list(names) if ids is not None else None)
    edges = [x for x in edges if x[0] in names and x[1] in names]
    pins = repo.labels_by_id(s, [p for _, _, _, p in edges])
    labels = _labels(s, list(names) if ids is not None else None)
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
            owner=n.owner, description=n.description, tags=list(n.tags), meta=dict(n.meta),
            versions=labels.get(n.id, []), inputs=sorted(inputs.get(n.id, [])),
            consumers=sorted(consumers.get(n.id, [])),
            reasons=[r.message for r in st.reasons] if st else [],
        ))
    view_edges = [ViewEdge(upstream=names[u], downstream=names[d], feedback=fb,
                           pin=pins.get(p) if p else None)
                  for u, d, fb, p in sorted(edges, key=lambda x: (names[x[0]], names[x[1]]))]
    return GraphView(nodes=view_nodes, edges=view_edges, title=title)


def _edges_among(s: Session, ids: list[int] | None) -> list[tuple[int, int, bool, int | None]]:
    if ids is None:
        return repo.all_edges(s)
    out: list[tuple[int, int, bool, int | None]] = []
    e = Edge.__table__
    for part in repo.chunks(ids):
        stmt = select(e.c.upstream_id, e.c.downstream_id, e.c.feedback, e.c.pinned_version_id
                      ).where(or_(e.c.upstream_id.in_(part), e.c.downstream_id.in_(part)))
        out.extend((u, d, fb, p) for u, d, fb, p in s.execute(stmt))
    return sorted(set(out))


def _labels(s: Session, ids: list[int] | None) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    stmt = select(Version.node_id, Version.label).order_by(Version.id)
    parts = [None] if ids is None else list(repo.chunks(ids))
    for part in parts:
        q = stmt if part is None else stmt.where(and_(Version.node_id.in_(part)))
        for nid, label in s.execute(q):
            out.setdefault(nid, []).append(label)
    return out
