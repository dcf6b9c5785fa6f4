"""Turn a pydantic validation error of a chain file into one sentence with file and line.

Kept apart from chainfile.py so that the models stay readable; nothing here is public.
Lines are found only once something is wrong, by reading the text again and recording
positions around the offending node, so valid files pay nothing for them.
"""

from __future__ import annotations

import difflib
from datetime import date
from typing import Any

from pydantic_core import ErrorDetails

from chainml.errors import InvalidInput
from chainml.files.safeload import parse_yaml, show_path
from chainml.kinds import ALL_KINDS
from chainml.names import NAME_RE

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


class Source:
    """The text a chain file was read from, to find lines once something is wrong."""

    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename

    def locate(self, loc: tuple[str | int, ...]) -> tuple[int | None, str | None]:
        """Line and raw plain-scalar text of ``loc``; re-parsing only on the error path."""
        focus = loc[:2] if len(loc) >= 2 and loc[0] == "nodes" else loc[:1]
        try:
            found = parse_yaml(self.text, self.filename, max_path=len(loc), focus=focus)
        except InvalidInput:
            return None, None
        return found.line_of(loc), found.raw.get(loc)

    def prefix(self, data: Any, index: int | None, loc: tuple[str | int, ...]) -> str:
        """``FILE line N (node 'x')``: the start of every message."""
        line, _ = self.locate(loc)
        out = self.filename + (f" line {line}" if line else "")
        if index is not None:
            name = node_name(data, index)
            out += f" (node '{name}')" if name else f" (nodes[{index}])"
        return out


def node_name(data: Any, index: int) -> str | None:
    """The name of node ``index`` when it is a valid name, for messages."""
    try:
        name = data["nodes"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and NAME_RE.fullmatch(name) else None


def explain_errors(
    errors: list[ErrorDetails], data: Any, src: Source, node_fields: list[str]
) -> str:
    """One sentence for the first error, counting the others."""
    first = errors[0]
    loc = tuple(first["loc"])
    ctx = first.get("ctx") or {}
    if "index" in ctx:
        loc = ("nodes", ctx["index"])
    index = loc[1] if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int) else None
    field_loc = loc[2:] if index is not None else loc
    _, raw = src.locate(loc)
    reason = explain(first, field_loc, raw, None if index is None else node_fields)
    more = f" ({len(errors) - 1} more problem{'s' if len(errors) > 2 else ''} in the file)" \
        if len(errors) > 1 else ""
    return f"{src.prefix(data, index, loc)}: {reason.rstrip('.')}{more}."
