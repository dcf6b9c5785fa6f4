"""The reads users wait on, as plain SQL over a ``direct.Db``: finding a node,
the walk below it, node facts and labels, and what status is computed from.

Plain SQL (portable across SQLite, PostgreSQL and MariaDB) rather than
SQLAlchemy expressions: the command line runs these without importing
SQLAlchemy at all (see ``db/direct.py``), and rows stay plain tuples, which
matters when a walk returns 300,000 edges.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Hashable, Iterable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple, TypeVar

from chainml.db.direct import Db
from chainml.errors import InvalidInput, NodeNotFound

T = TypeVar("T")


class NodeRow(NamedTuple):
    id: int
    name: str
    kind: str
    needs_tests: bool
    current_version_id: int | None
    retired: bool


class NodeInfo(NamedTuple):
    id: int
    name: str
    kind: str
    needs_tests: bool


def find_node(db: Db, name: str) -> NodeRow | None:
    return shared(db, ("node", name), lambda: _find_node(db, name))


def _find_node(db: Db, name: str) -> NodeRow | None:
    found = db.rows("SELECT id, name, kind, needs_tests, current_version_id, retired_at "
                    "FROM node WHERE name = ?", [name])
    # Exact, whatever the collation: MariaDB's default one ignores case.
    for row in found:
        if row[1] == name:
            return NodeRow(row[0], row[1], row[2], bool(row[3]), row[4], row[5] is not None)
    return None


def require_node(db: Db, name: str) -> NodeRow:
    if not isinstance(name, str):
        raise InvalidInput(f"A node name must be text, not {type(name).__name__}.")
    node = None if "\x00" in name else find_node(db, name)  # PostgreSQL refuses a NUL
    if node is None:
        raise NodeNotFound(name, suggest(db, name))
    return node


def require_live(db: Db, name: str) -> NodeRow:
    """``require_node`` for questions about the current chain, which a retired node left."""
    node = require_node(db, name)
    if node.retired:
        raise InvalidInput(f"'{name}' is retired: it is no longer part of the chain (its "
                           "history stays in chainml log; registering it again revives it).")
    return node


def suggest(db: Db, name: str) -> str | None:
    """The closest existing name, for 'Did you mean ...?'."""
    if "\x00" not in name:
        same = db.rows("SELECT name FROM node WHERE name_key = ?", [name.lower()])
        if same:
            return str(same[0][0])
    names = [r[0] for r in db.rows("SELECT name FROM node")]
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return close[0] if close else None


# A walk step reads only ix_edge_walk_down: (upstream_id, feedback, pinned_version_id,
# downstream_id). Feedback inputs never pass a change on; pinned inputs neither, but they
# are edges of the graph all the same (the cycle rule follows them).
_STEP = " WHERE e.feedback = FALSE AND e.pinned_version_id IS NULL"
_STEP_PINS_TOO = " WHERE e.feedback = FALSE"


def _reach_down(step: str) -> str:
    return ("WITH RECURSIVE reach(id) AS ("
            " SELECT id FROM node WHERE id = ? UNION"
            " SELECT e.downstream_id FROM edge e JOIN reach ON e.upstream_id = reach.id"
            f"{step}) ")


def edges_below(db: Db, start: int, pins_too: bool = False) -> list[tuple[int, int]]:
    """The edges a change of ``start`` travels: from every node it reaches. With
    ``pins_too``, every regular edge below it, pinned ones included (for the cycle rule)."""
    step = _STEP_PINS_TOO if pins_too else _STEP
    return db.rows(_reach_down(step) + "SELECT e.upstream_id, e.downstream_id FROM edge e"
                   " JOIN reach ON e.upstream_id = reach.id" + step, [start])


def walk_below(db: Db, start: int) -> tuple[list[tuple[int, int]], dict[int, NodeInfo]]:
    """``edges_below`` and the facts (``NodeInfo``) of every node it reaches, from one walk.

    One statement, two kinds of row (tagged 0: an edge, 1: a node): asking for the
    nodes afterwards would walk again or ship 80,000 ids back to the server, which
    cost a third of a hub's impact on PostgreSQL.
    """
    rows = db.rows(_reach_down(_STEP) + "SELECT 0, e.upstream_id, e.downstream_id, NULL, NULL, "
                   "NULL FROM edge e JOIN reach ON e.upstream_id = reach.id" + _STEP +
                   " UNION ALL SELECT 1, n.id, NULL, n.name, n.kind, n.needs_tests "
                   "FROM node n JOIN reach ON n.id = reach.id", [start])
    edges: list[tuple[int, int]] = []
    info: dict[int, NodeInfo] = {}
    for tag, a, b, name, kind, needs in rows:
        if tag:
            info[a] = NodeInfo(a, name, kind, bool(needs))
        else:
            edges.append((a, b))
    return edges, info


def walk_below_all(db: Db, starts: Sequence[int]
                   ) -> tuple[list[tuple[int, int, int | None]], dict[int, NodeInfo]]:
    """``walk_below`` from several nodes at once, along pinned edges too: every regular
    edge below them as (upstream, downstream, pinned version or None), and the facts of
    every node reached. A change of a start travels the unpinned edges; the pinned ones
    tell who reads a start at a fixed version (``marks.versions_below``).

    Two statements: the walk, then the edges out of what it reached. In one, PostgreSQL
    guessed a walk from a hundred starts reaches 80,000 nodes and merge-joined the whole
    edge index to it (100 ms for 400 nodes). Each node's facts are read as the walk
    reaches it (as in ``ingested.marks_may_change``): joined after the walk, the whole
    node table was hashed (40 ms).
    """
    if not starts:
        return [], {}
    info = {r[0]: NodeInfo(r[0], r[1], r[2], bool(r[3])) for r in db.rows_in(
        "WITH RECURSIVE reach(id, name, kind, needs) AS ("
        " SELECT id, name, kind, needs_tests FROM node WHERE id IN ({ids}) UNION"
        " SELECT n.id, n.name, n.kind, n.needs_tests FROM edge e"
        " JOIN reach ON e.upstream_id = reach.id JOIN node n ON n.id = e.downstream_id"
        f"{_STEP_PINS_TOO}) SELECT id, name, kind, needs FROM reach",
        sorted(set(starts)), size=len(starts))}
    edges = db.rows_in("SELECT e.upstream_id, e.downstream_id, e.pinned_version_id "
                       f"FROM edge e{_STEP_PINS_TOO} AND e.upstream_id IN ({{ids}})",
                       sorted(info))
    # By (upstream, downstream): one regular edge per pair, so pins in consumer order.
    return sorted(((u, d, p) for u, d, p in edges), key=lambda e: (e[0], e[1])), info


def reaches_any(db: Db, start: int, targets: Sequence[int]) -> bool:
    """Whether a walk down regular edges (pinned ones too) from ``start`` meets ``targets``."""
    return bool(db.rows_in(_reach_down(_STEP_PINS_TOO) + "SELECT id FROM reach "
                           "WHERE id IN ({ids})", sorted(set(targets)), [start]))


class EventRow(NamedTuple):
    id: int
    at: datetime
    actor: str
    action: str
    node: str | None
    version: str | None
    env: str | None
    details: dict[str, Any]


def own_events(db: Db, node: str) -> list[EventRow]:
    """The events naming ``node`` itself, oldest first (not the releases that deployed it
    among others: ``releases_of`` has those)."""
    rows = db.rows("SELECT id, at, actor, action, node_name, version_label, env_name, "
                   f"{db.as_text('details')} FROM event WHERE node_name = ? ORDER BY id",
                   [node])
    return [EventRow(r[0], _dt(r[1]), r[2], r[3], r[4], r[5], r[6], d)
            for r, d in zip(rows, json_many([r[7] for r in rows]), strict=True)
            if r[4] == node]  # exact, whatever the collation


class ReleaseRow(NamedTuple):
    event: int | None
    at: datetime
    env: str
    version: str | None  # None: an undeploy
    by: str
    link: str | None
    note: str | None


def releases_of(db: Db, node_id: int) -> list[ReleaseRow]:
    """Every deployment row of one node, oldest first.

    Read from the deployment table, never from the release's event, whose details
    list every node released (megabytes for a release of a whole chain)."""
    rows = db.rows("SELECT d.event_id, d.deployed_at, e.name, v.label, d.deployed_by, "
                   "d.link, d.note FROM deployment d "
                   "JOIN environment e ON e.id = d.environment_id "
                   "LEFT JOIN version v ON v.id = d.version_id "
                   "WHERE d.node_id = ? ORDER BY d.id", [node_id])
    return [ReleaseRow(r[0], _dt(r[1]), *r[2:]) for r in rows]


def latest_event(db: Db) -> int:
    """The id of the newest history event (0 for an empty history): every write adds one,
    so it tells whether anything changed since it was last read."""
    rows = shared(db, "latest_event", lambda: db.rows("SELECT MAX(id) FROM event"))
    return int(rows[0][0] or 0) if rows else 0


def labels(db: Db, version_ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted({i for i in version_ids if i is not None})
    # A copy: callers add to what they get, and a kept read must stay as read.
    return dict(shared(db, ("labels", *wanted), lambda: db.rows_in(
        "SELECT id, label FROM version WHERE id IN ({ids})", wanted)))


def label(db: Db, version_id: int | None) -> str | None:
    """One version's label (None for None)."""
    return labels(db, [version_id]).get(version_id) if version_id is not None else None


