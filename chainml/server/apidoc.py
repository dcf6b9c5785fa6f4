"""docs/api.md from the OpenAPI document the server publishes, so the reference cannot
drift from the routes: ``python -m chainml.server.apidoc > docs/api.md`` writes it, and
tests/test_server_docs.py fails when it is not current."""

from __future__ import annotations

from typing import Any

HEADER = """# HTTP API reference

Generated from the OpenAPI document `chainml serve` publishes at
`/api/v1/openapi.json` (`python -m chainml.server.apidoc > docs/api.md`; a test
fails when this page is not current). How to start the server, tokens and
deployment: [server](server.md). Every answer is JSON; an error is
`{"error": "one sentence"}` with its status (400 bad input, 401 no valid token,
403 a token without the scope, 404 unknown node or version, 409 conflict or a
refused release, 413 body too large, 422 not JSON or not the shape asked for,
503 registry unreachable or on another schema). Lists are JSON arrays, paged by
`limit` and `offset`, with the total in `X-Total-Count` and the next page in a
`Link` header. Reads need no token on the loopback address (unless the server
runs with `--require-token-for-reads`); writes need `Authorization: Bearer
TOKEN` with the write scope, tokens the admin scope.
"""


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render(spec: dict[str, Any]) -> str:
    out = [HEADER]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append((path, method, op))
    for tag, ops in by_tag.items():
        out.append(f"## {tag.capitalize()}\n")
        for path, method, op in ops:
            out.append(f"### `{method.upper()} {path}`\n")
            if op.get("description"):
                out.append(op["description"].strip() + "\n")
            params = op.get("parameters", [])
            if params:
                out.append("| parameter | in | type | required | description |")
                out.append("|---|---|---|---|---|")
                for p in params:
                    out.append(f"| `{p['name']}` | {p['in']} | {_type(p.get('schema', {}))} | "
                               f"{'yes' if p.get('required') else 'no'} | "
                               f"{_cell(p.get('description', ''))} |")
                out.append("")
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            props = body.get("schema", {}).get("properties", {})
            if props:
                required = set(body["schema"].get("required", []))
                out.append("| body field | type | required |")
                out.append("|---|---|---|")
                for field, p in props.items():
                    out.append(f"| `{field}` | {_type(p)} | "
                               f"{'yes' if field in required else 'no'} |")
                out.append("")
            answers = []
            for code, answer in op.get("responses", {}).items():
                content = answer.get("content", {})
                shape = next((_type(c["schema"]) for c in content.values() if "schema" in c),
                             ", ".join(content) or "-")
                if code != "422":
                    answers.append(f"{code} {shape}")
            out.append("Answers: " + "; ".join(answers) + ".\n")
    schemas = spec.get("components", {}).get("schemas", {})
    shown = {k: v for k, v in schemas.items() if not k.startswith(("HTTPValidation",
                                                                    "ValidationError"))}
    if shown:
        out.append("## Shapes\n")
        for name, schema in sorted(shown.items()):
            out.append(f"### {name}\n")
            if schema.get("description"):
                out.append(_cell(schema["description"]) + "\n")
            props = schema.get("properties", {})
            if props:
                required = set(schema.get("required", []))
                out.append("| field | type | required |")
                out.append("|---|---|---|")
                for field, p in props.items():
                    out.append(f"| `{field}` | {_type(p)} | "
                               f"{'yes' if field in required else 'no'} |")
                out.append("")
    return "\n".join(out).rstrip() + "\n"


def current() -> str:
    """The reference for the routes of this chainml."""
    from chainml.server.app import create_app

    return render(create_app(None).openapi())  # the routes, without a database


if __name__ == "__main__":
    print(current(), end="")
