"""The read-only questions CI waits on, answered straight from a database URL.

``impact``, ``status``, ``check`` (with or without an environment) and ``plan`` each
read one snapshot of the registry through ``db.direct.reading``: a plain DB-API
connection for SQLite and PostgreSQL URLs, so SQLAlchemy (~0.3 s of start-up) is never
imported on these paths. They run the same functions as ``Registry.impact``/``status``/``check``
(``chainml.rules.impact``, ``chainml.rules.gate``), which the ``Registry`` calls inside its
own session: one implementation, two ways in. The command line uses these.

``impact`` and ``status`` (with or without an environment) import no pydantic either
(~0.13 s): they answer with plain data, and ``status_json`` writes the entries exactly as
the ``StatusEntry`` models would be written (docs/json.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # impact's and status's paths import no pydantic model at all
    from chainml.rules.status import Entry
    from chainml.schemas import CheckResult, PlanResult


def impact(url: str | None, name: str, max_depth: int | None = None) -> dict[str, Any]:
    """What a new version of ``name`` would mark, as plain data (``ImpactResult``'s shape)."""
    from chainml.db.direct import reading
    from chainml.rules.impact import impact as walk

    with reading(url) as db:
        return walk(db, name, max_depth)


def status(url: str | None, name: str | None = None) -> list[Entry]:
    """Status of every node that needs tests (or of ``name``), sorted by name, as plain
    data (``StatusEntry``'s fields; ``status_json`` writes them)."""
    from chainml.db import reads
    from chainml.db.direct import reading
    from chainml.rules import gate
    from chainml.rules.status import utcnow

    with reading(url) as db:
        ids = [reads.require_live(db, name).id] if name else None
        return sorted(gate.entries(db, ids, utcnow()).values(), key=lambda e: str(e["name"]))


def check(url: str | None, names: Sequence[str] = (), strict: bool = False) -> CheckResult:
    """The CI gate over every node, or over ``names`` and their ancestors."""
    from chainml.db.direct import reading
    from chainml.rules import gate
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return gate.check(db, names, strict, utcnow())


def env_status(url: str | None, env: str, name: str | None = None) -> list[Entry]:
    """Environment status of every deployed node that needs tests (or of ``name``), as
    plain data (``status_json`` writes them)."""
    from chainml.db.direct import reading
    from chainml.environments import judge
    from chainml.rules.status import utcnow

    with reading(url) as db:
        return judge.env_status(db, env, name, utcnow())


# Fields of ``StatusEntry`` and ``Reason`` in the order the models write them, with the
# name each is written under ("from": the alias of ``from_``).
_ENTRY = ("name", "kind", "version", "status", "reasons", "owner", "last_run", "waivers",
          "required_suites")
_REASON = (("cause", "cause"), ("from", "from_"), ("to", "to"), ("tested_with", "tested_with"),
           ("now", "now"), ("path", "path"), ("suite", "suite"), ("message", "message"))
# Up to this many entries the json module writes them (pydantic-core costs ~45 ms to
# import); beyond, pydantic-core's serialiser, five times faster with indentation.
JSON_MODULE_UP_TO = 1000


class _Unlike(Exception):
    """A value the json module would not write as pydantic-core does."""


def _iso(value: Any) -> str:
    # Naive datetimes (what chainml stores) are written alike; pydantic-core writes an
    # aware one's UTC offset as Z, so it gets those.
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.isoformat()
    raise _Unlike(type(value).__name__)


def status_json(entries: Sequence[Entry], json_module_up_to: int = JSON_MODULE_UP_TO
                ) -> bytes:
    """Status entries as ``chainml status --json`` writes them (docs/json.md): the bytes
    pydantic-core writes for the ``StatusEntry`` models (``cli.common.echo_json``)."""
    docs = [{**{k: e[k] for k in _ENTRY},
             "reasons": [{out: r[key] for out, key in _REASON} for r in e["reasons"]]}
            for e in entries]
    if len(docs) <= json_module_up_to:
        try:
            return json.dumps(docs, indent=2, ensure_ascii=False, default=_iso).encode()
        except (_Unlike, UnicodeEncodeError):
            pass  # a lone surrogate, an aware datetime: pydantic-core says what it does
    from pydantic_core import to_json

    return to_json(docs, indent=2)


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
