"""Covering indexes for the walks over ``edge`` and for status reads of ``test_run``.

A walk step joins ``edge`` on one end and filters on ``feedback`` and
``pinned_version_id``; with those columns and the other end in the index, the
database never visits the table itself. ``ix_edge_walk_up`` starts with
``downstream_id`` and so replaces ``ix_edge_downstream``. Status reads the
runs of every current version; ``ix_test_run_status`` holds all it reads, so
the rows (with their kilobyte snapshots) stay on disk, and it replaces
``ix_test_run_node_version``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 15:10:00

"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_edge_walk_down', 'edge',
                    ['upstream_id', 'feedback', 'pinned_version_id', 'downstream_id'])
    op.create_index('ix_edge_walk_up', 'edge',
                    ['downstream_id', 'feedback', 'pinned_version_id', 'upstream_id'])
    op.drop_index('ix_edge_downstream', table_name='edge')
    op.create_index('ix_test_run_status', 'test_run',
                    ['node_id', 'version_id', 'recorded_at', 'id', 'suite', 'passed'])
    op.drop_index('ix_test_run_node_version', table_name='test_run')


def downgrade() -> None:
    op.create_index('ix_test_run_node_version', 'test_run', ['node_id', 'version_id'])
    op.drop_index('ix_test_run_status', table_name='test_run')
    op.create_index('ix_edge_downstream', 'edge', ['downstream_id'])
    op.drop_index('ix_edge_walk_up', table_name='edge')
    op.drop_index('ix_edge_walk_down', table_name='edge')
