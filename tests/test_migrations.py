"""Migrations: one head, upgrade/downgrade on every backend, no drift from the ORM,
old registries upgrade with their data, and the wheel ships the scripts."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import zipfile
from importlib.resources import files
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, insert, inspect, select

from chainml.db import migrate
from chainml.db.engine import create
from chainml.db.models import Base
from chainml.errors import SchemaOutdated
from chainml.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = sorted((Path(__file__).parent / "data" / "schemas").glob("*.db"))


def test_scripts_ship_inside_the_package() -> None:
    assert files("chainml.migrations").joinpath("env.py").is_file()
    assert files("chainml.migrations").joinpath("script.py.mako").is_file()


def test_single_head_matches_the_code() -> None:
    assert migrate.script_head() == migrate.HEAD, (
        "HOW TO FIX: set chainml.db.migrate.HEAD to the newest revision in migrations/versions"
    )


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = create(database_url, create_file=True)
    try:
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.HEAD
        assert "retest_mark" in inspect(engine).get_table_names()
        migrate.downgrade(engine, "base")
        assert migrate.current(engine) is None
        assert "node" not in inspect(engine).get_table_names()
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.HEAD
    finally:
        engine.dispose()


def test_orm_and_migrations_agree(database_url: str) -> None:
    engine = create(database_url, create_file=True)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], (
            f"The ORM models and the migrations differ: {diff}. HOW TO FIX: write a new "
            "revision (alembic revision --autogenerate -m '...'), review it, and bump "
            "chainml.db.migrate.HEAD."
        )
    finally:
        engine.dispose()


def test_empty_or_old_schema_is_refused(database_url: str) -> None:
    engine = create(database_url, create_file=True)
    try:
        with pytest.raises(SchemaOutdated, match="chainml init"):
            migrate.check_schema(engine)
        migrate.upgrade(engine)
        with engine.begin() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num='0000'")
        with pytest.raises(SchemaOutdated, match="chainml db upgrade") as info:
            Registry(database_url)
        assert info.value.exit_code == 3
    finally:
        engine.dispose()


def _snapshots(fixture: Path) -> dict[int, set[tuple[int, int]]] | None:
    """The fixture's test-run snapshots, as written before 0003 made them rows."""
    if fixture.stem >= "0003":
        return None
    with sqlite3.connect(fixture) as conn:
        return {run: {(int(n), int(v)) for n, v in json.loads(snap)}
                for run, snap in conn.execute("SELECT id, snapshot FROM test_run")}


def _copy_fixture(fixture: Path, engine: Engine) -> None:
    """Fill a server registry at the fixture's revision with the fixture's rows, ids kept."""
    source = create_engine(f"sqlite:///{fixture}")
    src, dst = MetaData(), MetaData()
    src.reflect(source)
    dst.reflect(engine)
    with source.connect() as read, engine.begin() as write:
        for table in dst.sorted_tables:
            if table.name in ("alembic_version", "write_lock") or table.name not in src.tables:
                continue
            rows = [dict(r._mapping) for r in read.execute(select(src.tables[table.name]))]
            if engine.dialect.name == "mysql":  # MariaDB's JSON reflects as LONGTEXT
                rows = [{k: json.dumps(v) if isinstance(v, dict | list) else v
                         for k, v in row.items()} for row in rows]
            if rows:
                write.execute(insert(table), rows)
            if engine.dialect.name == "postgresql" and "id" in table.c:
                write.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table.name}', "
                                      f"'id'), (SELECT max(id) FROM {table.name}))")
    source.dispose()


def _check_upgraded(url: str, snapshots: dict[int, set[tuple[int, int]]] | None,
                    revision: str = "0000") -> None:
    reg = Registry.init(url=url)  # init == upgrade for an existing registry
    try:
        if revision >= "0005":
            assert [(t.name, t.scope, t.state) for t in reg.token_list()] == [
                ("fixture-bot", "write", "active"), ("old-bot", "read", "revoked")]
        else:  # an older registry has no token: one can be made and used
            assert reg.token_list() == []
            made = reg.token_create("new-bot", scope="write")
            assert reg.authenticate(made.token, "write").name == "new-bot"
        if revision >= "0004":
            _check_environments(reg)
        else:  # an older registry has no environment: one can be added and used
            assert reg.env_list() == []
            reg.env_create("prod")
            reg.deploy(["click_features", "user_embedding"], env="prod")
            assert [e.status.value for e in reg.env_status("prod")] == ["verified"]
        assert migrate.current(reg.engine) == migrate.HEAD
        if snapshots is not None:  # 0003 moved them into rows, every pair of every run
            rows: dict[int, set[tuple[int, int]]] = {run: set() for run in snapshots}
            with reg.engine.connect() as conn:
                for run, n, v in conn.exec_driver_sql(
                        "SELECT run_id, node_id, version_id FROM snapshot_pair"):
                    rows[run].add((n, v))
            assert rows == snapshots
        assert [(e.name, e.status, e.reasons) for e in reg.status()] == [
            (e.name, e.status, e.reasons) for e in reg.recompute_status()]
        # 0007's fixture ingested a job, its output and the two datasets it read.
        assert len(reg.nodes()) == (17 if revision >= "0007" else 13)
        got = {e.name: e.status.value for e in reg.status()}
        assert got["fraud_scorer"] == "waived"
        assert got["user_embedding"] == "verified"
        assert got["ranker"] == "needs_retest"
        assert [e.action for e in reg.log("clicks_raw") if e.env is None][-1] == \
            "version.registered"
        if revision >= "0006":
            _check_hooks(reg)
        else:  # an older registry has no hook: one can be added (a change then notifies
            # it: tests/test_hooks.py; none is made here, the downgrades compare the runs)
            assert reg.hook_list() == [] and reg.hook_deliveries() == []
            hook = reg.hook_add("http://127.0.0.1:9/hook", events=["run.recorded"])
            assert [h.id for h in reg.hook_list()] == [hook.id]
        if revision >= "0007":
            _check_lineage(reg)
        else:
            assert reg.findings() == []
    finally:
        reg.close()


