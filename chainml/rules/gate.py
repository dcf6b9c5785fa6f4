"""Status of many nodes and the CI gate (``check``), from the persisted marks.

Runs over a ``direct.Db``: the command line reads the registry without
SQLAlchemy, the ``Registry`` inside its session; both get the same answers.
Per node the work is a handful of tuple lookups (``status.evaluate``) and the
entries are built without re-validating what the registry itself wrote: after
a hub changes, 28,000 nodes each carry a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from chainml.db import reads
from chainml.db.direct import Db
from chainml.rules.status import Entry, Facts, evaluate, to_entries

if TYPE_CHECKING:  # the models cost pydantic's import; ``entries`` runs without them
    from chainml.schemas import CheckResult, Finding, StatusEntry


def statuses(db: Db, ids: Sequence[int] | None, now: datetime) -> dict[int, StatusEntry]:
    """Status of the testable nodes among ``ids`` (all when None), by node id."""
    plain = entries(db, ids, now)
    return dict(zip(plain, to_entries(list(plain.values())), strict=True))


def entries(db: Db, ids: Sequence[int] | None, now: datetime) -> dict[int, Entry]:
    """``statuses`` as plain entries (every field; ``status.to_entries`` makes them
    models): what ``status`` on the command line writes without loading pydantic."""
    nodes = reads.status_nodes(db, ids)
    if not nodes:
        return {}
    scope = None if ids is None else [n.id for n in nodes]
    runs = reads.status_runs(db, scope)
    open_ = reads.status_marks(db, scope)
    waivers = reads.status_waivers(db, scope, now)
    marks = [m for ms in open_.values() for m in ms]
    names = reads.names(db, {m.cause_id for m in marks})
    labels = reads.labels(db, [v for m in marks for v in (*m.tested_versions, *m.now_versions)])
    return {n.id: evaluate(Facts(id=n.id, name=n.name, kind=n.kind, owner=n.owner,
                                 version=n.label, version_created_at=n.created_at,
                                 max_age_s=n.max_age_s, required_suites=n.required_suites,
                                 runs=runs.get(n.id, []), names=names, labels=labels),
                           open_.get(n.id, []), waivers.get(n.id, []), now) for n in nodes}


def status(db: Db, name: str | None, now: datetime) -> list[StatusEntry]:
    """Every node that needs tests (or one node), sorted by name."""
    ids = [reads.require_live(db, name).id] if name else None
    return sorted(statuses(db, ids, now).values(), key=lambda e: e.name)


def check(db: Db, names: Sequence[str], strict: bool, now: datetime) -> CheckResult:
    """The CI gate over all nodes, or over ``names`` and everything upstream of them."""
    ids: list[int] | None = None
    if names:
        scope: set[int] = set()
        for node in [reads.require_live(db, n) for n in names]:
            scope.add(node.id)
            if node.current_version_id is not None:
                scope |= reads.lineage_nodes(db, node.current_version_id)
        ids = sorted(scope)
    entries = sorted(statuses(db, ids, now).values(), key=lambda e: e.name)
    return gate_result(entries, strict, list(names) or None)


def gate_result(entries: list[StatusEntry], strict: bool, scope: list[str] | None,
                env: str | None = None) -> CheckResult:
    """The gate's verdict over status entries (sorted by name): the PASSING rule, stale a
    warning unless ``strict``. ``env``: the environment ``check --env`` checked."""
    from chainml.schemas import PASSING, CheckResult, Status, trusted

    counts: dict[str, int] = {}
    for e in entries:
        counts[e.status.value] = counts.get(e.status.value, 0) + 1
    failing = [e for e in entries
               if e.status not in PASSING or (strict and e.status == Status.STALE)]
    warnings = [e for e in entries if e.status == Status.STALE and not strict]
    return trusted(CheckResult, {"ok": not failing, "env": env, "strict": strict,
                                 "scope": scope, "checked": len(entries), "counts": counts,
                                 "failing": failing, "warnings": warnings,
                                 "observed": None})


def with_findings(result: CheckResult, findings: Sequence[Finding]) -> CheckResult:
    """``check --observed``: the result with the undeclared-consumer findings; under
    ``--strict`` any finding fails the gate (a hidden read is an untested dependency),
    else they are reported only."""
    return result.model_copy(update={"observed": list(findings),
                                     "ok": result.ok and not (result.strict and findings)})
