"""Registering nodes and versions, and moving the current version (promote).

Validation order matters and is part of the contract: names and labels, then
the node's kind, then every input (exists, kind rule), then immutability, and
the cycle rule last. Everything runs inside the caller's write transaction, so
a refusal leaves the registry as it was.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator
from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import Node, Version
from chainml.errors import CycleError, InvalidInput, KindRuleError, NodeNotFound, VersionConflict
from chainml.kinds import ALL_KINDS, NEEDS_TESTS_BY_DEFAULT, Kind, consumable_by, may_consume
from chainml.names import (
    check_json,
    check_label,
    check_name,
    check_tag,
    check_text,
    format_duration,
    parse_duration,
    parse_input_spec,
    unify_newlines,
)
from chainml.rules import graph, marks
from chainml.schemas import RegisterResult

# A maximum age (retraining frequency) beyond this is a typo; it must also fit the column.
MAX_AGE = timedelta(days=3650)


class NodeSpec(BaseModel):
    """One registration: a node (created or updated) and one of its versions.

    ``inputs``/``feedback`` left as None keep the inputs of the version being
    re-registered, or else of the current version; ``[]`` clears them.
    Node settings left as None are not changed.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    name: str
    version: str
    inputs: list[str] | None = None
    feedback: list[str] | None = None
    meta: dict[str, Any] | None = None
    owner: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    node_meta: dict[str, Any] | None = None
    max_age: str | None = None
    needs_tests: bool | None = None
    required_suites: list[str] | None = None
    # A chain file states every setting: None then means "none", not "unchanged".
    declarative: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        return check_label(v)

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in ALL_KINDS:
            close = difflib.get_close_matches(str(v).lower(), ALL_KINDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise InvalidInput(f"Unknown kind {v!r}; use one of: {', '.join(ALL_KINDS)}.{hint}")
        return v

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str | None) -> str | None:
        check_text(v, "owner", 200)  # the column holds 200
        # One line, as a chain file requires (export must round-trip through apply).
        bad = next((c for c in v or "" if not c.isprintable()), None)
        if bad is not None:
            raise InvalidInput(f"The owner {v!r:.60} contains {bad!r}; use one line of "
                               "printable characters.")
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str | None) -> str | None:
        return unify_newlines(check_text(v, "description", 10000))

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str] | None) -> list[str] | None:
        for tag in v or []:
            check_tag(tag)
        return v

    @field_validator("meta", "node_meta")
    @classmethod
    def _meta(cls, v: dict[str, Any] | None, info: ValidationInfo) -> dict[str, Any] | None:
        if v is not None:
            check_json(v, info.field_name or "meta")
        return v

    @field_validator("max_age")
    @classmethod
    def _max_age(cls, v: str | None) -> str | None:
        if v not in (None, "", "none") and parse_duration(v, "maximum age") > MAX_AGE:
            raise InvalidInput(f"The maximum age {v!r} is too long (at most 3650d, 10 years).")
        return v


InputRow = tuple[int, int | None, bool]  # (upstream id, pinned version id, feedback)


class Resolved(NamedTuple):
    """The inputs a registration resolved, with what its history event names of them."""

    rows: list[InputRow]
    names: dict[int, str]  # upstream id -> name, for every row
    labels: dict[int, str]  # pinned version id -> label, for every pinned row
    retired: list[str]  # the retired upstreams among the rows kept from the base version
    base_label: str | None  # the label of the base version (``existing``, else current)


