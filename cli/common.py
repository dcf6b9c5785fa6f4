"""Shared options and helpers for the command modules.

Only click is imported at module level: ``chainml --help`` must start fast, so
the library (SQLAlchemy, networkx, pydantic) is imported inside the commands.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from pydantic import BaseModel

    from chainml.registry import Registry

F = TypeVar("F", bound=Callable[..., Any])

KINDS = ("source", "feature", "model", "policy", "consumer")  # as chainml.kinds.ALL_KINDS


class KindChoice(click.Choice):  # type: ignore[type-arg, unused-ignore]
    """A node kind; a misspelt one gets a "did you mean" (`register modle x`)."""

    def __init__(self) -> None:
        super().__init__(KINDS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        if isinstance(value, str) and value not in KINDS:
            import difflib

            close = difflib.get_close_matches(value.lower(), KINDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "."
            self.fail(f"{value!r} is not a kind: use one of {', '.join(KINDS)}{hint}", param,
                      ctx)
        return super().convert(value, param, ctx)


class HelpGroup(click.Group):
    """A command group that answers a bare call with its help and exit 0: `chainml db`
    asks what there is, which is not a usage error (click's no_args_is_help exits 2)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args:
            click.echo(ctx.get_help())
            ctx.exit(0)
        return super().parse_args(ctx, args)


def _remember_db(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        # On the root context, where db_url() looks: a command's own context has no object
        # to share when the group got no --db, so ``chainml init --db URL`` lost the URL.
        ctx.find_root().ensure_object(dict)["db"] = value


def db_option(f: F) -> F:
    """``--db URL`` on a command (the group takes it too, before the command name)."""
    return click.option(
        "--db", "db", metavar="URL", expose_value=False, callback=_remember_db,
        is_eager=True, help="Database URL (default: CHAINML_DATABASE_URL, else the nearest "
        ".chainml/registry.db).",
    )(f)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True,
                        help="Write JSON (and nothing else) to stdout.")(f)


def db_url(ctx: click.Context) -> str | None:
    obj = ctx.find_root().ensure_object(dict)
    value = obj.get("db")
    return str(value) if value else None


def open_registry(ctx: click.Context, check_schema: bool = True) -> Registry:
    from chainml.registry import Registry

    reg = Registry(db_url(ctx), check_schema=check_schema)
    ctx.call_on_close(reg.close)
    return reg


def echo_json(data: BaseModel | list[Any] | dict[str, Any]) -> None:
    """Models, lists of models or plain data, serialised by alias ('from'), one document."""
    from pydantic_core import to_json

    # pydantic-core's serialiser writes 40 MB of indented JSON in a quarter of a second,
    # five times faster than the json module with indent (pure Python then).
    click.echo(to_json(data, indent=2, by_alias=True))  # bytes: written as they are


def read_only_run() -> None:
    """For a command that only reads and prints (impact, status, check): no cyclic
    garbage collection. Their objects are plain rows and entries, freed by reference
    counting; with the collector on, an 80,000-node impact spent 1.2 s of 2.7 s
    rescanning them."""
    gc.disable()


def err(text: str) -> None:
    click.echo(text, err=True)


def isatty() -> bool:
    return sys.stdout.isatty()
