"""The mapping file: which node each OpenLineage job and dataset becomes, of which kind,
and which facet gives a version. Pure: no registry.

Without a mapping a job ``NS`` / ``NAME`` becomes the node ``job:NS/NAME`` (a
``feature``) and a dataset ``dataset:NS/NAME`` (a ``source`` when first seen read, a
``feature`` when first seen written), as ``chainml import openlineage`` names them, so
an imported chain and live ingestion meet on the same nodes. A mapping (YAML or JSON)::

    chainml-mapping: 1
    rules:                        # first match wins; MATCH is a glob on the id
      - match: "job:airflow/*train*"
        kind: model
      - match: "dataset:postgres://warehouse:5432/ml.features.*"
        name: "features.{name}"   # {namespace}, {name}, {id}; made a valid name
        kind: feature
      - match: "dataset:file:*/tmp/*"
        ignore: true              # neither a node nor a finding
    job_version: [job.sourceCodeLocation.version, run.processing_engine.version]
    dataset_version: [dataset.version.datasetVersion]

``job_version`` paths start with ``job.`` (the job's facets) or ``run.`` (the run's);
the first that holds a string or number is the job's version (a value that is no valid
label, such as a whole SQL query, is hashed), else the run id is. The default: the
``sourceCodeLocation`` facet's ``version``, else the ``sourceCode`` facet's code, else
the ``sql`` facet's query.
``dataset_version`` paths start with ``dataset.`` (the dataset's facets); without one
an output's new version is named by the run id.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from chainml import names
from chainml.errors import InvalidInput
from chainml.files.importers.common import sanitize, short_hash
from chainml.files.safeload import parse_yaml, read_text
from chainml.kinds import ALL_KINDS, Kind

# The commit of the job's code, else its code itself (hashed when long): a job's version
# changes when its code does. SQL jobs carry their code as the query.
DEFAULT_JOB_VERSION = ("job.sourceCodeLocation.version", "job.sourceCode.sourceCode",
                       "job.sql.query")
DEFAULT_DATASET_VERSION = ("dataset.version.datasetVersion",)
_KEYS = {"chainml-mapping", "rules", "job_version", "dataset_version"}
_RULE_KEYS = {"match", "name", "kind", "ignore"}
MAX_MAPPING_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Rule:
    """One ``rules`` entry: ids matching ``match`` get ``name``/``kind`` or are ignored."""

    match: str
    name: str | None = None
    kind: Kind | None = None
    ignore: bool = False


@dataclass(frozen=True)
class Place:
    """Where an OpenLineage job or dataset goes: its node name, and the kind a rule gave
    it (None: the default for how it was first seen)."""

    name: str
    kind: Kind | None


@dataclass(frozen=True)
class Mapping:
    """A parsed mapping file (see the module docstring)."""

    rules: tuple[Rule, ...] = ()
    job_version: tuple[str, ...] = DEFAULT_JOB_VERSION
    dataset_version: tuple[str, ...] = DEFAULT_DATASET_VERSION
    _cache: dict[str, Place | None] = field(default_factory=dict, compare=False, repr=False)

    def place(self, what: str, namespace: str, name: str) -> Place | None:
        """The node for a ``job`` or ``dataset``; None when a rule ignores it."""
        ident = f"{what}:{namespace}/{name}"
        if ident not in self._cache:
            self._cache[ident] = self._place(ident, namespace, name)
        return self._cache[ident]

    def _place(self, ident: str, namespace: str, name: str) -> Place | None:
        for rule in self.rules:
            if fnmatchcase(ident, rule.match):
                if rule.ignore:
                    return None
                raw = (rule.name.format(namespace=namespace, name=name, id=ident)
                       if rule.name else ident)
                return Place(node_name(raw), rule.kind)
        return Place(node_name(ident), None)

    def job_version_of(self, job_facets: MappingABC[str, Any],
                       run_facets: MappingABC[str, Any]) -> str | None:
        """The job's version from the first ``job_version`` path that holds one."""
        return _first(self.job_version, {"job": job_facets, "run": run_facets})

    def dataset_version_of(self, facets: MappingABC[str, Any]) -> str | None:
        """A dataset's version from the first ``dataset_version`` path that holds one."""
        return _first(self.dataset_version, {"dataset": facets})


def node_name(raw: str) -> str:
    """A valid, stable node name for ``raw``: itself when valid, else made valid (the
    importers' rule for a lone id, so both name an id alike)."""
    return sanitize(raw)


