"""Shared by the importers: foreign ids to chainml names, kind maps, labels, checks.

Name mapping (:func:`map_names`) is deterministic for a given set of foreign ids:

1. every character outside ``[A-Za-z0-9_\\-./:]`` becomes ``_``;
2. a name longer than 200 characters is cut to 191 and gets ``-`` and 8 hex
   characters of the SHA-256 of the original id;
3. ids that still collide (also when they differ only in case, which chainml
   refuses as confusable) are ordered; the first id that was already a valid name
   (else simply the first) keeps the name, the others get ``-`` and a hash of their
   own id, lengthened until it is free.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from chainml import names
from chainml.errors import ChainmlError, InvalidInput, KindRuleError
from chainml.files.chainfile import MAX_DESCRIPTION, MAX_TAG, ChainFile, ChainNode, validate_graph
from chainml.files.safeload import MAX_BYTES, parse_json, read_text
from chainml.kinds import ALL_KINDS, Kind

MAX_IMPORT_BYTES = MAX_BYTES
# Tools nest their own metadata deeper than a chain file may; json's recursion guard
# still bounds it, this only has to be generous.
MAX_IMPORT_DEPTH = 200

KindMap = Sequence[str] | Mapping[str, str] | None

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_\-./:]")
_HEX = re.compile(r"[0-9a-fA-F]{12,}")


class ImporterWarning(UserWarning):
    """Something in the foreign file was skipped; the message says what and where."""


def warn(message: str) -> None:
    """Report a skipped part of the input without failing the import."""
    warnings.warn(message, ImporterWarning, stacklevel=3)


def short_hash(value: object, length: int = 12) -> str:
    """First ``length`` hex digits of the SHA-256 of ``value`` as canonical JSON."""
    blob = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def checksum_label(checksum: object) -> str:
    """12 hex digits: the checksum's own prefix when it is hex, else a hash of it."""
    if isinstance(checksum, str) and _HEX.fullmatch(checksum):
        return checksum[:12].lower()
    return short_hash(checksum)


def label_or_hash(value: object) -> str:
    """``value`` when it is a valid version label, else a short hash of it."""
    if isinstance(value, str):
        try:
            return names.check_label(value)
        except InvalidInput:
            pass
    return short_hash(value)


def sanitize(raw: str) -> str:
    """A valid chainml name for ``raw`` (steps 1 and 2 of the module docstring)."""
    name = _BAD_CHARS.sub("_", raw) or "_"
    if len(name) > 200:
        name = name[:191] + "-" + short_hash(raw, 8)
    return name


def map_names(raws: Iterable[str]) -> dict[str, str]:
    """Map foreign ids to distinct valid chainml names, independent of input order.

    Returns:
        ``{foreign id: chainml name}``; no two names are equal ignoring case.
    """
    groups: dict[str, list[str]] = defaultdict(list)
    for raw in sorted(set(raws)):
        groups[sanitize(raw).lower()].append(raw)
    taken = set(groups)
    out: dict[str, str] = {}
    for _, members in sorted(groups.items()):
        keeper = next((m for m in members if sanitize(m) == m), members[0])
        out[keeper] = sanitize(keeper)
        for raw in members:
            if raw == keeper:
                continue
            size = 8
            while True:
                base = sanitize(raw)[: 200 - size - 1]
                candidate = f"{base}-{short_hash(raw, size)}"
                if candidate.lower() not in taken:
                    break
                size += 4
            taken.add(candidate.lower())
            out[raw] = candidate
    return out


@dataclass(frozen=True)
class KindRule:
    """``SELECTOR:PATTERN=KIND``: nodes whose SELECTOR value matches PATTERN get KIND."""

    selector: str
    pattern: str
    kind: Kind

    def matches(self, attrs: Mapping[str, Iterable[str]]) -> bool:
        """True when any value of the rule's selector matches its glob pattern."""
        return any(fnmatchcase(v, self.pattern) for v in attrs.get(self.selector, ()))


