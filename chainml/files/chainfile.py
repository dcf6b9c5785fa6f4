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

Every problem is a sentence naming the file, the line and the node; a file with
several problems raises one :class:`chainml.errors.InvalidInput` listing them all (up
to 20), so that one run shows everything to fix.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Collection, Iterable, Mapping
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

from chainml.errors import ChainmlError, CycleError, InvalidInput, KindRuleError, unknown_field
from chainml.files.chainfile_errors import (
    Problem,
    Source,
    fixed,
    type_name,
    validation_problems,
)
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
from chainml.files.safeload import (
    MAX_BYTES,
    MAX_DEPTH,
    parse_json,
    parse_yaml,
    read_text,
    show_value,
)
from chainml.kinds import NEEDS_TESTS_BY_DEFAULT, Kind, consumable_by, may_consume

__all__ = [
    "MAX_AGE_SECONDS", "MAX_BYTES", "MAX_DEPTH", "MAX_DESCRIPTION", "MAX_META_DEPTH",
    "MAX_NODES", "MAX_OWNER", "MAX_TAG", "ChainFile", "ChainNode", "UnknownInput",
    "chain_json_schema", "dump_chain", "load_chain_file", "loads_chain",
    "topological_order", "unknown_inputs", "validate_graph",
]


# Passed as the validation context when a file is read: its problems are worded with
# file and line afterwards (chainfile_errors), so they must stay pydantic errors there.
FROM_FILE = {"file": True}


class _Model(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any, info: ValidationInfo) -> Any:
        # Built in Python: an unknown field gets a chainml sentence, not pydantic's
        # "Extra inputs are not permitted".
        if info.context is None and isinstance(data, dict):
            unknown = sorted(data.keys() - cls.model_fields.keys(), key=str)
            if unknown:
                raise unknown_field(cls.__name__, unknown[0], list(cls.model_fields))
        return data


class ChainNode(_Model):
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
    raise fail(f"chainml must be 1 (the chain file format version), not {show_value(value)}")


class ChainFile(_Model):
    """A chain file: the format version and the nodes, in any order.

    Two chain files are equal when they declare the same nodes, whatever their order.
    """

    model_config = ConfigDict(extra="forbid", title="chainml chain file")

    chainml: Annotated[Literal[1], BeforeValidator(_format_version)] = Field(
        description="Format version; must be 1")
    nodes: list[ChainNode] = Field(default=[], max_length=MAX_NODES)

    @model_validator(mode="after")
    def _distinct(self) -> ChainFile:
        for i, reason in _duplicates(enumerate(self.nodes))[:1]:
            raise PydanticCustomError("duplicate_name", "{reason}", {"reason": reason,
                                                                     "index": i})
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChainFile):
            return NotImplemented
        mine = {n.name: n for n in self.nodes}
        return self.chainml == other.chainml and len(mine) == len(other.nodes) and all(
            mine.get(n.name) == n for n in other.nodes)

    __hash__ = None  # type: ignore[assignment]


def _duplicates(nodes: Iterable[tuple[int, ChainNode]]) -> list[tuple[int, str]]:
    """(index, reason) of every node whose name an earlier node has (in any case)."""
    seen: dict[str, str] = {}
    out = []
    for i, node in nodes:
        other = seen.get(node.name.lower())
        if other is not None:
            same = "" if other == node.name else f" (differs from '{other}' only in case)"
            out.append((i, f"the node name '{node.name}' is used twice{same}"))
        else:
            seen[node.name.lower()] = node.name
    return out


# Nodes outside a file: names, names with kinds, or a lookup of the names a file reaches.
Known = Mapping[str, Kind | str] | Collection[str] | Callable[[set[str]], Mapping[str, str]]


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


