"""A deterministic, layered chain shaped like a real ML platform.

The shape (issue #6): about 10% sources, 60% features, 25% models, 3% policies
and 2% consumers; every non-source has 1-8 inputs drawn mostly from the
layers just below it; a few platform hubs are read by thousands of nodes; and
the longest chain is 30+ hops deep.

How it is built, and why:

* ``LAYERS`` = 40 layers. Sources sit in layer 0, features and models in
  layers 1..37, policies and consumers in the upper half. The first input of
  every node is taken from the layer right below it (same team when possible),
  so the longest path is about 38 hops.
* Nodes belong to teams of about 1,000 nodes (``tNN/``). Most inputs come
  from the same team's last three layers; some from anywhere lower in the same
  team; about 10% from any team's layers 0-2 (shared raw data and early
  features). Teams reading each other's *low* layers only is what keeps a
  model's lineage at hundreds to a few thousand nodes, as on real platforms;
  without it every late node would have every early node as an ancestor.
* Five hubs in ``platform/`` (two sources, two features, one embedding model)
  are read directly by 1.5-5% of all nodes each (1,500-5,000 consumers at
  100,000 nodes): a change to the biggest one reaches ~80% of the registry.
* A handful of feedback inputs (sources fed by consumers) are declared, as the
  design allows; impact never follows them, and neither do the floors.

Names look like ``t03/feat_000123``, not ``team03/feat_000123``: with the longer
form the 100,000-node chain file is 16.9 MB even as compact JSON, over chainml's
16 MiB chain-file limit (``chainml.files.safeload.MAX_BYTES``), and ``apply`` refuses it.

Everything is drawn from one ``random.Random(seed)`` in a fixed order, so the
same (size, seed) always gives byte-identical chain files.

The chosen nodes the benchmark asks about are computed here with networkx:
``hub`` (descendants closest to 80% of the registry), ``typical`` (closest to
``min(700, 7% of n)`` descendants: ~700 at 100,000 nodes as in the issue),
``focus`` (a depth-3 neighbourhood closest to ``min(500, n/4)`` nodes) and
``record`` (a testable node deep in the chain that the hub reaches).
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

DEFAULT_SEED = 20261127
LAYERS = 40
TEAM_SIZE = 1000
MIX = (("source", 0.10), ("feature", 0.60), ("model", 0.25), ("policy", 0.03),
       ("consumer", 0.02))
PREFIX = {"source": "src", "feature": "feat", "model": "model", "policy": "policy",
          "consumer": "app"}
# chainml/kinds.py, restated so the generator does not import chainml (a bench must not
# lean on the code it measures to build its input).
MAY_CONSUME = {
    "source": frozenset(),
    "feature": frozenset({"source", "feature", "model"}),
    "model": frozenset({"feature", "model", "source"}),
    "policy": frozenset({"model", "feature", "policy"}),
    "consumer": frozenset({"source", "feature", "model", "policy", "consumer"}),
}
NEEDS_TESTS = {"source": False, "feature": False, "model": True, "policy": True,
               "consumer": False}
# Inputs per non-source node: weights for 1..8, mean ~5.0, so ~4.5 edges per node overall.
INPUT_WEIGHTS = (4, 8, 12, 15, 17, 17, 15, 12)
# (kind, layer, share of all nodes that read it directly)
HUBS = (("source", 0, 0.050), ("source", 0, 0.035), ("feature", 1, 0.030),
        ("feature", 2, 0.020), ("model", 3, 0.015))


@dataclass
class GenNode:
    """One generated node: what goes into the chain file, plus where it sits."""

    name: str
    kind: str
    layer: int
    team: int
    inputs: list[int] = field(default_factory=list)
    feedback: list[int] = field(default_factory=list)


@dataclass
class Chain:
    """A generated chain with the nodes the benchmark asks about."""

    size: int
    seed: int
    nodes: list[GenNode]
    picks: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    def edges(self) -> list[tuple[str, str]]:
        """Regular (upstream, downstream) edges; feedback inputs excluded."""
        return [(self.nodes[u].name, n.name) for n in self.nodes for u in n.inputs]

    def graph(self) -> nx.DiGraph:
        """The regular edges as a networkx digraph of names (what impact follows)."""
        g: nx.DiGraph = nx.DiGraph()
        g.add_nodes_from(self.names())
        g.add_edges_from(self.edges())
        return g

    def document(self) -> dict[str, Any]:
        """The chain file as a JSON-ready dict (chainml chain-file format 1)."""
        out = []
        for n in self.nodes:
            entry: dict[str, Any] = {"name": n.name, "kind": n.kind, "version": "1"}
            if n.inputs:
                entry["inputs"] = [self.nodes[i].name for i in n.inputs]
            if n.feedback:
                entry["feedback"] = [self.nodes[i].name for i in n.feedback]
            out.append(entry)
        return {"chainml": 1, "nodes": out}

    def write(self, path: Path) -> Path:
        """Write the chain file as compact JSON: at 100,000 nodes it must stay under
        chainml's 16 MiB file limit, so no indentation."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.document(), separators=(",", ":")), encoding="utf-8")
        return path


