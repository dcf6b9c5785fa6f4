"""Webhooks: hook add|list|remove|deliveries|replay|run (docs/webhooks.md)."""

from __future__ import annotations

import click

from chainml.cli.common import HelpGroup, db_option, echo_json, err, json_option, open_registry

EVENTS = ("mark.opened", "mark.closed", "run.recorded", "deploy.done", "check.changed")


@click.group(cls=HelpGroup)
def hook() -> None:
    """Webhooks: POST a signed JSON notification to a URL when the chain changes."""


@hook.command("add")
@click.argument("url")
@click.option("--event", "events", multiple=True, metavar="EVENT",
              help=f"An event to send (repeatable): {', '.join(EVENTS)}.")
@click.option("--secret-env", metavar="VAR",
              help="Sign with the secret in this environment variable (only its name is "
                   "stored; the worker reads it when it sends).")
@click.option("--format", "format_", default="json", show_default=True, metavar="json|slack",
              help="json: the signed envelope; slack: {\"text\": ...} for chat webhooks.")
@click.option("--max-attempts", type=int, default=8, show_default=True,
              help="Attempts before a delivery is dead.")
@json_option
@db_option
@click.pass_context
def add(ctx: click.Context, url: str, events: tuple[str, ...], secret_env: str | None,
        format_: str, max_attempts: int, as_json: bool) -> None:
    """Add a hook: every change that makes one of its events is POSTed to URL.

    \b
    Example:
      export CHAINML_HOOK_SECRET=$(openssl rand -hex 32)
      chainml hook add https://ci.example.com/chainml --event mark.opened \\
          --event check.changed --secret-env CHAINML_HOOK_SECRET
    """
    made = open_registry(ctx).hook_add(url, events=list(events), secret_env=secret_env,
                                       format=format_, max_attempts=max_attempts)
    if as_json:
        echo_json(made)
        return
    signed = f", signed with ${made.secret_env}" if made.secret_env else ", unsigned"
    click.echo(f"Added hook {made.id}: {', '.join(made.events)} to {made.url} "
               f"({made.format}{signed}).")


@hook.command("list")
@click.option("--all", "include_removed", is_flag=True, help="Include removed hooks.")
@json_option
@db_option
@click.pass_context
def list_(ctx: click.Context, include_removed: bool, as_json: bool) -> None:
    """List the hooks (never a secret: only the variable that holds it)."""
    hooks = open_registry(ctx).hook_list(include_removed=include_removed)
    if as_json:
        echo_json(hooks)
        return
    if not hooks:
        click.echo("No hooks; 'chainml hook add URL --event mark.opened' adds one.")
    for h in hooks:
        signed = f"secret ${h.secret_env}" if h.secret_env else "unsigned"
        gone = f", removed {h.removed_at:%Y-%m-%d}" if h.removed_at else ""
        click.echo(f"{h.id}  {h.url}  {','.join(h.events)}  {h.format}, {signed}, "
                   f"{h.max_attempts} attempts{gone}")


@hook.command("remove")
@click.argument("hook_id", metavar="ID", type=int)
@json_option
@db_option
@click.pass_context
def remove(ctx: click.Context, hook_id: int, as_json: bool) -> None:
    """Remove hook ID: it gets no new notification; its pending deliveries turn dead."""
    done = open_registry(ctx).hook_remove(hook_id)
    if as_json:
        echo_json(done)
    else:
        click.echo(f"Removed hook {done.id} ({done.url}); {done.cancelled} pending "
                   "deliveries cancelled.")


@hook.command("deliveries")
@click.option("--hook", "hook_id", type=int, metavar="ID", help="Only this hook's.")
@click.option("--state", metavar="pending|delivered|dead", help="Only those in this state.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="The newest this many.")
@json_option
@db_option
@click.pass_context
def deliveries(ctx: click.Context, hook_id: int | None, state: str | None, limit: int,
               as_json: bool) -> None:
    """Show deliveries, newest first: state, attempts, the receiver's last answer.

    \b
    Example:
      chainml hook deliveries --state dead
      chainml hook replay 42
    """
    rows = open_registry(ctx).hook_deliveries(hook=hook_id, state=state, limit=limit)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("No deliveries.")
    for d in rows:
        answer = f"HTTP {d.last_status}" if d.last_status is not None else ""
        why = d.last_error or answer
        due = f", next {d.next_attempt_at:%Y-%m-%d %H:%M:%S}" if d.next_attempt_at else ""
        click.echo(f"{d.id}  hook {d.hook}  {d.event:<13}  {d.state:<9}  "
                   f"{d.attempts}/{d.max_attempts} attempts{due}"
                   + (f"  ({why})" if why and d.state != "delivered" else ""))


@hook.command("replay")
@click.argument("delivery_id", metavar="DELIVERY_ID", type=int)
@json_option
@db_option
@click.pass_context
def replay(ctx: click.Context, delivery_id: int, as_json: bool) -> None:
    """Queue a delivered or dead delivery again, due now (same notification id)."""
    done = open_registry(ctx).hook_replay(delivery_id)
    if as_json:
        echo_json(done)
    else:
        click.echo(f"Queued delivery {done.id} ({done.event} to hook {done.hook}) again; "
                   "the worker sends it now.")


@hook.command("run")
@click.option("--once", is_flag=True, help="Send what is due now, then exit.")
@json_option
@db_option
@click.pass_context
def run(ctx: click.Context, once: bool, as_json: bool) -> None:
    """Send due deliveries: the worker, for registries without 'chainml serve' (which
    runs one itself). Several may run at once. Ctrl-C stops it.

    Timeouts and backoff come from CHAINML_HOOK_TIMEOUT, CHAINML_HOOK_BACKOFF_BASE,
    CHAINML_HOOK_BACKOFF_CAP and CHAINML_HOOK_INTERVAL (seconds; docs/webhooks.md).

    \b
    Example:
      chainml hook run --once        # in a cron job
      chainml hook run               # as a service
    """
    reg = open_registry(ctx)
    if once:
        result = reg.deliver_due()
        if as_json:
            echo_json(result)
        else:
            click.echo(f"Attempted {result.attempted}: {result.delivered} delivered, "
                       f"{result.retrying} to retry, {result.dead} dead.")
        return
    from chainml.hooks import policy, worker

    settings = policy.WorkerSettings.from_env()  # bad settings: exit 2 before starting
    err("chainml sends webhook deliveries; Ctrl-C stops it.")
    try:
        worker.run(reg.engine, settings)
    except KeyboardInterrupt:
        err("Stopped (a delivery cut off mid-send is sent again when its lease ends).")


def attach(group: click.Group) -> None:
    group.add_command(hook)
