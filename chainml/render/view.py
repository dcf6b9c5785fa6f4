"""The renderers' input: a plain, database-free picture of (part of) the chain.

The registry turns its state into a :class:`GraphView`; every renderer reads
only this. The helpers here (:func:`focus`, :func:`filter_kinds`,
:func:`mark_impact`) are pure: they return a new view and never change theirs.

Text in a view (descriptions, owners, tags, meta, version labels, reasons) is
untrusted: the renderers escape it, the view does not.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from chainml.errors import InvalidInput, NodeNotFound
from chainml.kinds import ALL_KINDS

Direction = Literal["both", "upstream", "downstream"]

STATUSES: tuple[str, ...] = (
    "verified", "untested", "failed", "needs_retest", "waived", "stale", "skewed",
    "missing_input",
)


class ViewNode(BaseModel):
    """One node as drawn: identity, current state and what the details panel shows."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: str
    version: str | None = None
    status: str | None = None  # None: the node needs no tests
    owner: str | None = None
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, Any] = Field(default_factory=dict)
    versions: list[str] = Field(default_factory=list)  # labels, oldest first
    inputs: list[str] = Field(default_factory=list)  # specs: "embed" or "embed@3"
    consumers: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)  # human sentences
    highlighted: bool = False
    faded: bool = False

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in ALL_KINDS:
            raise ValueError(f"kind must be one of {', '.join(ALL_KINDS)}")
        return value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is not None and value not in STATUSES:
            raise ValueError(f"status must be None or one of {', '.join(STATUSES)}")
        return value


class ViewEdge(BaseModel):
    """``upstream -> downstream``; ``pin`` is the upstream version a pinned input reads."""

    model_config = ConfigDict(extra="forbid")

    upstream: str
    downstream: str
    feedback: bool = False
    pin: str | None = None


class GraphView(BaseModel):
    """Nodes (in display order) and the edges between them."""

    model_config = ConfigDict(extra="forbid")

    nodes: list[ViewNode] = Field(default_factory=list)
    edges: list[ViewEdge] = Field(default_factory=list)
    title: str | None = None


def node_ids(view: GraphView) -> dict[str, str]:
    """Return the generated id (``n0``, ``n1``, ...) of every node, by name.

    Renderers never use a node's name as an identifier in their output: ids are
    generated from the node's position, so DOT, the SVG and the HTML page agree
    on them as long as they are made from the same view.

    Args:
        view: The view.

    Returns:
        A dict from node name to id; a duplicated name keeps its first id.
    """
    ids: dict[str, str] = {}
    for index, node in enumerate(view.nodes):
        ids.setdefault(node.name, f"n{index}")
    return ids


def drawable_edges(view: GraphView) -> list[tuple[int, ViewEdge]]:
    """Return ``(index, edge)`` for the edges whose both ends are nodes of the view.

    An edge to a node outside the view (a focus cut it off) would make Graphviz
    invent a bare node; renderers draw only these.
    """
    names = {node.name for node in view.nodes}
    return [
        (index, edge)
        for index, edge in enumerate(view.edges)
        if edge.upstream in names and edge.downstream in names
    ]


def _restrict(view: GraphView, keep: set[str]) -> GraphView:
    """The view with only the nodes in ``keep`` and the edges between them."""
    return GraphView(
        nodes=[node.model_copy(deep=True) for node in view.nodes if node.name in keep],
        edges=[
            edge.model_copy()
            for edge in view.edges
            if edge.upstream in keep and edge.downstream in keep
        ],
        title=view.title,
    )


def filter_kinds(view: GraphView, kinds: Iterable[str]) -> GraphView:
    """Return the view with only the nodes of the given kinds (and edges among them).

    Args:
        view: The view.
        kinds: Kind names, e.g. ``["model", "policy"]``.

    Returns:
        A new view.

    Raises:
        InvalidInput: One of ``kinds`` is not a kind.
    """
    wanted = set(kinds)
    unknown = sorted(wanted - set(ALL_KINDS))
    if unknown:
        raise InvalidInput(
            f"Unknown kind {unknown[0]!r}; use one of {', '.join(ALL_KINDS)}."
        )
    return _restrict(view, {node.name for node in view.nodes if node.kind in wanted})


def filter_names(view: GraphView, names: Iterable[str]) -> GraphView:
    """Return the view with only the nodes named in ``names`` (and edges among them)."""
    return _restrict(view, set(names))


def mark_impact(view: GraphView, node: str, impacted: set[str]) -> GraphView:
    """Return the view with ``node`` and ``impacted`` highlighted and the rest faded.

    Args:
        view: The view.
        node: The node whose change is being shown.
        impacted: Names of the nodes the change would mark.

    Returns:
        A new view; every node is either highlighted or faded.

    Raises:
        NodeNotFound: ``node`` is not in the view.
    """
    if all(n.name != node for n in view.nodes):
        raise NodeNotFound(node)
    lit = set(impacted) | {node}
    nodes = [
        n.model_copy(update={"highlighted": n.name in lit, "faded": n.name not in lit}, deep=True)
        for n in view.nodes
    ]
    return GraphView(nodes=nodes, edges=[e.model_copy() for e in view.edges], title=view.title)
