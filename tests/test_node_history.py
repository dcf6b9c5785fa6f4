"""``Registry.node_history``: a node's events with its releases narrowed to its own line,
read from the deployment rows. The oracle is ``log NODE``, whose release events carry
every released node's line as the release recorded it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from chainml.registry import Registry
from tests.chains import build_example
from tests.test_ingest_statements import sqlite_statements


def _own_line(details: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [i for i in details.get("nodes") or [] if i.get("node") == name]


def test_node_history_is_the_log_with_releases_narrowed(registry: Registry) -> None:
    reg = build_example(registry)
    everything = [n.name for n in reg.nodes()]
    reg.env_create("staging")
    reg.env_create("prod", after="staging")
    reg.deploy(everything, env="staging", force=True, reason="start")
    reg.deploy(everything, env="prod", force=True, reason="start", link="https://ci/1",
               note="first")
    reg.register(kind="feature", name="click_features", version="9", inputs=["clicks_raw"])
    reg.record_test("click_features", passed=True)
    reg.deploy(["click_features"], env="staging", force=True, reason="hotfix")
    reg.undeploy("click_features", env="prod")
    reg.deploy(["click_features@9", "ranker"], env="prod", force=True, reason="back",
               note="again")
    reg.register(kind="feature", name="click_features", version="10", inputs=["clicks_raw"])

    for name in ("click_features", "ranker", "clicks_raw"):
        got = reg.node_history(name)
        log = reg.log(name)
        # What each release replaced, as its event recorded it - except that an
        # environment reads a source it has never deployed live, and the event names that
        # live version while the deployment rows know of nothing deployed before.
        deployed: set[str] = set()
        expected = []
        for e in log:
            assert e.env is not None or e.action not in ("deploy", "undeploy")
            if e.action == "deploy":
                (line,) = _own_line(e.details, name)
                before = line["previous"] if e.env in deployed else None
                expected.append((e.id, e.env, line["version"], before))
                deployed.add(str(e.env))
            elif e.action == "undeploy":
                expected.append((e.id, e.env, None, e.version))
        assert [(r.event, r.env, r.version, r.previous) for r in got.releases] == expected

        assert [e.id for e in got.events] == [e.id for e in log]
        lines = iter(r for r in got.releases if r.version is not None)
        for mine, full in zip(got.events, log, strict=True):
            assert (mine.action, mine.at, mine.actor, mine.env, mine.node, mine.version) == (
                full.action, full.at, full.actor, full.env, full.node, full.version)
            if full.action == "deploy":
                (line,) = _own_line(full.details, name)
                r = next(lines)
                assert mine.details["nodes"] == [{**line, "previous": r.previous}]
                assert (mine.details["link"], mine.details["note"]) == (
                    full.details.get("link"), full.details.get("note"))
            else:
                assert mine.details == full.details


def test_the_history_of_a_node_never_deployed_is_its_own_events(registry: Registry) -> None:
    reg = build_example(registry)
    got = reg.node_history("ranker")
    assert got.releases == []
    assert [e.id for e in got.events] == [e.id for e in reg.log("ranker")]


def test_node_overview_is_node_history_and_env_status_together(registry: Registry) -> None:
    """The page's one read: what ``node``, ``node_history`` and ``env_status`` say apart;
    the served versions from the latest release per environment (``env show``)."""
    reg = build_example(registry)
    everything = [n.name for n in reg.nodes()]
    reg.env_create("staging")
    reg.env_create("prod", after="staging")
    reg.deploy(everything, env="staging", force=True, reason="start")
    reg.deploy(everything, env="prod", force=True, reason="start")
    reg.register(kind="feature", name="click_features", version="9", inputs=["clicks_raw"])
    reg.deploy(["click_features"], env="staging", force=True, reason="skew it")
    reg.undeploy("ranker", env="prod")
    reg.retire("feed_app")

    for name in ("click_features", "ranker", "clicks_raw", "fraud_scorer", "feed_app"):
        got = reg.node_overview(name)
        assert got.node == reg.node(name)
        assert got.history == reg.node_history(name)
        shown = {env.name: {n.name: n.version for n in reg.env_show(env.name).nodes
                            if n.deployed}
                 for env in reg.env_list()}
        assert got.served == {env: nodes[name] for env, nodes in shown.items()
                              if name in nodes}
        expected = {}
        for env in got.served:
            entries = [] if got.node.retired_at else reg.env_status(env, name)
            expected[env] = entries[0] if entries else None
        assert got.env_status == expected
    assert list(reg.node_overview("ranker").served) == ["staging"]  # undeployed from prod
    assert reg.node_overview("click_features").served == {"staging": "9", "prod": "1.3.0"}
    assert reg.node_overview("feed_app").env_status == {"staging": None, "prod": None}


def test_node_overview_reads_each_fact_once(tmp_path: Path) -> None:
    """The page's read asks the registry's status and each environment's of one node over
    one connection: the node's row, its status facts, names and labels are read once
    for all of them (33 statements a page became 23 on a 100,000-node registry)."""
    reg = build_example(Registry.init(tmp_path, actor="tester"))
    everything = [n.name for n in reg.nodes()]
    for env in ("staging", "prod"):
        reg.env_create(env)
        reg.deploy(everything, env=env, force=True, reason="start")
    reg.register(kind="feature", name="click_features", version="9", inputs=["clicks_raw"])
    reg.deploy(["click_features"], env="staging", force=True, reason="skew it")

    with sqlite_statements(reg) as seen:
        got = reg.node_overview("ranker")
    assert set(got.env_status) == {"staging", "prod"}
    selects = [s for s in seen if s.startswith(("SELECT", "WITH"))]
    again = sorted({s for s in selects if selects.count(s) > 1})
    assert again == [], f"read twice over one connection: {again}"


def test_node_overview_uses_what_changes_reach_only_at_its_generation(registry: Registry
                                                                       ) -> None:
    """``reached()`` spares a node page the walk up its lineage while the registry stands
    where it was read; after a write it is ignored, and the answer is the same either
    way."""
    reg = build_example(registry)
    reg.env_create("prod")
    reg.deploy([n.name for n in reg.nodes()], env="prod", force=True, reason="start")
    reg.register(kind="source", name="clicks_raw", version="v2")  # prod serves the first
    kept = reg.reached()
    below = {n.name for n in reg.nodes()} - {"clicks_raw"}
    for name in sorted(below):
        assert reg.node_overview(name, kept=kept) == reg.node_overview(name), name

    # Proof it is used: told that no change reaches anything, the page judges a model
    # that prod serves over the old clicks_raw from the marks, which ask for a retest.
    fresh = reg.node_overview("user_embedding").env_status["prod"]
    told = {"prod": replace(kept["prod"], nodes=frozenset())}
    wrong = reg.node_overview("user_embedding", kept=told).env_status["prod"]
    assert fresh is not None and wrong is not None and wrong != fresh

    reg.record_test("ranker", passed=True)  # a write: the kept sets are stale
    assert reg.node_overview("user_embedding", kept=told) == reg.node_overview(
        "user_embedding")
