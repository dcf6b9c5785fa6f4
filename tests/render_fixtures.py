"""Views shared by the renderer tests: a realistic fraud chain, hostile text, a big chain."""

from __future__ import annotations

import os
import shutil

import pytest

from chainml.render.view import GraphView, ViewEdge, ViewNode

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_binary(name: str, install: str) -> str:
    """Return the path of ``name``; skip the test without it (fail in CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"'{name}' is not installed ({install})"
        if IN_CI:
            pytest.fail(message + "; CI must have it")
        pytest.skip(message)
    return path


def _node(name: str, kind: str, version: str, status: str | None, **extra: object) -> ViewNode:
    data: dict[str, object] = {
        "name": name, "kind": kind, "version": version, "status": status,
        "owner": "ml-platform", "description": f"The {name} {kind}.",
        "versions": ["1", version] if version != "1" else ["1"],
    }
    data.update(extra)
    return ViewNode.model_validate(data)


def fraud_view() -> GraphView:
    """Twelve nodes over the five kinds, every status, a feedback edge and a pinned edge."""
    nodes = [
        _node("s3://lake/events", "source", "2026-11-03", None, tags=["pii"]),
        _node("warehouse/accounts", "source", "v12", None),
        _node("fraud/sessions", "feature", "3", None, inputs=["s3://lake/events"]),
        _node("fraud/account_age", "feature", "1.2.0", None, inputs=["warehouse/accounts"]),
        _node("fraud/embed", "model", "4", "needs_retest", inputs=["fraud/sessions"],
              reasons=["ancestor fraud/sessions: tested with 2, now 3, via "
                       "fraud/sessions -> fraud/embed"]),
        _node("fraud/scorer", "model", "3.1.0", "verified",
              inputs=["fraud/embed@4", "fraud/account_age"]),
        _node("risk/thresholds", "policy", "7", "failed", inputs=["fraud/scorer"],
              reasons=["latest run of suite offline-eval for 7 failed"]),
        _node("risk/allowlist", "policy", "2", "waived", inputs=["fraud/scorer"],
              reasons=["waived until 2026-12-01: ancestor fraud/embed changed"]),
        _node("search/ranker", "model", "a1b2c3d", "untested",
              inputs=["fraud/account_age"], reasons=["version a1b2c3d has no test run"]),
        _node("search/safety", "policy", "5", "stale", inputs=["search/ranker"],
              reasons=["verified, but version 5 is 45 days old (max age 30d)"]),
        _node("app/checkout", "consumer", "2026.11.1", None,
              inputs=["risk/thresholds", "risk/allowlist"]),
        _node("app/search_ui", "consumer", "88", None, inputs=["search/safety"]),
    ]
    edges = [
        ViewEdge(upstream="s3://lake/events", downstream="fraud/sessions"),
        ViewEdge(upstream="warehouse/accounts", downstream="fraud/account_age"),
        ViewEdge(upstream="fraud/sessions", downstream="fraud/embed"),
        ViewEdge(upstream="fraud/embed", downstream="fraud/scorer", pin="4"),
        ViewEdge(upstream="fraud/account_age", downstream="fraud/scorer"),
        ViewEdge(upstream="fraud/account_age", downstream="search/ranker"),
        ViewEdge(upstream="fraud/scorer", downstream="risk/thresholds"),
        ViewEdge(upstream="fraud/scorer", downstream="risk/allowlist"),
        ViewEdge(upstream="search/ranker", downstream="search/safety"),
        ViewEdge(upstream="risk/thresholds", downstream="app/checkout"),
        ViewEdge(upstream="risk/allowlist", downstream="app/checkout"),
        ViewEdge(upstream="search/safety", downstream="app/search_ui"),
        # The checkout decisions shape the events the models learn from next.
        ViewEdge(upstream="app/checkout", downstream="s3://lake/events", feedback=True),
    ]
    for node in nodes:
        node.consumers = [e.downstream for e in edges if e.upstream == node.name]
    return GraphView(nodes=nodes, edges=edges, title="Fraud & search chain")


HOSTILE: list[str] = [
    '"quoted" \'single\'',
    "back\\slash \\N \\G \\l \\E \\T \\H \\L \\n \\",
    "[brackets] {braces} (parens) |pipe| <angle>",
    "<script>alert(1)</script>",
    '<IMG SRC="/etc/passwd">',
    "javascript:alert(1)",
    "line one\nline two\r\nline three",
    "%% mermaid comment %%{init: {'theme':'dark'}}%%",
    "`backtick` ```fence```",
    "--> -.-> ==> <!-- comment --> ]]> <![CDATA[x]]>",
    "\u202egnp.exe rtl override",
    "emoji \U0001f680\U0001f9ea \u2603",
    "&amp; &lt; &nbsp; &foo; &#60;b&#62; #quot; #lt;",
    "<b onmouseover=alert(1)>x</b> <svg onload=alert(1)>",
    "NUL\x00 ESC\x1b[31m BEL\x07 \u2028 \u2029 \ud800 \ufffe \uffff",  # XML forbids most
    "x" * 10_000,
]

# Version labels are printable and have no whitespace (and no '@').
HOSTILE_LABELS: list[str] = [
    '"><script>alert(1)</script>',
    "<IMG_SRC=/etc/passwd>",
    "\\N\\G\\l",
    "javascript:alert(1)",
    "%%{init}%%",
    "`x`-->",
    "]]>&amp;#quot;",
    "v" * 100,
]


def hostile_view() -> GraphView:
    """A small chain whose every free-text field carries one of :data:`HOSTILE`."""
    names = ["a/b:c.d-e_f", "s3://lake/events", "x", "ns/model", "ns/policy", "app"]
    kinds = ["source", "source", "feature", "model", "policy", "consumer"]
    statuses: list[str | None] = [None, None, None, "failed", "needs_retest", None]
    nodes = []
    for i, (name, kind, status) in enumerate(zip(names, kinds, statuses, strict=True)):
        nodes.append(ViewNode(
            name=name, kind=kind, status=status,
            version=HOSTILE_LABELS[i % len(HOSTILE_LABELS)],
            versions=HOSTILE_LABELS,
            owner=HOSTILE[i % len(HOSTILE)],
            description=" | ".join(HOSTILE),
            tags=HOSTILE,
            meta={h[:40]: h for h in HOSTILE} | {"nested": {"k": HOSTILE}},
            inputs=[f"{names[i - 1]}@{HOSTILE_LABELS[0]}"] if i else [],
            reasons=HOSTILE,
        ))
    edges = [
        ViewEdge(upstream="a/b:c.d-e_f", downstream="x", pin=HOSTILE_LABELS[0]),
        ViewEdge(upstream="s3://lake/events", downstream="x", pin=HOSTILE_LABELS[4]),
        ViewEdge(upstream="x", downstream="ns/model", pin=HOSTILE_LABELS[6]),
        ViewEdge(upstream="ns/model", downstream="ns/policy"),
        ViewEdge(upstream="ns/policy", downstream="app"),
        ViewEdge(upstream="app", downstream="s3://lake/events", feedback=True,
                 pin=HOSTILE_LABELS[1]),
    ]
    return GraphView(nodes=nodes, edges=edges, title=" ".join(HOSTILE[:6]))


def big_view(n: int = 5000, namespaces: int = 50) -> GraphView:
    """A layered chain of ``n`` nodes in ``namespaces`` namespaces, each with 1-2 inputs."""
    kinds = ["source", "feature", "model", "policy", "consumer"]
    statuses = ["verified", "untested", "failed", "needs_retest", "waived", "stale"]
    nodes: list[ViewNode] = []
    edges: list[ViewEdge] = []
    per_layer = n // len(kinds)
    for i in range(n):
        layer = min(i // per_layer, len(kinds) - 1)
        kind = kinds[layer]
        status = statuses[i % len(statuses)] if kind in ("model", "policy") else None
        name = f"ns{i % namespaces}/{kind}_{i}"
        nodes.append(ViewNode(name=name, kind=kind, version=str(i % 7 + 1), status=status))
        if layer:
            # Inputs from the previous layer, same namespace mostly: a realistic fan-in.
            base = (layer - 1) * per_layer
            for j in (i % per_layer, (i * 7 + 3) % per_layer)[: 1 + i % 2]:
                edges.append(ViewEdge(upstream=nodes[base + j].name, downstream=name))
    return GraphView(nodes=nodes, edges=edges, title=f"{n} nodes")
