"""Import a DVC pipeline from ``dvc.yaml`` and, when it is there, the ``dvc.lock`` beside it.

Mapping:

* Every stage is a node ``stage:<name>``, kind ``feature`` unless a kind_map rule says
  otherwise. ``foreach``/``do`` and ``matrix`` stages are skipped with an
  :class:`~chainml.files.importers.common.ImporterWarning`; a dependency on their outputs
  then becomes a source node.
* A dependency that no stage outputs is a ``source`` node named by its path (data,
  code such as ``src/train.py``, directories). Parameters are not nodes: their values
  are part of the stage's version, so a parameter change is a new stage version.
* Edges: stage T -> stage S when a dependency of S equals an output of T, lies under
  it (``data/prepared/train.tsv`` under ``data/prepared``) or contains it; outputs
  include ``metrics`` and ``plots``. Paths are taken relative to the stage's ``wdir``.
* Versions with a lock: a stage's is 12 hex digits of a hash of its locked command,
  the locked hashes (md5/etag/checksum) of its deps and outs, its locked parameter
  values and its input names; a source's is the md5 the lock records for it.
  Without a lock entry: ``unlocked-`` and a hash of the stage's definition for a
  stage (a label that changes with the definition, since versions are immutable),
  ``unlocked`` for a source.
* ``kind_map`` rules, first match wins, PATTERN a glob: ``stage:train=model``
  (the stage name), ``path:*.pkl=model`` (any output of a stage, or a source's path).
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chainml.errors import InvalidInput
from chainml.files.chainfile import ChainFile, ChainNode
from chainml.files.importers.common import (
    MAX_IMPORT_BYTES,
    KindMap,
    build_chain,
    clean_text,
    label_or_hash,
    make_node,
    map_names,
    parse_kind_map,
    pick_kind,
    short_hash,
    warn,
)
from chainml.files.safeload import Located, parse_yaml, read_text
from chainml.kinds import Kind

SELECTORS = ("stage", "path")
_HASH_KEYS = ("md5", "etag", "checksum")


@dataclass
class _Stage:
    name: str
    cmd: Any
    deps: list[str]
    outs: list[str]
    params: list[str]
    desc: str | None
    wdir: str


@dataclass
class _Locked:
    cmd: Any = None
    deps: dict[str, str | None] = field(default_factory=dict)
    outs: dict[str, str | None] = field(default_factory=dict)
    params: Any = None


class _Reader:
    """Checks shapes and phrases errors with file, line and stage."""

    def __init__(self, located: Located, filename: str) -> None:
        self.located, self.filename = located, filename

    def fail(self, path: tuple[str | int, ...], problem: str) -> InvalidInput:
        line = self.located.line_of(path)
        stage = f" (stage '{path[1]}')" if len(path) > 1 else ""
        at = f" line {line}" if line else ""
        return InvalidInput(f"{self.filename}{at}{stage}: {problem}.")

    def mapping(self, value: object, path: tuple[str | int, ...], what: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"{what} must be a mapping")
        return value

    def paths(self, value: object, path: tuple[str | int, ...], what: str) -> list[str]:
        """A list of paths; entries may be ``{path: options}`` as in outs/metrics/plots."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(path, f"{what} must be a list of paths")
        out: list[str] = []
        for i, item in enumerate(value):
            keys = list(item) if isinstance(item, dict) else [item]
            if not keys or not all(isinstance(k, str) and k for k in keys):
                raise self.fail((*path, i), f"{what}[{i}] must be a path")
            out += keys
        return out


def _norm(wdir: str, path: str) -> str:
    return posixpath.normpath(posixpath.join(wdir, path)) if wdir not in ("", ".") \
        else posixpath.normpath(path)


