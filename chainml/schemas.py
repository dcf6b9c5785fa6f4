"""Pydantic models crossing the library boundary (API results, JSON output, requests).

These are the ``--json`` shapes of the command line; docs/json.md documents them.
They are not ORM rows and not graph nodes.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

M = TypeVar("M", bound=BaseModel)


def trusted(model: type[M], data: dict[str, Any]) -> M:
    """A model from data chainml itself built, every field present, without validation.

    What ``model_construct`` does, without its per-call overhead (seven times faster
    for the 28,000 status entries and reasons of a check after a hub change). Only for
    values the registry produced with the right types; input from users is validated.
    """
    obj = object.__new__(model)
    object.__setattr__(obj, "__dict__", data)
    object.__setattr__(obj, "__pydantic_fields_set__", set(data))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


class Out(BaseModel):
    """Base of output models: built from rows, dumped by alias ('from')."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True, serialize_by_alias=True,
                              defer_build=True)


class Status(str, Enum):
    VERIFIED = "verified"
    UNTESTED = "untested"
    FAILED = "failed"
    NEEDS_RETEST = "needs_retest"
    WAIVED = "waived"
    STALE = "stale"
    # Environment statuses only (status --env): what a deployment serves against what
    # its version was tested with.
    SKEWED = "skewed"
    MISSING_INPUT = "missing_input"


# Statuses that pass the CI gate (stale only without --strict).
PASSING = frozenset({Status.VERIFIED, Status.WAIVED, Status.STALE})


class InputRef(Out):
    """One input of a version: an upstream node, optionally pinned to one of its versions."""

    name: str
    pin: str | None = None

    def spec(self) -> str:
        return f"{self.name}@{self.pin}" if self.pin else self.name


class VersionOut(Out):
    label: str
    inputs: list[InputRef] = []
    feedback: list[str] = []
    meta: dict[str, Any] = {}
    created_at: datetime
    created_by: str
    current: bool = False


class NodeOut(Out):
    name: str
    kind: str
    owner: str | None = None
    description: str | None = None
    tags: list[str] = []
    meta: dict[str, Any] = {}
    needs_tests: bool
    max_age: str | None = None
    required_suites: list[str] = []
    current_version: str | None = None
    created_at: datetime
    retired_at: datetime | None = None


class Reason(Out):
    """Why a node is not verified. For an upstream change: the cause (one ancestor), the
    versions of it the deciding run was tested with and those the lineage holds now
    (``tested_with``/``now``; ``from``/``to`` are the same joined with ", ", null when
    empty), and the path that carries the difference."""

    cause: str
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    tested_with: list[str] = []
    now: list[str] = []
    path: list[str] = []
    suite: str | None = None
    message: str


class StatusEntry(Out):
    name: str
    kind: str
    version: str | None
    status: Status
    reasons: list[Reason] = []
    owner: str | None = None
    last_run: datetime | None = None
    waivers: list[int] = []
    required_suites: list[str] = []  # each needs its own run: the commands that clear name them


class NodeDetail(NodeOut):
    versions: list[VersionOut] = []
    inputs: list[InputRef] = []
    feedback: list[str] = []
    consumers: list[str] = []
    status: StatusEntry | None = None
    # What ingested runs saw it read outside its declared inputs (open findings).
    undeclared_inputs: list[Finding] = []


class ImpactEntry(Out):
    name: str
    kind: str
    distance: int
    path: list[str]
    needs_tests: bool


class ImpactResult(Out):
    node: str
    version: str | None
    impacted: list[ImpactEntry]


class RegisterResult(Out):
    node: str
    version: str
    created_node: bool = False
    created_version: bool = False
    current_changed: bool = False
    previous_version: str | None = None
    updated_fields: list[str] = []
    marked: int = 0

    @property
    def noop(self) -> bool:
        return not (self.created_node or self.created_version or self.current_changed
                    or self.updated_fields)


class TestRunOut(Out):
    id: int
    node: str
    version: str
    suite: str | None = None
    outcome: str
    recorded_at: datetime
    recorded_by: str
    link: str | None = None
    note: str | None = None
    closed_marks: int = 0


