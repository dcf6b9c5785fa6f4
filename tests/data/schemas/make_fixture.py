"""Write tests/data/schemas/<revision>.db: a registry filled by that release's code.

Run once per released schema revision, with the code of that revision, and
commit the file; tests/test_migrations.py upgrades every one of them.

    python tests/data/schemas/make_fixture.py
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from chainml.db import migrate  # noqa: E402
from chainml.registry import Registry  # noqa: E402
from tests.chains import build_example  # noqa: E402


def main() -> None:
    out = Path(__file__).with_name(f"{migrate.HEAD}.db")
    out.unlink(missing_ok=True)
    reg = Registry.init(url=f"sqlite:///{out}", actor="fixture",
                        clock=lambda: datetime(2026, 11, 27, 12, 0, 0))
    build_example(reg)
    reg.register(kind="source", name="clicks_raw", version="2026-11-08")
    reg.record_test("user_embedding", passed=True)
    reg.register(kind="source", name="transactions_raw", version="2")
    reg.waive("fraud_scorer", reason="fixture waiver", expires="90d")
    if migrate.HEAD >= "0004":
        environments(reg)
    if migrate.HEAD >= "0005":
        tokens(reg)
    if migrate.HEAD >= "0006":
        hooks(reg)
    if migrate.HEAD >= "0007":
        lineage(reg)
    reg.close()
    print(out)


# Every node but the sources; the sources a deploy names are deployed, the others live.
DEPLOYED = ["click_features", "txn_features", "user_embedding", "embedding_features",
            "fraud_scorer", "ranker", "fraud_rules", "ranking_safety", "checkout_service",
            "feed_app"]


def environments(reg: Registry) -> None:
    """Revision 0004: two environments, releases (one forced), an undeploy and an
    environment waiver, so that the upgrade tests see each kind of row."""
    reg.env_create("staging", description="fixture staging")
    reg.env_create("prod", after="staging")
    reg.deploy(DEPLOYED, env="staging", force=True, reason="fixture", link="https://ci/1")
    reg.deploy([*DEPLOYED, "transactions_raw@2026-11-01", "clicks_raw@2026-11-01"],
               env="prod", force=True, reason="fixture")
    reg.undeploy("feed_app", env="prod")
    reg.waive("fraud_scorer", env="staging", reason="fixture env waiver", expires="90d")


def tokens(reg: Registry) -> None:
    """Revision 0005: an active API token and a revoked one (neither expires, so the
    upgrade tests read the same states whatever the day)."""
    reg.token_create("fixture-bot", scope="write", expires=None)
    reg.token_create("old-bot", scope="read", expires=None)
    reg.token_revoke("old-bot")


def hooks(reg: Registry) -> None:
    """Revision 0006: a hook with a delivery still pending (its receiver never answered)
    and a removed hook."""
    reg.hook_add("http://127.0.0.1:9/fixture", events=["run.recorded"])
    gone = reg.hook_add("http://127.0.0.1:9/gone", events=["deploy.done"])
    reg.hook_remove(gone.id)
    reg.record_test("click_features", passed=True)


def _event(run: str, etype: str, minute: int, inputs: list[str], code: str) -> dict[str, object]:
    return {"eventType": etype, "eventTime": f"2026-11-27T11:{minute:02d}:00Z",
            "run": {"runId": run},
            "job": {"namespace": "airflow", "name": "daily.features", "facets": {
                "sourceCodeLocation": {"type": "git", "url": "https://x/y", "version": code}}},
            "inputs": [{"namespace": "warehouse", "name": n} for n in inputs],
            "outputs": [{"namespace": "warehouse", "name": "ml.features"}],
            "producer": "https://example.com/fixture",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"}


def lineage(reg: Registry) -> None:
    """Revision 0007: two ingested runs of one job (four new nodes), the second reading
    a dataset its declared inputs leave out (an open finding), and a run never completed."""
    first = "0176a8c2-fe01-7439-87e6-56a1a1b40001"
    second = "0176a8c2-fe01-7439-87e6-56a1a1b40002"
    reg.ingest_events([_event(first, "START", 0, ["raw.clicks"], "c1"),
                       _event(first, "COMPLETE", 5, ["raw.clicks"], "c1")])
    reg.ingest_events([_event(second, "COMPLETE", 10, ["raw.clicks", "raw.users"], "c2")])
    reg.ingest_events([_event("0176a8c2-fe01-7439-87e6-56a1a1b40003", "START", 20,
                              ["raw.clicks"], "c3")])


if __name__ == "__main__":
    main()
