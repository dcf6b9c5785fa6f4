"""The floors: the least work each operation could possibly do, on the same graph.

chainml's figures are whole processes; a floor is what the operation's core
costs when nothing else is paid for, so the ratio says how much of chainml's
time is overhead (start-up, ORM, JSON, rendering) rather than necessary work.

* ``networkx.descendants`` in process, on the generated graph already in memory
  (the graph is built before timing starts, so this is the pure walk).
* Recursive CTEs and plain SELECT/INSERTs over **chainml's own tables** in the
  registry just loaded (``edge`` with its primary key (upstream_id,
  downstream_id, feedback) and ``ix_edge_walk_up``; ``node``, ``version``,
  ``retest_mark``, ``deployment``), through the raw DB-API driver (sqlite3, psycopg) on a
  connection opened before timing. Using the registry's own edge table means
  the floor and chainml read exactly the same rows, on the same backend.
* ``python -c pass`` as a whole process: the start-up floor for ``--help``.

Writes (``register``, ``deploy``, ``apply``) are floored by the same statements inside a
transaction that is rolled back (``register``, ``deploy``) or by inserting into scratch
tables that are dropped afterwards (``apply``), so the registry is unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import networkx as nx

# Impact follows regular, unpinned edges only: feedback inputs and pins stop it.
_FOLLOW = "NOT {a}feedback AND {a}pinned_version_id IS NULL"


class Sql:
    """A raw DB-API connection with the one difference that matters here: paramstyle."""

    def __init__(self, conn: Any, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def q(self, text: str) -> str:
        """Write statements with ``?``; psycopg wants ``%s``."""
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    def rows(self, text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(self.q(text), tuple(params))
            return list(cur.fetchall())
        finally:
            cur.close()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def connect_sqlite(path: str) -> Sql:
    return Sql(sqlite3.connect(path), "sqlite")


def connect_postgres(conninfo: str, schema: str) -> Sql:
    import psycopg

    return Sql(psycopg.connect(conninfo, options=f"-csearch_path={schema}"), "postgresql")


def node_ids(db: Sql) -> dict[str, int]:
    return {name: i for i, name in db.rows("SELECT id, name FROM node")}


# ---- impact --------------------------------------------------------------------------------------

def nx_descendants(g: nx.DiGraph, name: str) -> Callable[[], int]:
    """Floor 1 for impact: networkx's walk, in process, graph already built."""
    return lambda: len(nx.descendants(g, name))


DESCENDANTS_CTE = f"""
WITH RECURSIVE down(id) AS (
    SELECT downstream_id FROM edge WHERE upstream_id = ? AND {_FOLLOW.format(a='')}
    UNION
    SELECT e.downstream_id FROM edge e JOIN down d ON e.upstream_id = d.id
    WHERE {_FOLLOW.format(a='e.')}
)
"""


def cte_descendants(db: Sql, node_id: int) -> Callable[[], int]:
    """Floor 2 for impact: one recursive CTE over the indexed edge table, names included."""
    sql = DESCENDANTS_CTE + "SELECT n.name, n.kind FROM down JOIN node n ON n.id = down.id"

    def run() -> int:
        out = db.rows(sql, (node_id,))
        db.rollback()  # end the read transaction psycopg opened
        return len(out)

    return run


# ---- register: walk down and write one mark per testable node reached ----------------------------

