"""One self-contained HTML page: the graph (inline SVG), a legend and a status table.

The page loads nothing from anywhere: no external script, font, style sheet or
image. Its Content-Security-Policy allows only the one inline script and the one
inline style sheet, by hash, so even text that slipped through escaping could
not run. Untrusted text reaches the page in two ways only:

* escaped with :func:`html.escape` in the table and headings;
* as JSON inside ``<script type="application/json">`` with ``<``, ``>``, ``&``
  and U+2028/U+2029 written as ``\\uXXXX`` (so ``</script>`` cannot end the
  block), which the script shows with ``textContent`` only, never ``innerHTML``.

The SVG is passed through :func:`chainml.render.svgsafe.sanitize_svg`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from typing import Any

from chainml.render.assets import PAGE_CSS, PAGE_JS
from chainml.render.dot import SHAPES
from chainml.render.svgsafe import sanitize_svg
from chainml.render.text import KIND_ORDER, STATUS_COLORS, STATUS_LABELS, clean, status_key
from chainml.render.view import GraphView, ViewNode, node_ids

__all__ = ["json_for_script", "to_html"]

REASON_LIMIT = 400  # characters of a reason in the table (the details panel has it all)
TEXT_LIMIT = 20_000  # characters of any one text in the embedded data

_SCRIPT = PAGE_JS
_STATUS_CSS = "".join(
    f".st-{status_key(s)}{{background:{color}}}\n" for s, color in STATUS_COLORS.items()
)
_STYLE = PAGE_CSS + _STATUS_CSS

# Small pictures of the DOT shapes for the legend (our own markup, no user text).
_SHAPE_ICONS: dict[str, str] = {
    "cylinder": '<path d="M3 6 C3 2 29 2 29 6 L29 18 C29 22 3 22 3 18 Z M3 6 C3 10 29 10 29 6"/>',
    "box": '<rect x="3" y="4" width="26" height="16"/>',
    "ellipse": '<ellipse cx="16" cy="12" rx="13" ry="8"/>',
    "hexagon": '<polygon points="3,12 9,3 23,3 29,12 23,21 9,21"/>',
    "house": '<polygon points="3,9 16,3 29,9 29,21 3,21"/>',
}


def _csp_hash(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


CSP = "; ".join([
    "default-src 'none'",
    f"script-src {_csp_hash(_SCRIPT)}",
    f"style-src {_csp_hash(_STYLE)}",
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
])


def json_for_script(data: Any) -> str:
    """Return ``data`` as JSON that is safe inside an HTML ``<script>`` element.

    Args:
        data: JSON-serialisable data (other objects are ``str()``-ed).

    Returns:
        ASCII JSON in which ``<``, ``>``, ``&``, U+2028 and U+2029 are ``\\uXXXX``
        escapes, so no ``</script>`` or ``<!--`` can appear in it.
    """
    text = json.dumps(data, ensure_ascii=True, default=str, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    )


def _t(text: object, limit: int = TEXT_LIMIT) -> str:
    return clean(text, limit, keep_newlines=True)


def _node_data(node: ViewNode, node_id: str) -> dict[str, Any]:
    """What the details panel shows for one node, cleaned (bidi overrides, controls)."""
    meta = json.dumps(node.meta, ensure_ascii=False, default=str, indent=2) if node.meta else ""
    return {
        "id": node_id,
        "name": _t(node.name, 300),
        "kind": _t(node.kind, 40),
        "version": _t(node.version, 200) if node.version is not None else None,
        "status": STATUS_LABELS.get(node.status, "unknown"),
        "statusKey": status_key(node.status),
        "owner": _t(node.owner) if node.owner else None,
        "description": _t(node.description) if node.description else None,
        "tags": [_t(tag, 200) for tag in node.tags[:200]],
        "meta": _t(meta),
        "versions": [_t(v, 200) for v in node.versions[-500:]],
        "inputs": [_t(spec, 400) for spec in node.inputs],
        "consumers": [_t(name, 300) for name in node.consumers],
        "reasons": [_t(reason) for reason in node.reasons[:500]],
    }


def _legend() -> str:
    kinds = "".join(
        f'<li><svg class="icon" viewBox="0 0 32 24" aria-hidden="true">'
        f"{_SHAPE_ICONS[SHAPES[kind]]}</svg>{kind}</li>"
        for kind in KIND_ORDER
    )
    statuses = "".join(
        f'<li><span class="swatch st-{status_key(s)}"></span>{html.escape(label)}</li>'
        for s, label in STATUS_LABELS.items()
    )
    return (
        '<section id="legend" aria-label="Legend"><h2>Legend</h2>'
        f'<ul class="legend-list">{kinds}</ul><ul class="legend-list">{statuses}</ul>'
        '<ul class="legend-list"><li><span class="edge solid"></span>input</li>'
        '<li><span class="edge dashed"></span>feedback (not followed by impact)</li>'
        "<li><span class=\"edge solid\"></span>@v: input pinned to version v</li></ul>"
        "</section>"
    )


def _row(node: ViewNode, node_id: str) -> str:
    esc = html.escape
    reasons = "".join(f"<li>{esc(clean(r, REASON_LIMIT))}</li>" for r in node.reasons[:20])
    if len(node.reasons) > 20:
        reasons += f"<li>\u2026 and {len(node.reasons) - 20} more</li>"
    key = status_key(node.status)
    word = esc(STATUS_LABELS.get(node.status, "unknown"))
    return (
        f'<tr data-id="{node_id}" tabindex="0">'
        f'<td class="name">{esc(clean(node.name, 200))}</td>'
        f'<td class="kind">{esc(clean(node.kind, 40))}</td>'
        f'<td class="version">{esc(clean(node.version or chr(0x2014), 100))}</td>'
        f'<td class="status"><span class="badge st-{key}">{word}</span></td>'
        f"<td><ul class=\"reasons\">{reasons}</ul></td></tr>"
    )


def _summary(nodes: list[ViewNode]) -> str:
    counts: dict[str | None, int] = {}
    for node in nodes:
        counts[node.status] = counts.get(node.status, 0) + 1
    parts = [f"{counts[s]} {STATUS_LABELS[s]}" for s in STATUS_LABELS if counts.get(s)]
    noun = "node" if len(nodes) == 1 else "nodes"
    return f"{len(nodes)} {noun}" + (": " + ", ".join(parts) if parts else "")


def to_html(view: GraphView, svg: str | bytes | None = None) -> str:
    """Return one self-contained HTML page for ``view``.

    Args:
        view: What to show; node ids are those of
            :func:`~chainml.render.view.node_ids`.
        svg: ``dot -Tsvg`` output of :func:`chainml.render.dot.to_dot` for the same
            view (ideally with ``legend=False``: the page has its own legend), or
            ``None`` when ``dot`` is not available: the page then shows the legend
            and the status table only.

    Returns:
        The page, UTF-8 text.

    Raises:
        UnsafeSvg: ``svg`` is not a well-formed SVG document.
    """
    esc = html.escape
    ids = node_ids(view)
    nodes = [n for i, n in enumerate(view.nodes) if ids[n.name] == f"n{i}"]
    title = clean(view.title or "chainml graph", 200)
    data = {
        "nodes": {ids[n.name]: _node_data(n, ids[n.name]) for n in nodes},
        "byName": {n.name: ids[n.name] for n in nodes},
    }
    if svg is not None:
        graph = (
            '<section id="graph" class="graph fit" aria-label="Graph">'
            f"{sanitize_svg(svg)}</section>"
        )
        tools = (
            '<p class="tools"><button type="button" id="zoom">Actual size</button> '
            "Hover or click a node to see its details.</p>"
        )
    else:
        graph = (
            '<section id="graph" class="graph missing"><p>The graph is not drawn: Graphviz\'s '
            "<code>dot</code> was not installed where this page was made (install it with "
            "<code>apt-get install graphviz</code> or <code>brew install graphviz</code> and "
            "make the page again). The table lists every node; click a row for details.</p>"
            "</section>"
        )
        tools = ""
    rows = "".join(_row(n, ids[n.name]) for n in nodes)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="chainml">
<title>{esc(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header><h1>{esc(title)}</h1><p class="summary">{esc(_summary(nodes))}</p>{tools}</header>
<main class="layout">
{graph}
<aside id="details" aria-live="polite"><h2>Details</h2>
<div id="details-body"><p class="hint">Hover or click a node (or a table row) to see its
versions, inputs, consumers, open reasons, owner and description.</p></div></aside>
{_legend()}
<section id="status" aria-label="Status"><h2>Status</h2>
<table id="status-table"><thead><tr><th>Name</th><th>Kind</th><th>Version</th><th>Status</th>
<th>Reasons</th></tr></thead><tbody>{rows}</tbody></table></section>
</main>
<script type="application/json" id="chain-data">{json_for_script(data)}</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
