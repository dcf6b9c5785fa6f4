"""Graphviz DOT source for a :class:`~chainml.render.view.GraphView`.

Safety (names and descriptions are untrusted, see DESIGN.md "Bad input"):

* Node ids in the DOT are generated (``n0``, ``n1``, ...), never names: a name
  such as ``s3://lake/events`` would otherwise be read as ``node:port``.
* Every piece of text goes through :func:`dot_text`, which returns a
  ``graphviz.quoting.NoHtml`` string: the ``graphviz`` package passes a string of
  the form ``<...>`` through as an HTML-like label, which breaks the render and,
  with ``<IMG SRC="/etc/passwd">``, makes ``dot`` read a local file. Backslashes
  are doubled so ``\\N``, ``\\G``, ``\\l`` stay literal, quotes are escaped, ``&``
  becomes ``&amp;`` (``dot`` decodes entities in labels) and control characters,
  bidi overrides and surplus length are removed by :func:`~chainml.render.text.clean`.
* No ``URL``/``image`` attribute is ever emitted, and an ``href`` only when the
  caller passes ``links``: each must be a path on the same site (``/lineage/x%2Fy``),
  checked against :data:`~chainml.render.text.LINK_RE`, so a link never leaves the
  page's host nor runs a script.
* The one HTML-like label is the legend's table (:func:`_legend_table`), built from
  chainml's own words and colours only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import graphviz  # type: ignore[import-untyped, unused-ignore]
from graphviz.quoting import nohtml  # type: ignore[import-untyped, unused-ignore]

from chainml.render.text import (
    KIND_ORDER,
    LINK_RE,
    STATUS_COLORS,
    STATUS_LABELS,
    clean,
    namespace,
    status_key,
)
from chainml.render.view import GraphView, ViewNode, drawable_edges, node_ids

__all__ = ["SHAPES", "STATUS_COLORS", "STATUS_LABELS", "dot_text", "to_dot"]

# One Graphviz shape per kind, chosen to be told apart at a glance (and to match
# the Mermaid shapes in mermaid.py): data at rest is a drum, a derivation a
# plain box, a trained model an oval, a rule layer a hexagon, and an
# application the "house" at the end of the flow.
SHAPES: dict[str, str] = {
    "source": "cylinder",
    "feature": "box",
    "model": "ellipse",
    "policy": "hexagon",
    "consumer": "house",
}

FONT = "Helvetica,Arial,sans-serif"
NAME_LIMIT = 48  # characters of a name shown in a node label (the tooltip has it all)
VERSION_LIMIT = 28
TOOLTIP_LIMIT = 400
INK = "#333333"
FADED_INK = "#B8B8B8"
HIGHLIGHT_INK = "#000000"
FEEDBACK_INK = "#7A5195"
FADED_ALPHA = "59"  # ~35 % opacity, appended to a fill colour as #RRGGBBAA

_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "&": "&amp;"})


def dot_text(text: object, limit: int | None = None) -> str:
    """Escape untrusted text for a DOT double-quoted string (label, tooltip, ...).

    Args:
        text: The text; newlines become spaces.
        limit: Cut the text to this many characters (with an ellipsis).

    Returns:
        A ``NoHtml`` string that ``graphviz`` quotes as a plain string, never as an
        HTML-like label, and in which ``dot`` interprets no escape sequence.
    """
    escaped: str = nohtml(clean(text, limit).translate(_ESCAPES))
    return escaped


def _lines(*parts: str) -> str:
    """Join already escaped parts with DOT's centred line break ``\\n``."""
    joined: str = nohtml("\\n".join(parts))
    return joined


def _tooltip(node: ViewNode) -> str:
    head = [
        dot_text(node.name, 200),
        dot_text(f"{node.kind} {node.version or '(no version)'}", 140),
        dot_text(f"status: {STATUS_LABELS.get(node.status, 'unknown')}"),
    ]
    if node.owner:
        head.append(dot_text(f"owner: {node.owner}", 120))
    if node.description:
        head.append(dot_text(node.description, TOOLTIP_LIMIT))
    return _lines(*head)


def _link(href: str) -> dict[str, str]:
    """The attributes that make a node a link to ``href``, a same-site path."""
    if LINK_RE.fullmatch(href) is None:
        raise ValueError(f"a node link must be a percent-encoded path on this site, not "
                         f"{href[:80]!r}")
    # '&' as '&amp;': dot copies an href into the SVG as it is, and a bare '&' there
    # would make the SVG unreadable as XML.
    return {"href": nohtml(href.replace("&", "&amp;")), "target": "_top"}


