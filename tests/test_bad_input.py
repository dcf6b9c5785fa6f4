"""Bad input at the command line (DESIGN.md, "Bad input"), as one table.

Each case is a command line that must fail with the contract's exit code (2 bad input,
3 registry unreachable or on the wrong schema), exactly one ``Error: ...`` sentence on
stderr (after click's ``Usage:``/``Try`` lines for a usage error), no traceback, no
password, nothing on stdout, and a registry that is exactly what it was before: every
row of every table after each case, and what the CLI shows (``dump``: list, show of
every node, log and status) over the whole corpus, checked at the end of the module.
The cases share one registry per backend and setup, built once, to keep this fast.

To add a case, add one entry to ``CASES``: an id, the arguments, the expected error line.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from chainml.db.engine import parse_url, redact
from chainml.db.migrate import HEAD
from chainml.registry import Registry
from tests.clirun import (
    Databases,
    dump,
    error_line,
    example_registry,
    ok,
    ok_json,
    raw_dump,
    run,
)
from tests.conftest import BACKENDS

SECRET = "s3cretpw"
NAME_RULE = "use 1 to 200 ASCII letters, digits and _ - . / :"
LABEL_RULE = "use 1 to 100 printable characters without whitespace or '@'."
KINDS = "source, feature, model, policy, consumer"
CYCLE_HINT = "; declare one of these inputs with --feedback if the loop is intended."
IMMUTABLE = "; versions are immutable, so register a new version label."
UNREACHABLE = re.compile(
    r"Error: Cannot use the registry at postgresql\+psycopg://u:\*\*\*@127\.0\.0\.1:1/x: "
    r"[^\n]+; check that the database is running and the URL is right\.")
LONG = 30  # the long cycle: f0 -> f1 -> ... -> f30 -> f0


@dataclass(frozen=True)
class Bad:
    """One bad command line and the one error line it must produce.

    ``error`` is the whole line (``{where}`` stands for the redacted URL of the
    registry under test) or a regular expression it must match in full.
    """

    args: tuple[str, ...]
    error: str | re.Pattern[str]
    exit_code: int = 2
    setup: str = "example"  # which registry the command runs against (see SETUPS)
    backends: tuple[str, ...] | None = None  # None: every backend


def shown(text: str) -> str:
    """How an error message quotes untrusted text: repr, clipped at 60 characters."""
    return repr(text if len(text) <= 60 else text[:60] + "...")


def bad_name(name: str, reason: str, what: str = "node name") -> str:
    return f"Error: Invalid {what} {shown(name)}: it {reason}; {NAME_RULE}"


def bad_label(label: str, reason: str, what: str = "version label") -> str:
    return f"Error: Invalid {what} {shown(label)}: it {reason}; {LABEL_RULE}"


def new_source(name: str, reason: str) -> Bad:
    """``register source NAME --version 1`` with an invalid NAME."""
    return Bad(("register", "source", name, "--version", "1"), bad_name(name, reason))


def new_label(label: str, reason: str) -> Bad:
    return Bad(("register", "source", "new_src", "--version", label), bad_label(label, reason))


def m2(*extra: str) -> tuple[str, ...]:
    """``register model m2 --version 1 EXTRA...`` (m2 is a new model)."""
    return ("register", "model", "m2", "--version", "1", *extra)


def kind_rule(kind: str, me: str, up_kind: str, up: str, consumes: str) -> str:
    return (f"Error: A {kind} may not consume a {up_kind} ('{me}' <- '{up}'); a {kind} "
            f"consumes {consumes}.")


def no_node(name: str, hint: str | None = None) -> str:
    return f"Error: No node named {shown(name)}." + (f" Did you mean '{hint}'?" if hint else "")


def no_input(name: str, me: str, hint: str | None = None) -> str:
    return (f"Error: Input '{name}' of '{me}' is not a registered node; register it first."
            + (f" Did you mean '{hint}'?" if hint else ""))


def no_version(node: str, label: str) -> str:
    return (f"Error: Node '{node}' has no version {shown(label)}; 'chainml show {node}' lists "
            "its versions.")


def not_xml(field: str, text: str, code: str) -> str:
    return (f"Error: The {field} {shown(text)} contains U+{code}, a character XML 1.0 does "
            "not allow (SVG, HTML and JUnit reports could not show it); remove it.")


def usage(message: str) -> str:
    return f"Error: {message}"


SOURCE_CONSUMES = "nothing (only --feedback inputs)"
FEATURE_CONSUMES = "source, feature, model"
MODEL_CONSUMES = "source, feature, model"
POLICY_CONSUMES = "feature, model, policy"

CASES: dict[str, Bad] = {
    # ---- node names --------------------------------------------------------------------
    "name-empty": new_source("", "is empty"),
    "name-201-chars": new_source("n" * 201, "is 201 characters long (at most 200)"),
    "name-space": new_source("fraud scorer", "contains ' '"),
    "name-leading-space": new_source(" ranker", "contains ' '"),
    "name-trailing-newline": new_source("ranker\n", "contains '\\n'"),
    "name-newline": new_source("a\nb", "contains '\\n'"),
    "name-tab": new_source("a\tb", "contains '\\t'"),
    "name-carriage-return": new_source("a\rb", "contains '\\r'"),
    "name-at": new_source("ranker@2", "contains '@'"),
    "name-hash": new_source("a#b", "contains '#'"),
    "name-unicode-letter": new_source("modèle", "contains 'è'"),
    "name-cyrillic-homoglyph": new_source("r\u0430nker", "contains '\u0430'"),
    "name-fullwidth": new_source("\uff52anker", "contains '\uff52'"),
    "name-zero-width-space": new_source("ran\u200bker", "contains '\\u200b'"),
    "name-bell": new_source("a\x07b", "contains '\\x07'"),
    "name-escape-sequence": new_source("\x1b[31mred", "contains '\\x1b'"),
    "name-nul": new_source("a\x00b", "contains '\\x00'"),
    "name-html": new_source("<script>", "contains '<'"),
    "name-quote": new_source("a'b", "contains \"'\""),
    "name-backslash": new_source("a\\b", "contains '\\\\'"),
    "name-star": new_source("a*", "contains '*'"),
    "name-comma": new_source("a,b", "contains ','"),
    # ---- version labels ----------------------------------------------------------------
    "label-empty": new_label("", "is empty"),
    "label-101-chars": new_label("v" * 101, "is 101 characters long (at most 100)"),
    "label-space": new_label("1 0", "contains ' '"),
    "label-tab": new_label("1\t0", "contains '\\t'"),
    "label-newline": new_label("1\n", "contains '\\n'"),
    "label-at": new_label("1@2", "contains '@'"),
    "label-bell": new_label("1\x07", "contains '\\x07'"),
    "label-nul": new_label("1\x00", "contains '\\x00'"),
    "label-zero-width-space": new_label("1\u200b", "contains '\\u200b'"),
    "label-no-break-space": new_label("1\xa0", "contains '\\xa0'"),
    "label-of-existing-node": Bad(("register", "model", "ranker", "--version", "2 0"),
                                  bad_label("2 0", "contains ' '")),
    # ---- kinds -------------------------------------------------------------------------
    "kind-unknown": Bad(("register", "blob", "x", "--version", "1"), usage(
        f"Invalid value for 'KIND': 'blob' is not a kind: use one of {KINDS}.")),
    "kind-capitalised": Bad(("register", "Model", "x", "--version", "1"), usage(
        f"Invalid value for 'KIND': 'Model' is not a kind: use one of {KINDS}; did you mean "
        "'model'?")),
    "kind-misspelt": Bad(("register", "modle", "x", "--version", "1"), usage(
        f"Invalid value for 'KIND': 'modle' is not a kind: use one of {KINDS}; did you mean "
        "'model'?")),
    "list-kind-unknown": Bad(("list", "--kind", "blob"), usage(
        f"Invalid value for '--kind': 'blob' is not a kind: use one of {KINDS}.")),
    "list-kind-misspelt": Bad(("list", "--kind", "feat"), usage(
        f"Invalid value for '--kind': 'feat' is not a kind: use one of {KINDS}; did you mean "
        "'feature'?")),
    "kind-change": Bad(("register", "feature", "ranker", "--version", "9"),
                       "Error: 'ranker' is a model, not a feature; a node's kind cannot change."),
    "kind-change-same-version": Bad(
        ("register", "policy", "ranker", "--version", "1.4.0"),
        "Error: 'ranker' is a model, not a policy; a node's kind cannot change."),
    # ---- unknown and malformed inputs --------------------------------------------------
    "input-unknown-suggests": Bad(m2("--input", "fraud_scorr"),
                                  no_input("fraud_scorr", "m2", "fraud_scorer")),
    "input-unknown-other-case": Bad(m2("--input", "Ranker"), no_input("Ranker", "m2", "ranker")),
    "input-unknown-no-suggestion": Bad(m2("--input", "zzz"), no_input("zzz", "m2")),
    "input-invalid-name": Bad(m2("--input", "a b"), bad_name("a b", "contains ' '",
                                                             "input name")),
    "input-pin-unknown-version": Bad(m2("--input", "ranker@9.9"), no_version("ranker", "9.9")),
    "input-pin-unknown-node": Bad(m2("--input", "rankr@1"), no_input("rankr", "m2", "ranker")),
    "input-pin-empty": Bad(m2("--input", "ranker@"), bad_label(
        "", "is empty", "pinned version of input 'ranker'")),
    "input-pin-double-at": Bad(m2("--input", "ranker@1@2"), bad_label(
        "1@2", "contains '@'", "pinned version of input 'ranker'")),
    "input-duplicate": Bad(m2("--input", "ranker", "--input", "ranker"),
                           "Error: Input 'ranker' of 'm2' is given twice."),
    "input-duplicate-pinned": Bad(m2("--input", "ranker", "--input", "ranker@1.4.0"),
                                  "Error: Input 'ranker' of 'm2' is given twice."),
    "input-also-feedback": Bad(m2("--input", "ranker", "--feedback", "ranker"),
                               "Error: Input 'ranker' of 'm2' is given twice."),
    "input-and-no-inputs": Bad(m2("--input", "ranker", "--no-inputs"),
                               usage("--input and --no-inputs contradict each other.")),
    "feedback-and-no-feedback": Bad(m2("--feedback", "feed_app", "--no-feedback"),
                                    usage("--feedback and --no-feedback contradict each other.")),
    "feedback-unknown": Bad(m2("--feedback", "nope"), no_input("nope", "m2")),
    "feedback-invalid-name": Bad(m2("--feedback", "a b"),
                                 bad_name("a b", "contains ' '", "feedback input name")),
    "feedback-self": Bad(("register", "source", "clicks_raw", "--version", "2", "--feedback",
                          "clicks_raw"),
                         "Error: 'clicks_raw' cannot be a feedback input of itself."),
    # ---- kind rules --------------------------------------------------------------------
    "source-with-input": Bad(
        ("register", "source", "new_src", "--version", "1", "--input", "clicks_raw"),
        kind_rule("source", "new_src", "source", "clicks_raw", SOURCE_CONSUMES)),
    "existing-source-gets-input": Bad(
        ("register", "source", "clicks_raw", "--version", "2", "--input", "user_profiles"),
        kind_rule("source", "clicks_raw", "source", "user_profiles", SOURCE_CONSUMES)),
    "model-consumes-policy": Bad(m2("--input", "fraud_rules"), kind_rule(
        "model", "m2", "policy", "fraud_rules", MODEL_CONSUMES)),
    "model-consumes-consumer": Bad(m2("--input", "feed_app"), kind_rule(
        "model", "m2", "consumer", "feed_app", MODEL_CONSUMES)),
    "policy-consumes-consumer": Bad(
        ("register", "policy", "p2", "--version", "1", "--input", "feed_app"),
        kind_rule("policy", "p2", "consumer", "feed_app", POLICY_CONSUMES)),
    "policy-consumes-source": Bad(
        ("register", "policy", "p2", "--version", "1", "--input", "clicks_raw"),
        kind_rule("policy", "p2", "source", "clicks_raw", POLICY_CONSUMES)),
    "feature-consumes-policy": Bad(
        ("register", "feature", "f2", "--version", "1", "--input", "fraud_rules"),
        kind_rule("feature", "f2", "policy", "fraud_rules", FEATURE_CONSUMES)),
    "kind-rule-on-second-input": Bad(m2("--input", "ranker", "--input", "ranking_safety"),
                                     kind_rule("model", "m2", "policy", "ranking_safety",
                                               MODEL_CONSUMES)),
    # ---- self inputs and cycles --------------------------------------------------------
    "self-input": Bad(("register", "model", "ranker", "--version", "2", "--input", "ranker"),
                      "Error: This would close a cycle: ranker -> ranker" + CYCLE_HINT),
    "self-input-pinned": Bad(
        ("register", "model", "ranker", "--version", "2", "--input", "ranker@1.4.0"),
        "Error: This would close a cycle: ranker -> ranker" + CYCLE_HINT),
    "self-input-new-node": Bad(m2("--input", "m2"),
                               "Error: This would close a cycle: m2 -> m2" + CYCLE_HINT),
    "self-input-source-kind-first": Bad(
        ("register", "source", "clicks_raw", "--version", "2", "--input", "clicks_raw"),
        kind_rule("source", "clicks_raw", "source", "clicks_raw", SOURCE_CONSUMES)),
    "cycle-2": Bad(("register", "feature", "click_features", "--version", "2",
                    "--input", "clicks_raw", "--input", "ranker"),
                   "Error: This would close a cycle: click_features -> ranker -> click_features"
                   + CYCLE_HINT),
    "cycle-3": Bad(("register", "model", "user_embedding", "--version", "4",
                    "--input", "click_features", "--input", "ranker"),
                   "Error: This would close a cycle: user_embedding -> embedding_features -> "
                   "ranker -> user_embedding" + CYCLE_HINT),
    "cycle-4": Bad(("register", "feature", "click_features", "--version", "2",
                    "--input", "clicks_raw", "--input", "fraud_scorer"),
                   "Error: This would close a cycle: click_features -> user_embedding -> "
                   "embedding_features -> fraud_scorer -> click_features" + CYCLE_HINT),
    f"cycle-{LONG + 1}": Bad(
        ("register", "feature", "f0", "--version", "2", "--input", f"f{LONG}"),
        "Error: This would close a cycle: " + " -> ".join(f"f{i}" for i in range(LONG + 1))
        + " -> f0" + CYCLE_HINT, setup="long_chain"),
    "kind-rule-before-cycle": Bad(
        ("register", "feature", "click_features", "--version", "2", "--input", "fraud_rules"),
        kind_rule("feature", "click_features", "policy", "fraud_rules", FEATURE_CONSUMES)),
    "kind-rule-before-cycle-source": Bad(
        ("register", "source", "clicks_raw", "--version", "2", "--input", "ranker"),
        kind_rule("source", "clicks_raw", "model", "ranker", SOURCE_CONSUMES)),
    # ---- immutable versions, confusable names --------------------------------------------
    "version-other-inputs": Bad(
        ("register", "model", "ranker", "--version", "1.4.0", "--input", "click_features"),
        "Error: Version '1.4.0' of 'ranker' already exists with other content: this "
        f"registration removes input 'embedding_features'{IMMUTABLE}"),
    "version-other-meta": Bad(
        ("register", "model", "ranker", "--version", "1.4.0", "--meta", "artifact=s3://x"),
        "Error: Version '1.4.0' of 'ranker' already exists with other content: this "
        f"registration adds meta 'artifact'{IMMUTABLE}"),
    "version-no-inputs": Bad(
        ("register", "model", "ranker", "--version", "1.4.0", "--no-inputs"),
        "Error: Version '1.4.0' of 'ranker' already exists with other content: this "
        f"registration removes inputs 'click_features' and 'embedding_features'{IMMUTABLE}"),
    "version-pin-dropped": Bad(
        ("register", "policy", "ranking_safety", "--version", "7", "--input", "ranker",
         "--input", "fraud_scorer"),
        "Error: Version '7' of 'ranking_safety' already exists with other content: this "
        f"registration unpins 'fraud_scorer' from 5.2.0{IMMUTABLE}"),
    "version-feedback-added": Bad(
        ("register", "source", "clicks_raw", "--version", "2026-11-01", "--feedback",
         "feed_app"),
        "Error: Version '2026-11-01' of 'clicks_raw' already exists with other content: this "
        f"registration adds feedback input 'feed_app'{IMMUTABLE}"),
    "confusable-capital": Bad(
        ("register", "model", "Ranker", "--version", "1"),
        "Error: Node name 'Ranker' differs from the existing 'ranker' only in letter case; "
        "such names are refused as confusable."),
    "confusable-upper-case": Bad(
        ("register", "source", "CLICKS_RAW", "--version", "1"),
        "Error: Node name 'CLICKS_RAW' differs from the existing 'clicks_raw' only in letter "
        "case; such names are refused as confusable."),
    # ---- option values -----------------------------------------------------------------
    "meta-without-equals": Bad(m2("--meta", "artifact"),
                               "Error: Invalid metadata 'artifact': use KEY=VALUE."),
    "meta-empty-key": Bad(m2("--meta", "=x"), "Error: Invalid metadata '=x': use KEY=VALUE."),
    "meta-key-twice": Bad(m2("--meta", "a=1", "--meta", "a=2"),
                          "Error: Metadata key 'a' is given twice."),
    "node-meta-without-equals": Bad(m2("--node-meta", "team"),
                                    "Error: Invalid metadata 'team': use KEY=VALUE."),
    "max-age-no-unit": Bad(m2("--max-age", "30"), "Error: Invalid maximum age '30': use a "
                           "number and a unit, such as 30d, 12h, 2w or 90m."),
    "max-age-unknown-unit": Bad(m2("--max-age", "30x"), "Error: Invalid maximum age '30x': use "
                                "a number and a unit, such as 30d, 12h, 2w or 90m."),
    "max-age-negative": Bad(m2("--max-age", "-1d"), "Error: Invalid maximum age '-1d': use a "
                            "number and a unit, such as 30d, 12h, 2w or 90m."),
    "max-age-zero": Bad(m2("--max-age", "0d"), "Error: Invalid maximum age '0d': use a number "
                        "and a unit, such as 30d, 12h, 2w or 90m."),
    "max-age-huge": Bad(m2("--max-age", "999999w"), "Error: The maximum age '999999w' is too "
                        "long (at most 3650d, 10 years)."),
    "require-suite-space": Bad(m2("--require-suite", "offline eval"),
                               bad_label("offline eval", "contains ' '", "suite name")),
    "owner-too-long": Bad(m2("--owner", "o" * 201),
                          "Error: The owner is 201 characters long (at most 200)."),
    "owner-nul": Bad(m2("--owner", "a\x00b"),
                     "Error: The owner 'a\\x00b' contains a NUL character ('\\x00')."),
    "description-nul": Bad(m2("--description", "a\x00b"),
                           "Error: The description 'a\\x00b' contains a NUL character "
                           "('\\x00')."),
    # XML 1.0 forbids these: the SVG, the HTML page and the JUnit report would not open.
    "description-fffe": Bad(m2("--description", "a\ufffeb"), not_xml(
        "description", "a\ufffeb", "FFFE")),
    "description-bell": Bad(m2("--description", "ding\x07"), not_xml(
        "description", "ding\x07", "0007")),
    "owner-ffff": Bad(m2("--owner", "team\uffff"), not_xml("owner", "team\uffff", "FFFF")),
    "tag-fffe": Bad(m2("--tag", "pii\ufffe"), not_xml("tag", "pii\ufffe", "FFFE")),
    "register-without-version": Bad(("register", "model", "m2"),
                                    usage("Missing option '--version' / '-v'.")),
    "log-limit-zero": Bad(("log", "--limit", "0"), usage(
        "Invalid value for '--limit': 0 is not in the range 1<=x<=2147483647.")),
    "impact-depth-zero": Bad(("impact", "ranker", "--depth", "0"), usage(
        "Invalid value for '--depth': 0 is not in the range x>=1.")),
    "check-format-unknown": Bad(("check", "--format", "xml"), usage(
        "Invalid value for '--format': 'xml' is not one of 'text', 'json', 'junit', 'github', "
        "'markdown'.")),
    "unknown-command": Bad(("frobnicate",), usage("No such command 'frobnicate'.")),
    "unknown-option": Bad(("list", "--jsn"), usage("No such option '--jsn'. Did you mean "
                                                    "'--json'?")),
    # ---- unknown nodes and versions elsewhere ------------------------------------------
    "show-unknown": Bad(("show", "rankr"), no_node("rankr", "ranker")),
    "show-other-case": Bad(("show", "RANKER"), no_node("RANKER", "ranker")),
    "show-no-suggestion": Bad(("show", "zzz"), no_node("zzz")),
    "show-newline": Bad(("show", "ranker\nx"), no_node("ranker\nx", "ranker")),
    "show-nul": Bad(("show", "a\x00b"), no_node("a\x00b")),
    "show-long-name": Bad(("show", "n" * 300), no_node("n" * 300)),
    "show-missing-argument": Bad(("show",), usage("Missing argument 'NODE'.")),
    "log-unknown": Bad(("log", "fraud_scorr"), no_node("fraud_scorr", "fraud_scorer")),
    "impact-unknown": Bad(("impact", "rankr"), no_node("rankr", "ranker")),
    "status-unknown": Bad(("status", "rankr"), no_node("rankr", "ranker")),
    "check-unknown": Bad(("check", "ranker", "rankr"), no_node("rankr", "ranker")),
    "promote-unknown-version": Bad(("promote", "ranker", "9"), no_version("ranker", "9")),
    "promote-unknown-node": Bad(("promote", "rankr", "1.4.0"), no_node("rankr", "ranker")),
    "promote-nul-version": Bad(("promote", "ranker", "1\x00"), no_version("ranker", "1\x00")),
    # ---- test record -------------------------------------------------------------------
    "record-unknown-node": Bad(("test", "record", "rankr", "--passed"),
                               no_node("rankr", "ranker")),
    "record-unknown-version": Bad(("test", "record", "ranker", "--passed", "--version", "9"),
                                  no_version("ranker", "9")),
    "record-no-outcome": Bad(("test", "record", "ranker"),
                             usage("Say how the run went: --passed or --failed.")),
    "record-both-outcomes": Bad(("test", "record", "ranker", "--passed", "--failed"),
                                usage("--passed and --failed contradict each other; give one.")),
    "record-bad-suite": Bad(("test", "record", "ranker", "--passed", "--suite", "a b"),
                            bad_label("a b", "contains ' '", "suite name")),
    "record-link-too-long": Bad(("test", "record", "ranker", "--passed", "--link", "l" * 2001),
                                "Error: The link is 2001 characters long (at most 2000)."),
    "record-note-nul": Bad(("test", "record", "ranker", "--failed", "--note", "a\x00"),
                           "Error: The note 'a\\x00' contains a NUL character ('\\x00')."),
    "record-note-esc": Bad(("test", "record", "ranker", "--failed", "--note", "\x1b[2J"),
                           not_xml("note", "\x1b[2J", "001B")),
    "record-link-ffff": Bad(("test", "record", "ranker", "--passed", "--link", "http://x/\uffff"),
                            not_xml("link", "http://x/\uffff", "FFFF")),
    # ---- waive -------------------------------------------------------------------------
    "waive-empty-reason": Bad(("waive", "fraud_scorer", "--reason", ""), "Error: A waiver "
                              "needs a --reason that says why the change is accepted."),
    "waive-blank-reason": Bad(("waive", "fraud_scorer", "--reason", "  \t"), "Error: A waiver "
                              "needs a --reason that says why the change is accepted."),
    "waive-no-reason": Bad(("waive", "fraud_scorer"), usage("Missing option '--reason'.")),
    "waive-reason-nul": Bad(("waive", "fraud_scorer", "--reason", "ok\x00"),
                            "Error: The reason 'ok\\x00' contains a NUL character ('\\x00')."),
    "waive-reason-fffe": Bad(("waive", "fraud_scorer", "--reason", "ok\ufffe"),
                             not_xml("reason", "ok\ufffe", "FFFE")),
    "waive-verified-node": Bad(("waive", "ranker", "--reason", "ok"), "Error: 'ranker' is "
                               "verified; a waiver covers untested upstream changes only."),
    "waive-node-without-tests": Bad(
        ("waive", "clicks_raw", "--reason", "ok"),
        "Error: 'clicks_raw' is not tested by chainml (needs no tests); a waiver covers "
        "untested upstream changes only."),
    "waive-91-days": Bad(("waive", "ranker", "--reason", "ok", "--expires", "91d"),
                         "Error: A waiver may last at most 90 days (--expires 90d)."),
    "waive-13-weeks": Bad(("waive", "ranker", "--reason", "ok", "--expires", "12w7d"),
                          "Error: A waiver may last at most 90 days (--expires 90d)."),
    "waive-expiry-no-unit": Bad(("waive", "ranker", "--reason", "ok", "--expires", "7"),
                                "Error: Invalid expiry '7': use a number and a unit, such as "
                                "30d, 12h, 2w or 90m."),
    "waive-unknown-node": Bad(("waive", "rankr", "--reason", "ok"), no_node("rankr", "ranker")),
    "waive-unknown-cause": Bad(("waive", "ranker", "--reason", "ok", "--cause", "clicks"),
                               no_node("clicks", "clicks_raw")),
    # ---- database URLs and schemas -----------------------------------------------------
    "db-not-a-url": Bad(("--db", "notaurl", "list"), "Error: Invalid database URL 'notaurl'; "
                        "use sqlite:///path/registry.db, postgresql://user@host/db or "
                        "mysql://user@host/db."),
    "db-unknown-scheme": Bad(("--db", "foo://x", "list"), "Error: Unsupported database URL "
                             "'foo://x'; chainml works with sqlite, postgresql and "
                             "mysql/mariadb."),
    "db-option-after-command": Bad(("list", "--db", "notaurl"), "Error: Invalid database URL "
                                   "'notaurl'; use sqlite:///path/registry.db, "
                                   "postgresql://user@host/db or mysql://user@host/db."),
    "db-bad-port-hides-password": Bad(
        ("--db", f"postgresql://u:{SECRET}@127.0.0.1:notaport/x", "list"),
        "Error: Invalid database URL 'postgresql://u:***@127.0.0.1:notaport/x'; use "
        "sqlite:///path/registry.db, postgresql://user@host/db or mysql://user@host/db."),
    "db-unreachable": Bad(("--db", f"postgresql://u:{SECRET}@127.0.0.1:1/x", "list"),
                          UNREACHABLE, exit_code=3),
    "db-unreachable-init": Bad(("init", "--db", f"postgresql://u:{SECRET}@127.0.0.1:1/x"),
                               UNREACHABLE, exit_code=3),
    "db-unreachable-register": Bad(
        ("--db", f"postgresql://u:{SECRET}@127.0.0.1:1/x", "register", "source", "a",
         "--version", "1"), UNREACHABLE, exit_code=3),
    # A server URL without a database would put the registry in the server's default one.
    "db-postgresql-no-database": Bad(
        ("--db", f"postgresql://u:{SECRET}@127.0.0.1:1", "list"),
        "Error: The database URL 'postgresql+psycopg://u:***@127.0.0.1:1' names no database; "
        "add it after the host, as in postgresql://user@host/chainml.", backends=("sqlite",)),
    "db-postgresql-no-database-init": Bad(
        ("init", "--db", "postgresql://u@127.0.0.1:1/"),
        "Error: The database URL 'postgresql+psycopg://u@127.0.0.1:1/' names no database; add "
        "it after the host, as in postgresql://user@host/chainml.", backends=("sqlite",)),
    "db-mysql-no-database": Bad(
        ("--db", "mysql://u@127.0.0.1:1", "status"),
        "Error: The database URL 'mysql+pymysql://u@127.0.0.1:1' names no database; add it "
        "after the host, as in mysql://user@host/chainml.", backends=("sqlite",)),
    "db-driver-not-shipped": Bad(
        ("--db", "postgresql+pg8000://u@127.0.0.1:1/x", "list"),
        "Error: The database URL 'postgresql+pg8000://u@127.0.0.1:1/x' asks for the driver "
        "postgresql+pg8000, which is not installed (pg8000); chainml talks to postgresql "
        "through postgresql+psycopg: write postgresql+psycopg://... (pip install "
        "'chainml[postgres]').", backends=("sqlite",)),
    "db-sqlite-missing-file": Bad(
        ("--db", "sqlite:////nonexistent-chainml/registry.db", "list"),
        "Error: There is no registry at sqlite:////nonexistent-chainml/registry.db: the file "
        "/nonexistent-chainml/registry.db does not exist; check the path, or create one with "
        "'chainml init --db sqlite:////nonexistent-chainml/registry.db'.", exit_code=3,
        backends=("sqlite",)),
    "db-init-missing-folder": Bad(
        ("init", "--db", "sqlite:////nonexistent-chainml/registry.db"),
        "Error: Cannot create the registry at sqlite:////nonexistent-chainml/registry.db: the "
        "folder /nonexistent-chainml does not exist; create it first or choose another path.",
        backends=("sqlite",)),
    "db-file-not-a-database": Bad(
        ("list",), "Error: Cannot use the registry at {where}: file is not a database; the "
        "file is not a chainml registry or is damaged; check the path or restore it.",
        exit_code=3, setup="not_a_database", backends=("sqlite",)),
    "schema-old-list": Bad(
        ("list",), f"Error: The registry at {{where}} is at revision 0000, chainml expects "
        f"{HEAD}; back it up, then run: chainml db upgrade", exit_code=3, setup="old_schema",
        backends=("sqlite",)),
    "schema-old-register": Bad(
        ("register", "source", "a", "--version", "1"), f"Error: The registry at {{where}} is at "
        f"revision 0000, chainml expects {HEAD}; back it up, then run: chainml db upgrade",
        exit_code=3, setup="old_schema", backends=("sqlite",)),
    "schema-old-upgrade-unknown-revision": Bad(
        ("db", "upgrade"), "Error: Cannot upgrade the registry at {where}: Can't locate "
        "revision identified by '0000'; its schema comes from another chainml version, so use "
        "that version or restore a backup.", exit_code=3, setup="old_schema",
        backends=("sqlite",)),
    "schema-empty-list": Bad(
        ("list",), "Error: The database at {where} is not a chainml registry yet; run 'chainml "
        "init' (or 'chainml db upgrade' for a shared database).", exit_code=3, setup="empty"),
    "schema-empty-register": Bad(
        ("register", "source", "a", "--version", "1"), "Error: The database at {where} is not a "
        "chainml registry yet; run 'chainml init' (or 'chainml db upgrade' for a shared "
        "database).", exit_code=3, setup="empty"),
    "schema-empty-check": Bad(
        ("check",), "Error: The database at {where} is not a chainml registry yet; run 'chainml "
        "init' (or 'chainml db upgrade' for a shared database).", exit_code=3, setup="empty"),
}


# ---- registries the cases run against, built once per backend ----------------------------


def _long_chain(url: str) -> None:
    reg = Registry.init(url=url, actor="api")
    try:
        reg.register(kind="feature", name="f0", version="1")
        for i in range(1, LONG + 1):
            reg.register(kind="feature", name=f"f{i}", version="1", inputs=[f"f{i - 1}"])
    finally:
        reg.close()


def _old_schema(url: str) -> None:
    Registry.init(url=url).close()
    with sqlite3.connect(make_url(url).database) as conn:
        conn.execute("UPDATE alembic_version SET version_num='0000'")


def _not_a_database(url: str) -> None:
    Path(make_url(url).database).write_text("name,kind\nranker,model\n")


SETUPS: dict[str, Callable[[str], object]] = {
    "example": example_registry,
    "long_chain": _long_chain,
    "old_schema": _old_schema,
    "not_a_database": _not_a_database,
    "empty": lambda url: None,
}
READABLE = {"example", "long_chain"}  # the setups the CLI can dump


def snapshot(setup: str, url: str, engine: Engine | None = None) -> str:
    """What must not change: every row of every table, or the file's bytes."""
    if setup == "not_a_database":
        return Path(make_url(url).database).read_text()
    return raw_dump(url, engine)


