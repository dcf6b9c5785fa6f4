"""What a hook may be and how its deliveries are retried, as pure functions.

Retries follow "exponential backoff and full jitter" (AWS Architecture Blog,
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/): the wait
before attempt n+1 is uniform in [0, min(cap, base * 2**(n-1))], which spreads the
retries of many receivers that failed at once.
"""

from __future__ import annotations

import difflib
import os
import random
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from chainml.errors import InvalidInput

EVENTS = ("mark.opened", "mark.closed", "run.recorded", "deploy.done", "check.changed")
FORMATS = ("json", "slack")
STATES = ("pending", "delivered", "dead")
DEFAULT_MAX_ATTEMPTS = 8
MAX_URL = 2000
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,199}")


def check_url(url: object) -> str:
    """An http(s) URL with a host, as given; else InvalidInput."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput("A hook needs a URL such as https://example.com/chainml.")
    if len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise InvalidInput(f"The hook URL {url[:60]!r} is over {MAX_URL} characters or "
                           "holds whitespace or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidInput(f"The hook URL {url[:60]!r} is not a valid URL.") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"A hook URL must start with http:// or https://, not "
                           f"{(parts.scheme or url[:20])!r}.")
    if not parts.hostname:
        raise InvalidInput(f"The hook URL {url[:60]!r} names no host.")
    return url


def check_events(events: object) -> list[str]:
    """The events, each known, without repeats, in the order of ``EVENTS``."""
    if isinstance(events, str):
        events = [events]
    if not isinstance(events, list | tuple) or not events:
        raise InvalidInput(f"A hook needs at least one --event: {', '.join(EVENTS)}.")
    for e in events:
        if e not in EVENTS:
            close = difflib.get_close_matches(str(e), EVENTS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else "."
            raise InvalidInput(f"Unknown event {str(e)[:60]!r}: use one of "
                               f"{', '.join(EVENTS)}{hint}")
    return [e for e in EVENTS if e in events]


def check_format(format: object) -> str:
    if format not in FORMATS:
        raise InvalidInput(f"A hook's format is one of {', '.join(FORMATS)}, not "
                           f"{str(format)[:40]!r}.")
    return str(format)


def check_secret_env(name: object) -> str | None:
    """The name of the environment variable holding the signing secret, which must be set
    (and not empty) now: a hook that could never sign is refused at once."""
    if name is None:
        return None
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
        raise InvalidInput(f"--secret-env takes the name of an environment variable (letters, "
                           f"digits, _), not {str(name)[:60]!r}.")
    if not os.environ.get(name):
        raise InvalidInput(f"The environment variable {name} is not set (or empty); export "
                           "the signing secret in it before adding the hook.")
    return name


def check_max_attempts(n: object) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 100:
        raise InvalidInput(f"--max-attempts must be a whole number from 1 to 100, not {n!r}.")
    return n


def check_state(state: object) -> str | None:
    if state is not None and state not in STATES:
        raise InvalidInput(f"A delivery's state is one of {', '.join(STATES)}, not "
                           f"{str(state)[:40]!r}.")
    return None if state is None else str(state)


def shown_url(url: str) -> str:
    """The URL for the history: without credentials or query string (a token in either
    stays out of ``log``)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...): full jitter."""
    ceiling = min(cap, base * 2 ** max(0, attempt - 1))
    return (rng or random).uniform(0, ceiling)


@dataclass(frozen=True)
class WorkerSettings:
    """How the worker sends: per-attempt timeout, the backoff's base and cap (seconds),
    how often it looks for due deliveries, how many it sends at once. From the
    environment (``from_env``): CHAINML_HOOK_TIMEOUT, CHAINML_HOOK_BACKOFF_BASE,
    CHAINML_HOOK_BACKOFF_CAP, CHAINML_HOOK_INTERVAL."""

    timeout: float = 10.0
    backoff_base: float = 30.0
    backoff_cap: float = 7200.0
    interval: float = 1.0
    batch: int = 8

    @property
    def lease(self) -> float:
        """How long a claimed delivery stays out of other workers' reach: longer than
        one attempt can take. A worker that dies leaves it due again after this."""
        return 2 * self.timeout + 5

    @classmethod
    def from_env(cls) -> WorkerSettings:
        def number(name: str, default: float) -> float:
            text = os.environ.get(name)
            if not text:
                return default
            try:
                value = float(text)
            except ValueError:
                raise InvalidInput(f"{name} must be a number of seconds, not {text!r}."
                                   ) from None
            if not 0 <= value <= 86400:
                raise InvalidInput(f"{name} must lie between 0 and 86400 seconds.")
            return value

        return cls(timeout=number("CHAINML_HOOK_TIMEOUT", cls.timeout) or cls.timeout,
                   backoff_base=number("CHAINML_HOOK_BACKOFF_BASE", cls.backoff_base),
                   backoff_cap=number("CHAINML_HOOK_BACKOFF_CAP", cls.backoff_cap),
                   interval=number("CHAINML_HOOK_INTERVAL", cls.interval) or cls.interval)
