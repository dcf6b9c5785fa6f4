"""The pure rules of webhooks: the signature, the backoff, what a hook may be, the
bodies. No database."""

from __future__ import annotations

import hashlib
import hmac
import random
from datetime import datetime

import pytest

from chainml.errors import InvalidInput
from chainml.hooks import formats, policy, signing


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"event":"mark.opened"}'
    want = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signing.sign("s3cret", 1700000000, body) == want
    assert signing.header("s3cret", 1700000000, body) == f"t=1700000000,v1={want}"


@pytest.mark.parametrize("change", ["body", "secret", "timestamp", "old", "garbled"])
def test_a_tampered_or_old_signature_fails(change: str) -> None:
    body, secret, now = b'{"a":1}', "k", 1_700_000_000
    value = signing.header(secret, now, body)
    assert signing.verify(secret, value, body, now=now + 10)
    if change == "body":
        assert not signing.verify(secret, value, b'{"a":2}', now=now)
    elif change == "secret":
        assert not signing.verify("other", value, body, now=now)
    elif change == "timestamp":
        assert not signing.verify(secret, value.replace(f"t={now}", f"t={now + 1}"), body,
                                  now=now)
    elif change == "old":
        assert not signing.verify(secret, value, body, tolerance=300, now=now + 301)
    else:
        assert not signing.verify(secret, "v1=abc", body, now=now)


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    rng = random.Random(7)
    for attempt, ceiling in ((1, 30), (2, 60), (3, 120), (8, 3840), (9, 7200), (30, 7200)):
        waits = [policy.backoff(attempt, 30, 7200, rng) for _ in range(500)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.9 and min(waits) < ceiling * 0.1  # the full range


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "example.com",
                                 "http://", "https://exa mple.com", "", "http://h:99999/",
                                 "javascript:alert(1)", "http://x/" + "a" * 2000])
def test_only_http_urls_with_a_host(url: str) -> None:
    with pytest.raises(InvalidInput):
        policy.check_url(url)


def test_good_urls_pass_as_given() -> None:
    for url in ("http://127.0.0.1:8080/hook", "https://hooks.slack.com/services/T/B/X",
                "HTTPS://Example.com/a?b=c"):
        assert policy.check_url(url) == url


def test_events_are_checked_with_a_suggestion() -> None:
    assert policy.check_events(["check.changed", "mark.opened", "mark.opened"]) == [
        "mark.opened", "check.changed"]
    with pytest.raises(InvalidInput, match="did you mean 'mark.opened'"):
        policy.check_events(["mark.open"])
    with pytest.raises(InvalidInput, match="at least one"):
        policy.check_events([])


def test_the_secret_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_SECRET", raising=False)
    with pytest.raises(InvalidInput, match="NOPE_SECRET is not set"):
        policy.check_secret_env("NOPE_SECRET")
    with pytest.raises(InvalidInput, match="name of an environment variable"):
        policy.check_secret_env("$X")
    monkeypatch.setenv("NOPE_SECRET", "x")
    assert policy.check_secret_env("NOPE_SECRET") == "NOPE_SECRET"


def test_the_history_shows_no_credentials_of_a_url() -> None:
    assert policy.shown_url("https://u:pw@h.example:8443/p?token=abc") == \
        "https://h.example:8443/p"


def test_worker_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHAINML_HOOK_TIMEOUT", "3")
    monkeypatch.setenv("CHAINML_HOOK_BACKOFF_BASE", "0.5")
    s = policy.WorkerSettings.from_env()
    assert (s.timeout, s.backoff_base, s.backoff_cap, s.lease) == (3, 0.5, 7200, 11)
    monkeypatch.setenv("CHAINML_HOOK_TIMEOUT", "soon")
    with pytest.raises(InvalidInput, match="CHAINML_HOOK_TIMEOUT must be a number"):
        policy.WorkerSettings.from_env()


def test_bodies() -> None:
    at = datetime(2026, 12, 1, 8, 0, 0)
    payload = {"count": 3, "marks": [{"node": "m", "cause": "raw", "path": ["raw", "m"]}],
               "truncated": True}
    json_body = formats.body("json", "u-1", "mark.opened", at, payload)
    assert json_body == (b'{"created_at":"2026-12-01T08:00:00Z","data":{"count":3,"marks":'
                         b'[{"cause":"raw","node":"m","path":["raw","m"]}],"truncated":true},'
                         b'"event":"mark.opened","id":"u-1"}')
    slack = formats.body("slack", "u-1", "mark.opened", at, payload)
    assert slack == b'{"text":"chainml: 3 retest mark(s) opened: m (cause raw) and 2 more"}'
    assert "gate fails: 2 node(s)" in formats.slack_text(
        "check.changed", {"ok": False, "failing": ["a", "b"], "failing_count": 2})
