"""The server and its credentials: serve, token create|list|revoke."""

from __future__ import annotations

import ipaddress
import os

import click

from chainml.cli.common import HelpGroup, db_option, db_url, echo_json, json_option, open_registry

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(1, 65535), default=8700, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes (several need PostgreSQL or MariaDB).")
@click.option("--require-token-for-reads", is_flag=True,
              help="Reads need a read token too (the default off the loopback address).")
@click.option("--allow-anonymous-writes", is_flag=True,
              help="Writes without a token, as the login name (loopback address only).")
@click.option("--mapping", metavar="FILE", help="How POST /api/v1/lineage names OpenLineage "
              "jobs and datasets (docs/ingestion.md).")
@db_option
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int,
          require_token_for_reads: bool, allow_anonymous_writes: bool,
          mapping: str | None) -> None:
    """Serve the registry: the web UI at / and the HTTP API at /api/v1/.

    Reads are open on the loopback address; writes need a token with the write
    scope ('chainml token create NAME --scope write'), sent as 'Authorization:
    Bearer TOKEN'. Needs the server extra: pip install 'chainml[server]'.

    \b
    Example:
      chainml serve                                  # http://127.0.0.1:8700/
      chainml serve --host 0.0.0.0 --workers 4 --db postgresql+psycopg://...
    """
    from chainml.errors import InvalidInput

    try:
        import uvicorn
    except ImportError:
        raise InvalidInput("chainml serve needs the server extra: pip install "
                           "'chainml[server]'.") from None
    local = _loopback(host)
    if allow_anonymous_writes and not local:
        raise InvalidInput(f"--allow-anonymous-writes is for the loopback address only; "
                           f"binding {host} without tokens for writes is refused.")
    from chainml.fast import registry_url
    from chainml.ingest.mapping import load_mapping
    from chainml.server.main import ENV_ANON, ENV_MAPPING, ENV_READS

    if mapping is not None:
        load_mapping(mapping)  # a bad mapping file is refused now, in one line
        os.environ[ENV_MAPPING] = os.path.abspath(mapping)

    url, shown_url = registry_url(db_url(ctx))
    if workers > 1 and url.startswith("sqlite"):
        raise InvalidInput("Several workers need PostgreSQL or MariaDB; the embedded SQLite "
                           "registry is served by one process (--workers 1).")
    open_registry(ctx)  # refuses an unreachable registry or an old schema now, in one line
    from chainml.hooks.policy import WorkerSettings

    WorkerSettings.from_env()  # a bad CHAINML_HOOK_* setting: exit 2 now, not a failed start
    os.environ["CHAINML_DATABASE_URL"] = url
    os.environ[ENV_READS] = "1" if require_token_for_reads or not local else "0"
    os.environ[ENV_ANON] = "1" if allow_anonymous_writes else "0"
    shown = f"[{host}]" if ":" in host else host
    reads = "need a token" if os.environ[ENV_READS] == "1" else "open"
    writes = "open" if allow_anonymous_writes else "need a write token"
    click.echo(f"chainml serves {shown_url} at http://{shown}:{port}/ (API: "
               f"/api/v1/; reads {reads}, writes {writes}); Ctrl-C stops it.", err=True)
    uvicorn.run("chainml.server.main:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level="warning", server_header=False,
                proxy_headers=True, forwarded_allow_ips="127.0.0.1")


@click.group(cls=HelpGroup)
def token() -> None:
    """API tokens for 'chainml serve': create, list, revoke."""


@token.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["read", "write", "admin"]), default="read",
              show_default=True, help="read: GET; write: also record and deploy; admin: "
                                      "also manage tokens.")
@click.option("--expires", default="90d", show_default=True, metavar="DURATION",
              help="Lifetime (30d, 12h, ...), or 'never'.")
@json_option
@db_option
@click.pass_context
def create(ctx: click.Context, name: str, scope: str, expires: str, as_json: bool) -> None:
    """Create the token NAME and print it, this once (only its digest is kept).

    NAME is recorded as the actor of everything written with the token.

    \b
    Example:
      chainml token create ci-deploy --scope write --expires 30d
    """
    made = open_registry(ctx).token_create(
        name, scope=scope, expires=None if expires == "never" else expires)
    if as_json:
        echo_json(made)
        return
    until = made.expires_at.isoformat(sep=" ", timespec="minutes") if made.expires_at \
        else "never"
    click.echo(f"Created token '{made.name}' ({made.scope}, expires {until}). It is shown "
               "once; store it now:", err=True)
    click.echo(made.token)


@token.command("list")
@json_option
@db_option
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List the tokens (never their secrets)."""
    tokens = open_registry(ctx).token_list()
    if as_json:
        echo_json(tokens)
        return
    if not tokens:
        click.echo("No tokens yet; 'chainml token create NAME --scope write' makes one.")
    for t in tokens:
        until = t.expires_at.isoformat(sep=" ", timespec="minutes") if t.expires_at \
            else "never"
        click.echo(f"{t.name}  {t.scope:<5}  {t.state:<7}  created {t.created_at:%Y-%m-%d} "
                   f"by {t.created_by}, expires {until}")


@token.command("revoke")
@click.argument("name")
@json_option
@db_option
@click.pass_context
def revoke(ctx: click.Context, name: str, as_json: bool) -> None:
    """Revoke the token NAME: requests presenting it get 401 from now on."""
    done = open_registry(ctx).token_revoke(name)
    if as_json:
        echo_json(done)
    else:
        click.echo(f"Revoked token '{done.name}'.")


def attach(group: click.Group) -> None:
    group.add_command(serve)
    group.add_command(token)
