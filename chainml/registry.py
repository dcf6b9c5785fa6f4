"""The public Python API: one ``Registry`` object, one transaction per call.

Example:
    >>> from chainml import Registry
    >>> reg = Registry.init("/tmp/demo")            # creates /tmp/demo/.chainml/registry.db
    >>> reg.register(kind="source", name="clicks_raw", version="1")
    >>> reg.register(kind="model", name="ranker", version="1", inputs=["clicks_raw"])
    >>> reg.record_test("ranker", passed=True)
    >>> reg.check().ok
    True
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from chainml.db import engine as dbe
from chainml.db import location, migrate, reads
from chainml.db import repository as repo
from chainml.db.direct import Db
from chainml.db.models import Event, Node, TestRun, Version, Waiver
from chainml.errors import InvalidInput, unknown_field
from chainml.hooks.policy import DEFAULT_MAX_ATTEMPTS, WorkerSettings
from chainml.kinds import Kind
from chainml.names import (
    check_label,
    check_text,
    format_duration,
    parse_duration,
    unify_newlines,
)
from chainml.rules import (  # outbox: also installs its before-commit listener
    gate,
    graph,
    marks,
    outbox,
    registration,
)
from chainml.rules.status import Facts, recompute, to_entries, utcnow
from chainml.schemas import (
    CheckResult,
    DeliverResult,
    DeliveryOut,
    EnvDiff,
    EnvironmentDetail,
    EnvironmentOut,
    EventOut,
    Finding,
    HookOut,
    ImpactResult,
    IngestResult,
    InputRef,
    NodeDetail,
    NodeHistory,
    NodeOut,
    NodeOverview,
    PlanResult,
    Reason,
    RegisterResult,
    ReleaseOut,
    ReleaseResult,
    RetireResult,
    SchemaRevision,
    Status,
    StatusEntry,
    TestRunOut,
    TokenCreated,
    TokenOut,
    UndeployResult,
    VersionOut,
    WaiverOut,
)

if TYPE_CHECKING:
    from chainml.environments.judge import Reached
    from chainml.files.apply import ApplyResult
    from chainml.files.chainfile import ChainFile
    from chainml.ingest.mapping import Mapping
    from chainml.render.view import GraphView

# After an apply that wrote this many nodes, PostgreSQL gets VACUUM (ANALYZE): see
# db.engine.refresh_statistics.
VACUUM_AFTER = 5000
MAX_WAIVER = timedelta(days=90)
# The file name each importer is given for an upload (it names the file in messages).
IMPORT_NAMES = {"dbt": "manifest.json", "dvc": "dvc.yaml", "openlineage": "events.jsonl"}
DEFAULT_WAIVER = timedelta(days=7)


def default_actor() -> str:
    """Who is writing: CHAINML_ACTOR, else the login name."""
    actor = os.environ.get("CHAINML_ACTOR")
    if actor:
        return actor[:200]
    try:
        return getpass.getuser()[:200]
    except Exception:
        return "unknown"


class Registry:
    """A chainml registry on SQLite, PostgreSQL or MariaDB.

    Args:
        url: database URL; None finds ``.chainml/registry.db`` from the current folder up,
            or uses CHAINML_DATABASE_URL.
        actor: recorded as who made each change (default: CHAINML_ACTOR or the login name).
        clock: returns "now" as naive UTC; tests pass a fake one.
        check_schema: refuse a registry whose schema is not at this chainml's head.
        pool_size: connections a PostgreSQL or MySQL registry keeps open, for a process
            that serves requests from several threads (SQLAlchemy's default keeps 5).

    Raises:
        InvalidInput: no registry found, or a malformed URL.
        SchemaOutdated: the schema is behind or ahead (exit 3).
        RegistryUnavailable: the database cannot be reached (exit 3).
    """

    def __init__(self, url: str | None = None, *, actor: str | None = None,
                 clock: Callable[[], datetime] | None = None, check_schema: bool = True,
                 engine: Engine | None = None, pool_size: int | None = None) -> None:
        self.engine = engine or dbe.create(location.resolve_url(url), pool_size=pool_size)
        self.url = dbe.redact(self.engine.url)
        self.actor = actor or default_actor()
        self.clock = clock or utcnow
        self._clock_given = clock is not None
        # Set by init: the registry in a parent folder that the new one hides from the
        # commands run below it (they take the nearest, as git does with .git).
        self.shadows: Path | None = None
        if check_schema:
            migrate.check_schema(self.engine)

    @classmethod
    def init(cls, where: str | Path | None = None, *, url: str | None = None,
             **kwargs: Any) -> Registry:
        """Create (or upgrade) a registry: a SQLite file under ``where/.chainml/``, or ``url``.

        A SQLite file is created only in a folder that exists (``.chainml/`` itself is
        made). A new ``.chainml/`` below another registry's folder hides that registry from
        the commands run below ``where``: the result's ``shadows`` then names it.
        """
        shadows = None
        if url is None:
            here = Path(where or Path.cwd()).resolve()
            folder = here / location.REGISTRY_DIR
            if not (folder / location.REGISTRY_FILE).is_file():
                shadows = location.find_registry(here.parent)
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InvalidInput(f"Cannot create {folder}: {e.strerror}.") from None
            url = location.sqlite_url(folder / location.REGISTRY_FILE)
        engine = dbe.create(location.resolve_url(url), create_file=True)
        reg = cls(check_schema=False, engine=engine, **kwargs)
        reg.upgrade_schema()
        reg.shadows = shadows
        return reg

    def schema_revision(self) -> SchemaRevision:
        """The registry's schema revision and the one this chainml expects."""
        current = migrate.current(self.engine)
        return SchemaRevision(current=current, head=migrate.HEAD,
                              up_to_date=current == migrate.HEAD)

    def upgrade_schema(self) -> tuple[str | None, str]:
        """Bring the schema to this chainml's revision; returns (before, after).

        Crossing revision 0003 (lineage as pairs) also rebuilds every node's retest
        marks under the new rules, in one transaction: marks written before it named
        change events, not causes.
        """
        before = migrate.current(self.engine)
        migrate.upgrade(self.engine)
        if before is not None and before < "0003":
            with dbe.write_session(self.engine) as s:
                repo.lock_writes(s)
                marks.rebuild_all(s, self._write_time(s))
        return before, migrate.HEAD

    def as_actor(self, actor: str) -> Registry:
        """The same registry (one engine, one connection pool) recording ``actor`` as who
        writes: the server's way to put a token's name in the history."""
        return Registry(engine=self.engine, actor=actor[:200],
                        clock=self.clock if self._clock_given else None, check_schema=False)

    def open_connections(self, count: int) -> None:
        """Open up to ``count`` of the pool's connections now and keep them: a server
        about to take requests, whose first ones then need not connect."""
        dbe.open_pool(self.engine, count)

    def secret_url(self) -> str:
        """The database URL with its password: what no response or log line may show."""
        return self.engine.url.render_as_string(hide_password=False)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------------------
    # Each write is one transaction; ``dbe.retrying`` runs it again when the database
    # aborted it for a conflicting writer (serialization failure, deadlock).

    @dbe.retrying
    def register(self, **spec: Any) -> RegisterResult:
        """Register a node version; see ``registration.NodeSpec`` for the fields.

        Raises:
            InvalidInput (and subclasses KindRuleError, CycleError, VersionConflict,
            NodeNotFound): the registry is left unchanged.
        """
        parsed = _validate(registration.NodeSpec, spec)
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)  # before reading the clock: times follow the commit order
            return registration.register(s, parsed, self._write_time(s), self.actor)

    @dbe.retrying
    def promote(self, name: str, version: str) -> RegisterResult:
        """Make an existing version current (rollback); marks follow the snapshot rule."""
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return registration.promote(s, name, version, self._write_time(s), self.actor)

    @dbe.retrying
    def record_test(self, name: str, *, passed: bool, version: str | None = None,
                    suite: str | None = None, link: str | None = None,
                    note: str | None = None) -> TestRunOut:
        """Record a test run with the lineage snapshot of the tested version."""
        if not isinstance(passed, bool):
            raise InvalidInput(f"passed must be True or False, not {type(passed).__name__}.")
        if suite is not None:
            check_label(suite, "suite name")
        # An empty link or note is no link or note: `--link "$CI_JOB_URL"` outside CI
        # passes "" and must not store an empty link that renders as a dead anchor.
        link = _present(check_text(link, "link", 2000))
        note = _present(check_text(note, "note", 10000))
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            # "Latest run" follows the commit order (run ids: writers queue on the lock
            # above); the time is read after the lock too, but only for display.
            at = self._write_time(s)
            node = repo.require_node(s, name)
            if node.retired_at is not None:
                raise InvalidInput(f"'{name}' is retired; register a version of it to revive "
                                   "it before recording tests.")
            v = (repo.require_version(s, node, version) if version is not None
                 else s.get_one(Version, node.current_version_id))
            pairs, _ = marks.version_lineage(s, v.id)
            run = TestRun(node_id=node.id, version_id=v.id, suite=suite or "", passed=passed,
                          recorded_at=at, recorded_by=self.actor, link=link, note=note)
            s.add(run)
            s.flush()
            repo.add_snapshot(s, run.id, pairs)
            repo.add_event(s, at, self.actor, "test.recorded", node.name, v.label,
                           outcome="passed" if passed else "failed", suite=suite, link=link,
                           run=run.id)
            closed = marks.rebuild(s, node, at) if v.id == node.current_version_id else 0
            outbox.notify(s, "run.recorded", {
                "node": node.name, "version": v.label, "suite": suite,
                "outcome": "passed" if passed else "failed", "run": run.id, "link": link,
                "actor": self.actor, "closed_marks": closed})
            return TestRunOut(id=run.id, node=node.name, version=v.label, suite=suite,
                              outcome="passed" if passed else "failed", recorded_at=at,
                              recorded_by=self.actor, link=link, note=note, closed_marks=closed)

    @dbe.retrying
    def waive(self, name: str, *, reason: str, cause: str | None = None,
              expires: str | timedelta = DEFAULT_WAIVER, env: str | None = None) -> WaiverOut:
        """Accept the node's open upstream changes (or one cause's) until ``expires``.

        With ``env``: accept the node's skew in that environment instead (it serves
        inputs other than those its deployed version was tested with); a newer run of
        the deployed version, or any other served versions, end it.
        """
        check_text(reason, "reason", 2000)
        if not reason or not reason.strip():
            raise InvalidInput("A waiver needs a --reason that says why the change is accepted.")
        if isinstance(expires, str):
            span = parse_duration(expires, "expiry")
        elif isinstance(expires, timedelta):
            span = expires
        else:
            raise InvalidInput(f"The expiry must be a duration such as '7d' or a timedelta, "
                               f"not {type(expires).__name__}.")
        if span > MAX_WAIVER:
            raise InvalidInput("A waiver may last at most 90 days (--expires 90d).")
        if span <= timedelta(0):
            raise InvalidInput("A waiver's expiry must lie in the future (such as 7d).")
        if env is not None:
            from chainml.environments import release

            with dbe.write_session(self.engine) as s:
                repo.lock_writes(s)
                return release.waive(s, env, name, cause, reason, span, self._write_time(s),
                                     self.actor)
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            at = self._write_time(s)
            node = repo.require_node(s, name)
            cause_node = repo.require_node(s, cause) if cause else None
            entry = self._statuses(s, [node.id], at).get(node.id)
            if entry is None or entry.status not in (Status.NEEDS_RETEST, Status.WAIVED):
                state = ("retired" if node.retired_at is not None else entry.status.value
                         if entry else "not tested by chainml (needs no tests)")
                raise InvalidInput(
                    f"'{name}' is {state}; a waiver covers untested upstream changes only."
                )
            causes = {r.cause for r in entry.reasons}
            if cause and cause not in causes:
                raise InvalidInput(
                    f"'{cause}' is not an open cause of '{name}'; open causes: "
                    f"{', '.join(sorted(causes))}."
                )
            covers, runs = marks.waiver_facts(s, node, cause_node.id if cause_node else None)
            w = Waiver(node_id=node.id, cause_id=cause_node.id if cause_node else None,
                       reason=reason, granted_by=self.actor, granted_at=at,
                       expires_at=at + span, covers=covers, runs=runs)
            s.add(w)
            s.flush()
            repo.add_event(s, at, self.actor, "waiver.granted", node.name, None, waiver=w.id,
                           cause=cause, reason=reason, expires_at=w.expires_at.isoformat())
            return WaiverOut(id=w.id, node=node.name, cause=cause, reason=reason,
                             granted_by=self.actor, granted_at=at, expires_at=w.expires_at,
                             covers=[r for r in entry.reasons if not cause or r.cause == cause])

    @dbe.retrying
    def retire(self, name: str, *, reason: str | None = None) -> RetireResult:
        """Take a node out of the current chain; its versions, runs, marks, waivers and
        events stay. Refused while a current version reads it.

        Raises:
            NodeNotFound: no such node.
            InvalidInput: another node's current version still reads it.
        """
        check_text(reason, "reason", 2000)
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            at = self._write_time(s)
            node = repo.require_node(s, name)
            before = len(reads.status_marks(Db.over(s), [node.id]).get(node.id, []))
            done = registration.retire(s, [name], at, self.actor, reason)
            return RetireResult(node=name, retired=done, closed_marks=before if done else 0)

    # ---- API tokens (chainml serve) --------------------------------------------------------

    @dbe.retrying
    def token_create(self, name: str, *, scope: str = "read",
                     expires: str | None = "90d") -> TokenCreated:
        """Create an API token (``scope``: read, write or admin; ``expires``: a duration
        like 90d, or None for never). The result holds the token itself, this once.

        Raises:
            InvalidInput: a bad or taken name, an unknown scope, a bad duration.
        """
        from chainml import tokens

        lifetime = parse_duration(expires, "expiry") if expires is not None else None
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return tokens.create(s, name, scope, lifetime, self._write_time(s), self.actor)

    def token_list(self) -> list[TokenOut]:
        """Every API token, by name, without secrets."""
        from chainml import tokens

        with dbe.read_session(self.engine) as s:
            return tokens.listing(s, self.clock())

    @dbe.retrying
    def token_revoke(self, name: str) -> TokenOut:
        """Revoke an API token: requests presenting it get 401 from now on."""
        from chainml import tokens

        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return tokens.revoke(s, name, self._write_time(s), self.actor)

    def authenticate(self, token: str | None, needed: str) -> TokenOut:
        """The active token ``token`` names, if its scope allows ``needed`` (read, write,
        admin). Raises Unauthorized (HTTP 401) or Forbidden (403)."""
        from chainml import tokens

        with dbe.one_read(self.engine) as db:
            return tokens.authenticate(db, token, needed, self.clock())

    # ---- webhooks (docs/webhooks.md) ---------------------------------------------------------

    @dbe.retrying
    def hook_add(self, url: str, *, events: Sequence[str], secret_env: str | None = None,
                 format: str = "json", max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> HookOut:
        """Add a webhook: every change that makes one of ``events`` is POSTed to ``url``.

        Args:
            url: an http:// or https:// URL.
            events: among mark.opened, mark.closed, run.recorded, deploy.done,
                check.changed.
            secret_env: the environment variable holding the signing secret (it must be
                set now; the worker reads it when it sends; only its name is stored).
            format: "json" (the envelope of docs/webhooks.md) or "slack" ({"text": ...}).
            max_attempts: attempts before a delivery is dead.

        Raises:
            InvalidInput: a bad URL, an unknown event, an unset variable; nothing recorded.
        """
        from chainml.hooks import policy, service

        url = policy.check_url(url)
        picked = policy.check_events(list(events) if not isinstance(events, str)
                                     else events)
        format = policy.check_format(format)
        attempts = policy.check_max_attempts(max_attempts)
        secret_env = policy.check_secret_env(secret_env)
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return service.add(s, url, picked, secret_env, format, attempts,
                               self._write_time(s), self.actor)

    def hook_list(self, *, include_removed: bool = False) -> list[HookOut]:
        """The active hooks (and the removed ones with ``include_removed``), by id."""
        from chainml.hooks import service

        with dbe.read_session(self.engine) as s:
            return service.listing(s, include_removed)

    @dbe.retrying
    def hook_remove(self, hook_id: int) -> HookOut:
        """Remove a hook: no new notification goes to it; its pending deliveries die."""
        from chainml.hooks import service

        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return service.remove(s, hook_id, self._write_time(s), self.actor)

    def hook_deliveries(self, *, hook: int | None = None, state: str | None = None,
                        limit: int | None = 100) -> list[DeliveryOut]:
        """Deliveries, newest first (of one hook, in one state: pending, delivered, dead)."""
        from chainml.hooks import policy, service

        state = policy.check_state(state)
        with dbe.read_session(self.engine) as s:
            return service.deliveries(s, hook, state, limit)

    @dbe.retrying
    def hook_replay(self, delivery_id: int) -> DeliveryOut:
        """Queue a delivered or dead delivery again, due now (same notification id)."""
        from chainml.hooks import service

        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return service.replay(s, delivery_id, self._write_time(s), self.actor)

    def deliver_due(self, settings: WorkerSettings | None = None) -> DeliverResult:
        """Send every delivery that is due now (``chainml hook run --once``)."""
        from chainml.hooks import worker

        return worker.deliver_due(self.engine, settings)

    # ---- environments ----------------------------------------------------------------------

    @dbe.retrying
    def env_create(self, name: str, *, after: str | None = None,
                   description: str | None = None) -> EnvironmentOut:
        """Create an environment, optionally after another in the promotion order.

        Raises:
            InvalidInput: an invalid or taken name, an unknown ``after``.
        """
        from chainml.environments import release

        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return release.create(s, name, after,
                                  _present(check_text(description, "description", 2000)),
                                  self._write_time(s), self.actor)

    def env_list(self) -> list[EnvironmentOut]:
        """Every environment, in promotion order."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            return service.env_list(Db.over(s))

    def env_show(self, env: str) -> EnvironmentDetail:
        """What ``env`` serves: each node with its served version, whether deployed or a
        live source, and its environment status."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            return service.env_show(Db.over(s), env, self.clock())

    def env_diff(self, a: str, b: str) -> EnvDiff:
        """The nodes whose served versions differ between environments ``a`` and ``b``."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            return service.env_diff(Db.over(s), a, b)

    @dbe.retrying
    def deploy(self, specs: Sequence[str] | str, *, env: str, link: str | None = None,
               note: str | None = None, check: bool = False, force: bool = False,
               reason: str | None = None) -> ReleaseResult:
        """Deploy a release to ``env``: each spec is ``NODE`` (its registry current
        version) or ``NODE@VERSION``; one atomic change with one history event.

        Refused when a node the release touches (a released node, or a deployed
        node whose serving lineage holds one, even if its version is already served)
        would be untested, failed, skewed or missing an input, unless ``force`` (which needs a
        ``reason``, kept in the history). ``check``: only evaluate, record nothing.

        Raises:
            ReleaseRefused: (exit code 1) with ``result``, the ``ReleaseResult``.
            InvalidInput, NodeNotFound, VersionNotFound: bad input; nothing recorded.
        """
        from chainml.environments import release

        for flag, value in (("check", check), ("force", force)):
            if not isinstance(value, bool):
                raise InvalidInput(f"{flag} must be True or False, not "
                                   f"{type(value).__name__}.")
        if isinstance(specs, str):
            specs = [specs]
        link = _present(check_text(link, "link", 2000))
        note = _present(check_text(note, "note", 10000))
        reason = _present(check_text(reason, "reason", 2000))
        if check:
            with dbe.read_session(self.engine) as s:
                return release.deploy(s, env, specs, link=link, note=note, check=True,
                                      force=force, reason=reason, at=self.clock(),
                                      actor=self.actor)
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return release.deploy(s, env, specs, link=link, note=note, check=False,
                                  force=force, reason=reason, at=self._write_time(s),
                                  actor=self.actor)

    @dbe.retrying
    def undeploy(self, name: str, *, env: str) -> UndeployResult:
        """Stop serving ``name`` in ``env`` (a source goes back to live data)."""
        from chainml.environments import release

        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return release.undeploy(s, env, name, self._write_time(s), self.actor)

    def env_status(self, env: str, name: str | None = None) -> list[StatusEntry]:
        """Environment status of every node deployed to ``env`` that needs tests (or of
        one), sorted by name."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            return service.env_status(Db.over(s), env, name, self.clock())

    def recompute_env_status(self, env: str) -> list[StatusEntry]:
        """Environment status straight from the definition (serving lineages against
        snapshots), never from the registry's marks (slow; for audits and tests)."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            return service.env_status(Db.over(s), env, None, self.clock(), direct=True)

    def env_check(self, env: str, names: Sequence[str] = (), strict: bool = False
                  ) -> CheckResult:
        """The deployment gate: ``check`` over what ``env`` serves (or over ``names`` and
        their serving lineage)."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            return service.env_check(Db.over(s), env, list(names), strict, self.clock())

    def plan(self, env: str, *, to: str = "current", nodes: Sequence[str] = ()) -> PlanResult:
        """What must be deployed together: the smallest release that brings ``nodes`` of
        ``env`` (default: every node whose served version differs) to the versions of
        ``to`` ("current": the registry's; else what that environment serves), leaving no
        node it touches untested, failed, skewed or missing an input. ``ok`` is False when
        a node has no verified version (``blocked`` says the retest that unblocks it).

        Raises:
            InvalidInput, NodeNotFound: an unknown environment or node, a node not in scope.
        """
        from chainml.environments import plan

        if isinstance(nodes, str):
            nodes = [nodes]
        with dbe.read_session(self.engine) as s:
            return plan.plan(Db.over(s), env, to, list(nodes), self.clock())

    def apply(self, path: str | Path, *, dry_run: bool = False, prune: bool = False,
              progress: Callable[[int], None] | None = None) -> ApplyResult:
        """Make the registry match a chain file, in one transaction (all or nothing).

        Args:
            path: a YAML (or ``.json``) chain file; see docs/chain-files.md.
            dry_run: compute and return the plan, then roll it back.
            prune: also remove registry nodes the file does not declare.
            progress: called with the number of nodes done so far.

        Raises:
            InvalidInput: the file is malformed, or applying it would break a rule;
                the message names the file, the node and (where it can) the line.
        """
        from chainml.files.safeload import MAX_BYTES, read_text

        text = read_text(_check_path(path), MAX_BYTES)
        return self.apply_text(text, str(path), dry_run=dry_run, prune=prune, progress=progress)

    def apply_text(self, text: str, filename: str, **kwargs: Any) -> ApplyResult:
        """``apply`` for a chain file held in memory (``filename`` names it in errors)."""
        from chainml.files.chainfile import loads_chain

        if not isinstance(text, str):
            raise InvalidInput(f"A chain file must be text, not {type(text).__name__}.")
        if not isinstance(filename, str):
            raise InvalidInput(f"The file name must be text, not {type(filename).__name__}.")
        file = loads_chain(text, filename, known=self._kinds_of)
        return self.apply_file(file, filename, revalidate=lambda known: loads_chain(
            text, filename, known=known), **kwargs)

    def _kinds_of(self, names: set[str]) -> dict[str, str]:
        """The kinds of those of ``names`` that are registered (for a file's inputs)."""
        with dbe.read_session(self.engine) as s:
            return {name: node.kind for name, node in repo.nodes_by_name(s, names).items()}

    @dbe.retrying
    def apply_file(self, file: ChainFile, filename: str = "<chain>", *, dry_run: bool = False,
                   prune: bool = False, progress: Callable[[int], None] | None = None,
                   revalidate: Callable[[dict[str, str]], Any] | None = None) -> ApplyResult:
        """``apply`` for an already parsed chain file (importers build one)."""
        from chainml.files import apply as applying
        from chainml.files.chainfile import unknown_inputs, validate_graph

        with dbe.write_session(self.engine, commit=not dry_run) as s:
            repo.lock_writes(s)
            declared = {n.name for n in file.nodes}
            refs = {up for n in file.nodes for up, _ in n.input_refs()}
            refs |= {f for n in file.nodes for f in n.feedback}
            known = {name: node.kind for name, node in
                     repo.nodes_by_name(s, refs - declared).items()}
            # A file that came through loads_chain was checked on its own already;
            # only inputs reaching into the registry need a second look.
            checked_alone = revalidate is not None and not known
            if unknown_inputs(file, known) or (not checked_alone
                                               and _kind_problem(file, known)):
                if revalidate is not None:
                    revalidate(known)  # raises with file, line and node
                validate_graph(file, {k: Kind(v) for k, v in known.items()})
                bad = unknown_inputs(file, known)
                if bad:
                    raise InvalidInput(
                        f"{filename} (node '{bad[0].node}'): input '{bad[0].input}' is "
                        "neither in the file nor in the registry.")
            out = applying.apply(s, file, filename, prune=prune, at=self._write_time(s),
                                 actor=self.actor, progress=progress)
            out.dry_run = dry_run
        if not out.dry_run and len(out.items) >= VACUUM_AFTER:
            dbe.refresh_statistics(self.engine, ["node", "version", "version_input", "edge"])
        return out

    def import_file(self, tool: str, path: str | Path, *, kind_map: Sequence[str] = (),
                    dry_run: bool = False, prune: bool = False) -> ApplyResult:
        """Import another tool's chain (dbt manifest, dvc.yaml, OpenLineage events) and
        apply it like a chain file. See docs/chain-files.md, "Importers"."""
        from chainml.files import importers

        file = importers.load(tool, _check_path(path), list(kind_map) or None)
        return self.apply_file(file, str(path), dry_run=dry_run, prune=prune)

    # ---- what pipelines report (OpenLineage) -----------------------------------------------

    @dbe.retrying
    def ingest_events(self, events: Sequence[Any], *, mapping: Mapping | None = None,
                      source: str = "request") -> IngestResult:
        """Take OpenLineage events as a lineage server would (DESIGN.md, "Pipelines report
        themselves"; rules in :mod:`chainml.ingest.service`): each stored once, completed
        runs registered with their marks, undeclared reads recorded as findings.

        Args:
            events: decoded events (dicts), or ``Event`` objects already checked.
            mapping: node names, kinds and version facets (:mod:`chainml.ingest.mapping`).
            source: named in error messages ("request event 3: ...").

        Raises:
            InvalidInput: a malformed event (naming it and the field) or a registration
                the chain's rules refuse; nothing of the batch is stored.
        """
        from chainml.ingest import service
        from chainml.ingest.mapping import Mapping

        parsed = service.parse(events, source)
        with dbe.write_session(self.engine) as s:
            repo.lock_writes(s)
            return service.ingest(s, parsed, mapping or Mapping(), self._write_time(s),
                                  self.actor)

    @dbe.retrying
    def ingest_together(self, requests: Sequence[tuple[Sequence[Any], str]], *,
                        mapping: Mapping | None = None
                        ) -> list[IngestResult | InvalidInput]:
        """``ingest_events`` of several requests in one transaction (group commit: one
        wait for the write lock and one commit for all of them, as a server does for the
        requests that arrived together). Each request is (events, actor): a request
        refused with ``InvalidInput`` leaves nothing and gets the error in its place, the
        others are stored as if sent alone, one after the other. A group of fresh runs
        of known jobs, none of whose new versions needs tests itself, is registered
        set-wise (``chainml.ingest.group``), the retest marks it opens below included,
        with the same rows.

        Raises:
            RegistryUnavailable, or any failure that is not one request's bad input:
                nothing of any request is stored.
        """
        from chainml.ingest import group, service
        from chainml.ingest.mapping import Mapping

        out: list[IngestResult | InvalidInput | None] = []
        parsed: list[list[Any]] = []  # each request's Events
        for number, (events, _) in enumerate(requests, 1):
            try:
                parsed.append(service.parse(events, f"request {number}"))
                out.append(None)
            except InvalidInput as e:
                parsed.append([])
                out.append(e)
        def store(apart: bool) -> list[IngestResult | InvalidInput | None]:
            """One transaction of every request not refused already; ``apart``: each in a
            savepoint, so that a refused one fails alone (else a refusal is raised)."""
            done = list(out)
            with dbe.write_session(self.engine) as s:
                repo.lock_writes(s)
                at = self._write_time(s)
                pending = [i for i, r in enumerate(out) if r is None]
                together = None if apart else group.ingest_group(
                    s, [(parsed[i], requests[i][1]) for i in pending], mapping or Mapping(), at)
                if together is not None:  # set-wise: the same as one by one (group.py)
                    for i, result in zip(pending, together, strict=True):
                        done[i] = result
                    return done
                for i, ((_, actor), batch) in enumerate(zip(requests, parsed, strict=True)):
                    if done[i] is not None:
                        continue
                    if not apart:
                        done[i] = service.ingest(s, batch, mapping or Mapping(), at, actor)
                        continue
                    try:
                        with outbox.savepoint(s):
                            done[i] = service.ingest(s, batch, mapping or Mapping(), at,
                                                     actor)
                    except InvalidInput as e:
                        done[i] = e
                        # What it loaded is gone from the database, not from the session
                        # (and SQLite hands its ids out again): the next starts clean.
                        s.expunge_all()
            return done

        # Refusals are rare: the group is first stored without a savepoint per request
        # (two round trips each), and only a group holding a refused request is stored
        # again, each request apart. A lone request needs none: its refusal is the
        # transaction's.
        valid = sum(r is None for r in out)
        try:
            results = store(apart=False)
        except InvalidInput as e:
            results = store(apart=True) if valid > 1 else [r or e for r in out]
        return [r for r in results if r is not None]  # each filled, by ingest or its error

    def ingest(self, path: str | Path, *, mapping: str | Path | Mapping | None = None
               ) -> IngestResult:
        """``ingest_events`` for a file of events (one event, a JSON array, JSON lines) or a
        folder of them (``*.json``, ``*.jsonl``, ``*.ndjson``)."""
        from chainml.files.importers.openlineage_events import read_events
        from chainml.ingest.mapping import Mapping, load_mapping

        if not isinstance(mapping, Mapping):
            mapping = load_mapping(mapping)
        return self.ingest_events(read_events(_check_path(path)), mapping=mapping)

    def ingest_text(self, text: str, *, source: str = "<stdin>",
                    mapping: str | Path | Mapping | None = None) -> IngestResult:
        """``ingest`` for text read elsewhere (standard input)."""
        from chainml.files.importers.openlineage_events import parse_text
        from chainml.ingest.mapping import Mapping, load_mapping

        if not isinstance(mapping, Mapping):
            mapping = load_mapping(mapping)
        return self.ingest_events(parse_text(text, source), mapping=mapping)

    def findings(self, names: Sequence[str] = ()) -> list[Finding]:
        """Open undeclared-consumer findings (of the nodes ``names``, default all): what
        runs were seen reading that the readers' declared inputs leave out."""
        with dbe.read_session(self.engine) as s:
            db = Db.over(s)
            ids = [reads.require_node(db, n).id for n in names] if names else None
            return [Finding(**o._asdict()) for o in reads.open_observed(db, ids)]

    def import_text(self, tool: str, text: str, *, kind_map: Sequence[str] = (),
                    dry_run: bool = False, prune: bool = False) -> ApplyResult:
        """``import_file`` for a tool's file held in memory (an upload): it is read from
        a private temporary folder under the file name the tool expects."""
        import tempfile

        from chainml.files import importers

        if not isinstance(text, str):
            raise InvalidInput(f"The file must be text, not {type(text).__name__}.")
        name = IMPORT_NAMES.get(tool)
        if name is None:
            raise InvalidInput(f"Unknown importer {tool!r}; use one of: "
                               f"{', '.join(importers.TOOLS)}.")
        with tempfile.TemporaryDirectory(prefix="chainml-import-") as folder:
            path = Path(folder) / name
            path.write_text(text, encoding="utf-8")
            return self.import_file(tool, path, kind_map=kind_map, dry_run=dry_run,
                                    prune=prune)

    def export(self) -> ChainFile:
        """The registry's current state as a chain file (``dump_chain`` writes it)."""
        from chainml.files import apply as applying

        with dbe.read_session(self.engine) as s:
            return applying.export(s)

    # ---- reading ---------------------------------------------------------------------------

    def nodes(self, kind: str | None = None) -> list[NodeOut]:
        """Every node (of one kind), sorted by name."""
        if kind is not None:
            registration.NodeSpec._kind(kind)  # the one wording, with a "did you mean"
        with dbe.read_session(self.engine) as s:
            rows = repo.list_nodes(s, kind)
            labels = reads.labels(Db.over(s), [n.current_version_id for n in rows])
            return [_node_out(n, labels) for n in rows]

    def search(self, query: str, limit: int) -> tuple[list[NodeOut], int]:
        """The nodes of the chain that every word of ``query`` matches
        (``rules.search.matches``), the one named exactly as it first, then by name: the
        first ``limit`` of them, and how many match. Only those returned are read whole
        (``nodes`` reads all of them: seconds on a 100,000-node registry)."""
        from chainml.rules import search

        terms = query.lower().split()
        with dbe.read_session(self.engine) as s:
            db = Db.over(s)
            found = [(search.order(name, query), i) for i, name, kind, owner, tags
                     in reads.search_fields(db) if search.matches(name, kind, owner, tags,
                                                                  terms)]
            found.sort()
            shown = [i for _, i in found[:limit]]
            rows = {n.id: n for n in reads.nodes_full(db, shown)} if shown else {}
            labels = reads.labels(db, [rows[i].current_version_id for i in shown])
            return [_node_out(rows[i], labels) for i in shown], len(found)

    def node(self, name: str) -> NodeDetail:
        """One node with its versions, current inputs, consumers and status."""
        with dbe.read_session(self.engine) as s:
            return self._node(Db.over(s), name)

    def node_overview(self, name: str, *, kept: dict[str, Reached] | None = None
                      ) -> NodeOverview:
        """Everything a node's page shows, read over one connection: ``node``,
        ``node_history``, and its status in each environment that serves it (None where
        it gets none there: it needs no tests, or is retired).

        ``kept``: ``reached()`` from an earlier call, by environment. Where the registry
        has not changed since, a node's status there needs no walk up its lineage (the
        walk reads every ancestor: most of a deep node's page on a large registry); an
        entry of another generation is ignored, so the answer is the same either way."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            db = Db.over(s)
            # The node's row and status facts are read once, though the registry's status
            # and each environment's ask for them (33 statements a page became 22).
            db.memo = {}
            detail = self._node(db, name)
            history = self._node_history(db, reads.require_node(db, name))
            latest: dict[str, str | None] = {}
            for r in history.releases:
                latest[r.env] = r.version
            served = {env: v for env, v in latest.items() if v is not None}
            envs: dict[str, StatusEntry | None] = {}
            for env in served:
                found = (service.env_status(db, env, name, self.clock(),
                                            kept=(kept or {}).get(env))
                         if detail.retired_at is None else [])
                envs[env] = found[0] if found else None
            generation = reads.latest_event(db)
        return NodeOverview(node=detail, history=history, served=served, env_status=envs,
                            generation=generation)

    def reached(self) -> dict[str, Reached]:
        """Of every environment, the nodes a changed node reaches there, as the registry
        stands now (read whole: 0.1-0.5 s at 100,000 nodes): what ``node_overview`` can
        be given while the registry does not change (the web UI keeps it per process)."""
        from chainml.environments import judge

        with dbe.read_session(self.engine) as s:
            db = Db.over(s)
            db.memo = {}
            return {e.name: judge.reached(db, e) for e in reads.environments(db)}

    def _node(self, db: Db, name: str) -> NodeDetail:
        n = reads.node_full(db, reads.require_node(db, name).id)
        versions = reads.node_versions(db, n.id)
        inputs = reads.all_inputs_of_versions(db, [v.id for v in versions])
        names = reads.names(db, [u for _, u, _, _ in inputs])
        labels = reads.labels(db, [n.current_version_id] + [p for _, _, p, _ in inputs])
        labels.update((v.id, v.label) for v in versions)
        consumers = reads.consumer_names(db, n.id)
        status = gate.statuses(db, [n.id], self.clock()).get(n.id)
        observed = reads.open_observed(db, [n.id])
        outs = []
        for v in versions:
            mine = [(u, p, fb) for vid, u, p, fb in inputs if vid == v.id]
            outs.append(VersionOut(
                label=v.label, meta=v.meta, created_at=v.created_at, created_by=v.created_by,
                current=v.id == n.current_version_id,
                inputs=sorted((InputRef(name=names[u], pin=labels.get(p or -1))
                               for u, p, fb in mine if not fb), key=lambda r: r.name),
                feedback=sorted(names[u] for u, _, fb in mine if fb),
            ))
        current = next((v for v in outs if v.current), None)
        detail = NodeDetail(**_node_out(n, labels).model_dump(), versions=outs,
                            consumers=consumers, status=status)
        if current is not None:
            detail.inputs, detail.feedback = current.inputs, current.feedback
        detail.undeclared_inputs = [Finding(**o._asdict()) for o in observed]
        return detail

    def log(self, name: str | None = None, limit: int | None = None,
            env: str | None = None) -> list[EventOut]:
        """The append-only history, oldest first (of one node when ``name`` is given, and
        its releases; of one environment when ``env`` is given)."""
        with dbe.read_session(self.engine) as s:
            if env is not None:
                reads.require_env(Db.over(s), env)
            return [_event_out(e) for e in repo.events(s, name, limit, env)]

    def node_history(self, name: str) -> NodeHistory:
        """``name``'s events and releases, as its page shows them (``log NODE`` gives the
        events whole). A release is read from its deployment rows, not from its event:
        a release of a whole chain lists every node in its details, and reading those
        for each node page cost more than the rest of the page together. So a release
        shows this node's line, its link and note; ``forced`` and the reason stay in
        the full event (``log --env ENV``)."""
        with dbe.read_session(self.engine) as s:
            db = Db.over(s)
            return self._node_history(db, reads.require_node(db, name))

    def _node_history(self, db: Db, node: reads.NodeRow) -> NodeHistory:
        name = node.name
        events = [EventOut(**e._asdict()) for e in reads.own_events(db, name)]
        releases: list[ReleaseOut] = []
        served: dict[str, str | None] = {}
        for event, at, env, label, by, link, note in reads.releases_of(db, node.id):
            releases.append(ReleaseOut(event=event, at=at, env=env, version=label,
                                       previous=served.get(env), by=by, link=link,
                                       note=note))
            served[env] = label
        deploys = [EventOut(id=r.event or 0, at=r.at, actor=r.by, action="deploy", env=r.env,
                            details={"nodes": [{"node": name, "version": r.version,
                                                "previous": r.previous}],
                                     "link": r.link, "note": r.note})
                   for r in releases if r.version is not None]
        return NodeHistory(events=sorted(events + deploys, key=lambda e: e.id),
                           releases=releases)

    def generation(self) -> int:
        """The id of the newest history event (0 when there is none). Every write records
        one, so a cache of anything read from the registry is current while this is
        unchanged (time alone can still make a node stale or end a waiver)."""
        with dbe.read_session(self.engine) as s:
            return reads.latest_event(Db.over(s))

    def impact(self, name: str, max_depth: int | None = None) -> ImpactResult:
        """What a new version of ``name`` would mark: every node it reaches. Writes nothing."""
        from chainml.rules.impact import impact

        with dbe.read_session(self.engine) as s:
            data = impact(Db.over(s), name, max_depth)
        # One validation call for the whole list: per-entry model construction costs
        # more than the search itself on an 80,000-node impact.
        return ImpactResult.model_validate(data)

    def status(self, name: str | None = None) -> list[StatusEntry]:
        """Status of every node that needs tests (or of one node), from the persisted marks."""
        with dbe.read_session(self.engine) as s:
            return gate.status(Db.over(s), name, self.clock())

    def statuses(self, names: Sequence[str]) -> dict[str, StatusEntry]:
        """Status of those of ``names`` that need tests, by name (unknown names are
        skipped): what a page listing a few nodes of a large registry shows."""
        with dbe.read_session(self.engine) as s:
            ids = list(repo.ids_by_name(s, names).values())
            return {e.name: e for e in self._statuses(s, ids, self.clock()).values()}

    def check(self, names: Sequence[str] = (), strict: bool = False) -> CheckResult:
        """The CI gate over all nodes, or over ``names`` and their ancestors."""
        with dbe.read_session(self.engine) as s:
            return gate.check(Db.over(s), names, strict, self.clock())

    def gates(self) -> tuple[CheckResult, list[tuple[EnvironmentOut, CheckResult]]]:
        """``check``, and ``env_check`` of every environment (in promotion order), over
        one connection that reads the status facts of the whole registry once for all
        of them (the web UI's gate page)."""
        from chainml.environments import service

        with dbe.read_session(self.engine) as s:
            db = Db.over(s)
            db.memo = {}
            now = self.clock()
            result = gate.check(db, (), False, now)
            return result, [(e, service.env_check(db, e.name, [], False, now))
                            for e in service.env_list(db)]

    def check_with_view(self, names: Sequence[str] = (), strict: bool = False
                        ) -> tuple[CheckResult, GraphView | None]:
        """``check``, and a view of its failing nodes with the paths from their causes
        (None when nothing fails), read from one snapshot: the chart of a Markdown
        report must show the same registry as its table."""
        from chainml.rules import views

        with dbe.read_session(self.engine) as s:
            now = self.clock()
            result = gate.check(Db.over(s), names, strict, now)
            if not result.failing:
                return result, None
            wanted = {e.name for e in result.failing}
            for e in result.failing:
                for r in e.reasons:
                    wanted.update(r.path)
            ids = sorted(repo.ids_by_name(s, wanted).values())
            view = views.build_view(s, ids, self._statuses(s, ids, now), title="chainml")
        return result, view

    def recompute_status(self, name: str | None = None) -> list[StatusEntry]:
        """Status straight from the definition, ignoring marks (slow; for audits and tests)."""
        now = self.clock()
        with dbe.read_session(self.engine) as s:
            ids = [repo.require_node(s, name).id] if name else None
            db = Db.over(s)
            out = []
            rows = reads.status_nodes(db, ids)
            runs_of = reads.status_runs(db, [r.id for r in rows])
            waivers_of = reads.status_waivers(db, [r.id for r in rows], now)
            for row in rows:
                runs = runs_of.get(row.id, [])
                snaps = reads.snapshot_pairs(db, [r.id for r in runs])
                pairs, towards = marks.version_lineage(s, row.version_id)
                seen = {p for p, _ in pairs} | {n for snap in snaps.values() for n, _ in snap}
                names = reads.names(db, seen | {row.id})
                labels = reads.labels(
                    db, [v for _, v in pairs] + [v for snap in snaps.values() for _, v in snap])
                paths = {a: [names[i] for i in graph.path_towards(towards, a, row.id)]
                         for a in towards}
                out.append(recompute(_facts(row, runs, names, labels), snaps, pairs,
                                     waivers_of.get(row.id, []), now, paths))
            return sorted(to_entries(out), key=lambda e: e.name)

    def graph_view(self, *, focus: str | None = None, direction: str = "both",
                   depth: int | None = None, kinds: Sequence[str] = (),
                   impact: str | None = None, only: Sequence[str] = (),
                   env: str | None = None) -> GraphView:
        """The chain (or the part around ``focus``) with statuses, ready to render.

        Args:
            env: draw what this environment serves instead: its deployed nodes and the
                live sources they read, at the versions it serves ("3 (current 4)" where
                the registry's current one differs), coloured by environment status.
            only: keep just these nodes (and the edges among them).
            focus: keep only this node with its ancestors and/or descendants.
            direction: "both", "upstream" or "downstream" from ``focus``.
            depth: at most this many hops from ``focus``.
            kinds: keep only nodes of these kinds.
            impact: highlight this node and everything a new version of it would mark.
        """
        from chainml.render.view import GraphView, filter_kinds, filter_names, mark_impact
        from chainml.rules import views

        if depth is not None and focus is None:
            raise InvalidInput("--depth needs --focus NODE.")
        if env is not None:
            if impact is not None:
                raise InvalidInput("--impact shows what a new registry version would mark, "
                                   "not what an environment serves: use one of --impact "
                                   "and --env.")
            from chainml.environments import graph as env_graph

            with dbe.read_session(self.engine) as s:
                view = GraphView.model_validate(env_graph.served_graph(
                    s, env, self.clock(), focus=focus, direction=direction, depth=depth))
            if only:
                view = filter_names(view, only)
            return filter_kinds(view, kinds) if kinds else view
        with dbe.read_session(self.engine) as s:
            ids: list[int] | None = None
            if focus is not None:
                node = repo.require_node(s, focus)
                if node.retired_at is not None:
                    raise InvalidInput(f"'{focus}' is retired: it is no longer part of the "
                                       "chain (registering it again revives it).")
                ids = sorted(views.neighbourhood(s, node, direction, depth))
            if only:
                picked = [n.id for n in repo.nodes_by_name(s, only).values()]
                ids = picked if ids is None else sorted(set(ids) & set(picked))
            statuses = self._statuses(s, ids, self.clock())
            view = views.build_view(s, ids, statuses,
                                    title=f"chainml: around {focus}" if focus else "chainml")
        if kinds:
            view = filter_kinds(view, kinds)
        if impact is not None:
            hit = {e.name for e in self.impact(impact).impacted}
            view = mark_impact(view, impact, hit)
        return view

    # ---- internals -------------------------------------------------------------------------

    def _write_time(self, s: Session) -> datetime:
        """The time of a write, read once the write lock is held (so times follow the
        commit order): the database server's clock, SQLite's writing machine's, or the
        clock this Registry was given."""
        at = self.clock() if self._clock_given else repo.server_time(s) or self.clock()
        s.info[outbox.WRITE_TIME] = at  # the outbox judges check.changed at this time
        return at

    def _statuses(self, s: Session, ids: Sequence[int] | None, now: datetime
                  ) -> dict[int, StatusEntry]:
        """Status of the testable nodes among ``ids`` (all when None), from the marks."""
        return gate.statuses(Db.over(s), ids, now)


def _facts(row: Any, runs: Sequence[Any], names: dict[int, str], labels: dict[int, str]
           ) -> Facts:
    return Facts(id=row.id, name=row.name, kind=row.kind, owner=row.owner, version=row.label,
                 version_created_at=row.created_at, max_age_s=row.max_age_s,
                 required_suites=list(row.required_suites), runs=runs, names=names,
                 labels=labels)


def _event_out(e: Event) -> EventOut:
    return EventOut(id=e.id, at=e.at, actor=e.actor, action=e.action, node=e.node_name,
                    version=e.version_label, env=e.env_name, details=e.details)


def _node_out(n: Node | reads.NodeFull, labels: dict[int, str]) -> NodeOut:
    # unify_newlines: rows written before registration unified them may hold CRLF.
    return NodeOut(name=n.name, kind=n.kind, owner=n.owner,
                   description=unify_newlines(n.description),
                   tags=list(n.tags), meta=dict(n.meta), needs_tests=n.needs_tests,
                   max_age=format_duration(n.max_age_s) if n.max_age_s else None,
                   required_suites=list(n.required_suites),
                   current_version=labels.get(n.current_version_id or -1),
                   created_at=n.created_at, retired_at=n.retired_at)


def _present(text: str | None) -> str | None:
    """Blank text as None, other text exactly as given."""
    return text if text is not None and text.strip() else None


def _check_path(path: Any) -> str | Path:
    """A file path the OS can take (a NUL byte makes open() raise ValueError)."""
    if not isinstance(path, str | os.PathLike):
        raise InvalidInput(f"A file path must be text or a Path, not {type(path).__name__}.")
    if "\x00" in str(path):
        raise InvalidInput(f"The file path {str(path)!r:.60} contains a NUL character.")
    return path if isinstance(path, str) else Path(path)


def _kind_problem(file: ChainFile, known: dict[str, str]) -> bool:
    from chainml.errors import ChainmlError
    from chainml.files.chainfile import validate_graph

    try:
        validate_graph(file, {k: Kind(v) for k, v in known.items()})
    except ChainmlError:
        return True
    return False


# What pydantic's error types mean for a keyword argument, in our words.
_TYPE_WORDS = {"string_type": "text", "list_type": "a list", "dict_type": "a dict",
               "bool_type": "True or False", "bool_parsing": "True or False"}


def _validate(model: Any, data: dict[str, Any], call: str = "register()") -> Any:
    """model_validate with our one-sentence errors instead of pydantic's dump."""
    from pydantic import ValidationError

    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        ctx = err.get("ctx") or {}
        inner = ctx.get("error")
        if isinstance(inner, InvalidInput):
            raise inner from None
        fields = [f for f in model.model_fields if f != "declarative"]  # internal
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]
                        ).lstrip(".") or "input"
        if err["type"] == "extra_forbidden" and err["loc"]:
            raise unknown_field(call, err["loc"][0], fields) from None
        if err["type"] == "missing":
            raise InvalidInput(f"{call} needs {where} (the fields are {', '.join(fields)})."
                               ) from None
        wanted = _TYPE_WORDS.get(err["type"])
        if wanted:
            value = err.get("input")
            got = "None" if value is None else type(value).__name__
            raise InvalidInput(f"{where} must be {wanted}, not {got}.") from None
        raise InvalidInput(f"Invalid {where}: {err['msg']}.") from None


__all__ = ["Registry", "Reason"]