def _graph_problems(
    file: ChainFile, known_kinds: Mapping[str, Kind]
) -> list[tuple[str, ChainmlError, str]]:
    """Every kind-rule violation, then a cycle: (node name, error, clause without the
    node). Inputs naming nodes of unknown kind are not judged."""
    kinds = {**known_kinds, **{n.name: n.kind for n in file.nodes}}
    out: list[tuple[str, ChainmlError, str]] = []
    for node in file.nodes:
        for up, _ in node.input_refs():
            up_kind = kinds.get(up)
            if up_kind is not None and not may_consume(node.kind, up_kind):
                k = node.kind.value
                clause = (f"a {k} may not consume '{up}', which is a {up_kind.value}; a {k} "
                          f"may consume {consumable_by(node.kind)}")
                out.append((node.name, KindRuleError(f"Node '{node.name}': {clause}."), clause))
    try:
        topological_order(file)
    except CycleError as exc:
        clause = (f"its inputs close a cycle: {' -> '.join(exc.cycle)}; declare one of these "
                  "inputs under feedback if the loop is intended")
        out.append((exc.cycle[0], exc, clause))
    return out


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
    problems = _graph_problems(file, known_kinds or {})
    if problems:
        raise problems[0][1]


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
    known: Known | None = None,
) -> ChainFile:
    """Parse and validate a chain file held in memory.

    Args:
        text: YAML, or JSON when ``filename`` ends in ``.json``.
        filename: named in every error message; its suffix picks the parser.
        known: nodes that exist outside the file (the registry). When given, an input
            naming a node that is neither in the file nor known is refused, and when it
            maps names to kinds, inputs reaching outside the file obey the kind rule too.
            It may be a function that looks up the names the file reaches outside itself
            and returns those that exist, with their kinds.

    Returns:
        The validated chain file (nodes in file order).

    Raises:
        InvalidInput: (or KindRuleError / CycleError) one sentence naming file, line, node;
            for several problems, one InvalidInput listing them all (``problems``).
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
        return _checked(ChainFile.model_validate(data, context=FROM_FILE), src, data, known)
    except ValidationError as exc:
        errors = [e for e in exc.errors() if e["type"] != "duplicate_name"]
        problems = validation_problems(errors, list(ChainNode.model_fields))
    # Go on with the nodes that are valid on their own, so that one run reports the
    # problems of the whole file (repeated names, unknown inputs, kinds, cycles) too.
    nodes, indexes, others = _valid_nodes(data, errors)
    problems += [Problem(i, ("nodes", i), fixed(reason))
                 for i, reason in _duplicates(zip(indexes, nodes, strict=True))]
    kept: dict[str, tuple[int, ChainNode]] = {}  # the first node of each name
    for i, node in zip(indexes, nodes, strict=True):
        kept.setdefault(node.name.lower(), (i, node))
    partial = ChainFile.model_construct(chainml=1, nodes=[n for _, n in kept.values()])
    problems += _whole_file_problems(partial, {n.name: i for i, n in kept.values()}, known,
                                     others)
    src.fail(data, problems)


def _checked(file: ChainFile, src: Source, data: dict[str, Any], known: Known | None
             ) -> ChainFile:
    problems = _whole_file_problems(file, {n.name: i for i, n in enumerate(file.nodes)}, known,
                                    set())
    if problems:
        src.fail(data, problems)
    return file


def _valid_nodes(data: dict[str, Any], errors: list[Any]
                 ) -> tuple[list[ChainNode], list[int], set[str]]:
    """The nodes without an error (and their positions), and the names of the others."""
    raw = data.get("nodes")
    if not isinstance(raw, list) or any(tuple(e["loc"]) == ("nodes",) for e in errors):
        return [], [], set()
    bad = {e["loc"][1] for e in errors if len(e["loc"]) >= 2 and e["loc"][0] == "nodes"}
    nodes, indexes, others = [], [], set()
    for i, entry in enumerate(raw):
        if i in bad:
            name = entry.get("name") if isinstance(entry, dict) else None
            if isinstance(name, str):
                others.add(name)
            continue
        nodes.append(ChainNode.model_validate(entry, context=FROM_FILE))
        indexes.append(i)
    return nodes, indexes, others


def _whole_file_problems(
    file: ChainFile, index: dict[str, int], known: Known | None, others: set[str],
) -> list[Problem]:
    """Unknown inputs, kind-rule violations and a cycle, among the nodes of ``file``.

    ``others`` are names of nodes of the file that are invalid themselves: inputs may
    name them, and their kinds are not known.
    """
    out: list[Problem] = []
    if callable(known):
        reached = {up for n in file.nodes for up, _ in n.input_refs()}
        reached |= {up for n in file.nodes for up in n.feedback}
        outside = reached - index.keys() - others
        known = known(outside) if outside else {}
    if known is not None:
        by_name = {n.name: n for n in file.nodes}
        for bad in unknown_inputs(file, [*known, *others]):
            field = "feedback" if bad.feedback else "inputs"
            node = by_name[bad.node]
            pos = (node.feedback if bad.feedback else [s.partition("@")[0] for s in node.inputs])
            i = index[bad.node]
            hint = _suggest(bad.input, [*index, *others, *known])
            clause = (f"{field} names '{bad.input}', which is neither in this file nor in the "
                      f"registry{hint}")
            out.append(Problem(i, ("nodes", i, field, pos.index(bad.input)), fixed(clause)))
    known_kinds = {k: Kind(v) for k, v in known.items()} if isinstance(known, Mapping) else {}
    for name, err, clause in _graph_problems(file, known_kinds):
        i = index[name]
        out.append(Problem(i, ("nodes", i, "inputs"), fixed(clause),
                           err if isinstance(err, InvalidInput) else None))
    return out


def load_chain_file(
    path: str | Path, *, known: Known | None = None
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
