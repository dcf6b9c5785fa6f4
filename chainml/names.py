"""Parsing and validating user-typed text: names, version labels, input specs, durations."""

from __future__ import annotations

import re
from datetime import timedelta

from chainml.errors import InvalidInput

NAME_RE = re.compile(r"[A-Za-z0-9_\-./:]{1,200}")
MAX_LABEL = 100
_DURATION_RE = re.compile(r"(\d{1,6})\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _show(text: str, limit: int = 60) -> str:
    """Quote untrusted text for an error message: repr keeps control characters visible."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)


def check_name(name: object, what: str = "node name") -> str:
    """Return ``name`` if it is a valid node name, else raise InvalidInput."""
    if not isinstance(name, str):
        raise InvalidInput(f"The {what} must be text, not {type(name).__name__}.")
    if NAME_RE.fullmatch(name) is None:
        if not name:
            reason = "is empty"
        elif len(name) > 200:
            reason = f"is {len(name)} characters long (at most 200)"
        else:
            bad = next(c for c in name if NAME_RE.fullmatch(c) is None)
            reason = f"contains {bad!r}"
        raise InvalidInput(
            f"Invalid {what} {_show(name)}: it {reason}; use 1 to 200 ASCII letters, "
            "digits and _ - . / :"
        )
    return name


def check_label(label: object, what: str = "version label") -> str:
    """Return ``label`` if it is a valid version label, else raise InvalidInput."""
    if not isinstance(label, str):
        raise InvalidInput(f"The {what} must be text, not {type(label).__name__}.")
    reason = None
    if not label:
        reason = "is empty"
    elif len(label) > MAX_LABEL:
        reason = f"is {len(label)} characters long (at most {MAX_LABEL})"
    else:
        for c in label:
            if c.isspace() or not c.isprintable() or c == "@":
                reason = f"contains {c!r}"
                break
    if reason:
        raise InvalidInput(
            f"Invalid {what} {_show(label)}: it {reason}; use 1 to {MAX_LABEL} printable "
            "characters without whitespace or '@'."
        )
    return label


def check_text(text: str | None, what: str, limit: int) -> str | None:
    """Free text (owner, description, link, note, reason): at most ``limit`` characters and
    no NUL character, which PostgreSQL cannot store. None passes through."""
    if text is None:
        return None
    if len(text) > limit:
        raise InvalidInput(f"The {what} is {len(text)} characters long (at most {limit}).")
    if "\x00" in text:
        raise InvalidInput(f"The {what} {_show(text)} contains a NUL character ('\\x00').")
    return text


def parse_input_spec(spec: str) -> tuple[str, str | None]:
    """Split ``NODE[@VERSION]`` into (name, pinned label or None)."""
    if not isinstance(spec, str):
        raise InvalidInput(f"An input must be text like 'node' or 'node@1.2', not {spec!r}.")
    name, sep, pin = spec.partition("@")
    check_name(name, "input name")
    if sep:
        check_label(pin, f"pinned version of input '{name}'")
        return name, pin
    return name, None


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """Parse '30d', '12h', '2w', '90m', '45s' or a combination such as '1d12h'."""
    s = text.strip().lower() if isinstance(text, str) else ""
    pos, total = 0, 0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not s or pos != len(s) or total <= 0:
        raise InvalidInput(
            f"Invalid {what} {_show(str(text))}: use a number and a unit, such as 30d, 12h, "
            "2w or 90m."
        )
    return timedelta(seconds=total)


def format_duration(seconds: int) -> str:
    """Inverse of parse_duration for whole units (used by export)."""
    for unit, size in (("w", _UNITS["w"]), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_meta(pairs: list[str]) -> dict[str, str]:
    """Turn ['k=v', ...] into a dict; a key may not repeat."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"Invalid metadata {_show(pair)}: use KEY=VALUE.")
        if key in out:
            raise InvalidInput(f"Metadata key {_show(key)} is given twice.")
        out[key] = value
    return out
