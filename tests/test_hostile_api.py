"""Hostile input through the Python API (the CLI has its own corpus in test_bad_input.py).

Every case below is one call (``register(**spec)``, ``promote``, ``record_test``,
``waive``, ``apply_text``, ``apply``, ``import_file``, a read) that must raise
``InvalidInput`` (or the named subclass) with a one-line message, and leave every row of
every table exactly as it was, on every backend. Then: SQL-looking text is stored
verbatim and harms nothing; cycles of every length from 2 to 1,000 are refused and
named in full (every length on SQLite, a sample on PostgreSQL; every length on the
servers with ``-m slow``); and a hypothesis fuzz of the text parsers lets only
InvalidInput escape.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

from chainml.db.engine import parse_url
from chainml.errors import (
    CycleError,
    InvalidInput,
    KindRuleError,
    NodeNotFound,
    VersionConflict,
    VersionNotFound,
)
from chainml.names import check_label, check_name, parse_duration, parse_input_spec
from chainml.registry import Registry
from tests.chains import build_example
from tests.clirun import raw_dump
from tests.conftest import BACKENDS, _server_url, _unreachable

SQL = "x'; DROP TABLE node;--"
CYRILLIC_A = "\u0430"  # looks like the Latin 'a'


@dataclass(frozen=True)
class Bad:
    call: Callable[[Registry], Any]
    error: type[InvalidInput] = InvalidInput
    match: str | None = None  # a substring the message must contain


def reg_(**spec: Any) -> Callable[[Registry], Any]:
    return lambda r: r.register(**spec)


def model(**extra: Any) -> Callable[[Registry], Any]:
    """A new model version on the example chain with one field made bad."""
    spec: dict[str, Any] = {"kind": "model", "name": "ranker", "version": "9",
                            "inputs": ["click_features"]}
    spec.update(extra)
    return reg_(**spec)


def nested(depth: int) -> dict[str, Any]:
    return reduce(lambda inner, _: {"k": inner}, range(depth), {})


def chain_file(*nodes: str) -> str:
    return "chainml: 1\nnodes:\n" + "".join(f"  - {n}\n" for n in nodes)


CASES: dict[str, Bad] = {
    # ---- register: names -------------------------------------------------------------------
    "name-int": Bad(reg_(kind="source", name=7, version="1")),
    "name-none": Bad(reg_(kind="source", name=None, version="1")),
    "name-list": Bad(reg_(kind="source", name=["a"], version="1")),
    "name-empty": Bad(reg_(kind="source", name="", version="1"), match="is empty"),
    "name-huge": Bad(reg_(kind="source", name="n" * 1_000_000, version="1"),
                     match="1000000 characters"),
    "name-space": Bad(reg_(kind="source", name="a b", version="1")),
    "name-newline": Bad(reg_(kind="source", name="a\nb", version="1")),
    "name-escape": Bad(reg_(kind="source", name="a\x1b[2Jb", version="1")),
    "name-nul": Bad(reg_(kind="source", name="a\x00b", version="1")),
    "name-cyrillic": Bad(reg_(kind="source", name=f"d{CYRILLIC_A}ta", version="1"),
                         match="contains '\u0430'"),
    "name-cyrillic-existing": Bad(reg_(kind="model", name=f"r{CYRILLIC_A}nker", version="1")),
    "name-greek": Bad(reg_(kind="source", name="m\u03bfdel", version="1")),
    "name-fullwidth": Bad(reg_(kind="source", name="\uff4dodel", version="1")),
    "name-zero-width": Bad(reg_(kind="source", name="da\u200bta", version="1")),
    "name-rtl-override": Bad(reg_(kind="source", name="a\u202eb", version="1")),
    "name-sql": Bad(reg_(kind="source", name=SQL, version="1"), match="contains"),
    "name-at": Bad(reg_(kind="source", name="x@1", version="1")),
    "name-case-confusable": Bad(reg_(kind="model", name="Ranker", version="1"),
                                match="only in letter case"),
    # ---- register: kinds and labels --------------------------------------------------------
    "kind-int": Bad(reg_(kind=3, name="x", version="1")),
    "kind-unknown": Bad(reg_(kind="Model", name="x", version="1"), match="Unknown kind"),
    "kind-empty": Bad(reg_(kind="", name="x", version="1")),
    "kind-change": Bad(reg_(kind="source", name="ranker", version="9"),
                       match="kind cannot change"),
    "version-int": Bad(reg_(kind="source", name="x", version=1)),
    "version-float": Bad(reg_(kind="source", name="x", version=1.5)),
    "version-none": Bad(reg_(kind="source", name="x", version=None)),
    "version-huge": Bad(reg_(kind="source", name="x", version="v" * 100_000)),
    "version-space": Bad(reg_(kind="source", name="x", version="1 0")),
    "version-at": Bad(reg_(kind="source", name="x", version="1@2")),
    "version-tab": Bad(reg_(kind="source", name="x", version="\t")),
    "version-newline": Bad(reg_(kind="source", name="x", version="1\n")),
    "version-nul": Bad(reg_(kind="source", name="x", version="1\x00")),
    "version-zero-width": Bad(reg_(kind="source", name="x", version="1\u200b")),
    "missing-version": Bad(reg_(kind="source", name="x")),
    "unknown-field": Bad(reg_(kind="source", name="x", version="1", colour="red"),
                         match="colour"),
    # ---- register: inputs ------------------------------------------------------------------
    "inputs-string": Bad(model(inputs="click_features")),
    "inputs-int-item": Bad(model(inputs=[1])),
    "inputs-unknown": Bad(model(inputs=["nope"]), NodeNotFound),
    "inputs-unknown-pin": Bad(model(inputs=["click_features@nope"]), VersionNotFound),
    "inputs-twice": Bad(model(inputs=["click_features", "click_features"]), match="twice"),
    "inputs-empty-pin": Bad(model(inputs=["click_features@"])),
    "inputs-nul-pin": Bad(model(inputs=["click_features@\x00"])),
    "inputs-sql": Bad(model(inputs=[SQL])),
    "feedback-none-item": Bad(model(feedback=[None])),
    "feedback-unknown": Bad(model(feedback=["nope"]), NodeNotFound),
    "kind-rule": Bad(reg_(kind="source", name="clicks_raw", version="9",
                          inputs=["user_profiles"]), KindRuleError),
    "self-input": Bad(model(inputs=["ranker"]), CycleError),
    "cycle-3": Bad(reg_(kind="model", name="user_embedding", version="9",
                        inputs=["ranker"]), CycleError, "user_embedding -> "),
    "immutable": Bad(reg_(kind="model", name="ranker", version="1.4.0", meta={"a": 1}),
                     VersionConflict),
    # ---- register: metadata (must be plain JSON every backend stores alike) ----------------
    "meta-list": Bad(model(meta=[1, 2])),
    "meta-string": Bad(model(meta="artifact")),
    "meta-datetime": Bad(model(meta={"at": dt.datetime(2026, 1, 1)}), match="datetime"),
    "meta-date": Bad(model(node_meta={"at": dt.date(2026, 1, 1)})),
    "meta-set": Bad(model(meta={"s": {1, 2}})),
    "meta-bytes": Bad(model(meta={"b": b"\x00\xff"})),
    "meta-object": Bad(model(meta={"o": object()})),
    "meta-decimal": Bad(model(node_meta={"d": decimal.Decimal("1.1")})),
    "meta-nan": Bad(model(meta={"x": math.nan}), match="nan"),
    "meta-inf": Bad(model(node_meta={"x": -math.inf})),
    "meta-int-key": Bad(model(meta={1: "x"})),
    "meta-tuple-key": Bad(model(meta={(1, 2): "x"})),
    "meta-nul-value": Bad(model(meta={"k": "a\x00b"}), match="NUL"),
    "meta-nul-key": Bad(model(meta={"k\x00": "v"}), match="NUL"),
    "meta-nul-deep": Bad(model(meta={"a": [{"b": ["\x00"]}]}), match="NUL"),
    "meta-surrogate": Bad(model(meta={"k": "\ud800"})),
    "meta-too-deep": Bad(model(meta=nested(200)), match="deeper"),
    "meta-huge-int": Bad(model(meta={"n": 10**5000})),
    "node-meta-string": Bad(model(node_meta="x")),
    # ---- register: node settings -----------------------------------------------------------
    "tags-string": Bad(model(tags="ml")),
    "tags-int": Bad(model(tags=[1])),
    "tags-nul": Bad(model(tags=["a\x00b"])),
    "tags-huge": Bad(model(tags=["t" * 101])),
    "tags-newline": Bad(model(tags=["a\nb"])),
    "tags-empty": Bad(model(tags=[""])),
    "owner-int": Bad(model(owner=5)),
    "owner-long": Bad(model(owner="o" * 201), match="201 characters"),
    "owner-nul": Bad(model(owner="a\x00b"), match="NUL"),
    "owner-newline": Bad(model(owner="team\nevil")),
    "description-long": Bad(model(description="d" * 10_001)),
    "description-nul": Bad(model(description=f"{SQL}\x00"), match="NUL"),
    "description-surrogate": Bad(model(description="a\udfffb")),
    "description-list": Bad(model(description=["x"])),
    # XML 1.0 forbids these; every SVG, HTML page and JUnit report would break on them.
    "description-fffe": Bad(model(description="a\ufffeb"), match="contains U+FFFE"),
    "description-bell": Bad(model(description="ding\x07"), match="contains U+0007"),
    "owner-ffff": Bad(model(owner="team\uffff"), match="The owner 'team\\uffff' contains U+FFFF"),
    "tags-fffe": Bad(model(tags=["a\ufffe"]), match="The tag 'a\\ufffe' contains U+FFFE"),
    "max-age-word": Bad(model(max_age="forever")),
    "max-age-too-long": Bad(model(max_age="99999w")),
    "max-age-overflow": Bad(model(max_age="999999w" * 300)),
    "max-age-int": Bad(model(max_age=30)),
    "needs-tests-word": Bad(model(needs_tests="maybe")),
    "suites-string": Bad(model(required_suites="offline")),
    "suites-space": Bad(model(required_suites=["off line"])),
    "suites-nul": Bad(model(required_suites=["a\x00"])),
    # ---- promote ---------------------------------------------------------------------------
    "promote-unknown-node": Bad(lambda r: r.promote("nope", "1"), NodeNotFound),
    "promote-unknown-version": Bad(lambda r: r.promote("ranker", "nope"), VersionNotFound),
    "promote-name-int": Bad(lambda r: r.promote(5, "1")),
    "promote-name-list": Bad(lambda r: r.promote(["ranker"], "1.4.0")),
    "promote-version-none": Bad(lambda r: r.promote("ranker", None)),
    "promote-nul": Bad(lambda r: r.promote("ranker\x00", "1.4.0"), NodeNotFound),
    "promote-cyrillic": Bad(lambda r: r.promote(f"r{CYRILLIC_A}nker", "1.4.0"), NodeNotFound),
    "promote-cycle": Bad(lambda r: r.promote("loop_b", "1"), CycleError, "loop_b -> loop_a"),
    # ---- record_test -----------------------------------------------------------------------
    "test-unknown": Bad(lambda r: r.record_test("nope", passed=True), NodeNotFound),
    "test-sql-name": Bad(lambda r: r.record_test(SQL, passed=True), NodeNotFound),
    "test-passed-string": Bad(lambda r: r.record_test("ranker", passed="yes")),
    "test-passed-none": Bad(lambda r: r.record_test("ranker", passed=None)),
    "test-passed-int": Bad(lambda r: r.record_test("ranker", passed=1)),
    "test-name-none": Bad(lambda r: r.record_test(None, passed=True)),
    "test-version-unknown": Bad(lambda r: r.record_test("ranker", passed=True, version="0"),
                                VersionNotFound),
    "test-version-int": Bad(lambda r: r.record_test("ranker", passed=True, version=1)),
    "test-suite-space": Bad(lambda r: r.record_test("ranker", passed=True, suite="a b")),
    "test-suite-int": Bad(lambda r: r.record_test("ranker", passed=True, suite=5)),
    "test-link-int": Bad(lambda r: r.record_test("ranker", passed=True, link=5)),
    "test-link-long": Bad(lambda r: r.record_test("ranker", passed=True, link="l" * 2001)),
    "test-note-nul": Bad(lambda r: r.record_test("ranker", passed=True, note="a\x00"),
                         match="NUL"),
    "test-note-list": Bad(lambda r: r.record_test("ranker", passed=True, note=["x"])),
    "test-note-long": Bad(lambda r: r.record_test("ranker", passed=True, note="n" * 10_001)),
    "test-note-esc": Bad(lambda r: r.record_test("ranker", passed=True, note="\x1b[31m"),
                         match="The note '\\x1b[31m' contains U+001B"),
    "test-link-ffff": Bad(lambda r: r.record_test("ranker", passed=False, link="http://x/\uffff"),
                          match="The link 'http://x/\\uffff' contains U+FFFF"),
    "test-suite-fffe": Bad(lambda r: r.record_test("ranker", passed=True, suite="a\ufffe"),
                           match="suite name"),
    # ---- waive -----------------------------------------------------------------------------
    "waive-reason-empty": Bad(lambda r: r.waive("ranker", reason="")),
    "waive-reason-blank": Bad(lambda r: r.waive("ranker", reason=" \t ")),
    "waive-reason-none": Bad(lambda r: r.waive("ranker", reason=None)),
    "waive-reason-int": Bad(lambda r: r.waive("ranker", reason=5)),
    "waive-reason-nul": Bad(lambda r: r.waive("ranker", reason="ok\x00"), match="NUL"),
    "waive-expires-word": Bad(lambda r: r.waive("ranker", reason="ok", expires="forever")),
    "waive-expires-91d": Bad(lambda r: r.waive("ranker", reason="ok", expires="91d"),
                             match="90 days"),
    "waive-expires-int": Bad(lambda r: r.waive("ranker", reason="ok", expires=5)),
    "waive-expires-past": Bad(lambda r: r.waive("ranker", reason="ok",
                                                expires=dt.timedelta(days=-1))),
    "waive-expires-zero": Bad(lambda r: r.waive("ranker", reason="ok", expires="0d")),
    "waive-cause-unknown": Bad(lambda r: r.waive("ranker", reason="ok", cause="nope"),
                               NodeNotFound),
    "waive-cause-not-open": Bad(lambda r: r.waive("ranker", reason="ok",
                                                  cause="transactions_raw"),
                                match="not an open cause"),
    "waive-cause-int": Bad(lambda r: r.waive("ranker", reason="ok", cause=5)),
    "waive-verified": Bad(lambda r: r.waive("fraud_rules", reason="ok"), match="verified"),
    "waive-source": Bad(lambda r: r.waive("clicks_raw", reason="ok")),
    "waive-name-int": Bad(lambda r: r.waive(5, reason="ok")),
    "waive-reason-vt": Bad(lambda r: r.waive("ranker", reason="ok\x0b"),
                           match="The reason 'ok\\x0b' contains U+000B"),
    "retire-reason-fffe": Bad(lambda r: r.retire("feed_app", reason="gone\ufffe"),
                              match="contains U+FFFE"),
    # ---- chain files -----------------------------------------------------------------------
    "apply-int": Bad(lambda r: r.apply_text(5, "c.yaml")),
    "apply-bytes": Bad(lambda r: r.apply_text(b"chainml: 1\n", "c.yaml")),
    "apply-none": Bad(lambda r: r.apply_text(None, "c.yaml")),
    "apply-filename-int": Bad(lambda r: r.apply_text("chainml: 1\n", 5)),
    "apply-empty": Bad(lambda r: r.apply_text("", "c.yaml")),
    "apply-malformed": Bad(lambda r: r.apply_text("chainml: [1\n", "c.yaml")),
    "apply-format-2": Bad(lambda r: r.apply_text("chainml: 2\nnodes: []\n", "c.yaml")),
    "apply-cyrillic": Bad(lambda r: r.apply_text(chain_file(
        f"{{name: d{CYRILLIC_A}ta, kind: source, version: '1'}}"), "c.yaml")),
    "apply-sql-name": Bad(lambda r: r.apply_text(chain_file(
        '{name: "x\'; DROP TABLE node;--", kind: source, version: "1"}'), "c.yaml")),
    "apply-nul-description": Bad(lambda r: r.apply_text(chain_file(
        '{name: a, kind: source, version: "1", description: "x\\0y"}'), "c.yaml")),
    "apply-nul-owner": Bad(lambda r: r.apply_text(chain_file(
        '{name: a, kind: source, version: "1", owner: "x\\0y"}'), "c.yaml")),
    "apply-fffe-description": Bad(lambda r: r.apply_text(chain_file(
        '{name: a, kind: source, version: "1", description: "x\\uFFFEy"}'), "c.yaml"),
        match="c.yaml (node 'a'): The description 'x\\ufffey' contains U+FFFE"),
    "apply-json-bell-description": Bad(lambda r: r.apply_text(
        '{"chainml": 1, "nodes": [{"name": "ranker", "kind": "model", "version": "1.4.0", '
        '"inputs": ["click_features", "embedding_features"], "description": "\\u0007"}]}',
        "c.json"), match="c.json (node 'ranker'): The description '\\x07' contains U+0007"),
    "apply-unknown-input": Bad(lambda r: r.apply_text(chain_file(
        "{name: m, kind: model, version: '1', inputs: [nope]}"), "c.yaml")),
    "apply-kind-change": Bad(lambda r: r.apply_text(chain_file(
        "{name: ranker, kind: policy, version: '1'}"), "c.yaml")),
    "apply-cycle": Bad(lambda r: r.apply_text(chain_file(
        "{name: a, kind: feature, version: '1', inputs: [b]}",
        "{name: b, kind: feature, version: '1', inputs: [a]}"), "c.yaml"), CycleError),
    "apply-closes-cycle-with-registry": Bad(lambda r: r.apply_text(chain_file(
        "{name: user_embedding, kind: model, version: '9', inputs: [ranker]}"), "c.yaml"),
        CycleError),
    "apply-json-wrong-type": Bad(lambda r: r.apply_text('{"chainml": 1, "nodes": {}}', "c.json")),
    "apply-path-none": Bad(lambda r: r.apply(None)),
    "apply-path-nul": Bad(lambda r: r.apply("chain\x00.yaml")),
    "apply-path-missing": Bad(lambda r: r.apply("/nonexistent/chain.yaml")),
    "apply-path-folder": Bad(lambda r: r.apply("/")),
    "import-unknown-tool": Bad(lambda r: r.import_file("airflow", "/nonexistent")),
    "import-tool-int": Bad(lambda r: r.import_file(5, "/nonexistent")),
    "import-path-int": Bad(lambda r: r.import_file("dbt", 5)),
    "import-path-nul": Bad(lambda r: r.import_file("dvc", "dvc\x00.yaml")),
    "import-path-missing": Bad(lambda r: r.import_file("openlineage", "/nonexistent.jsonl")),
    # ---- reads with bad names (nothing to change, but no crash) ----------------------------
    "status-int": Bad(lambda r: r.status(5)),
    "nodes-unknown-kind": Bad(lambda r: r.nodes(kind="blob")),
    "impact-nul": Bad(lambda r: r.impact("a\x00"), NodeNotFound),
    "check-int": Bad(lambda r: r.check([5])),
    "show-cyrillic": Bad(lambda r: r.node(f"r{CYRILLIC_A}nker"), NodeNotFound),
}


# ---- registries: one per backend for the whole module ------------------------------------


@dataclass
class Setup:
    url: str
    reg: Registry
    before: str
    engine: Engine  # for the dumps: one connection pool for the whole corpus


def build(reg: Registry) -> None:
    build_example(reg)
    # ranker, user_embedding, ... need a retest (waivers have something to cover).
    reg.register(kind="source", name="clicks_raw", version="2026-11-02")
    reg.record_test("fraud_rules", passed=True)  # verified again
    # A promote that would close a cycle: loop_b 1 read loop_a; loop_a 2 reads loop_b 2.
    reg.register(kind="feature", name="loop_a", version="1")
    reg.register(kind="feature", name="loop_b", version="1", inputs=["loop_a"])
    reg.register(kind="feature", name="loop_b", version="2", inputs=[])
    reg.register(kind="feature", name="loop_a", version="2", inputs=["loop_b"])


@pytest.fixture(scope="module", params=BACKENDS)
def setup(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[Setup]:
    with server_database(request.param, tmp_path_factory.mktemp("hostile")) as url:
        reg = Registry.init(url=url, actor="hostile")
        build(reg)
        engine = create_engine(parse_url(url))
        yield Setup(url, reg, raw_dump(url, engine), engine)
        engine.dispose()
        reg.close()


class server_database:  # noqa: N801 - used as a context manager
    """An empty database of ``backend`` (a schema on PostgreSQL), dropped afterwards."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend, self.tmp, self.name = backend, tmp, f"h_{uuid.uuid4().hex[:12]}"

    def __enter__(self) -> str:
        if self.backend == "sqlite":
            return f"sqlite:///{self.tmp / 'registry.db'}"
        self.admin = create_engine(_server_url(self.backend), isolation_level="AUTOCOMMIT")
        try:
            with self.admin.connect() as conn:
                what = "SCHEMA" if self.backend == "postgresql" else "DATABASE"
                conn.execute(text(f"CREATE {what} {self.name}"))
        except Exception as e:  # noqa: BLE001 - any failure to reach the server
            self.admin.dispose()
            _unreachable(self.backend, e)
        base = make_url(_server_url(self.backend))
        if self.backend == "postgresql":
            url = base.update_query_dict({"options": f"-csearch_path={self.name}"})
        else:
            url = base.set(database=self.name)
        return url.render_as_string(hide_password=False)

    def __exit__(self, *exc: object) -> None:
        if self.backend == "sqlite":
            return
        with self.admin.connect() as conn:
            what = "SCHEMA" if self.backend == "postgresql" else "DATABASE"
            cascade = " CASCADE" if self.backend == "postgresql" else ""
            conn.execute(text(f"DROP {what} {self.name}{cascade}"))
        self.admin.dispose()


