"""What pipelines report: ingest (OpenLineage events, offline)."""

from __future__ import annotations

import sys

import click

from chainml.cli.common import db_option, echo_json, err, json_option, open_registry


@click.command()
@click.argument("source", metavar="FILE|FOLDER|-")
@click.option("--mapping", metavar="FILE",
              help="Node names, kinds and version facets by pattern (docs/ingestion.md).")
@json_option
@db_option
@click.pass_context
def ingest(ctx: click.Context, source: str, mapping: str | None, as_json: bool) -> None:
    """Take OpenLineage events as the server's POST /api/v1/lineage does.

    FILE holds one JSON event, a JSON array or JSON lines; a FOLDER is read
    recursively (*.json, *.jsonl, *.ndjson); - reads standard input. Each event is
    stored once (again: a duplicate); a COMPLETE run registers the job's version
    and a new version of each output dataset, with their retest marks; reads
    outside a job's declared inputs become findings (check --observed).

    \b
    Example:
      chainml ingest events.jsonl
      chainml ingest lineage-events/ --mapping chainml-mapping.yaml
      cat events.jsonl | chainml ingest -
    """
    reg = open_registry(ctx)
    if source == "-":
        result = reg.ingest_text(sys.stdin.read(), mapping=mapping)
    else:
        result = reg.ingest(source, mapping=mapping)
    if as_json:
        echo_json(result)
        return
    click.echo(f"{result.events} events: {result.stored} new, {result.duplicates} "
               f"duplicate{'' if result.duplicates == 1 else 's'}.")
    for run in result.runs:
        what = [f"{run.job} {run.version}" if run.created_version else
                f"{run.job} (version {run.version} known)"]
        what += run.outputs
        click.echo(f"  run {run.run_id}: {', '.join(what)}")
        for finding in run.findings:
            click.echo(f"    undeclared: {finding}")
    if result.created:
        click.echo(f"New nodes: {', '.join(result.created)}.")
    if result.marked:
        click.echo(f"Opened {result.marked} retest mark{'' if result.marked == 1 else 's'}; "
                   "see chainml check.")
    if result.findings:
        err(f"{result.findings} new undeclared input{'' if result.findings == 1 else 's'}; "
            "see chainml check --observed.")


def attach(group: click.Group) -> None:
    group.add_command(ingest)