def _node_attrs(node: ViewNode, node_id: str, href: str | None = None) -> dict[str, str]:
    fill = STATUS_COLORS.get(node.status, STATUS_COLORS[None])
    attrs = {
        "id": node_id,
        "class": f"kind-{node.kind if node.kind in SHAPES else 'unknown'} "
        f"status-{status_key(node.status)}",
        "shape": SHAPES.get(node.kind, "box"),
        "label": _lines(
            dot_text(node.name, NAME_LIMIT), dot_text(node.version or "\u2014", VERSION_LIMIT)
        ),
        "tooltip": _tooltip(node),
        "fillcolor": fill,
    }
    if node.faded:
        attrs.update(fillcolor=fill + FADED_ALPHA, color=FADED_INK, fontcolor="#9A9A9A")
    elif node.highlighted:
        attrs.update(color=HIGHLIGHT_INK, penwidth="3", style="filled,bold")
    if href is not None:
        attrs.update(_link(href))
    return attrs


def _cluster_names(prefixes: list[str]) -> dict[str, str]:
    """Subgraph name per namespace: ``cluster_<prefix>`` reduced to ``[A-Za-z0-9_]``.

    The name shows up in an SVG comment and in ``<title>``, where ``--`` would end
    the comment, hence the reduction; the readable prefix is the cluster label.
    """
    names: dict[str, str] = {}
    used: set[str] = set()
    for prefix in prefixes:
        base = "cluster_" + (re.sub(r"[^A-Za-z0-9_]", "_", prefix)[:60] or "_")
        name, n = base, 1
        while name in used:
            n += 1
            name = f"{base}_{n}"
        used.add(name)
        names[prefix] = name
    return names


LEGEND_ROWS = 3  # kinds per legend column


def _legend_table(view: GraphView) -> str | None:
    """The statuses and edge styles of ``view`` as one HTML-like table, or None.

    The only HTML-like label chainml emits: it holds our own words and colours, never
    text from the registry. One node rather than a node per sample, because each rank a
    legend spans is as wide as the chain's own nodes in it: with a node per sample the
    legend of a three-node chain was twice the chain's width.
    """
    shown = {node.status for node in view.nodes}
    statuses = [
        f'<TD ID="legend_status_{status_key(status)}" BGCOLOR="{STATUS_COLORS[status]}" '
        f'STYLE="rounded" BORDER="1" COLOR="{INK}">{STATUS_LABELS[status]}</TD>'
        for status in STATUS_COLORS if status in shown
    ]
    edges = [edge for _, edge in drawable_edges(view)]
    samples: list[tuple[str, str, str]] = []
    if any(e.feedback for e in edges):
        samples.append(("feedback", f'STYLE="dashed" COLOR="{FEEDBACK_INK}"', ""))
    if any(e.pin is not None for e in edges):
        samples.append(("pinned", 'COLOR="#555555"', '<FONT POINT-SIZE="8">@v3</FONT>'))
    if samples:  # a plain arrow needs no explaining unless there is another style to tell
        samples.insert(0, ("input", 'COLOR="#555555"', ""))
    lines = [
        f'<TD ALIGN="RIGHT">{name}</TD><TD ID="legend_edge_{name}" SIDES="B" BORDER="1" '
        f'{style} WIDTH="36" VALIGN="BOTTOM">{label}</TD>'
        for name, style, label in samples
    ]
    # Two statuses to a row only when one column would be taller than the kinds beside it.
    wide = 2 if len(statuses) > LEGEND_ROWS else 1
    pairs = [statuses[i:i + wide] for i in range(0, len(statuses), wide)]
    rows = []
    for i in range(max(len(pairs), len(lines))):
        pair = pairs[i] if i < len(pairs) else []
        cells = "".join(pair) + "<TD></TD>" * (wide - len(pair))
        if lines:
            cells += "<TD WIDTH=\"6\"></TD>" + (lines[i] if i < len(lines) else "<TD></TD>" * 2)
        rows.append(f"<TR>{cells}</TR>")
    if not rows:
        return None
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="2">'
            f'{"".join(rows)}</TABLE>>')


def _legend(graph: graphviz.Digraph, view: GraphView) -> None:
    """Add ``cluster_legend`` for what ``view`` shows: its kinds, statuses and edge
    styles, so the legend of a small chain stays small."""
    kinds = [k for k in KIND_ORDER if k in {node.kind for node in view.nodes}]
    table = _legend_table(view)
    if not kinds and table is None:
        return
    with graph.subgraph(name="cluster_legend") as legend:
        legend.attr(
            label="Legend", style="rounded", color="#AAAAAA", fontcolor="#555555",
            fontsize="10", margin="6", **{"class": "legend"},
        )
        legend.attr("node", fontsize="9", width="0", height="0", margin="0.06,0.02")
        # Columns of a few kinds each: a column is one rank, stacked as high as it is long.
        columns = [kinds[i:i + LEGEND_ROWS] for i in range(0, len(kinds), LEGEND_ROWS)]
        ids = [[f"legend_kind_{kind}" for kind in column] for column in columns]
        for n, column in enumerate(columns):
            with legend.subgraph(name=f"legend_kinds_{n}") as col:
                col.attr(rank="same")
                for kind, node_id in zip(column, ids[n], strict=True):
                    col.node(node_id, label=kind, shape=SHAPES[kind], style="filled",
                             fillcolor="#FFFFFF", id=node_id)
        # Invisible edges put each column, then the table, one rank to the right, row by row.
        for left, right in zip(ids, ids[1:], strict=False):
            for a, b in zip(left, right, strict=False):
                legend.edge(a, b, style="invis")
        if table is not None:
            legend.node("legend_table", label=table, shape="plain", style="solid",
                        id="legend_table")
            if ids:
                legend.edge(ids[-1][0], "legend_table", style="invis")