def one_line(message: str, limit: int = 600) -> None:
    assert message and "\n" not in message and "\r" not in message, repr(message)
    assert len(message) < limit, message[:100]
    assert "Traceback" not in message and "sqlalchemy" not in message.lower(), message


@pytest.mark.parametrize("case_id", list(CASES))
def test_hostile_call(setup: Setup, case_id: str) -> None:
    case = CASES[case_id]
    with pytest.raises(InvalidInput) as info:
        case.call(setup.reg)
    assert isinstance(info.value, case.error), (type(info.value), str(info.value))
    assert info.value.exit_code == 2
    message = str(info.value)
    one_line(message)
    if case.match:
        assert case.match in message, message
    after = raw_dump(setup.url, setup.engine)
    if after != setup.before:
        setup.before = after  # keep one broken case from failing all that follow
        pytest.fail(f"{case_id} changed the registry")


def test_the_corpus_is_large() -> None:
    assert len(CASES) >= 60


def test_durations_beyond_a_timedelta_are_bad_input() -> None:
    with pytest.raises(InvalidInput, match="longer than 30,000 years"):
        parse_duration("999999w" * 200)


def test_sql_looking_text_is_stored_verbatim(database_url: str) -> None:
    # Free text may hold tab, CR and LF but no other C0 control (XML 1.0 has none): the
    # terminal control here is the one-byte CSI, U+009B, which XML allows.
    hostile = [SQL, "'); DELETE FROM event; --", "\" OR 1=1 --", "%s %(x)s ? :x $1 \\",
               "<script>alert(1)</script>", "a\r\nb\tc\x9b31m", "\u202eevil", "😀" * 50]
    with Registry.init(url=database_url, actor=SQL) as reg:
        for i, value in enumerate(hostile):
            reg.register(kind="source", name=f"s{i}", version=f"v{i}'--", description=value,
                         owner=value if value.isprintable() else None,
                         meta={value: value, "k": [value]}, tags=[value[:100]]
                         if value.isprintable() else [], node_meta={"x": value})
            reg.register(kind="model", name=f"m{i}", version="1", inputs=[f"s{i}"])
            reg.record_test(f"m{i}", passed=True, note=value, link=value)
        for i, value in enumerate(hostile):
            node = reg.node(f"s{i}")
            # Verbatim but for line breaks, which registration makes LF (a CRLF showed as
            # an empty line in every output).
            assert node.description == value.replace("\r\n", "\n")
            assert node.versions[0].meta == {value: value, "k": [value]}
            assert node.versions[0].label == f"v{i}'--"
            assert node.meta == {"x": value}
        assert len(reg.nodes()) == 2 * len(hostile)
        assert {e.actor for e in reg.log()} == {SQL}
        assert reg.check().ok
    engine = create_engine(parse_url(database_url))
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"node", "version", "event", "retest_mark", "test_run"} <= names


