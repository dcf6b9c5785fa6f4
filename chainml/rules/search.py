"""What the web UI's search matches: pure functions over a node's name, kind, owner and
tags (the storage layer reads those alone, not every node whole)."""

from __future__ import annotations

from collections.abc import Sequence


def matches(name: str, kind: str, owner: str | None, tags: Sequence[str],
            terms: Sequence[str]) -> bool:
    """Every term (lower case) matches: 'kind:model' (exactly), 'owner:ana', 'tag:ads'
    (part of the owner, of a tag), or a part of the name, the owner, a tag or the kind."""
    for term in terms:
        field, sep, value = term.partition(":")
        if sep and field in ("kind", "owner", "tag"):
            if field == "kind" and kind != value:
                return False
            if field == "owner" and value not in (owner or "").lower():
                return False
            if field == "tag" and not any(value in t.lower() for t in tags):
                return False
            continue
        hay = [name.lower(), (owner or "").lower(), kind, *(t.lower() for t in tags)]
        if not any(term in h for h in hay):
            return False
    return True


def order(name: str, query: str) -> tuple[bool, str]:
    """Sort key of a match: the node named exactly as the query (any case) first, then
    by name."""
    return name.lower() != query.strip().lower(), name