def _kinds(size: int, rng: random.Random) -> list[str]:
    counts = {k: int(round(size * share)) for k, share in MIX}
    counts["feature"] += size - sum(counts.values())  # rounding lands on the biggest kind
    kinds = [k for k, c in counts.items() for _ in range(c)]
    rng.shuffle(kinds)
    return kinds


def _layer_for(kind: str, rng: random.Random) -> int:
    if kind == "source":
        return 0
    if kind in ("feature", "model"):
        return rng.randint(1, LAYERS - 3)
    if kind == "policy":
        return rng.randint(LAYERS // 2, LAYERS - 2)
    return rng.randint(LAYERS // 2 + 1, LAYERS - 1)  # consumer


def generate(size: int, seed: int = DEFAULT_SEED) -> Chain:
    """Build the chain of ``size`` nodes (at least 200) for ``seed``; see the module doc."""
    if size < 200:
        raise ValueError("the generated chain needs at least 200 nodes")
    rng = random.Random(f"{seed}:{size}")
    teams = max(4, size // TEAM_SIZE)
    kinds = _kinds(size, rng)

    # The hubs take the first slots, of their own kinds, so the mix stays exact.
    nodes: list[GenNode] = []
    for h, (kind, layer, _) in enumerate(HUBS):
        slot = kinds.index(kind, h)
        kinds[h], kinds[slot] = kinds[slot], kinds[h]
        nodes.append(GenNode(f"platform/{PREFIX[kind]}_{h:06d}", kind, layer, -1))
    for i in range(len(HUBS), size):
        kind = kinds[i]
        team = rng.randrange(teams)
        nodes.append(GenNode(f"t{team:02d}/{PREFIX[kind]}_{i:06d}", kind,
                             _layer_for(kind, rng), team))
    # Chain files list nodes upstream first, the way people write them.
    order = sorted(range(size), key=lambda i: (nodes[i].layer, i))
    nodes = [nodes[i] for i in order]

    by_team_layer: dict[tuple[int, int], list[int]] = {}
    low: list[int] = []  # layers 0-2 of every team: what other teams may read
    for i, n in enumerate(nodes):
        by_team_layer.setdefault((n.team, n.layer), []).append(i)
        if n.layer <= 2 and n.team >= 0:
            low.append(i)

    # low_below[l]: the shared low layers a node in layer l may read (those below it).
    low_below = {layer: [c for c in low if nodes[c].layer < layer] for layer in (1, 2, 3)}

    def team_layers(team: int, lo: int, hi: int) -> list[int]:
        out: list[int] = []
        for layer in range(max(lo, 0), hi + 1):
            out.extend(by_team_layer.get((team, layer), ()))
        return out

    # Where the hubs landed after sorting, in HUBS order.
    hub_ids = sorted((i for i, n in enumerate(nodes) if n.team < 0),
                     key=lambda i: nodes[i].name[-6:])
    # Hubs feed each other the way a platform does: sources -> features -> embedding.
    s0, s1, f2, f3, m4 = hub_ids
    nodes[f2].inputs = [s0, s1]
    nodes[f3].inputs = [f2, s0]
    nodes[m4].inputs = [f3, f2]

    for n in nodes:
        if n.kind == "source" or n.team < 0:
            continue
        ok = MAY_CONSUME[n.kind]
        want = rng.choices(range(1, 9), weights=INPUT_WEIGHTS)[0]
        chosen: list[int] = []
        # The first input comes from the nearest lower layer of the same team: this is
        # what makes chains 30+ deep.
        for below in range(n.layer - 1, -1, -1):
            cands = [c for c in by_team_layer.get((n.team, below), ()) if nodes[c].kind in ok]
            if cands:
                chosen.append(rng.choice(cands))
                break
        attempts = 0
        while len(chosen) < want and attempts < 40:
            attempts += 1
            r = rng.random()
            if r < 0.72:
                pool = team_layers(n.team, n.layer - 3, n.layer - 1)
            elif r < 0.90:
                pool = team_layers(n.team, 0, n.layer - 1)
            else:
                pool = low_below[min(n.layer, 3)]
            if not pool:
                continue
            c = rng.choice(pool)
            if nodes[c].kind in ok and c not in chosen and nodes[c].layer < n.layer:
                chosen.append(c)
        n.inputs = chosen

    # Hub fan-out: thousands of direct consumers at 100,000 nodes.
    for h, (kind, layer, share) in zip(hub_ids, HUBS, strict=True):
        cands = [i for i, n in enumerate(nodes)
                 if n.team >= 0 and n.layer > layer and kind in MAY_CONSUME[n.kind]]
        for c in rng.sample(cands, min(len(cands), max(3, int(size * share)))):
            ins = nodes[c].inputs
            if h in ins:
                continue
            if len(ins) < 8:
                ins.append(h)
            else:
                ins[-1] = h  # keep the first (depth-making) input

    # A few declared feedback loops: a source shaped by a consumer's behaviour.
    consumers = [i for i, n in enumerate(nodes) if n.kind == "consumer"]
    sources = [i for i, n in enumerate(nodes) if n.kind == "source" and n.team >= 0]
    for _ in range(max(1, size // 2000)):
        rng_source = rng.choice(sources)
        c = rng.choice(consumers)
        if c not in nodes[rng_source].feedback:
            nodes[rng_source].feedback.append(c)

    chain = Chain(size=size, seed=seed, nodes=nodes)
    _pick(chain, hub_ids, rng)
    return chain


def _neighbourhood(g: nx.DiGraph, start: str, depth: int) -> int:
    """Size of ``chainml graph --focus start --depth N``: N hops up plus N hops down."""
    seen = {start}
    for step in (g.successors, g.predecessors):
        frontier = deque([(start, 0)])
        mine = {start}
        while frontier:
            here, d = frontier.popleft()
            if d >= depth:
                continue
            for nxt in step(here):
                if nxt not in mine:
                    mine.add(nxt)
                    frontier.append((nxt, d + 1))
        seen |= mine
    return len(seen)


def _pick(chain: Chain, hub_ids: list[int], rng: random.Random) -> None:
    g = chain.graph()
    n = chain.size
    names = chain.names()
    hub_reach = {names[h]: len(nx.descendants(g, names[h])) for h in hub_ids}
    hub = min(hub_reach, key=lambda h: (abs(hub_reach[h] - 0.8 * n), h))

    target = min(700, round(0.07 * n))
    sample = rng.sample([nm for nm in names if not nm.startswith("platform/")], min(n - 5, 600))
    reach = {nm: len(nx.descendants(g, nm)) for nm in sample}
    typical = min(sorted(reach), key=lambda nm: abs(reach[nm] - target))

    focus_target = min(500, n // 4)
    hood = {nm: _neighbourhood(g, nm, 3) for nm in sample[:300]}
    focus = min(sorted(hood), key=lambda nm: abs(hood[nm] - focus_target))

    below = nx.descendants(g, hub)
    by_name = {nd.name: nd for nd in chain.nodes}
    deep = sorted((nm for nm in below if NEEDS_TESTS[by_name[nm].kind]),
                  key=lambda nm: (-by_name[nm].layer, nm))
    record = deep[0] if deep else typical

    testable = [nd.name for nd in chain.nodes if NEEDS_TESTS[nd.kind]]
    lineage = [len(nx.ancestors(g, nm)) for nm in rng.sample(testable, min(200, len(testable)))]
    chain.picks = {"hub": hub, "typical": typical, "focus": focus, "record": record}
    chain.stats = {
        "nodes": n,
        "edges": g.number_of_edges(),
        "feedback_edges": sum(len(nd.feedback) for nd in chain.nodes),
        "kinds": {k: sum(1 for nd in chain.nodes if nd.kind == k) for k, _ in MIX},
        "testable": len(testable),
        "teams": max(nd.team for nd in chain.nodes) + 1,
        "longest_path": nx.dag_longest_path_length(g),
        "hub_descendants": hub_reach[hub],
        "hub_direct_consumers": g.out_degree(hub),
        "all_hubs": hub_reach,
        "typical_descendants": reach[typical],
        "focus_neighbourhood": hood[focus],
        "record_ancestors": len(nx.ancestors(g, record)),
        "mean_lineage_of_testable": round(sum(lineage) / max(1, len(lineage)), 1),
        "max_lineage_sampled": max(lineage, default=0),
    }


def main() -> None:  # pragma: no cover - a debugging aid: python -m bench.generate 1000
    import sys

    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    chain = generate(size)
    path = chain.write(Path(sys.argv[2]) if len(sys.argv) > 2 else Path(f"chain-{size}.json"))
    print(json.dumps({"file": str(path), "bytes": path.stat().st_size, "picks": chain.picks,
                      "stats": chain.stats}, indent=2))


if __name__ == "__main__":
    main()
