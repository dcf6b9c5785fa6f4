"""Alembic environment for chainml.

The library passes its own connection in ``config.attributes["connection"]``
(alembic cookbook, "Sharing a Connection across one or more programmatic
migration commands"); the ``alembic`` command line builds one from
CHAINML_DATABASE_URL instead.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from chainml.db.engine import create, parse_url
from chainml.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    # Batch mode: SQLite cannot ALTER most things in place (alembic docs/build/batch.rst).
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    url = os.environ.get("CHAINML_DATABASE_URL", "sqlite:///.chainml/registry.db")
    context.configure(
        url=parse_url(url), target_metadata=target_metadata, literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("CHAINML_DATABASE_URL", "sqlite:///.chainml/registry.db")
    engine = create(url)
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
