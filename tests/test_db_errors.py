"""Errors from the database itself: a lost connection, a read-only database, a full disk,
a locked SQLite file, a conflict the database asks to retry.

Each gives ``RegistryUnavailable`` (exit 3) with one sentence that says what to do, leaves
every row of every table as it was, and the registry works again once the cause is gone.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chainml.cli import cli
from chainml.db import engine as dbe
from chainml.errors import InvalidInput, RegistryUnavailable
from chainml.registry import Registry
from tests.conftest import IN_CI, MYSQL_URL, POSTGRES_URL, _unreachable
from tests.test_hostile_api import chain_file, raw_dump

LOST = "the connection to the database was lost; every command is all or nothing, so run it again."
READ_ONLY = "the registry is read-only; check the file's permissions or the database role."
NO_PRIVILEGE = ("the database user may not do this; grant it the privileges on the registry's "
                "tables (or schema) or use another user.")
LOCKED = "another process holds the registry; retry when it finishes."
FULL = "the disk is full; free space and retry (nothing was written)."


def small_chain(reg: Registry, models: int = 5) -> None:
    reg.register(kind="source", name="events", version="1")
    reg.register(kind="feature", name="feats", version="1", inputs=["events"])
    for i in range(models):
        reg.register(kind="model", name=f"m{i}", version="1", inputs=["feats"])
        reg.record_test(f"m{i}", passed=True)


def writes(reg: Registry) -> list[tuple[str, Any]]:
    """One call of every kind that writes (each must fail the same way)."""
    return [
        ("register", lambda: reg.register(kind="source", name="events", version="2")),
        ("promote", lambda: reg.promote("feats", "1")),  # already current: still locks
        ("record_test", lambda: reg.record_test("m0", passed=True)),
        ("apply", lambda: reg.apply_text(chain_file(
            "{name: events, kind: source, version: '3'}"), "c.yaml")),
    ]


def assert_unavailable(error: BaseException, hint: str) -> None:
    assert isinstance(error, RegistryUnavailable), repr(error)
    message = str(error)
    assert error.exit_code == 3
    assert "\n" not in message and message.startswith("Cannot use the registry at "), message
    assert message.endswith(hint), message
    assert error.__cause__ is None and error.__suppress_context__


def cli_run(url: str, *args: str, **env: str) -> Any:
    result = CliRunner().invoke(cli, list(args), env={"CHAINML_DATABASE_URL": url,
                                                      "CHAINML_DEBUG": None, **env},
                                prog_name="chainml")
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result


def assert_cli_exit_3(url: str, hint: str, *args: str, **env: str) -> None:
    result = cli_run(url, *args, **env)
    assert result.exit_code == 3, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Cannot use the registry at "), lines
    assert lines[0].endswith(hint), lines[0]
    assert result.stdout == ""


# ---- server fixtures ----------------------------------------------------------------------


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, Any]]:
    """(schema, admin engine) on the PostgreSQL test server; dropped afterwards."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schema = f"e_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _unreachable("postgresql", e)
    try:
        yield schema, admin
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pg_url(schema: str, user: str | None = None, **query: str) -> str:
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}",
                                                    **query})
    if user is not None:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


@pytest.fixture
def pg_role(pg_schema: tuple[str, Any]) -> Iterator[Any]:
    """A factory of throw-away login roles; each is dropped afterwards."""
    _, admin = pg_schema
    made: list[str] = []

    def make(*grants: str) -> str:
        role = f"chainml_t{uuid.uuid4().hex[:10]}"
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN"))
            made.append(role)
            for g in grants:
                conn.execute(text(g.format(role=role)))
        return role

    yield make
    with admin.connect() as conn:
        for role in made:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))


# ---- lost connection ------------------------------------------------------------------------


