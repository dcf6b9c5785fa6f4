"""API tokens: who may read and write through ``chainml serve``.

* ``api_token``: a named credential with a scope (read, write, admin), an optional
  expiry and a revocation; only the SHA-256 digest of its secret is stored. Names are
  unique for good, revoked or not: a token's name is the actor in the history.

Nothing existing changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 05:20:00

"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def Name(length: int) -> sa.String:  # noqa: N802
    """Byte-wise text on MariaDB (its default collation ignores case)."""
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, collation="utf8mb4_bin"), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        'api_token',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', Name(100), nullable=False),
        sa.Column('name_key', sa.String(length=100), nullable=False),
        sa.Column('scope', sa.String(length=10), nullable=False),
        sa.Column('secret_digest', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_by', sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
        sa.UniqueConstraint('name', name=op.f('uq_api_token_name')),
        sa.UniqueConstraint('name_key', name=op.f('uq_api_token_name_key')),
    )


def downgrade() -> None:
    op.drop_table('api_token')
