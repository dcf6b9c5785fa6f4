"""Applying a chain file, and exporting the registry as one.

``apply`` makes the registry's current state match the file in ONE write
transaction: new nodes are inserted in bulk (a fresh 100,000-node chain must
load in under a minute), existing ones go through ordinary registration, so
impact marks are written exactly as ``chainml register`` writes them. A dry run
is the same work rolled back, so the plan shown is the plan applied.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from chainml.db import reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.errors import ChainmlError, InvalidInput
from chainml.files.chainfile import ChainFile, ChainNode, topological_order
from chainml.kinds import NEEDS_TESTS_BY_DEFAULT, Kind
from chainml.names import check_xml_chars, format_duration, parse_duration
from chainml.rules import registration
from chainml.schemas import Out

Progress = Callable[[int], None]


class PlanItem(Out):
    """One line of the plan: ``add``, ``version``, ``promote``, ``settings`` or ``retire``."""

    action: str
    node: str
    kind: str
    version: str | None = None
    previous: str | None = None
    detail: str | None = None


class ApplyResult(Out):
    file: str
    dry_run: bool
    items: list[PlanItem] = []
    unchanged: int = 0
    marked: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.items)


def _spec(n: ChainNode) -> registration.NodeSpec:
    """The file's node as a registration that states every setting (declarative)."""
    return registration.NodeSpec(
        kind=n.kind.value, name=n.name, version=n.version, inputs=list(n.inputs),
        feedback=list(n.feedback), meta=dict(n.meta), owner=n.owner,
        description=n.description, tags=list(n.tags), node_meta=dict(n.node_meta),
        max_age=n.max_age, needs_tests=n.effective_needs_tests(),
        required_suites=list(n.require_suites), declarative=True,
    )


def _settings(n: ChainNode) -> dict[str, Any]:
    return {
        "owner": n.owner, "description": n.description, "tags": list(n.tags),
        "meta": dict(n.node_meta), "needs_tests": n.effective_needs_tests(),
        "max_age_s": int(parse_duration(n.max_age).total_seconds()) if n.max_age else None,
        "required_suites": list(n.require_suites),
    }


def apply(s: Session, file: ChainFile, filename: str, *, prune: bool, at: datetime,
          actor: str, progress: Progress | None = None) -> ApplyResult:
    """Make the registry's current state match ``file`` (the caller owns the transaction
    and holds the write lock)."""
    _check_xml_chars(file, filename)
    order = topological_order(file)
    existing = repo.nodes_by_name(s, [n.name for n in order])
    result = ApplyResult(file=filename, dry_run=False)
    for n in order:
        old = existing.get(n.name)
        if old is not None and old.kind != n.kind.value:
            raise InvalidInput(f"{filename} (node '{n.name}'): the registry has '{n.name}' as a "
                               f"{old.kind}, the file as a {n.kind.value}; a kind cannot change.")
    fresh = [n.name for n in order if n.name not in existing]
    for name, clash in repo.names_by_key(s, fresh).items():
        raise InvalidInput(f"{filename} (node '{name}'): differs from the registered "
                           f"'{clash}' only in letter case (confusable).")
    new = [n for n in order if n.name not in existing]
    _create_nodes(s, new, at, actor, result)
    # Re-applying a file must be cheap: nodes whose state already matches skip the
    # registration path (a no-op apply of 100,000 nodes took over ten minutes).
    current = {c.name: _key(c) for c in _current_nodes(s)} if existing else {}
    pending: list[ChainNode] = []
    done = 0
    for n in order:
        if n.name not in existing:
            pending.append(n)
            continue
        if current.get(n.name) == _key(n):
            done += 1
            continue
        done += _flush_versions(s, pending, at, actor, filename)
        pending = []
        try:
            _register_existing(s, n, at, actor, result)
        except ChainmlError as e:
            # Name the file and node, keep the error's type (and exit code).
            e.args = (f"{filename} (node '{n.name}'): {e}",)
            raise
        done += 1
        if progress:
            progress(done)
    done += _flush_versions(s, pending, at, actor, filename)
    if progress:
        progress(done)
    if prune:
        _prune(s, {n.name for n in order}, at, actor, result)
    result.unchanged = len(order) - len({i.node for i in result.items if i.action != "retire"})
    return result


