"""Output formats of ``chainml check``: pure functions from a CheckResult to text.

Nothing here touches the database, the terminal or files; the CLI prints what
:func:`render_check` returns (and may add colour to the text format).

Node names, versions, owners and reason messages are untrusted text (DESIGN.md,
"Bad input"): every format escapes them for its own medium, so a hostile value
cannot colour a terminal, inject a GitHub workflow command, break the XML or
render as HTML or a link in a PR comment.
"""

from __future__ import annotations

import json
import re
import shlex
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from pydantic_core import PydanticSerializationError

from chainml.errors import InvalidInput
from chainml.schemas import CheckResult, Finding, Reason, Status, StatusEntry

if TYPE_CHECKING:
    from chainml.render.mermaid import MermaidChart

__all__ = ["FORMATS", "CauseGroup", "cause_groups", "clear_lines", "clear_ways",
           "missing_suites", "render_check", "verdict"]

FORMATS: tuple[str, ...] = ("text", "json", "junit", "github", "markdown")

# More groups than this is no longer a summary; the rest are counted, not listed.
MAX_GROUPS = 20
# Untrusted values longer than this are clipped: it fits the longest valid
# name@version (200 + 1 + 100 characters, DESIGN.md) and a command built from them.
_CLIP = 400
_WRAP = 100
# Reasons listed per node in the per-node formats (junit, github, markdown).
_MAX_REASONS = 10
_WAIVE = "chainml waive "

# Node name -> the suites it requires (``--require-suite``), for the nodes that have any.
RequiredSuites = Mapping[str, Sequence[str]]

# Reading order of statuses: what needs the most work first.
_STATUS_RANK = {s: i for i, s in enumerate([
    Status.FAILED, Status.MISSING_INPUT, Status.UNTESTED, Status.SKEWED,
    Status.NEEDS_RETEST, Status.STALE, Status.WAIVED, Status.VERIFIED,
])}
# How a per-node message says the status ("embed is untested", "churn failed ...").
_STATUS_PHRASE = {
    Status.FAILED: "failed its latest test run", Status.UNTESTED: "is untested",
    Status.NEEDS_RETEST: "needs a retest", Status.STALE: "is stale",
    Status.WAIVED: "is waived", Status.VERIFIED: "is verified",
    Status.SKEWED: "serves inputs it was not tested with",
    Status.MISSING_INPUT: "reads a node its environment does not serve",
}
_CATEGORY_RANK = {c: i for i, c in enumerate(
    ["change", "missing", "untested", "failed", "suite", "stale", "other"])}


# --- escaping -----------------------------------------------------------------------

def _printable(text: str, clip: int = _CLIP) -> str:
    """Escape non-printable characters (controls, ANSI, bidi, surrogates) visibly, clip."""
    if len(text) > clip:
        text = text[:clip] + "..."
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100
                       else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


# XML 1.0 Char production; everything else makes the document unparseable.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _xml(text: str) -> str:
    """Write U+FFFD for characters XML 1.0 cannot carry (ElementTree would write them
    verbatim), so text registered before registration refused them still parses."""
    return _XML_ILLEGAL.sub("\ufffd", text)


def _gh_data(text: str) -> str:
    """Escape a workflow-command message so it stays on one line (GitHub toolkit escapeData)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(text: str) -> str:
    """Escape a workflow-command property value (toolkit escapeProperty)."""
    return _gh_data(text).replace(":", "%3A").replace(",", "%2C")


# Markdown-significant ASCII punctuation, backslash-escaped. '.', ':' and '@' are in
# it because they drive GitHub's autolinks (www., http:, mail@host); '$' drives math.
_MD_BACKSLASH = frozenset("\\`*_{}[]()#+!|~:@.$")
_MD_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# A value made only of these characters (single inner spaces allowed) is shown as a
# code span, where GitHub renders nothing: no emphasis, autolinks or mentions. Names,
# versions and our commands usually are; anything with a backtick, '|', '<', '>', '&',
# a backslash or a control character is escaped instead.
_CODE_CHARS = r"[A-Za-z0-9_\-./:=+,;@#%^*~!?$'\"()\[\]{}]"
_MD_CODE_SAFE = re.compile(f"{_CODE_CHARS}+( {_CODE_CHARS}+)*")


def _md(text: str) -> str:
    """Escape untrusted text for Markdown prose and table cells."""
    text = _printable(text, clip=300)  # also turns newlines into a visible \x0a
    return "".join(_MD_ENTITY.get(ch) or ("\\" + ch if ch in _MD_BACKSLASH else ch)
                   for ch in text)


def _md_code(text: str) -> str:
    """Show a name or command as a code span when that is safe, else as escaped text."""
    return f"`{text}`" if len(text) <= _CLIP and _MD_CODE_SAFE.fullmatch(text) else _md(text)


# --- grouping by cause --------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    """What one group of nodes has in common: the cause and the way to clear it."""

    category: str  # change | missing | untested | failed | suite | stale | other
    cause: str | None = None
    from_: str | None = None
    to: str | None = None
    suite: str | None = None
    status: str | None = None
    # For a change: the suites the group's nodes require, each of which must be rerun
    # (a run without --suite decides nothing for such a node).
    suites: tuple[str, ...] = ()
    # check --env: the environment; a change is then skew (what it serves against what
    # the deployed version was tested with), and "missing" an input it does not serve.
    env: str | None = None


@dataclass
class _Group:
    key: _Key
    warning: bool
    entries: dict[str, StatusEntry] = field(default_factory=dict)


_KEYS: dict[tuple[object, ...], tuple[_Key, ...]] = {}


def _reason_keys(entry: StatusEntry, reason: Reason, suites: tuple[str, ...],
                 env: str | None) -> tuple[_Key, ...]:
    """Classify one reason; the node's status decides what kind of work clears it."""
    # Thousands of nodes share a handful of keys: build each once.
    memo = (entry.status, reason.suite, reason.cause == entry.name, reason.cause,
            reason.from_, reason.to, suites, env)
    keys = _KEYS.get(memo)
    if keys is None:
        keys = _KEYS[memo] = _with_suites(replace(_classify(entry, reason), env=env), suites)
    return keys


