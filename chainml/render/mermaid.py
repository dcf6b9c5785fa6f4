"""Mermaid ``flowchart LR`` source, as GitHub and GitLab render it in Markdown.

Safety: node ids are generated (``n0``, ``n1``, ...), subgraph ids too (``c0``,
``c1``, ...); every label is a quoted string in which everything but a
conservative set of characters is written as a Mermaid entity code
(``#quot;``, ``#lt;``, ``#35;`` ...). So no raw ``"``, ``<``, ``>``, backtick,
``%`` (``%%`` starts a comment or a directive), ``#``, ``;`` or line break from
untrusted text reaches the source: a label can neither end its string, open an
HTML tag or a Markdown string, nor close the Markdown code fence. No ``click``
line (which could carry a ``javascript:`` link) is ever emitted.

Size: Mermaid's defaults refuse a flowchart with more than 500 edges
(``maxEdges``: ``parse()`` throws "Edge limit exceeded") and draw a source longer
than 50,000 characters as a red "Maximum text size in diagram exceeded" box
without any error (``maxTextSize``). Both are "secure" settings that a diagram
cannot raise for itself, so on GitHub or GitLab they are what the site configured.
So :func:`mermaid_chart` never returns more: it
leaves out whole nodes, least important last, and says so in a note node and a
``%%`` comment, and in :attr:`MermaidChart.left_out` for the caller to print.
"""

from __future__ import annotations

import string
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from chainml.render.text import STATUS_COLORS, clean, namespace, status_key
from chainml.render.view import GraphView, ViewEdge, ViewNode, drawable_edges, node_ids

__all__ = [
    "MAX_EDGES", "MAX_TEXT", "MERMAID_SHAPES", "MermaidChart", "mermaid_chart", "mermaid_text",
    "to_mermaid", "to_mermaid_block",
]

# Mermaid's own defaults (mermaid 11 and 12, config.schema.yaml), see the module docstring.
MAX_EDGES = 500
MAX_TEXT = 50_000

# (opening, closing) delimiters per kind, matching dot.SHAPES as closely as
# Mermaid allows: cylinder, box, stadium (oval), hexagon, trapezoid (house).
MERMAID_SHAPES: dict[str, tuple[str, str]] = {
    "source": ("[(", ")]"),
    "feature": ("[", "]"),
    "model": ("([", "])"),
    "policy": ("{{", "}}"),
    "consumer": ("[/", "\\]"),
}

NAME_LIMIT = 60
VERSION_LIMIT = 40
NAMESPACE_LIMIT = 60
# Characters written as they are; anything else ASCII becomes an entity code.
# Brackets, pipes, '$' (math), '*' and '_'-free Markdown are left out on purpose.
_PLAIN_ASCII = frozenset(string.ascii_letters + string.digits + " .,_-/:@+=!?'")
_NAMED = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}
# The note node's id: not n<digits> nor c<digits>, so it meets no node or subgraph.
_NOTE_ID = "left_out"


def mermaid_text(text: object, limit: int | None = None) -> str:
    """Escape untrusted text for use inside a double-quoted Mermaid label.

    Args:
        text: The text; line breaks become spaces.
        limit: Cut the text to this many characters (with an ellipsis) first.

    Returns:
        Text made of letters, digits, a few punctuation marks, non-ASCII
        characters (emoji stay readable) and Mermaid entity codes.
    """
    out: list[str] = []
    for ch in clean(text, limit):
        if ch in _PLAIN_ASCII or ord(ch) > 127:
            out.append(ch)
        else:
            out.append(_NAMED.get(ch, f"#{ord(ch)};"))
    return "".join(out)


def _node_line(node: ViewNode, node_id: str, indent: str = "    ") -> str:
    opening, closing = MERMAID_SHAPES.get(node.kind, ("[", "]"))
    label = mermaid_text(node.name, NAME_LIMIT)
    if node.version:
        # <br/> is ours, not the user's: their '<' was turned into #lt; above.
        label += "<br/>" + mermaid_text(node.version, VERSION_LIMIT)
    return f'{indent}{node_id}{opening}"{label}"{closing}'