def _check_xml_chars(file: ChainFile, filename: str) -> None:
    """Refuse what registration refuses in free text: new nodes are inserted in bulk,
    past ``NodeSpec``, and a file or an importer can spell any character as an escape."""
    for n in file.nodes:
        for field, text in (("description", n.description), ("owner", n.owner),
                            *(("tag", tag) for tag in n.tags)):
            if text:
                try:
                    check_xml_chars(text, field)
                except InvalidInput as e:
                    raise InvalidInput(f"{filename} (node '{n.name}'): {e}") from None


def _create_nodes(s: Session, nodes: Sequence[ChainNode], at: datetime, actor: str,
                  result: ApplyResult) -> None:
    """Insert the node rows first, so feedback inputs may name nodes later in the order."""
    rows = []
    for n in nodes:
        rows.append({"name": n.name, "name_key": n.name.lower(), "kind": n.kind.value,
                     "current_version_id": None, "created_at": at, "updated_at": at,
                     **_settings(n)})
        result.items.append(PlanItem(action="add", node=n.name, kind=n.kind.value,
                                     version=n.version))
    repo.insert_rows(s, "node", rows)
    _events(s, [{"at": at, "actor": actor, "action": "node.created", "node_name": n.name,
                 "version_label": None, "details": {"kind": n.kind.value, "via": "apply"}}
                for n in nodes])


def _events(s: Session, rows: list[dict[str, Any]]) -> None:
    repo.insert_rows(s, "event", rows)


def _flush_versions(s: Session, nodes: Sequence[ChainNode], at: datetime, actor: str,
                    filename: str) -> int:
    """Versions, inputs and edges of brand-new nodes, in bulk (they have no consumers yet)."""
    if not nodes:
        return 0
    names = {n.name for n in nodes}
    refs = {up for n in nodes for up, _ in n.input_refs()} | {f for n in nodes for f in n.feedback}
    ids = repo.ids_by_name(s, names)
    ids.update(repo.ids_by_name(s, refs - ids.keys()))
    vrows = [{"node_id": ids[n.name], "label": n.version, "meta": dict(n.meta), "created_at": at,
              "created_by": actor} for n in nodes]
    repo.insert_rows(s, "version", vrows)
    vids = repo.only_version_ids(s, [ids[n.name] for n in nodes])
    inputs: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for n in nodes:
        me, vid = ids[n.name], vids[ids[n.name]]
        for up, pin in n.input_refs():
            pin_id = _pin(s, up, pin, ids[up], vids, filename, n.name) if pin else None
            inputs.append({"version_id": vid, "upstream_id": ids[up],
                           "pinned_version_id": pin_id, "feedback": False})
            edges.append({"upstream_id": ids[up], "downstream_id": me,
                          "pinned_version_id": pin_id, "feedback": False})
        for up in n.feedback:
            inputs.append({"version_id": vid, "upstream_id": ids[up],
                           "pinned_version_id": None, "feedback": True})
            edges.append({"upstream_id": ids[up], "downstream_id": me,
                          "pinned_version_id": None, "feedback": True})
        events.append({"at": at, "actor": actor, "action": "version.registered",
                       "node_name": n.name, "version_label": n.version,
                       "details": {"previous": None, "inputs": sorted(n.inputs),
                                   "feedback": sorted(n.feedback), "meta": dict(n.meta),
                                   "via": "apply"}})
    repo.insert_rows(s, "version_input", inputs)
    repo.insert_rows(s, "edge", edges)
    repo.point_at_only_version(s, [ids[n.name] for n in nodes])
    _events(s, events)
    return len(nodes)


