"""Hardened YAML and JSON reading for untrusted files, with line numbers.

Chain files and the files the importers read come from users and from other
tools, so reading them must cost little whatever they hold:

* at most :data:`MAX_BYTES` (16 MiB) per file, checked before parsing;
* no YAML anchors or aliases at all: an alias is how a "billion laughs" file
  turns 1 KiB into gigabytes, and a chain file never needs one;
* no YAML tags outside the core schema (``!!python/object`` and friends), and no
  merge keys (``<<``);
* at most :data:`MAX_DEPTH` (50) levels of nesting;
* mapping keys must be strings and may not repeat (PyYAML would silently keep
  the last of two ``version:`` lines).

Problems that leave the document readable (a repeated key, an anchor, a foreign
tag) are collected and reported together, up to :data:`MAX_PROBLEMS`; a syntax
error ends the reading, at the line where the broken construct starts.

YAML is read event by event (libyaml's parser when it is installed) and the
Python values are built here rather than by PyYAML's constructor, which is what
makes it possible to refuse aliases before anything is expanded and to record
the line of every value the caller asks about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.resolver import Resolver

from chainml.errors import InvalidInput

MAX_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 50
MAX_PROBLEMS = 20  # listed in one error, then "... and N more"

PathKey = tuple[str | int, ...]

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}
_MERGE, _VALUE, _STR = _CORE + "merge", _CORE + "value", _CORE + "str"
_RESOLVER = Resolver()
_CONSTRUCTOR = SafeConstructor()
_LOADER = yaml.CSafeLoader if hasattr(yaml, "CSafeLoader") else yaml.SafeLoader
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


@dataclass
class Located:
    """Parsed data plus the 1-based line of the values that were asked about."""

    data: Any
    lines: dict[PathKey, int] = field(default_factory=dict)
    raw: dict[PathKey, str] = field(default_factory=dict)  # source text of plain scalars

    def line_of(self, path: PathKey) -> int | None:
        """Line of ``path`` or of its nearest recorded ancestor."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


def problems_error(filename: str, problems: Sequence[str], total: int | None = None
                   ) -> InvalidInput:
    """One error for every problem of a file: the sentence itself when there is one,
    else a count and one line per problem (at most MAX_PROBLEMS, then how many more).

    Args:
        filename: named in the first line.
        problems: one sentence each, already naming the file and line.
        total: how many there are when only the first ones were kept.
    """
    total = max(total or 0, len(problems))
    if total == 1:
        exc = InvalidInput(problems[0])
    else:
        lines = [f"{filename} has {total} problems:"]
        lines += [f"  {p}" for p in problems[:MAX_PROBLEMS]]
        if total > MAX_PROBLEMS:
            lines.append(f"  ... and {total - MAX_PROBLEMS} more.")
        exc = InvalidInput("\n".join(lines))
    exc.problems = tuple(problems[:MAX_PROBLEMS])
    return exc


def show_value(value: object) -> str:
    """A parsed YAML value as YAML shows it: dates in ISO form, true/false, null."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, date):  # datetime too
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return repr(value)


def show_path(path: PathKey) -> str:
    """Render ``('nodes', 3, 'meta', 'a b')`` as ``nodes[3].meta['a b']``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:
            shown = part if len(part) <= 40 else part[:40] + "..."
            out += f"[{shown!r}]"
    return out


