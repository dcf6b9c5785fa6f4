"""Import a dbt project's graph from its ``manifest.json`` (schema v10 to v12).

Mapping:

* Nodes: ``sources`` -> ``source``; ``nodes`` of type model, seed and snapshot ->
  ``feature`` (a dbt model is a SQL transform, not an ML model); ``exposures`` ->
  ``consumer``. Tests, analyses, operations, unit tests, macros, metrics and
  semantic models are left out, and so are edges to them or to disabled nodes.
* Names: the unique id without its type, package first: ``model.jaffle_shop.stg_orders``
  -> ``jaffle_shop/stg_orders``. Sources and exposures have names of their own, so
  they keep their type: ``source.jaffle_shop.ecom.raw_orders`` ->
  ``jaffle_shop/source:ecom.raw_orders``. Then :func:`common.map_names`.
* Inputs: ``depends_on.nodes``.
* Versions: models, seeds and snapshots: the first 12 hex digits of
  ``checksum.checksum`` (a hash of the checksum when it is not hex, as for seeds
  too large to hash, whose checksum is their path). Sources have no checksum in
  dbt: their version is a 12-digit hash of the relation name, ``loaded_at_field``
  and ``freshness``, so it changes when the table they point at does, not when
  its data does. Exposures: a hash of their type, url, maturity and inputs.
  Caveat: a model whose refs change while its SQL text does not (refs chosen by
  ``var()``) keeps its version; chainml then refuses the changed inputs as a
  changed immutable version, which is the safe failure.
* ``kind_map`` rules ``SELECTOR:PATTERN=KIND``, first match wins, PATTERN a glob:
  ``resource:`` the resource type (``resource:seed=source``), ``tag:`` any tag
  (``tag:ml=model``), ``path:`` ``original_file_path`` or ``path``
  (``path:models/ml/*=model``; ``*`` also crosses ``/``), ``name:`` the dbt name,
  ``package:`` the package name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainml.errors import InvalidInput
from chainml.files.chainfile import ChainFile
from chainml.files.importers.common import (
    MAX_IMPORT_BYTES,
    KindMap,
    build_chain,
    checksum_label,
    clean_owner,
    clean_tags,
    clean_text,
    make_node,
    map_names,
    parse_kind_map,
    pick_kind,
    read_json,
    short_hash,
)
from chainml.kinds import Kind

SELECTORS = ("resource", "tag", "path", "name", "package")
DEFAULT_KINDS = {
    "source": Kind.SOURCE, "model": Kind.FEATURE, "seed": Kind.FEATURE,
    "snapshot": Kind.FEATURE, "exposure": Kind.CONSUMER,
}
_SECTIONS = ("nodes", "sources", "exposures")
_NAMED_BY_TYPE = {"source", "exposure"}  # their own namespaces in dbt


def _check(cond: bool, where: str, problem: str) -> None:
    if not cond:
        raise InvalidInput(f"{where}: {problem}; is this a dbt manifest.json?")


def _entries(data: object, filename: str) -> dict[str, dict[str, Any]]:
    """The kept resources by unique id, checked for the fields the import reads."""
    _check(isinstance(data, dict), filename, "the file is not a JSON object")
    assert isinstance(data, dict)
    _check(any(s in data for s in _SECTIONS), filename, "it has no 'nodes' or 'sources'")
    out: dict[str, dict[str, Any]] = {}
    for section in _SECTIONS:
        entries = data.get(section)
        entries = {} if entries is None else entries
        _check(isinstance(entries, dict), f"{filename} ({section})", "it is not an object")
        for uid, entry in entries.items():
            where = f"{filename} ({section}[{uid[:120]!r}])"
            _check(isinstance(entry, dict), where, "the entry is not an object")
            rtype = entry.get("resource_type", section.rstrip("s"))
            _check(isinstance(rtype, str), where, "resource_type is not text")
            if rtype not in DEFAULT_KINDS:
                continue  # tests, analyses, operations ...
            _check(uid.count(".") >= 2, where, "the unique id is not TYPE.PACKAGE.NAME")
            deps = entry.get("depends_on") or {}
            _check(isinstance(deps, dict) and isinstance(deps.get("nodes", []), list)
                   and all(isinstance(d, str) for d in deps.get("nodes", [])),
                   where, "depends_on.nodes is not a list of unique ids")
            out[uid] = {**entry, "resource_type": rtype}
    return out


def _foreign_name(uid: str, rtype: str) -> str:
    _, package, rest = uid.split(".", 2)
    return f"{package}/{rtype}:{rest}" if rtype in _NAMED_BY_TYPE else f"{package}/{rest}"


def _version(entry: dict[str, Any], inputs: list[str]) -> tuple[str, dict[str, Any]]:
    """(label, version metadata) for one resource; see the module docstring."""
    rtype = entry["resource_type"]
    if rtype == "source":
        return short_hash({k: entry.get(k) for k in (
            "relation_name", "loaded_at_field", "freshness")}), {}
    if rtype == "exposure":
        url = entry.get("url")
        content = {"type": entry.get("type"), "url": url, "maturity": entry.get("maturity"),
                   "inputs": inputs}
        return short_hash(content), ({"url": url} if isinstance(url, str) else {})
    checksum = entry.get("checksum")
    value = checksum.get("checksum") if isinstance(checksum, dict) else None
    if not isinstance(value, str) or not value:
        return short_hash(entry.get("raw_code") or entry.get("unique_id")), {}
    algo = checksum.get("name") if isinstance(checksum, dict) else None
    return checksum_label(value), {"dbt_checksum": f"{algo or 'checksum'}:{value}"}


def _owner(entry: dict[str, Any]) -> str | None:
    owner = entry.get("owner")
    if isinstance(owner, dict):
        return clean_owner(owner.get("name") or owner.get("email"))
    for meta in (entry.get("meta"), (entry.get("config") or {}).get("meta")):
        if isinstance(meta, dict) and isinstance(meta.get("owner"), str):
            return clean_owner(meta["owner"])
    return None


def import_dbt(
    path: str | Path, kind_map: KindMap = None, *, max_bytes: int = MAX_IMPORT_BYTES
) -> ChainFile:
    """Read a dbt ``manifest.json`` into a chain file (rules in the module docstring).

    Args:
        path: the manifest (``target/manifest.json``).
        kind_map: rules such as ``["tag:ml=model", "resource:seed=source"]``.
        max_bytes: size limit, 16 MiB by default; large projects may need more.

    Raises:
        InvalidInput: unreadable, oversized or malformed manifest, a bad kind_map rule,
            or a kind_map that breaks the kind rule.
    """
    rules = parse_kind_map(kind_map, SELECTORS)
    data, filename = read_json(path, max_bytes)
    entries = _entries(data, filename)
    name_of = map_names(_foreign_name(uid, e["resource_type"]) for uid, e in entries.items())
    node_name = {uid: name_of[_foreign_name(uid, e["resource_type"])]
                 for uid, e in entries.items()}
    nodes = []
    for uid, entry in entries.items():
        rtype = entry["resource_type"]
        deps = (entry.get("depends_on") or {}).get("nodes", [])
        inputs = sorted({node_name[d] for d in deps if d in node_name and d != uid})
        label, meta = _version(entry, inputs)
        package = uid.split(".", 2)[1]
        files = [p for p in (entry.get("original_file_path"), entry.get("path"))
                 if isinstance(p, str)]
        tags = clean_tags(entry.get("tags"))
        attrs = {"resource": [rtype], "tag": tags, "path": files, "package": [package],
                 "name": [entry["name"]] if isinstance(entry.get("name"), str) else []}
        nodes.append(make_node(
            filename, name=node_name[uid], kind=pick_kind(rules, attrs, DEFAULT_KINDS[rtype]),
            version=label, inputs=inputs, owner=_owner(entry),
            description=clean_text(entry.get("description")), tags=tags, meta=meta,
            node_meta={"dbt": {"unique_id": uid, "resource_type": rtype,
                               "path": files[0] if files else None}},
        ))
    return build_chain(nodes, filename)