def terminate(admin: Any, app: str) -> int:
    with admin.connect() as conn:
        return len(conn.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :app"), {"app": app}).all())


def test_a_connection_lost_between_calls_is_replaced(pg_schema: tuple[str, Any]) -> None:
    """The server ended the pooled connection (a restart, a failover) between two calls:
    the pool tests a connection before handing it out, so each next call, read or write,
    runs on a new one instead of failing (what keeps ``chainml serve`` up)."""
    schema, admin = pg_schema
    app = f"chainml-{uuid.uuid4().hex[:8]}"
    url = pg_url(schema, application_name=app)
    with Registry.init(url=url, actor="t") as reg:
        small_chain(reg)
        for what, call in writes(reg):
            reg.nodes()  # a pooled connection now exists
            assert terminate(admin, app) >= 1
            call()  # no RegistryUnavailable: a fresh connection
            assert reg.log(limit=1), what
        reg.nodes()
        assert terminate(admin, app) >= 1
        assert {n.name for n in reg.nodes()} >= {"events", "feats", "m0"}


def test_connection_lost_in_the_middle_of_an_apply(pg_schema: tuple[str, Any]) -> None:
    schema, admin = pg_schema
    app = f"chainml-{uuid.uuid4().hex[:8]}"
    url = pg_url(schema, application_name=app)
    with Registry.init(url=url, actor="t") as reg:
        small_chain(reg, models=40)
        before = raw_dump(url)
        nodes = ["{name: events, kind: source, version: '2'}",
                 "{name: feats, kind: feature, version: '2', inputs: [events]}"]
        # New versions: unchanged nodes skip registration (and the progress callback).
        nodes += [f"{{name: m{i}, kind: model, version: '2', inputs: [feats]}}"
                  for i in range(40)]
        nodes += [f"{{name: new{i}, kind: model, version: '1', inputs: [feats]}}"
                  for i in range(200)]
        calls: list[int] = []

        def progress(done: int) -> None:
            calls.append(done)
            if len(calls) == 20:  # halfway through: events and feats are written, marks too
                assert terminate(admin, app) >= 1

        with pytest.raises(RegistryUnavailable) as info:
            reg.apply_text(chain_file(*nodes), "big.yaml", progress=progress)
        assert_unavailable(info.value, LOST)
        assert len(calls) >= 20
        assert raw_dump(url) == before
        assert reg.apply_text(chain_file(*nodes), "big.yaml").changed


# ---- read-only ------------------------------------------------------------------------------


def test_sqlite_opened_read_only(tmp_path: Path) -> None:
    path = tmp_path / "registry.db"
    with Registry.init(url=f"sqlite:///{path}", actor="t") as reg:
        small_chain(reg)
    before = raw_dump(f"sqlite:///{path}")
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with Registry(url, actor="t") as reg:
        for _what, call in writes(reg):
            with pytest.raises(RegistryUnavailable) as info:
                call()
            assert_unavailable(info.value, READ_ONLY)
        assert len(reg.status()) == 5  # reads work
        assert reg.check().ok
    assert raw_dump(f"sqlite:///{path}") == before
    assert_cli_exit_3(url, READ_ONLY, "register", "source", "events", "--version", "9")
    assert cli_run(url, "check").exit_code == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions; the read-only "
                    "URL (mode=ro) and the PostgreSQL/MariaDB roles cover read-only here")