def names(db: Db, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted(set(ids))
    return dict(shared(db, ("names", *wanted), lambda: db.rows_in(
        "SELECT id, name FROM node WHERE id IN ({ids})", wanted)))


# ---- what status is computed from ------------------------------------------------------------
# Column types differ by driver: SQLite hands back datetimes and JSON as text,
# psycopg as Python objects. ``_dt`` and ``_json`` make them one shape.


class StatusNode(NamedTuple):
    id: int
    name: str
    kind: str
    owner: str | None
    max_age_s: int | None
    required_suites: list[str]
    version_id: int
    label: str
    created_at: datetime | None  # None unless max_age_s is set


class Run(NamedTuple):
    id: int
    node_id: int
    suite: str
    passed: bool
    recorded_at: datetime


class Mark(NamedTuple):
    id: int
    node_id: int
    cause_id: int
    tested_versions: list[int]
    now_versions: list[int]
    path: list[str]


class LiveWaiver(NamedTuple):
    id: int
    node_id: int
    covers: list[Any]
    runs: list[int]


def _dt(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        return [] if value == "[]" else json.loads(value)
    return value


def json_many(values: list[Any]) -> list[Any]:
    """``_json`` of many values; text is decoded in one call (25,000 paths after a hub
    change: the per-call overhead of json.loads was most of the cost)."""
    if not all(isinstance(v, str) for v in values):
        return [_json(v) for v in values]
    return json.loads("[" + ",".join(values) + "]") if values else []


def _where_ids(db: Db, sql: str, ids: Sequence[int] | None, column: str,
               params: Sequence[Any] = ()) -> list[Any]:
    """``sql`` over every row, or only where ``column`` is one of ``ids``."""
    if ids is None:
        return db.rows(sql, params)
    joiner = " AND " if " WHERE " in sql else " WHERE "
    return db.rows_in(f"{sql}{joiner}{column} IN ({{ids}})", sorted(set(ids)), params)


def shared(db: Db, key: Hashable, read: Callable[[], T]) -> T:
    """``read()``, kept in ``db.memo`` when the caller asked for one: the gate page asks
    ``check`` and ``check --env`` of every environment over one connection, and each
    reads the status facts of the whole registry; a node's page asks its status in the
    registry and in each environment, and each reads its row and status facts."""
    if db.memo is None:
        return read()
    if key not in db.memo:
        db.memo[key] = read()
    found: T = db.memo[key]
    return found


def status_nodes(db: Db, ids: Sequence[int] | None) -> list[StatusNode]:
    """Nodes that need tests, with their current version (all of them when ``ids`` is None)."""
    if ids is None:
        return shared(db, "status_nodes", lambda: _status_nodes(db, None))
    return shared(db, ("status_nodes", *sorted(set(ids))), lambda: _status_nodes(db, ids))


def _status_nodes(db: Db, ids: Sequence[int] | None) -> list[StatusNode]:
    rows = _where_ids(db, "SELECT n.id, n.name, n.kind, n.owner, n.max_age_s, "
                      f"{db.as_text('n.required_suites')}, v.id, v.label, v.created_at FROM node n "
                      "JOIN version v ON v.id = n.current_version_id "
                      "WHERE n.needs_tests = TRUE AND n.retired_at IS NULL", ids, "n.id")
    # created_at only matters for a maximum age: parsed only then.
    return [StatusNode(r[0], r[1], r[2], r[3], r[4], _json(r[5]), r[6], r[7],
                       _dt(r[8]) if r[4] else None) for r in rows]


def status_runs(db: Db, ids: Sequence[int] | None) -> dict[int, list[Run]]:
    """Runs of each node's current version (without snapshots), in commit order.

    Commit order is id order (writers queue on the write lock before inserting), never
    the recorded time: two machines whose clocks disagree must not reorder runs.
    """
    if ids is None:
        return shared(db, "status_runs", lambda: _status_runs(db, None))
    return shared(db, ("status_runs", *sorted(set(ids))), lambda: _status_runs(db, ids))


def _status_runs(db: Db, ids: Sequence[int] | None) -> dict[int, list[Run]]:
    rows = _where_ids(db, "SELECT t.id, t.node_id, t.suite, t.passed, t.recorded_at "
                      "FROM test_run t JOIN node n ON n.id = t.node_id "
                      "AND n.current_version_id = t.version_id", ids, "t.node_id")
    out: dict[int, list[Run]] = {}
    for r in sorted(rows, key=itemgetter(0)):
        out.setdefault(r[1], []).append(Run(r[0], r[1], r[2], bool(r[3]), _dt(r[4])))
    return out


def status_marks(db: Db, ids: Sequence[int] | None) -> dict[int, list[Mark]]:
    """Open retest marks per node, oldest first."""
    if ids is None:
        return shared(db, "status_marks", lambda: _status_marks(db, None))
    return shared(db, ("status_marks", *sorted(set(ids))), lambda: _status_marks(db, ids))


def _status_marks(db: Db, ids: Sequence[int] | None) -> dict[int, list[Mark]]:
    rows = _where_ids(db, "SELECT id, node_id, cause_id, "
                      f"{db.as_text('tested_versions')}, {db.as_text('now_versions')}, "
                      f"{db.as_text('path')} FROM retest_mark WHERE closed_at IS NULL", ids,
                      "node_id")
    rows.sort(key=itemgetter(0))
    tested = json_many([r[3] for r in rows])
    now = json_many([r[4] for r in rows])
    paths = json_many([r[5] for r in rows])
    out: dict[int, list[Mark]] = {}
    for r, old, new, path in zip(rows, tested, now, paths, strict=True):
        out.setdefault(r[1], []).append(Mark(r[0], r[1], r[2], old, new, path))
    return out


def status_waivers(db: Db, ids: Sequence[int] | None, now: datetime
                   ) -> dict[int, list[LiveWaiver]]:
    """Unexpired registry waivers per node, oldest first (an environment's waivers accept
    skew there, not the registry's untested changes: ``env_waivers``)."""
    rows = _where_ids(db, f"SELECT id, node_id, {db.as_text('covers')}, "
                      f"{db.as_text('runs')} FROM waiver WHERE expires_at > ? "
                      "AND environment_id IS NULL", ids, "node_id", [db.time(now)])
    out: dict[int, list[LiveWaiver]] = {}
    for r in sorted(rows):
        out.setdefault(r[1], []).append(LiveWaiver(r[0], r[1], _json(r[2]), _json(r[3])))
    return out


def snapshot_pairs(db: Db, run_ids: Sequence[int], node_ids: Sequence[int] | None = None
                   ) -> dict[int, set[tuple[int, int]]]:
    """Each run's lineage snapshot as (node, version) pairs; only the pairs of
    ``node_ids`` when given (what a change of those nodes needs: an index lookup)."""
    out: dict[int, set[tuple[int, int]]] = {r: set() for r in run_ids}
    if not run_ids:
        return out
    if node_ids is None:
        rows = db.rows_in("SELECT run_id, node_id, version_id FROM snapshot_pair "
                          "WHERE run_id IN ({ids})", sorted(set(run_ids)))
    else:
        nodes = sorted(set(node_ids))
        if not nodes:
            return out
        # The node ids first, inline: the index leads with them (a group commit asks for
        # a hundred nodes in one statement).
        rows = db.rows_in("SELECT run_id, node_id, version_id FROM snapshot_pair "
                          f"WHERE node_id IN ({', '.join('?' * len(nodes))}) "
                          "AND run_id IN ({ids})", sorted(set(run_ids)), nodes)
    for run, n, v in rows:
        out[run].add((n, v))
    return out


def pinned_consumers(db: Db, node_id: int) -> list[tuple[int, int]]:
    """(consumer, pinned version) of every current regular input that pins ``node_id``."""
    return [(d, p) for d, p in db.rows(
        "SELECT downstream_id, pinned_version_id FROM edge WHERE upstream_id = ? "
        "AND feedback = FALSE AND pinned_version_id IS NOT NULL "
        "ORDER BY downstream_id, pinned_version_id", [node_id])]


def required_suites(db: Db, ids: Sequence[int]) -> dict[int, list[str]]:
    rows = db.rows_in(f"SELECT id, {db.as_text('required_suites')} FROM node "
                      "WHERE id IN ({ids})", sorted(set(ids)))
    return {r[0]: _json(r[1]) for r in rows}


def edges_above(db: Db, seeds: Sequence[int]) -> list[tuple[int, int, int | None]]:
    """Regular edges (upstream, downstream, pin) feeding ``seeds`` and their unpinned
    ancestors: a pinned edge is returned (its pin counts) but not crossed."""
    if not seeds:
        return []
    wanted = sorted(set(seeds))
    return shared(db, ("edges_above", *wanted), lambda: db.rows_in(
        "WITH RECURSIVE up(id) AS ("
        " SELECT id FROM node WHERE id IN ({ids}) UNION"
        " SELECT e.upstream_id FROM edge e JOIN up ON e.downstream_id = up.id"
        " WHERE e.feedback = FALSE AND e.pinned_version_id IS NULL) "
        "SELECT e.upstream_id, e.downstream_id, e.pinned_version_id FROM edge e "
        "JOIN up ON e.downstream_id = up.id WHERE e.feedback = FALSE", wanted, size=500))


def regular_inputs(db: Db, version_id: int) -> list[tuple[int, int | None]]:
    """(upstream, pinned version or None) of a version's regular (non-feedback) inputs."""
    return [(u, p) for u, p in db.rows(
        "SELECT upstream_id, pinned_version_id FROM version_input "
        "WHERE version_id = ? AND feedback = FALSE", [version_id])]


def current_versions(db: Db, ids: Iterable[int]) -> dict[int, int]:
    rows = db.rows_in("SELECT id, current_version_id FROM node WHERE id IN ({ids})",
                      sorted(set(ids)))
    return {i: v for i, v in rows if v is not None}


def retired_current(db: Db, ids: Iterable[int]) -> dict[int, int]:
    """Of ``ids``, each retired node with its current version (a retired node keeps it,
    and what it reads, though the edge table no longer holds its inputs)."""
    rows = db.rows_in("SELECT id, current_version_id FROM node WHERE retired_at IS NOT NULL "
                      "AND current_version_id IS NOT NULL AND id IN ({ids})", sorted(set(ids)))
    return {i: v for i, v in rows}


def lineage_nodes(db: Db, version_id: int) -> set[int]:
    """Every node in a version's lineage: its inputs, and their unpinned ancestors' inputs
    (a pinned input counts, but the walk does not cross it)."""
    seeds = regular_inputs(db, version_id)
    edges = edges_above(db, [u for u, p in seeds if p is None])
    return {u for u, _ in seeds} | {u for u, _, _ in edges}


# ---- environments and what they serve --------------------------------------------------------


class EnvRow(NamedTuple):
    id: int
    name: str
    after_id: int | None
    description: str | None
    created_at: datetime
    created_by: str


class Deployed(NamedTuple):
    """The latest deployment row of one node in one environment."""

    id: int
    node_id: int
    version_id: int | None  # None: undeployed
    event_id: int | None
    deployed_at: datetime
    deployed_by: str
    link: str | None
    note: str | None


class EnvNode(NamedTuple):
    """What environment status needs of a node (any kind)."""

    id: int
    name: str
    kind: str
    owner: str | None
    needs_tests: bool
    max_age_s: int | None
    required_suites: list[str]
    current_version_id: int | None
    retired: bool


class VersionRow(NamedTuple):
    id: int
    node_id: int
    label: str
    created_at: datetime


_ENV = "SELECT id, name, after_id, description, created_at, created_by FROM environment"


def _env(r: Any) -> EnvRow:
    return EnvRow(r[0], r[1], r[2], r[3], _dt(r[4]), r[5])


def environments(db: Db) -> list[EnvRow]:
    """Every environment, in creation order."""
    return [_env(r) for r in db.rows(_ENV + " ORDER BY id")]


def find_env(db: Db, name: str) -> EnvRow | None:
    return shared(db, ("env", name), lambda: _find_env(db, name))


def _find_env(db: Db, name: str) -> EnvRow | None:
    for r in db.rows(_ENV + " WHERE name = ?", [name]):
        if r[1] == name:  # exact, whatever the collation
            return _env(r)
    return None


def env_by_key(db: Db, name: str) -> EnvRow | None:
    """The environment whose name equals ``name`` ignoring case (the confusable check)."""
    rows = db.rows(_ENV + " WHERE name_key = ?", [name.lower()])
    return _env(rows[0]) if rows else None


def require_env(db: Db, name: str) -> EnvRow:
    """The environment named ``name``; else one sentence with a "did you mean"."""
    if not isinstance(name, str):
        raise InvalidInput(f"An environment name must be text, not {type(name).__name__}.")
    env = None if "\x00" in name else find_env(db, name)
    if env is not None:
        return env
    shown = repr(name if len(name) <= 60 else name[:60] + "...")
    known = [e.name for e in environments(db)]
    same = [k for k in known if k.lower() == name.lower()]
    close = same or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        raise InvalidInput(f"No environment named {shown}. Did you mean '{close[0]}'?")
    if known:
        raise InvalidInput(f"No environment named {shown}; the environments are "
                           f"{', '.join(sorted(known))}.")
    raise InvalidInput(f"No environment named {shown}; create it with 'chainml env create "
                       "NAME'.")


def latest_deployments(db: Db, env_id: int, node_ids: Sequence[int] | None = None
                       ) -> dict[int, Deployed]:
    """The latest deployment row of every node ever deployed to the environment (of
    ``node_ids`` only, when given), undeploys included: by id, the commit order."""
    sql = ("SELECT d.id, d.node_id, d.version_id, d.event_id, d.deployed_at, d.deployed_by, "
           "d.link, d.note FROM deployment d JOIN (SELECT node_id, MAX(id) AS id FROM "
           "deployment WHERE environment_id = ?{only} GROUP BY node_id) m ON d.id = m.id")
    if node_ids is None:
        rows = db.rows(sql.format(only=""), [env_id])
    else:
        rows = db.rows_in(sql.format(only=" AND node_id IN ({ids})"), sorted(set(node_ids)),
                          [env_id])
    return {r[1]: Deployed(r[0], r[1], r[2], r[3], _dt(r[4]), r[5], r[6], r[7]) for r in rows}


def deployed_counts(db: Db) -> dict[int, int]:
    """Per environment, how many nodes it has deployed now."""
    rows = db.rows("SELECT d.environment_id, COUNT(*) FROM deployment d JOIN (SELECT "
                   "environment_id, node_id, MAX(id) AS id FROM deployment GROUP BY "
                   "environment_id, node_id) m ON d.id = m.id WHERE d.version_id IS NOT NULL "
                   "GROUP BY d.environment_id")
    return {e: int(n) for e, n in rows}


def env_nodes(db: Db, ids: Iterable[int]) -> dict[int, EnvNode]:
    rows = db.rows_in("SELECT id, name, kind, owner, needs_tests, max_age_s, "
                      f"{db.as_text('required_suites')}, current_version_id, retired_at "
                      "FROM node WHERE id IN ({ids})", sorted(set(ids)))
    return {r[0]: EnvNode(r[0], r[1], r[2], r[3], bool(r[4]), r[5], _json(r[6]) or [], r[7],
                          r[8] is not None) for r in rows}


def live_sources(db: Db, ids: Iterable[int]) -> dict[int, int]:
    """Of ``ids``: each source of the current chain (not retired), at its current version."""
    rows = db.rows_in("SELECT id, current_version_id FROM node WHERE kind = 'source' AND "
                      "retired_at IS NULL AND current_version_id IS NOT NULL AND id IN ({ids})",
                      sorted(set(ids)))
    return {i: v for i, v in rows}


def versions(db: Db, ids: Iterable[int | None]) -> dict[int, VersionRow]:
    wanted = sorted({i for i in ids if i is not None})
    rows = db.rows_in("SELECT id, node_id, label, created_at FROM version WHERE id IN ({ids})",
                      wanted)
    return {r[0]: VersionRow(r[0], r[1], r[2], _dt(r[3])) for r in rows}


def version_by_label(db: Db, node_id: int, label: str) -> int | None:
    rows = db.rows("SELECT id, label FROM version WHERE node_id = ? AND label = ?",
                   [node_id, label])
    return next((r[0] for r in rows if r[1] == label), None)


def inputs_of_versions(db: Db, version_ids: Iterable[int]
                       ) -> dict[int, list[tuple[int, int | None]]]:
    """Regular (non-feedback) inputs of each version: (upstream, pinned version or None),
    sorted by upstream then pin."""
    wanted = sorted(set(version_ids))
    out: dict[int, list[tuple[int, int | None]]] = {v: [] for v in wanted}
    for v, u, p in db.rows_in("SELECT version_id, upstream_id, pinned_version_id FROM "
                              "version_input WHERE feedback = FALSE AND version_id IN ({ids})",
                              wanted):
        out[v].append((u, p))
    for ins in out.values():  # the walks' order (``environments.status.serving_lineage``)
        ins.sort(key=lambda i: (i[0], i[1] or 0))
    return out


def version_runs(db: Db, version_ids: Iterable[int]) -> dict[int, list[Run]]:
    """Every run of each version (without snapshots), in commit order (by id)."""
    rows = db.rows_in("SELECT id, node_id, suite, passed, recorded_at, version_id FROM test_run "
                      "WHERE version_id IN ({ids})", sorted(set(version_ids)))
    out: dict[int, list[Run]] = {}
    for r in sorted(rows, key=itemgetter(0)):
        out.setdefault(r[5], []).append(Run(r[0], r[1], r[2], bool(r[3]), _dt(r[4])))
    return out


def env_waivers(db: Db, env_id: int, ids: Sequence[int] | None, now: datetime
                ) -> dict[int, list[LiveWaiver]]:
    """Unexpired waivers granted for this environment, per node, oldest first."""
    rows = _where_ids(db, f"SELECT id, node_id, {db.as_text('covers')}, "
                      f"{db.as_text('runs')} FROM waiver WHERE expires_at > ? "
                      "AND environment_id = ?", ids, "node_id", [db.time(now), env_id])
    out: dict[int, list[LiveWaiver]] = {}
    for r in sorted(rows):
        out.setdefault(r[1], []).append(LiveWaiver(r[0], r[1], _json(r[2]), _json(r[3])))
    return out


def node_version_ids(db: Db, node_id: int) -> list[int]:
    """Every version of a node, newest first (by id, the commit order)."""
    return [r[0] for r in db.rows("SELECT id FROM version WHERE node_id = ? ORDER BY id DESC",
                                  [node_id])]


# ---- what environment status reads at scale (environments.judge) ------------------------------


class NodeState(NamedTuple):
    """What deciding an environment's view of a node needs: is it served at its current
    version, is it judged at all."""

    id: int
    kind: str
    needs_tests: bool
    current_version_id: int | None
    retired: bool


def node_states(db: Db, ids: Iterable[int] | None = None) -> dict[int, NodeState]:
    sql = "SELECT id, kind, needs_tests, current_version_id, retired_at FROM node"
    rows = db.rows(sql) if ids is None else db.rows_in(sql + " WHERE id IN ({ids})",
                                                       sorted(set(ids)))
    return {r[0]: NodeState(r[0], r[1], bool(r[2]), r[3], r[4] is not None) for r in rows}


def served_map(db: Db, env_id: int, node_ids: Iterable[int] | None = None) -> dict[int, int]:
    """node -> the version the environment has deployed (undeployed nodes left out): the
    latest deployment row per node (of ``node_ids`` only, when given), by id.

    The environment's rows in the order of ix_deployment_env_node (node, id), the last one
    per node kept: a third cheaper on SQLite than joining with the latest id per node, and
    on PostgreSQL, for the 1,200 ancestors of a deep node, 4 ms instead of 9."""
    sql = "SELECT node_id, version_id FROM deployment WHERE environment_id = ?"
    order = " ORDER BY node_id, id"
    latest = dict(db.rows(sql + order, [env_id]) if node_ids is None else
                  db.rows_in(sql + " AND node_id IN ({ids})" + order, sorted(set(node_ids)),
                             [env_id]))
    return {n: v for n, v in latest.items() if v is not None}


def states_served(db: Db, env_id: int, ids: Iterable[int]
                  ) -> tuple[dict[int, NodeState], dict[int, int]]:
    """``node_states`` and ``served_map`` of ``ids`` in one statement: each node's row
    with its deployment rows there (a judging walk asks both of every node it reaches;
    a node's page asks them twice, and each round trip was a tenth of the page)."""
    rows = db.rows_in("SELECT n.id, n.kind, n.needs_tests, n.current_version_id, "
                      "n.retired_at, d.version_id FROM node n LEFT JOIN deployment d "
                      "ON d.node_id = n.id AND d.environment_id = ? WHERE n.id IN ({ids}) "
                      "ORDER BY n.id, d.id", sorted(set(ids)), [env_id])
    states: dict[int, NodeState] = {}
    latest: dict[int, int | None] = {}
    for r in rows:
        if r[0] not in states:
            states[r[0]] = NodeState(r[0], r[1], bool(r[2]), r[3], r[4] is not None)
        latest[r[0]] = r[5]  # the last deployment row of the node, by id
    return states, {n: v for n, v in latest.items() if v is not None}


def env_summary(db: Db, env_id: int) -> tuple[dict[int, tuple[int, int]], set[int]]:
    """What judging a whole environment starts from: every deployed node that gets a
    status (needs tests, not retired) -> (deployed version, current version); and every
    *changed* node: served at another than its current version, absent (never deployed,
    or undeployed, and no source), or retired.

    Two plain scans, joined here: in SQL (a join with the latest deployment per node)
    the same answer took twice as long on SQLite. The node scan asks only what the join
    needs (whether a node is a live source, whether it is judged: NULL when retired)."""
    deployed = served_map(db, env_id)
    served: dict[int, tuple[int, int]] = {}
    changed: set[int] = set()
    for n, current, live_source, judged in db.rows(
            "SELECT id, current_version_id, kind = 'source' AND retired_at IS NULL, "
            "CASE WHEN retired_at IS NULL THEN needs_tests END FROM node"):
        v = deployed.get(n)
        if v is None:  # absent, unless a live source (at its current version)
            if not live_source or current is None:
                changed.add(n)
            continue
        if v != current or judged is None:  # judged is NULL: retired
            changed.add(n)
        if judged:
            served[n] = (v, current)
    return served, changed


def readers(db: Db, ids: Iterable[int]) -> list[tuple[int, int, int, bool]]:
    """Every version, of any node, that reads one of ``ids`` as a regular input:
    (reading node, its version, the input, pinned)."""
    rows = db.rows_in("SELECT v.node_id, i.version_id, i.upstream_id, i.pinned_version_id "
                      "FROM version_input i JOIN version v ON v.id = i.version_id "
                      "WHERE i.feedback = FALSE AND i.upstream_id IN ({ids})",
                      sorted(set(ids)))
    return [(n, v, u, p is not None) for n, v, u, p in rows]


def unpinned_edges(db: Db) -> list[tuple[int, int]]:
    """Every current regular, unpinned edge (upstream, downstream): what a change walks."""
    return db.rows("SELECT upstream_id, downstream_id FROM edge WHERE feedback = FALSE "
                   "AND pinned_version_id IS NULL")


def reached_below(db: Db, starts: Sequence[int]) -> set[int]:
    """The nodes a change of any of ``starts`` reaches along current regular, unpinned
    edges (``starts`` themselves only when reached)."""
    if not starts:
        return set()
    rows = db.rows_in("WITH RECURSIVE reach(id) AS ("
                      " SELECT e.downstream_id FROM edge e WHERE e.upstream_id IN ({ids})"
                      " AND e.feedback = FALSE AND e.pinned_version_id IS NULL UNION"
                      " SELECT e.downstream_id FROM edge e JOIN reach ON e.upstream_id = reach.id"
                      " WHERE e.feedback = FALSE AND e.pinned_version_id IS NULL) "
                      "SELECT id FROM reach", sorted(set(starts)), size=500)
    return {r[0] for r in rows}


def versions_of_nodes(db: Db, node_ids: Iterable[int]) -> dict[int, list[int]]:
    """Every version of each node, newest first (by id, the commit order)."""
    out: dict[int, list[int]] = {n: [] for n in node_ids}
    for v, n in sorted(db.rows_in("SELECT id, node_id FROM version WHERE node_id IN ({ids})",
                                  sorted(out)), reverse=True):
        out[n].append(v)
    return out


# ---- one node, whole (show, its page, GET /api/v1/nodes/NAME) ---------------------------------


class NodeFull(NamedTuple):
    id: int
    name: str
    kind: str
    owner: str | None
    description: str | None
    tags: list[str]
    meta: dict[str, Any]
    needs_tests: bool
    max_age_s: int | None
    required_suites: list[str]
    current_version_id: int | None
    created_at: datetime
    retired_at: datetime | None


class VersionFull(NamedTuple):
    id: int
    label: str
    meta: dict[str, Any]
    created_at: datetime
    created_by: str


class ObservedRow(NamedTuple):
    node: str
    input: str
    first_run: str
    first_seen: datetime
    last_run: str
    last_seen: datetime
    times: int


def search_fields(db: Db) -> list[tuple[int, str, str, str | None, list[str]]]:
    """(id, name, kind, owner, tags) of every node of the chain: what search matches."""
    rows = db.rows(f"SELECT id, name, kind, owner, {db.as_text('tags')} FROM node "
                   "WHERE retired_at IS NULL")
    tags = json_many([r[4] for r in rows])
    return [(r[0], r[1], r[2], r[3], t) for r, t in zip(rows, tags, strict=True)]


def nodes_full(db: Db, ids: Sequence[int]) -> list[NodeFull]:
    """``node_full`` of each of ``ids`` (in no order)."""
    rows = db.rows_in("SELECT id, name, kind, owner, description, tags, meta, needs_tests, "
                      "max_age_s, required_suites, current_version_id, created_at, "
                      "retired_at FROM node WHERE id IN ({ids})", sorted(set(ids)))
    return [_node_full(r) for r in rows]


def node_full(db: Db, node_id: int) -> NodeFull:
    (r,) = db.rows("SELECT id, name, kind, owner, description, tags, meta, needs_tests, "
                   "max_age_s, required_suites, current_version_id, created_at, retired_at "
                   "FROM node WHERE id = ?", [node_id])
    return _node_full(r)


def _node_full(r: Sequence[Any]) -> NodeFull:
    return NodeFull(r[0], r[1], r[2], r[3], r[4], _json(r[5]), _json(r[6]), bool(r[7]), r[8],
                    _json(r[9]), r[10], _dt(r[11]), None if r[12] is None else _dt(r[12]))


def node_versions(db: Db, node_id: int) -> list[VersionFull]:
    """Every version of a node, oldest first."""
    rows = db.rows("SELECT id, label, meta, created_at, created_by FROM version "
                   "WHERE node_id = ? ORDER BY id", [node_id])
    return [VersionFull(r[0], r[1], _json(r[2]), _dt(r[3]), r[4]) for r in rows]


def all_inputs_of_versions(db: Db, version_ids: Sequence[int]
                           ) -> list[tuple[int, int, int | None, bool]]:
    """Every input of each version, feedback too: (version, upstream, pin, feedback)."""
    rows = db.rows_in("SELECT version_id, upstream_id, pinned_version_id, feedback "
                      "FROM version_input WHERE version_id IN ({ids})", list(version_ids))
    return [(v, u, p, bool(f)) for v, u, p, f in rows]


def consumer_names(db: Db, node_id: int) -> list[str]:
    """Every node whose current version reads ``node_id`` (feedback too), by name
    whatever the backend's collation."""
    rows = db.rows("SELECT DISTINCT n.name FROM edge e JOIN node n ON n.id = e.downstream_id "
                   "WHERE e.upstream_id = ?", [node_id])
    return sorted(r[0] for r in rows)


def open_observed(db: Db, node_ids: Sequence[int] | None = None) -> list[ObservedRow]:
    """Undeclared-consumer findings still open, by reader then input name: what a node
    (of ``node_ids``, default all) was seen reading that its current inputs (the edge
    table) leave out; nothing once the reader is retired."""
    sql = ("SELECT r.name, i.name, o.first_run, o.first_seen, o.last_run, o.last_seen, o.times "
           "FROM observed_input o JOIN node r ON r.id = o.node_id "
           "JOIN node i ON i.id = o.input_id "
           "WHERE r.retired_at IS NULL AND NOT EXISTS (SELECT 1 FROM edge e "
           "WHERE e.downstream_id = o.node_id AND e.upstream_id = o.input_id)")
    rows = (db.rows(sql) if node_ids is None
            else db.rows_in(sql + " AND o.node_id IN ({ids})", sorted(set(node_ids))))
    return sorted((ObservedRow(r[0], r[1], r[2], _dt(r[3]), r[4], _dt(r[5]), r[6])
                   for r in rows), key=lambda o: (o.node, o.input))


# ---- API tokens ----------------------------------------------------------------------------


class TokenRow(NamedTuple):
    name: str
    scope: str
    secret_digest: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None


def token(db: Db, token_id: int) -> TokenRow | None:
    """One API token by id: what every authenticated request asks (plain SQL: the ORM's
    load of the row cost more than the rest of checking it)."""
    rows = db.rows("SELECT name, scope, secret_digest, created_at, created_by, expires_at, "
                   "revoked_at FROM api_token WHERE id = ?", [token_id])
    if not rows:
        return None
    r = rows[0]
    return TokenRow(r[0], r[1], r[2], _dt(r[3]), r[4], None if r[5] is None else _dt(r[5]),
                    None if r[6] is None else _dt(r[6]))
