"""The declarative chain file: what ``chainml apply`` reads and ``chainml export`` writes.

A chain file is YAML (or JSON, when its name ends in ``.json``)::

    chainml: 1
    nodes:
      - name: eta_model
        kind: model
        version: "3.1.0"
        inputs: [eta_features, road_graph@2026-10-01]

Limits, enforced before any validation so that a hostile file costs little:

* at most ``MAX_BYTES`` = 16 MiB per file;
* no YAML anchors or aliases (billion-laughs bombs) and no tags outside YAML's
  core schema (``!!python/object`` ...);
* at most ``MAX_DEPTH`` = 50 levels of nesting (``meta`` is free JSON, but bounded);
* at most ``MAX_NODES`` = 200,000 nodes;
* ``description`` at most 10,000 characters, ``owner`` 200, a tag 100, ``max_age`` 3650d.

Every problem is a :class:`chainml.errors.InvalidInput` whose message is one
sentence naming the file, the line and the node.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

import networkx as nx  # type: ignore[import-untyped, unused-ignore]
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from chainml.errors import ChainmlError, CycleError, InvalidInput, KindRuleError
from chainml.files.chainfile_errors import Source, explain_errors, type_name
from chainml.files.chainfile_fields import (
    MAX_AGE_SECONDS,
    MAX_DESCRIPTION,
    MAX_META_DEPTH,
    MAX_NODES,
    MAX_OWNER,
    MAX_TAG,
    Description,
    Duration,
    FeedbackName,
    InputSpec,
    JsonObject,
    Label,
    NeedsTests,
    NodeJsonObject,
    NodeName,
    Owner,
    Suite,
    Tag,
    fail,
    unique,
)
from chainml.files.safeload import MAX_BYTES, MAX_DEPTH, parse_json, parse_yaml, read_text
from chainml.kinds import NEEDS_TESTS_BY_DEFAULT, Kind, consumable_by, may_consume

__all__ = [
    "MAX_AGE_SECONDS", "MAX_BYTES", "MAX_DEPTH", "MAX_DESCRIPTION", "MAX_META_DEPTH",
    "MAX_NODES", "MAX_OWNER", "MAX_TAG", "ChainFile", "ChainNode", "UnknownInput",
    "chain_json_schema", "dump_chain", "load_chain_file", "loads_chain",
    "topological_order", "unknown_inputs", "validate_graph",
]


class ChainNode(BaseModel):
    """One node of the chain and the version of it that should be current."""

    model_config = ConfigDict(extra="forbid")

    name: NodeName = Field(description="Unique node name: 1-200 of A-Z a-z 0-9 _ - . / :")
    kind: Kind = Field(description="source, feature, model, policy or consumer")
    version: Label = Field(description="Version label; quote it so YAML keeps it text")
    inputs: list[InputSpec] = Field(default=[], description="Upstream nodes: NODE or NODE@PIN")
    feedback: list[FeedbackName] = Field(default=[], description="Declared feedback inputs")
    owner: Owner | None = None
    description: Description | None = None
    tags: list[Tag] = []
    max_age: Duration | None = Field(default=None, description="Retraining period, e.g. 30d")
    needs_tests: NeedsTests | None = Field(default=None, description="Default: by kind")
    require_suites: list[Suite] = []
    meta: JsonObject = Field(default={}, description="Version metadata (immutable content)")
    node_meta: NodeJsonObject = Field(default={}, description="Node metadata (not versioned)")

    @field_validator("inputs", "feedback", "tags", "require_suites")
    @classmethod
    def _distinct(cls, values: list[str], info: ValidationInfo) -> list[str]:
        key = (lambda s: s.partition("@")[0]) if info.field_name == "inputs" else None
        return unique(values, str(info.field_name), key)

    @model_validator(mode="after")
    def _lists(self) -> ChainNode:
        both = {s.partition("@")[0] for s in self.inputs} & set(self.feedback)
        if both:
            raise fail(f"{sorted(both)[0]!r} is listed under both inputs and feedback")
        if self.kind is Kind.SOURCE and self.inputs:
            raise fail("a source may not have inputs (only feedback); make it a feature "
                        "or move them under feedback")
        return self

    def input_refs(self) -> list[tuple[str, str | None]]:
        """The regular inputs as (node name, pinned label or None)."""
        # Already validated: split on '@' (parse_input_spec re-checks every name, and
        # this runs several times per node on a 100,000-node apply).
        return [(name, pin or None) for name, _, pin in (s.partition("@") for s in self.inputs)]

    def effective_needs_tests(self) -> bool:
        """``needs_tests``, or the default of the node's kind when it is not given."""
        return NEEDS_TESTS_BY_DEFAULT[self.kind] if self.needs_tests is None else self.needs_tests


def _format_version(value: object) -> object:
    if type(value) is int and value == 1:
        return value
    raise fail(f"chainml must be 1 (the chain file format version), not {value!r}")


