"""Importers: another tool's description of a chain, turned into a chain file.

Each returns a ``ChainFile`` that ``Registry.apply_file`` applies exactly like a
chain file written by hand (docs/chain-files.md, "Importers").
"""

from __future__ import annotations

from pathlib import Path

from chainml.errors import InvalidInput
from chainml.files.chainfile import ChainFile
from chainml.files.importers.common import KindMap

TOOLS = ("dbt", "dvc", "openlineage")


def load(tool: str, path: str | Path, kind_map: KindMap = None) -> ChainFile:
    """Read ``path`` with the importer for ``tool`` (dbt, dvc or openlineage)."""
    if tool == "dbt":
        from chainml.files.importers.dbt import import_dbt

        return import_dbt(path, kind_map)
    if tool == "dvc":
        from chainml.files.importers.dvc import import_dvc

        return import_dvc(path, kind_map)
    if tool == "openlineage":
        from chainml.files.importers.openlineage import import_openlineage

        return import_openlineage(path, kind_map)
    raise InvalidInput(f"Unknown importer {tool!r}; use one of: {', '.join(TOOLS)}.")
