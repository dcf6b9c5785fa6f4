"""The layers hold: every query lives in chainml/db/, and the CLI never touches storage.

Read from the source with ``ast`` (imports and string constants), so a new query
outside the storage layer, or a CLI command that opens the database itself, fails
here with the file and line to fix.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Upper-case keywords, as every query in this code base is written.
SQL = re.compile(r"^\s*(SELECT\s|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|WITH\s+RECURSIVE"
                 r"|CREATE\s+(TABLE|INDEX)|DROP\s+(TABLE|INDEX)|ALTER\s+TABLE)")
QUERY_BUILDERS = {"select", "text", "insert", "update", "delete"}


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"


def test_no_query_outside_the_storage_layer() -> None:
    found = []
    for path in _modules("chainml"):
        if path.is_relative_to(ROOT / "chainml" / "db"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "sqlalchemy":
                used = QUERY_BUILDERS & {a.name for a in node.names}
                if used:
                    found.append(f"{_where(path, node)} imports {sorted(used)} from sqlalchemy")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and SQL.match(node.value):
                found.append(f"{_where(path, node)} holds SQL: {node.value[:40]!r}")
    assert not found, ("Every query belongs in chainml/db/ (one function per question); "
                       "move these there and call it:\n" + "\n".join(found))


def test_the_command_line_calls_the_library_only() -> None:
    found = []
    for path in _modules("cli"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            bad = [n for n in names if n.startswith(("chainml.db", "chainml.db.migrate",
                                                     "sqlalchemy"))]
            if bad:
                found.append(f"{_where(path, node)} imports {bad[0]}")
    assert not found, ("cli/ parses, calls the library (Registry, chainml.fast) and prints; "
                       "it must not reach storage:\n" + "\n".join(found))


WORDS = ("chainml.errors", "chainml.kinds", "chainml.names", "chainml.schemas")
# What each layer may import from chainml besides itself and the words. The rules
# build the renderers' input (render.view.GraphView), so they may reach render.view.
MAY_IMPORT = {
    "render": (),
    "db": ("chainml.migrations",),
    "rules": ("chainml.db", "chainml.render.view"),
    "files": ("chainml.db", "chainml.rules"),
    "environments": ("chainml.db", "chainml.rules"),
    "hooks": ("chainml.db", "chainml.rules"),
}


def test_each_layer_imports_only_the_layers_below() -> None:
    found = []
    for layer, allowed in MAY_IMPORT.items():
        own = f"chainml.{layer}"
        for path in _modules(f"chainml/{layer}"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                modules: list[str] = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    modules = [node.module] if node.module != "chainml" else [
                        f"chainml.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    modules = [a.name for a in node.names]
                for m in modules:
                    if m.startswith("chainml") and not m.startswith(
                            (own, *WORDS, *allowed)) and m != "chainml":
                        found.append(f"{_where(path, node)}: {layer} imports {m}")
    assert not found, "A layer reaches a layer above it:\n" + "\n".join(found)