class ChainFile(BaseModel):
    """A chain file: the format version and the nodes, in any order.

    Two chain files are equal when they declare the same nodes, whatever their order.
    """

    model_config = ConfigDict(extra="forbid", title="chainml chain file")

    chainml: Annotated[Literal[1], BeforeValidator(_format_version)] = Field(
        description="Format version; must be 1")
    nodes: list[ChainNode] = Field(default=[], max_length=MAX_NODES)

    @model_validator(mode="after")
    def _distinct(self) -> ChainFile:
        seen: dict[str, str] = {}
        for i, node in enumerate(self.nodes):
            other = seen.get(node.name.lower())
            if other is not None:
                same = "" if other == node.name else f" (differs from '{other}' only in case)"
                raise PydanticCustomError("duplicate_name", "{reason}", {
                    "reason": f"the node name '{node.name}' is used twice{same}", "index": i})
            seen[node.name.lower()] = node.name
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChainFile):
            return NotImplemented
        mine = {n.name: n for n in self.nodes}
        return self.chainml == other.chainml and len(mine) == len(other.nodes) and all(
            mine.get(n.name) == n for n in other.nodes)

    __hash__ = None  # type: ignore[assignment]


class UnknownInput(NamedTuple):
    """An input (or feedback input) naming a node that is not in the file."""

    node: str
    input: str
    feedback: bool


def unknown_inputs(file: ChainFile, known_names: Iterable[str]) -> list[UnknownInput]:
    """Inputs that name neither a node of ``file`` nor one of ``known_names``.

    Args:
        file: a validated chain file.
        known_names: names that exist elsewhere, typically in the registry.

    Returns:
        One entry per unknown reference, in file order.
    """
    known = {n.name for n in file.nodes} | set(known_names)
    out: list[UnknownInput] = []
    for node in file.nodes:
        regular = [up for up, _ in node.input_refs()]
        out += [UnknownInput(node.name, up, False) for up in regular if up not in known]
        out += [UnknownInput(node.name, up, True) for up in node.feedback if up not in known]
    return out


def _graph(file: ChainFile) -> nx.DiGraph[str]:
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(sorted(n.name for n in file.nodes))
    for node in file.nodes:
        for up, _ in node.input_refs():
            if up in g:  # inputs from outside the file cannot close a cycle inside it
                g.add_edge(up, node.name)
    return g


def topological_order(file: ChainFile) -> list[ChainNode]:
    """The nodes, upstream first, ties broken by name; feedback inputs are ignored.

    Raises:
        CycleError: the regular inputs form a cycle; ``cycle`` lists it, first == last.
    """
    g = _graph(file)
    by_name = {n.name: n for n in file.nodes}
    try:
        return [by_name[name] for name in nx.lexicographical_topological_sort(g)]
    except nx.NetworkXUnfeasible:
        edges = nx.find_cycle(g)
        raise CycleError([u for u, _ in edges] + [edges[0][0]]) from None


def _graph_problem(
    file: ChainFile, known_kinds: Mapping[str, Kind]
) -> tuple[str, ChainmlError, str] | None:
    """First kind-rule violation or cycle: (node name, error, clause without the node)."""
    kinds = {**known_kinds, **{n.name: n.kind for n in file.nodes}}
    for node in file.nodes:
        for up, _ in node.input_refs():
            up_kind = kinds.get(up)
            if up_kind is not None and not may_consume(node.kind, up_kind):
                k = node.kind.value
                clause = (f"a {k} may not consume '{up}', which is a {up_kind.value}; a {k} "
                          f"may consume {consumable_by(node.kind)}")
                return node.name, KindRuleError(f"Node '{node.name}': {clause}."), clause
    try:
        topological_order(file)
    except CycleError as exc:
        clause = (f"its inputs close a cycle: {' -> '.join(exc.cycle)}; declare one of these "
                  "inputs under feedback if the loop is intended")
        return exc.cycle[0], exc, clause
    return None


def validate_graph(file: ChainFile, known_kinds: Mapping[str, Kind] | None = None) -> None:
    """Check the kind rule (before the cycle rule, as registration does) and acyclicity.

    Args:
        file: the chain file.
        known_kinds: kinds of nodes outside the file (the registry), to check inputs
            that reach outside it.

    Raises:
        KindRuleError: a node consumes a kind it may not.
        CycleError: the regular inputs form a cycle.
    """
    problem = _graph_problem(file, known_kinds or {})
    if problem:
        raise problem[1]


