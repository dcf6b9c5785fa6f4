"""Make an SVG from ``dot`` safe to inline into an HTML page.

``dot`` escapes the text it writes, and :mod:`chainml.render.dot` never emits
links or images; this is the second lock, applied to whatever SVG the page is
given: only the drawing elements ``dot`` produces are kept, and every event
handler (``on*``), link (``href``, ``xlink:href``), ``src`` and ``style``
attribute is dropped, as is any attribute value but a tooltip (``title``)
naming a ``javascript:`` or ``data:`` URL. Comments, the XML prolog and the DOCTYPE go too.
With ``links=True`` (the web UI's lineage view) a link survives when it is a path on the
same site (:data:`~chainml.render.text.LINK_RE`), with its ``target``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from chainml.errors import InvalidInput
from chainml.names import NOT_XML
from chainml.render.text import LINK_RE

__all__ = ["UnsafeSvg", "sanitize_svg"]

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

_ALLOWED = frozenset({
    "svg", "g", "title", "desc", "polygon", "polyline", "path", "ellipse", "circle",
    "rect", "line", "text", "tspan", "a", "defs", "linearGradient", "radialGradient", "stop",
})
_DROPPED_ATTRS = frozenset({"href", "src", "style", "srcdoc", "formaction", "action"})
_PROLOG = re.compile(r"\A\s*(<\?xml[^>]*\?>)?\s*", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!DOCTYPE[^>\[]*>", re.IGNORECASE)
_URL_SCHEME = re.compile(r"(javascript|vbscript|data)\s*:", re.IGNORECASE)


class UnsafeSvg(InvalidInput):
    """The SVG could not be read, or is not an SVG."""


def _split(tag: str) -> tuple[str, str]:
    """``{ns}local`` -> (ns, local)."""
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return "", tag


def _kept_link(local: str, name: str, value: str) -> bool:
    """With links on: an ``<a>``'s same-site href, or its target (_top only)."""
    if local != "a":
        return False
    if name == "href":
        return LINK_RE.fullmatch(value) is not None
    return name == "target" and value == "_top"


def _clean(element: ET.Element, links: bool = False) -> None:
    for child in list(element):
        ns, local = _split(child.tag) if isinstance(child.tag, str) else ("", "")
        if ns != SVG_NS or local not in _ALLOWED:
            element.remove(child)
            continue
        _clean(child, links)
    ns, local = _split(element.tag)
    element.tag = local  # re-namespaced by the root's xmlns on output
    for key in list(element.attrib):
        value = element.attrib.pop(key)
        ans, name = _split(key)
        if links and _kept_link(local, name, value):
            pass
        elif (name.lower().startswith("on") or name.lower() in _DROPPED_ATTRS
              or (links and name == "target")):
            continue
        if name != "title" and _URL_SCHEME.search("".join(value.split())):
            continue  # a title is text (a tooltip), never followed as a URL
        if ans == XLINK_NS:
            element.set(f"xlink:{name}", value)
        elif ans == "":
            element.set(name, value)
        # Attributes in any other namespace are dropped.


def sanitize_svg(svg: str | bytes, *, links: bool = False) -> str:
    """Return ``svg`` reduced to plain drawing elements, ready to inline into HTML.

    Args:
        svg: An SVG document, e.g. ``dot -Tsvg`` output.
        links: Keep the links of ``<a>`` elements that are paths on the same site
            (and ``target="_top"``); any other link is dropped all the same.

    Returns:
        The ``<svg>`` element as text (no prolog), with namespaces declared on it.

    Raises:
        UnsafeSvg: The input is not well-formed XML, declares entities, or its root
            is not an SVG element.
    """
    text = svg.decode("utf-8", "replace") if isinstance(svg, bytes) else svg
    if "<!ENTITY" in text.upper():
        # An entity declaration is how "billion laughs" XML bombs start; dot writes none.
        raise UnsafeSvg("The SVG declares XML entities, which a graph never needs.")
    text = _DOCTYPE.sub("", _PROLOG.sub("", text, count=1), count=1)
    # dot copies label text through; a character XML 1.0 forbids (from a registry
    # written before registration refused them) would make the whole page fail.
    text = NOT_XML.sub("\ufffd", text)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise UnsafeSvg(f"The SVG is not well-formed XML ({exc}).") from exc
    if _split(root.tag) != (SVG_NS, "svg"):
        raise UnsafeSvg("The document is not an SVG image (its root is not <svg>).")
    _clean(root, links)
    root.set("xmlns", SVG_NS)
    root.set("xmlns:xlink", XLINK_NS)
    return ET.tostring(root, encoding="unicode")
