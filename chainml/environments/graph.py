"""What an environment serves, as a picture: the data of ``graph --env``.

Plain data (the fields of ``render.view.ViewNode`` and ``ViewEdge``), which the
``Registry`` turns into a ``GraphView``: this layer sits below the renderers' input.
The nodes are those the environment serves (deployed, or sources read live), at the
versions it serves, with their environment status; the edges are the served
versions' inputs (feedback and pins too) among them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.environments import service
from chainml.errors import InvalidInput
from chainml.names import unify_newlines


def env_neighbourhood(edges: Sequence[tuple[int, int, bool]], start: int, direction: str,
                      depth: int | None) -> set[int]:
    """``start`` with its ancestors and/or descendants along ``edges`` (upstream,
    downstream, feedback) within ``depth`` hops; feedback edges are not followed."""
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    for u, d, fb in edges:
        if not fb:
            down.setdefault(u, []).append(d)
            up.setdefault(d, []).append(u)
    keep = {start}
    for follow, wanted in ((down, ("both", "downstream")), (up, ("both", "upstream"))):
        if direction not in wanted:
            continue
        seen, frontier, hops = {start}, [start], 0
        while frontier and (depth is None or hops < depth):
            hops += 1
            frontier = [n for here in frontier for n in follow.get(here, []) if n not in seen]
            seen.update(frontier)
        keep |= seen
    return keep


def served_graph(s: Session, env_name: str, now: datetime, *, focus: str | None = None,
                 direction: str = "both", depth: int | None = None) -> dict[str, Any]:
    """What environment ``env_name`` serves: its deployed nodes and the sources they read
    live, each labelled with the version the environment serves (and the registry's
    current one where it differs), coloured by environment status, with the edges of
    the served versions' inputs. Nodes the environment does not serve are not drawn.
    Returns ``{"nodes": [...], "edges": [...], "title": ...}``, a ``GraphView``'s fields."""
    db = Db.over(s)
    env = reads.require_env(db, env_name)
    view = service.load(db, env)
    statuses = service.statuses(db, env, None, now)
    served = {i: v for i in set(view.served.deployed) | view.live_sources_read()
              if (v := view.served.version(i)) is not None}
    info = view.nodes
    by_version: dict[int, list[tuple[int, bool, int | None]]] = {}
    for vi in repo.inputs_of(s, sorted(set(served.values()))):
        by_version.setdefault(vi.version_id, []).append(
            (vi.upstream_id, bool(vi.feedback), vi.pinned_version_id))
    edges = sorted({(u, d, fb, p) for d, v in served.items()
                    for u, fb, p in by_version.get(v, []) if u in served})
    ids = set(served)
    if focus is not None:
        node = reads.require_node(db, focus)
        if node.id not in served:
            raise InvalidInput(f"'{focus}' is not served in '{env.name}'; 'chainml env show "
                               f"{env.name}' lists what it serves.")
        ids = env_neighbourhood([(u, d, fb) for u, d, fb, _ in edges], node.id, direction,
                                depth)
        edges = [e for e in edges if e[0] in ids and e[1] in ids]
    rows = {n.id: n for n, _ in repo.chain_nodes_with_labels(s, sorted(ids))}
    labels = reads.labels(db, [served[i] for i in ids]
                          + [info[i].current_version_id for i in ids if i in info]
                          + [p for *_, p in edges])
    all_labels = repo.version_labels(s, sorted(ids))
    names = {i: info[i].name for i in ids}
    inputs: dict[int, list[str]] = {}
    consumers: dict[int, list[str]] = {}
    for u, d, fb, p in edges:
        if not fb:
            inputs.setdefault(d, []).append(names[u] + (f"@{labels[p]}" if p else ""))
        consumers.setdefault(u, []).append(names[d])
    nodes = []
    for i in sorted(ids, key=lambda i: names[i]):
        n, row, st = info[i], rows.get(i), statuses.get(i)
        label = labels.get(served[i])
        current = labels.get(n.current_version_id or -1)
        if current is not None and current != label:
            label = f"{label} (current {current})"
        nodes.append(dict(
            name=n.name, kind=n.kind, version=label, status=st.status.value if st else None,
            owner=n.owner, description=unify_newlines(row.description) if row else None,
            tags=list(row.tags) if row else [], meta=dict(row.meta) if row else {},
            versions=all_labels.get(i, []), inputs=sorted(inputs.get(i, [])),
            consumers=sorted(consumers.get(i, [])),
            reasons=[r.message for r in st.reasons] if st else []))
    view_edges = [dict(upstream=names[u], downstream=names[d], feedback=fb,
                       pin=labels.get(p) if p else None)
                  for u, d, fb, p in sorted(edges, key=lambda x: (names[x[0]], names[x[1]]))]
    title = f"chainml: what {env.name} serves" + (f", around {focus}" if focus else "")
    return {"nodes": nodes, "edges": view_edges, "title": title}