def _title(title: str) -> str:
    """The title as a YAML front-matter value: letters, digits and plain punctuation only."""
    kept = "".join(ch if ch.isalnum() or ch in " .,_-/:()&+!?" else " " for ch in clean(title, 120))
    return '"' + " ".join(kept.split()) + '"'


def _source(view: GraphView, cluster: bool, note: str | None) -> str:
    """The whole view as Mermaid source, with ``note`` as a separate box when given."""
    lines: list[str] = []
    if view.title:
        lines += ["---", f"title: {_title(view.title)}", "---"]
    lines.append("flowchart LR")
    if note:
        lines.append(f"    %% chainml: {clean(note)}")
    ids = node_ids(view)
    by_status: dict[str, list[str]] = {}
    highlighted: list[str] = []
    faded: list[str] = []
    groups: dict[str | None, list[tuple[ViewNode, str]]] = {}
    for index, node in enumerate(view.nodes):
        node_id = f"n{index}"
        if ids[node.name] != node_id:  # duplicate name: draw it once
            continue
        groups.setdefault(namespace(node.name) if cluster else None, []).append((node, node_id))
        by_status.setdefault(status_key(node.status), []).append(node_id)
        if node.faded:
            faded.append(node_id)
        elif node.highlighted:
            highlighted.append(node_id)
    clusters: list[str] = []
    for prefix, grouped in groups.items():
        if prefix is None:
            lines.extend(_node_line(node, node_id) for node, node_id in grouped)
            continue
        # The same groups as dot.to_dot's cluster_<prefix> boxes, labelled with the prefix.
        cluster_id = f"c{len(clusters)}"
        clusters.append(cluster_id)
        lines.append(f'    subgraph {cluster_id}["{mermaid_text(prefix, NAMESPACE_LIMIT)}"]')
        lines.extend(_node_line(node, node_id, "        ") for node, node_id in grouped)
        lines.append("    end")
    if note:
        lines.append(f'    {_NOTE_ID}["{mermaid_text(note)}"]')
    for _, edge in drawable_edges(view):
        notes = (["feedback"] if edge.feedback else []) + (
            ["@" + clean(edge.pin, VERSION_LIMIT)] if edge.pin is not None else []
        )
        arrow = "-.->" if edge.feedback else "-->"
        label = f'|"{mermaid_text(" ".join(notes))}"|' if notes else ""
        lines.append(f"    {ids[edge.upstream]} {arrow}{label} {ids[edge.downstream]}")
    for status, color in STATUS_COLORS.items():
        lines.append(f"    classDef st_{status_key(status)} fill:{color},stroke:#333,color:#000")
    lines.append("    classDef hl stroke:#000,stroke-width:3px")
    lines.append("    classDef faded opacity:0.35")
    if clusters:
        lines.append("    classDef namespace fill:#FFFFFF,stroke:#9A9A9A,stroke-dasharray:5 4")
    if note:
        lines.append("    classDef note fill:#FFF,stroke:#B00020,stroke-dasharray:4 3,color:#000")
    for key, members in by_status.items():
        lines.extend(f"    class {chunk} st_{key}" for chunk in _chunks(members))
    lines.extend(f"    class {chunk} hl" for chunk in _chunks(highlighted))
    lines.extend(f"    class {chunk} faded" for chunk in _chunks(faded))
    lines.extend(f"    class {chunk} namespace" for chunk in _chunks(clusters))
    if note:
        lines.append(f"    class {_NOTE_ID} note")
    return "\n".join(lines) + "\n"


def _chunks(ids: list[str], size: int = 50) -> list[str]:
    """Comma-joined id lists of at most ``size`` ids, to keep lines short."""
    return [",".join(ids[i : i + size]) for i in range(0, len(ids), size)]