# ---- cycles of every length ----------------------------------------------------------------

CHAIN = 1000


def cycle_sweep(url: str, lengths: list[int]) -> None:
    """f0 <- f1 <- ... <- f999 applied in one file; then f0 reading f(L-1) would close a
    cycle of length L: each is refused, naming all L nodes in order."""
    nodes = ["{name: f0, kind: feature, version: '1'}"] + [
        f"{{name: f{i}, kind: feature, version: '1', inputs: [f{i - 1}]}}"
        for i in range(1, CHAIN)]
    with Registry.init(url=url, actor="cycles") as reg:
        reg.apply_text(chain_file(*nodes), "chain.yaml")
        before = raw_dump(url)
        for length in lengths:
            with pytest.raises(CycleError) as info:
                reg.register(kind="feature", name="f0", version="2",
                             inputs=[f"f{length - 1}"])
            assert info.value.cycle == [f"f{i}" for i in range(length)] + ["f0"]
            one_line(str(info.value), limit=100_000)  # the whole cycle, on one line
        # The same through a chain file, for a few lengths.
        for length in (2, 3, 500, CHAIN):
            with pytest.raises(CycleError):
                reg.apply_text(chain_file(
                    f"{{name: f0, kind: feature, version: '2', inputs: [f{length - 1}]}}"),
                    "close.yaml")
        assert raw_dump(url) == before
        assert reg.node("f0").current_version == "1"


