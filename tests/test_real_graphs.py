"""The real-world graphs of shared/real-graphs survive conversion to chain files.

Counts, validity, impact sets (descendants) and the facts listed in that folder's
README are checked on the converted ChainFile, through the name map. Without the
folder these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from functools import cache
from pathlib import Path

import networkx as nx
import pytest

from chainml.files.chainfile import ChainFile, dump_chain, loads_chain, topological_order
from chainml.kinds import Kind, may_consume
from tests.realgraph import load_real_graph, load_real_graph_mapped
from tests.shared import shared_path


def graph(name: str) -> Path:
    """A file of ../shared/real-graphs: the test skips without it, and fails under CI=true
    (CI must run these)."""
    return shared_path("real-graphs", name)


FILES = {  # file: (nodes, edges), from the README's table
    "marquez_seed.json": (26, 27),
    "dbt_jaffle_shop_classic.json": (8, 8),
    "dbt_jaffle_shop.json": (19, 17),
    "dbt_tuva.json": (1314, 2899),
    "dbt_tuva_refscan.json": (1316, 2737),
    "dvc_example_get_started.json": (20, 20),
    "kedro_viz_demo.json": (180, 275),
    "tfx_taxi.json": (11, 15),
}
LARGE = {"dbt_tuva.json", "dbt_tuva_refscan.json"}


@cache
def original(name: str) -> nx.DiGraph:
    data = json.loads(graph(name).read_text())
    g = nx.DiGraph()
    g.add_nodes_from((n["name"], {"kind": n["kind"]}) for n in data["nodes"])
    g.add_edges_from(data["edges"])
    return g


@cache
def converted(name: str) -> tuple[ChainFile, dict[str, str], nx.DiGraph]:
    chain, names = load_real_graph_mapped(graph(name))
    g = nx.DiGraph()
    g.add_nodes_from((n.name, {"kind": n.kind}) for n in chain.nodes)
    g.add_edges_from((up, n.name) for n in chain.nodes for up, _ in n.input_refs())
    return chain, names, g


class View:
    """Questions about the converted graph, asked with the original names."""

    def __init__(self, name: str) -> None:
        self.chain, self.names, self.g = converted(name)
        self.back = {v: k for k, v in self.names.items()}

    def desc(self, node: str) -> set[str]:
        return {self.back[d] for d in nx.descendants(self.g, self.names[node])}

    def anc(self, node: str) -> set[str]:
        return {self.back[a] for a in nx.ancestors(self.g, self.names[node])}

    def parents(self, node: str) -> set[str]:
        return {self.back[p] for p in self.g.predecessors(self.names[node])}

    def kind(self, node: str) -> Kind:
        kind: Kind = self.g.nodes[self.names[node]]["kind"]
        return kind

    def roots(self) -> int:
        return sum(1 for n in self.g if self.g.in_degree(n) == 0)

    def sinks(self) -> int:
        return sum(1 for n in self.g if self.g.out_degree(n) == 0)

    def longest(self) -> int:
        return int(nx.dag_longest_path_length(self.g))

    def components(self) -> int:
        return nx.number_weakly_connected_components(self.g)


@pytest.mark.parametrize("name", sorted(FILES))
def test_counts_survive_and_the_file_is_valid(name: str) -> None:
    chain, names, g = converted(name)
    nodes, edges = FILES[name]
    assert len(chain.nodes) == nodes == original(name).number_of_nodes()
    assert sum(len(n.inputs) for n in chain.nodes) == edges == g.number_of_edges()
    assert len(set(names.values())) == len(names) == nodes
    assert {(names[u], names[v]) for u, v in original(name).edges} == set(g.edges)
    assert len(topological_order(chain)) == nodes
    assert loads_chain(dump_chain(chain), name.replace(".json", ".yaml")) == chain
    assert loads_chain(dump_chain(chain, "json"), name) == chain
    kinds = {n.name: n.kind for n in chain.nodes}
    for node in chain.nodes:
        assert node.version == "1"
        assert all(may_consume(node.kind, kinds[up]) for up, _ in node.input_refs())


def sample(name: str) -> list[str]:
    nodes = sorted(original(name))
    return random.Random(20261101).sample(nodes, 50) if name in LARGE else nodes


@pytest.mark.parametrize("name", sorted(FILES))
def test_impact_sets_equal_networkx_descendants(name: str) -> None:
    view, g = View(name), original(name)
    for node in sample(name):
        assert view.desc(node) == nx.descendants(g, node), node


def test_load_real_graph_and_kind_map() -> None:
    assert load_real_graph(graph("tfx_taxi.json")) == converted("tfx_taxi.json")[0]
    chain = load_real_graph(graph("tfx_taxi.json"),
                            {"resolver": "feature", "validation": "policy"})
    kinds = {n.name: n.kind for n in chain.nodes}
    assert kinds["Resolver.latest_model_resolver"] is Kind.FEATURE
    # A policy may not read CsvExampleGen (a source): StatisticsGen is repaired to a feature.
    assert kinds["StatisticsGen"] is Kind.FEATURE and kinds["SchemaGen"] is Kind.POLICY


def test_marquez_facts() -> None:
    v = View("marquez_seed.json")
    ns = "food_delivery"
    assert v.roots() == 8 and v.sinks() == 2 and v.longest() == 9
    assert v.desc(f"dataset:{ns}/public.orders") == {
        *(f"dataset:{ns}/public.{d}" for d in (
            "orders_7_days", "delivery_7_days", "top_delivery_times", "discounts",
            "popular_orders_day_of_week")),
        *(f"job:{ns}/{j}" for j in (
            "etl_orders_7_days", "etl_delivery_7_days", "delivery_times_7_days",
            "orders_popular_day_of_week", "email_discounts"))}
    assert len(v.desc(f"dataset:{ns}/public.customers")) == 8
    assert {p for p in v.desc(f"dataset:{ns}/public.customers") if p.startswith("job:")
            and f"dataset:{ns}/public.customers" in v.parents(p)} == {
        f"job:{ns}/etl_delivery_7_days", f"job:{ns}/orders_popular_day_of_week",
        f"job:{ns}/email_discounts"}
    assert len(v.anc(f"dataset:{ns}/public.popular_orders_day_of_week")) == 23
    assert v.kind(f"job:{ns}/email_discounts") is Kind.FEATURE


def test_jaffle_shop_facts() -> None:
    v = View("dbt_jaffle_shop_classic.json")
    assert v.desc("raw_orders") == {"stg_orders", "orders", "customers"}
    assert v.desc("raw_payments") == {"stg_payments", "orders", "customers"}
    assert v.anc("customers") == {"raw_customers", "raw_orders", "raw_payments",
                                  "stg_customers", "stg_orders", "stg_payments"}
    assert v.longest() == 2
    assert v.kind("raw_orders") is Kind.SOURCE and v.kind("orders") is Kind.FEATURE
    w = View("dbt_jaffle_shop.json")
    assert w.components() == 3 and w.longest() == 4
    assert w.desc("source:ecom.raw_orders") == {"stg_orders", "orders", "order_items",
                                                "customers"}
    assert len(w.anc("customers")) == 12
    assert w.kind("metricflow_time_spine") is Kind.FEATURE  # an isolated dbt model


def test_tuva_facts() -> None:
    v = View("dbt_tuva.json")
    assert (v.roots(), v.sinks(), v.components()) == (252, 109, 5)
    assert sum(1 for n in v.g if v.g.degree(n) == 0) == 2
    assert v.longest() == 35 and len(list(nx.topological_generations(v.g))) == 36
    impacted = v.desc("medical_claim")
    assert len(impacted) == 593
    assert Counter(original("dbt_tuva.json").nodes[n]["kind"] for n in impacted)["model"] == 589
    assert len(v.desc("eligibility")) == 520
    assert len(v.anc("cms_hcc__patient_risk_scores")) == 262
    assert sum(1 for n in impacted if n.startswith("benchmarks__")) == 19
    assert {"benchmarks__predict_inpatient", "benchmarks__predict_member_month"} <= impacted
    top = sorted(((len(nx.descendants(v.g, n)), v.back[n]) for n in v.g), reverse=True)[:3]
    assert top == [(593, "medical_claim"), (580, "reference_data__calendar"),
                   (547, "provider_data__provider")]


def test_tuva_refscan_versus_dbt_parse() -> None:
    parsed, scanned = View("dbt_tuva.json"), View("dbt_tuva_refscan.json")
    a = {(parsed.back[u], parsed.back[d]) for u, d in parsed.g.edges}
    b = {(scanned.back[u], scanned.back[d]) for u, d in scanned.g.edges}
    assert (len(a & b), len(a - b), len(b - a)) == (2722, 177, 15)
    assert sum(1 for n in scanned.g if scanned.g.degree(n) == 0) == 140


def test_dvc_facts() -> None:
    v = View("dvc_example_get_started.json")
    assert v.roots() == 12 and v.sinks() == 1 and v.longest() == 8
    impacted = v.desc("param:featurize.max_features")
    assert impacted == {"stage:featurize", "data/features", "stage:train", "model.pkl",
                        "stage:evaluate", "eval"}
    assert [n for n in impacted if v.kind(n) is Kind.MODEL] == ["model.pkl"]
    assert len(v.desc("data/data.xml")) == 8 and len(v.anc("eval")) == 19


def test_kedro_facts() -> None:
    v = View("kedro_viz_demo.json")
    assert (v.components(), v.roots(), v.sinks(), v.longest()) == (2, 30, 11, 38)
    impacted = v.desc("factory_historic")
    assert len(impacted) == 98
    assert {n for n in impacted if v.kind(n) is Kind.MODEL} == {
        "factory_imputer", "train_model", "train_trainset_model"}
    assert v.desc("train_model") == {
        "task:recommend.bulk_optimize", "task:sensitivity.generate_sensitivity_data",
        "task:train.train_model.generate_performance_report", "test_metrics",
        "test_sensitivity_plot_df", "train_report_figures"}
    assert len(v.desc("params:train_model.regressor")) == 22 and len(v.anc("train_model")) == 77
    assert v.names["task:Apply Types"] == "task:Apply_Types"


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_missing_shared_folder_skips_but_fails_under_ci(tmp_path: Path, ci: str,
                                                       outcome: str) -> None:
    """Run this module in a child pytest against a shared folder that is not there."""
    env = {**os.environ, "CI": ci, "CHAINML_SHARED_DIR": str(tmp_path / "absent")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         f"{__file__}::test_marquez_facts", f"{__file__}::test_load_real_graph_and_kind_map"],
        cwd=Path(__file__).resolve().parents[1], env=env, capture_output=True, text=True,
        timeout=300)
    assert f"2 {outcome}" in done.stdout, done.stdout + done.stderr
    assert done.returncode == (1 if outcome == "failed" else 0), done.stdout
    assert "absent" in done.stdout if outcome == "failed" else True


def test_tfx_facts() -> None:
    v = View("tfx_taxi.json")
    assert v.desc("SchemaGen") == {"ExampleValidator", "Transform", "Trainer", "Evaluator",
                                   "Pusher"}
    assert v.desc("Transform") == {"Trainer", "Evaluator", "Pusher"}
    assert v.anc("Pusher") == set(original("tfx_taxi.json")) - {"Pusher", "ExampleValidator"}
    assert v.parents("Trainer") == {"Resolver.latest_model_resolver", "SchemaGen", "Transform"}
    assert v.parents("Evaluator") == {
        "CsvExampleGen", "Trainer", "Resolver.latest_blessed_model_resolver-model-resolver"}
    assert v.kind("Trainer") is Kind.MODEL and v.kind("CsvExampleGen") is Kind.SOURCE
    assert v.kind("Pusher") is Kind.CONSUMER