def read_text(path: str | Path, max_bytes: int = MAX_BYTES) -> str:
    """Read a UTF-8 text file of at most ``max_bytes`` bytes.

    Raises:
        InvalidInput: the file is missing, unreadable, too large or not UTF-8.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            # Read one byte more than allowed: stat() lies for pipes and /proc files.
            blob = fh.read(max_bytes + 1)
    except OSError as exc:
        raise InvalidInput(f"Cannot read {p}: {exc.strerror or exc}.") from None
    if len(blob) > max_bytes:
        raise InvalidInput(
            f"{p.name} is larger than {max_bytes // (1024 * 1024)} MiB; split it into "
            "several files."
        )
    return decode(blob, p.name)


def decode(blob: bytes, filename: str) -> str:
    """Decode UTF-8 (a leading BOM is allowed), naming the line of a bad byte."""
    try:
        return blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = blob.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(
            f"{filename} line {line}: byte {blob[exc.start]:#04x} is not UTF-8; save the "
            "file as UTF-8 text."
        ) from None


def check_size(text: str, filename: str, max_bytes: int = MAX_BYTES) -> None:
    """Refuse text whose UTF-8 form is larger than ``max_bytes``."""
    if len(text) > max_bytes or len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidInput(
            f"{filename} is larger than {max_bytes // (1024 * 1024)} MiB; split it into "
            "several files."
        )


def _line(event: Event) -> int:
    """1-based line where ``event`` starts (0 when the parser gave no position)."""
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 0


class _Frame:
    """One open mapping or sequence while events stream in."""

    __slots__ = ("value", "path", "slot", "key", "key_line")

    def __init__(
        self, value: dict[str, Any] | list[Any], path: PathKey | None, slot: str | int
    ) -> None:
        self.value = value
        self.slot = slot  # key or index in the parent, to name the place in errors
        self.path = path  # None once deeper than anything worth recording
        self.key: str | None = None
        self.key_line = 0


class _Builder:
    """Turn a YAML event stream into Python values, refusing what is unsafe."""

    def __init__(self, filename: str, max_path: int, foci: Collection[PathKey] | None) -> None:
        self.filename = filename
        self.max_path = max_path
        # A path is wanted when it lies on or under a focus, or above one.
        self.foci = None if foci is None else set(foci)
        self.above = set() if foci is None else {f[:k] for f in foci for k in range(len(f))}
        self.focus_lengths = sorted({len(f) for f in foci or ()})
        self.out = Located(None)
        self.stack: list[_Frame] = []
        self.documents = 0
        self.problems: list[str] = []  # the first MAX_PROBLEMS of them
        self.count = 0
        self.last_scalar: ScalarEvent | None = None  # to place an unclosed quote

    def note(self, event: Event, reason: str) -> None:
        """A problem that leaves the document readable: reading goes on, to report all."""
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(str(self.fail(event, reason)))

    def fatal(self, error: str) -> InvalidInput:
        """The error that ends the reading, after the problems noted so far."""
        return problems_error(self.filename, [*self.problems, error][:MAX_PROBLEMS],
                              self.count + 1)

    def fail(self, event: Event, reason: str) -> InvalidInput:
        parts = [f.slot for f in self.stack[1:]]
        top = self.stack[-1] if self.stack else None
        if top is not None and isinstance(top.value, list):
            parts.append(len(top.value))
        elif top is not None and top.key is not None:
            parts.append(top.key)
        shown = show_path(tuple(parts[:8])) + ("..." if len(parts) > 8 else "")
        where = f" ({shown})" if parts else ""
        line = _line(event) or "?"
        return InvalidInput(f"{self.filename} line {line}{where}: {reason}.")

    def wanted(self, path: PathKey) -> bool:
        if len(path) > self.max_path:
            return False
        if self.foci is None or path in self.above:
            return True
        return any(path[:n] in self.foci for n in self.focus_lengths)

    def child_path(self) -> PathKey | None:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None or len(top.path) >= self.max_path:
            return None
        if isinstance(top.value, list):
            return (*top.path, len(top.value))
        if top.key is None:  # the next scalar is a key: errors point at the mapping
            return top.path
        return (*top.path, top.key)

    def feed(self, event: Event) -> None:
        if isinstance(event, DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise self.fatal(str(self.fail(
                    event, "holds more than one YAML document; keep one per file")))
        elif isinstance(event, AliasEvent):
            self.note(event, f"uses the YAML alias *{event.anchor}; aliases and anchors "
                      "are refused, write the value out")
            self.node_start(ScalarEvent(None, "!", (False, False), "", event.start_mark,
                                        event.end_mark))
        elif isinstance(event, ScalarEvent | MappingStartEvent | SequenceStartEvent):
            self.node_start(event)
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            frame = self.stack.pop()
            self.attach(frame.value, event, None)

    def node_start(self, event: ScalarEvent | MappingStartEvent | SequenceStartEvent) -> None:
        path = self.child_path()
        if event.anchor is not None:
            self.note(event, f"defines the YAML anchor &{event.anchor}; anchors and "
                      "aliases are refused, write the value out")
        top = self.stack[-1] if self.stack else None
        is_key = top is not None and isinstance(top.value, dict) and top.key is None
        if isinstance(event, ScalarEvent):
            self.last_scalar = event
            value = self.scalar(event, path)
            if is_key and top is not None:
                self.set_key(event, value, top)
            else:
                self.attach(value, event, event.value if event.implicit[0] else None)
            return
        if is_key:
            raise self.fatal(str(self.fail(
                event, "uses a mapping or list as a key; keys must be text")))
        tag = event.tag
        want = _CORE + ("map" if isinstance(event, MappingStartEvent) else "seq")
        if tag not in (None, "!", want):
            self.note(event, f"uses the tag {tag!r}; tags beyond YAML's core schema are "
                      "refused")
        if len(self.stack) >= MAX_DEPTH:
            raise self.fatal(str(self.fail(event, f"nests deeper than {MAX_DEPTH} levels")))
        if path is not None and self.wanted(path):
            self.out.lines[path] = _line(event)
        container: dict[str, Any] | list[Any] = (
            {} if isinstance(event, MappingStartEvent) else []
        )
        slot: str | int = 0
        if top is not None:
            slot = len(top.value) if isinstance(top.value, list) else str(top.key)
        self.stack.append(_Frame(container, path, slot))

    def set_key(self, event: ScalarEvent, key: object, top: _Frame) -> None:
        if not isinstance(key, str):
            self.note(event, f"uses {event.value[:40]!r} as a key, which YAML reads as "
                      f"{type(key).__name__}; quote it")
            key = event.value
        assert isinstance(top.value, dict)
        if key in top.value:
            self.note(event, f"repeats the key {key!r}")
        top.key, top.key_line = key, _line(event)

    def attach(self, value: Any, event: Event, raw: str | None) -> None:
        if not self.stack:
            self.out.data = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            path = None if top.path is None else (*top.path, len(top.value))
            line = _line(event)
            top.value.append(value)
        else:
            assert top.key is not None
            path = None if top.path is None else (*top.path, top.key)
            line = top.key_line  # a field is where its key is written
            top.value[top.key] = value
            top.key = None
        if path is not None and len(path) <= self.max_path and self.wanted(path):
            if isinstance(top.value, list):
                self.out.lines.setdefault(path, line)  # a container keeps its start line
            else:
                self.out.lines[path] = line
            if raw is not None:
                self.out.raw[path] = raw

    def scalar(self, event: ScalarEvent, path: PathKey | None) -> Any:
        tag = event.tag
        if tag == "!":  # the non-specific tag: YAML says this is text
            return event.value
        if tag is None:
            # implicit[0] is True only for plain scalars; quoted ones resolve to str.
            tag = _RESOLVER.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, event.implicit)
        elif tag not in _SCALAR_TAGS:
            self.note(event, f"uses the tag {tag!r}; tags beyond YAML's core schema are "
                      "refused")
            return event.value
        if tag in (_STR, _VALUE):
            return event.value
        if tag == _MERGE:
            self.note(event, "uses a YAML merge key (<<); write the keys out")
            return event.value
        node = yaml.ScalarNode(tag, event.value, style=event.style)
        try:
            return SafeConstructor.yaml_constructors[tag](_CONSTRUCTOR, node)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            self.note(event, f"cannot read {event.value[:40]!r} as {tag.rsplit(':', 1)[-1]}")
            return event.value


def _events(text: str) -> Iterator[Event]:
    loader = _LOADER(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            assert event is not None  # check_event() said there is one
            yield event
    finally:
        loader.dispose()


def parse_yaml(
    text: str, filename: str, *, max_path: int = 0, focus: PathKey | None = None,
    foci: Collection[PathKey] | None = None,
) -> Located:
    """Parse one YAML document safely, recording lines of paths up to ``max_path`` long.

    Args:
        text: the document.
        filename: named in error messages.
        max_path: record the line of every value whose path has at most this many parts.
        focus: if given, record only paths that lie on or under this path.
        foci: as ``focus``, for several paths at once.

    Returns:
        The data (None for an empty document) and the recorded lines.

    Raises:
        InvalidInput: a syntax error, alias, anchor, foreign tag, repeated key, or
            nesting deeper than MAX_DEPTH; the message names the line. Every problem
            found before reading had to stop is listed (see ``problems_error``).
    """
    check_size(text, filename)
    wanted = [*(foci or ()), *([focus] if focus is not None else [])]
    builder = _Builder(filename, max_path, wanted if foci is not None or focus is not None
                       else None)
    try:
        for event in _events(text):
            builder.feed(event)
    except yaml.MarkedYAMLError as exc:
        raise builder.fatal(_syntax_error(exc, builder.last_scalar, filename)) from None
    except (yaml.YAMLError, UnicodeError, ValueError) as exc:
        raise builder.fatal(f"{filename}: is not valid YAML ({exc}).") from None
    if builder.problems:
        raise problems_error(filename, builder.problems, builder.count)
    return builder.out


def _syntax_error(exc: yaml.MarkedYAMLError, last: ScalarEvent | None, filename: str) -> str:
    """The sentence for a YAML syntax error, at the line where the problem starts.

    The parser notices a missing closing quote or bracket only lines later, where the
    text stops making sense; the user has to look where the quote or bracket opened.
    """
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark else None
    problem = exc.problem or exc.context or "syntax error"
    context = exc.context or ""
    opened = exc.context_mark.line + 1 if exc.context_mark else None
    if "nesting depth" in problem:  # libyaml's own limit, met while scanning ahead
        return f"{filename}{f' line {line}' if line else ''}: nests deeper than {MAX_DEPTH} levels."
    if "quoted scalar" in context and opened:
        return (f"{filename} line {opened}: the quote opened on this line is never closed; "
                "add the closing quote.")
    if (last is not None and last.style in ('"', "'") and last.start_mark is not None
            and last.end_mark is not None and line is not None
            and last.start_mark.line < last.end_mark.line and last.end_mark.line + 1 >= line - 1):
        start, end = last.start_mark.line + 1, last.end_mark.line + 1
        return (f"{filename} line {start}: the quote opened on this line is not closed on it, "
                f"so YAML reads on to line {end} and stops there ({problem}); add the closing "
                "quote.")
    if context.startswith("while parsing a flow") and opened and line and opened < line:
        pair = "[]" if "sequence" in context else "{}"
        return (f"{filename} line {opened}: the {pair[0]} opened on this line is not closed "
                f"({problem} on line {line}); add the {pair[1]}.")
    return f"{filename}{f' line {line}' if line else ''}: is not valid YAML ({problem})."


class _Duplicate(Exception):
    """A JSON object repeats a key (json.loads would keep the last silently)."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Duplicate
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_depth_ok(data: Any, limit: int = MAX_DEPTH) -> bool:
    """True when ``data`` nests at most ``limit`` containers deep (iterative walk)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return False
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return True


def parse_json(text: str, filename: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON fast, refusing repeated keys, NaN/Infinity and deep nesting.

    Raises:
        InvalidInput: with the line when JSON gives one.
    """
    check_size(text, filename)
    try:
        data = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{filename} line {exc.lineno}: is not valid JSON ({exc.msg})."
        ) from None
    except _Duplicate:
        # JSON is (almost always) YAML too: the YAML reader refuses repeated keys as
        # well and knows the line, so let it phrase the message when it can.
        parse_yaml(text, filename)
        raise InvalidInput(f"{filename}: repeats a key in an object.") from None
    except RecursionError:
        data = None
    except ValueError as exc:
        raise InvalidInput(f"{filename}: is not valid JSON ({exc}).") from None
    if data is None or not json_depth_ok(data, max_depth):
        if data is not None or text.strip() not in ("null", ""):
            raise InvalidInput(f"{filename}: nests deeper than {max_depth} levels.")
    return data
