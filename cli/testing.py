"""The retest loop: impact, test record, status, check, waive."""

from __future__ import annotations

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
    from chainml.render.mermaid import MermaidChart
    from chainml.render.view import GraphView
    from chainml.rules.status import Entry

CHECK_FORMATS = ("text", "json", "junit", "github", "markdown")


@click.command()
@click.argument("node")
@click.option("--depth", type=click.IntRange(min=1), help="Only nodes within N hops.")
@json_option
@db_option
@click.pass_context
def impact(ctx: click.Context, node: str, depth: int | None, as_json: bool) -> None:
    """Show what a new version of NODE would mark for retest. Writes nothing.

    Follows every consumer downstream, except feedback inputs and inputs pinned
    to a version.

    \b
    Example:
      chainml impact clicks_raw --json
    """
    from chainml import fast

    read_only_run()
    # Plain data straight from the walk: no SQLAlchemy or pydantic models on this path.
    result = fast.impact(db_url(ctx), node, depth)
    if as_json:
        echo_json(result)
        return
    impacted = result["impacted"]
    if not impacted:
        click.echo(f"A new version of {node} reaches no other node.")
        return
    testable = sum(1 for e in impacted if e["needs_tests"])
    lines = [f"A new version of {node} reaches {len(impacted)} node(s); "
             f"{testable} need a retest:"]
    for e in impacted:
        flag = "retest" if e["needs_tests"] else "      "
        hops = f"{e['distance']} hop{'s' if e['distance'] > 1 else ''}"
        lines.append(f"  {flag}  {e['name']} ({e['kind']}, {hops}): " + " -> ".join(e["path"]))
    click.echo("\n".join(lines))


@click.group(cls=HelpGroup)
def test() -> None:
    """Record test runs."""


@test.command()
@click.argument("node")
@click.option("--passed", is_flag=True, help="The run passed.")
@click.option("--failed", is_flag=True, help="The run failed.")
@click.option("--version", "version", help="The version tested (default: the current one).")
@click.option("--suite", help="Suite name, e.g. offline-eval, shadow, outliers.")
@click.option("--link", help="A link to the run (CI job, report).")
@click.option("--note", help="A note.")
@json_option
@db_option
@click.pass_context
def record(ctx: click.Context, node: str, passed: bool, failed: bool, version: str | None,
           suite: str | None, link: str | None, note: str | None, as_json: bool) -> None:
    """Record that NODE was tested, with the current versions of everything upstream.

    A passing run of the current version closes the node's own retest marks;
    nodes further down stay marked until they are retested themselves.

    \b
    Example:
      chainml test record ranker --passed --suite offline-eval --link $CI_JOB_URL
    """
    if passed and failed:
        raise click.UsageError("--passed and --failed contradict each other; give one.")
    if not (passed or failed):
        raise click.UsageError("Say how the run went: --passed or --failed.")
    run = open_registry(ctx).record_test(node, passed=passed, version=version,
                                         suite=suite, link=link, note=note)
    if as_json:
        echo_json(run)
        return
    suite_text = f" (suite {suite})" if suite else ""
    # A failed run also makes the marks match its snapshot, but closes no question.
    closed = (f"; closed {run.closed_marks} retest mark(s)"
              if run.closed_marks and run.outcome == "passed" else "")
    click.echo(f"Recorded: {run.node} {run.version}{suite_text} {run.outcome}{closed}.")


ENV_HELP = ("An environment: judge what it serves (its deployed versions) against what "
            "they were tested with.")


@click.command()
@click.argument("node", required=False)
@click.option("--env", "env_name", metavar="ENV", help=ENV_HELP)
@json_option
@db_option
@click.pass_context
def status(ctx: click.Context, node: str | None, env_name: str | None, as_json: bool) -> None:
    """Show the test status of every node that needs tests (or of NODE), with reasons.

    With --env, the environment status of every node deployed there that needs
    tests: verified, skewed, untested, failed, missing_input, waived or stale.

    \b
    Example:
      chainml status --json
      chainml status --env prod fraud_scorer
    """
    from chainml import fast

    read_only_run()
    # Plain entries, written as the models would be: no pydantic on this path (~0.13 s).
    if env_name is not None:
        entries = fast.env_status(db_url(ctx), env_name, node)
    else:
        entries = fast.status(db_url(ctx), node)
    if as_json:
        click.echo(fast.status_json(entries))  # bytes: written as they are
        return
    if not entries:
        if env_name is not None:
            click.echo(f"{node} needs no tests." if node else
                       f"Nothing deployed to {env_name} needs tests.")
        else:
            click.echo(f"{node} needs no tests." if node else "No node needs tests yet.")
        return
    width = max(len(e["name"]) for e in entries)
    for e in entries:
        click.echo(f"{e['name']:<{width}}  {e['kind']:<8}  {e['version'] or '-':<12}  "
                   f"{e['status']}")
        for r in e["reasons"]:
            click.echo(f"{'':<{width}}    - {r['message']}")
        missing = _missing_suites(e)
        if missing:
            label = "suites" if len(missing) > 1 else "suite"
            click.echo(f"{'':<{width}}    - missing required {label}: {', '.join(missing)}")


