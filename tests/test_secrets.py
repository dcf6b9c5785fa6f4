"""No password or other credential from a database URL in any message, log line or
exception text.

Through the Python API (the exception's text, args, repr, the printed traceback and every
exception chained to it) and through the real command line (stdout and stderr of a
separate process, the URL given by --db and by CHAINML_DATABASE_URL): a server that is
not there, a real PostgreSQL (which trusts 127.0.0.1, so a wrong password still gets in
and the message is about the empty database), a role that may not create tables, and a
real MariaDB user whose password is wrong. Credentials in the query string
(``?password=``, ``?sslpassword=``, PyMySQL's ``?passwd=``, in any case) and in key=value
DSNs are hidden as the userinfo password is: ``failures.redact_text`` on a table of URLs,
and the real command line against SQLite, PostgreSQL and MariaDB URLs that fail.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from chainml.db import failures
from chainml.db.engine import parse_url, redact
from chainml.db.engine import unavailable as engine_unavailable
from chainml.errors import ChainmlError, InvalidInput, RegistryUnavailable
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


def cli_results(url: str, commands: list[list[str]] = FEW, *, parallel: bool = False,
                cwd: Path | None = None) -> list[tuple[int, str]]:
    """The commands as real processes, the URL given by --db and by the environment in
    turn; the exit code and stdout and stderr of each (run at once when ``parallel``)."""
    env = {**os.environ, "CHAINML_ACTOR": "secrets"}
    env.pop("CHAINML_DEBUG", None)
    env.pop("CHAINML_DATABASE_URL", None)

    def one(i: int, args: list[str]) -> tuple[int, str]:
        if i % 2:
            argv, run_env = [CHAINML, *args], {**env, "CHAINML_DATABASE_URL": url}
        else:
            argv, run_env = [CHAINML, "--db", url, *args], env
        done = subprocess.run(argv, env=run_env, capture_output=True, text=True, timeout=120,
                              cwd=cwd)
        assert "Traceback" not in done.stderr and "Internal error" not in done.stderr, \
            done.stderr
        return done.returncode, done.stdout + done.stderr

    if not parallel:
        return [one(i, args) for i, args in enumerate(commands)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(one, range(len(commands)), commands))


def cli_attempts(url: str, commands: list[list[str]] = FEW) -> list[str]:
    """The commands as real processes (``cli_results``); stdout and stderr of each."""
    return [out for _, out in cli_results(url, commands)]


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


# --- Credentials in the query string and in key=value DSNs ---------------------------

SECRET = "S3cretXYZ"
NO_DB = "chainml_no_such_db"  # the real servers answer, and refuse this database

# URL (or text) -> what a message shows of it.
REDACTED = [
    (f"postgresql://u:{SECRET}@h:5432/db", "postgresql://u:***@h:5432/db"),
    (f"postgresql://u@h/db?password={SECRET}", "postgresql://u@h/db?password=***"),
    (f"postgresql://u@h/db?sslmode=require&sslpassword={SECRET}&sslkey=/etc/k.pem",
     "postgresql://u@h/db?sslmode=require&sslpassword=***&sslkey=/etc/k.pem"),
    (f"mysql+pymysql://root@h/db?passwd={SECRET}&charset=utf8mb4",
     "mysql+pymysql://root@h/db?passwd=***&charset=utf8mb4"),
    (f"mariadb://root@h/db?PassWord={SECRET}", "mariadb://root@h/db?PassWord=***"),
    (f"postgresql://h/db?PASSWD={SECRET}&Pwd={SECRET}", "postgresql://h/db?PASSWD=***&Pwd=***"),
    (f"postgresql:///db?host=127.0.0.1&port=5432&password={SECRET}",
     "postgresql:///db?host=127.0.0.1&port=5432&password=***"),
    (f"postgresql://u:{SECRET}@h/db?password={SECRET}", "postgresql://u:***@h/db?password=***"),
    (f"postgresql://u:{SECRET}%40%2F@h/db", "postgresql://u:***@h/db"),
    (f"postgresql://u:{SECRET}@x@h/db", "postgresql://u:***@h/db"),  # an unescaped '@'
    (f"postgresql://u:{SECRET}/x@h/db", "postgresql://***@h/db"),  # an unescaped '/'
    (f"postgresql://u@h/db?password={SECRET}%26%3D", "postgresql://u@h/db?password=***"),
    (f"postgresql://u@h/db?pass%77ord={SECRET}", "postgresql://u@h/db?pass%77ord=***"),
    (f"sqlite:////tmp/r.db?password={SECRET}", "sqlite:////tmp/r.db?password=***"),
    ("sqlite:////tmp/a:b@c/r.db", "sqlite:////tmp/a:b@c/r.db"),  # a path, no userinfo
    (f"x://u@h/db?token={SECRET}&api_key=K1&apikey=K2&key=K3&auth=K4&access_token=K5"
     f"&aws_secret_access_key=K6&pwd=K7&pass=K8&secret=K9&client_secret=KA&auth_token=KB",
     "x://u@h/db?token=***&api_key=***&apikey=***&key=***&auth=***&access_token=***"
     "&aws_secret_access_key=***&pwd=***&pass=***&secret=***&client_secret=***"
     "&auth_token=***"),
    # Paths and plain options stay: sslkey is a file, passfile too; 'monkey' is not 'key'.
    ("postgresql://u@h/db?passfile=/home/u/.pgpass&sslcert=/c.pem&sslkey=/k.pem"
     "&sslrootcert=/r.pem&keepalives=1&monkey=1&authentication=x&options=-cjit%3Doff",
     "postgresql://u@h/db?passfile=/home/u/.pgpass&sslcert=/c.pem&sslkey=/k.pem"
     "&sslrootcert=/r.pem&keepalives=1&monkey=1&authentication=x&options=-cjit%3Doff"),
    ("postgresql://u@h/db?password=", "postgresql://u@h/db?password="),
    # key=value DSNs (libpq, ODBC) and malformed URLs.
    (f"host=127.0.0.1 port=5432 password={SECRET} dbname=x",
     "host=127.0.0.1 port=5432 password=*** dbname=x"),
    (f"host=h password = '{SECRET} \\' x' user=u", "host=h password = *** user=u"),
    (f"Driver=x;UID=u;PWD={SECRET};Server=h", "Driver=x;UID=u;PWD=***;Server=h"),
    (f"postgresql:/u:{SECRET}@h/db", "postgresql:/u:***@h/db"),
    (f"u:{SECRET}@h/db", "u:***@h/db"),
    # A driver's message with a URL or DSN in it.
    (f"cannot reach postgresql://u:{SECRET}@h/db?token={SECRET}&x=1 now",
     "cannot reach postgresql://u:***@h/db?token=***&x=1 now"),
    (f'could not connect with "host=h sslpassword={SECRET}": refused',
     'could not connect with "host=h sslpassword=***": refused'),
    # Nothing to hide.
    ("Access denied for user 'root'@'127.0.0.1' (using password: YES)",
     "Access denied for user 'root'@'127.0.0.1' (using password: YES)"),
    ("notaurl", "notaurl"),
    ("postgresql://u@h:5432/db?sslmode=require", "postgresql://u@h:5432/db?sslmode=require"),
]


@pytest.mark.parametrize(("url", "shown"), REDACTED)
def test_redact_text(url: str, shown: str) -> None:
    assert failures.redact_text(url) == shown
    assert failures.redact_text(shown) == shown  # hiding twice changes nothing
    for secret in failures.secret_values(url):
        assert secret not in failures.redact_text(f"echo: {secret}.", url)


@pytest.mark.parametrize("name", ["password", "PassWord", "PASSWD", "pwd", "pass", "passphrase",
                                  "sslpassword", "sslkeypassword", "secret", "client_secret",
                                  "token", "access_token", "auth_token", "api_key", "apikey",
                                  "key", "Key", "auth", "aws_secret_access_key",
                                  "aws_session_token", "credentials", "pass%77ord"])
def test_secret_names(name: str) -> None:
    assert failures.secret_name(name)


@pytest.mark.parametrize("name", ["sslkey", "ssl_key", "sslcert", "sslrootcert", "passfile",
                                  "private_key_file", "host", "user", "username", "port",
                                  "dbname", "sslmode", "options", "monkey", "keepalives",
                                  "authentication", "auth_plugin", "charset"])
def test_not_secret_names(name: str) -> None:
    assert not failures.secret_name(name)


@pytest.mark.parametrize("url", [f"postgresql://u@h/db?password={SECRET}",
                                 f"mysql+pymysql://root@h/db?passwd={SECRET}",
                                 f"postgresql://u:{SECRET}@h/db?sslpassword={SECRET}",
                                 f"mariadb://root@h/db?PassWord={SECRET}"])
def test_engine_redact_hides_query_secrets(url: str) -> None:
    for shown in (redact(url), redact(parse_url(url))):
        assert SECRET not in shown and "***" in shown


def test_a_driver_message_that_echoes_a_secret() -> None:
    """Drivers sometimes echo the connection string: each secret of the real URL is
    removed from their message wherever it appears, as written and decoded."""
    url = f"postgresql://u:Pw0rd%21@127.0.0.1:1/db?sslpassword={SECRET}&token=T%2Bk"
    echo = (f'missing "=" after "{SECRET}" in connection info string; password Pw0rd! '
            f"(Pw0rd%21) and token T+k rejected")
    for error in (failures.unavailable(redact(url), Exception(echo), url),
                  engine_unavailable(parse_url(url), Exception(echo))):
        assert isinstance(error, RegistryUnavailable)
        assert_no_secret(exception_text(error), SECRET, "Pw0rd!", "Pw0rd%21", "T+k")
        assert "sslpassword=***" in str(error)
    # The URL given as where unredacted is hidden too.
    error = failures.unavailable(url, Exception("refused"))
    assert_no_secret(str(error), SECRET, "Pw0rd")


def test_registry_url_hides_query_secrets(tmp_path: Path) -> None:
    with warnings.catch_warnings():  # pysqlite ignores the parameter, and says so
        warnings.simplefilter("ignore")
        reg = Registry(f"sqlite:///{tmp_path / 'r.db'}?password={SECRET}", check_schema=False)
    try:
        assert reg.url == f"sqlite:///{tmp_path / 'r.db'}?password=***"
    finally:
        reg.close()
    reg = Registry(f"postgresql://u:{SECRET}@127.0.0.1:1/x?sslpassword={SECRET}",
                   check_schema=False)
    try:
        assert reg.url == "postgresql+psycopg://u:***@127.0.0.1:1/x?sslpassword=***"
    finally:
        reg.close()


def _server(backend: str) -> tuple[str, str]:
    """(user, host:port) of the real test server, skipped (failed under CI) when it is not
    there."""
    url = make_url(POSTGRES_URL if backend == "postgresql" else MYSQL_URL)
    admin = create_engine(url)
    try:
        with admin.connect():
            pass
    except Exception as e:  # noqa: BLE001 - any failure to reach the server
        _unreachable(backend, e)
    finally:
        admin.dispose()
    return str(url.username), f"{url.host}:{url.port}"


CLI_COMMANDS = [["status"], ["init"], ["db", "current"],
                ["register", "source", "s", "--version", "1"]]


def _cli_cases(backend: str, tmp_path: Path) -> list[tuple[str, int]]:
    """(URL that fails, its exit code) for ``backend``; never a database that works, so no
    command may create a registry anywhere."""
    if backend == "sqlite":
        missing = tmp_path / "no" / "such" / "folder"
        return [(f"sqlite:///{missing}/r.db?password={SECRET}", 3),
                (f"sqlite:///{missing}/r.db?PassWord={SECRET}", 3),
                (f"sqlite:///{missing}/r.db?sslpassword={SECRET}&token={SECRET}", 3)]
    user, server = _server(backend)
    if backend == "postgresql":
        return [(f"postgresql://{user}@{server}/{NO_DB}?password={SECRET}", 3),
                (f"postgresql+psycopg://{user}@{server}/{NO_DB}?sslpassword={SECRET}", 3),
                (f"postgresql://{user}:{SECRET}@{server}/{NO_DB}", 3),
                (f"postgresql://{user}@127.0.0.1:1/{NO_DB}?password={SECRET}", 3),
                (f"postgresql:///{NO_DB}?host={server.replace(':', '&port=')}"
                 f"&password={SECRET}", 3),
                (f"postgresql://{user}@{server}/{NO_DB}?PassWord={SECRET}", 2)]
    return [(f"mysql+pymysql://{user}@{server}/{NO_DB}?passwd={SECRET}", 3),
            (f"mysql+pymysql://{user}@{server}/{NO_DB}?password={SECRET}", 3),
            (f"mariadb://{user}:{SECRET}@{server}/{NO_DB}", 3),
            (f"mysql://{user}@127.0.0.1:1/{NO_DB}?passwd={SECRET}", 3),
            (f"mysql+pymysql://{user}@{server}/{NO_DB}?PassWord={SECRET}", 2)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_query_string_secrets_cli(backend: str, tmp_path: Path) -> None:
    """Every command that fails to reach the registry: exit 3 (2 for an option the driver
    does not know), one error line, the secret nowhere in stdout or stderr."""
    for url, code in _cli_cases(backend, tmp_path):
        results = cli_results(url, CLI_COMMANDS, parallel=True, cwd=tmp_path)
        for command, (exit_code, out) in zip(CLI_COMMANDS, results, strict=True):
            # init into a folder that does not exist is bad input: it names the folder.
            missing_folder = backend == "sqlite" and command == ["init"]
            assert exit_code == (2 if missing_folder else code), (url, out)
            assert_no_secret(out, SECRET)
            assert "***" in out and "Error: " in out, out
            if code == 2:
                assert "does not know" in out, out
            if missing_folder:
                assert "the folder" in out and "does not exist" in out, out
    assert not (tmp_path / ".chainml").exists()


@pytest.mark.parametrize(("url", "code"), [
    (f"postgresql://u@[::1/x?password={SECRET}", 2),
    (f"host=127.0.0.1 port=5432 password={SECRET} dbname=x", 2),
    (f"postgresql:/u:{SECRET}@127.0.0.1/x", 2),
    (f"nosuch://u@h/x?token={SECRET}", 2),
    (f"postgresql://u@127.0.0.1:notaport/x?password={SECRET}", None),  # 2 or 3
])
def test_malformed_urls_with_query_secrets_cli(url: str, code: int | None,
                                               tmp_path: Path) -> None:
    for exit_code, out in cli_results(url, CLI_COMMANDS, parallel=True, cwd=tmp_path):
        assert exit_code == code if code else exit_code in (2, 3), (url, out)
        assert_no_secret(out, SECRET)
        assert "***" in out, out


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mysql"])
def test_query_string_secrets_api(backend: str, tmp_path: Path,
                                  captured_logs: pytest.LogCaptureFixture) -> None:
    """The same URLs through the Python API: no secret in the exception (text, args,
    traceback, chained exceptions) nor in any log record."""
    for url, code in _cli_cases(backend, tmp_path):
        with warnings.catch_warnings():  # pysqlite ignores the parameter, and says so
            warnings.simplefilter("ignore")
            texts = api_attempts(url)
            with pytest.raises(InvalidInput if code == 2 else RegistryUnavailable):
                Registry(url)
        assert len(texts) == 3, url
        for t in texts:
            assert_no_secret(t, SECRET)
            assert "***" in t, t
    assert_no_secret(captured_logs.text, SECRET)


def test_a_working_sqlite_registry_with_a_query_password(tmp_path: Path) -> None:
    """``init`` names the registry it made and ``db current`` reports on it: the query
    string's password shows as ***."""
    url = f"sqlite:///{tmp_path / 'r.db'}?password={SECRET}"
    results = cli_results(url, [["init"], ["db", "current"], ["db", "current", "--json"]],
                          cwd=tmp_path)
    assert [code for code, _ in results] == [0, 0, 0], results
    assert f"Registry ready at sqlite:///{tmp_path / 'r.db'}?password=***" in results[0][1]
    for _, out in results:
        assert_no_secret(out, SECRET)
