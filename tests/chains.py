"""The docs' example chain, registered through the Python API for tests."""

from __future__ import annotations

from typing import Any

from chainml.registry import Registry

# (kind, name, version, inputs) in topological order; mirrors examples/chain.yaml
# (its feedback input is exercised separately, since it needs feed_app first).
EXAMPLE = [
    ("source", "clicks_raw", "2026-11-01", []),
    ("source", "transactions_raw", "2026-11-01", []),
    ("source", "user_profiles", "v12", []),
    ("feature", "click_features", "1.3.0", ["clicks_raw"]),
    ("feature", "txn_features", "2.0.1", ["transactions_raw", "user_profiles"]),
    ("model", "user_embedding", "3", ["click_features", "user_profiles"]),
    ("feature", "embedding_features", "3.0", ["user_embedding"]),
    ("model", "fraud_scorer", "5.2.0", ["txn_features", "embedding_features"]),
    ("model", "ranker", "1.4.0", ["click_features", "embedding_features"]),
    ("policy", "fraud_rules", "2026.11", ["fraud_scorer"]),
    ("policy", "ranking_safety", "7", ["ranker", "fraud_scorer@5.2.0"]),
    ("consumer", "checkout_service", "2026-11-03", ["fraud_rules"]),
    ("consumer", "feed_app", "9.1", ["ranking_safety"]),
]
TESTABLE = ["fraud_rules", "fraud_scorer", "ranker", "ranking_safety", "user_embedding"]


def build_example(reg: Registry, tested: bool = True) -> Registry:
    for kind, name, version, inputs in EXAMPLE:
        reg.register(kind=kind, name=name, version=version, inputs=inputs)
    if tested:
        for name in TESTABLE:
            reg.record_test(name, passed=True)
    return reg


def statuses(reg: Registry) -> dict[str, str]:
    return {e.name: e.status.value for e in reg.status()}


def build_feature_chain(reg: Registry) -> Registry:
    """raw -> F 4 -> M 1 -> P 1, M and P tested: the environment tests' starting point
    (DESIGN.md's "serves F 5 in prod, tested with F 4")."""
    reg.register(kind="source", name="raw", version="1")
    reg.register(kind="feature", name="F", version="4", inputs=["raw"])
    reg.register(kind="model", name="M", version="1", inputs=["F"])
    reg.register(kind="policy", name="P", version="1", inputs=["M"])
    reg.record_test("M", passed=True)
    reg.record_test("P", passed=True)
    return reg


def unrouted(entries: list[Any]) -> list[dict[str, Any]]:
    """Status entries as plain data without the path each reason names (and the message
    that spells it): judged from marks or from the definition, the rest must be equal."""
    out = []
    for e in entries:
        d = e.model_dump()
        d["reasons"] = [{k: v for k, v in r.items() if k not in ("path", "message")}
                        for r in d["reasons"]]
        out.append(d)
    return out

