"""README.md's "A short tour" runs as written, command by command, in an empty folder.

The tour is what a newcomer types after ``pip install chainml``: no repository checkout,
so nothing may refer to files of this repository. Each command of the ```sh block runs
with the installed ``chainml`` (the one beside this interpreter) and must exit with the
code its comment names (``# exit 1``), else 0; a heredoc counts as one command.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BIN = Path(sys.executable).parent
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
EXIT = re.compile(r"#.*\bexit (\d+)")


def tour_block(text: str) -> str:
    """The first ```sh block under the heading "A short tour"."""
    section = text.split("\n## A short tour\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"^```sh\n(.*?)^```$", section, flags=re.M | re.S)
    assert match, "README.md's 'A short tour' has no ```sh block"
    return match.group(1)


def commands(block: str) -> list[tuple[str, int]]:
    """(command, expected exit code) in order; a heredoc joins its lines to the command."""
    out: list[tuple[str, int]] = []
    lines = block.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        expected = EXIT.search(line)
        command = [line]
        here = HEREDOC.search(line)
        if here:
            while i < len(lines) and lines[i] != here.group(2):
                command.append(lines[i])
                i += 1
            assert i < len(lines), f"heredoc {here.group(2)!r} is not closed"
            command.append(lines[i])
            i += 1
        out.append(("\n".join(command), int(expected.group(1)) if expected else 0))
    return out


def test_the_parser_reads_comments_and_heredocs() -> None:
    got = commands("a  # exit 1\n\n# note\ncat > f <<'EOF'  # x\nk: v\nEOF\nb\n")
    assert got == [("a  # exit 1", 1), ("cat > f <<'EOF'  # x\nk: v\nEOF", 0), ("b", 0)]


@pytest.mark.skipif(not (BIN / "chainml").exists(), reason="chainml is not installed")
def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    steps = commands(tour_block(README.read_text(encoding="utf-8")))
    assert any("apply" in c for c, _ in steps) and any(code == 1 for _, code in steps)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CHAINML_") and k not in ("CI_JOB_URL",)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for command, expected in steps:
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)
        output = done.stdout + done.stderr
        assert done.returncode == expected, (
            f"README tour: `{command}` exited {done.returncode}, its comment says "
            f"{expected}:\n{output}")
        assert "Traceback" not in output, output
        if expected == 0:
            assert "Error:" not in output, output
