"""Library-level errors: the exception types, their fields, messages and exit codes."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from chainml import (
    ChainmlError,
    CycleError,
    InvalidInput,
    KindRuleError,
    NodeNotFound,
    RegistryUnavailable,
    SchemaOutdated,
    VersionConflict,
    VersionNotFound,
)
from chainml.db.engine import redact
from chainml.registry import Registry
from tests.chains import build_example
from tests.clirun import Databases
from tests.conftest import BACKENDS


@pytest.fixture(scope="module", params=BACKENDS)
def chain(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The example chain, shared by the tests of this module: errors change nothing."""
    with Databases(tmp_path_factory.mktemp("errors")) as databases:
        reg = Registry.init(url=databases.new(request.param), actor="api")
        try:
            yield build_example(reg)
        finally:
            reg.close()


def test_exit_codes() -> None:
    for cls in (InvalidInput, NodeNotFound, VersionNotFound, KindRuleError, CycleError,
                VersionConflict):
        assert issubclass(cls, InvalidInput) and cls.exit_code == 2
    assert RegistryUnavailable.exit_code == SchemaOutdated.exit_code == 3
    assert issubclass(RegistryUnavailable, ChainmlError)
    assert issubclass(SchemaOutdated, ChainmlError)


def test_node_not_found_suggests_the_close_name(chain: Registry) -> None:
    with pytest.raises(NodeNotFound, match="Did you mean 'ranker'") as info:
        chain.node("rankr")
    assert info.value.name == "rankr"
    assert str(info.value) == "No node named 'rankr'. Did you mean 'ranker'?"
    with pytest.raises(NodeNotFound, match="Did you mean 'fraud_scorer'"):
        chain.record_test("Fraud_Scorer", passed=True)
    with pytest.raises(NodeNotFound) as info:
        chain.impact("zzz")
    assert str(info.value) == "No node named 'zzz'."
    with pytest.raises(NodeNotFound) as info:
        chain.register(kind="model", name="m", version="1", inputs=["click_feature"])
    assert str(info.value) == ("Input 'click_feature' of 'm' is not a registered node; register "
                               "it first. Did you mean 'click_features'?")
    # Untrusted text stays on one line, however it is made.
    with pytest.raises(NodeNotFound) as info:
        chain.status("a\nb\x1b[2J")
    assert str(info.value) == "No node named 'a\\nb\\x1b[2J'."


def test_version_not_found(chain: Registry) -> None:
    with pytest.raises(VersionNotFound) as info:
        chain.promote("ranker", "9")
    assert (info.value.node, info.value.label) == ("ranker", "9")
    assert str(info.value) == ("Node 'ranker' has no version '9'; 'chainml show ranker' lists "
                               "its versions.")
    with pytest.raises(VersionNotFound):
        chain.register(kind="policy", name="p", version="1", inputs=["ranker@1.3.0"])


def test_cycle_error_lists_the_cycle_in_order(chain: Registry) -> None:
    with pytest.raises(CycleError) as info:
        chain.register(kind="model", name="user_embedding", version="4",
                       inputs=["click_features", "ranker"])
    assert info.value.cycle == ["user_embedding", "embedding_features", "ranker",
                                "user_embedding"]
    assert str(info.value) == (
        "This would close a cycle: user_embedding -> embedding_features -> ranker -> "
        "user_embedding; declare one of these inputs with --feedback if the loop is intended.")
    with pytest.raises(CycleError) as info:
        chain.register(kind="model", name="ranker", version="2", inputs=["ranker"])
    assert info.value.cycle == ["ranker", "ranker"]


def test_long_cycle(registry: Registry) -> None:
    registry.register(kind="feature", name="f0", version="1")
    for i in range(1, 31):
        registry.register(kind="feature", name=f"f{i}", version="1", inputs=[f"f{i - 1}"])
    with pytest.raises(CycleError) as info:
        registry.register(kind="feature", name="f0", version="2", inputs=["f30"])
    assert info.value.cycle == [f"f{i}" for i in range(31)] + ["f0"]
    assert registry.node("f0").current_version == "1"


def test_kind_rule_error_comes_before_the_cycle_rule(chain: Registry) -> None:
    with pytest.raises(KindRuleError) as info:
        chain.register(kind="feature", name="click_features", version="2",
                       inputs=["fraud_rules"])
    assert str(info.value) == ("A feature may not consume a policy ('click_features' <- "
                               "'fraud_rules'); a feature consumes source, feature, model.")
    with pytest.raises(KindRuleError, match="a source consumes nothing"):
        chain.register(kind="source", name="clicks_raw", version="2", inputs=["clicks_raw"])