class WaiverOut(Out):
    id: int
    node: str
    env: str | None = None  # the environment whose skew it accepts; None: the registry
    cause: str | None = None
    reason: str
    granted_by: str
    granted_at: datetime
    expires_at: datetime
    covers: list[Reason] = []


class RetireResult(Out):
    node: str
    retired: list[str] = []  # the nodes retired by this call (empty: already retired)
    closed_marks: int = 0


class SchemaRevision(Out):
    current: str | None
    head: str
    up_to_date: bool


class EventOut(Out):
    id: int
    at: datetime
    actor: str
    action: str
    node: str | None = None
    version: str | None = None
    env: str | None = None
    details: dict[str, Any] = {}


class ReleaseOut(Out):
    """One release of one node to an environment: a deploy, or an undeploy
    (``version`` None), with the version the environment had deployed before (None when
    it had none: a source it read live until then included, where the release's event
    names that live version)."""

    event: int | None = None
    at: datetime
    env: str
    version: str | None = None
    previous: str | None = None
    by: str
    link: str | None = None
    note: str | None = None


class NodeHistory(Out):
    """A node's history as its page shows it: its events, oldest first, with each
    release narrowed to this node (``details.nodes`` holds its line only), and its
    releases."""

    events: list[EventOut] = []
    releases: list[ReleaseOut] = []


class NodeOverview(Out):
    """What a node's page shows (``Registry.node_overview``): the node, its history, the
    version each environment serves (its latest release there, undeploys left out), and
    its status in each of those environments (None: it gets none there), and the
    registry's generation it was read at (``Registry.generation``)."""

    node: NodeDetail
    history: NodeHistory
    served: dict[str, str] = {}
    env_status: dict[str, StatusEntry | None] = {}
    generation: int = 0


class CheckResult(Out):
    ok: bool
    env: str | None = None  # check --env: the environment checked; None: the registry
    strict: bool = False
    scope: list[str] | None = None
    checked: int
    counts: dict[str, int] = {}
    failing: list[StatusEntry] = []
    warnings: list[StatusEntry] = []
    # check --observed: the open undeclared-consumer findings (failing under --strict);
    # left out of the JSON when not asked for.
    observed: list[Finding] | None = Field(default=None, exclude_if=lambda v: v is None)


# ---- environments ----------------------------------------------------------------------------


class EnvironmentOut(Out):
    name: str
    after: str | None = None  # the environment this one comes after in the promotion order
    description: str | None = None
    created_at: datetime
    created_by: str
    deployed_nodes: int = 0  # nodes deployed there now


class ServedNode(Out):
    """One node an environment serves: deployed there, or a source never deployed there
    that a deployed node reads (live data, at its registry current version)."""

    name: str
    kind: str
    version: str  # the version served there
    current_version: str | None = None  # the registry's current version
    deployed: bool  # False: a live source
    deployed_at: datetime | None = None
    deployed_by: str | None = None
    link: str | None = None
    note: str | None = None
    retired: bool = False
    status: StatusEntry | None = None  # environment status (deployed nodes that need tests)


class EnvironmentDetail(EnvironmentOut):
    nodes: list[ServedNode] = []


class EnvDiffEntry(Out):
    name: str
    kind: str
    a_version: str | None = None  # served in environment a (None: absent there)
    b_version: str | None = None


class EnvDiff(Out):
    a: str
    b: str
    differences: list[EnvDiffEntry] = []
    same: int = 0  # nodes served at the same version in both


class ReleaseItem(Out):
    node: str
    kind: str
    version: str
    previous: str | None = None  # what the environment served before (None: absent)


class ReleaseResult(Out):
    """A release (``deploy``): what it deploys, and the environment status after it of
    every node whose serving lineage it changes."""

    env: str
    ok: bool  # no node it changes would be untested, failed, skewed or missing_input
    recorded: bool  # False: --check, or refused
    check: bool = False
    forced: bool = False
    reason: str | None = None
    link: str | None = None
    note: str | None = None
    event: int | None = None  # the history event of a recorded release
    deployed_at: datetime | None = None
    deployed_by: str | None = None
    nodes: list[ReleaseItem] = []
    checked: list[StatusEntry] = []  # every node the release touches that needs tests
    problems: list[StatusEntry] = []  # those of them that block it