class Registries:
    """Creates each (backend, setup) registry once, in databases dropped after the module."""

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self.built: dict[tuple[str, str], tuple[str, str]] = {}
        self.shown: dict[str, str] = {}  # url -> the CLI dump when it was built
        self.engines: dict[str, Engine] = {}  # url -> an engine for the row dumps

    def get(self, backend: str, setup: str) -> tuple[str, str]:
        key = (backend, setup)
        if key not in self.built:
            url = self.databases.new(backend)
            SETUPS[setup](url)
            self.built[key] = (url, self.snapshot(setup, url))
            if setup in READABLE:
                self.shown[url] = dump(url)
        return self.built[key]

    def snapshot(self, setup: str, url: str) -> str:
        if url not in self.engines:
            self.engines[url] = create_engine(parse_url(url))
        return snapshot(setup, url, self.engines[url])

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()

    def forget(self, backend: str, setup: str) -> None:
        """After a case changed its registry, the next case gets a fresh one."""
        url, _ = self.built.pop((backend, setup))
        self.shown.pop(url, None)


@pytest.fixture(scope="module")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registries]:
    with Databases(tmp_path_factory.mktemp("bad_input")) as databases:
        regs = Registries(databases)
        try:
            yield regs
        finally:
            regs.close()


def _params() -> list[object]:
    out = []
    for backend in BACKENDS:
        for case_id, case in CASES.items():
            if case.backends is None or backend in case.backends:
                out.append(pytest.param(backend, case, id=f"{backend}-{case_id}"))
    return out


