"""The chain file: loading, every class of bad input (with its line), bombs, dump round-trip."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainml.errors import CycleError, InvalidInput, KindRuleError
from chainml.files.chainfile import (
    MAX_NODES,
    ChainFile,
    ChainNode,
    UnknownInput,
    chain_json_schema,
    dump_chain,
    load_chain_file,
    loads_chain,
    topological_order,
    unknown_inputs,
    validate_graph,
)
from chainml.kinds import Kind, may_consume

REPO = Path(__file__).resolve().parents[1]

GOOD = """\
chainml: 1
nodes:
  - name: map_tiles
    kind: source
    version: "2026-11-01"
  - name: eta_model
    kind: model
    version: "3.1.0"
    inputs: [eta_features, road_graph@2026-10-01]
    feedback: []
    owner: eta-team
    description: "Predicts arrival times."
    tags: [eta]
    max_age: 30d
    needs_tests: true
    require_suites: [offline-eval, shadow]
    meta: {artifact: "s3://models/eta/3.1.0"}
    node_meta: {team_slack: "#eta"}
  - name: eta_features
    kind: feature
    version: "7"
    inputs: [map_tiles]
"""
# Line numbers in GOOD, for the error table below.
L_MODEL, L_KIND, L_VERSION, L_INPUTS, L_OWNER = 6, 7, 8, 9, 11
L_TAGS, L_MAX_AGE, L_NEEDS, L_META, L_FEAT_INPUTS = 13, 14, 15, 17, 22


def load(text: str, name: str = "chain.yaml") -> ChainFile:
    return loads_chain(text, name)


def test_good_file_loads_with_every_field() -> None:
    f = load(GOOD)
    model = next(n for n in f.nodes if n.name == "eta_model")
    assert model.kind is Kind.MODEL and model.version == "3.1.0"
    assert model.input_refs() == [("eta_features", None), ("road_graph", "2026-10-01")]
    assert model.max_age == "30d" and model.require_suites == ["offline-eval", "shadow"]
    assert model.meta == {"artifact": "s3://models/eta/3.1.0"}
    assert model.node_meta == {"team_slack": "#eta"}
    assert [n.name for n in topological_order(f)] == ["map_tiles", "eta_features", "eta_model"]


def test_defaults_by_kind_and_duration_normalised() -> None:
    f = load("chainml: 1\nnodes:\n- {name: a, kind: policy, version: '1', max_age: 1d12h}\n"
             "- {name: b, kind: feature, version: '1'}\n")
    assert f.nodes[0].effective_needs_tests() is True and f.nodes[0].needs_tests is None
    assert f.nodes[1].effective_needs_tests() is False
    assert f.nodes[0].max_age == "36h"


def test_empty_node_list_is_valid() -> None:
    assert load("chainml: 1\n").nodes == []
    assert load("chainml: 1\nnodes: []\n") == ChainFile(chainml=1)


def test_json_and_yaml_give_the_same_file(tmp_path: Path) -> None:
    f = load(GOOD)
    (tmp_path / "c.json").write_text(dump_chain(f, "json"))
    (tmp_path / "c.yaml").write_text(GOOD)
    assert load_chain_file(tmp_path / "c.json") == load_chain_file(tmp_path / "c.yaml") == f


def bad(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


ERRORS = [
    ("float-label", bad('"3.1.0"', "3.10"), L_VERSION, "YAML reads 3.10 as a number"),
    ("date-label", bad('"3.1.0"', "2026-11-01"), L_VERSION, 'quotes: "2026-11-01"'),
    ("empty-label", bad('"3.1.0"', ""), L_VERSION, "version is empty"),
    ("label-space", bad('"3.1.0"', '"3 1"'), L_VERSION, "contains ' '"),
    ("label-at", bad('"3.1.0"', '"3@1"'), L_VERSION, "contains '@'"),
    ("input-name", bad("road_graph@", "road graph@"), L_INPUTS, "inputs[1]: invalid input name"),
    ("input-pin", bad("road_graph@2026-10-01", "road_graph@"), L_INPUTS, "pinned version"),
    ("input-twice", bad("[eta_features,", "[eta_features, eta_features@2,"), L_INPUTS,
     "inputs lists 'eta_features' twice"),
    ("node-name", bad("name: eta_model", "name: eta model"), L_MODEL, "(nodes[1])"),
    ("long-name", bad("name: eta_model", "name: " + "x" * 201), L_MODEL, "201 characters"),
    ("kind", bad("kind: model", "kind: modle"), L_KIND, "kind 'modle' is not one of"),
    ("typo-field", bad("owner:", "ownr:"), L_OWNER, "did you mean 'owner'"),
    ("top-typo", GOOD.replace("nodes:", "nodse:"), 2, "unknown field 'nodse'"),
    ("duration", bad("30d", "30x"), L_MAX_AGE, "invalid max_age '30x'"),
    ("duration-number", bad("30d", "30"), L_MAX_AGE, "YAML reads 30 as a number"),
    ("duration-too-long", bad("30d", "3651d"), L_MAX_AGE, "longer than 3650d"),
    ("norway-tag", bad("[eta]", "[no]"), L_TAGS, "tags[0]: YAML reads no as true/false"),
    ("tags-not-list", bad("[eta]", "eta"), L_TAGS, "tags must be a list"),
    ("needs-tests", bad("needs_tests: true", "needs_tests: maybe"), L_NEEDS, "true or false"),
    ("meta-list", bad('{artifact: "s3://models/eta/3.1.0"}', "[1]"), L_META, "meta must be a map"),
    ("meta-nan", bad('"s3://models/eta/3.1.0"', ".nan"), L_META, "JSON cannot hold"),
    ("meta-date", bad('"s3://models/eta/3.1.0"', "2026-01-01"), L_META, "is a date"),
    ("meta-int-key", bad("{artifact:", "{1:"), L_META, "quote it"),
    ("owner-number", bad("eta-team", "42"), L_OWNER, "YAML reads 42 as a number"),
    ("owner-control", bad("eta-team", '"a\\tb"'), L_OWNER, "owner contains '\\t'"),
    ("format-2", GOOD.replace("chainml: 1", "chainml: 2"), 1, "chainml must be 1"),
    ("format-true", GOOD.replace("chainml: 1", "chainml: true"), 1, "chainml must be 1"),
    ("format-missing", GOOD.replace("chainml: 1\n", ""), 1, "start the file with 'chainml: 1'"),
    ("missing-kind", GOOD + "  - name: x\n    version: '1'\n", 23, "'kind' is missing"),
    ("entry-not-map", GOOD + "  - just text\n", 23, "must be a mapping"),
    ("dup-name", GOOD + "  - {name: eta_model, kind: feature, version: '1'}\n", 23,
     "'eta_model' is used twice"),
    ("dup-case", GOOD + "  - {name: ETA_Model, kind: feature, version: '1'}\n", 23,
     "only in case"),
    ("both-lists", bad("feedback: []", "feedback: [eta_features]"), L_MODEL,
     "under both inputs and feedback"),
    ("source-inputs", bad("kind: source\n", "kind: source\n    inputs: [x]\n"), 3,
     "a source may not have inputs"),
    ("kind-rule", bad("kind: feature", "kind: consumer"), L_INPUTS,
     "a model may not consume 'eta_features', which is a consumer"),
    ("dup-key", bad("owner: eta-team", "owner: eta-team\n    owner: other"), L_OWNER + 1,
     "repeats the key 'owner'"),
    ("syntax", bad("    owner: eta-team", "   owner: eta-team"), L_OWNER, "is not valid YAML"),
    # Where the broken construct starts, not where the parser gave up (lines later).
    ("unclosed-bracket", bad("[eta]", "[eta"), L_TAGS, "the [ opened on this line is not closed"),
    ("unclosed-quote", bad('"3.1.0"', '"3.1.0'), L_VERSION,
     "the quote opened on this line is not closed on it, so YAML reads on to line 12"),
    ("quote-never-closed", GOOD + '  - name: "x\n', 23, "the quote opened on this line is never"),
    ("not-mapping", "- a\n- b\n", 1, "the file is a list"),
    ("empty", "", 1, "the file is empty"),
]


@pytest.mark.parametrize(("text", "line", "needle"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_errors_name_file_line_and_reason(text: str, line: int | None, needle: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load(text)
    msg = str(info.value)
    assert msg.startswith("chain.yaml"), msg
    if line is not None:
        assert msg.startswith(f"chain.yaml line {line}"), msg
    assert needle in msg, msg
    assert msg.endswith((".", "?")) and "\n" not in msg and "pydantic" not in msg, msg


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    text = (bad('"3.1.0"', "3.10").replace("kind: feature", "kind: modle")
            .replace("owner: eta-team", "ownr: eta-team")
            + "  - {name: map_tiles, kind: source, version: '2'}\n"
            + "  - {name: report, kind: consumer, version: '1', inputs: [eta_modle]}\n")
    with pytest.raises(InvalidInput) as info:
        loads_chain(text, "chain.yaml", known={"road_graph": "source"})
    lines = str(info.value).splitlines()
    assert lines == [
        "chain.yaml has 5 problems:",
        "  chain.yaml line 8 (node 'eta_model'): version: YAML reads 3.10 as a number (3.1), "
        'not text; write it in quotes: "3.10".',
        "  chain.yaml line 11 (node 'eta_model'): unknown field 'ownr'; did you mean 'owner'? "
        "(the fields are name, kind, version, inputs, feedback, owner, description, tags, "
        "max_age, needs_tests, require_suites, meta, node_meta).",
        "  chain.yaml line 20 (node 'eta_features'): kind 'modle' is not one of source, "
        "feature, model, policy, consumer; did you mean 'model'?",
        "  chain.yaml line 23 (node 'map_tiles'): the node name 'map_tiles' is used twice.",
        "  chain.yaml line 24 (node 'report'): inputs names 'eta_modle', which is neither in "
        "this file nor in the registry; did you mean 'eta_model'?",
    ]
    assert info.value.problems == tuple(line.strip() for line in lines[1:])


def test_many_problems_are_cut_after_twenty() -> None:
    text = "chainml: 1\nnodes:\n" + "".join(
        f"  - {{name: n{i}, kind: sauce, version: '1'}}\n" for i in range(25))
    with pytest.raises(InvalidInput) as info:
        load(text)
    lines = str(info.value).splitlines()
    assert lines[0] == "chain.yaml has 25 problems:" and len(lines) == 22
    assert lines[1].startswith("  chain.yaml line 3 (node 'n0'): kind 'sauce' is not one of")
    assert lines[-1] == "  ... and 5 more."


def test_yaml_level_problems_are_reported_together() -> None:
    text = ("chainml: 1\nnodes:\n  - &a {name: a, kind: source, version: '1'}\n"
            "  - {name: b, kind: source, version: '1', version: '2'}\n  - *a\n")
    with pytest.raises(InvalidInput) as info:
        load(text)
    assert str(info.value).splitlines() == [
        "chain.yaml has 3 problems:",
        "  chain.yaml line 3 (nodes[0]): defines the YAML anchor &a; anchors and aliases are "
        "refused, write the value out.",
        "  chain.yaml line 4 (nodes[1]): repeats the key 'version'.",
        "  chain.yaml line 5 (nodes[2]): uses the YAML alias *a; aliases and anchors are "
        "refused, write the value out.",
    ]


def test_dates_and_booleans_are_shown_as_yaml_writes_them() -> None:
    with pytest.raises(InvalidInput) as info:
        load(bad('"3.1.0"', "2026-11-01"))
    assert 'version: YAML reads 2026-11-01 as a date, not text; write it in quotes' \
        in str(info.value)
    with pytest.raises(InvalidInput, match=r"YAML reads 2026-11-01t12:00:00 as a date "
                       r"\(2026-11-01 12:00:00\), not text"):
        load(bad('"3.1.0"', "2026-11-01t12:00:00"))
    with pytest.raises(InvalidInput, match=r"YAML reads yes as true/false \(true\)"):
        load(bad("eta-team", "yes"))
    with pytest.raises(InvalidInput, match=r"chainml must be 1 .*, not 2026-11-01\.$"):
        load(GOOD.replace("chainml: 1", "chainml: 2026-11-01"))


def test_error_names_the_node() -> None:
    with pytest.raises(InvalidInput, match=r"line 8 \(node 'eta_model'\): version"):
        load(bad('"3.1.0"', "3.10"))


def test_cycle_is_refused_listing_the_whole_cycle() -> None:
    text = bad("inputs: [map_tiles]", "inputs: [map_tiles, eta_model]")
    with pytest.raises(CycleError) as info:
        load(text)
    assert info.value.cycle[0] == info.value.cycle[-1]
    assert set(info.value.cycle) == {"eta_model", "eta_features"}
    assert "line" in str(info.value) and " -> " in str(info.value)


def test_self_input_is_a_cycle() -> None:
    with pytest.raises(CycleError, match="a -> a"):
        load("chainml: 1\nnodes:\n- {name: a, kind: feature, version: '1', inputs: [a]}\n")


def test_feedback_may_close_a_cycle() -> None:
    f = load("chainml: 1\nnodes:\n- {name: s, kind: source, version: '1', feedback: [m]}\n"
             "- {name: m, kind: model, version: '1', inputs: [s]}\n")
    assert [n.name for n in topological_order(f)] == ["s", "m"]


def test_topological_order_and_cycle_error_in_code() -> None:
    nodes = [ChainNode(name=n, kind=Kind.FEATURE, version="1", inputs=i)
             for n, i in [("c", ["b"]), ("b", ["a"]), ("a", []), ("z", []), ("d", ["a"])]]
    f = ChainFile(chainml=1, nodes=nodes)
    assert [n.name for n in topological_order(f)] == ["a", "b", "c", "d", "z"]
    nodes[2] = ChainNode(name="a", kind=Kind.FEATURE, version="1", inputs=["c"])
    with pytest.raises(CycleError) as info:
        topological_order(ChainFile(chainml=1, nodes=nodes))
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1] and len(cycle) == 4
    for up, down in zip(cycle, cycle[1:], strict=False):  # data-flow direction
        assert up in {s.partition("@")[0] for s in next(n for n in nodes if n.name == down).inputs}


def test_validate_graph_kind_rule_before_cycle() -> None:
    f = ChainFile(chainml=1, nodes=[
        ChainNode(name="p", kind=Kind.POLICY, version="1", inputs=["s"]),
        ChainNode(name="s", kind=Kind.FEATURE, version="1", inputs=["p"]),
    ])
    with pytest.raises(KindRuleError):
        validate_graph(f, {"x": Kind.SOURCE})


def test_unknown_inputs_and_known_registry() -> None:
    f = load(GOOD)
    assert unknown_inputs(f, []) == [UnknownInput("eta_model", "road_graph", False)]
    assert unknown_inputs(f, ["road_graph"]) == []
    assert load(GOOD).nodes == loads_chain(GOOD, "c.yaml", known=["road_graph"]).nodes
    with pytest.raises(InvalidInput, match=r"line 9 .*'road_graph'.*did you mean 'Road_graph'"):
        loads_chain(GOOD, "chain.yaml", known=["Road_graph"])
    with pytest.raises(KindRuleError, match="may not consume 'road_graph', which is a policy"):
        loads_chain(GOOD, "chain.yaml", known={"road_graph": "policy"})


# --- bombs and limits -------------------------------------------------------------

BILLION_LAUGHS = """\
chainml: 1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
nodes: []
"""


def test_billion_laughs_is_refused_at_the_first_anchor() -> None:
    with pytest.raises(InvalidInput, match="line 2 .*anchor &a"):
        load(BILLION_LAUGHS)


def test_alias_alone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="alias"):
        load("chainml: 1\nnodes: [*x]\n")


@pytest.mark.parametrize("tag", ["!!python/object/apply:os.system ['echo hi']",
                                 "!!python/name:os.system", "!custom x", "!!binary aGk=",
                                 "!!set {a}", "!!timestamp 2026-01-01"])
def test_foreign_tags_are_refused(tag: str) -> None:
    with pytest.raises(InvalidInput, match="line 5 .*tag"):
        load(f"chainml: 1\nnodes:\n- name: a\n  kind: source\n  version: {tag}\n")


def test_merge_key_and_second_document_are_refused() -> None:
    with pytest.raises(InvalidInput, match="merge key"):
        load("chainml: 1\nnodes:\n- <<: {name: a}\n")
    with pytest.raises(InvalidInput, match="line 2: holds more than one YAML document"):
        load("chainml: 1\n---\nchainml: 1\n")


def test_file_over_16_mib_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"chainml: 1\n# " + b"x" * (17 * 1024 * 1024) + b"\n")
    with pytest.raises(InvalidInput, match="big.yaml is larger than 16 MiB"):
        load_chain_file(big)
    with pytest.raises(InvalidInput, match="larger than 16 MiB"):
        loads_chain("#" * (17 * 1024 * 1024), "big.yaml")


@pytest.mark.parametrize("depth", [60, 5000])
def test_deep_nesting_is_refused(depth: int) -> None:
    text = "chainml: 1\nnodes:\n- {name: a, kind: source, version: '1', meta: {x: "
    with pytest.raises(InvalidInput, match="deeper than"):
        load(text + "[" * depth + "]" * depth + "}}\n")
    doc = '{"chainml": 1, "nodes": [{"name": "a", "kind": "source", "version": "1", "meta": '
    with pytest.raises(InvalidInput, match="deeper than"):
        load(doc + '{"x":' * depth + "1" + "}" * depth + "}]}", "c.json")


def test_meta_may_nest_up_to_the_limit() -> None:
    doc = '{"chainml": 1, "nodes": [{"name": "a", "kind": "source", "version": "1", "meta": '
    f = load(doc + '{"x":' * 47 + "1" + "}" * 47 + "}]}", "c.json")
    assert load(dump_chain(f)) == f


def test_too_many_nodes() -> None:
    node = '{"name": "n", "kind": "source", "version": "1"}'
    text = '{"chainml": 1, "nodes": [' + ",".join([node] * (MAX_NODES + 1)) + "]}"
    with pytest.raises(InvalidInput, match="more than the 200,000"):
        load(text, "big.json")


def test_json_errors_have_lines() -> None:
    with pytest.raises(InvalidInput, match="c.json line 3: is not valid JSON"):
        load('{"chainml": 1,\n "nodes": [\n  {,}]}', "c.json")
    text = dump_chain(load(GOOD), "json").replace('"3.1.0"', "3.1", 1)
    with pytest.raises(InvalidInput, match=r"c.json line \d+ \(node 'eta_model'\): version"):
        load(text, "c.json")
    with pytest.raises(InvalidInput, match="line 1: repeats the key 'a'"):
        load('{"a": 1, "a": 2}', "c.json")


def test_not_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_bytes(b"chainml: 1\nnodes:\n- name: \xff\n")
    with pytest.raises(InvalidInput, match="c.yaml line 3: byte 0xff is not UTF-8"):
        load_chain_file(p)
    with pytest.raises(InvalidInput, match="Cannot read"):
        load_chain_file(tmp_path / "missing.yaml")


# --- dump ----------------------------------------------------------------------------

def test_dump_is_minimal_ordered_and_quotes_labels() -> None:
    text = dump_chain(load(GOOD))
    assert text.index("name: map_tiles") < text.index("name: eta_features") \
        < text.index("name: eta_model")
    assert 'version: "7"' in text and 'version: "2026-11-01"' in text
    assert "feedback" not in text and "needs_tests: true" in text
    assert "inputs: [eta_features, road_graph@2026-10-01]" in text


def test_dump_does_not_depend_on_file_order() -> None:
    f = load(GOOD)
    nodes = list(f.nodes)
    random.Random(1).shuffle(nodes)
    g = ChainFile(chainml=1, nodes=nodes)
    assert g == f
    assert dump_chain(g) == dump_chain(f) and dump_chain(g, "json") == dump_chain(f, "json")


def test_equal_ignores_node_order_only() -> None:
    f = load(GOOD)
    other = load(GOOD.replace('"7"', '"8"'))
    assert f != other and f != object()


# --- schema --------------------------------------------------------------------------

def test_committed_schema_is_current() -> None:
    committed = json.loads((REPO / "chainml" / "files" / "chainfile.schema.json").read_text())
    assert committed == chain_json_schema(), (
        "chainml/files/chainfile.schema.json is stale. HOW TO FIX: run "
        "python -m chainml.files.chainfile > chainml/files/chainfile.schema.json"
    )


def test_module_prints_schema() -> None:
    out = subprocess.run([sys.executable, "-m", "chainml.files.chainfile"], capture_output=True,
                         text=True, check=True, cwd=REPO)
    assert json.loads(out.stdout) == chain_json_schema()


# --- property tests ------------------------------------------------------------------

NAME = st.from_regex(r"[A-Za-z0-9_\-./:]{1,24}", fullmatch=True)
LABEL = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FFF).filter(
    lambda c: c.isprintable() and not c.isspace() and c != "@"), min_size=1, max_size=12)
SAFE = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
TEXT = st.text(SAFE, max_size=40)
ONE_LINE = st.text(SAFE.filter(str.isprintable), min_size=1, max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def chain_files(draw: st.DrawFn) -> ChainFile:
    names = draw(st.lists(NAME, max_size=8, unique_by=str.lower))
    outside = draw(st.lists(NAME.map(lambda n: "ext/" + n), max_size=2, unique_by=str.lower))
    kinds = [draw(st.sampled_from(list(Kind))) for _ in names]
    nodes = []
    for i, name in enumerate(names):
        ups = [n for n, k in zip(names[:i], kinds[:i], strict=True)
               if may_consume(kinds[i], k)] + ([] if kinds[i] is Kind.SOURCE else outside)
        chosen = draw(st.lists(st.sampled_from(ups), unique=True, max_size=3)) if ups else []
        pins = [draw(st.none() | LABEL) for _ in chosen]
        rest = [n for n in names if n not in chosen]
        nodes.append(ChainNode(
            name=name, kind=kinds[i], version=draw(LABEL),
            inputs=[f"{u}@{p}" if p else u for u, p in zip(chosen, pins, strict=True)],
            feedback=draw(st.lists(st.sampled_from(rest), unique=True, max_size=2)) if rest else [],
            owner=draw(st.none() | ONE_LINE), description=draw(st.none() | TEXT),
            tags=draw(st.lists(ONE_LINE, unique=True, max_size=3)),
            max_age=draw(st.none() | st.integers(1, 999_999).map(lambda s: f"{s}s")
                          | st.integers(1, 500).map(lambda w: f"{w}w59m59s")),
            needs_tests=draw(st.none() | st.booleans()),
            require_suites=draw(st.lists(LABEL, unique=True, max_size=2)),
            meta=draw(st.dictionaries(TEXT, JSON, max_size=3)),
            node_meta=draw(st.dictionaries(TEXT, JSON, max_size=2)),
        ))
    draw(st.randoms()).shuffle(nodes)
    return ChainFile(chainml=1, nodes=nodes)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chain_files())
def test_dump_then_load_round_trips(f: ChainFile) -> None:
    assert loads_chain(dump_chain(f), "c.yaml") == f
    assert loads_chain(dump_chain(f, "json"), "c.json") == f
    assert dump_chain(loads_chain(dump_chain(f), "c.yaml")) == dump_chain(f)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["c.yaml", "c.json"]))
def test_arbitrary_text_raises_only_invalid_input(text: str, filename: str) -> None:
    try:
        loads_chain(text, filename)
    except InvalidInput:
        pass


YAMLISH = st.text(st.sampled_from(list("chainml: 1\nnodes-[]{},'\"&*!<>|#@%?~01.x \t")),
                  max_size=200)


@settings(max_examples=500, deadline=None)
@given(YAMLISH)
def test_yaml_shaped_garbage_raises_only_invalid_input(text: str) -> None:
    try:
        loads_chain("chainml: 1\n" + text, "c.yaml")
    except InvalidInput:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["chainml", "nodes", "x"]),
                       st.lists(st.dictionaries(
                           st.sampled_from(list(ChainNode.model_fields) + ["bogus"]), JSON,
                           max_size=6), max_size=3) | JSON, max_size=3))
def test_wrongly_typed_documents_raise_only_invalid_input(doc: dict[str, object]) -> None:
    try:
        loads_chain(json.dumps(doc), "c.json")
    except InvalidInput as exc:
        assert str(exc).startswith("c.json")
