"""Load the real-world dependency graphs kept in ``shared/real-graphs/`` as chain files.

Each file is ``{"source": ..., "nodes": [{"name", "kind"}], "edges": [[up, down], ...]}``
with the other project's own kind words. Mapping:

* Kinds, by vocabulary. In dbt files (``dbt`` in the source line or the file name) a
  ``model`` is a SQL transform: ``feature``. Elsewhere ``model`` is an ML model.
  ``source``/``seed``/``external``/``param``/``code`` -> ``source``;
  ``dataset``/``snapshot``/``output``/``feature``/``task``/``stage``/``job``/
  ``validation`` -> ``feature``; TFX ``resolver`` (it hands a model over) -> ``model``;
  ``evaluation``/``deployment``/``exposure`` -> ``consumer``. Unknown words: ``feature``.
  ``kind_map`` (their word -> our kind) overrides this.
* Then the kind rule of chainml/kinds.py is enforced, upstream first: a data kind
  (source, seed, dataset, ...) with no inputs is a ``source``; a node whose kind may
  not consume one of its inputs becomes a ``feature`` if that may (a source with
  inputs), else a ``consumer``, which may consume anything.
* Names pass through :func:`common.map_names` (kedro's ``task:Apply Types`` becomes
  ``task:Apply_Types``); :func:`load_real_graph_mapped` returns that map too.
* Every version is ``1``; ``node_meta`` keeps the original name and kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import networkx as nx  # type: ignore[import-untyped, unused-ignore]

from chainml.errors import InvalidInput
from chainml.files.chainfile import ChainFile, ChainNode
from chainml.files.importers.common import MAX_IMPORT_BYTES, build_chain, map_names, read_json
from chainml.kinds import ALL_KINDS, Kind, may_consume

GENERIC_KINDS: dict[str, Kind] = {
    "source": Kind.SOURCE, "seed": Kind.SOURCE, "external": Kind.SOURCE,
    "param": Kind.SOURCE, "code": Kind.SOURCE,
    "dataset": Kind.FEATURE, "snapshot": Kind.FEATURE, "output": Kind.FEATURE,
    "feature": Kind.FEATURE, "task": Kind.FEATURE, "stage": Kind.FEATURE,
    "job": Kind.FEATURE, "validation": Kind.FEATURE,
    "model": Kind.MODEL, "resolver": Kind.MODEL,
    "evaluation": Kind.CONSUMER, "deployment": Kind.CONSUMER, "exposure": Kind.CONSUMER,
}
DBT_KINDS: dict[str, Kind] = {**GENERIC_KINDS, "model": Kind.FEATURE}
# Words for data at rest: such a node without inputs is a source of the chain.
DATA_WORDS = frozenset({"source", "seed", "external", "dataset", "snapshot", "output"})


def _read(path: Path, max_bytes: int) -> tuple[dict[str, Any], str]:
    data, filename = read_json(path, max_bytes)

    def check(cond: bool, problem: str) -> None:
        if not cond:
            raise InvalidInput(f"{filename}: {problem}.")

    check(isinstance(data, dict) and isinstance(data.get("nodes"), list)
          and isinstance(data.get("edges"), list), "expected an object with nodes and edges")
    seen: set[str] = set()
    for i, node in enumerate(data["nodes"]):
        check(isinstance(node, dict) and isinstance(node.get("name"), str)
              and isinstance(node.get("kind"), str), f"nodes[{i}] needs a name and a kind")
        check(node["name"] not in seen, f"nodes[{i}] repeats the name {node['name']!r}")
        seen.add(node["name"])
    for i, edge in enumerate(data["edges"]):
        check(isinstance(edge, list) and len(edge) == 2 and all(e in seen for e in edge),
              f"edges[{i}] must be [upstream, downstream] naming two nodes")
    return data, filename


def _kinds(graph: nx.DiGraph[str], words: Mapping[str, str], table: Mapping[str, Kind]) -> dict[
        str, Kind]:
    """Our kind for every node, repaired upstream first so the kind rule holds."""
    out: dict[str, Kind] = {}
    for node in nx.topological_sort(graph):
        word = words[node]
        kind = table.get(word, Kind.FEATURE)
        ups = [out[u] for u in graph.predecessors(node)]
        if not ups and word in DATA_WORDS:
            kind = Kind.SOURCE
        if not all(may_consume(kind, u) for u in ups):
            kind = Kind.FEATURE if all(may_consume(Kind.FEATURE, u) for u in ups) \
                else Kind.CONSUMER
        out[node] = kind
    return out


def load_real_graph_mapped(
    path: str | Path,
    kind_map: Mapping[str, str] | None = None,
    *,
    max_bytes: int = MAX_IMPORT_BYTES,
) -> tuple[ChainFile, dict[str, str]]:
    """Convert one real-graph JSON file; also return ``{original name: chainml name}``.

    Args:
        path: a file of ``shared/real-graphs/``.
        kind_map: their kind word -> chainml kind, applied before the kind rule repair.
        max_bytes: size limit, 16 MiB by default.

    Raises:
        InvalidInput: unreadable or malformed file, an unknown kind in kind_map, or a
            cycle.
    """
    p = Path(path)
    data, filename = _read(p, max_bytes)
    for word, kind in (kind_map or {}).items():
        if kind not in ALL_KINDS:
            raise InvalidInput(f"kind_map maps {word!r} to {kind!r}; use one of "
                               f"{', '.join(ALL_KINDS)}.")
    is_dbt = "dbt" in str(data.get("source", "")).lower() or p.name.lower().startswith("dbt")
    table = {**(DBT_KINDS if is_dbt else GENERIC_KINDS),
             **{w: Kind(k) for w, k in (kind_map or {}).items()}}
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(n["name"] for n in data["nodes"])
    graph.add_edges_from((u, v) for u, v in data["edges"])
    if not nx.is_directed_acyclic_graph(graph):
        raise InvalidInput(f"{filename}: the edges form a cycle.")
    words = {n["name"]: n["kind"] for n in data["nodes"]}
    kinds = _kinds(graph, words, table)
    names = map_names(words)
    nodes = [
        ChainNode(name=names[n], kind=kinds[n], version="1",
                  inputs=sorted(names[u] for u in graph.predecessors(n)),
                  node_meta={"original_name": n, "original_kind": words[n]})
        for n in words
    ]
    return build_chain(nodes, filename), names


def load_real_graph(
    path: str | Path, kind_map: Mapping[str, str] | None = None, *,
    max_bytes: int = MAX_IMPORT_BYTES,
) -> ChainFile:
    """Convert one real-graph JSON file into a chain file (see the module docstring)."""
    return load_real_graph_mapped(path, kind_map, max_bytes=max_bytes)[0]