def _suggest(name: str, candidates: Collection[str]) -> str:
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return f"; did you mean '{lowered[name.lower()]}'?"
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def loads_chain(
    text: str,
    filename: str = "<chain file>",
    *,
    known: Mapping[str, Kind | str] | Collection[str] | None = None,
) -> ChainFile:
    """Parse and validate a chain file held in memory.

    Args:
        text: YAML, or JSON when ``filename`` ends in ``.json``.
        filename: named in every error message; its suffix picks the parser.
        known: nodes that exist outside the file (the registry). When given, an input
            naming a node that is neither in the file nor known is refused, and when it
            maps names to kinds, inputs reaching outside the file obey the kind rule too.

    Returns:
        The validated chain file (nodes in file order).

    Raises:
        InvalidInput: (or KindRuleError / CycleError) one sentence naming file, line, node.
    """
    src = Source(text, filename)
    if filename.lower().endswith(".json"):
        data = parse_json(text, filename)
    else:
        data = parse_yaml(text, filename).data
    if not isinstance(data, dict):
        what = "empty" if data is None else f"{type_name(data)}"
        raise InvalidInput(f"{filename} line 1: the file is {what}; a chain file is a mapping "
                           "that starts with 'chainml: 1' followed by 'nodes:'.")
    if isinstance(data.get("nodes"), list) and len(data["nodes"]) > MAX_NODES:
        raise InvalidInput(f"{filename}: has {len(data['nodes'])} nodes, more than the "
                           f"{MAX_NODES:,} a chain file may hold; split it.")
    try:
        file = ChainFile.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(explain_errors(exc.errors(), data, src,
                                          list(ChainNode.model_fields))) from None
    index = {n.name: i for i, n in enumerate(file.nodes)}
    if known is not None:
        for bad in unknown_inputs(file, known):
            field = "feedback" if bad.feedback else "inputs"
            node = file.nodes[index[bad.node]]
            pos = (node.feedback if bad.feedback else [s.partition("@")[0] for s in node.inputs])
            loc = ("nodes", index[bad.node], field, pos.index(bad.input))
            hint = _suggest(bad.input, [*index, *known])
            raise InvalidInput(f"{src.prefix(data, index[bad.node], loc)}: {field} names "
                               f"'{bad.input}', which is neither in this file nor in the "
                               f"registry{hint}" + ("" if hint.endswith("?") else "."))
    known_kinds = {k: Kind(v) for k, v in known.items()} if isinstance(known, Mapping) else {}
    problem = _graph_problem(file, known_kinds)
    if problem:
        name, err, clause = problem
        err.args = (f"{src.prefix(data, index[name], ('nodes', index[name], 'inputs'))}: "
                    f"{clause}.",)
        raise err
    return file


def load_chain_file(
    path: str | Path, *, known: Mapping[str, Kind | str] | Collection[str] | None = None
) -> ChainFile:
    """Read and validate a chain file (YAML, or JSON for ``*.json``) of at most 16 MiB.

    See :func:`loads_chain` for ``known``.

    Raises:
        InvalidInput: the file is unreadable, oversized or invalid.
    """
    return loads_chain(read_text(path, MAX_BYTES), str(path), known=known)


class _Quoted(str):
    """A string the YAML dumper must write in double quotes (version labels)."""


class _Flow(list[str]):
    """A list of short strings the YAML dumper writes on one line: [a, b]."""


# libyaml's emitter is ~10x faster on big exports; the representers stay in Python.
_BaseDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True  # never write anchors, even for a value that appears twice


def _represent_str(dumper: _Dumper, value: str) -> yaml.ScalarNode:
    # PyYAML writes NEL, LS, PS and BOM raw in plain scalars and reads them back as
    # line breaks; double quotes escape them. Multi-line text reads best as a block.
    # (str.isprintable is False for all four, and for every other control character.)
    style: str | None = None
    if not value.isprintable():
        style = "|" if value.replace("\n", "").isprintable() else '"'
    node: yaml.ScalarNode = dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)
    return node


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _Quoted, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", str(v), style='"'))
_Dumper.add_representer(
    _Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", list(v), flow_style=True))
_FLOW_FIELDS = ("inputs", "feedback", "tags", "require_suites")


def dump_chain(file: ChainFile, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """Write a chain file deterministically: topological order, then by name.

    Fields keep schema order and are left out while they hold their default, so an
    export is minimal; version labels are always quoted. ``loads_chain`` reads the
    result back to an equal ChainFile.

    Raises:
        CycleError: the file's inputs form a cycle.
        ValueError: unknown ``fmt``.
    """
    nodes = []
    for node in topological_order(file):
        out = node.model_dump(mode="json", exclude_defaults=True)
        if fmt == "yaml":
            out["version"] = _Quoted(out["version"])
            out.update({k: _Flow(out[k]) for k in _FLOW_FIELDS if k in out})
        nodes.append(out)
    if fmt == "json":
        # One node per line: compact enough for big registries, and diffs stay readable.
        rows = ",\n".join("  " + json.dumps(n, ensure_ascii=False) for n in nodes)
        return f'{{"chainml": {file.chainml}, "nodes": [\n{rows}\n]}}\n' if nodes \
            else f'{{"chainml": {file.chainml}, "nodes": []}}\n'
    doc = {"chainml": file.chainml, "nodes": nodes}
    if fmt == "yaml":
        return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         default_flow_style=False, width=100)
    raise ValueError(f"unknown chain file format {fmt!r}; use 'yaml' or 'json'")


def chain_json_schema() -> dict[str, Any]:
    """JSON Schema of the chain file (for editors); committed as chainfile.schema.json."""
    schema = ChainFile.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


if __name__ == "__main__":
    print(json.dumps(chain_json_schema(), indent=2))
