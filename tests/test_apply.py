"""apply / export / import against a real registry, on every backend."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import networkx as nx
import pytest

from chainml.errors import CycleError, InvalidInput, KindRuleError, VersionConflict
from chainml.files.chainfile import dump_chain
from chainml.registry import Registry
from tests.chains import statuses
from tests.realgraph import load_real_graph_mapped
from tests.shared import shared_path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "chain.yaml"
IMPORTS = Path(__file__).parent / "data" / "importers"


def dump(reg: Registry) -> str:
    """Everything a user can read back, for before/after comparisons."""
    nodes = [reg.node(n.name).model_dump(mode="json") for n in reg.nodes()]
    return json.dumps({"nodes": nodes, "log": [e.model_dump(mode="json") for e in reg.log()],
                       "status": [e.model_dump(mode="json") for e in reg.status()]},
                      sort_keys=True)


def state(reg: Registry) -> list[dict[str, object]]:
    """The current state only (what export carries), without times and authors."""
    out = []
    for n in reg.nodes():
        d = reg.node(n.name).model_dump(mode="json", exclude={"created_at", "versions", "status"})
        out.append(d)
    return out


def test_apply_creates_the_example_chain(registry: Registry) -> None:
    result = registry.apply(EXAMPLE)
    assert [i.action for i in result.items] == ["add"] * 13
    assert registry.node("ranking_safety").inputs[0].model_dump() == {
        "name": "fraud_scorer", "pin": "5.2.0"}
    assert registry.node("clicks_raw").feedback == ["feed_app"]
    assert registry.node("fraud_scorer").required_suites == ["offline-eval", "shadow"]
    assert set(statuses(registry).values()) == {"untested"}


def test_apply_twice_changes_nothing(registry: Registry) -> None:
    registry.apply(EXAMPLE)
    before = dump(registry)
    again = registry.apply(EXAMPLE)
    assert again.items == [] and again.unchanged == 13
    assert dump(registry) == before


def test_dry_run_writes_nothing(registry: Registry) -> None:
    before = dump(registry)
    plan = registry.apply(EXAMPLE, dry_run=True)
    assert plan.dry_run and len(plan.items) == 13
    assert dump(registry) == before


def test_export_then_apply_gives_an_identical_registry(registry: Registry, tmp_path: Path,
                                                       database_url: str) -> None:
    registry.apply(EXAMPLE)
    registry.register(kind="model", name="ranker", version="1.5.0", owner="someone-else",
                      tags=["x"], max_age="14d", meta={"artifact": "s3://m/ranker/1.5.0"})
    registry.register(kind="feature", name="click_features", version="1.3.0",
                      needs_tests=True, node_meta={"slack": "#features"})
    text = dump_chain(registry.export())
    (tmp_path / "export.yaml").write_text(text)
    fresh = Registry.init(url=f"sqlite:///{tmp_path / 'copy.db'}")
    try:
        fresh.apply(tmp_path / "export.yaml")
        assert state(fresh) == state(registry)
        assert dump_chain(fresh.export()) == text
    finally:
        fresh.close()


def test_a_new_upstream_version_in_the_file_marks_downstream(registry: Registry,
                                                             tmp_path: Path) -> None:
    registry.apply(EXAMPLE)
    for name in ("user_embedding", "ranker", "fraud_rules", "ranking_safety"):
        registry.record_test(name, passed=True)
    for suite in ("offline-eval", "shadow"):
        registry.record_test("fraud_scorer", passed=True, suite=suite)
    changed = EXAMPLE.read_text().replace('version: "v12"', 'version: "v13"')
    (tmp_path / "chain.yaml").write_text(changed)
    result = registry.apply(tmp_path / "chain.yaml")
    assert [(i.action, i.node, i.previous, i.version) for i in result.items] == [
        ("version", "user_profiles", "v12", "v13")]
    # user_profiles -> user_embedding -> embedding_features -> {fraud_scorer, ranker} -> ...
    assert result.marked == 5
    got = statuses(registry)
    assert {n for n, s in got.items() if s == "needs_retest"} == {
        "user_embedding", "fraud_scorer", "fraud_rules", "ranker", "ranking_safety"}


@pytest.mark.parametrize("edit, error", [
    ('inputs: [ranker, "fraud_scorer@5.2.0"]', ('inputs: [ranker, "fraud_scorer@9"]',
                                                InvalidInput)),
    ("inputs: [fraud_scorer]\n", ("inputs: [fraud_scorer, feed_app]\n", InvalidInput)),
    ("    inputs: [clicks_raw]\n", ("    inputs: [clicks_raw, ranker]\n", CycleError)),
    ("    inputs: [fraud_rules]\n", ("    inputs: [nowhere]\n", InvalidInput)),
], ids=["unknown-pin", "kind-rule", "cycle", "unknown-input"])
def test_a_file_with_an_error_leaves_the_registry_unchanged(
        registry: Registry, tmp_path: Path, edit: str, error: tuple[str, type]) -> None:
    registry.apply(EXAMPLE)
    registry.record_test("ranker", passed=True)
    before = dump(registry)
    text = EXAMPLE.read_text().replace('version: "v12"', 'version: "v13"')
    assert edit in text
    (tmp_path / "bad.yaml").write_text(text.replace(edit, error[0], 1))
    with pytest.raises(error[1]) as info:
        registry.apply(tmp_path / "bad.yaml")
    assert "bad.yaml" in str(info.value)
    assert dump(registry) == before


def test_kind_rule_error_names_file_node_and_line(registry: Registry, tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("inputs: [fraud_scorer]\n",
                                       "inputs: [fraud_scorer, feed_app]\n")
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(KindRuleError, match=r"bad.yaml line \d+ \(node 'fraud_rules'\)"):
        registry.apply(tmp_path / "bad.yaml")


def test_immutable_version_changed_in_a_file_is_refused(registry: Registry,
                                                        tmp_path: Path) -> None:
    registry.apply(EXAMPLE)
    before = dump(registry)
    text = EXAMPLE.read_text().replace("inputs: [click_features, user_profiles]",
                                       "inputs: [click_features]")
    (tmp_path / "chain.yaml").write_text(text)
    with pytest.raises(VersionConflict) as info:
        registry.apply(tmp_path / "chain.yaml")
    # What differs, and advice for someone editing a file (not "register a new label").
    assert str(info.value) == (
        f"{tmp_path / 'chain.yaml'} (node 'user_embedding'): version '3' is registered with "
        "other content: the file removes input 'user_profiles'; versions are immutable, so "
        "give 'user_embedding' a new version in the file, or revert the edit.")
    assert dump(registry) == before


def test_prune_retires_undeclared_nodes_but_not_consumed_ones(registry: Registry,
                                                               tmp_path: Path) -> None:
    registry.apply(EXAMPLE)
    registry.register(kind="consumer", name="old_report", version="1", inputs=["ranker"])
    result = registry.apply(EXAMPLE, prune=True)
    assert [(i.action, i.node) for i in result.items] == [("retire", "old_report")]
    assert "old_report" not in {n.name for n in registry.nodes()}
    assert registry.node("old_report").retired_at is not None  # nothing is deleted
    assert [e.action for e in registry.log("old_report")][-1] == "node.retired"
    assert registry.apply(EXAMPLE, prune=True).items == []  # retired already
    lines = EXAMPLE.read_text().split("  - name: feed_app")[0]
    (tmp_path / "partial.yaml").write_text(lines)
    before = dump(registry)
    with pytest.raises(InvalidInput, match="still reads it"):
        registry.apply(tmp_path / "partial.yaml", prune=True)
    assert dump(registry) == before


def test_dbt_reimport_after_an_upstream_change_marks_downstream(
        registry: Registry, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    shutil.copy(IMPORTS / "manifest.json", manifest)
    registry.import_file("dbt", manifest, kind_map=["tag:ml=model"])
    models = [n.name for n in registry.nodes(kind="model")]
    assert models
    for name in models:
        registry.record_test(name, passed=True)
    assert registry.check().ok
    again = registry.import_file("dbt", manifest, kind_map=["tag:ml=model"])
    assert again.items == []
    data = json.loads(manifest.read_text())
    upstream = next(uid for uid, n in data["nodes"].items()
                    if n["resource_type"] == "model" and "ml" not in n.get("tags", [])
                    and any(uid in m["depends_on"]["nodes"] for m in data["nodes"].values()
                            if "ml" in m.get("tags", [])))
    data["nodes"][upstream]["checksum"]["checksum"] = "f" * 64
    manifest.write_text(json.dumps(data))
    result = registry.import_file("dbt", manifest, kind_map=["tag:ml=model"])
    assert [i.action for i in result.items] == ["version"]
    assert not registry.check().ok
    failing = {e.name for e in registry.check().failing}
    assert failing and failing <= set(models)


@pytest.mark.parametrize("graph", ["kedro_viz_demo.json", "marquez_seed.json",
                                   "dbt_tuva.json"])
def test_real_graphs_load_and_impact_matches_networkx(registry: Registry, tmp_path: Path,
                                                      graph: str) -> None:
    path = shared_path("real-graphs", graph)
    file, names = load_real_graph_mapped(path)
    (tmp_path / "chain.json").write_text(dump_chain(file, "json"))
    registry.apply(tmp_path / "chain.json")
    raw = json.loads(path.read_text())
    assert len(registry.nodes()) == len(raw["nodes"])
    g = nx.DiGraph((names[u], names[d]) for u, d in raw["edges"])
    g.add_nodes_from(names.values())
    sample = sorted(g.nodes)[:: max(1, len(g) // 25)]
    for node in sample:
        got = {e.name for e in registry.impact(node).impacted}
        assert got == nx.descendants(g, node), node


def test_a_large_apply_refreshes_planner_statistics(registry: Registry, database_url: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL gets VACUUM (ANALYZE) after a large load (here: "large" is 2 nodes)."""
    from sqlalchemy import text

    import chainml.registry as registry_module

    monkeypatch.setattr(registry_module, "VACUUM_AFTER", 2)
    registry.apply(EXAMPLE)
    if not database_url.startswith("postgresql"):
        return
    with registry.engine.connect() as conn:
        vacuumed = conn.execute(text(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
            "AND last_vacuum IS NOT NULL")).scalars().all()
    assert {"node", "version", "version_input", "edge"} <= set(vacuumed)
