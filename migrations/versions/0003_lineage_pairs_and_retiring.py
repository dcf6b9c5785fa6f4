"""Lineage as pairs: snapshots as rows, marks and waivers over version sets; retiring.

* ``snapshot_pair`` holds each run's lineage snapshot as (run, node, version) rows,
  filled from the JSON column ``test_run.snapshot``, which is dropped.
* ``retest_mark.from_version_id``/``to_version_id`` become ``tested_versions`` and
  ``now_versions`` (lists: an ancestor may be read pinned and live at once).
* ``waiver.runs`` records the deciding runs a waiver was granted on, and ``covers``
  holds exact facts ``[cause, [tested], [now]]``. A waiver granted before this
  revision accepted (cause, version) pairs: it is given the facts of the open marks
  it covered and the node's deciding runs at upgrade time (see migrations/README.md).
* ``node.retired_at``: retiring replaces deleting.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 22:30:00

"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def _deciding_runs(bind: Any, node_id: int) -> list[int]:
    """The runs that decide a node's status now: the latest (by id) of each required
    suite, or the latest of any suite, of its current version."""
    node = bind.execute(sa.text("SELECT current_version_id, required_suites FROM node "
                                "WHERE id = :n"), {"n": node_id}).one()
    latest: dict[str, int] = {}
    last: int | None = None
    for run_id, suite in bind.execute(sa.text(
            "SELECT id, suite FROM test_run WHERE node_id = :n AND version_id = :v ORDER BY id"),
            {"n": node_id, "v": node[0]}):
        latest[suite] = last = run_id
    required = _json(node[1]) or []
    if not required:
        return [last] if last is not None else []
    return sorted(latest[s] for s in required if s in latest)


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        'snapshot_pair',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['test_run.id'],
                                name=op.f('fk_snapshot_pair_run_id_test_run'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id', 'node_id', 'version_id',
                                name=op.f('pk_snapshot_pair')),
    )
    op.create_index('ix_snapshot_pair_node', 'snapshot_pair', ['node_id', 'run_id', 'version_id'])
    pairs = sa.table('snapshot_pair', sa.column('run_id', sa.Integer),
                     sa.column('node_id', sa.Integer), sa.column('version_id', sa.Integer))
    rows: list[dict[str, int]] = []
    for run_id, snap in bind.execute(sa.text("SELECT id, snapshot FROM test_run ORDER BY id")):
        for n, v in {(int(n), int(v)) for n, v in _json(snap) or []}:
            rows.append({"run_id": run_id, "node_id": n, "version_id": v})
        if len(rows) >= BATCH:
            op.bulk_insert(pairs, rows)
            rows = []
    if rows:
        op.bulk_insert(pairs, rows)
    if bind.dialect.name == 'sqlite':
        # Natively (SQLite 3.35+): batch mode would recreate test_run, and dropping the
        # old table cascades (foreign keys are on) into the snapshot_pair rows just made.
        op.execute('ALTER TABLE test_run DROP COLUMN snapshot')
    else:
        op.drop_column('test_run', 'snapshot')

    with op.batch_alter_table('retest_mark') as batch:
        batch.add_column(sa.Column('tested_versions', sa.JSON(), nullable=True))
        batch.add_column(sa.Column('now_versions', sa.JSON(), nullable=True))
    marks = sa.table('retest_mark', sa.column('id', sa.Integer),
                     sa.column('tested_versions', sa.JSON), sa.column('now_versions', sa.JSON))
    for mid, old, new in bind.execute(sa.text(
            "SELECT id, from_version_id, to_version_id FROM retest_mark")).all():
        bind.execute(marks.update().where(marks.c.id == mid).values(
            tested_versions=[old] if old is not None else [],
            now_versions=[new] if new is not None else []))
    with op.batch_alter_table('retest_mark') as batch:
        batch.alter_column('tested_versions', existing_type=sa.JSON(), nullable=False)
        batch.alter_column('now_versions', existing_type=sa.JSON(), nullable=False)
        batch.drop_column('from_version_id')
        batch.drop_column('to_version_id')

    with op.batch_alter_table('waiver') as batch:
        batch.add_column(sa.Column('runs', sa.JSON(), nullable=True))
    waivers = sa.table('waiver', sa.column('id', sa.Integer), sa.column('runs', sa.JSON),
                       sa.column('covers', sa.JSON))
    for wid, node_id, covers in bind.execute(sa.text(
            "SELECT id, node_id, covers FROM waiver")).all():
        old = {(c, v) for c, v in _json(covers) or []}
        facts = sorted(
            [c, _json(t), _json(n)] for c, t, n in bind.execute(sa.text(
                "SELECT cause_id, tested_versions, now_versions FROM retest_mark "
                "WHERE node_id = :n AND closed_at IS NULL"), {"n": node_id})
            if (c, (_json(n) or [None])[-1]) in old)
        bind.execute(waivers.update().where(waivers.c.id == wid).values(
            covers=facts, runs=_deciding_runs(bind, node_id)))
    with op.batch_alter_table('waiver') as batch:
        batch.alter_column('runs', existing_type=sa.JSON(), nullable=False)

    with op.batch_alter_table('node') as batch:
        batch.add_column(sa.Column('retired_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        # Natively, as in upgrade: recreating node would cascade into every table.
        op.execute('ALTER TABLE node DROP COLUMN retired_at')
    else:
        op.drop_column('node', 'retired_at')

    with op.batch_alter_table('waiver') as batch:
        batch.drop_column('runs')
    # Exact facts back to (cause, version) pairs: the versions it had when granted.
    waivers = sa.table('waiver', sa.column('id', sa.Integer), sa.column('covers', sa.JSON))
    for wid, covers in bind.execute(sa.text("SELECT id, covers FROM waiver")).all():
        old = [[c, v] for c, _, now in _json(covers) or [] for v in (now or [None])]
        bind.execute(waivers.update().where(waivers.c.id == wid).values(covers=old))

    with op.batch_alter_table('retest_mark') as batch:
        batch.add_column(sa.Column('from_version_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('to_version_id', sa.Integer(), nullable=True))
    marks = sa.table('retest_mark', sa.column('id', sa.Integer),
                     sa.column('from_version_id', sa.Integer),
                     sa.column('to_version_id', sa.Integer))
    for mid, tested, now in bind.execute(sa.text(
            "SELECT id, tested_versions, now_versions FROM retest_mark")).all():
        tested, now = _json(tested) or [], _json(now) or []
        bind.execute(marks.update().where(marks.c.id == mid).values(
            from_version_id=tested[-1] if tested else None,
            to_version_id=now[-1] if now else None))
    with op.batch_alter_table('retest_mark') as batch:
        batch.drop_column('tested_versions')
        batch.drop_column('now_versions')

    with op.batch_alter_table('test_run') as batch:
        batch.add_column(sa.Column('snapshot', sa.JSON(), nullable=True))
    runs = sa.table('test_run', sa.column('id', sa.Integer), sa.column('snapshot', sa.JSON))
    snaps: dict[int, list[list[int]]] = {}
    for run_id, n, v in bind.execute(sa.text(
            "SELECT run_id, node_id, version_id FROM snapshot_pair")):
        snaps.setdefault(run_id, []).append([n, v])
    for (run_id,) in bind.execute(sa.text("SELECT id FROM test_run")).all():
        bind.execute(runs.update().where(runs.c.id == run_id).values(
            snapshot=sorted(snaps.get(run_id, []))))
    with op.batch_alter_table('test_run') as batch:
        batch.alter_column('snapshot', existing_type=sa.JSON(), nullable=False)
    op.drop_index('ix_snapshot_pair_node', table_name='snapshot_pair')
    op.drop_table('snapshot_pair')