EVERY_LENGTH = list(range(2, CHAIN + 1))
SOME_LENGTHS = [*range(2, 12), 50, 99, 100, 101, 250, 500, 998, 999, CHAIN]


@pytest.mark.parametrize(("database_url", "lengths"), [
    pytest.param("sqlite", EVERY_LENGTH, id="sqlite-every-length"),
    pytest.param("postgresql", SOME_LENGTHS, id="postgresql-some-lengths"),
], indirect=["database_url"])
def test_cycles_of_every_length_are_refused(database_url: str, lengths: list[int]) -> None:
    cycle_sweep(database_url, lengths)


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["postgresql", "mysql"], indirect=True)
def test_cycles_of_every_length_are_refused_on_servers(database_url: str) -> None:
    cycle_sweep(database_url, EVERY_LENGTH)


# ---- fuzz: only InvalidInput ever escapes the parsers ---------------------------------------

ANYTHING = st.one_of(
    st.text(), st.text(alphabet=st.characters(codec="ascii")), st.binary(), st.integers(),
    st.floats(allow_nan=True), st.none(), st.booleans(), st.lists(st.text(max_size=5)),
    st.dictionaries(st.text(max_size=3), st.integers()),
    st.from_regex(r"[A-Za-z0-9_\-./:@]{0,210}", fullmatch=True),
    st.from_regex(r"(\d{1,7}[smhdwSMHDW ]{0,2}){0,40}", fullmatch=True),
    # Sums beyond what a timedelta can hold.
    st.lists(st.sampled_from(["999999w", "999999d", "1s", " "]), max_size=400).map("".join),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANYTHING)
def test_the_parsers_raise_only_invalid_input(value: Any) -> None:
    for parse in (check_name, check_label, parse_input_spec, parse_duration):
        try:
            out = parse(value)
        except InvalidInput as e:
            one_line(str(e))
            continue
        if parse is parse_duration:
            assert out.total_seconds() > 0
        elif parse is parse_input_spec:
            name, pin = out
            assert check_name(name) == name and (pin is None or check_label(pin) == pin)
        else:
            assert out == value
