"""Pure graph functions over ``networkx`` digraphs of node ids.

No database, no click, no printing: the registry loads just the part of the
chain a question touches (recursive CTEs in ``db/repository.py``) and hands the
edges here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import NewType

import networkx as nx

NodeId = NewType("NodeId", int)
Pair = tuple[int, int]  # (node id, version id)


def build(edges: Iterable[tuple[int, int]], nodes: Iterable[int] = ()) -> nx.DiGraph:
    """A digraph from (upstream, downstream) pairs, plus any isolated ``nodes``."""
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    return g


def shortest_paths_from(
    g: nx.DiGraph, start: int, max_depth: int | None = None, reverse: bool = False
) -> dict[int, list[int]]:
    """Every node reachable from ``start`` (downstream, or upstream with ``reverse``)
    mapped to one shortest path from ``start`` to it (both ends included).

    ``start`` itself is not in the result. Ties are broken by visiting
    neighbours in sorted order, so paths are deterministic.
    """
    if start not in g:
        return {}
    step = g.predecessors if reverse else g.successors
    parent: dict[int, int] = {start: start}
    depth = {start: 0}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        if max_depth is not None and depth[here] >= max_depth:
            continue
        for nxt in sorted(step(here)):
            if nxt not in parent:
                parent[nxt] = here
                depth[nxt] = depth[here] + 1
                queue.append(nxt)
    paths: dict[int, list[int]] = {}
    for node in parent:
        if node == start:
            continue
        path = [node]
        while path[-1] != start:
            path.append(parent[path[-1]])
        path.reverse()
        paths[node] = path
    return paths


def downstream(g: nx.DiGraph, changed: int, max_depth: int | None = None) -> set[int]:
    """Every node reachable from ``changed`` within ``max_depth`` hops."""
    return set(shortest_paths_from(g, changed, max_depth))


def upstream(g: nx.DiGraph, node: int, max_depth: int | None = None) -> set[int]:
    """Every node that reaches ``node`` within ``max_depth`` hops."""
    return set(shortest_paths_from(g, node, max_depth, reverse=True))


def cycle_through(g: nx.DiGraph, node: int, new_inputs: Iterable[int]) -> list[int] | None:
    """The cycle that giving ``node`` these inputs would close, or None.

    ``g`` holds the edges reachable from ``node``. Returned in order with the
    first node repeated at the end: [node, ..., input, node].
    """
    inputs = set(new_inputs)
    if node in inputs:
        return [node, node]
    reach = shortest_paths_from(g, node)
    hits = [i for i in inputs if i in reach]
    if not hits:
        return None
    best = min(hits, key=lambda i: (len(reach[i]), i))
    return [*reach[best], node]


def lineage(
    seeds: Iterable[tuple[int, int | None]],
    edges: Iterable[tuple[int, int, int | None]],
    current: Mapping[int, int],
) -> tuple[set[Pair], dict[int, int]]:
    """The lineage of one version: every (ancestor, version) it was built from.

    Args:
        seeds: the version's own regular inputs as (upstream id, pinned version id or None).
        edges: current regular edges above them as (upstream, downstream, pinned version
            or None); a pinned edge contributes its pin and is not crossed.
        current: current version id of every node reached.

    Returns:
        The set of (node id, version id) pairs, and for each unpinned ancestor the
        next hop towards the version's node (to rebuild a shortest path).
    """
    up: dict[int, list[tuple[int, int | None]]] = {}
    for u, d, pin in edges:
        up.setdefault(d, []).append((u, pin))
    pairs: set[Pair] = set()
    towards: dict[int, int] = {}
    queue: deque[int] = deque()
    for u, pin in sorted(seeds, key=lambda s: s[0]):
        if pin is not None:
            pairs.add((u, pin))
        elif u not in towards:
            towards[u] = -1
            queue.append(u)
    while queue:
        here = queue.popleft()
        pairs.add((here, current[here]))
        for u, pin in sorted(up.get(here, ()), key=lambda s: s[0]):
            if pin is not None:
                pairs.add((u, pin))
            elif u not in towards:
                towards[u] = here
                queue.append(u)
    return pairs, towards


def path_towards(towards: Mapping[int, int], ancestor: int, node: int) -> list[int]:
    """Rebuild the path ancestor -> ... -> node from ``lineage``'s next-hop map."""
    path = [ancestor]
    hop = towards.get(ancestor)
    while hop is not None and hop != -1:
        path.append(hop)
        hop = towards.get(hop)
    path.append(node)
    return path
