"""Registering and reading nodes: register, promote, retire, show, list, log."""

from __future__ import annotations

from typing import Any

import click

from chainml.cli.common import KindChoice, db_option, echo_json, json_option, open_registry


@click.command()
@click.argument("kind", type=KindChoice(), metavar="KIND")
@click.argument("name")
@click.option("--version", "-v", "version", required=True,
              help="Version label (1.4.0, a date, a git sha).")
@click.option("--input", "-i", "inputs", multiple=True, metavar="NODE[@VERSION]",
              help="An upstream node this version consumes; @VERSION pins it. Repeatable. "
              "Without any --input, a new version keeps the current version's inputs.")
@click.option("--no-inputs", is_flag=True, help="This version consumes nothing.")
@click.option("--feedback", "feedback", multiple=True, metavar="NODE",
              help="A feedback input: drawn and reported, never followed by impact. Repeatable.")
@click.option("--no-feedback", is_flag=True, help="Drop the feedback inputs.")
@click.option("--owner", help="Owning team or person (node setting).")
@click.option("--description", help="What the node is (node setting).")
@click.option("--tag", "tags", multiple=True,
              help="A tag; the given tags replace the node's. Repeatable.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE",
              help="Version metadata (artifact URI, code ref, data window); part of the version.")
@click.option("--node-meta", "node_meta", multiple=True, metavar="KEY=VALUE",
              help="Free node metadata (replaces the node's when given).")
@click.option("--max-age", metavar="DURATION",
              help="Retraining frequency, e.g. 30d: older current versions are stale "
              "('none' clears).")
@click.option("--needs-tests/--no-needs-tests", default=None,
              help="Whether the node must be tested (default by kind: models and policies).")
@click.option("--require-suite", "suites", multiple=True, metavar="SUITE",
              help="A suite that must pass for the node to be verified. Repeatable.")
@json_option
@db_option
@click.pass_context
def register(ctx: click.Context, kind: str, name: str, version: str, inputs: tuple[str, ...],
             no_inputs: bool, feedback: tuple[str, ...], no_feedback: bool, owner: str | None,
             description: str | None, tags: tuple[str, ...], meta: tuple[str, ...],
             node_meta: tuple[str, ...], max_age: str | None, needs_tests: bool | None,
             suites: tuple[str, ...], as_json: bool) -> None:
    """Register NAME (creating it if new) and a version of it.

    KIND is source, feature, model, policy or consumer. A new version becomes
    current and every node it reaches that needs tests is marked for retest.
    Registering an existing version again with the same content does nothing; with
    other content it is refused (versions are immutable).

    \b
    Example:
      chainml register source clicks_raw --version 2026-11-01
      chainml register model ranker --version 1.4.0 --input user_features \\
          --input embed@3 --owner ranking-team --require-suite offline-eval
    """
    from chainml.names import parse_meta

    if inputs and no_inputs:
        raise click.UsageError("--input and --no-inputs contradict each other.")
    if feedback and no_feedback:
        raise click.UsageError("--feedback and --no-feedback contradict each other.")
    spec: dict[str, Any] = {"kind": kind, "name": name, "version": version}
    if inputs or no_inputs:
        spec["inputs"] = list(inputs)
    if feedback or no_feedback:
        spec["feedback"] = list(feedback)
    for key, value in (("owner", owner), ("description", description), ("max_age", max_age),
                       ("needs_tests", needs_tests)):
        if value is not None:
            spec[key] = value
    if tags:
        spec["tags"] = list(tags)
    if suites:
        spec["required_suites"] = list(suites)
    if meta:
        spec["meta"] = parse_meta(list(meta))
    if node_meta:
        spec["node_meta"] = parse_meta(list(node_meta))
    result = open_registry(ctx).register(**spec)
    if as_json:
        echo_json(result)
        return
    if result.created_version:
        was = f" (was {result.previous_version})" if result.previous_version else ""
        new = "new node " if result.created_node else ""
        click.echo(f"Registered {new}{name} {version}{was}.")
        if result.marked:
            click.echo(f"{result.marked} downstream node(s) now need a retest; "
                       "'chainml status' lists them.")
    elif result.updated_fields:
        fields = ", ".join(result.updated_fields)
        click.echo(f"{name} {version} already registered; updated {fields}.")
    else:
        click.echo(f"{name} {version} is already registered with this content; nothing changed.")


@click.command()
@click.argument("node")
@click.argument("version")
@json_option
@db_option
@click.pass_context
def promote(ctx: click.Context, node: str, version: str, as_json: bool) -> None:
    """Make an existing VERSION of NODE current (a rollback or roll-forward).

    Downstream nodes tested against VERSION become verified again without a retest.

    \b
    Example:
      chainml promote embed 3
    """
    result = open_registry(ctx).promote(node, version)
    if as_json:
        echo_json(result)
    elif result.current_changed:
        click.echo(f"{node} is now at {version} (was {result.previous_version}); "
                   f"{result.marked} downstream node(s) re-evaluated.")
    else:
        click.echo(f"{node} is already at {version}; nothing changed.")


