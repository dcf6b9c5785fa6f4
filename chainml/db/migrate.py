"""Schema migrations: upgrade, current revision, and the check every command makes.

Alembic is imported inside the functions that need it: it is slow to import and
most commands only compare one revision string (see ``check_schema``).
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from chainml.errors import SchemaOutdated

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import Engine

# SQLAlchemy is imported inside the functions too: the direct read path
# (db/direct.py) needs only HEAD and schema_error.

# The newest revision in migrations/versions; tests/test_migrations.py keeps it honest.
HEAD = "0008"
VERSION_TABLE = "alembic_version"


def alembic_config(engine: Engine | None = None) -> Config:
    """An alembic Config pointing at the migrations shipped inside the package."""
    from alembic.config import Config

    from chainml.db.engine import redact

    cfg = Config()
    # A resource of the mapped package works from a wheel and from an editable install.
    cfg.set_main_option("script_location", str(files("chainml.migrations")))
    if engine is not None:
        cfg.set_main_option("sqlalchemy.url", redact(engine.url).replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest) in one transaction."""
    from alembic import command
    from alembic.util import CommandError

    from chainml.db.engine import redact, translate_errors

    try:
        with translate_errors(engine.url), engine.begin() as conn:
            cfg = alembic_config(engine)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    except CommandError as e:
        # Typically a revision this chainml does not know: the registry was made by
        # another (newer) chainml.
        raise SchemaOutdated(
            f"Cannot upgrade the registry at {redact(engine.url)}: {e}; its schema comes from "
            "another chainml version, so use that version or restore a backup."
        ) from None


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` ('base' drops every table)."""
    from alembic import command

    from chainml.db.engine import translate_errors

    with translate_errors(engine.url), engine.begin() as conn:
        cfg = alembic_config(engine)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from chainml.db.engine import schema_revision

    return schema_revision(engine, VERSION_TABLE)


def script_head() -> str:
    """The head revision according to the migration scripts (slow: imports alembic)."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    if len(heads) != 1:
        raise RuntimeError(f"migrations have {len(heads)} heads: {heads}")
    return heads[0]


def check_schema(engine: Engine) -> None:
    """Refuse a registry that is empty, older or newer than this chainml (exit 3)."""
    from chainml.db.engine import redact

    problem = schema_error(current(engine), redact(engine.url))
    if problem is not None:
        raise problem


def schema_error(rev: str | None, where: str) -> SchemaOutdated | None:
    """What is wrong with a registry at revision ``rev`` (None: not a registry), if anything."""
    if rev == HEAD:
        return None
    if rev is None:
        return SchemaOutdated(
            f"The database at {where} is not a chainml registry yet; run 'chainml init' "
            "(or 'chainml db upgrade' for a shared database)."
        )
    if rev.isdigit() and int(rev) > int(HEAD):
        return SchemaOutdated(
            f"The registry at {where} is at revision {rev}, newer than this chainml "
            f"({HEAD}); upgrade chainml."
        )
    return SchemaOutdated(
        f"The registry at {where} is at revision {rev}, chainml expects {HEAD}; back it up, "
        "then run: chainml db upgrade"
    )
