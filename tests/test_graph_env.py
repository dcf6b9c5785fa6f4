"""`chainml graph --env ENV` and ``Registry.graph_view(env=...)``: what an environment
serves, at its served versions, coloured by environment status, on every backend.

The story of docs/environments.md: the example chain deployed to prod, a feature
redeployed alone (the model and the policy on it skewed), a newer scorer registered
but not deployed (drawn as "5.2.0 (current 5.3.0)").
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chainml.errors import InvalidInput
from chainml.registry import Registry
from chainml.render.view import GraphView
from tests.clirun import error_line, example_registry, ok, run
from tests.conftest import IN_CI

HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT and not IN_CI, reason="Graphviz's dot is missing")
NODE_ID = re.compile(r"n\d+")

# prod serves everything but ranker's branch; sources are read live.
DEPLOYED = ["click_features", "txn_features", "user_embedding", "embedding_features",
            "fraud_scorer", "fraud_rules", "checkout_service"]
LIVE = ["clicks_raw", "transactions_raw", "user_profiles"]


@pytest.fixture
def url(database_url: str) -> str:
    """prod with txn_features 2.1.0 forced in alone, and fraud_scorer 5.3.0 registered
    (tested) but not deployed; ranker, ranking_safety and feed_app never deployed."""
    example_registry(database_url)
    ok(database_url, "env", "create", "prod")
    ok(database_url, "deploy", *DEPLOYED, "--env", "prod")
    ok(database_url, "register", "feature", "txn_features", "--version", "2.1.0")
    ok(database_url, "deploy", "txn_features", "--env", "prod", "--force", "--reason", "fix")
    ok(database_url, "register", "model", "fraud_scorer", "--version", "5.3.0")
    ok(database_url, "test", "record", "fraud_scorer", "--passed", "--suite", "offline-eval")
    ok(database_url, "test", "record", "fraud_scorer", "--passed", "--suite", "shadow")
    return database_url


def view_of(url: str, **kwargs: object) -> GraphView:
    reg = Registry(url)
    try:
        return reg.graph_view(env="prod", **kwargs)  # type: ignore[arg-type]
    finally:
        reg.close()


def test_served_versions_statuses_and_live_sources(url: str) -> None:
    view = view_of(url)
    nodes = {n.name: n for n in view.nodes}
    # Deployed nodes and the sources they read live; nothing prod does not serve.
    assert set(nodes) == set(DEPLOYED) | set(LIVE)
    assert not {"ranker", "ranking_safety", "feed_app"} & set(nodes)
    # The served version, with the registry's current one where it differs.
    assert nodes["fraud_scorer"].version == "5.2.0 (current 5.3.0)"
    assert nodes["txn_features"].version == "2.1.0"
    assert nodes["clicks_raw"].version == "2026-11-01"
    # Environment statuses, not the registry's (fraud_rules is needs_retest there).
    assert {n: v.status for n, v in nodes.items() if v.status} == {
        "fraud_scorer": "skewed", "fraud_rules": "skewed", "user_embedding": "verified"}
    assert nodes["click_features"].status is None
    assert any("serves txn_features 2.1.0 in prod, tested with 2.0.1" in r
               for r in nodes["fraud_scorer"].reasons)
    edges = {(e.upstream, e.downstream) for e in view.edges}
    assert ("txn_features", "fraud_scorer") in edges
    assert ("click_features", "ranker") not in edges
    assert view.title == "chainml: what prod serves"
    reg = Registry(url)
    try:
        assert {e.name: e.status.value for e in reg.status()}["fraud_rules"] == "needs_retest"
    finally:
        reg.close()


def test_edges_follow_the_served_versions(database_url: str) -> None:
    """An input the registry's current version dropped still shows while the served
    version reads it; pins are labelled."""
    example_registry(database_url)
    ok(database_url, "env", "create", "prod")
    ok(database_url, "deploy", "txn_features", "fraud_scorer", "embedding_features",
       "user_embedding", "click_features", "ranker", "ranking_safety", "--env", "prod")
    ok(database_url, "register", "feature", "txn_features", "--version", "3.0.0",
       "--input", "transactions_raw")
    view = view_of(database_url)
    edges = {(e.upstream, e.downstream): e for e in view.edges}
    assert ("user_profiles", "txn_features") in edges
    assert edges[("fraud_scorer", "ranking_safety")].pin == "5.2.0"
    nodes = {n.name: n for n in view.nodes}
    assert nodes["txn_features"].version == "2.0.1 (current 3.0.0)"
    assert "fraud_scorer@5.2.0" in nodes["ranking_safety"].inputs


def test_missing_input_is_coloured_and_the_absent_node_not_drawn(database_url: str) -> None:
    example_registry(database_url)
    ok(database_url, "env", "create", "prod")
    ok(database_url, "deploy", "ranker", "--env", "prod", "--force", "--reason", "r")
    nodes = {n.name: n for n in view_of(database_url).nodes}
    assert set(nodes) == {"ranker"}
    assert nodes["ranker"].status == "missing_input"


def test_focus_depth_direction_and_kind(url: str) -> None:
    near = view_of(url, focus="fraud_scorer", depth=1)
    assert {n.name for n in near.nodes} == {"fraud_scorer", "txn_features",
                                            "embedding_features", "fraud_rules"}
    assert near.title == "chainml: what prod serves, around fraud_scorer"
    up = view_of(url, focus="fraud_rules", direction="upstream")
    assert "checkout_service" not in {n.name for n in up.nodes}
    assert {"transactions_raw", "clicks_raw", "fraud_scorer"} <= {n.name for n in up.nodes}
    models = view_of(url, kinds=["model"])
    assert {n.name for n in models.nodes} == {"fraud_scorer", "user_embedding"}
    with pytest.raises(InvalidInput, match="not served in 'prod'"):
        view_of(url, focus="ranker")
    with pytest.raises(InvalidInput, match="--impact"):
        view_of(url, impact="clicks_raw")


def test_cli_formats(url: str, tmp_path: Path) -> None:
    for fmt in ("dot", "mermaid", "html"):
        out = tmp_path / f"prod.{fmt}"
        result = run(url, "graph", "--env", "prod", "--format", fmt, "-o", str(out))
        assert result.exit_code == 0, result.output
        assert "Wrote" in result.stderr and "(10 nodes" in result.stderr
        text = out.read_text()
        assert "fraud_scorer" in text and "ranker" not in text
        assert "current 5.3.0" in text  # escaped per format: "5.2.0 (current 5.3.0)"
    dot = (tmp_path / "prod.dot").read_text()
    assert re.search(r'status-skewed" fillcolor="#F2A35C"', dot)
    assert 'label="chainml: what prod serves"' in dot


@needs_dot
def test_svg_and_png(url: str, tmp_path: Path) -> None:
    out = tmp_path / "prod.svg"
    result = run(url, "graph", "--env", "prod", "-o", str(out), "--focus", "fraud_scorer",
                 "--upstream", "--cluster")
    assert result.exit_code == 0, result.output
    root = ET.fromstring(out.read_bytes())
    ns = "{http://www.w3.org/2000/svg}"
    titles = {g.find(f"{ns}title").text for g in root.iter(f"{ns}g")  # type: ignore[union-attr]
              if (g.get("class") or "").split()[:1] == ["node"]
              and NODE_ID.fullmatch(g.get("id") or "")}
    assert len(titles) == 8  # fraud_scorer and its 7 ancestors in prod
    png = tmp_path / "prod.png"
    assert run(url, "graph", "--env", "prod", "-o", str(png)).exit_code == 0
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    laid = json.loads(subprocess.run(
        ["dot", "-Tjson"], input=run(url, "graph", "--env", "prod", "--format", "dot",
                                     "-o", "-").stdout.encode(),
        capture_output=True, check=True).stdout)
    assert len([o for o in laid["objects"] if NODE_ID.fullmatch(o.get("id") or "")]) == 10


@pytest.mark.parametrize("args, says", [
    (["--env", "prod", "--impact", "clicks_raw"], "--impact"),
    (["--env", "nowhere"], "nowhere"),
    (["--env", "prod", "--focus", "ranker"], "not served in 'prod'"),
    (["--env", "prod", "--focus", "no_such_node"], "no_such_node"),
    (["--env", "prod", "--depth", "1"], "--focus"),
])
def test_bad_combinations_exit_2(url: str, tmp_path: Path, args: list[str], says: str
                                 ) -> None:
    out = tmp_path / "x.dot"
    result = run(url, "graph", *args, "--format", "dot", "-o", str(out))
    assert result.exit_code == 2, result.output
    assert says in error_line(result)
    assert not out.exists()


def test_an_empty_environment_says_so(url: str) -> None:
    ok(url, "env", "create", "shadow")
    result = run(url, "graph", "--env", "shadow", "--format", "dot", "-o", "-")
    assert result.exit_code == 2
    assert "environment 'shadow' serves nothing" in error_line(result)