def _resolve_inputs(s: Session, spec: NodeSpec, node: Node | None,
                    existing: Version | None) -> Resolved:
    base_id = existing.id if existing is not None else (
        node.current_version_id if node is not None else None)
    base_label, base_rows = repo.inputs_named(s, base_id) if base_id is not None else (None, [])
    kind = Kind(spec.kind)
    rows: list[InputRow] = []
    names: dict[int, str] = {}
    labels: dict[int, str] = {}
    kept: list[repo.NamedInput] = []
    seen: set[str] = set()
    if spec.inputs is None:
        kept += [r for r in base_rows if not r.feedback]
        rows += [(r.upstream_id, r.pinned_version_id, False) for r in kept]
    else:
        for text in spec.inputs:
            name, pin = parse_input_spec(text)
            if name == spec.name:
                _refuse_self(kind, name)
            up = _input_node(s, spec.name, name, seen)
            if not may_consume(kind, Kind(up.kind)):
                raise KindRuleError(
                    f"A {kind.value} may not consume a {up.kind} ('{spec.name}' <- '{name}'); "
                    f"a {kind.value} consumes {consumable_by(kind)}."
                )
            pinned = repo.require_version(s, up, pin) if pin else None
            rows.append((up.id, pinned.id if pinned else None, False))
            names[up.id] = up.name
            if pinned is not None:
                labels[pinned.id] = pinned.label
    if spec.feedback is None:
        fed = [r for r in base_rows if r.feedback]
        kept += fed
        rows += [(r.upstream_id, None, True) for r in fed]
    else:
        for name in spec.feedback:
            check_name(name, "feedback input name")
            if name == spec.name:
                raise InvalidInput(f"'{name}' cannot be a feedback input of itself.")
            up = _input_node(s, spec.name, name, seen)
            rows.append((up.id, None, True))
            names[up.id] = up.name
    for r in kept:
        names[r.upstream_id] = r.name
        if r.pinned_version_id is not None and r.pinned_label is not None:
            labels[r.pinned_version_id] = r.pinned_label
    # Inputs the spec names were refused by _input_node if retired; kept ones not yet.
    return Resolved(rows, names, labels, sorted({r.name for r in kept if r.retired}),
                    base_label)


def _refuse_self(kind: Kind, name: str) -> None:
    """A node reading itself: the kind rule speaks first, then the cycle rule."""
    if not may_consume(kind, kind):
        raise KindRuleError(
            f"A {kind.value} may not consume a {kind.value} ('{name}' <- '{name}'); "
            f"a {kind.value} consumes {consumable_by(kind)}."
        )
    raise CycleError([name, name])


def _input_node(s: Session, me: str, name: str, seen: set[str]) -> Node:
    if name in seen:
        raise InvalidInput(f"Input '{name}' of '{me}' is given twice.")
    seen.add(name)
    up = repo.get_node(s, name)
    if up is None:
        raise NodeNotFound(name, reads.suggest(Db.over(s), name), consumer=me)
    if up.retired_at is not None:
        raise InvalidInput(f"Input '{name}' of '{me}' is retired; revive it first by registering "
                           f"a version of it (chainml register {up.kind} {name} --version ...).")
    return up


def _content(s: Session, v: Version) -> tuple[set[InputRow], dict[str, Any]]:
    rows = {(r.upstream_id, r.pinned_version_id, r.feedback) for r in repo.inputs_of(s, [v.id])}
    return rows, v.meta


MAX_DIFFERENCES = 6  # listed in a version conflict before "and N more"


def _conflict(s: Session, spec: NodeSpec, stored: set[InputRow], given: set[InputRow],
              stored_meta: dict[str, Any], given_meta: dict[str, Any]) -> str:
    """The refusal of an existing label with other content, saying what differs.

    The advice depends on where the registration came from: someone editing a chain
    file changed a node without bumping its version; someone at the command line (or
    in Python) reused a label.
    """
    diffs = _differences(s, stored, given, stored_meta, given_meta)
    if len(diffs) > MAX_DIFFERENCES:
        diffs = [*diffs[:MAX_DIFFERENCES], f"{len(diffs) - MAX_DIFFERENCES} more"]
    if spec.declarative:
        return (f"version '{spec.version}' is registered with other content: the file "
                f"{_and(diffs)}; versions are immutable, so give '{spec.name}' a new version "
                "in the file, or revert the edit.")
    return (f"Version '{spec.version}' of '{spec.name}' already exists with other content: "
            f"this registration {_and(diffs)}; versions are immutable, so register a new "
            "version label.")


