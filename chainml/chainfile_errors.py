"""Turn one pydantic validation error of a chain file into one plain sentence.

Kept apart from chainfile.py so that the models stay readable; nothing here is public.
"""

from __future__ import annotations

import difflib
from datetime import date

from pydantic_core import ErrorDetails

from chainml.kinds import ALL_KINDS
from chainml.safeload import show_path

TOP_FIELDS = ("chainml", "nodes")


def type_name(value: object) -> str:
    """How YAML typed a value, in words a user recognises."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, date):
        return "a date"
    if value is None:
        return "empty (null)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _unknown_field(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown field {key[:60]!r}{hint} (the fields are {', '.join(allowed)})"


def explain(
    err: ErrorDetails, field: tuple[str | int, ...], raw: str | None, node_fields: list[str] | None
) -> str:
    """One clause for ``err``; the caller prefixes file, line and node.

    Args:
        err: the first error pydantic reported.
        field: the error's location below the node (or below the file for top-level ones).
        raw: the source text of the offending plain YAML scalar, when known.
        node_fields: the fields a node may have when the error is inside a node, None
            when it is at the top of the file; listed after a typo.
    """
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    text = show_path(field)
    lead = f"{text}: " if text else ""
    if kind == "not_text" and value is None:
        return f"{text} is empty; give it a value"
    if kind == "not_text" and raw:
        return (f"{lead}YAML reads {raw[:60]} as {type_name(value)} ({value!r}), not text; "
                f'write it in quotes: "{raw[:60]}"')
    if kind in ("chainml", "duplicate_name", "not_text"):
        reason = str(ctx.get("reason", err["msg"]))
        if reason.startswith("Invalid "):  # names.py phrasing, mid-sentence here
            reason = "i" + reason[1:]
        # Skip the field when the reason already starts with it ("max_age must be ...").
        head = reason.lower().removeprefix("invalid ")
        return reason if text and head.startswith(text.lower()) else lead + reason
    if kind == "missing":
        if field == ("chainml",):
            return "the format version is missing; start the file with 'chainml: 1'"
        return f"the required field '{text}' is missing"
    if kind == "extra_forbidden" and len(field) == 1 and isinstance(field[0], str):
        return _unknown_field(field[0], node_fields or list(TOP_FIELDS))
    if kind == "enum":
        return f"kind {value!r} is not one of {', '.join(ALL_KINDS)}"
    if kind == "list_type":
        return f"{text} must be a list, such as [a, b], not {type_name(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return (f"{text or 'the entry'} must be a mapping with at least name, kind and "
                f"version, not {type_name(value)}")
    if kind == "too_long":
        return f"{text} has too many entries ({err['msg']})"
    return lead + err["msg"]

