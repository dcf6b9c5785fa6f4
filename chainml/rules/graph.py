"""Pure graph functions over ``networkx`` digraphs of node ids.

No database, no click, no printing: the registry loads just the part of the
chain a question touches (recursive CTEs in ``db/repository.py``) and hands the
edges here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import networkx as nx

Pair = tuple[int, int]  # (node id, version id)
# Plain successor lists for the hot paths (impact, marks): building an nx.DiGraph of
# the 300,000 edges below a hub costs over a second, a dict of lists a tenth of that.
Adjacency = dict[int, list[int]]


def build(edges: Iterable[tuple[int, int]], nodes: Iterable[int] = ()) -> nx.DiGraph[int]:
    """A digraph from (upstream, downstream) pairs, plus any isolated ``nodes``."""
    import networkx as nx  # imported here: it adds 80 ms to every command that never needs it

    g: nx.DiGraph[int] = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    return g


def adjacency(edges: Iterable[tuple[int, int]]) -> Adjacency:
    """Successor lists from (upstream, downstream) pairs."""
    adj: Adjacency = {}
    for u, d in edges:
        adj.setdefault(u, []).append(d)
    return adj


def bfs_tree(adj: Mapping[int, Sequence[int]], start: int, max_depth: int | None = None
             ) -> tuple[dict[int, int], dict[int, int]]:
    """Breadth-first search from ``start``: (parent, depth) of every node reached.

    ``start`` is its own parent at depth 0. Successors are visited in sorted order,
    so the shortest path that ``path_to`` rebuilds is deterministic.
    """
    parent = {start: start}
    depth = {start: 0}
    frontier = [start]
    level = 0
    while frontier and (max_depth is None or level < max_depth):
        level += 1
        nxt: list[int] = []
        for here in frontier:
            for child in sorted(adj.get(here, ())):
                if child not in parent:
                    parent[child] = here
                    depth[child] = level
                    nxt.append(child)
        frontier = nxt
    return parent, depth


def path_to(parent: Mapping[int, int], node: int) -> list[int]:
    """The path from the BFS root to ``node`` (both ends included)."""
    path = [node]
    while parent[path[-1]] != path[-1]:
        path.append(parent[path[-1]])
    path.reverse()
    return path


def cycle_through(g: nx.DiGraph[int], node: int, new_inputs: Iterable[int]
                  ) -> list[int] | None:
    """The cycle that giving ``node`` these inputs would close, or None.

    ``g`` holds the edges reachable from ``node``. Returned in order with the
    first node repeated at the end: [node, ..., input, node].
    """
    inputs = set(new_inputs)
    if node in inputs:
        return [node, node]
    # One BFS tree and one path: building every path first is quadratic in the depth
    # (a second per refusal below a 3,000-node chain).
    parent, depth = bfs_tree({n: list(g.successors(n)) for n in g}, node)
    hits = [i for i in inputs if i in parent]
    if not hits:
        return None
    best = min(hits, key=lambda i: (depth[i], i))
    return [*path_to(parent, best), node]


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
        The set of (node id, version id) pairs, and for each ancestor the next hop
        towards the version's node (to rebuild a shortest path).
    """
    up: dict[int, list[tuple[int, int | None]]] = {}
    for u, d, pin in edges:
        up.setdefault(d, []).append((u, pin))
    pairs: set[Pair] = set()
    towards: dict[int, int] = {}
    walked: set[int] = set()
    queue: deque[int] = deque()

    def reach(u: int, pin: int | None, hop: int) -> None:
        towards.setdefault(u, hop)  # the first (shortest) way found, pinned or not
        if pin is not None:
            pairs.add((u, pin))
        elif u not in walked:
            walked.add(u)
            queue.append(u)

    for u, pin in sorted(seeds, key=lambda s: s[0]):
        reach(u, pin, -1)
    while queue:
        here = queue.popleft()
        pairs.add((here, current[here]))
        for u, pin in sorted(up.get(here, ()), key=lambda s: s[0]):
            reach(u, pin, here)
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