def cte_register(db: Sql, node_id: int) -> Callable[[], int]:
    """Floor for registering a hub version: the walk plus one INSERT ... SELECT of marks.

    Rolled back, so the registry is unchanged and every run writes the same rows.
    """
    now = "CURRENT_TIMESTAMP"
    sql = DESCENDANTS_CTE + f"""
INSERT INTO retest_mark (node_id, cause_id, tested_versions, now_versions, path, event_id,
                         opened_at, closed_at, close_reason)
SELECT n.id, ?, '[]', '[]', '[]', NULL, {now}, NULL, NULL
FROM down JOIN node n ON n.id = down.id WHERE n.needs_tests
"""
    if db.dialect == "postgresql":
        sql = sql.replace("'[]'", "'[]'::json")  # every JSON column of the row

    def run() -> int:
        cur = db.conn.cursor()
        try:
            if db.dialect == "sqlite" and not db.conn.in_transaction:
                # Python's sqlite3 opens a transaction only before a statement that starts
                # with INSERT/UPDATE/DELETE; this one starts with WITH, so without an explicit
                # BEGIN it was committed, and every run left 25,000 open marks behind.
                cur.execute("BEGIN")
            cur.execute(db.q(sql), (node_id, node_id))
            count = int(cur.rowcount)
        finally:
            cur.close()
            db.rollback()
        return count

    return run


# ---- test record: the lineage of one node --------------------------------------------------------

ANCESTORS_CTE = f"""
WITH RECURSIVE up(id) AS (
    SELECT upstream_id FROM edge WHERE downstream_id = ? AND {_FOLLOW.format(a='')}
    UNION
    SELECT e.upstream_id FROM edge e JOIN up u ON e.downstream_id = u.id
    WHERE {_FOLLOW.format(a='e.')}
)
"""


def cte_lineage(db: Sql, node_id: int) -> Callable[[], int]:
    """Floor for ``test record``: the node's ancestors with their current versions."""
    sql = ANCESTORS_CTE + "SELECT n.id, n.current_version_id FROM up JOIN node n ON n.id = up.id"

    def run() -> int:
        out = db.rows(sql, (node_id,))
        db.rollback()
        return len(out)

    return run


# ---- status / check: read what the answer is made of ---------------------------------------------

def sql_status(db: Sql) -> Callable[[], int]:
    """Floor for ``status``/``check``: every testable node with its version and open marks."""
    sql = """
SELECT n.name, n.kind, v.label, m.cause_id, m.tested_versions, m.now_versions, m.path
FROM node n
JOIN version v ON v.id = n.current_version_id
LEFT JOIN retest_mark m ON m.node_id = n.id AND m.closed_at IS NULL
WHERE n.needs_tests
"""

    def run() -> int:
        out = db.rows(sql)
        db.rollback()
        return len(out)

    return run


# ---- export / apply without changes: read the whole current chain --------------------------------

def sql_export(db: Sql) -> Callable[[], int]:
    """Floor for ``export`` and a no-op ``apply``: every node, its current label, its inputs."""
    nodes = ("SELECT n.id, n.name, n.kind, v.label FROM node n "
             "JOIN version v ON v.id = n.current_version_id")
    edges = "SELECT upstream_id, downstream_id, feedback, pinned_version_id FROM edge"

    def run() -> int:
        count = len(db.rows(nodes)) + len(db.rows(edges))
        db.rollback()
        return count

    return run


# ---- graph --focus: depth-limited walks both ways ------------------------------------------------

def cte_neighbourhood(db: Sql, node_id: int, depth: int) -> Callable[[], int]:
    """Floor for ``graph --focus N --depth D``: D hops down and up, every edge, plus the rows."""
    walk = """
WITH RECURSIVE w(id, d) AS (
    SELECT CAST(? AS INTEGER), 0
    UNION
    SELECT e.{far}, w.d + 1 FROM edge e JOIN w ON e.{near} = w.id WHERE w.d < ?
)
SELECT DISTINCT id FROM w
"""
    down = walk.format(far="downstream_id", near="upstream_id")
    up = walk.format(far="upstream_id", near="downstream_id")

    def run() -> int:
        ids = {i for (i,) in db.rows(down, (node_id, depth))}
        ids |= {i for (i,) in db.rows(up, (node_id, depth))}
        marks = ",".join("?" * len(ids))
        db.rows(f"SELECT id, name, kind, current_version_id FROM node WHERE id IN ({marks})",
                sorted(ids))
        db.rows(f"SELECT upstream_id, downstream_id FROM edge WHERE downstream_id IN ({marks})",
                sorted(ids))
        db.rollback()
        return len(ids)

    return run


