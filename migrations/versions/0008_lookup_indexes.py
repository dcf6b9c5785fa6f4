"""Two lookups that scanned a whole table: who reads a node, and the runs of a version.

* ``version_input`` was indexed only by its key (version, upstream, feedback), so
  "which versions read these nodes" (``reads.readers``: the walk down the served graph
  that ``deploy``, ``deploy --check`` and ``plan`` make from a release) scanned the
  table at every step. On PostgreSQL the filter ``upstream_id = ANY(array)`` is checked
  item by item over the 467,000 rows of the 100,000-node benchmark: 5 s for 3,000
  nodes, and ``deploy --check`` of the hub's new version took 107 s (3.2 s with this
  index). ``ix_version_input_readers`` covers what the walk reads.
* ``test_run`` was indexed by (node, version, ...) only, so the runs of given versions
  (``reads.version_runs``: environment status judged the direct way, a node's page)
  scanned every run ever recorded: 2 ms for one version, 0.19 s for 3,000 in a
  28,000-run registry, and growing with every CI run. ``ix_test_run_version``.

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
    op.create_index('ix_test_run_version', 'test_run', ['version_id', 'id'])


def downgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        # InnoDB dropped the indexes it had made for the foreign keys on these columns
        # when ours could serve them, and refuses to drop ours without a replacement:
        # put its own back first, under the names they had.
        op.create_index('fk_test_run_version_id_version', 'test_run', ['version_id'])
        op.create_index('fk_version_input_upstream_id_node', 'version_input', ['upstream_id'])
    op.drop_index('ix_test_run_version', table_name='test_run')
    op.drop_index('ix_version_input_readers', table_name='version_input')
