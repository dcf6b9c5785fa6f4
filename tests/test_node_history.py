"""``Registry.node_history``: a node's events with its releases narrowed to its own line,
read from the deployment rows. The oracle is ``log NODE``, whose release events carry
every released node's line as the release recorded it."""

from __future__ import annotations

from typing import Any

from chainml.registry import Registry
from tests.chains import build_example


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
