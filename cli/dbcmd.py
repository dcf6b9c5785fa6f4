"""``chainml init`` and ``chainml db upgrade|current``."""

from __future__ import annotations

from pathlib import Path

import click

from chainml.cli.common import HelpGroup, db_option, db_url, echo_json, json_option


@click.command()
@db_option
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create a registry: .chainml/registry.db here, or the database given by --db.

    Running it again upgrades an existing registry and changes nothing else.

    \b
    Example:
      chainml init
      chainml init --db postgresql://ci@db.internal/chainml
    """
    from chainml.registry import Registry

    url = db_url(ctx)
    reg = Registry.init(Path.cwd(), url=url) if url else Registry.init(Path.cwd())
    where = reg.url  # credentials hidden
    reg.close()
    click.echo(f"Registry ready at {where}")
    if reg.shadows is not None:
        # A warning, not a refusal: a sub-project may want its own registry on purpose.
        click.echo(f"Warning: this registry hides {reg.shadows} from the commands run in "
                   f"{Path.cwd()} and below (chainml uses the nearest .chainml/, as git does "
                   "with .git); remove ./.chainml to use that one again.", err=True)


@click.group(cls=HelpGroup)
def db() -> None:
    """Schema migrations of the registry."""


@db.command()
@db_option
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Upgrade the registry's schema to this chainml's (back it up first).

    \b
    Example:
      chainml db upgrade --db postgresql://ci@db.internal/chainml
    """
    from chainml.cli.common import open_registry

    before, after = open_registry(ctx, check_schema=False).upgrade_schema()
    click.echo(f"Schema upgraded from {before or 'empty'} to {after}"
               if before != after else f"Schema already at {after}")


@db.command()
@db_option
@json_option
@click.pass_context
def current(ctx: click.Context, as_json: bool) -> None:
    """Show the registry's schema revision and the one this chainml expects.

    \b
    Example:
      chainml db current --json
    """
    from chainml.cli.common import open_registry

    out = open_registry(ctx, check_schema=False).schema_revision()
    if as_json:
        echo_json(out)
    else:
        note = "up to date" if out.up_to_date else "run 'chainml db upgrade'"
        click.echo(f"{out.current or 'empty'} (chainml expects {out.head}: {note})")


def attach(group: click.Group) -> None:
    group.add_command(init)
    group.add_command(db)
