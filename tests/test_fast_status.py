"""``chainml status`` (with and without ``--env``) answers with plain entries, without
importing pydantic, SQLAlchemy or the result models, and writes exactly what the
library's ``StatusEntry`` models give (docs/json.md), byte for byte: JSON and text.

The registry's clock runs a minute behind the real one here, so the command line
(which judges at the real time) and the library agree on every expiry and age.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import to_json

from chainml import fast
from chainml.registry import Registry
from chainml.render.report import missing_suites
from chainml.rules import status as rules_status
from chainml.rules.status import utcnow
from chainml.schemas import Status, StatusEntry
from tests.chains import EXAMPLE, build_example
from tests.clirun import run
from tests.conftest import Clock

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pydantic", "pydantic_core", "sqlalchemy", "alembic")


@pytest.fixture
def late_clock() -> Clock:
    clock = Clock()
    clock.now = utcnow() - timedelta(days=10)
    return clock


@pytest.fixture
def reg(database_url: str, late_clock: Clock) -> Any:
    r = Registry.init(url=database_url, actor="tester", clock=late_clock)
    yield r
    r.close()


def build_every_status(reg: Registry, clock: Clock) -> Registry:
    """A registry holding every registry status, ``prod`` every environment status (mostly
    judged from marks) and ``staging`` served behind the registry (judged directly)."""
    build_example(reg)
    reg.register(kind="model", name="old", version="1", inputs=["transactions_raw"],
                 max_age="1d", owner="équipe ✓ \"quoted\"")
    reg.record_test("old", passed=True)
    clock.advance(days=10, minutes=-1)
    reg.register(kind="model", name="fine", version="1", inputs=["transactions_raw"])
    reg.record_test("fine", passed=True)
    reg.register(kind="model", name="bad", version="1", inputs=["user_profiles"],
                 required_suites=["offline-eval", "shadow"])
    reg.record_test("bad", passed=True, suite="offline-eval")
    reg.record_test("bad", passed=False, suite="shadow")
    reg.register(kind="model", name="half", version="1", inputs=["user_profiles"],
                 required_suites=["offline-eval", "shadow"])
    reg.record_test("half", passed=True, suite="offline-eval")
    reg.register(kind="policy", name="never", version="0.1", inputs=["fine"],
                 required_suites=["replay", "offline-eval", "replay"])
    reg.register(kind="feature", name="g", version="1", inputs=["clicks_raw"])
    reg.register(kind="model", name="needs_g", version="1", inputs=["g"])
    reg.record_test("needs_g", passed=True)
    everything = [n.name for n in reg.nodes() if n.name not in ("g", "needs_g")]
    for env in ("staging", "prod"):
        reg.env_create(env)
        reg.deploy(everything, env=env, force=True, reason="start")
    reg.deploy(["needs_g"], env="prod", force=True, reason="g comes later")
    # A feature redeployed to prod alone: what reads it is skewed there (and needs a
    # retest in the registry); staging serves 1.3.0, behind the registry.
    reg.register(kind="feature", name="click_features", version="1.4.0",
                 inputs=["clicks_raw"])
    reg.deploy(["click_features"], env="prod", force=True, reason="hotfix")
    reg.waive("ranker", reason="fine", env="prod")
    reg.record_test("user_embedding", passed=True)
    reg.register(kind="model", name="fraud_scorer", version="5.3.0",
                 inputs=["txn_features", "embedding_features"])
    reg.waive("fraud_rules", reason="fine")
    # staging serves events 1 below a model tested with events 2 only: skewed, directly.
    reg.register(kind="source", name="events", version="1")
    reg.deploy(["events"], env="staging", force=True, reason="first")
    reg.register(kind="source", name="events", version="2")
    reg.register(kind="model", name="late", version="1", inputs=["events"])
    reg.record_test("late", passed=True)
    reg.deploy(["late"], env="staging", force=True, reason="try")
    return reg


def models_json(entries: list[StatusEntry]) -> bytes:
    """What ``chainml status --json`` wrote from the models (``cli.common.echo_json``)."""
    return to_json(entries, indent=2, by_alias=True) + b"\n"


def models_text(entries: list[StatusEntry], node: str | None, env: str | None) -> str:
    """What ``chainml status`` printed from the models, before it read plain entries."""
    if not entries:
        if env is not None:
            return (f"{node} needs no tests." if node else
                    f"Nothing deployed to {env} needs tests.") + "\n"
        return (f"{node} needs no tests." if node else "No node needs tests yet.") + "\n"
    lines = []
    width = max(len(e.name) for e in entries)
    for e in entries:
        lines.append(f"{e.name:<{width}}  {e.kind:<8}  {e.version or '-':<12}  {e.status.value}")
        lines += [f"{'':<{width}}    - {r.message}" for r in e.reasons]
        names = any(r.suite is not None and r.cause == e.name for r in e.reasons)
        missing = [] if names else missing_suites(e, e.required_suites)
        if missing:
            label = "suites" if len(missing) > 1 else "suite"
            lines.append(f"{'':<{width}}    - missing required {label}: {', '.join(missing)}")
    return "\n".join(lines) + "\n"


def _ok(url: str, *args: str) -> tuple[bytes, str]:
    result = run(url, *args)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes, result.stdout


def test_status_writes_what_the_models_write(reg: Registry, late_clock: Clock,
                                             database_url: str) -> None:
    build_every_status(reg, late_clock)
    seen: dict[str | None, set[str]] = {}
    names = [None, *sorted(n.name for n in reg.nodes())]
    for env in (None, "prod", "staging"):
        for node in names:
            if env is None:
                if node is not None and node not in {e.name for e in reg.status()}:
                    continue  # needs no tests: both say so
                expected = reg.status(node)
                args = ["status", *([node] if node else [])]
            else:
                deployed = {e.name for e in reg.env_status(env)}
                if node is not None and node not in deployed:
                    continue
                expected = reg.env_status(env, node)
                args = ["status", "--env", env, *([node] if node else [])]
            seen.setdefault(env, set()).update(e.status.value for e in expected)
            got, _ = _ok(database_url, *args, "--json")
            assert got == models_json(expected), args
            _, text = _ok(database_url, *args)
            assert text == models_text(expected, node, env), args
    registry_kinds = {"verified", "untested", "failed", "needs_retest", "waived", "stale"}
    env_kinds = {"verified", "skewed", "untested", "failed", "missing_input", "waived",
                 "stale"}
    assert seen[None] == registry_kinds
    assert seen["prod"] | seen["staging"] == env_kinds
    assert "skewed" in seen["staging"]  # judged directly


def test_both_serialisers_write_the_same_bytes(reg: Registry, late_clock: Clock,
                                               database_url: str) -> None:
    build_every_status(reg, late_clock)
    for plain, models in ((fast.status(database_url), reg.status()),
                          (fast.env_status(database_url, "prod"), reg.env_status("prod")),
                          (fast.env_status(database_url, "staging"),
                           reg.env_status("staging")),
                          (fast.status(database_url, "ranker"), reg.status("ranker")),
                          ([], [])):
        expected = to_json(models, indent=2, by_alias=True)
        assert fast.status_json(plain) == expected
        assert fast.status_json(plain, json_module_up_to=0) == expected  # pydantic-core's


def test_the_status_values_are_the_models(database_url: str) -> None:
    plain = {getattr(rules_status, s.name) for s in Status}
    assert plain == {s.value for s in Status}


def test_an_example_chain_without_environments(reg: Registry, database_url: str) -> None:
    for kind, name, version, inputs in EXAMPLE:
        reg.register(kind=kind, name=name, version=version, inputs=inputs)
    got, _ = _ok(database_url, "status", "--json")
    assert got == models_json(reg.status())
    _, text = _ok(database_url, "status", "ranker")
    assert text == models_text(reg.status("ranker"), "ranker", None)
    assert run(database_url, "status", "--env", "prod").exit_code == 2


PROBE = """
import sys
sys.argv = ["chainml", *sys.argv[1:]]
from chainml.cli import main
try:
    main()
