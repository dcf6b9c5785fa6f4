"""Webhooks: who is told about changes, and the outbox of what to tell them.

* ``hook``: a subscriber (URL, events, body format, the *name* of the environment
  variable holding its signing secret, never the secret), removed but never deleted.
* ``notification``: the transactional outbox. One row per change that some hook
  subscribes to, written in the change's own transaction; ``uuid`` is the id
  receivers de-duplicate on.
* ``delivery``: one per (hook, notification): pending, delivered or dead, with its
  attempts and when the next one is due (``ix_delivery_due`` serves the worker).
* ``gate_verdict``: the registry gate's last verdict, compared after each write while
  a hook subscribes to ``check.changed``.

Nothing existing changes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 07:40:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'hook',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=2000), nullable=False),
        sa.Column('events', sa.JSON(), nullable=False),
        sa.Column('format', sa.String(length=10), nullable=False),
        sa.Column('secret_env', sa.String(length=200), nullable=True),
        sa.Column('max_attempts', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('removed_at', sa.DateTime(), nullable=True),
        sa.Column('removed_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_hook')),
    )
    op.create_table(
        'notification',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('event', sa.String(length=40), nullable=False),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notification')),
        sa.UniqueConstraint('uuid', name=op.f('uq_notification_uuid')),
    )
    op.create_table(
        'delivery',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('hook_id', sa.Integer(), nullable=False),
        sa.Column('notification_id', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('last_status', sa.Integer(), nullable=True),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('delivered_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['hook_id'], ['hook.id'],
                                name=op.f('fk_delivery_hook_id_hook'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['notification_id'], ['notification.id'],
                                name=op.f('fk_delivery_notification_id_notification'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery')),
        sa.UniqueConstraint('hook_id', 'notification_id', name=op.f('uq_delivery_hook_id')),
    )
    op.create_index('ix_delivery_due', 'delivery', ['state', 'next_attempt_at'])
    op.create_index(op.f('ix_delivery_notification_id'), 'delivery', ['notification_id'])
    op.create_table(
        'gate_verdict',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('failing', sa.JSON(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_verdict')),
    )


def downgrade() -> None:
    op.drop_table('gate_verdict')
    # Dropping a table drops its indexes (MariaDB refuses to drop an index alone while a
    # foreign key needs it).
    op.drop_table('delivery')
    op.drop_table('notification')
    op.drop_table('hook')