# ---- apply of a fresh chain: bulk insert into scratch tables -------------------------------------

def bulk_insert(db: Sql, names: Sequence[str], kinds: Sequence[str],
                edges: Sequence[tuple[int, int]]) -> Callable[[], int]:
    """Floor for ``apply`` of the whole chain: insert the nodes, a version each and the edges
    into indexed scratch tables in one transaction (executemany), then drop them."""
    create = [
        "CREATE TABLE bench_floor_node (id INTEGER PRIMARY KEY, name VARCHAR(200) UNIQUE, "
        "kind VARCHAR(20))",
        "CREATE TABLE bench_floor_version (id INTEGER PRIMARY KEY, node_id INTEGER, "
        "label VARCHAR(100))",
        "CREATE TABLE bench_floor_edge (upstream_id INTEGER, downstream_id INTEGER, "
        "PRIMARY KEY (upstream_id, downstream_id))",
        "CREATE INDEX bench_floor_edge_down ON bench_floor_edge (downstream_id)",
    ]
    drop = ["DROP TABLE IF EXISTS bench_floor_node", "DROP TABLE IF EXISTS bench_floor_version",
            "DROP TABLE IF EXISTS bench_floor_edge"]
    node_rows = [(i + 1, n, k) for i, (n, k) in enumerate(zip(names, kinds, strict=True))]
    version_rows = [(i + 1, i + 1, "1") for i in range(len(names))]
    edge_rows = [(u + 1, d + 1) for u, d in edges]

    def execute(statements: Sequence[str]) -> None:
        cur = db.conn.cursor()
        for s in statements:
            cur.execute(s)
        cur.close()
        db.conn.commit()

    def prepare() -> None:
        execute(drop)
        execute(create)

    def run() -> int:
        cur = db.conn.cursor()
        cur.executemany(db.q("INSERT INTO bench_floor_node VALUES (?, ?, ?)"), node_rows)
        cur.executemany(db.q("INSERT INTO bench_floor_version VALUES (?, ?, ?)"), version_rows)
        cur.executemany(db.q("INSERT INTO bench_floor_edge VALUES (?, ?)"), edge_rows)
        cur.close()
        db.conn.commit()
        return len(node_rows) + len(edge_rows)

    def cleanup() -> None:
        execute(drop)

    # The timing loop calls prepare() untimed before each run and cleanup() at the end.
    run.prepare = prepare  # type: ignore[attr-defined]
    run.cleanup = cleanup  # type: ignore[attr-defined]
    return run


# ---- environments: what an environment serves ----------------------------------------------------

# The latest deployment row of every node deployed to one environment (by id: commit order).
LATEST_DEPLOYMENTS = """
SELECT d.node_id, d.version_id FROM deployment d
JOIN (SELECT node_id, MAX(id) AS id FROM deployment WHERE environment_id = ?
      GROUP BY node_id) m ON d.id = m.id
"""


def env_id(db: Sql, name: str) -> int:
    rows = db.rows("SELECT id FROM environment WHERE name = ?", (name,))
    db.rollback()
    if not rows:
        raise LookupError(f"no environment named {name!r}")
    return int(rows[0][0])


def sql_env_check(db: Sql, env: int) -> Callable[[], int]:
    """Floor for ``check --env``: what the environment serves (the latest deployment of
    every node), then every testable node with its version and open marks."""
    testable = """
SELECT n.name, n.kind, v.label, m.cause_id, m.tested_versions, m.now_versions, m.path
FROM node n
JOIN version v ON v.id = n.current_version_id
LEFT JOIN retest_mark m ON m.node_id = n.id AND m.closed_at IS NULL
WHERE n.needs_tests
"""

    def run() -> int:
        count = len(db.rows(LATEST_DEPLOYMENTS, (env,))) + len(db.rows(testable))
        db.rollback()
        return count

    return run


