"""The renderers' input model and its pure helpers (filter_kinds, mark_impact)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chainml.errors import InvalidInput, NodeNotFound
from chainml.render.text import clean, namespace
from chainml.render.view import (
    GraphView,
    ViewEdge,
    ViewNode,
    filter_kinds,
    mark_impact,
    node_ids,
)
from tests.render_fixtures import fraud_view


def names(view: GraphView) -> set[str]:
    return {node.name for node in view.nodes}


def test_filter_kinds() -> None:
    part = filter_kinds(fraud_view(), ["model", "policy"])
    assert {n.kind for n in part.nodes} == {"model", "policy"}
    assert len(part.nodes) == 6
    assert {(e.upstream, e.downstream) for e in part.edges} == {
        ("fraud/embed", "fraud/scorer"), ("fraud/scorer", "risk/thresholds"),
        ("fraud/scorer", "risk/allowlist"), ("search/ranker", "search/safety"),
    }
    with pytest.raises(InvalidInput, match="Unknown kind 'modle'"):
        filter_kinds(fraud_view(), ["modle"])


def test_mark_impact_highlights_and_fades_without_changing_the_input() -> None:
    view = fraud_view()
    marked = mark_impact(view, "fraud/embed", {"fraud/scorer", "risk/thresholds"})
    lit = {n.name for n in marked.nodes if n.highlighted}
    assert lit == {"fraud/embed", "fraud/scorer", "risk/thresholds"}
    assert all(n.faded for n in marked.nodes if n.name not in lit)
    assert not any(n.highlighted or n.faded for n in view.nodes)
    with pytest.raises(NodeNotFound):
        mark_impact(view, "nope", set())


def test_view_validates_kind_and_status() -> None:
    with pytest.raises(ValidationError):
        ViewNode(name="a", kind="dataset")
    with pytest.raises(ValidationError):
        ViewNode(name="a", kind="model", status="green")
    with pytest.raises(ValidationError):
        ViewEdge(upstream="a", downstream="b", colour="red")  # type: ignore[call-arg]
    assert ViewNode(name="a", kind="model").status is None


def test_node_ids_are_positional_and_ignore_duplicates() -> None:
    view = GraphView(nodes=[ViewNode(name=n, kind="source") for n in ["a", "b", "a"]], edges=[])
    assert node_ids(view) == {"a": "n0", "b": "n1"}


@pytest.mark.parametrize(
    ("name", "prefix"),
    [("fraud/scorer", "fraud"), ("a/b:c.d-e_f", "a"), ("s3://lake/events", "s3://lake"),
     ("s3://lake", "s3://lake"), ("plain", None), ("/lead", None), ("x:y", None)],
)
def test_namespace(name: str, prefix: str | None) -> None:
    assert namespace(name) == prefix


def test_clean_removes_what_no_output_should_carry() -> None:
    assert clean("a\u202eb\u2066c") == "abc"
    assert clean("a\x00b\x1bc\nd\u2028e") == "a b c d e"
    assert clean("a\nb", keep_newlines=True) == "a\nb"
    assert clean("\ud800x") == "\ufffdx"
    assert clean("a\ufffeb\uffffc") == "a\ufffdb\ufffdc"  # not XML 1.0 characters
    assert clean("x" * 10_000, 10) == "x" * 9 + "\u2026"
    assert clean(None) == "" and clean(3) == "3"