finally:
    heavy = sorted(m for m in sys.modules
                   if m.split(".")[0] in {heavy!r} or m == "chainml.schemas")
    sys.stderr.write("HEAVY " + " ".join(heavy) + "\\n")
"""


@pytest.mark.parametrize("args", [
    ("status", "--env", "prod", "ranker", "--json"),
    ("status", "--env", "prod", "ranker"),
    ("status", "--env", "prod", "needs_g"),
    ("status", "ranker", "--json"),
    ("status", "half"),
    ("status", "--json"),
    ("status", "--env", "staging"),
])
def test_status_imports_neither_pydantic_nor_sqlalchemy(reg: Registry, late_clock: Clock,
                                                        database_url: str,
                                                        args: tuple[str, ...]) -> None:
    build_every_status(reg, late_clock)
    env = {**os.environ, "CHAINML_DATABASE_URL": database_url}
    env.pop("CHAINML_DEBUG", None)
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *args],
                          cwd=ROOT, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout
    heavy = done.stderr.decode().rsplit("HEAVY", 1)[1].split()
    if database_url.startswith("mysql"):
        # MariaDB has no direct path (db/direct.py): SQLAlchemy reads it, pydantic
        # and the result models must still stay out.
        heavy = [m for m in heavy if m.split(".")[0] != "sqlalchemy"]
    assert heavy == [], f"chainml {' '.join(args)} imported {heavy}"