def _and(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + (" and " if len(items) > 1 else "") + items[-1]


def _differences(s: Session, stored: set[InputRow], given: set[InputRow],
                 stored_meta: dict[str, Any], given_meta: dict[str, Any]) -> list[str]:
    """What ``given`` changes against ``stored``, as clauses: "adds input 'x'", ..."""
    db = Db.over(s)
    names = reads.names(db, [u for u, _, _ in stored | given])
    labels = reads.labels(db, [p for _, p, _ in stored | given])
    out: list[str] = []
    for feedback, noun in ((False, "input"), (True, "feedback input")):
        old = {u: p for u, p, fb in stored if fb == feedback}
        new = {u: p for u, p, fb in given if fb == feedback}
        for verb, ids in (("adds", new.keys() - old.keys()), ("removes", old.keys() - new.keys())):
            if ids:
                listed = _and([f"'{names[u]}'" for u in sorted(ids, key=names.__getitem__)])
                out.append(f"{verb} {noun}{'s' if len(ids) > 1 else ''} {listed}")
        for u in sorted(old.keys() & new.keys(), key=names.__getitem__):
            was, now = labels.get(old[u] or -1), labels.get(new[u] or -1)
            if was == now:
                continue
            if now is None:
                out.append(f"unpins '{names[u]}' from {was}")
            elif was is None:
                out.append(f"pins '{names[u]}' to {now}")
            else:
                out.append(f"pins '{names[u]}' to {now} instead of {was}")
    for key in sorted(given_meta.keys() | stored_meta.keys()):
        shown = repr(key if len(key) <= 40 else key[:40] + "...")
        if key not in stored_meta:
            out.append(f"adds meta {shown}")
        elif key not in given_meta:
            out.append(f"removes meta {shown}")
        elif given_meta[key] != stored_meta[key]:
            out.append(f"changes meta {shown}")
    return out or ["differs in its content"]


def check_cycle(s: Session, node: Node, rows: Sequence[InputRow]) -> None:
    """Refuse inputs that would close a cycle (feedback inputs may)."""
    regular = {u for u, _, fb in rows if not fb}
    if not regular:
        return
    if node.id in regular:
        raise CycleError([node.name, node.name])
    # The chain is acyclic, so only an edge it does not have yet can close a cycle:
    # a new version of a hub with its inputs unchanged needs no walk at all.
    new = sorted(regular - repo.regular_upstreams(s, node.id))
    db = Db.over(s)
    if not new or not reads.reaches_any(db, node.id, new):
        return
    g = graph.build(reads.edges_below(db, node.id, pins_too=True))
    cycle = graph.cycle_through(g, node.id, new)
    if cycle:
        names = reads.names(Db.over(s), cycle)
        raise CycleError([names[i] for i in cycle])


def _node_settings(spec: NodeSpec) -> dict[str, Any]:
    """The node-level fields this spec sets (None = leave alone, unless declarative)."""
    if spec.declarative:
        return {
            "owner": spec.owner, "description": spec.description, "tags": spec.tags or [],
            "meta": spec.node_meta or {},
            "needs_tests": NEEDS_TESTS_BY_DEFAULT[Kind(spec.kind)]
            if spec.needs_tests is None else spec.needs_tests,
            "max_age_s": int(parse_duration(spec.max_age, "maximum age").total_seconds())
            if spec.max_age else None,
            "required_suites": spec.required_suites or [],
        }
    out: dict[str, Any] = {}
    for field in ("owner", "description", "tags", "needs_tests", "required_suites"):
        value = getattr(spec, field)
        if value is not None:
            out[field] = value
    if spec.node_meta is not None:
        out["meta"] = spec.node_meta
    if spec.max_age is not None:
        out["max_age_s"] = (
            None if spec.max_age in ("", "none")
            else int(parse_duration(spec.max_age, "maximum age").total_seconds())
        )
    for suite in out.get("required_suites", []):
        check_label(suite, "suite name")
    return out


def register(s: Session, spec: NodeSpec, at: datetime, actor: str, *,
             known: tuple[Node, Version | None] | None = None) -> RegisterResult:
    """Create or update a node and register (or re-confirm) one version of it.

    ``known``: the node named ``spec.name`` and its version ``spec.version`` (None: there
    is none), when the caller has just looked them up (ingestion has), so that they are
    not looked up again.

    The caller holds the write lock (``repository.lock_writes``), as for every function
    here that writes.
    """
    node = known[0] if known is not None else repo.get_node(s, spec.name)
    settings = _node_settings(spec)
    result = RegisterResult(node=spec.name, version=spec.version)
    if node is None:
        clash = repo.get_node_by_key(s, spec.name)
        if clash is not None:
            raise InvalidInput(
                f"Node name '{spec.name}' differs from the existing '{clash.name}' only in "
                "letter case; such names are refused as confusable."
            )
    elif node.kind != spec.kind:
        raise InvalidInput(
            f"'{spec.name}' is a {node.kind}, not a {spec.kind}; a node's kind cannot change."
        )
    existing = None
    if node is not None:
        existing = known[1] if known is not None else repo.get_version(s, node, spec.version)
    inputs = _resolve_inputs(s, spec, node, existing)
    rows = inputs.rows
    if inputs.retired:
        raise InvalidInput(f"Input '{inputs.retired[0]}' of '{spec.name}' is retired; revive it "
                           f"first by registering a version of it.")
    meta = spec.meta if spec.meta is not None else (existing.meta if existing else {})
    if existing is not None:
        stored_rows, stored_meta = _content(s, existing)
        if (stored_rows, stored_meta) != (set(rows), meta):
            raise VersionConflict(_conflict(s, spec, stored_rows, set(rows), stored_meta, meta))
    if node is None:
        node = _create_node(s, spec, settings, at, actor)
        result.created_node = True
    else:
        result.updated_fields = _update_node(s, node, settings, at, actor)
    revive = node.retired_at is not None
    if existing is None:
        # Inputs kept from the current version of a live node (as by every version an
        # OpenLineage run registers) are in the edge table already, and as the chain is
        # acyclic, regular ones close no cycle.
        if spec.inputs is not None or revive:
            check_cycle(s, node, rows)
        kept = spec.inputs is None and spec.feedback is None and not revive
        vid = repo.add_version(s, node, spec.version, meta, at, actor, rows)
        result.created_version = True
        result.previous_version = inputs.base_label  # the base is the current version
        if revive:
            _revive(s, node, at, actor)
        event = repo.add_event(s, at, actor, "version.registered", node.name, spec.version,
                            previous=result.previous_version,
                            inputs=_specs(inputs, False), feedback=_specs(inputs, True),
                            meta=meta)
        result.marked = move_current(s, node, vid, None if kept else rows, at, event)
        result.current_changed = True
    elif revive:
        # Registering a retired name again revives it, at the version given.
        check_cycle(s, node, rows)
        result.previous_version = reads.label(Db.over(s), node.current_version_id)
        _revive(s, node, at, actor)
        event = repo.add_event(s, at, actor, "version.promoted", node.name, existing.label,
                            previous=result.previous_version)
        result.marked = move_current(s, node, existing.id, rows, at, event)
        result.current_changed = True
    elif {"needs_tests", "required_suites"} & set(result.updated_fields):
        # Only these change what decides the status; owner or tags do not.
        marks.rebuild(s, node, at)
    return result


def _revive(s: Session, node: Node, at: datetime, actor: str) -> None:
    node.retired_at = None
    repo.add_event(s, at, actor, "node.revived", node.name)


def _specs(inputs: Resolved, feedback: bool) -> list[str]:
    """The inputs (or feedback inputs) as the history shows them: 'name' or 'name@pin'."""
    return sorted(inputs.names[u] + (f"@{inputs.labels[p]}" if p else "")
                  for u, p, fb in inputs.rows if fb == feedback)


def _create_node(s: Session, spec: NodeSpec, settings: dict[str, Any], at: datetime,
                 actor: str) -> Node:
    node = Node(
        name=spec.name, name_key=spec.name.lower(), kind=spec.kind,
        owner=settings.get("owner"), description=settings.get("description"),
        tags=settings.get("tags", []), meta=settings.get("meta", {}),
        needs_tests=settings.get("needs_tests", NEEDS_TESTS_BY_DEFAULT[Kind(spec.kind)]),
        max_age_s=settings.get("max_age_s"), required_suites=settings.get("required_suites", []),
        current_version_id=None, created_at=at, updated_at=at,
    )
    s.add(node)
    s.flush()
    repo.add_event(s, at, actor, "node.created", node.name, kind=node.kind,
                   **{k: v for k, v in settings.items() if k != "meta"})
    return node


# Column names as users know them (the CLI option / chain-file field).
_SHOWN = {"max_age_s": "max_age", "meta": "node_meta"}


def _shown(field: str, value: Any) -> Any:
    if field == "max_age_s" and value is not None:
        return format_duration(int(value))
    return value


def _update_node(s: Session, node: Node, settings: dict[str, Any], at: datetime,
                 actor: str) -> list[str]:
    changed = {k: v for k, v in settings.items() if getattr(node, k) != v}
    if not changed:
        return []
    before = {_SHOWN.get(k, k): _shown(k, getattr(node, k)) for k in changed}
    after = {_SHOWN.get(k, k): _shown(k, v) for k, v in changed.items()}
    for k, v in changed.items():
        setattr(node, k, v)
    node.updated_at = at
    repo.add_event(s, at, actor, "node.updated", node.name, before=before, after=after)
    return sorted(_SHOWN.get(k, k) for k in changed)


def move_current(s: Session, node: Node, version_id: int, inputs: Sequence[InputRow] | None,
                 at: datetime, event_id: int) -> int:
    """Point ``node`` at ``version_id``, whose inputs are ``inputs`` (None: the same as
    the version current so far), refresh its edges and make every mark exact again: its
    own, and those of every node below it."""
    old = node.current_version_id
    repo.point_at(s, node, version_id, at)
    if inputs is not None:
        repo.replace_edges(s, node.id, inputs)
    count = marks.propagate(s, node, old, version_id, at, event_id)
    marks.rebuild(s, node, at, event_id)
    return count


def promote(s: Session, name: str, label: str, at: datetime, actor: str) -> RegisterResult:
    """Make an existing version current again (a rollback or roll-forward)."""
    node = repo.require_node(s, name)
    if node.retired_at is not None:
        raise InvalidInput(f"'{name}' is retired; register a version of it to revive it.")
    v = repo.require_version(s, node, label)
    result = RegisterResult(node=name, version=label)
    if node.current_version_id == v.id:
        return result
    rows = [(r.upstream_id, r.pinned_version_id, r.feedback) for r in repo.inputs_of(s, [v.id])]
    gone = repo.retired_among(s, [u for u, _, _ in rows])
    if gone:
        raise InvalidInput(
            f"Version '{label}' of '{name}' reads the retired node '{gone[0]}'; revive it first "
            f"by registering a version of it, then promote again.")
    check_cycle(s, node, rows)
    previous = reads.label(Db.over(s), node.current_version_id)
    event = repo.add_event(s, at, actor, "version.promoted", node.name, label, previous=previous)
    result.previous_version = previous
    result.marked = move_current(s, node, v.id, rows, at, event)
    result.current_changed = True
    return result


def retire(s: Session, names: Sequence[str], at: datetime, actor: str,
           reason: str | None = None, via: str | None = None) -> list[str]:
    """Retire nodes: they leave the current chain, their history stays; returns the
    names retired now (already retired ones are skipped).

    Refused while a node that stays in the chain reads one of them (regular or feedback
    input): retiring several at once allows them to read each other.
    """
    nodes = [repo.require_node(s, n) for n in names]
    live = [n for n in nodes if n.retired_at is None]
    going = {n.id for n in live}
    for n in live:
        readers = sorted({c for c, cid in repo.consumers_of(s, n.id) if cid not in going})
        if readers:
            raise InvalidInput(
                f"Cannot retire '{n.name}': {_quoted(readers)} still "
                f"{'reads' if len(readers) == 1 else 'read'} it; register "
                f"{'a version' if len(readers) == 1 else 'versions'} without it, or retire "
                f"{'that node' if len(readers) == 1 else 'them'} too.")
    for n in live:
        n.retired_at = at
        n.updated_at = at
        repo.drop_edges(s, n.id)
        repo.add_event(s, at, actor, "node.retired", n.name, None, kind=n.kind, reason=reason,
                       **({"via": via} if via else {}))
        s.flush()
        marks.rebuild(s, n, at)
    return [n.name for n in live]


def _quoted(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
