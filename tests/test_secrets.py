"""No password from a database URL in any message, log line or exception text.

Through the Python API (the exception's text, args, repr, the printed traceback and every
exception chained to it) and through the real command line (stdout and stderr of a
separate process, the URL given by --db and by CHAINML_DATABASE_URL): a server that is
not there, a real PostgreSQL (which trusts 127.0.0.1, so a wrong password still gets in
and the message is about the empty database), a role that may not create tables, and a
real MariaDB user whose password is wrong.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chainml.errors import ChainmlError
from chainml.registry import Registry
from tests.conftest import MYSQL_URL, POSTGRES_URL, _unreachable

PASSWORD = "s3cret-PW"
ODD_PASSWORD = "s3cret-PW@x/y:z%"  # characters a URL must escape
CHAINML = str(Path(sys.executable).with_name("chainml"))
COMMANDS = [["status"], ["check", "--format", "json"], ["init"], ["db", "upgrade"],
            ["register", "source", "s", "--version", "1"], ["show", "s"]]
FEW = [["init"], ["register", "source", "s", "--version", "1"], ["status"]]


def with_password(url: str, user: str, password: str = PASSWORD) -> str:
    """``url`` with this user and password (escaped as a URL must)."""
    base = make_url(url)
    netloc = f"{user}:{quote(password, safe='')}@{base.host}:{base.port}"
    query = f"?{base.render_as_string().split('?', 1)[1]}" if base.query else ""
    return f"{base.drivername}://{netloc}/{base.database or ''}{query}"


def exception_text(error: BaseException) -> str:
    """Everything a log handler, debugger or error tracker could show of ``error``."""
    parts = [str(error), repr(error), repr(error.args),
             "".join(traceback.format_exception(error))]
    seen = set()
    chained: BaseException | None = error
    while chained is not None and id(chained) not in seen:  # suppressed context too
        seen.add(id(chained))
        parts += [str(chained), repr(chained)]
        chained = chained.__cause__ or chained.__context__
    return "\n".join(parts)


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in {PASSWORD, *secrets}:
        assert secret not in text, text
        assert quote(secret, safe="") not in text, text


def api_attempts(url: str) -> list[str]:
    """Open, create and use a registry at ``url``; the text of every error."""
    texts = []
    for attempt in (lambda: Registry(url), lambda: Registry.init(url=url),
                    lambda: Registry(url).status()):
        try:
            attempt()
        except ChainmlError as e:
            assert e.exit_code in (2, 3), e
            texts.append(exception_text(e))
    return texts


def cli_attempts(url: str, commands: list[list[str]] = FEW) -> list[str]:
    """The commands as real processes, the URL given by --db and by the environment in
    turn; stdout and stderr of each."""
    out = []
    env = {**os.environ, "CHAINML_ACTOR": "secrets"}
    env.pop("CHAINML_DEBUG", None)
    env.pop("CHAINML_DATABASE_URL", None)
    for i, args in enumerate(commands):
        if i % 2:
            argv, run_env = [CHAINML, *args], {**env, "CHAINML_DATABASE_URL": url}
        else:
            argv, run_env = [CHAINML, "--db", url, *args], env
        done = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in done.stderr and "Internal error" not in done.stderr, \
            done.stderr
        out.append(done.stdout + done.stderr)
    return out


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every library, at every level (SQLAlchemy's included)."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    try:
        yield caplog
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.mark.parametrize("password", [PASSWORD, ODD_PASSWORD])
@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg", "mysql",
                                    "mysql+pymysql"])
def test_unreachable_server_api(scheme: str, password: str,
                                captured_logs: pytest.LogCaptureFixture) -> None:
    url = f"{scheme}://u:{quote(password, safe='')}@127.0.0.1:1/x"
    texts = api_attempts(url)
    assert len(texts) == 3
    for t in texts:
        assert "***" in t
        assert_no_secret(t, password)
    assert_no_secret(captured_logs.text, password)


def test_unreachable_server_cli() -> None:
    for text_ in cli_attempts(f"postgresql://chainml:{PASSWORD}@127.0.0.1:1/x", COMMANDS):
        assert_no_secret(text_)
        assert "***" in text_ or "Usage" in text_, text_


def test_malformed_urls_with_a_password() -> None:
    for url in (f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/x",
                f"postgresql://u:{PASSWORD}@[::1/x", f"nosuch://u:{PASSWORD}@h/x",
                f"postgresql://u:{PASSWORD}@127.0.0.1:1/x?sslmode=bogus",
                f"postgresql://u:{PASSWORD}@127.0.0.1:1/x?options=-cstatement_timeout%3D1",
                f"sqlite:///{PASSWORD}/nowhere/registry.db".replace(PASSWORD, "p")):
        for t in api_attempts(url):
            assert_no_secret(t)


@pytest.fixture
def pg_role_with_password() -> Iterator[str]:
    """A login role with a password and no privileges on the test database."""
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    role = f"chainml_pw{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'right-PW-{role}'"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _unreachable("postgresql", e)
    try:
        yield role
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP OWNED BY {role}"))
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()


def test_real_postgresql_with_a_wrong_password(pg_role_with_password: str,
                                              captured_logs: pytest.LogCaptureFixture
                                              ) -> None:
    url = with_password(POSTGRES_URL, pg_role_with_password)
    texts = api_attempts(url) + cli_attempts(url)
    assert any("Cannot use the registry at" in t or "not a chainml registry" in t
               for t in texts)
    for t in texts:
        assert_no_secret(t, f"right-PW-{pg_role_with_password}")
    assert_no_secret(captured_logs.text)


def test_real_mariadb_with_a_wrong_password(captured_logs: pytest.LogCaptureFixture) -> None:
    admin = create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    user = f"chainml_pw{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY 'right-PW'"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _unreachable("mysql", e)
    try:
        url = with_password(MYSQL_URL, user)
        texts = api_attempts(url) + cli_attempts(url)
        assert sum("Access denied" in t for t in texts) >= 3
        assert all("check the user name and password" in t for t in texts
                   if "Access denied" in t)
        for t in texts:
            assert_no_secret(t, "right-PW")
        assert_no_secret(captured_logs.text)
    finally:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
        admin.dispose()


def test_a_working_registry_never_prints_its_password(tmp_path: Path) -> None:
    """The password of a URL that works stays out of every normal output too."""
    admin = create_engine(MYSQL_URL, isolation_level="AUTOCOMMIT")
    user, db = f"chainml_pw{uuid.uuid4().hex[:8]}", f"s_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {db} CHARACTER SET utf8mb4"))
            for host in ("%", "localhost"):
                conn.execute(text(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY "
                                  f"'{PASSWORD}'"))
                conn.execute(text(f"GRANT ALL ON {db}.* TO '{user}'@'{host}'"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        admin.dispose()
        _unreachable("mysql", e)
    try:
        url = with_password(make_url(MYSQL_URL).set(database=db).render_as_string(
            hide_password=False), user)
        outputs = cli_attempts(url)
        assert any("Registry ready at" in o for o in outputs), outputs
        for o in outputs:
            assert_no_secret(o)
    finally:
        with admin.connect() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{user}'@'{host}'"))
            conn.execute(text(f"DROP DATABASE IF EXISTS {db}"))
        admin.dispose()
