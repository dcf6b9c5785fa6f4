"""The body of ``POST /api/v1/lineage``: bytes, maybe gzip, to decoded OpenLineage events.

OpenLineage's HTTP transports send one event per request as JSON, gzip-compressed when
``compression: gzip`` is set; some senders batch events in a JSON array. The
decompressed size is bounded like the body itself, so a small gzip bomb cannot grow
into gigabytes in memory.
"""

from __future__ import annotations

import zlib
from typing import Any

from chainml.errors import InvalidInput
from chainml.files.importers.common import MAX_IMPORT_DEPTH
from chainml.files.safeload import decode, parse_json


def inflate(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body, refusing one that grows past ``limit`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error:
        raise InvalidInput("The body is marked Content-Encoding: gzip but is not gzip "
                           "data.") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InvalidInput(f"The decompressed body is over chainml's limit of "
                           f"{limit / (1024 * 1024):g} MiB.")
    return out


def read_events(body: bytes, encoding: str | None, limit: int) -> list[Any]:
    """The decoded events of a request body: one JSON event or a JSON array of them
    (checked by the library, which names the event and the field)."""
    coding = (encoding or "identity").strip().lower()
    if coding == "gzip":
        body = inflate(body, limit)
    elif coding not in ("identity", ""):
        raise InvalidInput(f"Content-Encoding {coding[:40]!r} is not accepted; send JSON, "
                           "plain or gzip.")
    if not body.strip():
        raise InvalidInput("The body is empty; send an OpenLineage event or a JSON array "
                           "of them.")
    data = parse_json(decode(body, "the body"), "the body", max_depth=MAX_IMPORT_DEPTH)
    return data if isinstance(data, list) else [data]
