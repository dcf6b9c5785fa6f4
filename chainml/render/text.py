"""Text helpers shared by the renderers: cleaning untrusted text, namespaces, palette.

Every renderer escapes for its own output language; what they share is the first
step, :func:`clean`, which removes what no output should carry whatever its
escaping: control characters (a NUL or ESC breaks ``dot`` and terminals), bidi
overrides (U+202E makes ``gpj.exe`` read as ``exe.jpg``), lone surrogates (they
cannot be encoded as UTF-8, so ``dot`` and the file writer would crash), U+FFFE
and U+FFFF (XML 1.0 forbids them: no parser opens an SVG holding one) and
unbounded length (a 10k-character description would make a node 10k wide).
"""

from __future__ import annotations

import re
import unicodedata

# Bidirectional formatting characters: embeddings, overrides, isolates and marks.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Characters some parsers treat as line breaks although they are not ASCII ones.
_LINE_BREAKS = frozenset("\n\r\t\v\f\x85\u2028\u2029")

ELLIPSIS = "\u2026"

# Fill colour per status: tints of the Okabe-Ito palette, which stays distinguishable
# under the common colour-vision deficiencies; every tint keeps black text readable
# (contrast ratio above 7). ``None`` is a node that needs no tests.
STATUS_COLORS: dict[str | None, str] = {
    "verified": "#7FCFB4",
    "untested": "#F4EB8A",
    "needs_retest": "#F5B94A",
    "failed": "#EC8A6E",
    "waived": "#9CCFF0",
    "stale": "#D9AED0",
    # Environment statuses (graph --env): skew is the serving side of needs_retest, so
    # a deeper tint of its orange; an input the environment lacks is grey, like absence.
    "skewed": "#F2A35C",
    "missing_input": "#C8C8C8",
    None: "#F2F2F2",
}

# Words the legends use; "none" is how a status of ``None`` is spelt in ids and classes.
STATUS_LABELS: dict[str | None, str] = {
    "verified": "verified",
    "untested": "untested",
    "needs_retest": "needs retest",
    "failed": "failed",
    "waived": "waived",
    "stale": "stale",
    "skewed": "skewed",
    "missing_input": "missing input",
    None: "no tests needed",
}

# A path on the same site, percent-encoded, with an optional query: the only links a
# drawing may carry (the web UI's nodes link to their lineage pages). No scheme, no
# host ('//' is refused), so a link cannot leave the page's host or run a script.
LINK_RE = re.compile(r"/(?!/)[A-Za-z0-9_\-./%~]*(\?[A-Za-z0-9_\-./%~=&]*)?")

KIND_ORDER: tuple[str, ...] = ("source", "feature", "model", "policy", "consumer")


def status_key(status: str | None) -> str:
    """Return the CSS/id-safe token for a status (``None`` becomes ``"none"``).

    Args:
        status: A status name or ``None``.

    Returns:
        The status when it is a known one, ``"none"`` for ``None`` and ``"unknown"``
        for anything else (a renderer must never put unknown text into a class name).
    """
    if status is None:
        return "none"
    return status if status in STATUS_COLORS else "unknown"


def clean(text: object, limit: int | None = None, *, keep_newlines: bool = False) -> str:
    """Return ``text`` as a string that is safe to start escaping from.

    Control characters and odd line breaks become spaces (newlines survive when
    ``keep_newlines``), bidi controls are dropped, lone surrogates, U+FFFE and U+FFFF
    become U+FFFD, and the result is cut to ``limit`` characters with an ellipsis.

    Args:
        text: Anything; ``None`` gives ``""`` and other objects are ``str()``-ed.
        limit: Maximum length of the result, ellipsis included; ``None`` for no cut.
        keep_newlines: Keep ``"\\n"`` (other line breaks are turned into it).

    Returns:
        The cleaned text.
    """
    if text is None:
        return ""
    raw = text if isinstance(text, str) else str(text)
    if limit is not None and len(raw) > limit * 2 + 16:
        # Don't walk a megabyte to keep its first 60 characters.
        raw = raw[: limit * 2 + 16]
    # One break, not two: a CRLF would otherwise show as an empty line.
    raw = raw.replace("\r\n", "\n")
    out: list[str] = []
    for ch in raw:
        if ch in _LINE_BREAKS:
            out.append("\n" if keep_newlines and ch != "\t" else " ")
        elif ch in _BIDI:
            continue
        elif "\ud800" <= ch <= "\udfff" or ch in "\ufffe\uffff":
            # Not XML 1.0 characters: one would make the SVG and the page unreadable.
            out.append("\ufffd")
        elif unicodedata.category(ch) == "Cc":
            out.append(" ")
        else:
            out.append(ch)
    result = "".join(out)
    if limit is not None and len(result) > limit:
        result = result[: max(limit - 1, 0)] + ELLIPSIS
    return result


def namespace(name: str) -> str | None:
    """Return the namespace prefix of a node name, or ``None`` when it has none.

    The prefix is the text before the first ``/`` (``fraud/scorer`` is in ``fraud``).
    A URI keeps its scheme and host together (``s3://lake/events`` is in
    ``s3://lake``), since ``s3:`` alone would put every bucket in one group.

    Args:
        name: A node name.

    Returns:
        The prefix, or ``None`` for a name without ``/``.
    """
    scheme, sep, rest = name.partition("://")
    if sep and scheme:
        host = rest.split("/", 1)[0]
        return f"{scheme}://{host}"
    head, sep, _ = name.partition("/")
    return head if sep and head else None