def test_version_conflict(chain: Registry) -> None:
    with pytest.raises(VersionConflict) as info:
        chain.register(kind="model", name="ranker", version="1.4.0", meta={"a": "b"})
    assert str(info.value) == (
        "Version '1.4.0' of 'ranker' already exists with other content: this registration "
        "adds meta 'a'; versions are immutable, so register a new version label.")
    with pytest.raises(VersionConflict, match="removes inputs 'click_features' and "
                       "'embedding_features';"):
        chain.register(kind="model", name="ranker", version="1.4.0", inputs=[])
    # Identical content is a no-op, not a conflict.
    assert chain.register(kind="model", name="ranker", version="1.4.0").noop


def test_invalid_input_from_the_python_api(chain: Registry) -> None:
    with pytest.raises(InvalidInput, match=r"^Invalid node name 'a b': it contains ' '"):
        chain.register(kind="source", name="a b", version="1")
    with pytest.raises(InvalidInput, match=r"^Unknown kind 'blob'; use one of: source, "):
        chain.register(kind="blob", name="x", version="1")
    with pytest.raises(InvalidInput, match=r"^Unknown kind 'blob'"):
        chain.nodes(kind="blob")
    with pytest.raises(InvalidInput, match=r"^inputs must be a list, not str\.$"):
        chain.register(kind="model", name="x", version="1", inputs="ranker")
    with pytest.raises(InvalidInput, match=r"^inputs\[1\] must be text, not int\.$"):
        chain.register(kind="model", name="x", version="1", inputs=["ranker", 1])
    with pytest.raises(InvalidInput) as info:
        chain.register(kind="model", name="x", version="1", colour="red")
    assert str(info.value) == (
        "register() got an unknown field 'colour' (the fields are kind, name, version, inputs, "
        "feedback, meta, owner, description, tags, node_meta, max_age, needs_tests, "
        "required_suites).")
    with pytest.raises(InvalidInput, match=r"^register\(\) got an unknown field 'ownr'; did "
                       r"you mean 'owner'\? \(the fields are "):
        chain.register(kind="model", name="x", version="1", ownr="me")
    with pytest.raises(InvalidInput, match=r"^register\(\) needs version \(the fields are "):
        chain.register(kind="model", name="x")
    with pytest.raises(InvalidInput, match=r"^The owner is 201 characters long \(at most 200\)"):
        chain.register(kind="model", name="ranker", version="1.4.0", owner="o" * 201)
    with pytest.raises(InvalidInput, match="NUL"):
        chain.record_test("ranker", passed=True, note="x\x00")
    assert chain.node("ranker").owner is None


def test_schema_outdated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite:///{path}"
    Registry.init(url=url).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num='0000'")
    with pytest.raises(SchemaOutdated, match="chainml db upgrade") as info:
        Registry(url)
    assert info.value.exit_code == 3
    assert str(info.value).startswith(f"The registry at {url} is at revision 0000")
    (tmp_path / "empty.db").touch()  # a SQLite file, but no chainml tables in it
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with pytest.raises(SchemaOutdated, match=r"not a chainml registry yet; run 'chainml init'"):
        Registry(empty)
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    with pytest.raises(RegistryUnavailable, match="There is no registry at") as gone:
        Registry(missing)
    assert gone.value.exit_code == 3 and not (tmp_path / "missing.db").exists()


def test_registry_unavailable_hides_the_password() -> None:
    url = "postgresql://u:s3cretpw@127.0.0.1:1/x"
    assert redact(url) == "postgresql://u:***@127.0.0.1:1/x"
    assert "s3cretpw" not in redact("postgresql://u:s3cretpw@127.0.0.1:notaport/x")
    assert redact("sqlite:////tmp/r.db") == "sqlite:////tmp/r.db"
    with pytest.raises(RegistryUnavailable) as info:
        Registry(url)
    message = str(info.value)
    assert message.startswith("Cannot use the registry at postgresql+psycopg://u:***@127.0.0.1"
                              ":1/x: ")
    assert message.endswith("; check that the database is running and the URL is right.")
    assert "s3cretpw" not in message
    assert "s3cretpw" not in repr(info.value.args)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_invalid_url_is_bad_input() -> None:
    with pytest.raises(InvalidInput, match=r"^Invalid database URL 'notaurl'; use sqlite:///"):
        Registry("notaurl")
    with pytest.raises(InvalidInput, match=r"^Unsupported database URL 'foo://x'"):
        Registry("foo://x")
