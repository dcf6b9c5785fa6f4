"""``Registry.search`` (the web UI's search): the nodes every word matches, the one named
exactly as the query first, then by name; the first ``limit`` and how many match. Checked
against a brute force over ``Registry.nodes`` written here, on random names, owners, tags
and kinds (retired nodes are not part of the chain, so never found)."""

from __future__ import annotations

import random

from chainml.registry import Registry
from chainml.schemas import NodeOut

WORDS = ["rank", "Ranker", "fraud", "ads", "ana", "bob", "feat", "raw", "x"]


def _brute(nodes: list[NodeOut], query: str) -> list[str]:
    def ok(n: NodeOut, term: str) -> bool:
        if term.startswith("kind:"):
            return n.kind == term[5:]
        if term.startswith("owner:"):
            return term[6:] in (n.owner or "").lower()
        if term.startswith("tag:"):
            return any(term[4:] in t.lower() for t in n.tags)
        return any(term in field.lower() for field in [n.name, n.owner or "", n.kind, *n.tags])

    hits = [n.name for n in nodes if all(ok(n, t) for t in query.lower().split())]
    exact = [h for h in hits if h.lower() == query.strip().lower()]
    return sorted(exact) + sorted(h for h in hits if h not in exact)


def test_search_is_the_brute_force_over_every_node(registry: Registry) -> None:
    rng = random.Random(7)
    names: list[str] = []
    for i in range(60):
        first, second = rng.choice(WORDS), rng.choice(WORDS)
        name = f"{first}_{second}{i}" if i % 7 else f"{first}{i}"
        kind = rng.choice(["source", "feature", "model", "policy"])
        registry.register(kind=kind, name=name, version="1",
                          owner=rng.choice([None, "ana", "Bob", "team-ads"]),
                          tags=rng.sample(WORDS, rng.randint(0, 2)))
        names.append(name)
    registry.register(kind="source", name="rank", version="1")  # an exact name
    registry.retire(names[3])
    nodes = registry.nodes()
    assert names[3] not in {n.name for n in nodes}
    queries = ["rank", "RANK", "fraud ads", "owner:ana", "owner:bob rank", "tag:ads",
               "kind:model", "kind:model feat", "kind:Model", "x", "zzz", " rank ",
               "tag:ran owner:team", "ads ana"]
    for query in queries:
        want = _brute(nodes, query)
        for limit in (1, 5, 1000):
            got, total = registry.search(query, limit)
            assert ([n.name for n in got], total) == (want[:limit], len(want)), (query, limit)
        if want:
            assert registry.search(query, 1)[0][0] == next(n for n in nodes if n.name == want[0])
