"""Environments and releases: env create|list|show|diff, deploy, undeploy."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import click

from chainml.cli.common import (
    HelpGroup,
    db_option,
    db_url,
    echo_json,
    json_option,
    open_registry,
    read_only_run,
)

if TYPE_CHECKING:
    from chainml.schemas import PlanResult, ReleaseResult


@click.group(cls=HelpGroup)
def env() -> None:
    """Environments: where versions run (dev, staging, prod)."""


@env.command()
@click.argument("name")
@click.option("--after", metavar="ENV", help="The environment this one is promoted from.")
@click.option("--description", help="What the environment is.")
@json_option
@db_option
@click.pass_context
def create(ctx: click.Context, name: str, after: str | None, description: str | None,
           as_json: bool) -> None:
    """Create the environment NAME, optionally after another in the promotion order.

    \b
    Example:
      chainml env create staging
      chainml env create prod --after staging --description "serves customers"
    """
    out = open_registry(ctx).env_create(name, after=after, description=description)
    if as_json:
        echo_json(out)
        return
    click.echo(f"Created environment {out.name}" + (f" (after {out.after})" if out.after
                                                     else "") + ".")


@env.command(name="list")
@json_option
@db_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the environments in promotion order, with how many nodes each has deployed.

    \b
    Example:
      chainml env list --json
    """
    envs = open_registry(ctx).env_list()
    if as_json:
        echo_json(envs)
        return
    if not envs:
        click.echo("No environments yet; add one with 'chainml env create NAME'.")
        return
    width = max(len("NAME"), *(len(e.name) for e in envs))
    click.echo(f"{'NAME':<{width}}  {'AFTER':<12}  DEPLOYED  DESCRIPTION".rstrip())
    for e in envs:
        click.echo(f"{e.name:<{width}}  {e.after or '-':<12}  {e.deployed_nodes:>8}  "
                   f"{e.description or ''}".rstrip())


