"""docs/api.md is the reference generated from the server's OpenAPI document: it must be
current (regenerate with ``python -m chainml.server.apidoc > docs/api.md``)."""

from __future__ import annotations

from pathlib import Path

from chainml.server import apidoc

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_api_reference_is_current() -> None:
    assert (DOCS / "api.md").read_text(encoding="utf-8") == apidoc.current(), (
        "docs/api.md is stale: python -m chainml.server.apidoc > docs/api.md")


def test_the_reference_names_every_route() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    for route in ("GET /api/v1/nodes", "POST /api/v1/runs", "GET /api/v1/check",
                  "POST /api/v1/deployments", "GET /api/v1/plan", "POST /api/v1/tokens"):
        assert f"`{route}`" in text, route