def _classify(entry: StatusEntry, reason: Reason) -> _Key:
    if entry.status is Status.STALE:
        return _Key("stale")
    if entry.status is Status.FAILED:
        return _Key("failed", suite=reason.suite)
    if entry.status is Status.MISSING_INPUT:
        return _Key("missing", reason.cause)
    # A reason about the node itself that names a suite: that required suite has no run.
    if reason.suite is not None and reason.cause == entry.name:
        return _Key("suite", suite=reason.suite)
    if entry.status is Status.UNTESTED:
        return _Key("untested")
    return _Key("change", reason.cause, reason.from_, reason.to)


def _with_suites(key: _Key, suites: tuple[str, ...]) -> tuple[_Key, ...]:
    """The key for a node with required suites: only runs of those suites clear it.

    An untested version with no run at all misses every required suite (one group per
    suite, as when some suites have runs); a retest must rerun each of them.
    """
    if not suites:
        return (key,)
    if key.category == "untested":
        return tuple(_Key("suite", suite=s) for s in suites)
    if key.category == "change":
        return (replace(key, suites=suites),)
    return (key,)


def _suites(entry: StatusEntry, required: RequiredSuites) -> tuple[str, ...]:
    suites = required.get(entry.name)
    return tuple(dict.fromkeys(suites)) if suites else ()


def _entry_keys(entry: StatusEntry, required: RequiredSuites, env: str | None = None
                ) -> list[_Key]:
    """The groups one node belongs to (one per distinct cause, in reason order)."""
    suites = _suites(entry, required)
    if not entry.reasons:
        by_status = {Status.UNTESTED: _Key("untested"), Status.FAILED: _Key("failed"),
                     Status.NEEDS_RETEST: _Key("change"), Status.SKEWED: _Key("change"),
                     Status.MISSING_INPUT: _Key("missing"), Status.STALE: _Key("stale")}
        key = by_status.get(entry.status, _Key("other", status=entry.status.value))
        return list(_with_suites(replace(key, env=env), suites))
    return list(dict.fromkeys(k for r in entry.reasons
                              for k in _reason_keys(entry, r, suites, env)))


def missing_suites(entry: StatusEntry, required: Sequence[str] = ()) -> list[str]:
    """The required suites an ``untested`` node has no run of; [] for any other node.

    Args:
        entry: the node's status.
        required: the suites the node requires. A node with no run at all is untested
            with one reason that names no suite: then every required suite is missing.
    """
    if entry.status is not Status.UNTESTED:
        return []
    named = [r.suite for r in entry.reasons if r.suite is not None and r.cause == entry.name]
    return list(dict.fromkeys(named or required))


def _groups(result: CheckResult, required: RequiredSuites) -> list[_Group]:
    """Failing groups largest first, then warning groups largest first."""
    groups: dict[tuple[_Key, bool], _Group] = {}
    for warning, entries in ((False, result.failing), (True, result.warnings)):
        for entry in entries:
            for key in _entry_keys(entry, required, result.env):
                group = groups.setdefault((key, warning), _Group(key, warning))
                group.entries[entry.name] = entry
    return sorted(groups.values(), key=lambda g: (
        g.warning, -len(g.entries), _CATEGORY_RANK[g.key.category],
        str(g.key.cause), str(g.key.suite), str(g.key.from_), str(g.key.to), g.key.suites))


def _nodes(n: int) -> str:
    return f"{n} node" if n == 1 else f"{n} nodes"


def _change(key: _Key, show: Callable[[str], str], arrow: str) -> str:
    """The upstream change: 'embed 2 -> 3', or an input that appeared or went away."""
    if key.cause is None:
        return "an upstream change"
    cause = show(key.cause)
    if key.from_ is not None and key.to is not None:
        return f"{cause} {show(key.from_)} {arrow} {show(key.to)}"
    if key.to is not None:  # not in the lineage the node was tested with
        return f"new upstream {cause} {show(key.to)}"
    if key.from_ is not None:
        return f"removed upstream {cause} (was {show(key.from_)})"
    return f"a change of {cause}"


def _skew(key: _Key, n: int, show: Callable[[str], str]) -> str:
    """A skew shared by ``n`` nodes: what the environment serves, what they were tested
    with ('2 nodes in prod serve txn 2.1 but were tested with 2.0')."""
    env = show(key.env or "")
    serve, were = ("serves", "was") if n == 1 else ("serve", "were")
    where = f"{_nodes(n)} in {env}"
    if key.cause is None:
        return f"{where} {serve} inputs other than those {'it' if n == 1 else 'they'} " \
               f"{were} tested with"
    cause = show(key.cause)
    if key.from_ is not None and key.to is not None:
        return f"{where} {serve} {cause} {show(key.to)} but {were} tested with {show(key.from_)}"
    if key.to is not None:
        return f"{where} {serve} {cause} {show(key.to)}, which was not upstream when tested"
    return f"{where} no longer {'reads' if n == 1 else 'read'} {cause} (tested with " \
           f"{show(key.from_ or 'none')})"