@pytest.mark.parametrize(("backend", "case"), _params())
def test_bad_input(registries: Registries, backend: str, case: Bad) -> None:
    url, before = registries.get(backend, case.setup)
    result = run(url, *case.args)
    after = registries.snapshot(case.setup, url)
    if after != before:  # keep one broken case from failing the ones after it
        registries.forget(backend, case.setup)

    assert result.exit_code == case.exit_code, result.output
    assert result.stdout == ""
    line = error_line(result)
    assert SECRET not in result.output
    if isinstance(case.error, re.Pattern):
        assert case.error.fullmatch(line), line
    else:
        assert line == case.error.replace("{where}", redact(parse_url(url)))
    assert after == before, "the registry changed"


def test_the_corpus_left_what_the_cli_shows_unchanged(registries: Registries) -> None:
    # Runs after the corpus (pytest keeps file order): list, show, log and status of every
    # registry the cases used are what they were before the first case.
    for url, before in registries.shown.items():
        assert dump(url) == before, url


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 100
    # No case twice (the same command line against the same registry).
    assert len({(case.setup, case.args) for case in CASES.values()}) == len(CASES)


# ---- bad input that needs a registry of its own ------------------------------------------


@pytest.fixture
def url(database_url: str) -> str:
    return example_registry(database_url)


