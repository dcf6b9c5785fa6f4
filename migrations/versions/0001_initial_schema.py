"""Initial schema: nodes, versions, inputs, edges, test runs, marks, waivers, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-27 11:36:51.154043

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql


def Name(length: int) -> sa.String:  # noqa: N802
    """Byte-wise text on MariaDB (its default collation ignores case)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('node_name', Name(200), nullable=True),
    sa.Column('version_label', Name(100), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_event'))
    )
    with op.batch_alter_table('event', schema=None) as batch_op:
        batch_op.create_index('ix_event_node_name', ['node_name'], unique=False)

    op.create_table('node',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', Name(200), nullable=False),
    sa.Column('name_key', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('needs_tests', sa.Boolean(), nullable=False),
    sa.Column('max_age_s', sa.Integer(), nullable=True),
    sa.Column('required_suites', sa.JSON(), nullable=False),
    sa.Column('current_version_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_node')),
    sa.UniqueConstraint('name', name=op.f('uq_node_name')),
    sa.UniqueConstraint('name_key', name=op.f('uq_node_name_key'))
    )
    write_lock = op.create_table('write_lock',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('counter', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_write_lock'))
    )
    # The single row every writer locks first (chainml.db.models.WriteLock).
    op.bulk_insert(write_lock, [{"id": 1, "counter": 0}])
    op.create_table('edge',
    sa.Column('upstream_id', sa.Integer(), nullable=False),
    sa.Column('downstream_id', sa.Integer(), nullable=False),
    sa.Column('feedback', sa.Boolean(), nullable=False),
    sa.Column('pinned_version_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['downstream_id'], ['node.id'], name=op.f('fk_edge_downstream_id_node'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['upstream_id'], ['node.id'], name=op.f('fk_edge_upstream_id_node'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upstream_id', 'downstream_id', 'feedback', name=op.f('pk_edge'))
    )
    with op.batch_alter_table('edge', schema=None) as batch_op:
        batch_op.create_index('ix_edge_downstream', ['downstream_id'], unique=False)

    op.create_table('retest_mark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('cause_id', sa.Integer(), nullable=False),
    sa.Column('from_version_id', sa.Integer(), nullable=True),
    sa.Column('to_version_id', sa.Integer(), nullable=True),
    sa.Column('path', sa.JSON(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('close_reason', sa.String(length=20), nullable=True),
    sa.ForeignKeyConstraint(['cause_id'], ['node.id'], name=op.f('fk_retest_mark_cause_id_node'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_retest_mark_node_id_node'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retest_mark'))
    )
    with op.batch_alter_table('retest_mark', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retest_mark_cause_id'), ['cause_id'], unique=False)
        batch_op.create_index('ix_retest_mark_node_open', ['node_id', 'closed_at'], unique=False)

    op.create_table('version',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('label', Name(100), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_version_node_id_node'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_version')),
    sa.UniqueConstraint('node_id', 'label', name='uq_version_node_label')
    )
    with op.batch_alter_table('version', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_version_node_id'), ['node_id'], unique=False)

    op.create_table('waiver',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('cause_id', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('granted_by', sa.String(length=200), nullable=False),
    sa.Column('granted_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('covers', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['cause_id'], ['node.id'], name=op.f('fk_waiver_cause_id_node'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_waiver_node_id_node'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_waiver'))
    )
    with op.batch_alter_table('waiver', schema=None) as batch_op:
        batch_op.create_index('ix_waiver_node_expires', ['node_id', 'expires_at'], unique=False)

    op.create_table('test_run',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('node_id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('suite', Name(100), nullable=False),
    sa.Column('passed', sa.Boolean(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('link', sa.Text(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['node_id'], ['node.id'], name=op.f('fk_test_run_node_id_node'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['version.id'], name=op.f('fk_test_run_version_id_version'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_test_run'))
    )
    with op.batch_alter_table('test_run', schema=None) as batch_op:
        batch_op.create_index('ix_test_run_node_version', ['node_id', 'version_id'], unique=False)

    op.create_table('version_input',
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('upstream_id', sa.Integer(), nullable=False),
    sa.Column('feedback', sa.Boolean(), nullable=False),
    sa.Column('pinned_version_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['pinned_version_id'], ['version.id'], name=op.f('fk_version_input_pinned_version_id_version'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['upstream_id'], ['node.id'], name=op.f('fk_version_input_upstream_id_node'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['version_id'], ['version.id'], name=op.f('fk_version_input_version_id_version'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', 'upstream_id', 'feedback', name=op.f('pk_version_input'))
    )


def downgrade() -> None:
    """Downgrade schema."""
    # Dropping a table drops its indexes; dropping the indexes first fails on
    # MariaDB, where an index may back a foreign key.
    for table in ("waiver", "version_input", "test_run", "retest_mark", "edge", "version",
                  "write_lock", "node", "event"):
        op.drop_table(table)