def _headline(group: _Group, show: Callable[[str], str], arrow: str) -> str:
    """One sentence saying what the group's nodes share; ``show`` escapes untrusted text."""
    key, n = group.key, len(group.entries)
    has, are = ("has", "is") if n == 1 else ("have", "are")
    suite = f" of suite {show(key.suite)}" if key.suite else ""
    if key.category == "change" and key.env is not None:
        suites = (f" (requiring suite{'s' if len(key.suites) > 1 else ''} "
                  f"{', '.join(show(s) for s in key.suites)})" if key.suites else "")
        return _skew(key, n, show) + suites
    if key.category == "missing":
        reads = "reads" if n == 1 else "read"
        return (f"{_nodes(n)} in {show(key.env or '')} {reads} {show(key.cause or '?')}, "
                "which is not deployed there")
    if key.category == "change":
        suites = (f" requiring suite{'s' if len(key.suites) > 1 else ''} "
                  f"{', '.join(show(s) for s in key.suites)}" if key.suites else "")
        return f"{_change(key, show, arrow)} is untested by {_nodes(n)}{suites}"
    which = "deployed" if key.env is not None else "current"
    if key.category == "untested":
        return f"{_nodes(n)} {has} a {which} version with no test run"
    if key.category == "failed":
        with_ = f" with what {show(key.env)} serves" if key.env is not None else ""
        return f"{_nodes(n)} failed the latest test run{suite}{with_}"
    if key.category == "suite":
        return f"{_nodes(n)} {has} no passing run of required suite {show(key.suite or '')}"
    if key.category == "stale":
        tail = " (a warning; it fails under --strict)" if group.warning else ""
        return f"{_nodes(n)} {are} stale: older than the max age{tail}"
    return f"{_nodes(n)} {are} {show(key.status or 'unknown')}"


def _record(node: str, suite: str | None, version: str | None = None) -> str:
    """The command that records a passing run (of ``suite``, of ``version``); ``node`` and
    ``version`` are already quoted."""
    return f"chainml test record {node}" + (f" --version {version}" if version else "") + \
        " --passed" + (f" --suite {shlex.quote(suite)}" if suite else "")


def _env_fixes(key: _Key, entries: list[StatusEntry], node: str
               ) -> list[tuple[str, list[str]]]:
    """check --env: the ways to clear a group in the environment ``key.env``."""
    env = shlex.quote(key.env or "")
    version = (shlex.quote(entries[0].version) if len(entries) == 1 and entries[0].version
               else "VERSION")
    if key.category == "missing":
        return [("deploy what they read: ", [f"chainml deploy {shlex.quote(key.cause or '?')} "
                                             f"--env {env}"])]
    if key.category in ("untested", "suite"):
        return [("test the deployed version, then ", [_record(node, key.suite, version)])]
    if key.category == "failed":
        return [("deploy a version that passed with these inputs, or fix and retest, then ",
                 [_record(node, key.suite, version)])]
    if key.category == "change":
        cause = shlex.quote(key.cause) if key.cause else None
        out: list[tuple[str, list[str]]] = []
        if cause and key.from_ and key.to and "," not in key.from_:
            out.append(("roll back to what it was tested with: ",
                        [f"chainml deploy {cause}@{shlex.quote(key.from_)} --env {env}"]))
        suites = key.suites or (None,)
        out.append(("retest it with what the environment serves, then ",
                    [_record(node, s, version) for s in suites]))
        out.append(("accept the skew: ", [f'{_WAIVE}{node} --env {env} --reason "WHY"'
                                          + (f" --cause {cause}" if cause else "")]))
        return out
    if key.category == "stale":
        return [("retrain, register and deploy a new version: ",
                 [f"chainml deploy {node}@NEW --env {env}"])]
    return [("see ", [f"chainml status --env {env} {node}"])]


def _fixes(key: _Key, entries: list[StatusEntry]) -> list[tuple[str, list[str]]]:
    """The ways to clear a group, each (what to do, the commands it takes, all of them);
    the real name when there is one node."""
    node = shlex.quote(entries[0].name) if len(entries) == 1 else "NODE"
    if key.env is not None:
        return _env_fixes(key, entries, node)
    if key.category == "change":
        cause = f" --cause {shlex.quote(key.cause)}" if key.cause else ""
        waive = ("accept the change: ", [f'{_WAIVE}{node} --reason "WHY"{cause}'])
        if len(key.suites) > 1:
            return [("retest every required suite, then ",
                     [_record(node, s) for s in key.suites]), waive]
        return [("retest, then ", [_record(node, key.suites[0] if key.suites else None)]),
                waive]
    if key.category in ("untested", "suite"):
        return [("test the current version, then ", [_record(node, key.suite)])]
    if key.category == "failed":
        return [("fix and retest, then ", [_record(node, key.suite)])]
    if key.category == "stale":
        kinds = {e.kind for e in entries}
        kind = shlex.quote(kinds.pop()) if len(kinds) == 1 else "KIND"
        return [("retrain, then ", [f"chainml register {kind} {node} --version NEW ..."])]
    return [("see ", [f"chainml status {node}"])]


def _sorted(entries: Iterable[StatusEntry]) -> list[StatusEntry]:
    return sorted(entries, key=lambda e: (_STATUS_RANK.get(e.status, 99), e.name))


def _reason_text(reason: Reason) -> str:
    """The registry's message, or one built from the fields when it gave none."""
    if reason.message:
        return reason.message
    versions = f" {reason.from_ or 'none'} -> {reason.to or 'none'}"
    via = f" via {' -> '.join(reason.path)}" if reason.path else ""
    return f"{reason.cause}{versions}{via}"