@click.command()
@click.argument("node")
@click.option("--reason", help="Why it leaves the chain (kept in the history).")
@json_option
@db_option
@click.pass_context
def retire(ctx: click.Context, node: str, reason: str | None, as_json: bool) -> None:
    """Take NODE out of the current chain; its versions, runs and history stay.

    A retired node leaves list, status, check, impact, graph and export. Refused
    while another node's current version reads it. Registering it again revives it.

    \b
    Example:
      chainml retire old_ranker --reason "replaced by ranker_v2"
    """
    result = open_registry(ctx).retire(node, reason=reason)
    if as_json:
        echo_json(result)
    elif result.retired:
        click.echo(f"{node} is retired; its history stays in 'chainml log {node}'.")
    else:
        click.echo(f"{node} was already retired; nothing changed.")


@click.command()
@click.argument("node")
@json_option
@db_option
@click.pass_context
def show(ctx: click.Context, node: str, as_json: bool) -> None:
    """Show NODE: settings, versions, inputs, consumers and status.

    \b
    Example:
      chainml show ranker --json
    """
    d = open_registry(ctx).node(node)
    if as_json:
        echo_json(d)
        return
    click.echo(f"{d.name}  ({d.kind})  current version: {d.current_version}")
    if d.retired_at is not None:
        click.echo(f"  retired: {d.retired_at:%Y-%m-%d %H:%M} (not part of the chain; "
                   "registering it again revives it)")
    for label, value in (("owner", d.owner), ("description", d.description),
                         ("tags", ", ".join(d.tags)), ("max age", d.max_age),
                         ("required suites", ", ".join(d.required_suites))):
        if value:
            click.echo(f"  {label}: {value}")
    click.echo(f"  needs tests: {'yes' if d.needs_tests else 'no'}")
    click.echo(f"  inputs: {', '.join(i.spec() for i in d.inputs) or '-'}")
    if d.feedback:
        click.echo(f"  feedback inputs: {', '.join(d.feedback)}")
    click.echo(f"  consumers: {', '.join(d.consumers) or '-'}")
    if d.undeclared_inputs:
        click.echo("  undeclared inputs (seen read in runs, not declared; "
                   "chainml check --observed):")
        for f in d.undeclared_inputs:
            click.echo(f"    - {f.input} (last in run {f.last_run}, {f.times} "
                       f"run{'' if f.times == 1 else 's'})")
    if d.status is not None:
        click.echo(f"  status: {d.status.status.value}")
        for r in d.status.reasons:
            click.echo(f"    - {r.message}")
    click.echo("  versions:")
    for v in d.versions:
        mark = "*" if v.current else " "
        ins = ", ".join(i.spec() for i in v.inputs) or "-"
        click.echo(f"   {mark} {v.label}  {v.created_at:%Y-%m-%d %H:%M}  by {v.created_by}"
                   f"  inputs: {ins}")


@click.command(name="list")
@click.option("--kind", type=KindChoice(), metavar="KIND",
              help="Only nodes of this kind: source, feature, model, policy or consumer.")
@json_option
@db_option
@click.pass_context
def list_(ctx: click.Context, kind: str | None, as_json: bool) -> None:
    """List the nodes of the registry.

    \b
    Example:
      chainml list --kind model --json
    """
    nodes = open_registry(ctx).nodes(kind)
    if as_json:
        echo_json(nodes)
        return
    if not nodes:
        click.echo("No nodes yet; add one with 'chainml register'.")
        return
    width = max(len("NAME"), *(len(n.name) for n in nodes))
    click.echo(f"{'NAME':<{width}}  {'KIND':<8}  {'VERSION':<12}  OWNER".rstrip())
    for n in nodes:
        version = n.current_version or "-"
        click.echo(f"{n.name:<{width}}  {n.kind:<8}  {version:<12}  {n.owner or ''}".rstrip())


@click.command()
@click.argument("node", required=False)
@click.option("--limit", type=click.IntRange(min=1, max=2**31 - 1),
              help="Only the last N events.")
@click.option("--env", "env_name", metavar="ENV",
              help="Only the events of this environment (created, deploy, undeploy, waivers).")
@json_option
@db_option
@click.pass_context
def log(ctx: click.Context, node: str | None, limit: int | None, env_name: str | None,
        as_json: bool) -> None:
    """Show the append-only history of every change (of NODE only, if given, with the
    releases that deployed it; of one environment with --env).

    \b
    Example:
      chainml log ranker --limit 20
      chainml log --env prod
    """
    reg = open_registry(ctx)
    if node:
        reg.node(node)  # unknown names are errors, not empty logs
    events = reg.log(node, limit, env=env_name)
    if as_json:
        echo_json(events)
        return
    for e in events:
        what = " ".join(x for x in (e.node, e.version) if x)
        if e.env:
            what = f"{what} in {e.env}" if what else f"in {e.env}"
        extra = ", ".join(f"{k}={_detail(v)}" for k, v in e.details.items()
                          if v not in (None, [], {}) and not (k == "forced" and v is False))
        click.echo(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<12}  {e.action:<18}  {what}"
                   + (f"  ({extra})" if extra else ""))


def _detail(value: Any) -> str:
    """A detail in a log line; a release's nodes as 'name version (was old)'."""
    if isinstance(value, list) and value and all(
            isinstance(v, dict) and "node" in v for v in value):
        return "; ".join(f"{v['node']} {v.get('version')}" + (
            f" (was {v['previous']})" if v.get("previous") else "") for v in value)
    return str(value)


def attach(group: click.Group) -> None:
    for command in (register, promote, retire, show, list_, log):
        group.add_command(command)
