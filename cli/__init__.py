"""The ``chainml`` command line: parses arguments, calls ``chainml.Registry``, prints.

Exit codes (docs/cli.md): 0 success, 1 ``check`` found untested changes,
2 bad usage or input, 3 registry unreachable or on the wrong schema.
"""

from __future__ import annotations

import gc
import os
import sys
from typing import Any

import click

from chainml.cli.common import HelpGroup, _remember_db

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class ChainmlGroup(HelpGroup):
    """Turns library errors into one ``Error: ...`` line and the contract's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from chainml.errors import ChainmlError

        try:
            return super().invoke(ctx)
        except ChainmlError as e:
            exc = click.ClickException(str(e))
            exc.exit_code = e.exit_code
            raise exc from None


@click.group(cls=ChainmlGroup, context_settings=CONTEXT)
@click.version_option(package_name="chainml", prog_name="chainml")
@click.option("--db", "db", metavar="URL", envvar="CHAINML_DATABASE_URL", show_envvar=True,
              expose_value=False, callback=_remember_db, is_eager=True,
              help="Database URL; default: the nearest .chainml/registry.db.")
def cli() -> None:
    """Keep your chain of ML models, features, sources and policies in a registry, see
    everything a change reaches, and fail CI until it is retested.

    \b
    Start with:
      chainml init
      chainml register source clicks_raw --version 1
      chainml register model ranker --version 1 --input clicks_raw
      chainml check
    """


def _load() -> None:
    from chainml.cli import (
        chainfile,
        dbcmd,
        envcmd,
        graphcmd,
        hookcmd,
        ingestcmd,
        nodes,
        servecmd,
        testing,
    )

    for module in (dbcmd, nodes, testing, envcmd, graphcmd, chainfile, ingestcmd, servecmd,
                   hookcmd):
        module.attach(cli)


_load()


def main() -> None:
    """Entry point: no traceback reaches the user unless CHAINML_DEBUG is set."""
    # Commands build 100,000s of small objects (rows, marks, entries); CPython's default
    # of a collection every 700 allocations rescans them over and over. Cycles are still
    # collected; the read-only commands switch collection off (common.read_only_run).
    gc.set_threshold(100_000, 50, 50)
    try:
        cli.main(prog_name="chainml")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        click.echo("Interrupted; nothing half-written (every change is one transaction).",
                   err=True)
        sys.exit(130)
    except Exception as e:  # a bug: say so in one line, keep the details for debugging
        if os.environ.get("CHAINML_DEBUG"):
            raise
        from chainml.fast import redact

        text = redact(str(e).splitlines()[0] if str(e) else type(e).__name__)
        click.echo(f"Internal error: {type(e).__name__}: {text[:300]} (a bug in chainml; "
                   "rerun with CHAINML_DEBUG=1 for details and report it).", err=True)
        sys.exit(70)
