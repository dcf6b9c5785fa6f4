"""tests/mutate.py changes one line of chainml per mutation and needs that line to be
found exactly once: a refactoring that copies or rewords it silently retires the
mutation (``python -m tests.mutate`` then stops with "update the list")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.mutate import MUTATIONS, ROOT


@pytest.mark.parametrize(("name", "file", "old", "new"),
                         [m[:4] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_each_mutation_finds_its_line_once(name: str, file: str, old: str, new: str) -> None:
    text = Path(ROOT, file).read_text()
    assert text.count(old) == 1, f"{name}: update tests/mutate.py for {file}"
    assert new != old