class UndeployResult(Out):
    env: str
    node: str
    version: str  # the version it served until now
    event: int
    undeployed_at: datetime
    undeployed_by: str
    missing_input: list[str] = []  # deployed nodes that now read a node env does not serve


class PlanNode(Out):
    """One node of a planned release."""

    node: str
    kind: str
    version: str  # the version to deploy
    previous: str | None = None  # what the environment serves now (None: absent)
    target: str | None = None  # the target's version (differs when another one verifies)
    why: str  # "named": brought to the target; "lineage": its serving lineage changes;
    #           "input": a planned version reads it and the environment lacks it


class PlanPair(Out):
    node: str
    version: str


class PlanBlocker(Out):
    """A node no version of which verifies against the lineage the release gives it."""

    node: str
    version: str  # the version a retest would unblock (the target's, else the served one)
    status: Status  # what it would be at that version
    reasons: list[str] = []
    tested_with: list[PlanPair] = []  # the (ancestor, version) pairs the test must see
    retest: str  # the command that records the retest


class PlanResult(Out):
    """``plan``: the smallest release that brings nodes of ``env`` to ``to``'s versions
    and leaves no node it touches untested, failed, skewed or missing an input."""

    env: str
    to: str  # "current" or an environment
    ok: bool  # False: blocked
    nodes: list[PlanNode] = []  # the release, upstream first
    blocked: list[PlanBlocker] = []
    command: str | None = None  # the deploy command that applies it (None: empty or blocked)


class TokenOut(Out):
    """An API token as listed: never its secret."""

    name: str
    scope: str  # read, write or admin
    state: str  # active, expired or revoked
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


class TokenCreated(TokenOut):
    """``token create``: the token itself, shown this once (only its digest is stored)."""

    token: str


# ---- OpenLineage ingestion ---------------------------------------------------------------------


class IngestedRun(Out):
    """A completed run, or a late event of one, and what it registered."""

    run_id: str
    job: str  # the job's node
    version: str  # the job's version: its version facet, else the run id
    created_version: bool = False  # False: a run of a version the job already had
    outputs: list[str] = []  # "dataset@version" registered for this run
    findings: list[str] = []  # "reader <- read": observed, not declared


class IngestResult(Out):
    """``ingest`` and ``POST /api/v1/lineage``: what a batch of events did."""

    events: int  # received
    stored: int = 0  # new; the rest were duplicates (at-least-once delivery)
    duplicates: int = 0
    runs: list[IngestedRun] = []  # runs whose COMPLETE (or a late event) registered
    created: list[str] = []  # nodes seen for the first time
    marked: int = 0  # retest marks opened by the registrations
    findings: int = 0  # new undeclared-consumer findings


class Finding(Out):
    """An undeclared consumer: ``node`` was seen reading ``input``, which its declared
    inputs leave out (``check --observed``, ``show``)."""

    node: str
    input: str
    first_run: str
    first_seen: datetime
    last_run: str
    last_seen: datetime
    times: int  # runs that read it


# ---- webhooks ----------------------------------------------------------------------------------


class HookOut(Out):
    """A webhook (``hook add``, ``hook list``): where notifications of its events go."""

    id: int
    url: str
    events: list[str]
    format: str  # json | slack
    secret_env: str | None = None  # the variable the worker reads the secret from
    max_attempts: int
    state: str  # active | removed
    created_at: datetime
    created_by: str
    removed_at: datetime | None = None
    cancelled: int = 0  # hook remove: pending deliveries it turned dead


class DeliveryOut(Out):
    """One notification to one hook (``hook deliveries``, ``hook replay``)."""

    id: int
    hook: int
    url: str
    notification: str  # the notification's id: X-Chainml-Delivery, the same on every attempt
    event: str
    created_at: datetime  # when the change happened
    state: str  # pending | delivered | dead
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None = None  # pending only
    last_status: int | None = None  # the receiver's HTTP status, None: no answer
    last_error: str | None = None
    delivered_at: datetime | None = None
    payload: dict[str, Any] = {}


class DeliverResult(Out):
    """``hook run --once`` (``Registry.deliver_due``): what one pass sent."""

    attempted: int = 0
    delivered: int = 0
    retrying: int = 0  # failed, due again after a backoff
    dead: int = 0  # failed for the last time
