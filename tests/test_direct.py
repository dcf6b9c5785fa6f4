"""The direct read path (db/direct.py): the command line's impact, status and check
read SQLite and PostgreSQL without SQLAlchemy. It must give exactly what the
SQLAlchemy path gives, refuse the same registries, and fail the same way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chainml.db import direct
from chainml.errors import NodeNotFound, RegistryUnavailable, SchemaOutdated
from chainml.registry import Registry
from chainml.rules import gate
from chainml.rules.impact import impact
from chainml.schemas import CheckResult
from tests.chains import build_example
from tests.conftest import Clock


def test_direct_reads_match_the_sqlalchemy_path(registry: Registry, database_url: str) -> None:
    build_example(registry)
    registry.register(kind="source", name="clicks_raw", version="2")
    db = direct.open_direct(database_url)
    if database_url.startswith("mysql"):
        assert db is None  # MariaDB always goes through SQLAlchemy
        return
    assert db is not None
    try:
        for node in ("clicks_raw", "transactions_raw", "user_embedding", "fraud_scorer"):
            for depth in (None, 1, 2):
                got = impact(db, node, depth)
                assert got == registry.impact(node, depth).model_dump(by_alias=True)
        with pytest.raises(NodeNotFound, match="Did you mean 'clicks_raw'"):
            impact(db, "clicks_rav")
    finally:
        db.close()


def test_direct_status_and_check_match_the_sqlalchemy_path(registry: Registry,
                                                          database_url: str, clock: Clock
                                                          ) -> None:
    build_example(registry)
    registry.register(kind="source", name="clicks_raw", version="2")
    registry.register(kind="source", name="transactions_raw", version="2")
    registry.waive("fraud_scorer", reason="known-good")
    registry.record_test("ranker", passed=False)
    registry.register(kind="model", name="ranker", version="1.4.0",
                      required_suites=["offline", "shadow"], max_age="1d")
    registry.record_test("ranker", passed=True, suite="offline")
    registry.register(kind="model", name="user_embedding", version="3", max_age="1d")
    registry.record_test("user_embedding", passed=True)
    clock.advance(days=2)  # user_embedding is stale now
    with direct.reading(database_url) as db:
        now = clock.now
        got = gate.status(db, None, now)
        assert {e.status.value for e in got} >= {"needs_retest", "waived", "stale", "untested"}
        assert [e.model_dump(by_alias=True) for e in got] == [
            e.model_dump(by_alias=True) for e in registry.status()]
        for names, strict in (((), False), ((), True), (("fraud_rules",), False),
                              (("ranking_safety", "ranker"), True)):
            assert gate.check(db, names, strict, now).model_dump(by_alias=True) == \
                registry.check(names, strict=strict).model_dump(by_alias=True)
        # What check returns serialises exactly as a validated model would.
        result = gate.check(db, (), False, now)
        assert CheckResult.model_validate(result.model_dump(by_alias=True)) == result


def test_reading_falls_back_to_sqlalchemy_for_other_urls(registry: Registry,
                                                         database_url: str) -> None:
    build_example(registry)
    # An option in the query string: only SQLAlchemy's URL parser knows what it means.
    url = database_url + ("&" if "?" in database_url else "?") + (
        "timeout=5" if database_url.startswith("sqlite") else "connect_timeout=5")
    if database_url.startswith("sqlite"):
        assert direct.open_direct(url) is None
    with direct.reading(url) as db:
        assert impact(db, "clicks_raw") == registry.impact("clicks_raw").model_dump(by_alias=True)


def test_direct_refuses_an_empty_or_old_registry(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(SchemaOutdated, match="not a chainml registry yet"):
        direct.open_direct(f"sqlite:///{path}")
    reg = Registry.init(url=f"sqlite:///{tmp_path / 'r.db'}")
    reg.close()
    conn = sqlite3.connect(tmp_path / "r.db")
    conn.execute("UPDATE alembic_version SET version_num = '0001'")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaOutdated, match="chainml db upgrade") as info:
        direct.open_direct(f"sqlite:///{tmp_path / 'r.db'}")
    assert info.value.exit_code == 3


def test_direct_unreachable_server_hides_the_password() -> None:
    with pytest.raises(RegistryUnavailable) as info:
        direct.open_direct("postgresql://u:s3cret-pw@127.0.0.1:1/x")
    assert "s3cret-pw" not in str(info.value) and "u:***@127.0.0.1:1" in str(info.value)
    assert info.value.exit_code == 3


def test_impact_imports_neither_sqlalchemy_nor_pydantic_models(tmp_path: Path) -> None:
    reg = Registry.init(tmp_path)
    build_example(reg)
    reg.close()
    code = ("import sys; from chainml.cli import main; sys.argv = ['chainml', 'impact', "
            "'clicks_raw', '--json']\ntry:\n main()\nexcept SystemExit:\n pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'networkx', 'alembic') or m == 'chainml.schemas'), "
            "file=sys.stderr)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.strip() == "[]", run.stderr
    assert '"impacted"' in run.stdout
