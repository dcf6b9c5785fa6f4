"""An index to find the versions that read a node: ``version_input`` by upstream.

``version_input`` was only indexed by its key (version, upstream, feedback), so "which
versions read these nodes" (``reads.readers``: the walk down the served graph that
``deploy``, ``deploy --check`` and ``plan`` make from a release) scanned the whole
table for every step. On PostgreSQL the scan filtered each of the 467,000 rows of the
100,000-node benchmark through ``upstream_id = ANY(array)`` item by item: 5 s for 3,000
nodes, and ``deploy --check`` of the hub's new version took 107 s, 3.2 s with this
index. It covers what that walk reads (feedback, the reading version, the pin), so the
table itself is not visited.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:15:00

"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_version_input_readers', 'version_input',
                    ['upstream_id', 'feedback', 'version_id', 'pinned_version_id'])


def downgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        # InnoDB dropped the index it had made for the foreign key on upstream_id when
        # this one could serve it, and refuses to drop this one without a replacement:
        # put its own back first, under the name it had.
        op.create_index('fk_version_input_upstream_id_node', 'version_input', ['upstream_id'])
    op.drop_index('ix_version_input_readers', table_name='version_input')
