"""Field types of the chain file: each checks one value and says what is wrong with it.

The models in chainfile.py are built from these; errors are raised as pydantic custom
errors whose message is the whole reason, so that chainfile_errors.py can put the
file, line and node in front of it.
"""

from __future__ import annotations

import math
import sys
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from chainml import names
from chainml.errors import InvalidInput
from chainml.files.chainfile_errors import type_name
from chainml.files.safeload import MAX_DEPTH

MAX_NODES = 200_000
MAX_DESCRIPTION = 10_000
MAX_OWNER = 200
MAX_TAG = 100
MAX_AGE_SECONDS = 3650 * 86400  # as registration: at most 10 years
# meta sits under the document, the node list and the node: 3 levels are taken.
MAX_META_DEPTH = MAX_DEPTH - 3


def fail(reason: str, kind: str = "chainml") -> PydanticCustomError:
    """A validation error whose message is exactly ``reason`` (braces are safe in ctx)."""
    return PydanticCustomError(kind, "{reason}", {"reason": reason})


def _text(value: object, what: str) -> str:
    if isinstance(value, str):
        return value
    raise fail(f"{what} must be text, not {type_name(value)}; quote it", "not_text")


def _names_rule(check: Any, what: str) -> Any:
    """Run a names.py check inside pydantic: InvalidInput becomes a located error."""

    def run(value: object) -> str:
        text = _text(value, what)
        try:
            check(text)
        except InvalidInput as exc:
            raise fail(str(exc)) from None
        return text

    return run


def _free_text(what: str, limit: int, one_line: bool) -> Any:
    def run(value: object) -> str:
        text = _text(value, what)
        if one_line and not text:
            raise fail(f"{what} is empty")
        if len(text) > limit:
            raise fail(f"{what} is {len(text)} characters long (at most {limit})")
        for c in text:
            # NUL and lone surrogates cannot be stored (PostgreSQL) or written as UTF-8.
            if c == "\x00" or "\ud800" <= c <= "\udfff" or (one_line and not c.isprintable()):
                raise fail(f"{what} contains {c!r}; remove it")
        return text

    return run


def _duration(value: object) -> str:
    text = _text(value, "max_age")
    try:
        seconds = int(names.parse_duration(text, "max_age").total_seconds())
    except InvalidInput as exc:
        raise fail(str(exc)) from None
    if seconds > MAX_AGE_SECONDS:
        raise fail(f"max_age {text!r} is longer than 3650d (10 years)")
    return canonical_duration(seconds)


def canonical_duration(seconds: int) -> str:
    """The one spelling of a duration, so that '1d12h' and '36h' compare equal.

    ``names.format_duration`` picks the largest whole unit ('36h'); when that needs more
    digits than ``names.parse_duration`` reads back, spell it out unit by unit instead.
    """
    short = names.format_duration(seconds)
    if len(short) <= 7:  # at most 6 digits and a unit
        return short
    out = ""
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        out += f"{count}{unit}" if count else ""
    return out


def _boolean(value: object) -> object:
    if isinstance(value, bool):
        return value
    raise fail(f"needs_tests must be true or false, not {type_name(value)}")


def _json_value(value: object, where: str, depth: int) -> None:
    if isinstance(value, dict):
        if depth > MAX_META_DEPTH:
            raise fail(f"{where} nests deeper than {MAX_META_DEPTH} levels")
        for key, item in value.items():
            if not isinstance(key, str):
                raise fail(f"{where} has the key {key!r}, which is {type_name(key)}; quote it")
            _free_text(f"the key {where}[{key[:40]!r}]", sys.maxsize, False)(key)
            _json_value(item, f"{where}[{key[:40]!r}]", depth + 1)
    elif isinstance(value, list):
        if depth > MAX_META_DEPTH:
            raise fail(f"{where} nests deeper than {MAX_META_DEPTH} levels")
        for i, item in enumerate(value):
            _json_value(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str):
        _free_text(where, sys.maxsize, False)(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise fail(f"{where} is {value}, which JSON cannot hold")
    elif value is not None and not isinstance(value, bool | int | float):
        raise fail(f"{where} is {type_name(value)}, which JSON cannot hold; quote it")


def _json_object(what: str) -> Any:
    def run(value: object) -> object:
        if not isinstance(value, dict):
            raise fail(f"{what} must be a mapping of keys to JSON values, not {type_name(value)}")
        _json_value(value, what, 1)
        return value

    return run


def _schema(**extra: Any) -> Any:
    return Field(json_schema_extra=extra)


_NAME_SCHEMA = {"pattern": f"^{names.NAME_RE.pattern}$", "minLength": 1, "maxLength": 200}
NodeName = Annotated[str, BeforeValidator(_names_rule(names.check_name, "name")),
                     _schema(**_NAME_SCHEMA)]
Label = Annotated[str, BeforeValidator(_names_rule(names.check_label, "version")),
                  _schema(pattern=r"^[^\s@]{1,100}$")]
InputSpec = Annotated[
    str, BeforeValidator(_names_rule(names.parse_input_spec, "an input")),
    _schema(pattern=r"^[A-Za-z0-9_\-./:]{1,200}(@[^\s@]{1,100})?$"),
]
FeedbackName = Annotated[str, BeforeValidator(
    _names_rule(lambda t: names.check_name(t, "feedback input name"), "a feedback input")),
    _schema(**_NAME_SCHEMA)]
Suite = Annotated[str, BeforeValidator(
    _names_rule(lambda t: names.check_label(t, "suite name"), "a suite name")),
    _schema(pattern=r"^[^\s@]{1,100}$")]
Owner = Annotated[str, BeforeValidator(_free_text("owner", MAX_OWNER, True)),
                  _schema(minLength=1, maxLength=MAX_OWNER)]
Description = Annotated[str, BeforeValidator(_free_text("description", MAX_DESCRIPTION, False)),
                        AfterValidator(names.unify_newlines), _schema(maxLength=MAX_DESCRIPTION)]
Tag = Annotated[str, BeforeValidator(_free_text("a tag", MAX_TAG, True)),
                _schema(minLength=1, maxLength=MAX_TAG)]
Duration = Annotated[str, BeforeValidator(_duration),
                     _schema(pattern=r"^(\d+[smhdw])+$", examples=["30d", "12h", "2w"])]
NeedsTests = Annotated[bool, BeforeValidator(_boolean)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object("meta"))]
NodeJsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object("node_meta"))]


def unique(values: list[str], what: str, key: Any = None) -> list[str]:
    seen: set[str] = set()
    for value in values:
        k = key(value) if key else value
        if k in seen:
            raise fail(f"{what} lists {k!r} twice")
        seen.add(k)
    return values