def test_sqlite_file_and_folder_read_only(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    url = f"sqlite:///{folder / 'registry.db'}"
    with Registry.init(url=url, actor="t") as reg:
        small_chain(reg)
    before = raw_dump(url)
    (folder / "registry.db").chmod(0o444)
    folder.chmod(0o555)
    try:
        with Registry(url, actor="t") as reg:
            with pytest.raises(RegistryUnavailable) as info:
                reg.register(kind="source", name="events", version="2")
            assert "read-only" in str(info.value) or "unable to open" in str(info.value)
    finally:
        folder.chmod(0o755)
        (folder / "registry.db").chmod(0o644)
    assert raw_dump(url) == before


def _grant_read(schema: str) -> tuple[str, ...]:
    return (f"GRANT USAGE ON SCHEMA {schema} TO {{role}}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {{role}}")


@pytest.mark.parametrize("how", ["read-only-role", "select-only-role"])
def test_postgresql_role_that_may_not_write(pg_schema: tuple[str, Any], pg_role: Any,
                                            how: str) -> None:
    schema, _ = pg_schema
    owner = pg_url(schema)
    with Registry.init(url=owner, actor="t") as reg:
        small_chain(reg)
    before = raw_dump(owner)
    if how == "read-only-role":  # may write, but every transaction is read-only
        role = pg_role(*_grant_read(schema),
                       f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {{role}}",
                       f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {{role}}",
                       "ALTER ROLE {role} SET default_transaction_read_only = on")
        hint = READ_ONLY
    else:
        role = pg_role(*_grant_read(schema))
        hint = NO_PRIVILEGE
    url = pg_url(schema, user=role)
    with Registry(url, actor="t") as reg:
        for _what, call in writes(reg):
            with pytest.raises(RegistryUnavailable) as info:
                call()
            assert_unavailable(info.value, hint)
        assert reg.check().ok  # reads work
    assert raw_dump(owner) == before
    assert_cli_exit_3(url, hint, "test", "record", "m1", "--passed")
    # Creating a registry where the role may not create tables: exit 3 too, no traceback.
    with pytest.raises(RegistryUnavailable) as info:
        Registry.init(url=make_url(POSTGRES_URL).set(username=role).render_as_string(
            hide_password=False))
    assert_unavailable(info.value, hint)


def test_mariadb_user_that_may_only_read(tmp_path: Path) -> None:
    admin = create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    db, user = f"e_{uuid.uuid4().hex[:12]}", f"chainml_t{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {db} CHARACTER SET utf8mb4"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _unreachable("mysql", e)
    try:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"CREATE USER '{user}'@'{host}'"))
                conn.execute(text(f"GRANT SELECT ON {db}.* TO '{user}'@'{host}'"))
        owner = make_url(MYSQL_URL).set(database=db).render_as_string(hide_password=False)
        with Registry.init(url=owner, actor="t") as reg:
            small_chain(reg)
        before = raw_dump(owner)
        url = make_url(owner).set(username=user, password=None).render_as_string(
            hide_password=False)
        with Registry(url, actor="t") as reg:
            for _what, call in writes(reg):
                with pytest.raises(RegistryUnavailable) as info:
                    call()
                assert_unavailable(info.value, NO_PRIVILEGE)
            assert reg.check().ok
        assert raw_dump(owner) == before
    finally:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
            conn.execute(text(f"DROP DATABASE IF EXISTS {db}"))
        admin.dispose()


# ---- disk full ------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (we run as root in CI); skipped where mounting is not permitted."""
    where = tmp_path / "tiny"
    where.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not root'}); "
                    "the disk-full case needs it")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=IN_CI)


def test_disk_full(tiny_disk: Path) -> None:
    url = f"sqlite:///{tiny_disk / 'registry.db'}"
    with Registry.init(url=url, actor="t") as reg:
        small_chain(reg)
        before = raw_dump(url)
        # About 1.5 MB of rows: more than the disk holds.
        nodes = ["{name: events, kind: source, version: '2'}"] + [
            f"{{name: n{i}, kind: model, version: '1', inputs: [feats], "
            f"description: '{'d' * 200}'}}" for i in range(5000)]
        with pytest.raises(RegistryUnavailable) as info:
            reg.apply_text(chain_file(*nodes), "big.yaml")
        assert_unavailable(info.value, FULL)
        assert raw_dump(url) == before
        assert reg.check().ok  # reads still work on the full disk
        free = shutil.disk_usage(tiny_disk).free
    assert_cli_exit_3(url, FULL, "apply", _write(tiny_disk.parent / "big.yaml", nodes))
    assert cli_run(url, "check").exit_code == 0
    assert free < 1024 * 1024


def _write(path: Path, nodes: list[str]) -> str:
    path.write_text(chain_file(*nodes))
    return str(path)


# ---- locked SQLite --------------------------------------------------------------------------


def test_locked_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "registry.db"
    url = f"sqlite:///{path}"
    with Registry.init(url=url, actor="t") as reg:
        small_chain(reg)
    before = raw_dump(url)
    monkeypatch.setenv(dbe.ENV_BUSY_TIMEOUT, "0.3")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with Registry(url, actor="t") as reg:
            for what, call in writes(reg):
                started = time.monotonic()
                with pytest.raises(RegistryUnavailable) as info:
                    call()
                assert_unavailable(info.value, LOCKED)
                assert 0.25 < time.monotonic() - started < 10, what
            assert reg.check().ok  # WAL: readers are not blocked by a writer
        assert_cli_exit_3(url, LOCKED, "register", "source", "events", "--version", "9",
                          CHAINML_SQLITE_BUSY_TIMEOUT="0.3")
        assert cli_run(url, "check").exit_code == 0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert raw_dump(url) == before
    with Registry(url, actor="t") as reg:  # the lock is gone: writes work again
        assert reg.register(kind="source", name="events", version="2").created_version


