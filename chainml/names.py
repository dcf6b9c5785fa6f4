"""Parsing and validating user-typed text: names, version labels, input specs, durations."""

from __future__ import annotations

import re
from datetime import timedelta

from chainml.errors import InvalidInput

NAME_RE = re.compile(r"[A-Za-z0-9_\-./:]{1,200}")
MAX_LABEL = 100
_DURATION_RE = re.compile(r"(\d{1,6})\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
MAX_DURATION_S = 10**12


def _show(text: str, limit: int = 60) -> str:
    """Quote untrusted text for an error message: repr keeps control characters visible."""
    shown = text if len(text) <= limit else text[:limit] + "..."
    return repr(shown)


def _identifier(value: object, what: str, pattern: re.Pattern[str], limit: int) -> str:
    """``value`` if ``pattern`` (ASCII letters, digits and _ - . / :, 1 to ``limit``)
    matches it all, else InvalidInput saying what is wrong with it."""
    if not isinstance(value, str):
        raise InvalidInput(f"The {what} must be text, not {type(value).__name__}.")
    if pattern.fullmatch(value) is None:
        if not value:
            reason = "is empty"
        elif len(value) > limit:
            reason = f"is {len(value)} characters long (at most {limit})"
        else:
            bad = next(c for c in value if pattern.fullmatch(c) is None)
            reason = f"contains {bad!r}"
        raise InvalidInput(
            f"Invalid {what} {_show(value)}: it {reason}; use 1 to {limit} ASCII letters, "
            "digits and _ - . / :"
        )
    return value


def check_name(name: object, what: str = "node name") -> str:
    """Return ``name`` if it is a valid node name, else raise InvalidInput."""
    return _identifier(name, what, NAME_RE, 200)


ENV_NAME_RE = re.compile(r"[A-Za-z0-9_\-./:]{1,100}")


def check_env_name(name: object) -> str:
    """Return ``name`` if it is a valid environment name (like a node name, at most 100
    characters), else raise InvalidInput."""
    return _identifier(name, "environment name", ENV_NAME_RE, 100)


def check_token_name(name: object) -> str:
    """Return ``name`` if it is a valid API token name (as an environment's), else raise
    InvalidInput."""
    return _identifier(name, "token name", ENV_NAME_RE, 100)


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


def check_text(text: object, what: str, limit: int, *, xml: bool = True) -> str | None:
    """Free text (owner, description, link, note, reason): at most ``limit`` characters, no
    NUL character (PostgreSQL cannot store one), no lone surrogate (not UTF-8) and, unless
    ``xml`` is False, nothing else XML 1.0 forbids (see :func:`check_xml_chars`). None
    passes through."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise InvalidInput(f"The {what} must be text, not {type(text).__name__}.")
    if len(text) > limit:
        raise InvalidInput(f"The {what} is {len(text)} characters long (at most {limit}).")
    if "\x00" in text:
        raise InvalidInput(f"The {what} {_show(text)} contains a NUL character ('\\x00').")
    _check_encodable(text, what)
    if xml:
        check_xml_chars(text, what)
    return text


# What XML 1.0's Char production leaves out: C0 controls but tab, LF and CR,
# surrogates, U+FFFE and U+FFFF.
NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_xml_chars(text: str, what: str) -> None:
    """Refuse a character XML 1.0 forbids: the SVG, HTML and JUnit outputs show every
    text field, and one such character makes the whole document unreadable."""
    bad = NOT_XML.search(text)
    if bad is not None:
        raise InvalidInput(
            f"The {what} {_show(text)} contains U+{ord(bad.group()):04X}, a character XML "
            "1.0 does not allow (SVG, HTML and JUnit reports could not show it); remove it.")


def _check_encodable(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise InvalidInput(
            f"The {what} {_show(text)} contains {text[e.start]!r}, a lone surrogate that is not "
            "a character."
        ) from None


MAX_TAG = 100
MAX_JSON_DEPTH = 47  # as deep as a chain file's meta may nest (chainfile_fields)


def check_tag(tag: object) -> str:
    """A tag: 1 to 100 printable characters."""
    if not isinstance(tag, str):
        raise InvalidInput(f"A tag must be text, not {type(tag).__name__}.")
    if not tag or len(tag) > MAX_TAG:
        raise InvalidInput(f"The tag {_show(tag)} is {len(tag)} characters long (1 to {MAX_TAG}).")
    check_xml_chars(tag, "tag")
    bad = next((c for c in tag if not c.isprintable()), None)
    if bad is not None:
        raise InvalidInput(f"The tag {_show(tag)} contains {bad!r}; use printable characters.")
    _check_encodable(tag, "tag")
    return tag


def check_json(value: object, what: str = "meta", _depth: int = 1) -> None:
    """Metadata must be plain JSON that every backend stores alike: objects with text keys,
    lists, text without NUL, finite numbers, booleans and null."""
    if isinstance(value, dict):
        if _depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"The {what} nests deeper than {MAX_JSON_DEPTH} levels.")
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(
                    f"The {what} has a key of type {type(key).__name__} ({_show(repr(key))}); "
                    "keys must be text.")
            # Metadata reaches XML output only as escaped JSON (the page's data block),
            # so it keeps any character JSON can hold.
            check_text(key, f"key in {what}", 10_000, xml=False)
            check_json(item, f"{what}[{_show(key, 40)}]", _depth + 1)
    elif isinstance(value, list):
        if _depth > MAX_JSON_DEPTH:
            raise InvalidInput(f"The {what} nests deeper than {MAX_JSON_DEPTH} levels.")
        for i, item in enumerate(value):
            check_json(item, f"{what}[{i}]", _depth + 1)
    elif isinstance(value, str):
        check_text(value, f"value of {what}", 1_000_000, xml=False)
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidInput(f"The {what} is {value}, which JSON cannot hold.")
    elif isinstance(value, int) and not isinstance(value, bool):
        if abs(value) >= 10**4000:  # Python will not even print it
            raise InvalidInput(f"The {what} is an integer with more than 4000 digits.")
    elif value is not None and not isinstance(value, bool):
        raise InvalidInput(
            f"The {what} is a {type(value).__name__}, which JSON cannot hold; use text, "
            "numbers, true/false, null, lists and objects.")


def parse_input_spec(spec: str) -> tuple[str, str | None]:
    """Split ``NODE[@VERSION]`` into (name, pinned label or None)."""
    if not isinstance(spec, str):
        raise InvalidInput("An input must be text like 'node' or 'node@1.2', not "
                           f"{type(spec).__name__} {_show(repr(spec))}.")
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
    if total > MAX_DURATION_S:  # beyond what a timedelta holds
        raise InvalidInput(f"Invalid {what} {_show(text)}: it is longer than 30,000 years.")
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


def unify_newlines(text: str | None) -> str | None:
    """``text`` with each CRLF and lone CR as LF. Text pasted from Windows or an old Mac
    would otherwise show an empty line (CRLF read as two breaks) or overwrite the line
    before it (a bare CR on a terminal)."""
    if text is None or "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")
