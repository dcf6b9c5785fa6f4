"""Mermaid ``flowchart LR`` source, as GitHub and GitLab render it in Markdown.

Safety: node ids are generated (``n0``, ``n1``, ...); every label is a quoted
string in which everything but a conservative set of characters is written as
a Mermaid entity code (``#quot;``, ``#lt;``, ``#35;`` ...). So no raw ``"``,
``<``, ``>``, backtick, ``%`` (``%%`` starts a comment or a directive),
``#``, ``;`` or line break from untrusted text reaches the source: a label can
neither end its string, open an HTML tag or a Markdown string, nor close the
Markdown code fence. No ``click`` line (which could carry a ``javascript:``
link) is ever emitted.

GitHub refuses diagrams larger than about 50,000 characters or 500 edges: for a
big chain, draw a part of it (:func:`chainml.render.view.focus`).
"""

from __future__ import annotations

import string

from chainml.render.text import STATUS_COLORS, clean, status_key
from chainml.render.view import GraphView, ViewNode, drawable_edges, node_ids

__all__ = ["MERMAID_SHAPES", "mermaid_text", "to_mermaid", "to_mermaid_block"]

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
# Characters written as they are; anything else ASCII becomes an entity code.
# Brackets, pipes, '$' (math), '*' and '_'-free Markdown are left out on purpose.
_PLAIN_ASCII = frozenset(string.ascii_letters + string.digits + " .,_-/:@+=!?'")
_NAMED = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}


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


def _node_line(node: ViewNode, node_id: str) -> str:
    opening, closing = MERMAID_SHAPES.get(node.kind, ("[", "]"))
    label = mermaid_text(node.name, NAME_LIMIT)
    if node.version:
        # <br/> is ours, not the user's: their '<' was turned into #lt; above.
        label += "<br/>" + mermaid_text(node.version, VERSION_LIMIT)
    return f'    {node_id}{opening}"{label}"{closing}'


def _title(title: str) -> str:
    """The title as a YAML front-matter value: letters, digits and plain punctuation only."""
    kept = "".join(ch if ch.isalnum() or ch in " .,_-/:()&+!?" else " " for ch in clean(title, 120))
    return '"' + " ".join(kept.split()) + '"'


def to_mermaid(view: GraphView) -> str:
    """Return Mermaid ``flowchart LR`` source for ``view``.

    Shapes follow :data:`MERMAID_SHAPES`; each status is a ``classDef`` with the
    same fill as the DOT picture (``st_none`` for nodes that need no tests);
    highlighted nodes get class ``hl`` and faded ones ``faded``. Feedback edges
    are dotted (``-.->``) and labelled ``feedback``, pinned edges labelled ``@pin``.

    Args:
        view: What to draw.

    Returns:
        Mermaid source text, ending with a newline.
    """
    lines: list[str] = []
    if view.title:
        lines += ["---", f"title: {_title(view.title)}", "---"]
    lines.append("flowchart LR")
    ids = node_ids(view)
    by_status: dict[str, list[str]] = {}
    highlighted: list[str] = []
    faded: list[str] = []
    for index, node in enumerate(view.nodes):
        node_id = f"n{index}"
        if ids[node.name] != node_id:  # duplicate name: draw it once
            continue
        lines.append(_node_line(node, node_id))
        by_status.setdefault(status_key(node.status), []).append(node_id)
        if node.faded:
            faded.append(node_id)
        elif node.highlighted:
            highlighted.append(node_id)
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
    for key, members in by_status.items():
        lines.extend(f"    class {chunk} st_{key}" for chunk in _chunks(members))
    lines.extend(f"    class {chunk} hl" for chunk in _chunks(highlighted))
    lines.extend(f"    class {chunk} faded" for chunk in _chunks(faded))
    return "\n".join(lines) + "\n"


def _chunks(ids: list[str], size: int = 50) -> list[str]:
    """Comma-joined id lists of at most ``size`` ids, to keep lines short."""
    return [",".join(ids[i : i + size]) for i in range(0, len(ids), size)]


def to_mermaid_block(view: GraphView) -> str:
    """Return :func:`to_mermaid` fenced as a Markdown ```` ```mermaid ```` block.

    Args:
        view: What to draw.

    Returns:
        The fenced block, ending with a newline.
    """
    return "```mermaid\n" + to_mermaid(view) + "```\n"