def test_promote_that_would_close_a_cycle(database_url: str) -> None:
    reg = Registry.init(url=database_url, actor="api")
    try:
        reg.register(kind="feature", name="a", version="1")
        reg.register(kind="feature", name="b", version="1", inputs=["a"])
        reg.register(kind="feature", name="b", version="2", inputs=[])
        reg.register(kind="feature", name="a", version="2", inputs=["b"])
    finally:
        reg.close()
    before = dump(database_url) + raw_dump(database_url)
    result = run(database_url, "promote", "b", "1")
    assert result.exit_code == 2
    assert error_line(result) == "Error: This would close a cycle: b -> a -> b" + CYCLE_HINT
    assert dump(database_url) + raw_dump(database_url) == before


def test_unusual_but_valid_names_and_labels_are_accepted(url: str) -> None:
    names = ["s3://lake/events", "fraud/scorer", "a.b", "..", "_", "x-", "n" * 200,
             "A-Z_0.9:/"]
    for name in names:
        ok(url, "register", "source", name, "--version", "v" * 100)
        ok(url, "register", "source", name, "--version", "2026-11-03T10:00+01:00[é]")
        assert ok_json(url, "show", name)["current_version"] == "2026-11-03T10:00+01:00[é]"
    assert set(names) <= {n["name"] for n in ok_json(url, "list")}