def _params(value: object, reader: _Reader, path: tuple[str, ...]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise reader.fail(path, "params must be a list")
    out: list[str] = []
    for item in value:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for file, keys in item.items():
                out += [f"{file}:{k}" for k in keys] if isinstance(keys, list) else [str(file)]
        else:
            raise reader.fail(path, "params entries must be names or {file: [names]}")
    return out


def _read_stages(located: Located, filename: str) -> list[_Stage]:
    reader = _Reader(located, filename)
    top = reader.mapping(located.data, (), "the file")
    if "stages" not in top:
        raise reader.fail((), "there is no 'stages:' section; is this a dvc.yaml?")
    out = []
    for name, spec in reader.mapping(top["stages"], ("stages",), "stages").items():
        where = ("stages", name)
        spec = reader.mapping(spec, where, "a stage")
        if "foreach" in spec or "matrix" in spec:
            warn(f"{filename} line {located.line_of(where)} (stage '{name}'): foreach/matrix "
                 "stages are not expanded by the importer; the stage was skipped.")
            continue
        wdir = spec.get("wdir") or "."
        cmd = spec.get("cmd")
        if not isinstance(wdir, str) or not (isinstance(cmd, str) or (
                isinstance(cmd, list) and all(isinstance(c, str) for c in cmd))):
            raise reader.fail(where, "cmd must be a command or a list of commands, wdir a path")
        deps = [_norm(wdir, p) for p in reader.paths(spec.get("deps"), (*where, "deps"), "deps")]
        outs = [_norm(wdir, p) for key in ("outs", "metrics", "plots")
                for p in reader.paths(spec.get(key), (*where, key), key)]
        desc = spec.get("desc")
        out.append(_Stage(name, cmd, deps, outs, _params(spec.get("params"), reader, where),
                          clean_text(desc), wdir))
    return out


def _entries(reader: _Reader, value: object, path: tuple[str, ...]) -> dict[str, str | None]:
    if value is None:
        return {}
    if not isinstance(value, list) or not all(
            isinstance(e, dict) and isinstance(e.get("path"), str) for e in value):
        raise reader.fail(path, f"{path[-1]} must be a list of entries with a path")
    return {e["path"]: next((e[k] for k in _HASH_KEYS if isinstance(e.get(k), str)), None)
            for e in value}


def _read_lock(path: Path, max_bytes: int, stages: dict[str, _Stage]) -> dict[str, _Locked]:
    located = parse_yaml(read_text(path, max_bytes), path.name, max_path=3)
    reader = _Reader(located, path.name)
    top = reader.mapping(located.data, (), "the file")
    # dvc.lock schema 2.0 nests stages under 'stages'; DVC 1.x put them at the top.
    body = reader.mapping(top.get("stages"), ("stages",), "stages") if "schema" in top else top
    out: dict[str, _Locked] = {}
    for name, spec in body.items():
        where = ("stages", name)
        spec = reader.mapping(spec, where, "a locked stage")
        wdir = stages[name].wdir if name in stages else "."
        out[name] = _Locked(
            cmd=spec.get("cmd"),
            deps={_norm(wdir, p): h for p, h in _entries(reader, spec.get("deps"),
                                                         (*where, "deps")).items()},
            outs={_norm(wdir, p): h for p, h in _entries(reader, spec.get("outs"),
                                                         (*where, "outs")).items()},
            # Parameter values may be YAML dates; version metadata must be plain JSON.
            params=json.loads(json.dumps(spec.get("params"), default=str)))
    return out


def _overlaps(dep: str, out: str) -> bool:
    return dep == out or dep.startswith(out + "/") or out.startswith(dep + "/")


def import_dvc(
    path: str | Path,
    kind_map: KindMap = None,
    *,
    lock_path: str | Path | None = None,
    max_bytes: int = MAX_IMPORT_BYTES,
) -> ChainFile:
    """Read a DVC pipeline into a chain file (rules in the module docstring).

    Args:
        path: the ``dvc.yaml``.
        kind_map: rules such as ``["stage:train=model", "stage:evaluate=consumer"]``.
        lock_path: the lock file; default ``dvc.lock`` beside ``path`` when it exists.
        max_bytes: size limit per file, 16 MiB by default.

    Raises:
        InvalidInput: unreadable, oversized or malformed files, a bad kind_map rule,
            or a kind_map that breaks the kind rule.
    """
    rules = parse_kind_map(kind_map, SELECTORS)
    yaml_path = Path(path)
    located = parse_yaml(read_text(yaml_path, max_bytes), yaml_path.name, max_path=3)
    stages = {s.name: s for s in _read_stages(located, yaml_path.name)}
    lock_file = Path(lock_path) if lock_path else yaml_path.with_name("dvc.lock")
    lock = _read_lock(lock_file, max_bytes, stages) \
        if lock_path or lock_file.exists() else {}
    producers: dict[str, set[str]] = {}
    sources: set[str] = set()
    for s in stages.values():
        for dep in s.deps:
            found = {t.name for t in stages.values() if t.name != s.name
                     and any(_overlaps(dep, o) for o in t.outs)}
            producers.setdefault(s.name, set()).update(found)
            if not found:
                sources.add(dep)
    names = map_names([f"stage:{n}" for n in stages] + sorted(sources))
    nodes: list[ChainNode] = []
    for s in stages.values():
        inputs = sorted({names[f"stage:{t}"] for t in producers.get(s.name, ())}
                        | {names[d] for d in s.deps if d in sources})
        locked = lock.get(s.name)
        if locked is not None:
            content = {"cmd": locked.cmd, "deps": sorted(locked.deps.items()),
                       "outs": sorted(locked.outs.items()), "params": locked.params}
            label = short_hash({**content, "inputs": inputs})
            meta = {"cmd": locked.cmd, "outs": sorted(locked.outs),
                    **({"params": locked.params} if locked.params else {})}
        else:
            content = {"cmd": s.cmd, "deps": s.deps, "outs": s.outs, "params": s.params}
            label = "unlocked-" + short_hash({**content, "inputs": inputs})
            meta = {"cmd": s.cmd, "outs": sorted(s.outs)}
        attrs = {"stage": [s.name], "path": s.outs}
        nodes.append(make_node(
            yaml_path.name, name=names[f"stage:{s.name}"], version=label, inputs=inputs,
            kind=pick_kind(rules, attrs, Kind.FEATURE), description=s.desc, meta=meta,
            node_meta={"dvc": {"stage": s.name}}))
    for dep in sorted(sources):
        md5 = next((lk.deps[dep] for _, lk in sorted(lock.items()) if lk.deps.get(dep)), None)
        nodes.append(make_node(
            yaml_path.name, name=names[dep], version=label_or_hash(md5) if md5 else "unlocked",
            kind=pick_kind(rules, {"path": [dep]}, Kind.SOURCE),
            node_meta={"dvc": {"path": dep}}))
    return build_chain(nodes, yaml_path.name)
