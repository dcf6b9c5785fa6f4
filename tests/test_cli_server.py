"""``chainml token`` and ``chainml serve`` on the command line: tokens printed once and
never listed, the refusals that keep a server safe, and a real server process (uvicorn)
answering on SQLite, and with two workers on PostgreSQL."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chainml.registry import Registry
from tests.chains import build_example
from tests.clirun import dump, error_line, ok, ok_json, run
from tests.serving import get, serving, stop


def test_a_token_is_printed_once_and_never_listed(database_url: str) -> None:
    Registry.init(url=database_url).close()
    made = ok_json(database_url, "token", "create", "ci", "--scope", "write", "--json")
    assert made["token"].startswith("cml_") and made["scope"] == "write"
    listed = ok(database_url, "token", "list", "--json").stdout
    assert made["token"] not in listed and json.loads(listed)[0]["state"] == "active"
    plain = run(database_url, "token", "create", "reader", "--expires", "never")
    assert plain.exit_code == 0 and "shown once" in plain.stderr
    assert plain.stdout.strip().startswith("cml_")  # the token alone on stdout
    ok(database_url, "token", "revoke", "ci")
    assert ok_json(database_url, "token", "list", "--json")[0]["state"] == "revoked"
    assert [e["action"] for e in ok_json(database_url, "log", "--json")][-3:] == [
        "token.created", "token.created", "token.revoked"]


def test_token_refusals_are_one_sentence_and_change_nothing(database_url: str) -> None:
    Registry.init(url=database_url).close()
    ok(database_url, "token", "create", "ci", "--json")
    before = dump(database_url)
    for args, words in ((("create", "ci"), "is taken"), (("create", "CI"), "only in case"),
                        (("create", "x y"), "token name"),
                        (("create", "t", "--expires", "soon"), "expiry"),
                        (("revoke", "nope"), "No token named 'nope'")):
        result = run(database_url, "token", *args)
        assert result.exit_code == 2 and words in error_line(result), (args, result.output)
    assert dump(database_url) == before


def test_serve_refuses_what_would_be_unsafe(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    Registry.init(url=url).close()
    result = run(url, "serve", "--host", "0.0.0.0", "--allow-anonymous-writes")
    assert result.exit_code == 2 and "without tokens for writes is refused" in \
        error_line(result)
    result = run(url, "serve", "--workers", "2")
    assert result.exit_code == 2 and "Several workers need PostgreSQL" in error_line(result)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_a_real_server_answers(database_url: str) -> None:
    reg = Registry.init(url=database_url)
    build_example(reg)
    token = reg.token_create("ci", scope="write").token
    reg.close()
    workers = ["--workers", "2"] if database_url.startswith("postgresql") else []
    proc = serving(database_url, *workers)
    try:
        base = proc.base  # type: ignore[attr-defined]
        assert get(base + "/readyz")[0] == 200
        code, body = get(base + "/api/v1/nodes/ranker")
        assert code == 200 and json.loads(body)["name"] == "ranker"
        request = urllib.request.Request(base + "/api/v1/runs", method="POST",
                                         data=json.dumps({"node": "ranker",
                                                          "passed": True}).encode(),
                                         headers={"Authorization": f"Bearer {token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201
    finally:
        log = stop(proc)
    assert token not in log and "Traceback" not in log


def test_a_served_process_tunes_its_garbage_collector(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """uvicorn's workers build the app with ``app_from_env``: the collector's thresholds
    are then the server's (docs/performance.md), the start-up objects frozen."""
    import gc

    from chainml.server.main import GC_THRESHOLDS, app_from_env

    Registry.init(tmp_path)
    monkeypatch.setenv("CHAINML_DATABASE_URL", f"sqlite:///{tmp_path}/.chainml/registry.db")
    before = gc.get_threshold()
    try:
        app = app_from_env()
        assert app.state.registry is not None
        assert gc.get_threshold() == GC_THRESHOLDS != before
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
