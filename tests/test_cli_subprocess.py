"""The installed ``chainml`` console script, run as a real process (as CI runs it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chainml.cli import cli
from chainml.db.engine import find_registry


def _chainml() -> str:
    beside = Path(sys.executable).parent / "chainml"
    found = str(beside) if beside.is_file() else shutil.which("chainml")
    if found is None:
        pytest.fail("the chainml console script is not installed (pip install -e .)")
    return found


CHAINML = _chainml()


def chainml(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("CHAINML_DATABASE_URL", "CHAINML_DEBUG")}
    env["CHAINML_ACTOR"] = "ci-bot"
    return subprocess.run([CHAINML, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == ""
    return proc.stdout


def test_the_retest_loop_in_a_fresh_folder(tmp_path: Path) -> None:
    if find_registry(tmp_path) is not None:
        pytest.skip(f"a registry exists above {tmp_path}")
    _ok(chainml(tmp_path, "init"))
    assert (tmp_path / ".chainml" / "registry.db").is_file()
    work = tmp_path / "pipelines"
    work.mkdir()
    _ok(chainml(work, "register", "source", "clicks_raw", "--version", "2026-11-01"))
    _ok(chainml(work, "register", "model", "ranker", "--version", "1.4.0",
                "--input", "clicks_raw"))

    gate = chainml(work, "check", "--format", "json")
    assert gate.returncode == 1, gate.stdout + gate.stderr
    doc = json.loads(gate.stdout)
    assert doc["ok"] is False
    assert [(e["name"], e["status"]) for e in doc["failing"]] == [("ranker", "untested")]

    assert _ok(chainml(work, "test", "record", "ranker", "--passed")) == (
        "Recorded: ranker 1.4.0 passed.\n")
    assert _ok(chainml(work, "check")).startswith("check passed")


def test_help_lists_every_command(tmp_path: Path) -> None:
    out = _ok(chainml(tmp_path, "--help"))
    listed = {line.split()[0] for line in out.split("Commands:")[1].splitlines()
              if line.strip()}
    assert listed == set(cli.commands)
    assert {"init", "register", "promote", "show", "list", "impact", "test", "status", "check",
            "waive", "log", "db"} <= listed


def test_errors_exit_2_or_3_with_one_sentence_and_no_traceback(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'r.db'}"
    _ok(chainml(tmp_path, "init", "--db", db))
    bad = chainml(tmp_path, "--db", db, "register", "source", "fraud scorer", "--version", "1")
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr == ("Error: Invalid node name 'fraud scorer': it contains ' '; use 1 to "
                          "200 ASCII letters, digits and _ - . / :\n")

    down = chainml(tmp_path, "--db", "postgresql://u:s3cretpw@127.0.0.1:1/x", "status")
    assert down.returncode == 3
    assert down.stderr.startswith("Error: Cannot use the registry at "
                                  "postgresql+psycopg://u:***@127.0.0.1:1/x: ")
    assert len(down.stderr.splitlines()) == 1
    for proc in (bad, down):
        assert "Traceback" not in proc.stderr
        assert "s3cretpw" not in proc.stdout + proc.stderr