def cte_env_lineage(db: Sql, env: int, node_id: int) -> Callable[[], int]:
    """Floor for ``status --env ENV NODE``: the node's ancestors (the lineage CTE), then
    the latest deployment row of the node and of each of them in the environment."""
    sql = ANCESTORS_CTE + """
SELECT d.node_id, d.version_id FROM deployment d
JOIN (SELECT node_id, MAX(id) AS id FROM deployment WHERE environment_id = ?
      AND (node_id = ? OR node_id IN (SELECT id FROM up)) GROUP BY node_id) m ON d.id = m.id
"""

    def run() -> int:
        out = db.rows(sql, (node_id, env, node_id))
        db.rollback()
        return len(out)

    return run


def sql_env_plan(db: Sql, env: int) -> Callable[[], int]:
    """Floor for ``plan --env ENV --to current``: the latest deployment of every node
    beside the registry's current version; the count of those that differ."""
    sql = """
SELECT d.node_id, d.version_id, n.current_version_id FROM deployment d
JOIN (SELECT node_id, MAX(id) AS id FROM deployment WHERE environment_id = ?
      GROUP BY node_id) m ON d.id = m.id
JOIN node n ON n.id = d.node_id
"""

    def run() -> int:
        rows = db.rows(sql, (env,))
        db.rollback()
        return sum(1 for _, served, current in rows if served != current)

    return run


def insert_deployments(db: Sql, env: int, release: Sequence[tuple[int, int]]
                       ) -> Callable[[], int]:
    """Floor for ``deploy`` of a release: one deployment row per (node id, version id),
    one ``executemany``, in a transaction that is rolled back (the registry is unchanged,
    every run writes the same rows)."""
    sql = db.q("INSERT INTO deployment (environment_id, node_id, version_id, event_id, "
               "deployed_at, deployed_by, link, note) "
               "VALUES (?, ?, ?, NULL, CURRENT_TIMESTAMP, 'bench-floor', NULL, NULL)")
    rows = [(env, node, version) for node, version in release]

    def run() -> int:
        cur = db.conn.cursor()
        try:
            # sqlite3 opens the transaction itself before an INSERT; psycopg before any
            # statement: both are rolled back below.
            cur.executemany(sql, rows)
        finally:
            cur.close()
            db.rollback()
        return len(rows)

    return run


# ---- the server: what a node's page reads ------------------------------------------------

def sql_node(db: Sql, names: Sequence[str]) -> Callable[[], int]:
    """Floor for ``GET /nodes/{name}`` (page and API): a node's row, its versions, its
    inputs and consumers with their names, its latest runs and open marks, and its own
    history, by name through the indexes; one node of ``names`` per call, in turn."""
    statements = [
        "SELECT * FROM version WHERE node_id = ?",
        "SELECT n.name, e.feedback FROM edge e JOIN node n ON n.id = e.upstream_id "
        "WHERE e.downstream_id = ?",
        "SELECT n.name FROM edge e JOIN node n ON n.id = e.downstream_id WHERE e.upstream_id = ?",
        "SELECT * FROM test_run WHERE node_id = ? ORDER BY id DESC LIMIT 50",
        "SELECT * FROM retest_mark WHERE node_id = ? AND closed_at IS NULL",
    ]
    turn = iter(range(10**9))

    def run() -> int:
        name = names[next(turn) % len(names)]
        count = 0
        (node_id,) = db.rows("SELECT id FROM node WHERE name = ?", (name,))[0]
        for s in statements:
            count += len(db.rows(s, (node_id,)))
        count += len(db.rows("SELECT * FROM event WHERE node_name = ? ORDER BY id DESC "
                             "LIMIT 50", (name,)))
        db.rollback()
        return count

    return run


def cycling(make: Callable[[int], Callable[[], int]], ids: Sequence[int]) -> Callable[[], int]:
    """One floor over several nodes: each call asks about the next of ``ids``."""
    runs = [make(i) for i in ids]
    turn = iter(range(10**9))
    return lambda: runs[next(turn) % len(runs)]()