def _length(text: str) -> int:
    """Length as Mermaid measures it: JavaScript string length, UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class MermaidChart:
    """A chart that Mermaid's default limits accept, and what it had to leave out.

    Attributes:
        text: The Mermaid source.
        nodes: Nodes drawn, of ``total_nodes`` in the view.
        edges: Edges drawn, of ``total_edges`` (those between nodes of the view).
        total_nodes: Nodes in the view (each name once).
        total_edges: Edges in the view between its nodes.
        reason: Why nodes were left out (``None`` when the chart is complete), e.g.
            ``"Mermaid draws at most 500 edges"``.
    """

    text: str
    nodes: int
    edges: int
    total_nodes: int
    total_edges: int
    reason: str | None = None

    @property
    def complete(self) -> bool:
        """True when every node and edge of the view is drawn."""
        return self.reason is None

    @property
    def left_out(self) -> str:
        """What is not drawn, as a phrase: ``"38 of 60 nodes and 456 of 576 edges"``."""
        parts = [f"{self.total_nodes - self.nodes} of {self.total_nodes} nodes"]
        if self.edges < self.total_edges:
            parts.append(f"{self.total_edges - self.edges} of {self.total_edges} edges")
        return " and ".join(parts)


def _priority(view: GraphView, edges: list[ViewEdge], first: Iterable[str]) -> list[str]:
    """Node names, most worth drawing first, so that any prefix is a sensible part.

    Around ``first`` (a focus), nearest first: hops from it, ties in display order.
    Otherwise the order is made of whole lineages: each node comes after its inputs, so
    a kept node keeps where its changes come from and the paths they take. Lineages are
    taken highlighted nodes first (an ``--impact`` picture is about them, and pulls in
    only highlighted inputs), then of the nodes nothing in the view reads (their
    lineages hold the rest), in display order.
    """
    order = {name: i for i, name in enumerate(node_ids(view))}
    lit = {n.name for n in view.nodes if n.highlighted and not n.faded}
    inputs: dict[str, list[str]] = {name: [] for name in order}
    near: dict[str, list[str]] = {name: [] for name in order}
    read: set[str] = set()
    for edge in edges:
        near[edge.upstream].append(edge.downstream)
        near[edge.downstream].append(edge.upstream)
        if not edge.feedback:  # a loop back would put a source after its readers
            inputs[edge.downstream].append(edge.upstream)
            read.add(edge.upstream)
    hops: dict[str, int] = {}
    queue = deque(dict.fromkeys(name for name in first if name in order))
    for name in queue:
        hops[name] = 0
    while queue:
        name = queue.popleft()
        for other in sorted(near[name], key=order.__getitem__):
            if other not in hops:
                hops[other] = hops[name] + 1
                queue.append(other)
    far = len(order) + 1
    if hops:
        return sorted(order, key=lambda n: (n not in lit, hops.get(n, far), order[n]))
    targets = sorted(order, key=lambda n: (n not in lit, n in read, order[n]))
    ranked: list[str] = []
    visited: set[str] = set()
    for target in targets:
        if target in visited:
            continue
        only_lit = target in lit
        visited.add(target)
        # Depth-first over inputs, a node placed once all its inputs are: upstream first.
        stack = [(target, iter(inputs[target]))]
        while stack:
            name, pending = stack[-1]
            for up in pending:
                if up not in visited and (up in lit or not only_lit):
                    visited.add(up)
                    stack.append((up, iter(inputs[up])))
                    break
            else:
                stack.pop()
                ranked.append(name)
    return ranked


def mermaid_chart(view: GraphView, *, cluster: bool = False, first: Iterable[str] = (),
                  max_nodes: int | None = None, max_edges: int = MAX_EDGES,
                  max_text: int = MAX_TEXT, hint: str | None = None) -> MermaidChart:
    """Return a Mermaid chart of ``view`` that Mermaid's limits accept.

    When the whole view fits (at most ``max_nodes`` nodes, ``max_edges`` edges and
    ``max_text`` characters), the chart is all of it. Otherwise it is the largest part
    that fits, made of whole nodes (every edge between two drawn nodes is drawn) in the
    order of importance described in :func:`_priority`, plus a note box and a ``%%``
    comment saying how much is left out and why, followed by ``hint``.

    Args:
        view: What to draw.
        cluster: Group nodes into subgraphs by namespace, as ``to_dot(cluster=True)``.
        first: Names to keep before others, nearest first (e.g. a ``--focus`` node).
        max_nodes: Draw at most this many nodes (``None``: as many as fit).
        max_edges: Mermaid's ``maxEdges`` (default 500).
        max_text: Mermaid's ``maxTextSize`` in UTF-16 code units (default 50,000);
            lower it to leave room around the chart (a PR comment has 65,536).
        hint: Our words for where to see everything, appended to the note, e.g.
            ``"chainml graph --format html draws all of it."``

    Returns:
        The chart and what it leaves out.
    """
    names = list(node_ids(view))
    edges = drawable_edges(view)
    # A node costs more than 10 characters (its line, its class): a bound that spares
    # writing out a chain of 100,000 nodes only to measure it.
    if ((max_nodes is None or len(names) <= max_nodes) and len(edges) <= max_edges
            and len(names) <= max_text // 10):
        whole = _source(view, cluster, None)
        if _length(whole) <= max_text:
            return MermaidChart(whole, len(names), len(edges), len(names), len(edges))

    ranked = _priority(view, [e for _, e in edges], first)
    position = {name: i for i, name in enumerate(ranked)}
    # needs[k]: how many edges a prefix of k + 1 nodes draws, minus the previous prefix's.
    needs = [0] * (len(ranked) + 1)
    for _, edge in edges:
        needs[max(position[edge.upstream], position[edge.downstream]) + 1] += 1
    by_edges, drawn = 0, 0
    while by_edges < len(ranked) and drawn + needs[by_edges + 1] <= max_edges:
        by_edges += 1
        drawn += needs[by_edges]
    by_nodes = len(ranked) if max_nodes is None else min(max_nodes, len(ranked))
    upper = min(by_edges, by_nodes, max_text // 10)

    def chart(keep: int, reason: str) -> MermaidChart:
        kept = set(ranked[:keep])
        part = GraphView(nodes=[n for n in view.nodes if n.name in kept],
                         edges=[e for _, e in edges if e.upstream in kept
                                and e.downstream in kept], title=view.title)
        shown = sum(needs[1 : keep + 1])
        draft = MermaidChart("", keep, shown, len(names), len(edges), reason)
        note = f"Not drawn: {draft.left_out}, as {reason}." + (f" {hint}" if hint else "")
        return MermaidChart(_source(part, cluster, note), keep, shown, len(names),
                            len(edges), reason)

    if max_nodes is not None and upper == by_nodes < len(ranked):
        reason = f"more than {max_nodes} nodes do not make a readable chart"
    elif upper == by_edges < len(ranked):
        reason = f"Mermaid draws at most {max_edges} edges"
    else:
        reason = ""
    if reason:
        best = chart(upper, reason)
        if _length(best.text) <= max_text:
            return best
    reason = f"Mermaid draws at most {max_text:,} characters of source"
    low, high = 0, upper  # the largest prefix whose chart fits; the note alone always does
    while low < high:
        mid = (low + high + 1) // 2
        if _length(chart(mid, reason).text) <= max_text:
            low = mid
        else:
            high = mid - 1
    return chart(low, reason)


def to_mermaid(view: GraphView, cluster: bool = False) -> str:
    """Return Mermaid ``flowchart LR`` source for ``view``, within Mermaid's limits.

    Shapes follow :data:`MERMAID_SHAPES`; each status is a ``classDef`` with the
    same fill as the DOT picture (``st_none`` for nodes that need no tests);
    highlighted nodes get class ``hl`` and faded ones ``faded``. Feedback edges
    are dotted (``-.->``) and labelled ``feedback``, pinned edges labelled ``@pin``.
    A view too big for Mermaid is drawn in part, with a note: see :func:`mermaid_chart`.

    Args:
        view: What to draw.
        cluster: Group nodes into ``subgraph`` boxes by namespace, as the DOT picture.

    Returns:
        Mermaid source text, ending with a newline.
    """
    return mermaid_chart(view, cluster=cluster).text


def to_mermaid_block(view: GraphView, cluster: bool = False) -> str:
    """Return :func:`to_mermaid` fenced as a Markdown ```` ```mermaid ```` block.

    Args:
        view: What to draw.
        cluster: Group nodes by namespace.

    Returns:
        The fenced block, ending with a newline.
    """
    return "```mermaid\n" + to_mermaid(view, cluster) + "```\n"
