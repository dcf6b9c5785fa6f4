"""Pipelines report themselves: OpenLineage events and what they revealed.

* ``lineage_event``: every OpenLineage event received (``POST /api/v1/lineage``,
  ``chainml ingest``), once: ``dedup_key`` is unique per (run id, event type), or per
  event body for events without a run, so a re-delivery stores nothing.
* ``lineage_run``: a run whose ``COMPLETE`` was received, with what it registered (the
  job's version and the output datasets' versions), so that events of that run
  arriving after it are merged without registering anything twice.
* ``observed_input``: an *undeclared consumer* finding: a node was seen reading (or
  being written by) a node that its declared inputs do not name.

Nothing existing changes.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 07:40:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def Name(length: int) -> sa.String:  # noqa: N802
    """Byte-wise text on MariaDB (its default collation ignores case)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        'lineage_event',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('dedup_key', sa.String(length=64), nullable=False),
        sa.Column('run_id', Name(255), nullable=True),
        sa.Column('event_type', sa.String(length=10), nullable=True),
        sa.Column('event_time', sa.DateTime(), nullable=False),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('received_by', sa.String(length=200), nullable=False),
        sa.Column('body', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lineage_event')),
        sa.UniqueConstraint('dedup_key', name=op.f('uq_lineage_event_dedup_key')),
    )
    op.create_index(op.f('ix_lineage_event_run_id'), 'lineage_event', ['run_id'])
    op.create_table(
        'lineage_run',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('run_id', Name(255), nullable=False),
        sa.Column('job', Name(200), nullable=False),
        sa.Column('job_version', Name(100), nullable=False),
        sa.Column('outputs', sa.JSON(), nullable=False),
        sa.Column('completed_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lineage_run')),
        sa.UniqueConstraint('run_id', name=op.f('uq_lineage_run_run_id')),
    )
    op.create_table(
        'observed_input',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('input_id', sa.Integer(), nullable=False),
        sa.Column('first_run', Name(255), nullable=False),
        sa.Column('first_seen', sa.DateTime(), nullable=False),
        sa.Column('last_run', Name(255), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.Column('times', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'],
                                name=op.f('fk_observed_input_node_id_node'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['input_id'], ['node.id'],
                                name=op.f('fk_observed_input_input_id_node'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_observed_input')),
        sa.UniqueConstraint('node_id', 'input_id', name=op.f('uq_observed_input_node_id')),
    )
    op.create_index(op.f('ix_observed_input_input_id'), 'observed_input', ['input_id'])


def downgrade() -> None:
    # Dropping a table drops its indexes (MariaDB refuses to drop an index alone while a
    # foreign key needs it).
    op.drop_table('observed_input')
    op.drop_table('lineage_run')
    op.drop_table('lineage_event')