def _pin(s: Session, up: str, pin: str, up_id: int, fresh: dict[int, int], filename: str,
         me: str) -> int:
    found = reads.version_by_label(Db.over(s), up_id, pin)
    if found is None:
        raise InvalidInput(f"{filename} (node '{me}'): input '{up}@{pin}' pins a version "
                           f"'{up}' does not have.")
    return found


def _register_existing(s: Session, n: ChainNode, at: datetime, actor: str,
                       result: ApplyResult) -> None:
    node = repo.require_node(s, n.name)
    before = reads.label(Db.over(s), node.current_version_id)
    reg = registration.register(s, _spec(n), at, actor)
    if reg.created_version:
        result.items.append(PlanItem(action="version", node=n.name, kind=n.kind.value,
                                     version=n.version, previous=before,
                                     detail=f"{reg.marked} marked" if reg.marked else None))
        result.marked += reg.marked
    elif before != n.version:
        moved = registration.promote(s, n.name, n.version, at, actor)
        result.items.append(PlanItem(action="promote", node=n.name, kind=n.kind.value,
                                     version=n.version, previous=before))
        result.marked += moved.marked
    if reg.updated_fields:
        result.items.append(PlanItem(action="settings", node=n.name, kind=n.kind.value,
                                     detail=", ".join(reg.updated_fields)))


def _prune(s: Session, keep: set[str], at: datetime, actor: str, result: ApplyResult) -> None:
    """Retire the nodes of the chain the file does not declare (nothing is deleted);
    refused while a node that stays reads one of them."""
    gone = [n for n in repo.list_nodes(s) if n.name not in keep]
    try:
        registration.retire(s, [n.name for n in gone], at, actor, via="apply --prune")
    except InvalidInput as e:
        raise InvalidInput(f"{e} Remove that input in the file too, or keep the node in it."
                           ) from None
    for n in gone:
        result.items.append(PlanItem(action="retire", node=n.name, kind=n.kind))


def export(s: Session) -> ChainFile:
    """The registry's current state as a chain file (history stays in ``log``).

    Reads Core rows and builds the nodes without re-validating them (they come
    from our own tables): a 100,000-node export must not need a gigabyte.
    """
    return ChainFile.model_construct(chainml=1, nodes=_current_nodes(s))


def _key(n: ChainNode) -> tuple[Any, ...]:
    """Everything ``apply`` would change about a node, normalised for comparison."""
    age = int(parse_duration(n.max_age).total_seconds()) if n.max_age else None
    return (n.version, sorted(n.inputs), sorted(n.feedback), n.meta, n.owner or None,
            n.description or None, list(n.tags), age, n.effective_needs_tests(),
            list(n.require_suites), n.node_meta)


def _current_nodes(s: Session) -> list[ChainNode]:
    """Every registered node's current state, as chain-file nodes, sorted by name."""
    rows, edges = repo.current_state(s)
    names = {r.id: r.name for r in rows}
    pins = reads.labels(Db.over(s), [p for *_, p in edges if p is not None])
    inputs: dict[int, list[str]] = {}
    feedback: dict[int, list[str]] = {}
    for up, down, fb, pin in edges:
        if fb:
            feedback.setdefault(down, []).append(names[up])
        else:
            inputs.setdefault(down, []).append(names[up] + (f"@{pins[pin]}" if pin else ""))
    out = []
    for r in sorted(rows, key=lambda r: r.name):
        kind = Kind(r.kind)
        out.append(ChainNode.model_construct(
            name=r.name, kind=kind, version=r.label, inputs=sorted(inputs.get(r.id, [])),
            feedback=sorted(feedback.get(r.id, [])), owner=r.owner or None,
            description=r.description or None, tags=list(r.tags),
            max_age=format_duration(r.max_age_s) if r.max_age_s else None,
            needs_tests=None if r.needs_tests == NEEDS_TESTS_BY_DEFAULT[kind] else r.needs_tests,
            require_suites=list(r.required_suites), meta=dict(r.version_meta or {}),
            node_meta=dict(r.meta or {}),
        ))
    return out
