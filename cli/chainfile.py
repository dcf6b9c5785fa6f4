"""``chainml apply``, ``export`` and ``import`` (filled in with the chain files)."""

from __future__ import annotations

import click


def attach(group: click.Group) -> None:
    pass
