"""``chainml graph``: draw the chain coloured by status."""

from __future__ import annotations

from pathlib import Path

import click

from chainml.cli.common import db_option, err, open_registry

FORMATS = ("svg", "png", "pdf", "dot", "html", "mermaid")
BINARY = ("png", "pdf")
SUFFIX = {"svg": "svg", "png": "png", "pdf": "pdf", "dot": "dot", "html": "html",
          "mermaid": "mmd"}
READABLE = 300  # nodes beyond which a whole-chain picture stops being readable


@click.command()
@click.option("--format", "fmt", type=click.Choice(FORMATS),
              help="Output format (default: from -o's suffix, else svg).")
@click.option("-o", "--output", metavar="FILE",
              help="Where to write (default: chain.<format>; '-' for stdout).")
@click.option("--focus", metavar="NODE", help="Only NODE with its ancestors and descendants.")
@click.option("--upstream", "direction", flag_value="upstream",
              help="With --focus: ancestors only.")
@click.option("--downstream", "direction", flag_value="downstream",
              help="With --focus: descendants only.")
@click.option("--depth", type=click.IntRange(min=0), help="With --focus: at most N hops.")
@click.option("--kind", "kinds", multiple=True,
              type=click.Choice(("source", "feature", "model", "policy", "consumer")),
              help="Only nodes of this kind. Repeatable.")
@click.option("--impact", metavar="NODE",
              help="Highlight NODE and everything a new version of it would mark.")
@click.option("--cluster", is_flag=True, help="Group nodes by namespace prefix (team/...).")
@db_option
@click.pass_context
def graph(ctx: click.Context, fmt: str | None, output: str | None, focus: str | None,
          direction: str | None, depth: int | None, kinds: tuple[str, ...],
          impact: str | None, cluster: bool) -> None:
    """Draw the chain: shape by kind, colour by status, feedback dashed, pins labelled.

    SVG, PNG and PDF need Graphviz's dot (apt-get install graphviz); DOT, Mermaid
    and HTML (with a status table instead of the picture) work without it.

    \b
    Example:
      chainml graph                                  # chain.svg
      chainml graph --format html -o chain.html
      chainml graph --focus fraud_scorer --depth 2 --format png
      chainml graph --impact clicks_raw --format mermaid -o -
    """
    from chainml.errors import InvalidInput
    from chainml.render import dot, html, mermaid, run

    if fmt is None:
        suffix = Path(output).suffix.lstrip(".").lower() if output and output != "-" else ""
        fmt = next((f for f, s in SUFFIX.items() if s == suffix), "svg")
    if (direction or depth is not None) and not focus:
        raise click.UsageError("--upstream, --downstream and --depth go with --focus NODE.")
    if output == "-" and fmt in BINARY:
        raise click.UsageError(f"{fmt.upper()} is binary: give -o FILE.")
    view = open_registry(ctx).graph_view(focus=focus, direction=direction or "both",
                                         depth=depth, kinds=kinds, impact=impact)
    if not view.nodes:
        raise InvalidInput("Nothing to draw: the registry (or the selection) has no nodes.")
    if len(view.nodes) > READABLE and not focus:
        err(f"Note: {len(view.nodes)} nodes are too many to read in one picture; "
            "try --focus NODE --depth 2, --kind or --cluster.")
    data: str | bytes
    if fmt == "mermaid":
        data = mermaid.to_mermaid(view)
    elif fmt == "dot":
        data = dot.to_dot(view, cluster=cluster)
    elif fmt == "html":
        svg = (run.render_bytes(dot.to_dot(view, cluster=cluster, legend=False), "svg")
               if run.dot_available() else None)
        if svg is None:
            err("Note: Graphviz's dot is not installed, so the page has the status table but "
                "no picture (apt-get install graphviz / brew install graphviz).")
        data = html.to_html(view, svg)
    else:
        data = run.render_bytes(dot.to_dot(view, cluster=cluster), fmt)
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