def _check_hooks(reg: Registry) -> None:
    """What make_fixture.py put in a 0006 registry: a hook, a removed one, a pending
    delivery, which the delivery worker can still send."""
    assert [(h.url, h.events) for h in reg.hook_list()] == [
        ("http://127.0.0.1:9/fixture", ["run.recorded"])]
    assert len(reg.hook_list(include_removed=True)) == 2
    assert [(d.event, d.state) for d in reg.hook_deliveries()] == [("run.recorded", "pending")]


def _check_lineage(reg: Registry) -> None:
    """What make_fixture.py ingested into a 0007 registry: its finding stays open, and the
    run it left without COMPLETE still completes (its START is stored)."""
    job, users = "job:airflow/daily.features", "dataset:warehouse/raw.users"
    assert [(f.node, f.input, f.times) for f in reg.findings()] == [(job, users, 1)]
    assert [v.label for v in reg.node(job).versions] == ["c1", "c2"]
    done = reg.ingest_events([{
        "eventType": "COMPLETE", "eventTime": "2026-11-27T11:25:00Z",
        "run": {"runId": "0176a8c2-fe01-7439-87e6-56a1a1b40003"},
        "job": {"namespace": "airflow", "name": "daily.features"},
        "producer": "https://example.com/fixture",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}])
    assert [(r.job, r.outputs) for r in done.runs] == [
        (job, ["dataset:warehouse/ml.features@0176a8c2-fe01-7439-87e6-56a1a1b40003"])]


def _check_environments(reg: Registry) -> None:
    """What tests/data/schemas/make_fixture.py put in a 0004 registry, read back."""
    assert [(e.name, e.after, e.deployed_nodes) for e in reg.env_list()] == [
        ("staging", None, 10), ("prod", "staging", 11)]
    assert {e.name: e.status.value for e in reg.env_status("staging")} == {
        "fraud_rules": "skewed", "fraud_scorer": "waived", "ranker": "skewed",
        "ranking_safety": "skewed", "user_embedding": "verified"}
    assert {e.status.value for e in reg.env_status("prod")} == {"verified"}
    served = {n.name: (n.version, n.deployed) for n in reg.env_show("prod").nodes}
    assert served["clicks_raw"] == ("2026-11-01", True)
    assert served["user_profiles"] == ("v12", False)  # never deployed: live
    assert "feed_app" not in served  # undeployed
    assert [e.action for e in reg.log(env="prod")] == ["env.created", "deploy", "undeploy"]
    assert [e.action for e in reg.log(env="staging")] == ["env.created", "deploy",
                                                          "waiver.granted"]


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_released_registries_upgrade_with_their_data(fixture: Path, tmp_path: Path) -> None:
    db = tmp_path / fixture.name
    shutil.copy(fixture, db)
    _check_upgraded(f"sqlite:///{db}", _snapshots(fixture), fixture.stem)


def _after_downgrade_to_0003(engine: Engine) -> None:
    """0004 taken back: no environment tables or columns; the registry's waiver stays,
    the environment's goes; the events stay."""
    tables = inspect(engine).get_table_names()
    assert "environment" not in tables and "deployment" not in tables
    assert "environment_id" not in {c["name"] for c in inspect(engine).get_columns("waiver")}
    assert "env_name" not in {c["name"] for c in inspect(engine).get_columns("event")}
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM waiver").scalar_one() == 1
        actions = [a for (a,) in conn.exec_driver_sql("SELECT action FROM event")]
    assert actions.count("deploy") == 2 and actions.count("env.created") == 2


def test_downgrading_0004_drops_the_environments(tmp_path: Path) -> None:
    fixture = next(f for f in FIXTURES if f.stem == "0004")
    db = tmp_path / fixture.name
    shutil.copy(fixture, db)
    engine = create(f"sqlite:///{db}")
    try:
        migrate.downgrade(engine, "0003")
        assert migrate.current(engine) == "0003"
        _after_downgrade_to_0003(engine)
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.HEAD
    finally:
        engine.dispose()


