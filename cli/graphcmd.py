"""``chainml graph`` (filled in with the renderers)."""

from __future__ import annotations

import click


def attach(group: click.Group) -> None:
    pass
