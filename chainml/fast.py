"""The read-only questions CI waits on, answered straight from a database URL.

``impact``, ``status``, ``check`` (with or without an environment) and ``plan`` each
read one snapshot of the registry through ``db.direct.reading``: a plain DB-API
connection for SQLite and PostgreSQL URLs, so SQLAlchemy (~0.3 s of start-up) is never
imported on these paths. They run the same functions as ``Registry.impact``/``status``/``check``
(``chainml.rules.impact``, ``chainml.rules.gate``), which the ``Registry`` calls inside its
own session: one implementation, two ways in. The command line uses these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # impact's path imports no pydantic model at all
    from chainml.schemas import CheckResult, PlanResult, StatusEntry


def impact(url: str | None, name: str, max_depth: int | None = None) -> dict[str, Any]:
    """What a new version of ``name`` would mark, as plain data (``ImpactResult``'s shape)."""
    from chainml.db.direct import reading
    from chainml.rules.impact import impact as walk

    with reading(url) as db:
        return walk(db, name, max_depth)


def status(url: str | None, name: str | None = None) -> list[StatusEntry]:
    """Status of every node that needs tests (or of ``name``), sorted by name."""
    from chainml.db.direct import reading
    from chainml.rules import gate
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return gate.status(db, name, utcnow())


def check(url: str | None, names: Sequence[str] = (), strict: bool = False) -> CheckResult:
    """The CI gate over every node, or over ``names`` and their ancestors."""
    from chainml.db.direct import reading
    from chainml.rules import gate
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return gate.check(db, names, strict, utcnow())


def env_status(url: str | None, env: str, name: str | None = None) -> list[StatusEntry]:
    """Environment status of every deployed node that needs tests (or of ``name``)."""
    from chainml.db.direct import reading
    from chainml.environments import service
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return service.env_status(db, env, name, utcnow())


def env_check(url: str | None, env: str, names: Sequence[str] = (), strict: bool = False
              ) -> CheckResult:
    """The deployment gate over what ``env`` serves (or over ``names`` and upstream)."""
    from chainml.db.direct import reading
    from chainml.environments import service
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return service.env_check(db, env, list(names), strict, utcnow())


def plan(url: str | None, env: str, to: str = "current", nodes: Sequence[str] = ()
         ) -> PlanResult:
    """The release that brings ``nodes`` of ``env`` (default: every differing node) to
    the versions of ``to`` ("current" or an environment) with nothing left broken."""
    from chainml.db.direct import reading
    from chainml.environments import plan as planning
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return planning.plan(db, env, to, list(nodes), utcnow())


def registry_url(url: str | None) -> tuple[str, str]:
    """The registry's URL (``--db``, CHAINML_DATABASE_URL, or the nearest
    ``.chainml/registry.db``), and the same with credentials hidden, to print."""
    from chainml.db import location
    from chainml.db.failures import redact_text

    found = location.resolve_url(url)
    return found, redact_text(found, found)


def redact(text: str, *urls: str) -> str:
    """``text`` with every credential a database URL can carry hidden (see
    ``db.failures.redact_text``): for messages about unexpected errors."""
    from chainml.db.failures import redact_text

    return redact_text(text, *urls)