def parse_kind_map(kind_map: KindMap, selectors: Collection[str]) -> list[KindRule]:
    """Read kind-map rules, given as ``["tag:ml=model", ...]`` or ``{"tag:ml": "model"}``.

    Raises:
        InvalidInput: a rule with an unknown selector or kind, or without a pattern.
    """
    if kind_map is None:
        return []
    if isinstance(kind_map, str):
        kind_map = [kind_map]
    if isinstance(kind_map, Mapping):
        items = [(f"{k}={v}", str(k), str(v)) for k, v in kind_map.items()]
    else:
        items = [(str(r), *str(r).rpartition("=")[::2]) for r in kind_map]
    rules = []
    for text, lhs, kind in items:
        selector, sep, pattern = lhs.partition(":")
        if not sep or not pattern or selector not in selectors or kind not in ALL_KINDS:
            raise InvalidInput(
                f"Invalid kind_map rule {text!r}: write SELECTOR:PATTERN=KIND with SELECTOR "
                f"one of {', '.join(selectors)} and KIND one of {', '.join(ALL_KINDS)}.")
        rules.append(KindRule(selector, pattern, Kind(kind)))
    return rules


def pick_kind(rules: Sequence[KindRule], attrs: Mapping[str, Iterable[str]], default: Kind) -> Kind:
    """The kind of the first matching rule, else ``default``."""
    for rule in rules:
        if rule.matches(attrs):
            return rule.kind
    return default


def clean_text(value: object, limit: int = MAX_DESCRIPTION) -> str | None:
    """Foreign free text made storable: every character XML 1.0 forbids (NUL, other C0
    controls, surrogates, U+FFFE/U+FFFF) dropped, line breaks made LF, cut to ``limit``.

    Registration refuses such characters in text typed by a user; in a dbt manifest or
    an OpenLineage facet nobody can fix them, so the import cleans them instead.
    """
    if not isinstance(value, str):
        return None
    text = names.NOT_XML.sub("", names.unify_newlines(value) or "")
    return text[:limit] or None


def clean_owner(value: object) -> str | None:
    """A one-line owner of at most 200 characters, or None."""
    text = clean_text(value, 200) or ""
    return "".join(c for c in text if c.isprintable()).strip() or None


def clean_tags(values: object) -> list[str]:
    """The valid, distinct tags of a foreign tag list (others are dropped)."""
    if not isinstance(values, list):
        return []
    out: list[str] = []
    for v in values:
        if isinstance(v, str) and 0 < len(v) <= MAX_TAG and v.isprintable() and v not in out:
            out.append(v)
    return out


def read_json(path: str | Path, max_bytes: int) -> tuple[Any, str]:
    """Read a JSON file within the size limit; returns (data, file name for messages)."""
    filename = Path(path).name
    return parse_json(read_text(path, max_bytes), filename, max_depth=MAX_IMPORT_DEPTH), filename


def make_node(source: str, **fields: Any) -> ChainNode:
    """Build a ChainNode; an invalid field is the foreign file's fault, so say where."""
    where = f"{source} (node {fields.get('name')!r})"
    if fields.get("kind") is Kind.SOURCE and fields.get("inputs"):
        raise KindRuleError(f"{where}: a source may not have inputs; check the kind_map rules.")
    try:
        return ChainNode(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InvalidInput(f"{where}: {field + ': ' if field else ''}"
                           f"{err['msg'].rstrip('.')}.") from None


def build_chain(nodes: Iterable[ChainNode], source: str) -> ChainFile:
    """Assemble the chain file, sorted by name, and check kinds and cycles.

    Raises:
        InvalidInput: (KindRuleError, CycleError) naming ``source``; usually a kind_map
            rule gave a node a kind that may not consume its inputs.
    """
    chain = ChainFile(chainml=1, nodes=sorted(nodes, key=lambda n: n.name))
    try:
        validate_graph(chain)
    except ChainmlError as exc:
        exc.args = (f"{source}: {str(exc).rstrip('.')}; check the kind_map rules.",)
        raise
    return chain
