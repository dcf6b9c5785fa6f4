"""Chain files: ``apply``, ``export`` and ``import``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from chainml.cli.common import db_option, echo_json, err, json_option, open_registry

if TYPE_CHECKING:
    from chainml.files.apply import ApplyResult

SIGNS = {"add": "+", "version": "~", "promote": "~", "settings": "~", "retire": "-"}
SHOWN = 200  # plan lines printed before "... and N more"


def print_plan(result: ApplyResult) -> None:
    """The plan as a diff: + added, ~ changed, - retired."""
    for item in result.items[:SHOWN]:
        line = f"{SIGNS[item.action]} {item.node} ({item.kind})"
        if item.action == "add":
            line += f" {item.version}"
        elif item.action in ("version", "promote"):
            verb = "promote to" if item.action == "promote" else "new version"
            line += f" {verb} {item.version} (was {item.previous})"
        elif item.action == "settings":
            line += f" settings: {item.detail}"
        if item.action == "version" and item.detail:
            line += f"; {item.detail}"
        click.echo(line)
    if len(result.items) > SHOWN:
        click.echo(f"... and {len(result.items) - SHOWN} more changes")
    counts: dict[str, int] = {}
    for item in result.items:
        counts[item.action] = counts.get(item.action, 0) + 1
    parts = [f"{v} {k}" for k, v in sorted(counts.items())] + [f"{result.unchanged} unchanged"]
    verb = "Would apply" if result.dry_run else "Applied"
    if not result.items:
        click.echo(f"Nothing to change: the registry already matches {result.file} "
                   f"({result.unchanged} nodes).")
        return
    click.echo(f"{verb} {result.file}: {', '.join(parts)}"
               + (f"; {result.marked} retest mark(s) written" if result.marked and
                  not result.dry_run else "") + ".")


def _progress(total: int):  # type: ignore[no-untyped-def]
    """A rich progress bar on a terminal for big files; nothing otherwise."""
    import sys

    if total < 2000 or not sys.stderr.isatty():
        return None, None
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task("applying", total=total)
    bar.start()
    return bar, lambda done: bar.update(task, completed=done)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--prune", is_flag=True, help="Also retire nodes the file does not declare "
              "(their history stays).")
@json_option
@db_option
@click.pass_context
def apply(ctx: click.Context, file: str, dry_run: bool, prune: bool, as_json: bool) -> None:
    """Make the registry match a chain FILE (YAML, or .json), in one transaction.

    New nodes are added, changed nodes get their new version (impact marks are
    written as by 'register'), settings are updated; applying the same file twice
    changes nothing. All or nothing: an error leaves the registry as it was.

    \b
    Example:
      chainml apply chain.yaml --dry-run
      chainml apply chain.yaml --prune
    """
    reg = open_registry(ctx)
    bar, tick = _progress(_count_hint(file))
    try:
        result = reg.apply(file, dry_run=dry_run, prune=prune, progress=tick)
    finally:
        if bar is not None:
            bar.stop()
    if as_json:
        echo_json(result)
    else:
        print_plan(result)


def _count_hint(path: str) -> int:
    """A cheap guess of the node count (for the progress bar) without parsing twice."""
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024 * 1024)
    except OSError:
        return 0
    return data.count(b"name")


@click.command()
@click.option("-o", "--output", metavar="FILE", help="Write here instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(("yaml", "json")),
              help="Default: from -o's suffix, else yaml.")
@db_option
@click.pass_context
def export(ctx: click.Context, output: str | None, fmt: str | None) -> None:
    """Write the registry's current state as a chain file ('apply' reads it back).

    Current versions, their inputs and every node setting; the history stays in 'log'.

    \b
    Example:
      chainml export -o chain.yaml
    """
    from pathlib import Path

    from chainml.errors import InvalidInput
    from chainml.files.chainfile import dump_chain

    if fmt is None:
        fmt = "json" if output and output.lower().endswith(".json") else "yaml"
    text = dump_chain(open_registry(ctx).export(), "json" if fmt == "json" else "yaml")
    if not output or output == "-":
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"Cannot write {output}: {e.strerror}.") from None
    err(f"Wrote {output}.")


@click.command(name="import")
@click.argument("tool", type=click.Choice(("dbt", "dvc", "openlineage")))
# A folder is valid for openlineage only; the dbt and dvc readers refuse one themselves.
@click.argument("path", type=click.Path())
@click.option("--kind-map", "kind_map", multiple=True, metavar="SELECTOR=KIND",
              help="Map foreign nodes to kinds, first match wins, e.g. tag:ml=model, "
              "path:models/ml/*=model, stage:train=model, job:*train*=model. Repeatable.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--prune", is_flag=True, help="Also retire nodes the import does not "
              "declare (their history stays).")
@click.option("--to-chain-file", "out", metavar="FILE",
              help="Write the chain file instead of applying it (to review or commit).")
@json_option
@db_option
@click.pass_context
def import_(ctx: click.Context, tool: str, path: str, kind_map: tuple[str, ...], dry_run: bool,
            prune: bool, out: str | None, as_json: bool) -> None:
    """Import a chain from dbt (manifest.json), DVC (dvc.yaml) or OpenLineage (events).

    OpenLineage PATH is a file (one JSON event, a JSON array or JSON lines) or a
    folder of them, read recursively.

    The import is applied exactly like a chain file: one transaction, impact marks
    for changed upstream nodes, nothing changed when nothing changed upstream.

    \b
    Example:
      chainml import dbt target/manifest.json --kind-map tag:ml=model --dry-run
      chainml import dvc dvc.yaml --kind-map stage:train=model
      chainml import openlineage events.jsonl
      chainml import openlineage lineage-events/
    """
    import warnings
    from pathlib import Path

    from chainml.errors import InvalidInput

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if out:
            from chainml.files import importers
            from chainml.files.chainfile import dump_chain

            file = importers.load(tool, path, list(kind_map) or None)
            try:
                Path(out).write_text(dump_chain(file), encoding="utf-8")
            except OSError as e:
                raise InvalidInput(f"Cannot write {out}: {e.strerror}.") from None
            err(f"Wrote {out} ({len(file.nodes)} nodes).")
            result = None
        else:
            result = open_registry(ctx).import_file(tool, path, kind_map=kind_map,
                                                    dry_run=dry_run, prune=prune)
    for w in caught:
        err(f"Note: {w.message}")
    if result is None:
        return
    if as_json:
        echo_json(result)
    else:
        print_plan(result)


def attach(group: click.Group) -> None:
    group.add_command(apply)
    group.add_command(export)
    group.add_command(import_)
