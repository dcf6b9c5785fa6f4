"""``chainml graph``: draw the chain coloured by status."""

from __future__ import annotations

from pathlib import Path

import click

from chainml.cli.common import db_option, err, open_registry
from chainml.render.formats import BINARY, FORMATS, SUFFIX

READABLE = 300  # nodes beyond which a whole-chain picture stops being readable


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Output format (default: from -o's suffix: .svg .png .pdf .dot/.gv "
              ".html/.htm .mmd/.mermaid; else svg).")
@click.option("-o", "--output", metavar="FILE",
              help="Where to write (default: chain.<format>; '-' for stdout).")
@click.option("--focus", metavar="NODE",
              help="Only NODE with its ancestors and descendants (not through feedback).")
@click.option("--upstream", is_flag=True,
              help="With --focus: ancestors (with --downstream too: both).")
@click.option("--downstream", is_flag=True,
              help="With --focus: descendants (with --upstream too: both).")
@click.option("--depth", type=click.IntRange(min=0), help="With --focus: at most N hops.")
@click.option("--kind", "kinds", multiple=True,
              type=click.Choice(("source", "feature", "model", "policy", "consumer")),
              help="Only nodes of this kind. Repeatable.")
@click.option("--impact", metavar="NODE",
              help="Highlight NODE and everything a new version of it would mark.")
@click.option("--cluster", is_flag=True, help="Group nodes by namespace prefix (team/...).")
@click.option("--env", "env", metavar="ENV",
              help="Draw what ENV serves: its deployed versions and the live sources they "
              "read, coloured by environment status.")
@click.option("--legend/--no-legend", default=True,
              help="Draw the legend box, or not (svg, png, pdf, dot; default: draw it).")
@db_option
@click.pass_context
def graph(ctx: click.Context, fmt: str | None, output: str | None, focus: str | None,
          upstream: bool, downstream: bool, depth: int | None, kinds: tuple[str, ...],
          impact: str | None, cluster: bool, env: str | None, legend: bool) -> None:
    """Draw the chain: shape by kind, colour by status, feedback dashed, pins labelled.

    SVG, PNG and PDF need Graphviz's dot (apt-get install graphviz); DOT, Mermaid
    and HTML (with a status table instead of the picture) work without it.

    \b
    Example:
      chainml graph                                  # chain.svg
      chainml graph --format html -o chain.html
      chainml graph --focus fraud_scorer --depth 2 --format png
      chainml graph --impact clicks_raw --format mermaid -o -
      chainml graph --env prod --format png -o prod.png  # what prod serves
    """
    from chainml.errors import InvalidInput
    from chainml.render import dot, html, mermaid, run
    from chainml.render.formats import output_format

    fmt = output_format(output, fmt)
    if (upstream or downstream or depth is not None) and not focus:
        raise click.UsageError("--upstream, --downstream and --depth go with --focus NODE.")
    if env is not None and impact is not None:
        raise click.UsageError("--impact shows what a new registry version would mark, not "
                               "what an environment serves: use one of --impact and --env.")
    if output == "-" and fmt in BINARY:
        raise click.UsageError(f"{fmt.upper()} is binary: give -o FILE.")
    direction = "upstream" if upstream and not downstream else (
        "downstream" if downstream and not upstream else "both")
    view = open_registry(ctx).graph_view(focus=focus, direction=direction,
                                         depth=depth, kinds=kinds, impact=impact,
                                         env=env)
    if not view.nodes:
        where = f"environment '{env}' serves nothing" if env else "the registry has no nodes"
        raise InvalidInput(f"Nothing to draw: {where} (or the selection is empty).")
    if len(view.nodes) > READABLE and not focus:
        err(f"Note: {len(view.nodes)} nodes are too many to read in one picture; "
            "try --focus NODE --depth 2, --kind or --cluster.")
    data: str | bytes
    if fmt == "mermaid":
        chart = mermaid.mermaid_chart(view, cluster=cluster, first=[focus] if focus else (),
                                      hint="--format html or svg draws all of it.")
        data = chart.text
        if not chart.complete:
            err(f"Note: the Mermaid chart leaves out {chart.left_out} ({chart.reason}) and "
                "says so in a note box; --format html or svg draws all of it, or draw less "
                "with --focus NODE --depth N or --kind.")
    elif fmt == "dot":
        data = dot.to_dot(view, cluster=cluster, legend=legend)
    elif fmt == "html":
        svg = (run.render_bytes(dot.to_dot(view, cluster=cluster, legend=False), "svg")
               if run.dot_available() else None)
        if svg is None:
            err("Note: Graphviz's dot is not installed, so the page has the status table but "
                "no picture (apt-get install graphviz / brew install graphviz).")
        data = html.to_html(view, svg)
    else:
        data = run.render_bytes(dot.to_dot(view, cluster=cluster, legend=legend), fmt)
    target = output or f"chain.{SUFFIX[fmt]}"
    if target == "-":
        click.echo(data.decode() if isinstance(data, bytes) else data, nl=False)
        return
    try:
        if isinstance(data, bytes):
            Path(target).write_bytes(data)
        else:
            Path(target).write_text(data, encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"Cannot write {target}: {e.strerror}.") from None
    err(f"Wrote {target} ({len(view.nodes)} nodes, {len(view.edges)} edges).")


def attach(group: click.Group) -> None:
    group.add_command(graph)