def _why(entry: StatusEntry) -> list[str]:
    """Raw (unescaped) one-line reasons of a node, at most _MAX_REASONS of them."""
    if not entry.reasons:
        return [entry.status.value.replace("_", " ")]
    lines = [_reason_text(r) for r in entry.reasons[:_MAX_REASONS]]
    if len(entry.reasons) > _MAX_REASONS:
        lines.append(f"... and {len(entry.reasons) - _MAX_REASONS} more reasons")
    return lines


def _node_fixes(entry: StatusEntry, required: RequiredSuites, env: str | None = None
                ) -> list[str]:
    """Commands that clear one node, deduplicated across its causes."""
    cmds = (cmd for key in _entry_keys(entry, required, env)
            for _, step in _fixes(key, [entry]) for cmd in step)
    return list(dict.fromkeys(cmds))


# --- undeclared inputs (check --observed) -------------------------------------------

OBSERVED_FIX = ("to clear: declare the input (chainml register NODE --version V --input "
                "INPUT, a chain file or apply), or stop the job reading it")


def _finding_text(f: Finding) -> str:
    runs = f"{f.times} run{'' if f.times == 1 else 's'}"
    return (f"{f.node} read {f.input}, which its declared inputs leave out (last in run "
            f"{f.last_run}, {runs} since {f.first_seen:%Y-%m-%d %H:%M} UTC)")


def observed_lines(result: CheckResult, limit: int) -> list[str]:
    """The text report's section on undeclared inputs (empty without ``--observed``)."""
    seen = result.observed
    if seen is None:
        return []
    if not seen:
        return ["no undeclared inputs observed", ""]
    state = "failing under --strict" if result.strict else "warning; --strict fails on them"
    lines = [f"undeclared inputs observed: {len(seen)} ({state})"]
    lines += [f"  {_printable(_finding_text(f))}" for f in seen[:limit]]
    if len(seen) > limit:
        lines.append(f"  ... and {len(seen) - limit} more")
    return [*lines, f"  {OBSERVED_FIX}", ""]


# --- verdict and totals -------------------------------------------------------------

def _title(result: CheckResult) -> str:
    """What ran: 'check', or 'check --env prod' for the deployment gate."""
    return f"check --env {_printable(result.env)}" if result.env else "check"


def clear_ways(entry: StatusEntry, env: str | None = None) -> list[tuple[str, list[str]]]:
    """The ways to clear one node (in environment ``env``), as ``check`` lists them: each
    (what to do, every command it takes), alternatives in order, without repeats."""
    required = {entry.name: entry.required_suites} if entry.required_suites else {}
    out: dict[tuple[str, tuple[str, ...]], None] = {}
    for key in _entry_keys(entry, required, env):
        for note, cmds in _fixes(key, [entry]):
            out[(note, tuple(cmds))] = None
    return [(note, list(cmds)) for note, cmds in out]


def clear_lines(entry: StatusEntry, env: str | None = None, indent: str = "  ") -> list[str]:
    """``clear_ways`` as the text report writes them: 'to clear:', then 'and:'/'or:'."""
    lines = []
    for i, (note, cmds) in enumerate(clear_ways(entry, env)):
        for j, cmd in enumerate(cmds):
            label = "and" if j else "or" if i else "to clear"
            lines.append(f"{indent}{label:>8}: {'' if j else note}{_printable(cmd)}")
    return lines


@dataclass(frozen=True)
class CauseGroup:
    """One group of the text report, as data for other media (the web UI's gate).

    ``headline`` says what the nodes share ('embed 2 -> 3 is untested by 4 nodes');
    ``ways`` are the ways to clear them, alternatives in order, each (what to do, every
    command it takes); ``warning``: stale nodes that fail only under ``--strict``.
    Text from the registry in ``headline`` went through the caller's ``show``.
    """

    headline: str
    warning: bool
    nodes: list[StatusEntry]
    ways: list[tuple[str, list[str]]]


def cause_groups(result: CheckResult, show: Callable[[str], str] = _printable,
                 arrow: str = "\u2192") -> list[CauseGroup]:
    """The groups of the text report, failing ones first, largest first: every group,
    none cut (the caller decides how many to show).

    Args:
        result: what ``check`` found (in the registry or an environment).
        show: how untrusted text enters a headline (escaping or cleaning it).
        arrow: between an old and a new version ('2 -> 3').
    """
    required = {e.name: e.required_suites for e in (*result.failing, *result.warnings)
                if e.required_suites}
    return [CauseGroup(_headline(g, show, arrow), g.warning,
                       sorted(g.entries.values(), key=lambda e: e.name),
                       _fixes(g.key, list(g.entries.values())))
            for g in _groups(result, required)]


def verdict(result: CheckResult) -> str:
    """'failed: 12 of 40 nodes are not verified' / 'passed: all 40 nodes verified'."""
    return _verdict(result)


def _verdict(result: CheckResult) -> str:
    """'failed: 12 of 40 nodes are not verified' / 'passed: all 40 nodes verified (...)'."""
    if not result.ok and not result.failing and result.observed:
        n = len(result.observed)
        return f"failed (strict): {n} undeclared input{'' if n == 1 else 's'} observed"
    if not result.ok:
        mode = " (strict)" if result.strict else ""
        verb = "is" if len(result.failing) == 1 else "are"
        return (f"failed{mode}: {len(result.failing)} of {_nodes(result.checked)} {verb} "
                "not verified")
    if result.checked == 0:
        return "passed: no nodes to check"
    extras = [f"{n} {label}" for n, label in (
        (result.counts.get(Status.WAIVED.value, 0), "waived"),
        (len(result.warnings) or result.counts.get(Status.STALE.value, 0), "stale"),
    ) if n]
    tail = f" ({', '.join(extras)})" if extras else ""
    every = "the only node" if result.checked == 1 else f"all {_nodes(result.checked)}"
    return f"passed: {every} verified{tail}"


