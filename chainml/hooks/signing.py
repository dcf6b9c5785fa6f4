"""The signature a delivery carries, as pure functions.

``X-Chainml-Signature: t=<unix seconds>,v1=<hex>`` where hex is
HMAC-SHA256(secret, "<t>.<body>"), the scheme Stripe documents for its webhooks: the
timestamp inside the signed text lets a receiver refuse replays of old deliveries.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` under ``secret``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Chainml-Signature``."""
    return f"t={timestamp},v1={sign(secret, timestamp, body)}"


def verify(secret: str, value: str, body: bytes, tolerance: float = 300.0,
           now: float | None = None) -> bool:
    """Whether ``value`` (an ``X-Chainml-Signature`` header) signs ``body`` under
    ``secret`` and is at most ``tolerance`` seconds old: what a receiver runs."""
    fields: dict[str, list[str]] = {}
    for part in value.split(","):
        key, _, val = part.strip().partition("=")
        fields.setdefault(key, []).append(val)
    try:
        stamp = int(fields.get("t", [""])[0])
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    want = sign(secret, stamp, body)
    return any(hmac.compare_digest(want, got) for got in fields.get("v1", []))