def test_a_writer_waits_for_the_lock_within_the_busy_timeout(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "registry.db"
    url = f"sqlite:///{path}"
    with Registry.init(url=url, actor="t") as reg:
        small_chain(reg)
    monkeypatch.setenv(dbe.ENV_BUSY_TIMEOUT, "20")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(0.5, lambda: holder.execute("ROLLBACK"))
    release.start()
    try:
        started = time.monotonic()
        with Registry(url, actor="t") as reg:
            assert reg.register(kind="source", name="events", version="2").created_version
        assert time.monotonic() - started >= 0.4
    finally:
        release.join()
        holder.close()


def test_busy_timeout_setting() -> None:
    assert dbe.DEFAULT_BUSY_TIMEOUT == 30
    for bad in ("soon", "-1", "nan", "1e9"):
        os.environ[dbe.ENV_BUSY_TIMEOUT] = bad
        try:
            with pytest.raises(InvalidInput, match="CHAINML_SQLITE_BUSY_TIMEOUT"):
                dbe.sqlite_busy_timeout()
        finally:
            del os.environ[dbe.ENV_BUSY_TIMEOUT]
    assert dbe.sqlite_busy_timeout() == 30


# ---- conflicts the database asks to retry ---------------------------------------------------


def _serialization_failure(url: str) -> None:
    """Provoke a real 40001: update the write-lock row another transaction changed since
    this REPEATABLE READ transaction took its snapshot."""
    eng = create_engine(dbe.parse_url(url))
    try:
        with eng.connect() as a, eng.connect() as b:
            a = a.execution_options(isolation_level="REPEATABLE READ")
            a.execute(text("SELECT counter FROM write_lock")).all()
            b.execute(text("UPDATE write_lock SET counter = counter + 1"))
            b.commit()
            a.execute(text("UPDATE write_lock SET counter = counter + 1"))
    finally:
        eng.dispose()


def test_serialization_failures_are_retried(pg_schema: tuple[str, Any]) -> None:
    schema, _ = pg_schema
    url = pg_url(schema)
    Registry.init(url=url).close()
    attempts: list[int] = []

    @dbe.retrying
    def write(fail_times: int) -> str:
        attempts.append(1)
        with dbe.translate_errors(url):
            if len(attempts) <= fail_times:
                _serialization_failure(url)
        return "written"

    assert write(2) == "written" and len(attempts) == 3
    attempts.clear()
    with pytest.raises(dbe.WriteConflict) as info:
        write(99)
    assert len(attempts) == dbe.RETRY_ATTEMPTS
    assert_unavailable(info.value, "another writer conflicted with this one and nothing was "
                       "written, so run the command again.")


def test_mariadb_deadlocks_ask_for_a_retry() -> None:
    admin = create_engine(MYSQL_URL)
    table = f"dl_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"))
            conn.execute(text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _unreachable("mysql", e)
    errors: list[BaseException] = []
    try:
        with admin.connect() as a, admin.connect() as b:
            a.execute(text(f"UPDATE {table} SET v = 1 WHERE id = 1"))
            b.execute(text(f"UPDATE {table} SET v = 1 WHERE id = 2"))

            def cross() -> None:
                try:
                    b.execute(text(f"UPDATE {table} SET v = 2 WHERE id = 1"))
                except Exception as e:  # noqa: BLE001 - collected
                    errors.append(e)

            t = threading.Thread(target=cross)
            t.start()
            time.sleep(0.3)
            try:
                a.execute(text(f"UPDATE {table} SET v = 2 WHERE id = 2"))
            except Exception as e:  # noqa: BLE001 - collected
                errors.append(e)
            t.join()
            a.rollback()
            b.rollback()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP TABLE {table}"))
        admin.dispose()
    assert len(errors) == 1 and dbe.asks_for_retry(errors[0]), errors


def test_a_serializable_server_default_changes_nothing(pg_schema: tuple[str, Any],
                                                       tmp_path: Path) -> None:
    """Writers queue on the write-lock row; under SERIALIZABLE the queued writer would
    fail with 40001. chainml pins READ COMMITTED, so 4 concurrent writers all succeed."""
    from tests.test_concurrency import stress

    schema, _ = pg_schema
    url = make_url(pg_url(schema)).update_query_dict({
        "options": f"-csearch_path={schema} -cdefault_transaction_isolation=serializable"})
    stress(url.render_as_string(hide_password=False), tmp_path, 4, 15)


# ---- a registry that is not there ----------------------------------------------------------


READERS = [["list"], ["status"], ["check"], ["impact", "x"], ["show", "x"], ["log"],
           ["graph", "--format", "dot", "-o", "-"], ["db", "current"], ["db", "upgrade"],
           ["register", "source", "x", "--version", "1"]]


def test_a_missing_sqlite_file_is_never_created(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Only init creates a registry: any other command, and the Python API, on a SQLite path
    that does not exist says so (exit 3, naming init) and leaves no file behind."""
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///relative.db"
    for args in READERS:
        result = cli_run(url, *args)
        assert result.exit_code == 3, (args, result.output)
        assert result.stderr == (
            f"Error: There is no registry at {url}: the file {tmp_path / 'relative.db'} does "
            f"not exist; check the path, or create one with 'chainml init --db {url}'.\n"), args
        assert list(tmp_path.iterdir()) == [], args
    with pytest.raises(RegistryUnavailable, match="does not exist"):
        Registry(url)
    assert list(tmp_path.iterdir()) == []
    assert cli_run(url, "init").exit_code == 0
    assert cli_run(url, "list").exit_code == 0


def test_init_names_a_missing_folder_and_creates_only_chainml(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no" / "such"
    result = cli_run(f"sqlite:///{missing}/r.db", "init")
    assert result.exit_code == 2
    assert result.stderr == (f"Error: Cannot create the registry at sqlite:///{missing}/r.db: "
                             f"the folder {missing} does not exist; create it first or choose "
                             "another path.\n")
    assert not (tmp_path / "no").exists()
    with pytest.raises(InvalidInput, match="does not exist"):
        Registry.init(url=f"sqlite:///{missing}/r.db")
    # The default registry's own folder is made for you.
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["init"], env={"CHAINML_DATABASE_URL": None})
    assert result.exit_code == 0 and (tmp_path / ".chainml" / "registry.db").is_file()


def test_init_below_another_registry_warns_that_it_hides_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = tmp_path / ".chainml" / "registry.db"
    Registry.init(tmp_path).close()
    inner = tmp_path / "team" / "project"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    env = {"CHAINML_DATABASE_URL": None}
    result = CliRunner().invoke(cli, ["init"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Registry ready at sqlite:///{inner}/.chainml/registry.db\n"
    assert result.stderr == (
        f"Warning: this registry hides {outer} from the commands run in {inner} and below "
        "(chainml uses the nearest .chainml/, as git does with .git); remove ./.chainml to "
        "use that one again.\n")
    # Once made, running init again (an upgrade) has nothing new to say.
    again = CliRunner().invoke(cli, ["init"], env=env)
    assert again.exit_code == 0 and again.stderr == ""
    assert Registry.init(tmp_path / "elsewhere").shadows == outer
    assert Registry.init(inner).shadows is None


def test_psycopg2_urls_use_psycopg(pg_schema: tuple[str, Any]) -> None:
    """A postgresql+psycopg2 URL (what other tools hand out) reaches the same database
    through psycopg 3, the driver chainml ships, on both read paths."""
    schema, _ = pg_schema
    url = pg_url(schema).replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)
    assert url.startswith("postgresql+psycopg2://")
    assert dbe.parse_url(url).drivername == "postgresql+psycopg"
    assert cli_run(url, "init").exit_code == 0
    for args in (["register", "source", "events", "--version", "1"],
                 ["register", "model", "scorer", "--version", "1", "--input", "events"]):
        result = cli_run(url, *args)
        assert result.exit_code == 0, result.output
    for args in (["list", "--json"], ["status", "--json"]):  # SQLAlchemy's path; the direct one
        result = cli_run(url, *args)
        assert result.exit_code == 0 and "scorer" in result.stdout, result.output
