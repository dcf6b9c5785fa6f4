"""Turn the problems of a chain file into sentences with file, line and node.

Kept apart from chainfile.py so that the models stay readable; nothing here is public.
Lines are found only once something is wrong, by reading the text again and recording
positions around the offending nodes (one reading for all of them), so valid files pay
nothing for them.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from datetime import date
from functools import partial
from typing import Any, NamedTuple, NoReturn

from pydantic_core import ErrorDetails

from chainml.errors import InvalidInput
from chainml.files.safeload import (
    MAX_PROBLEMS,
    Located,
    PathKey,
    parse_yaml,
    problems_error,
    show_path,
    show_value,
)
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
        shown = show_value(value)
        read = "" if shown == raw else f" ({shown[:60]})"
        return (f"{lead}YAML reads {raw[:60]} as {type_name(value)}{read}, not text; "
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
        close = difflib.get_close_matches(str(value).lower(), ALL_KINDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        shown = repr(value) if isinstance(value, str) else show_value(value)
        return f"kind {shown[:60]} is not one of {', '.join(ALL_KINDS)}{hint}"
    if kind == "list_type":
        return f"{text} must be a list, such as [a, b], not {type_name(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return (f"{text or 'the entry'} must be a mapping with at least name, kind and "
                f"version, not {type_name(value)}")
    if kind == "too_long":
        return f"{text} has too many entries ({err['msg']})"
    return lead + err["msg"]


class Problem(NamedTuple):
    """One problem of a chain file, worded once its line is known."""

    node: int | None  # the node's position in the file; None above the nodes
    loc: PathKey  # where it is, to find the line
    reason: Callable[[str | None], str]  # the clause, given the raw text of the value there
    error: InvalidInput | None = None  # raised as it is (KindRuleError...) when alone


def fixed(clause: str) -> Callable[[str | None], str]:
    """A problem's reason that does not depend on the text of the value."""
    return lambda _raw: clause


class Source:
    """The text a chain file was read from, to find lines once something is wrong."""

    def __init__(self, text: str, filename: str) -> None:
        self.text, self.filename = text, filename

    def locate(self, locs: Sequence[PathKey]) -> Located | None:
        """Lines and raw plain-scalar texts around ``locs``, from one more reading."""
        if not locs:
            return None
        foci = {loc[:2] if len(loc) >= 2 and loc[0] == "nodes" else loc[:1] for loc in locs}
        try:
            return parse_yaml(self.text, self.filename, max_path=max(map(len, locs)),
                              foci=foci)
        except InvalidInput:
            return None

    def head(self, data: Any, index: int | None, line: int | None) -> str:
        """``FILE line N (node 'x')``: the start of every message."""
        out = self.filename + (f" line {line}" if line else "")
        if index is not None:
            name = node_name(data, index)
            out += f" (node '{name}')" if name else f" (nodes[{index}])"
        return out

    def fail(self, data: Any, problems: Sequence[Problem]) -> NoReturn:
        """Raise every problem at once, in file order: one sentence each."""
        ordered = sorted(problems, key=lambda p: -1 if p.node is None else p.node)
        shown = ordered[:MAX_PROBLEMS]
        found = self.locate([p.loc for p in shown])
        sentences = []
        for p in shown:
            line = found.line_of(p.loc) if found else None
            reason = p.reason(found.raw.get(p.loc) if found else None)
            end = "" if reason.endswith("?") else "."
            sentences.append(f"{self.head(data, p.node, line)}: {reason.rstrip('.')}{end}")
        if len(problems) == 1 and shown[0].error is not None:
            exc = shown[0].error
            exc.args, exc.problems = (sentences[0],), (sentences[0],)
            raise exc
        raise problems_error(self.filename, sentences, len(problems))


def node_name(data: Any, index: int) -> str | None:
    """The name of node ``index`` when it is a valid name, for messages."""
    try:
        name = data["nodes"][index]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and NAME_RE.fullmatch(name) else None


def validation_problems(errors: list[ErrorDetails], node_fields: list[str]) -> list[Problem]:
    """One problem per pydantic error."""
    out = []
    for err in errors:
        loc = tuple(err["loc"])
        ctx = err.get("ctx") or {}
        if "index" in ctx:
            loc = ("nodes", ctx["index"])
        index = loc[1] if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int) \
            else None
        fields = None if index is None else node_fields
        at = loc[2:] if index is not None else loc
        out.append(Problem(index, loc, partial(_explain_raw, err, at, fields)))
    return out


def _explain_raw(err: ErrorDetails, field: tuple[str | int, ...], node_fields: list[str] | None,
                 raw: str | None) -> str:
    return explain(err, field, raw, node_fields)