def _missing_suites(entry: Entry) -> list[str]:
    """The required suites an untested node misses that no reason names already: all of
    them for a node with no run at all, whose one reason names no suite
    (``render.report.missing_suites``, over a plain entry)."""
    if entry["status"] != "untested" or any(
            r["suite"] is not None and r["cause"] == entry["name"] for r in entry["reasons"]):
        return []
    return list(dict.fromkeys(entry["required_suites"]))


@click.command()
@click.argument("nodes", nargs=-1)
@click.option("--env", "env_name", metavar="ENV",
              help="The deployment gate: check what ENV serves instead of the registry.")
@click.option("--format", "fmt", type=click.Choice(CHECK_FORMATS), default="text",
              show_default=True, help="Report format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--strict", is_flag=True, help="Stale nodes (older than their max age) fail "
              "too, and with --observed undeclared inputs.")
@click.option("--observed", is_flag=True, help="Also report what pipelines were seen reading "
              "outside their declared inputs (from ingested OpenLineage events).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True,
              help="Names listed per group before '... and N more'.")
@db_option
@click.pass_context
def check(ctx: click.Context, nodes: tuple[str, ...], env_name: str | None, fmt: str,
          as_json: bool, strict: bool, observed: bool, limit: int) -> None:
    """The CI gate: exit 1 while any upstream change is untested, else 0.

    Checks every node, or the NODES given and everything upstream of them. With
    --env it is the deployment gate: every node deployed to ENV that needs tests
    must be verified (or waived, or stale) with the versions ENV serves.

    With --observed it also lists the undeclared inputs that ingested OpenLineage
    runs revealed (of the NODES given, or all); with --strict they fail the gate.

    \b
    Example:
      chainml check --format junit > chainml.xml
      chainml check fraud_scorer --strict
      chainml check --env prod --format github
      chainml check --observed --strict
    """
    from chainml import fast
    from chainml.render.report import render_check

    read_only_run()
    fmt = "json" if as_json else fmt
    chart = None
    if env_name is not None:
        # No chart: it would draw the registry's chain, not what the environment serves.
        result = fast.env_check(db_url(ctx), env_name, list(nodes), strict)
    elif fmt == "markdown":  # the table and its chart from one snapshot of the registry
        result, view = open_registry(ctx).check_with_view(list(nodes), strict)
        chart = _affected_chart(view) if view is not None else None
    else:
        result = fast.check(db_url(ctx), list(nodes), strict)
    if observed:
        from chainml.rules.gate import with_findings

        result = with_findings(result, open_registry(ctx).findings(list(nodes)))
    click.echo(render_check(result, fmt, limit=limit, mermaid=chart), nl=False)
    ctx.exit(0 if result.ok else 1)


MAX_CHART = 60  # nodes: beyond this a Mermaid chart in a PR comment stops being readable
# Characters of chart: a GitHub comment holds 65,536 in all, and the table needs its share.
CHART_TEXT = 20_000


def _affected_chart(view: GraphView) -> MermaidChart:
    """Mermaid of the failing nodes and the paths from their causes, for PR comments."""
    from chainml.render.mermaid import mermaid_chart

    return mermaid_chart(view, max_nodes=MAX_CHART, max_text=CHART_TEXT,
                         hint="chainml graph --format html draws the whole chain.")


@click.command()
@click.argument("node")
@click.option("--reason", required=True, help="Why the untested change is acceptable.")
@click.option("--cause", metavar="NODE", help="Only this upstream cause (default: every open one).")
@click.option("--expires", default="7d", show_default=True, metavar="DURATION",
              help="How long the waiver lasts (at most 90d).")
@click.option("--env", "env_name", metavar="ENV",
              help="Accept NODE's skew in ENV (what ENV serves against what it was tested "
              "with) instead of the registry's untested changes.")
@json_option
@db_option
@click.pass_context
def waive(ctx: click.Context, node: str, reason: str, cause: str | None, expires: str,
          env_name: str | None, as_json: bool) -> None:
    """Accept NODE's untested upstream changes for a while, on the record.

    A newer upstream change re-opens the gate. A waiver never covers the node's
    own untested or failed version. With --env it accepts NODE's skew in that
    environment only; a newer run, or other served versions, end it.

    \b
    Example:
      chainml waive fraud_scorer --reason "shadow run ok, full eval Monday" --expires 3d
      chainml waive ranker --env prod --reason "feature fix is backwards compatible"
    """
    w = open_registry(ctx).waive(node, reason=reason, cause=cause, expires=expires,
                                 env=env_name)
    if as_json:
        echo_json(w)
        return
    if env_name is not None:
        what = f"its skew from {cause}" if cause else "its skew"
        click.echo(f"Waiver {w.id}: {node} passes the gate in {env_name} for {what} until "
                   f"{w.expires_at:%Y-%m-%d %H:%M} UTC.")
        return
    what = f"changes from {cause}" if cause else "its open upstream changes"
    click.echo(f"Waiver {w.id}: {node} passes the gate for {what} until "
               f"{w.expires_at:%Y-%m-%d %H:%M} UTC.")


def attach(group: click.Group) -> None:
    for command in (impact, test, status, check, waive):
        group.add_command(command)