@env.command()
@click.argument("name", metavar="ENV")
@json_option
@db_option
@click.pass_context
def show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show what ENV serves: each node's version there, deployed or a live source, and
    the environment status of the nodes that need tests.

    \b
    Example:
      chainml env show prod
    """
    d = open_registry(ctx).env_show(name)
    if as_json:
        echo_json(d)
        return
    after = f" (after {d.after})" if d.after else ""
    click.echo(f"{d.name}{after}: {d.deployed_nodes} node(s) deployed")
    if d.description:
        click.echo(f"  {d.description}")
    if not d.nodes:
        click.echo(f"Nothing deployed yet; 'chainml deploy NODE --env {d.name}' starts.")
        return
    width = max(len("NODE"), *(len(n.name) for n in d.nodes))
    vwidth = max(len("VERSION"), *(len(n.version) for n in d.nodes))
    click.echo(f"{'NODE':<{width}}  {'KIND':<8}  {'VERSION':<{vwidth}}  {'STATUS':<13}  "
               "DEPLOYED")
    for n in d.nodes:
        status = n.status.status.value if n.status else "-"
        if n.deployed and n.deployed_at is not None:
            how = f"{n.deployed_at:%Y-%m-%d %H:%M} by {n.deployed_by}"
        else:
            how = "live source (registry current)"
        if n.retired:
            how += ", retired"
        if n.current_version != n.version and n.current_version is not None:
            how += f"; registry current: {n.current_version}"
        click.echo(f"{n.name:<{width}}  {n.kind:<8}  {n.version:<{vwidth}}  {status:<13}  {how}")
        for r in (n.status.reasons if n.status else []):
            click.echo(f"{'':<{width}}    - {r.message}")


@env.command()
@click.argument("a", metavar="ENV_A")
@click.argument("b", metavar="ENV_B")
@json_option
@db_option
@click.pass_context
def diff(ctx: click.Context, a: str, b: str, as_json: bool) -> None:
    """Show the nodes whose served versions differ between ENV_A and ENV_B.

    \b
    Example:
      chainml env diff staging prod
    """
    d = open_registry(ctx).env_diff(a, b)
    if as_json:
        echo_json(d)
        return
    if not d.differences:
        click.echo(f"{d.a} and {d.b} serve the same versions ({d.same} node(s)).")
        return
    width = max(len("NODE"), *(len(e.name) for e in d.differences))
    aw = max(len(d.a), *(len(e.a_version or "-") for e in d.differences))
    click.echo(f"{'NODE':<{width}}  {'KIND':<8}  {d.a:<{aw}}  {d.b}")
    for e in d.differences:
        click.echo(f"{e.name:<{width}}  {e.kind:<8}  {e.a_version or '-':<{aw}}  "
                   f"{e.b_version or '-'}")
    click.echo(f"{len(d.differences)} differ, {d.same} the same.")


def _release_report(result: ReleaseResult) -> list[str]:
    """A release in words: what it deploys, and each node that blocks it, why and how to
    clear it."""
    from chainml.render.report import clear_lines

    nodes = ", ".join(f"{i.node} {i.version}" + (f" (was {i.previous})" if i.previous
                                                  and i.previous != i.version else "")
                      for i in result.nodes)
    lines: list[str] = []
    if result.ok:
        verdict = "passes" if result.check else "deployed"
        lines.append(f"Release to {result.env} {verdict}: {nodes}.")
    elif result.recorded:
        lines.append(f"Release to {result.env} deployed with --force: {nodes}.")
        lines.append(f"  reason: {result.reason}")
    else:
        verb = "would be refused" if result.check else "refused, nothing recorded"
        lines.append(f"Release to {result.env} {verb}: {nodes}.")
    for e in result.problems:
        state = "is now" if result.recorded else "would be"
        lines.append(f"  {e.name} {e.version} {state} {e.status.value}:")
        lines += [f"    - {r.message}" for r in e.reasons]
        lines += clear_lines(e, result.env, indent="  ")
    if result.ok and result.checked:
        verified = ", ".join(f"{e.name} {e.status.value}" for e in result.checked)
        lines.append(f"  checked: {verified}")
    if not result.ok and not result.recorded:
        specs = " ".join(shlex.quote(f"{i.node}@{i.version}") for i in result.nodes)
        lines.append(f"To deploy it anyway: chainml deploy {specs} --env "
                     f"{shlex.quote(result.env)} --force --reason \"WHY\"")
    return lines


@click.command()
@click.argument("specs", nargs=-1, required=True, metavar="NODE[@VERSION]...")
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment.")
@click.option("--link", help="A link to the release (CI job, change ticket).")
@click.option("--note", help="A note.")
@click.option("--check", is_flag=True, help="Only say whether the release would go out; "
              "record nothing.")
@click.option("--force", is_flag=True, help="Deploy even if a node would be untested, failed, "
              "skewed or missing an input (needs --reason).")
@click.option("--reason", help="Why a forced release goes out; kept in the history.")
@json_option
@db_option
@click.pass_context
def deploy(ctx: click.Context, specs: tuple[str, ...], env_name: str, link: str | None,
           note: str | None, check: bool, force: bool, reason: str | None,
           as_json: bool) -> None:
    """Deploy a release to ENV: one or more NODE (its registry current version) or
    NODE@VERSION, recorded as one change.

    Refused (exit 1, nothing recorded) when a node the release touches (a released
    node, or a deployed one whose serving lineage holds it) would be untested, failed,
    skewed (serving inputs other than those it was tested with) or missing an input;
    the refusal names each node, why, and what clears it. A release that would make
    ENV serve a cycle is refused with exit 2.

    \b
    Example:
      chainml deploy txn_features fraud_scorer@5.3.0 --env prod --check
      chainml deploy txn_features fraud_scorer@5.3.0 --env prod --link $CI_JOB_URL
    """
    from chainml.errors import ReleaseRefused

    if force and not (reason and reason.strip()):
        raise click.UsageError("--force needs --reason: say why the release goes out anyway.")
    try:
        result = open_registry(ctx).deploy(list(specs), env=env_name, link=link, note=note,
                                           check=check, force=force, reason=reason)
    except ReleaseRefused as e:
        result = e.result  # type: ignore[assignment]
    if as_json:
        echo_json(result)
    else:
        click.echo("\n".join(_release_report(result)))
    ctx.exit(0 if result.ok or result.recorded else 1)


@click.command()
@click.argument("node")
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment.")
@json_option
@db_option
@click.pass_context
def undeploy(ctx: click.Context, node: str, env_name: str, as_json: bool) -> None:
    """Stop serving NODE in ENV (recorded in the history; a source goes back to live data).

    \b
    Example:
      chainml undeploy old_ranker --env prod
    """
    out = open_registry(ctx).undeploy(node, env=env_name)
    if as_json:
        echo_json(out)
        return
    click.echo(f"Undeployed {out.node} {out.version} from {out.env}.")
    if out.missing_input:
        click.echo(f"Now reading a node {out.env} does not serve: "
                   f"{', '.join(out.missing_input)}; 'chainml check --env {out.env}' fails "
                   "until it is deployed again.")


def _plan_report(result: PlanResult) -> list[str]:
    """A plan in words: the release upstream first and the command that applies it, or
    what blocks it and the retest that would unblock each."""
    lines: list[str] = []
    if not result.nodes and result.ok:
        return [f"Nothing to deploy: {result.env} already serves {result.to}'s versions of "
                "the nodes in scope, with nothing left broken."]
    head = "Plan" if result.ok else "Plan (blocked)"
    lines.append(f"{head} for {result.env} to {result.to}: {len(result.nodes)} node(s), "
                 "upstream first.")
    for i in result.nodes:
        was = f"was {i.previous}" if i.previous else "not deployed yet"
        why = {"named": "", "input": ", read by a planned version",
               "lineage": ", its serving lineage changes"}.get(i.why, "")
        other = f", {result.to} has {i.target}" if i.target and i.target != i.version else ""
        lines.append(f"  {i.node} {i.version} ({was}{why}{other})")
    if result.command:
        lines.append(result.command)
    for b in result.blocked:
        lines.append(f"Blocked: {b.node} has no version verified against what the release "
                     f"gives it ({b.version} would be {b.status.value}):")
        lines += [f"    - {r}" for r in b.reasons]
        seen = ", ".join(f"{p.node} {p.version}" for p in b.tested_with) or "no ancestors"
        lines.append(f"  to unblock: test {b.node} {b.version} with {seen}, then {b.retest}")
        lines.append("    (test record snapshots the registry's current lineage: the registry "
                     "must be at those versions when it runs)")
    return lines


@click.command()
@click.argument("nodes", nargs=-1, metavar="[NODE]...")
@click.option("--env", "env_name", required=True, metavar="ENV", help="The environment.")
@click.option("--to", "to", default="current", show_default=True, metavar="current|ENV",
              help="The versions to reach: the registry's current ones, or what another "
                   "environment serves.")
@json_option
@db_option
@click.pass_context
def plan(ctx: click.Context, nodes: tuple[str, ...], env_name: str, to: str,
         as_json: bool) -> None:
    """Plan a release: what must be deployed together to bring NODEs of ENV (default:
    every node whose served version differs) to the target's versions, leaving no node
    untested, failed, skewed or missing an input.

    Every node whose serving lineage the release changes is included at a version
    verified against its new lineage, upstream first. Exit 0 with the release (possibly
    empty) and the deploy command that applies it; exit 1 when a node has no such
    version (the plan names the retest that unblocks it); exit 2 on bad input.

    \b
    Example:
      chainml plan --env prod
      chainml plan --env prod --to staging --json
      chainml plan --env prod txn_features
    """
    from chainml import fast

    read_only_run()
    result = fast.plan(db_url(ctx), env_name, to, nodes)
    if as_json:
        echo_json(result)
    else:
        click.echo("\n".join(_plan_report(result)))
    ctx.exit(0 if result.ok else 1)


def attach(group: click.Group) -> None:
    for command in (env, deploy, undeploy, plan):
        group.add_command(command)
