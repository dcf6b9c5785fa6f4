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


if __name__ == "__main__":
    main()