def test_downgrading_0005_drops_the_tokens(tmp_path: Path) -> None:
    fixture = next(f for f in FIXTURES if f.stem == "0005")
    db = tmp_path / fixture.name
    shutil.copy(fixture, db)
    engine = create(f"sqlite:///{db}")
    try:
        migrate.downgrade(engine, "0004")
        assert "api_token" not in inspect(engine).get_table_names()
        with engine.connect() as conn:  # their history stays
            actions = [a for (a,) in conn.exec_driver_sql("SELECT action FROM event")]
        assert actions.count("token.created") == 2
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.HEAD
    finally:
        engine.dispose()


def test_downgrading_0006_drops_the_webhooks(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    reg = Registry.init(url=url)
    reg.register(kind="source", name="raw", version="1")
    reg.register(kind="model", name="m", version="1", inputs=["raw"])
    reg.hook_add("http://127.0.0.1:9/hook", events=["run.recorded", "check.changed"])
    reg.record_test("m", passed=True)
    reg.close()
    engine = create(url)
    try:
        migrate.downgrade(engine, "0005")
        tables = inspect(engine).get_table_names()
        for gone in ("hook", "notification", "delivery", "gate_verdict"):
            assert gone not in tables, gone
        with engine.connect() as conn:  # the history of the hook stays
            actions = [a for (a,) in conn.exec_driver_sql("SELECT action FROM event")]
        assert "hook.added" in actions
        migrate.upgrade(engine)
        assert migrate.current(engine) == migrate.HEAD
    finally:
        engine.dispose()
    with Registry(url) as again:
        assert again.hook_list() == []


def test_downgrading_0003_restores_the_json_snapshots(tmp_path: Path) -> None:
    fixture = next(f for f in FIXTURES if f.stem == "0002")
    db = tmp_path / fixture.name
    shutil.copy(fixture, db)
    Registry.init(url=f"sqlite:///{db}").close()
    engine = create(f"sqlite:///{db}")
    try:
        migrate.downgrade(engine, "0002")
    finally:
        engine.dispose()
    assert _snapshots(db) == _snapshots(fixture)


@pytest.mark.parametrize("database_url", ["postgresql", "mysql"], indirect=True)
@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_released_registries_upgrade_with_their_data_on_servers(fixture: Path,
                                                                database_url: str) -> None:
    """The same data, loaded into PostgreSQL or MariaDB at the fixture's revision."""
    engine = create(database_url, create_file=True)
    try:
        migrate.upgrade(engine, fixture.stem)
        _copy_fixture(fixture, engine)
        _check_upgraded(database_url, _snapshots(fixture), fixture.stem)
        if fixture.stem == "0004":
            migrate.downgrade(engine, "0003")
            _after_downgrade_to_0003(engine)
        if fixture.stem < "0003":  # and back: the JSON snapshots come back as they were
            migrate.downgrade(engine, fixture.stem)
            with engine.connect() as conn:
                back = {run: {(int(n), int(v)) for n, v in
                              (json.loads(snap) if isinstance(snap, str) else snap)}
                        for run, snap in conn.exec_driver_sql(
                            "SELECT id, snapshot FROM test_run")}
            assert back == _snapshots(fixture)
    finally:
        engine.dispose()


def test_wheel_carries_cli_and_migrations(tmp_path: Path) -> None:
    # Built from a copy of what the wheel is made of: an in-tree build reuses build/,
    # where a migration renamed since the last build would still sit beside its new name.
    src = tmp_path / "src"
    src.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    for part in ("chainml", "cli", "migrations"):
        shutil.copytree(ROOT / part, src / part,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(src)], capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("chainml-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("chainml/cli/__init__.py", "chainml/migrations/env.py",
                   "chainml/migrations/script.py.mako", "chainml/py.typed",
                   "chainml/migrations/versions/0001_initial_schema.py"):
        assert needed in names, needed
    assert not any(n.startswith(("cli/", "migrations/", "tests/")) for n in names)
    # Every module of the library, whatever folder it sits in (a package left out of
    # pyproject.toml's list would be missing from every installed copy).
    for source in sorted((ROOT / "chainml").rglob("*.py")):
        assert f"chainml/{source.relative_to(ROOT / 'chainml').as_posix()}" in names, source
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    work = tmp_path / "work"
    work.mkdir()
    # Run from the unpacked wheel alone (not the source tree): init, then db current.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import chainml;"
        "assert chainml.__file__.startswith(sys.argv[1]), chainml.__file__;"
        "from chainml.cli import main; sys.argv = ['chainml'] + sys.argv[2:]; main()"
    )
    steps = (["init"], ["register", "source", "raw", "--version", "1"],
             ["register", "model", "m", "--version", "1", "--input", "raw"],
             ["impact", "raw"], ["check"], ["db", "current"])
    for args in steps:
        run = subprocess.run([sys.executable, "-c", code, str(unpacked), *args], cwd=work,
                             capture_output=True, text=True)
        assert run.returncode == (1 if args == ["check"] else 0), (args, run.stderr)
    assert "chainml expects" in run.stdout and "up to date" in run.stdout
