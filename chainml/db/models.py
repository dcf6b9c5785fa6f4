"""ORM tables (SQLAlchemy 2.0 typed declarative).

The migrations in ``migrations/versions`` create exactly these tables; a test
(tests/test_migrations.py) fails if the two drift apart.

Times are naive UTC everywhere: SQLite has no time zones and PostgreSQL would
otherwise convert to the session's zone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def Name(length: int) -> String:  # noqa: N802 - reads like a type in the columns below
    """Text compared byte for byte on every backend.

    MariaDB's default collation ignores case, which would make 'Ranker' find
    'ranker' and the version labels 'v1' and 'V1' collide.
    """
    return String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Node(Base):
    """One versioned thing in the chain."""

    __tablename__ = "node"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name(200), unique=True)
    # Lower-cased name: a unique index on it refuses names that differ only in case.
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    owner: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    needs_tests: Mapped[bool] = mapped_column(Boolean)
    max_age_s: Mapped[int | None] = mapped_column(Integer)
    required_suites: Mapped[list[str]] = mapped_column(JSON)
    # No foreign key here: node <-> version would be a cycle of constraints,
    # which MariaDB and SQLite batch mode handle badly. The repository keeps it right.
    current_version_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
    # Set when the node leaves the chain (``chainml retire``); nothing is deleted, and
    # registering the name again clears it (migration 0003).
    retired_at: Mapped[datetime | None] = mapped_column(DateTime)


class Version(Base):
    """An immutable snapshot of a node's definition."""

    __tablename__ = "version"
    __table_args__ = (UniqueConstraint("node_id", "label", name="uq_version_node_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(Name(100))
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class VersionInput(Base):
    """One input of a version (regular or feedback, optionally pinned)."""

    __tablename__ = "version_input"
    # Who reads a node (the walk down a release makes, ``reads.readers``), from the index
    # alone; without it every step scanned the table (migration 0008).
    __table_args__ = (Index("ix_version_input_readers", "upstream_id", "feedback",
                            "version_id", "pinned_version_id"),)

    version_id: Mapped[int] = mapped_column(
        ForeignKey("version.id", ondelete="CASCADE"), primary_key=True
    )
    upstream_id: Mapped[int] = mapped_column(
        ForeignKey("node.id", ondelete="CASCADE"), primary_key=True
    )
    feedback: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    pinned_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("version.id", ondelete="CASCADE")
    )


class Edge(Base):
    """The inputs of every node's *current* version, kept in step with the pointer.

    A derived table: it makes upstream/downstream walks one indexed lookup per
    hop (recursive CTEs), so the cost follows the affected part of the chain.
    """

    __tablename__ = "edge"
    # Covering indexes, one per walk direction: a recursive step reads only the index
    # (no table lookup for feedback/pin), which made the 80,000-node walk below a hub
    # ~30% faster on SQLite (migration 0002).
    __table_args__ = (
        Index("ix_edge_walk_down", "upstream_id", "feedback", "pinned_version_id",
              "downstream_id"),
        Index("ix_edge_walk_up", "downstream_id", "feedback", "pinned_version_id",
              "upstream_id"),
    )

    upstream_id: Mapped[int] = mapped_column(
        ForeignKey("node.id", ondelete="CASCADE"), primary_key=True
    )
    downstream_id: Mapped[int] = mapped_column(
        ForeignKey("node.id", ondelete="CASCADE"), primary_key=True
    )
    feedback: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    pinned_version_id: Mapped[int | None] = mapped_column(Integer)


class TestRun(Base):
    """A recorded (re)test with its lineage snapshot."""

    __tablename__ = "test_run"
    # Covering for status: the runs of current versions are read without touching the
    # rows, whose snapshots are kilobytes each (migration 0002).
    # By version: the runs of given versions (``reads.version_runs``), migration 0008.
    __table_args__ = (Index("ix_test_run_status", "node_id", "version_id", "recorded_at", "id",
                            "suite", "passed"),
                      Index("ix_test_run_version", "version_id", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    version_id: Mapped[int] = mapped_column(ForeignKey("version.id", ondelete="CASCADE"))
    # '' is the unnamed suite; a real suite name is never empty.
    suite: Mapped[str] = mapped_column(Name(100))
    passed: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(DateTime)
    recorded_by: Mapped[str] = mapped_column(String(200))
    link: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class SnapshotPair(Base):
    """One (ancestor, version) pair of a run's lineage snapshot (migration 0003).

    Rows rather than a JSON list, so that "which runs were tested with A 2?" and
    "what did this run see of A?" are index lookups, not text searches.
    """

    __tablename__ = "snapshot_pair"
    __table_args__ = (Index("ix_snapshot_pair_node", "node_id", "run_id", "version_id"),)

    run_id: Mapped[int] = mapped_column(
        ForeignKey("test_run.id", ondelete="CASCADE"), primary_key=True
    )
    node_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class RetestMark(Base):
    """One cause of a node's needs_retest: an ancestor whose versions in the node's
    lineage differ from those a deciding run was tested with. Opened when a change
    makes them differ, closed when they agree again; never deleted."""

    __tablename__ = "retest_mark"
    __table_args__ = (Index("ix_retest_mark_node_open", "node_id", "closed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    cause_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"), index=True)
    # Version ids of the cause, sorted: in the deciding run's snapshot, and in the lineage
    # now. Either may be empty (the cause entered or left the lineage) or hold several
    # (read pinned and live).
    tested_versions: Mapped[list[int]] = mapped_column(JSON)
    now_versions: Mapped[list[int]] = mapped_column(JSON)
    path: Mapped[list[str]] = mapped_column(JSON)
    event_id: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # verified | superseded | recomputed | retired
    close_reason: Mapped[str | None] = mapped_column(String(20))


class Waiver(Base):
    """An audited acceptance of untested upstream changes, until it expires."""

    __tablename__ = "waiver"
    __table_args__ = (Index("ix_waiver_node_expires", "node_id", "expires_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    cause_id: Mapped[int | None] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    # NULL: a registry waiver (needs_retest); else it accepts skew in that environment
    # only (migration 0004). Each status reads its own kind and ignores the other.
    environment_id: Mapped[int | None] = mapped_column(
        ForeignKey("environment.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(Text)
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    # The exact facts accepted: [[cause_id, [tested version ids], [now version ids]], ...],
    # valid only while the node's deciding runs are still ``runs`` (test_run ids).
    covers: Mapped[list[Any]] = mapped_column(JSON)
    runs: Mapped[list[int]] = mapped_column(JSON)


class Event(Base):
    """Append-only history of every change."""

    __tablename__ = "event"
    __table_args__ = (Index("ix_event_node_name", "node_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40))
    # Names, not foreign keys: history outlives the rows it talks about.
    node_name: Mapped[str | None] = mapped_column(Name(200))
    version_label: Mapped[str | None] = mapped_column(Name(100))
    # The environment an event is about (env.created, deploy, undeploy, an environment
    # waiver), by name like the node: what ``log --env`` selects (migration 0004).
    env_name: Mapped[str | None] = mapped_column(Name(100), index=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class Environment(Base):
    """A named place where versions run (dev, staging, prod), optionally after another
    in a promotion order (migration 0004)."""

    __tablename__ = "environment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name(100), unique=True)
    # Lower-cased name: a unique index on it refuses names that differ only in case.
    name_key: Mapped[str] = mapped_column(String(100), unique=True)
    after_id: Mapped[int | None] = mapped_column(ForeignKey("environment.id"))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))


class Deployment(Base):
    """That an environment runs one version of a node from now on; append-only.

    What an environment serves is the latest row per (environment, node) by id (commit
    order); a NULL ``version_id`` records an undeploy. ``event_id`` is the release's
    history event (one per ``deploy``, shared by the nodes it released).
    """

    __tablename__ = "deployment"
    # The first answers "what does E serve" (the latest row per node) from the index
    # alone; the second "which releases touched node N" (``log N``).
    __table_args__ = (Index("ix_deployment_env_node", "environment_id", "node_id", "id"),
                      Index("ix_deployment_node", "node_id", "event_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    environment_id: Mapped[int] = mapped_column(
        ForeignKey("environment.id", ondelete="CASCADE"))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    version_id: Mapped[int | None] = mapped_column(ForeignKey("version.id", ondelete="CASCADE"))
    event_id: Mapped[int | None] = mapped_column(Integer)
    deployed_at: Mapped[datetime] = mapped_column(DateTime)
    deployed_by: Mapped[str] = mapped_column(String(200))
    link: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class ApiToken(Base):
    """A credential for the HTTP API (migration 0005): a name, a scope, and the SHA-256
    digest of its secret (``rules.tokens``), never the secret itself."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Name(100), unique=True)
    name_key: Mapped[str] = mapped_column(String(100), unique=True)  # refuses case twins
    scope: Mapped[str] = mapped_column(String(10))
    secret_digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(200))


class WriteLock(Base):
    """One row every write transaction updates first, so writers queue instead of racing.

    Portable across SQLite, PostgreSQL and MariaDB; reads are not blocked.
    """

    __tablename__ = "write_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    counter: Mapped[int] = mapped_column(Integer)


class LineageEvent(Base):
    """An OpenLineage event as received, once (migration 0007). ``dedup_key`` is a hash
    of (run id, event type), or of the body for an event without a run: a re-delivered
    event finds its key taken and stores nothing."""

    __tablename__ = "lineage_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedup_key: Mapped[str] = mapped_column(String(64), unique=True)
    run_id: Mapped[str | None] = mapped_column(Name(255), index=True)
    event_type: Mapped[str | None] = mapped_column(String(10))
    event_time: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime)
    received_by: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)


class LineageRun(Base):
    """A run whose COMPLETE was received, and what it registered (migration 0007): its
    events arriving later add outputs and findings, never a second version."""

    __tablename__ = "lineage_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(Name(255), unique=True)
    # Names, like the history: what the run registered, as it was then.
    job: Mapped[str] = mapped_column(Name(200))
    job_version: Mapped[str] = mapped_column(Name(100))
    outputs: Mapped[list[str]] = mapped_column(JSON)
    completed_at: Mapped[datetime] = mapped_column(DateTime)


class ObservedInput(Base):
    """An undeclared consumer (migration 0007): ``node`` was seen reading ``input`` (or
    ``input`` writing ``node``) in a run although its declared inputs do not name it.
    A finding, not an edge: it stays open while the declared inputs still leave it out."""

    __tablename__ = "observed_input"
    __table_args__ = (UniqueConstraint("node_id", "input_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"))
    input_id: Mapped[int] = mapped_column(ForeignKey("node.id", ondelete="CASCADE"),
                                          index=True)
    first_run: Mapped[str] = mapped_column(Name(255))
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_run: Mapped[str] = mapped_column(Name(255))
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    times: Mapped[int] = mapped_column(Integer)


class Hook(Base):
    """A webhook subscriber (migration 0006): where to POST which events, in which body
    format. ``secret_env`` names the environment variable that holds the signing secret
    in the sending process; the secret itself is never stored. Removed, never deleted."""

    __tablename__ = "hook"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[str]] = mapped_column(JSON)
    format: Mapped[str] = mapped_column(String(10))  # json | slack
    secret_env: Mapped[str | None] = mapped_column(String(200))
    max_attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(200))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)
    removed_by: Mapped[str | None] = mapped_column(String(200))


class Notification(Base):
    """The transactional outbox (migration 0006): one row per change some hook subscribes
    to, written in the change's own transaction. ``uuid`` is what receivers de-duplicate
    on (``X-Chainml-Delivery``)."""

    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    event: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime)


class Delivery(Base):
    """One notification to one hook (migration 0006): pending until a 2xx answer
    (delivered) or ``max_attempts`` failures (dead). A worker claims a due row by moving
    ``next_attempt_at`` past the attempt's timeout (a lease) and bumping ``attempts``."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("hook_id", "notification_id"),
                      Index("ix_delivery_due", "state", "next_attempt_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hook_id: Mapped[int] = mapped_column(ForeignKey("hook.id", ondelete="CASCADE"))
    notification_id: Mapped[int] = mapped_column(
        ForeignKey("notification.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(10))  # pending | delivered | dead
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime)


class GateVerdict(Base):
    """The registry gate's last verdict (migration 0006; one row, id 1): compared after
    each write while a hook subscribes to ``check.changed``."""

    __tablename__ = "gate_verdict"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ok: Mapped[bool] = mapped_column(Boolean)
    failing: Mapped[list[str]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime)