def version_label(value: str) -> str:
    """A version label for a facet's value or a run id: itself when valid, else a hash."""
    try:
        return names.check_label(value)
    except InvalidInput:
        return short_hash(value)


def _first(paths: Sequence[str], roots: MappingABC[str, MappingABC[str, Any]]) -> str | None:
    for path in paths:
        root, _, rest = path.partition(".")
        value: Any = roots.get(root)
        for part in rest.split("."):
            value = value.get(part) if isinstance(value, MappingABC) else None
        if isinstance(value, bool) or value is None or value == "":
            continue
        if isinstance(value, (str, int, float)):
            return str(value)
    return None


def _paths(value: Any, key: str, roots: tuple[str, ...], where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(p, str) and p.partition(".")[0] in roots and p.partition(".")[2]
            for p in items):
        example = (DEFAULT_JOB_VERSION if "job" in roots else DEFAULT_DATASET_VERSION)[0]
        raise InvalidInput(f"{where}: {key} must be a list of facet paths starting with "
                           f"{' or '.join(r + '.' for r in roots)}, such as {example}.")
    return tuple(items)


def _rule(raw: Any, where: str) -> Rule:
    if not isinstance(raw, dict) or not isinstance(raw.get("match"), str) or not raw["match"]:
        raise InvalidInput(f"{where}: a rule is a mapping with a non-empty match, such as "
                           "{match: 'job:airflow/*train*', kind: model}.")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown key {unknown[0]!r} (a rule has "
                           f"{', '.join(sorted(_RULE_KEYS))}).")
    if not raw["match"].startswith(("job:", "dataset:")):
        raise InvalidInput(f"{where}: match {raw['match'][:80]!r} must start with job: or "
                           "dataset:.")
    kind = raw.get("kind")
    if kind is not None and kind not in ALL_KINDS:
        raise InvalidInput(f"{where}: kind {str(kind)[:40]!r} is not one of "
                           f"{', '.join(ALL_KINDS)}.")
    template = raw.get("name")
    if template is not None:
        if not isinstance(template, str) or not template:
            raise InvalidInput(f"{where}: name must be a non-empty text such as '{{name}}'.")
        try:
            template.format(namespace="n", name="n", id="n")
        except (KeyError, IndexError, ValueError):
            raise InvalidInput(f"{where}: name {template[:80]!r} may use only {{namespace}}, "
                               "{name} and {id}.") from None
    ignore = raw.get("ignore", False)
    if not isinstance(ignore, bool):
        raise InvalidInput(f"{where}: ignore must be true or false.")
    return Rule(raw["match"], template, Kind(kind) if kind else None, ignore)


def parse_mapping(data: Any, filename: str) -> Mapping:
    """Check a decoded mapping file (the format in the module docstring).

    Raises:
        InvalidInput: one sentence naming the file and the part that is wrong.
    """
    if data is None:
        return Mapping()
    if not isinstance(data, dict):
        raise InvalidInput(f"{filename}: a mapping file is a mapping with 'rules', "
                           "'job_version' and 'dataset_version'.")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InvalidInput(f"{filename}: unknown key {unknown[0]!r} (a mapping file has "
                           f"{', '.join(sorted(_KEYS))}).")
    if data.get("chainml-mapping", 1) != 1:
        raise InvalidInput(f"{filename}: chainml-mapping must be 1, the only format so far.")
    rules = data.get("rules") or []
    if not isinstance(rules, list):
        raise InvalidInput(f"{filename}: rules must be a list.")
    return Mapping(
        rules=tuple(_rule(r, f"{filename} rule {i + 1}") for i, r in enumerate(rules)),
        job_version=_paths(data["job_version"], "job_version", ("job", "run"), filename)
        if "job_version" in data else DEFAULT_JOB_VERSION,
        dataset_version=_paths(data["dataset_version"], "dataset_version", ("dataset",),
                               filename)
        if "dataset_version" in data else DEFAULT_DATASET_VERSION)


def load_mapping(path: str | Path | None) -> Mapping:
    """Read a mapping file (YAML, which JSON is too); None: the default mapping."""
    if path is None:
        return Mapping()
    text = read_text(path, MAX_MAPPING_BYTES)
    return parse_mapping(parse_yaml(text, Path(path).name).data, Path(path).name)