def _counts(result: CheckResult) -> dict[str, int]:
    """Status counts over all checked nodes; derived from the lists when counts is empty."""
    counts = dict(result.counts)
    if not counts:
        for entry in [*result.failing, *result.warnings]:
            counts[entry.status.value] = counts.get(entry.status.value, 0) + 1
    order = {s.value: i for i, s in enumerate(Status)}
    return dict(sorted(counts.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def _totals(result: CheckResult) -> str:
    counts = ", ".join(f"{n} {_printable(status)}" for status, n in _counts(result).items())
    warn = len(result.warnings)
    return (f"totals: {result.checked} checked{f' ({counts})' if counts else ''}; "
            f"{len(result.failing)} failing, {warn} {'warning' if warn == 1 else 'warnings'}")


def _scope(result: CheckResult, limit: int) -> str | None:
    if not result.scope:
        return None
    shown = ", ".join(_printable(s) for s in result.scope[:limit])
    more = f", ... and {len(result.scope) - limit} more" if len(result.scope) > limit else ""
    return f"scope: {shown}{more}"


# --- formats ------------------------------------------------------------------------

def _group_names(group: _Group, limit: int) -> str:
    """Up to ``limit`` names (with the version where the node's own version is the point)."""
    entries = sorted(group.entries.values(), key=lambda e: e.name)
    versioned = group.key.category != "change"
    names = [_printable(f"{e.name}@{e.version}" if versioned and e.version else e.name)
             for e in entries[:limit]]
    more = f", ... and {len(entries) - limit} more" if len(entries) > limit else ""
    return ", ".join(names) + more


def _text_group(group: _Group, limit: int) -> list[str]:
    """A group as: wrapped headline with names, then how to clear it, then a blank line.

    Each way to clear it starts a line ("to clear:", then "or:"); a way that takes
    several commands (one per required suite) continues with "and:" lines.
    """
    head = f"{_headline(group, _printable, '->')}: {_group_names(group, limit)}"
    lines = textwrap.wrap(head, width=_WRAP, subsequent_indent="    ",
                          break_long_words=False, break_on_hyphens=False)
    for i, (note, cmds) in enumerate(_fixes(group.key, list(group.entries.values()))):
        for j, cmd in enumerate(cmds):
            label = "and" if j else "or" if i else "to clear"
            lines.append(f"  {label:>8}: {'' if j else note}{_printable(cmd)}")
    return [*lines, ""]


def _omitted(groups: list[_Group]) -> str:
    nodes = {name for g in groups for name in g.entries}
    env = next((g.key.env for g in groups if g.key.env), None)
    status = f"chainml status --env {env} --json" if env else "chainml status --json"
    return (f"... and {len(groups)} more groups covering {_nodes(len(nodes))}; "
            f"'{status}' lists every reason")


def _text(result: CheckResult, limit: int, required: RequiredSuites) -> str:
    """The human report: verdict, groups by cause (largest first), totals."""
    lines = [f"{_title(result)} {_verdict(result)}"]
    scope = _scope(result, limit)
    if scope:
        lines += textwrap.wrap(scope, width=_WRAP, subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    if result.checked == 0:
        # A first check right after `init` lands here: say why, not just "0 checked".
        which = "nothing in this scope needs" if result.scope else "no node needs"
        lines.append(f"{which} tests yet (models and policies do, and any node given "
                     "--needs-tests)")
    lines.append("")
    groups = _groups(result, required)
    for group in groups[:MAX_GROUPS]:
        lines += _text_group(group, limit)
    if len(groups) > MAX_GROUPS:
        lines += [_omitted(groups[MAX_GROUPS:]), ""]
    lines += observed_lines(result, limit)
    lines.append(_totals(result))
    return "\n".join(lines) + "\n"


def _json(result: CheckResult) -> str:
    """The --json contract: the CheckResult itself, 'from' spelled by its alias."""
    try:
        return result.model_dump_json(by_alias=True, indent=2) + "\n"
    except PydanticSerializationError:
        # A lone surrogate cannot be encoded as UTF-8, and its \\udXXX escape is refused
        # by strict JSON readers (pydantic's among them): write U+FFFD in its place.
        text = json.dumps(result.model_dump(mode="json", by_alias=True), indent=2,
                          ensure_ascii=False)
        return _SURROGATE.sub("\ufffd", text) + "\n"


def _junit_case(parent: ET.Element, entry: StatusEntry, warning: bool,
                required: RequiredSuites, env: str | None = None) -> None:
    """One testcase for a failing (failure) or warned-about (skipped) node."""
    case = ET.SubElement(parent, "testcase", classname=_xml(f"chainml.{_printable(entry.kind)}"),
                         name=_xml(_printable(entry.name)))
    why = [_printable(line, clip=500) for line in _why(entry)]
    label = f"{_printable(entry.name)}@{_printable(entry.version or 'none')}"
    message = _xml(f"{label} {_STATUS_PHRASE[entry.status]}: {why[0]}")
    if warning:
        ET.SubElement(case, "skipped", message=f"warning: {message}")
        return
    failure = ET.SubElement(case, "failure", message=message, type=entry.status.value)
    body = [*(f"- {line}" for line in why), "", "to clear:",
            *(f"  {_printable(cmd)}" for cmd in _node_fixes(entry, required, env))]
    if entry.owner:
        body.insert(0, f"owner: {_printable(entry.owner)}")
    failure.text = _xml("\n".join(body))


def _junit(result: CheckResult, required: RequiredSuites) -> str:
    """JUnit XML: one testcase per failing node (failure) and per warning (skipped).

    The result carries only the failing and warned-about nodes, so the others are
    one testcase, "all N other checked nodes pass". ``tests`` counts the testcase
    elements, as CI readers (Jenkins, GitLab) do, so the file never contradicts
    itself; the number of checked nodes is the ``checked`` property.

    The document validates against the JUnit schema Jenkins' xUnit plugin checks every
    report with before reading it (junit-10.xsd), which skips an invalid report
    whole: that schema allows ``skipped`` on ``<testsuite>`` but not on
    ``<testsuites>``, so the root carries only tests, failures and errors.
    """
    others = result.checked - len(result.failing) - len(result.warnings)
    seen = result.observed or []
    failures = len(result.failing) + (len(seen) if result.strict else 0)
    skipped = len(result.warnings) + (0 if result.strict else len(seen))
    tests = len(result.failing) + len(result.warnings) + len(seen) + (1 if others > 0 else 0)
    stats = {"tests": str(tests), "failures": str(failures), "errors": "0"}
    title = _xml(f"chainml {_title(result)}")
    root = ET.Element("testsuites", {"name": title, **stats})
    suite = ET.SubElement(root, "testsuite", {"name": title, **stats,
                                              "skipped": str(skipped)})
    props = ET.SubElement(suite, "properties")
    if result.env:
        ET.SubElement(props, "property", name="env", value=_xml(_printable(result.env)))
    for name, value in (("checked", result.checked), ("ok", result.ok),
                        ("strict", result.strict), *(
                            (f"count.{k}", v) for k, v in _counts(result).items())):
        ET.SubElement(props, "property", name=_xml(_printable(name)), value=str(value).lower())
    if result.scope:
        scope = ", ".join(_printable(s) for s in result.scope)
        ET.SubElement(props, "property", name="scope", value=_xml(scope))
    for entry in _sorted(result.failing):
        _junit_case(suite, entry, warning=False, required=required, env=result.env)
    for entry in _sorted(result.warnings):
        _junit_case(suite, entry, warning=True, required=required, env=result.env)
    for f in seen:
        case = ET.SubElement(suite, "testcase", classname="chainml.observed",
                             name=_xml(_printable(f"{f.node} <- {f.input}")))
        message = _xml(_printable(_finding_text(f), clip=1000))
        if result.strict:
            ET.SubElement(case, "failure", message=message, type="undeclared_input").text = \
                _xml(_printable(OBSERVED_FIX))
        else:
            ET.SubElement(case, "skipped", message=f"warning: {message}")
    if others > 0:
        ET.SubElement(suite, "testcase", classname="chainml",
                      name=f"all {others} other checked nodes pass")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


# GitHub shows at most 10 error and 10 warning annotations per step and drops the rest
# without a word (actions/toolkit, docs/problem-matchers.md, "Limitations").
_GH_PER_LEVEL = 10
# The runner cuts an annotation's message at 4,096 characters (since runner 2.305.0),
# counted as .NET counts them, in UTF-16 code units. We measure the escaped message,
# which is never shorter than what the runner unescapes, so nothing we write is cut.
_GH_MESSAGE = 4096
_GH_HEAD = 1000  # at most this much of a message for the line naming the node
_GH_BREAK = len("%0A")


def _gh_len(line: str) -> int:
    """The length of ``line`` in a message: escaped, in UTF-16 code units."""
    return len(_gh_data(line).encode("utf-16-le")) // 2


def _gh_head(line: str) -> str:
    """``line`` cut to _GH_HEAD (only text no registry holds is ever that long)."""
    while _gh_len(line) > _GH_HEAD:
        line = line[: len(line) // 2] + "..."
    return line


def _take(lines: Sequence[str], room: int, more: Callable[[int], str],
          cap: int | None = None) -> list[str]:
    """The first (at most ``cap``) lines that fit in ``room``, each after a line break,
    then ``more(n)`` for the n left out; room for that line is kept as we go."""
    cap = len(lines) if cap is None else min(cap, len(lines))
    kept: list[str] = []
    used = 0
    for i, line in enumerate(lines[:cap]):
        left = len(lines) - i - 1
        cost = _GH_BREAK + _gh_len(line)
        if used + cost + (_GH_BREAK + _gh_len(more(left)) if left else 0) > room:
            break
        kept.append(line)
        used += cost
    if len(kept) < len(lines):
        kept.append(more(len(lines) - len(kept)))
    return kept


def _gh_message(head: str, reasons: Sequence[str], commands: Sequence[str]) -> str:
    """The escaped message: the head, as many reasons as fit, then every command.

    The commands that clear the node come first when space runs out: a reader can do
    without the eleventh changed ancestor, not without the command to run.
    """
    head = _gh_head(head)
    room = _GH_MESSAGE - 1 - _gh_len(head)

    def more_reasons(n: int) -> str:
        return f"- ... and {n} more reasons"

    def more_commands(n: int) -> str:
        return f"to clear: ... and {n} more commands; chainml check lists them all"

    reserve = _GH_BREAK + _gh_len(more_reasons(len(reasons))) if reasons else 0
    kept_commands = _take(commands, room - reserve, more_commands)
    room -= sum(_GH_BREAK + _gh_len(line) for line in kept_commands)
    kept_reasons = _take(reasons, room, more_reasons, cap=_MAX_REASONS)
    return _gh_data("\n".join([head, *kept_reasons, *kept_commands]))


def _gh_fixes(entry: StatusEntry, required: RequiredSuites, env: str | None = None
              ) -> list[str]:
    """The node's commands, with one waiver for all its causes when it has several
    (``waive`` without ``--cause`` accepts them all): a waiver per changed ancestor
    would crowd the retest command out of the message."""
    commands = _node_fixes(entry, required, env)
    if sum(cmd.startswith(_WAIVE) for cmd in commands) < 2:
        return commands
    where = f" --env {shlex.quote(env)}" if env else ""
    return [cmd for cmd in commands if not cmd.startswith(_WAIVE)] + [
        f'{_WAIVE}{shlex.quote(entry.name)}{where} --reason "WHY"']


def _gh_annotation(entry: StatusEntry, level: str, required: RequiredSuites,
                   env: str | None = None) -> str:
    """One workflow command; the title and message are escaped after cleaning."""
    name = _printable(entry.name)
    phrase = _STATUS_PHRASE[entry.status]
    where = f" ({_printable(env)})" if env else ""
    title = f"chainml{where}: {name} {phrase}"
    head = f"{name}@{_printable(entry.version or 'none')} ({_printable(entry.kind)}) {phrase}:"
    why = [_reason_text(r) for r in entry.reasons] or [entry.status.value.replace("_", " ")]
    reasons = [f"- {_printable(line, clip=500)}" for line in why]
    commands = [f"to clear: {_printable(cmd)}" for cmd in _gh_fixes(entry, required, env)]
    return f"::{level} title={_gh_prop(title)}::{_gh_message(head, reasons, commands)}"


def _gh_overflow(result: CheckResult, level: str, entries: list[StatusEntry],
                 shown: int, limit: int) -> str:
    """The one annotation that stands for the nodes beyond GitHub's limit."""
    rest = entries[shown:]
    what = "failing nodes" if level == "error" else "warnings"
    title = f"chainml: {len(rest)} more {what}"
    head = (f"{_title(result)} {_verdict(result)}. GitHub shows at most {_GH_PER_LEVEL} {level} "
            f"annotations per step, so these {len(rest)} {what} have none of their own:")
    tail = (f"The full report, with the commands that clear each node: the text of "
            f"'chainml {_title(result)}' (or the job summary, if the workflow writes "
            f"'chainml {_title(result)} --format markdown' to it).")
    room = _GH_MESSAGE - 1 - _gh_len(head) - _GH_BREAK - _gh_len(tail)
    names = [f"- {_printable(e.name)}@{_printable(e.version or 'none')} "
             f"{_STATUS_PHRASE[e.status]}" for e in rest]
    lines = [head, *_take(names, room, lambda n: f"- ... and {n} more", cap=limit), tail]
    return f"::{level} title={_gh_prop(title)}::{_gh_data(chr(10).join(lines))}"


def _github(result: CheckResult, limit: int, required: RequiredSuites) -> str:
    """GitHub Actions annotations: ::error per failing node, ::warning per stale one.

    Per level, the first nodes (failed, then untested, then needs_retest, then stale;
    by name within each) up to GitHub's 10 a step, or ``limit`` if lower; when more
    remain, one fewer and a last annotation that counts and lists the rest.
    """
    lines = []
    for level, entries in (("error", _sorted(result.failing)),
                           ("warning", _sorted(result.warnings))):
        cap = min(limit, _GH_PER_LEVEL)
        shown = len(entries) if len(entries) <= cap else min(limit, _GH_PER_LEVEL - 1)
        lines += [_gh_annotation(entry, level, required, result.env)
                  for entry in entries[:shown]]
        if shown < len(entries):
            lines.append(_gh_overflow(result, level, entries, shown, limit))
    level = "error" if result.strict else "warning"
    room = max(0, min(limit, _GH_PER_LEVEL) - sum(line.startswith(f"::{level} ")
                                                   for line in lines))
    seen = result.observed or []
    for i, f in enumerate(seen[:room]):
        if i == room - 1 and len(seen) > room:
            text = (f"{len(seen) - i} undeclared inputs observed; chainml check --observed "
                    "lists them")
        else:
            text = f"{_finding_text(f)}\n{OBSERVED_FIX}"
        title = _gh_prop(f"chainml: undeclared input of {_printable(f.node)}")
        lines.append(f"::{level} title={title}::{_gh_data(_printable(text, clip=3000))}")
    if not lines:
        title = _gh_prop(f"chainml {_title(result)}")
        lines.append(f"::notice title={title}::{_gh_data(_title(result))} "
                     f"{_gh_data(_verdict(result))}")
    return "\n".join(lines) + "\n"


def _md_summary(groups: list[_Group]) -> list[str]:
    """Bullets, one per cause: what happened and the command that clears it."""
    lines = []
    for group in groups[:MAX_GROUPS]:
        fixes = _fixes(group.key, list(group.entries.values()))
        how = "; or ".join(f"{note}{' and '.join(_md_code(cmd) for cmd in cmds)}"
                           for note, cmds in fixes)
        lines.append(f"- {_headline(group, _md_code, '→')}. To clear: {how}")
    if len(groups) > MAX_GROUPS:
        lines.append(f"- {_md(_omitted(groups[MAX_GROUPS:]))}")
    return lines


def _md_row(entry: StatusEntry) -> str:
    why = [_md(line) for line in _why(entry)]
    shown = "; ".join(why[:3]) + (f"; and {len(why) - 3} more" if len(why) > 3 else "")
    cells = [_md_code(entry.name), _md_code(entry.kind), _md_code(entry.version or "none"),
             entry.status.value.replace("_", " "), shown]
    return "| " + " | ".join(cells) + " |"


def _md_mermaid(mermaid: str | MermaidChart) -> list[str]:
    """The chart in a fence longer than any backtick run inside it, so it cannot close early.

    A chart that had to leave nodes out to stay within Mermaid's limits says so in its
    summary line, which shows while the chart is folded, and in a sentence above it.
    """
    text = mermaid if isinstance(mermaid, str) else mermaid.text
    body = _XML_ILLEGAL.sub("", text).replace("\r\n", "\n").strip("\n")
    longest = max((len(run) for run in re.findall("`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    summary, note = "Affected part of the chain", []
    if not isinstance(mermaid, str) and not mermaid.complete:
        # Numbers and our own words only: nothing to escape.
        summary += f" ({mermaid.left_out} left out)"
        note = [f"The chart leaves out {mermaid.left_out}, as {mermaid.reason}; "
                "`chainml graph --format html` draws the whole chain.", ""]
    return [f"<details><summary>{summary}</summary>", "", *note,
            f"{fence}mermaid", body, fence, "", "</details>"]


def _markdown(result: CheckResult, limit: int, mermaid: str | MermaidChart | None,
              required: RequiredSuites) -> str:
    """A PR comment: verdict heading, summary by cause, a table of nodes, optional chart."""
    state = "passed" if result.ok else "failed"
    # The verdict holds only numbers and our own words: nothing to escape.
    lines = [f"### chainml {_md(_title(result))}: {state}", "",
             f"**{_md(_title(result))} {_verdict(result)}.**"]
    scope = _scope(result, limit)
    if scope:
        lines += ["", _md(scope)]
    groups = _groups(result, required)
    if groups:
        lines += ["", "**By cause**", "", *_md_summary(groups)]
    entries = [*_sorted(result.failing), *_sorted(result.warnings)]
    if entries:
        lines += ["", "| node | kind | version | status | why |", "|---|---|---|---|---|"]
        lines += [_md_row(e) for e in entries[:limit]]
        if len(entries) > limit:
            lines.append(f"| ... and {len(entries) - limit} more | | | | |")
    seen = result.observed or []
    if seen:
        state = "failing" if result.strict else "warning"
        lines += ["", f"**Undeclared inputs observed** ({state})", ""]
        lines += [f"- {_md_code(f.node)} read {_md_code(f.input)} (run {_md_code(f.last_run)}, "
                  f"{f.times} run{'' if f.times == 1 else 's'})" for f in seen[:limit]]
        if len(seen) > limit:
            lines.append(f"- ... and {len(seen) - limit} more")
        lines += ["", _md(OBSERVED_FIX)]
    lines += ["", _md(_totals(result))]
    if mermaid:
        lines += ["", *_md_mermaid(mermaid)]
    return "\n".join(lines) + "\n"


def render_check(result: CheckResult, fmt: str, *, limit: int = 50,
                 mermaid: str | MermaidChart | None = None,
                 required_suites: RequiredSuites | None = None) -> str:
    """Render the result of ``chainml check`` in one of the output formats.

    Args:
        result: what the check found.
        fmt: one of :data:`FORMATS`: ``text`` (a report grouped by cause, for people),
            ``json`` (the ``--json`` contract), ``junit`` (JUnit XML for CI test
            reports: a failure per failing node, a skipped testcase per stale
            warning and one "all N other checked nodes pass" testcase, since the
            result does not name them; ``tests`` counts testcases and the
            ``checked`` property holds ``result.checked``; it validates against
            Jenkins' junit-10.xsd), ``github`` (GitHub Actions annotations, within
            GitHub's 10 per level a step and 4,096 characters a message) or
            ``markdown`` (a PR comment).
        limit: at most this many names per group (text), node annotations per level
            (github, never more than 10, the last standing for the rest when some are
            left out) or table rows (markdown); the rest is counted as "... and N
            more". ``json`` and ``junit`` are never truncated.
        mermaid: a Mermaid flowchart of the affected part of the chain, embedded
            in a collapsed block by ``markdown`` and ignored by the other formats; a
            :class:`~chainml.render.mermaid.MermaidChart` that leaves nodes out gets a
            sentence saying what.
        required_suites: the suites each node requires (``--require-suite``), by node
            name; default: what the status entries carry. The commands that clear a
            node name each suite: a run without ``--suite`` decides nothing for such
            a node. Ignored by ``json``.

    Returns:
        The rendered text, ending with a newline.

    Raises:
        InvalidInput: ``fmt`` is not a known format, or ``limit`` is below 1.

    Example:
        >>> print(render_check(result, "text"))  # doctest: +SKIP
        check failed: 5 of 40 nodes are not verified
        <BLANKLINE>
        clicks_raw 1 -> 2 is untested by 5 nodes: ads_policy, churn_model, ...
    """
    name = fmt.strip().lower()
    if name not in FORMATS:
        raise InvalidInput(f"Unknown check format '{fmt}'; choose one of: {', '.join(FORMATS)}.")
    if limit < 1:
        raise InvalidInput(f"The limit must be at least 1, not {limit}.")
    required = required_suites if required_suites is not None else {
        e.name: e.required_suites for e in (*result.failing, *result.warnings)
        if e.required_suites}
    if name == "text":
        return _text(result, limit, required)
    if name == "json":
        return _json(result)
    if name == "junit":
        return _junit(result, required)
    if name == "github":
        return _github(result, limit, required)
    return _markdown(result, limit, mermaid, required)