def to_dot(view: GraphView, cluster: bool = False, *, legend: bool = True,
           links: Mapping[str, str] | None = None) -> str:
    """Return Graphviz DOT source for ``view``, laid out left to right.

    Shapes follow :data:`SHAPES`, fills :data:`STATUS_COLORS`; each node is labelled
    with its name and current version and carries ``id="n<index>"`` (see
    :func:`~chainml.render.view.node_ids`), which the HTML page uses to find it in
    the SVG. Feedback edges are dashed, pinned edges labelled ``@pin``.

    Args:
        view: What to draw.
        cluster: Group nodes into ``cluster_<prefix>`` boxes by namespace (the text
            before the first ``/``, or scheme and host of a URI).
        legend: Add the ``cluster_legend`` box explaining shapes and colours.
        links: Node name -> a path on the same site (``/lineage/embed?depth=2``) the
            node links to in SVG output (the web UI's click to refocus); nodes not in
            it, and every node without it, link nowhere.

    Returns:
        DOT source text.

    Raises:
        ValueError: A link is not a percent-encoded path on the same site.
    """
    ids = node_ids(view)
    big = len(view.nodes) > 500
    graph = graphviz.Digraph(
        name="chainml",
        graph_attr={
            "rankdir": "LR", "fontname": FONT, "fontsize": "12", "bgcolor": "white",
            "nodesep": "0.25", "ranksep": "0.6", "pad": "0.2",
            "tooltip": dot_text(view.title or "chainml", 200),
            # Straight-line routing keeps thousands of edges tractable for dot.
            **({"splines": "polyline", "nslimit": "4", "mclimit": "0.5"} if big else {}),
        },
        node_attr={
            "fontname": FONT, "fontsize": "11", "style": "filled", "color": INK,
            "penwidth": "1.2", "margin": "0.12,0.05", "height": "0.45",
        },
        edge_attr={"fontname": FONT, "fontsize": "9", "color": "#555555", "arrowsize": "0.7"},
    )
    if view.title:
        graph.attr(label=dot_text(view.title, 120), labelloc="t", fontsize="16")
    if legend:
        _legend(graph, view)

    groups: dict[str | None, list[ViewNode]] = {}
    seen: set[str] = set()
    for node in view.nodes:
        if node.name in seen:  # a duplicate name would get a second box with the same id
            continue
        seen.add(node.name)
        groups.setdefault(namespace(node.name) if cluster else None, []).append(node)
    clusters = _cluster_names([p for p in groups if p is not None])
    for prefix, members in groups.items():
        if prefix is None:
            for node in members:
                graph.node(ids[node.name], _attributes=_node_attrs(
                    node, ids[node.name], links.get(node.name) if links else None))
            continue
        with graph.subgraph(name=clusters[prefix]) as sub:
            sub.attr(label=dot_text(prefix, 60), style="rounded,dashed", color="#9A9A9A",
                     fontcolor="#555555", fontsize="12", margin="10",
                     **{"class": "namespace"})
            for node in members:
                sub.node(ids[node.name], _attributes=_node_attrs(
                    node, ids[node.name], links.get(node.name) if links else None))

    by_name = {node.name: node for node in view.nodes}
    for index, edge in drawable_edges(view):
        up, down = by_name[edge.upstream], by_name[edge.downstream]
        attrs: dict[str, str] = {
            "id": f"e{index}",
            "tooltip": dot_text(f"{edge.upstream} -> {edge.downstream}", 420),
        }
        label = []
        if edge.feedback:
            # constraint=false: a loop back to a source must not drag it to the right.
            attrs.update(style="dashed", constraint="false", color=FEEDBACK_INK)
            label.append("feedback")
        if edge.pin is not None:
            label.append("@" + clean(edge.pin, VERSION_LIMIT))
        if label:
            attrs["label"] = dot_text(" ".join(label))
        if up.faded or down.faded:
            attrs.update(color=FADED_INK, fontcolor=FADED_INK)
        elif up.highlighted and down.highlighted:
            attrs.update(color=HIGHLIGHT_INK, penwidth="2")
        graph.edge(ids[edge.upstream], ids[edge.downstream], _attributes=attrs)
    return str(graph.source)
