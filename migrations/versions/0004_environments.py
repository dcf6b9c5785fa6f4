"""Environments and deployments: what runs where, for the training–serving skew gate.

* ``environment``: a named place where versions run, optionally ``after`` another.
* ``deployment``: append-only; the latest row per (environment, node) is what the
  environment serves, a NULL ``version_id`` an undeploy. ``event_id`` is the release's
  history event.
* ``waiver.environment_id``: NULL for the registry's waivers (every existing one);
  otherwise the waiver accepts skew in that environment only.
* ``event.env_name``: the environment an event is about, for ``log --env``.

Nothing existing changes meaning: every existing waiver stays a registry waiver and
every existing event belongs to no environment.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 01:30:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def Name(length: int) -> sa.String:  # noqa: N802
    """Byte-wise text on MariaDB (its default collation ignores case)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        'environment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', Name(100), nullable=False),
        sa.Column('name_key', sa.String(length=100), nullable=False),
        sa.Column('after_id', sa.Integer(), nullable=True),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['after_id'], ['environment.id'],
                                name=op.f('fk_environment_after_id_environment')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_environment')),
        sa.UniqueConstraint('name', name=op.f('uq_environment_name')),
        sa.UniqueConstraint('name_key', name=op.f('uq_environment_name_key')),
    )
    op.create_table(
        'deployment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('environment_id', sa.Integer(), nullable=False),
        sa.Column('node_id', sa.Integer(), nullable=False),
        sa.Column('version_id', sa.Integer(), nullable=True),
        sa.Column('event_id', sa.Integer(), nullable=True),
        sa.Column('deployed_at', sa.DateTime(), nullable=False),
        sa.Column('deployed_by', sa.String(length=200), nullable=False),
        sa.Column('link', sa.Text(), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['environment_id'], ['environment.id'],
                                name=op.f('fk_deployment_environment_id_environment'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['node_id'], ['node.id'],
                                name=op.f('fk_deployment_node_id_node'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['version_id'], ['version.id'],
                                name=op.f('fk_deployment_version_id_version'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deployment')),
    )
    op.create_index('ix_deployment_env_node', 'deployment',
                    ['environment_id', 'node_id', 'id'])
    op.create_index('ix_deployment_node', 'deployment', ['node_id', 'event_id'])
    # A new table may be referenced by a new column of waiver: recreated in batch mode on
    # SQLite (nothing references waiver, so dropping the old copy cascades nowhere).
    with op.batch_alter_table('waiver') as batch:
        batch.add_column(sa.Column('environment_id', sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f('fk_waiver_environment_id_environment'), 'environment',
                                 ['environment_id'], ['id'], ondelete='CASCADE')
    with op.batch_alter_table('event') as batch:
        batch.add_column(sa.Column('env_name', Name(100), nullable=True))
        batch.create_index('ix_event_env_name', ['env_name'], unique=False)


def downgrade() -> None:
    # An environment's waivers would read as registry waivers without their column:
    # they go with the environments (lossy, like the deployments; migrations/README.md).
    op.execute('DELETE FROM waiver WHERE environment_id IS NOT NULL')
    with op.batch_alter_table('event') as batch:
        batch.drop_index('ix_event_env_name')
        batch.drop_column('env_name')
    with op.batch_alter_table('waiver') as batch:
        batch.drop_constraint(op.f('fk_waiver_environment_id_environment'),
                              type_='foreignkey')
        batch.drop_column('environment_id')
    # The table takes its indexes with it (MariaDB refuses to drop an index its foreign
    # keys use on its own).
    op.drop_table('deployment')
    op.drop_table('environment')
