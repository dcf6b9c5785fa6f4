"""The registry and an independent model of DESIGN.md, driven in lockstep.

``tests/reference_model.py`` states the semantics from the design page alone,
over plain dicts, recomputing everything at every question; it imports nothing
from chainml. A hypothesis state machine applies the same random operations to
both - through the Python API, and a share through the real command line - and
after every step compares, per node: status, the reasons as (cause, tested-with,
now) triples, the missing suites, ``check``'s verdict and failing set (plain and
``--strict``), ``impact`` of every node, and the status recomputed from the
definition (which must equal the one read from the marks). A refusal must be a
refusal on both sides (exit code 2, nothing changed).

Environments (DESIGN.md "Environments, deployments and training–serving skew") join
in: environments are created, releases of one to three nodes (NODE or NODE@VERSION)
are deployed with ``--force --reason`` or through the gate (whose refusal, exit 1 with
nothing recorded, must be exactly the model's prediction), nodes are undeployed, all
interleaved with the registry changes above, with waivers per environment; a share of
the releases is typed on the command line (``deploy --json``: exit 0, 1 or 2). Every
release must judge the same nodes as the model and name the same blocking ones. After
every step, per environment: what it serves by deployment, the nodes with an
environment status and each status, the causes of skewed and waived nodes as
(ancestor, tested-with, served) triples, and the absent ancestors of missing_input ones.

Two writers share the registry, one with a clock 90 s behind the other, so that
an order taken from clocks instead of commits shows up. docs/reliability.md
lists the mutations of the code this test kills.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chainml.environments import judge
from chainml.errors import ChainmlError
from chainml.registry import Registry, utcnow
from tests.chains import unrouted
from tests.clirun import run
from tests.conftest import BACKENDS, create_database, drop_database
from tests.reference_model import BLOCKING, Blocked, Model, Refused

NAMES = {"s0": "source", "s1": "source", "f0": "feature", "f1": "feature", "m0": "model",
         "m1": "model", "m2": "model", "p0": "policy", "c0": "consumer"}
LABELS = ["1", "2", "3", "4"]
SUITES = [None, "eval", "shadow"]
ENVS = ["staging", "prod", "dev"]
EPOCH = datetime(2026, 1, 1)
SKEW = -90.0  # the second writer's clock, in seconds
AGES = {None: None, 0: "none", 3600: "1h", 86400: "1d"}
MAY_READ = {"source": set(), "feature": {"source", "feature", "model"},
            "model": {"feature", "model", "source"}, "policy": {"model", "feature", "policy"},
            "consumer": set(NAMES.values())}

SQLITE_EXAMPLES = int(os.environ.get("CHAINML_MODEL_EXAMPLES", "200"))
SERVER_EXAMPLES = int(os.environ.get("CHAINML_MODEL_SERVER_EXAMPLES", "15"))
STEPS = int(os.environ.get("CHAINML_MODEL_STEPS", "30"))
# tests/mutate.py only needs to know that a failure exists: shrinking it takes minutes.
PHASES = (list(Phase) if os.environ.get("CHAINML_MODEL_SHRINK", "1") == "1"
          else [Phase.explicit, Phase.reuse, Phase.generate])

Triple = tuple[str, frozenset[str], frozenset[str]]
STATS: Counter[str] = Counter()  # what the comparisons saw, printed with -s


class Clocks:
    """Two writers' clocks over one shared time; ``now`` is what the model is told."""

    def __init__(self) -> None:
        self.t = 0.0

    def at(self, skew: float) -> float:
        return self.t + skew

    def clock(self, skew: float) -> Any:
        return lambda: EPOCH + timedelta(seconds=self.at(skew))


class Lockstep(RuleBasedStateMachine):
    """One example: a fresh registry, the model, and the same operations on both."""

    url: str  # set by the test function before the machine runs
    cleanup: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.clocks = Clocks()
        self.writer = 0
        self.regs = [Registry(self.url, actor=f"writer{i}", clock=self.clocks.clock(skew))
                     for i, skew in enumerate((0.0, SKEW))]

    def teardown(self) -> None:
        for reg in self.regs:
            reg.close()
        if self.cleanup:
            self.cleanup()

    # ---- helpers --------------------------------------------------------------------------

    @property
    def reg(self) -> Registry:
        return self.regs[self.writer]

    @property
    def now(self) -> float:
        return self.clocks.at(SKEW if self.writer else 0.0)

    def both(self, on_model: Any, on_registry: Any) -> None:
        """Apply one operation to both; a refusal must be a refusal on both sides."""

        try:
            on_model()
        except Refused as refused:
            try:
                on_registry()
            except ChainmlError as e:
                assert e.exit_code == 2, f"exit {e.exit_code}: {e}"
                return
            raise AssertionError(
                f"chainml accepted what the model refuses ({refused})") from None
        try:
            on_registry()
        except ChainmlError as e:
            raise AssertionError(f"chainml refused what the model accepts: {e}") from None

    def cli(self, on_model: Any, *args: str) -> None:
        """The same as ``both``, with the registry side typed on the command line."""
        def typed() -> None:
            result = run(self.url, *args)
            if result.exit_code == 2:
                raise ChainmlError(result.stderr.strip())
            assert result.exit_code == 0, (args, result.output)

        try:
            on_model()
        except Refused:
            result = run(self.url, *args)
            assert result.exit_code == 2, (args, result.output)
            assert "Traceback" not in result.output
            return
        typed()

    def register_both(self, kind: str, name: str, label: str,
                      inputs: list[tuple[str, str | None]], feedback: list[str],
                      **settings: Any) -> None:
        """One registration on both sides; ``settings``: needs_tests, required_suites and
        max_age_s (the model's names), passed on as the API takes them."""
        specs = [u + (f"@{p}" if p else "") for u, p in inputs]
        api = {k: v for k, v in settings.items() if k != "max_age_s"}
        if "max_age_s" in settings:
            api["max_age"] = AGES[settings["max_age_s"]]
        self.both(lambda: self.model.register(kind, name, label, inputs=inputs,
                                              feedback=feedback, now=self.now, **settings),
                  lambda: self.reg.register(kind=kind, name=name, version=label,
                                            inputs=specs, feedback=feedback, **api))

    def live(self) -> list[str]:
        return sorted(n for n, node in self.model.nodes.items() if not node.retired)

    def pick(self, data: st.DataObject, what: str) -> str:
        """A node to act on: mostly a live one that needs tests, sometimes any."""
        testable = [n for n in self.live() if self.model.nodes[n].needs_tests]
        pools = [testable] * 4 + [sorted(self.model.nodes)] if testable else [
            sorted(self.model.nodes)]
        return data.draw(st.sampled_from(data.draw(st.sampled_from(pools), what)), what)

    # ---- operations -----------------------------------------------------------------------

    @initialize(shape=st.sampled_from(["chain", "diamond", "empty"]), envs=st.integers(0, 2))
    def start(self, shape: str, envs: int) -> None:
        """A starting chain, every testable node verified, so that rules find material:
        a pinned-and-live ancestor (m0 reads s0 through f0 and pinned at 1), a feedback
        loop, a diamond; then `envs` environments (staging, prod after it) that serve
        the whole chain, released without --force (the gate must let it pass)."""
        base: list[tuple[str, str, list[str], list[str]]] = [
            ("s0", "1", [], []), ("s0", "2", [], [])]
        settings: dict[str, dict[str, Any]] = {}
        if shape != "empty":
            base += [("s1", "1", [], []), ("f0", "1", ["s0"], []), ("m0", "1", ["f0", "s0@1"], []),
                     ("m1", "1", ["m0", "s1"], []), ("p0", "1", ["m1", "f0"], [])]
            settings["m1"] = {"max_age_s": 86400}  # retrained daily: stale after a day
        if shape == "diamond":
            base += [("f1", "1", ["s1"], []), ("m2", "1", ["f0", "f1"], ["p0"]),
                     ("c0", "1", ["p0", "m2"], []), ("s1", "2", [], ["c0"])]
        for name, label, specs, feedback in base:
            inputs = [(x.split("@")[0], x.split("@")[1] if "@" in x else None) for x in specs]
            self.register_both(NAMES[name], name, label, inputs, feedback,
                               **settings.get(name, {}))
        if shape == "diamond":  # two required suites, tested against the same lineage
            self.both(lambda: self.model.settings("p0", required_suites=["eval", "shadow"],
                                                  now=self.now),
                      lambda: self.reg.register(kind="policy", name="p0", version="1",
                                                required_suites=["eval", "shadow"]))
        for name in sorted(self.model.statuses(now=self.now)):
            for suite in sorted(self.model.nodes[name].required_suites) or [None]:
                self.both(lambda: self.model.record(name, passed=True, suite=suite,  # noqa: B023
                                                    now=self.now),
                          lambda: self.reg.record_test(name, passed=True,  # noqa: B023
                                                       suite=suite))  # noqa: B023
        for i in range(envs):
            self.env_create_both(ENVS[i], ENVS[i - 1] if i else None)
            release = [(n, None) for n in self.live() if NAMES[n] != "source"]
            if release:
                self.deploy_both(ENVS[i], release, force=False)

    @rule(data=st.data(), name=st.sampled_from(sorted(NAMES)), fresh=st.integers(0, 3),
          needs=st.sampled_from([None] * 6 + [True, False]),
          suites=st.sampled_from([None] * 6 + [[], ["eval"], ["eval", "shadow"]]),
          age=st.sampled_from([None] * 8 + [0, 3600, 86400]))
    def register(self, data: st.DataObject, name: str, fresh: int, needs: bool | None,
                 suites: list[str] | None, age: int | None) -> None:
        node = self.model.nodes.get(name)
        unused = [x for x in LABELS if node is None or x not in node.versions]
        # Mostly a label the node does not have yet (a new version); sometimes any.
        label = (unused[0] if fresh and unused
                 else data.draw(st.sampled_from(LABELS), "label"))
        known = sorted(self.model.nodes)
        kind = NAMES[name]
        # Mostly inputs the kind rule allows (else nearly every register is refused).
        allowed = [u for u in known if NAMES[u] in MAY_READ[kind] and u != name] or known
        pool = data.draw(st.sampled_from([allowed, allowed, allowed, known]), "pool")
        ups = data.draw(st.lists(st.sampled_from(pool), max_size=3, unique=True), "inputs")
        inputs: list[tuple[str, str | None]] = []
        for u in ups:
            labels = sorted(self.model.nodes[u].versions)
            pin = data.draw(st.one_of(st.none(), st.none(), st.sampled_from(labels)), f"pin {u}")
            inputs.append((u, pin))
        feedback = data.draw(st.lists(st.sampled_from(known), max_size=1), "feedback")
        self.register_both(kind, name, label, inputs, feedback, needs_tests=needs,
                           required_suites=suites, max_age_s=age)

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), repin=st.booleans())
    def bump(self, data: st.DataObject, repin: bool) -> None:
        """A new version of a live node with the same inputs (the common upstream change),
        or with one pin moved to another version."""
        live = self.live()
        if not live:
            return
        name = data.draw(st.sampled_from(live), "node")
        node = self.model.nodes[name]
        label = next((x for x in LABELS if x not in node.versions), None)
        if label is None:
            return
        inputs = list(node.versions[node.current].inputs)
        pinned = [i for i, (_, p) in enumerate(inputs) if p is not None]
        if repin and pinned:
            i = data.draw(st.sampled_from(pinned), "pin")
            up = inputs[i][0]
            inputs[i] = (up, data.draw(st.sampled_from(sorted(self.model.nodes[up].versions))))
        self.register_both(node.kind, name, label, inputs,
                           list(node.versions[node.current].feedback))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data())
    def retest(self, data: st.DataObject) -> None:
        """A passing run of every required suite of a node that is not verified."""
        now = self.now
        todo = [n for n, v in self.model.statuses(now=now).items() if v.status != "verified"]
        if not todo:
            return
        name = data.draw(st.sampled_from(todo), "node")
        for suite in sorted(self.model.nodes[name].required_suites) or [None]:
            self.both(lambda: self.model.record(name, passed=True, suite=suite, now=now),  # noqa: B023
                      lambda: self.reg.record_test(name, passed=True, suite=suite))  # noqa: B023

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), via_cli=st.booleans())
    def promote(self, data: st.DataObject, via_cli: bool) -> None:
        name = data.draw(st.sampled_from(sorted(self.model.nodes)), "node")
        label = data.draw(st.sampled_from(sorted(self.model.nodes[name].versions) + ["9"]))
        on_model = lambda: self.model.promote(name, label, now=self.now)  # noqa: E731
        if via_cli:
            self.cli(on_model, "promote", name, label)
        else:
            self.both(on_model, lambda: self.reg.promote(name, label))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), passed=st.sampled_from([True, True, True, False]),
          suite=st.sampled_from(SUITES), older=st.sampled_from([False, False, True]),
          via_cli=st.sampled_from([False, False, True]))
    def record(self, data: st.DataObject, passed: bool, suite: str | None, older: bool,
               via_cli: bool) -> None:
        name = self.pick(data, "node")
        label = (data.draw(st.sampled_from(sorted(self.model.nodes[name].versions)), "version")
                 if older else None)
        on_model = lambda: self.model.record(name, passed=passed, suite=suite,  # noqa: E731
                                             version=label, now=self.now)
        if via_cli:
            args = ["test", "record", name, "--passed" if passed else "--failed"]
            args += ["--suite", suite] if suite else []
            args += ["--version", label] if label else []
            self.cli(on_model, *args)
        else:
            self.both(on_model, lambda: self.reg.record_test(name, passed=passed, suite=suite,
                                                             version=label))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), needs=st.sampled_from([None, True, False]),
          suites=st.sampled_from([None, [], ["eval"], ["shadow"], ["eval", "shadow"]]),
          age=st.sampled_from([None, 0, 3600]))
    def change_settings(self, data: st.DataObject, needs: bool | None,
                        suites: list[str] | None, age: int | None) -> None:
        live = self.live()
        if not live:
            return
        name = data.draw(st.sampled_from(live), "node")
        node = self.model.nodes[name]
        self.both(
            lambda: self.model.settings(name, needs_tests=needs, required_suites=suites,
                                        max_age_s=age, now=self.now),
            lambda: self.reg.register(kind=node.kind, name=name, version=node.current,
                                      needs_tests=needs, required_suites=suites,
                                      max_age=AGES[age]))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), with_cause=st.booleans(), hours=st.sampled_from([1, 168]))
    def waive(self, data: st.DataObject, with_cause: bool, hours: int) -> None:
        open_nodes = [n for n, v in self.model.statuses(now=self.now).items()
                      if v.status in ("needs_retest", "waived")]
        name = (data.draw(st.sampled_from(open_nodes), "node")
                if open_nodes and data.draw(st.booleans(), "open one")
                else self.pick(data, "node"))
        verdict = (self.model.status(name, now=self.now)
                   if not self.model.nodes[name].retired else None)
        open_ = sorted({c for c, _, _ in verdict.reasons}) if verdict else []
        # Mostly an open cause; sometimes any node (which must be refused unless open).
        causes = [open_, open_, sorted(self.model.nodes)] if open_ else [sorted(self.model.nodes)]
        cause = (data.draw(st.sampled_from(data.draw(st.sampled_from(causes), "pool")), "cause")
                 if with_cause else None)
        self.both(
            lambda: self.model.waive(name, cause=cause, expires_s=hours * 3600.0, now=self.now),
            lambda: self.reg.waive(name, reason="accepted in a test", cause=cause,
                                   expires=f"{hours}h"))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), then=st.sampled_from(["change", "retest_one", "rollback", "wait"]))
    def waive_and_follow(self, data: st.DataObject, then: str) -> None:
        """Waive a node that needs a retest, then do what must end or keep the waiver:
        a newer change of one of its causes, a run of one of its required suites, a
        rollback of a cause, or time passing beyond the expiry."""
        now = self.now
        open_nodes = sorted(n for n, v in self.model.statuses(now=now).items()
                            if v.status == "needs_retest")
        if not open_nodes:
            return
        with_suites = [n for n in open_nodes if self.model.nodes[n].required_suites]
        if then == "retest_one" and with_suites:  # where a run of one suite matters
            open_nodes = with_suites
        name = data.draw(st.sampled_from(open_nodes), "node")
        self.both(lambda: self.model.waive(name, expires_s=3 * 3600.0, now=now),
                  lambda: self.reg.waive(name, reason="accepted in a test", expires="3h"))
        self.agree()
        causes = sorted({c for c, _, _ in self.model.status(name, now=now).reasons}
                        & set(self.live()))
        node = self.model.nodes[name]
        if then == "change" and causes:
            cause = data.draw(st.sampled_from(causes), "cause")
            self._new_version(cause)
        elif then == "retest_one" and node.required_suites:
            suite = data.draw(st.sampled_from(sorted(node.required_suites)), "suite")
            self.both(lambda: self.model.record(name, passed=True, suite=suite, now=now),
                      lambda: self.reg.record_test(name, passed=True, suite=suite))
        elif then == "rollback" and causes:
            cause = data.draw(st.sampled_from(causes), "cause")
            label = data.draw(st.sampled_from(sorted(self.model.nodes[cause].versions)))
            self.both(lambda: self.model.promote(cause, label, now=now),
                      lambda: self.reg.promote(cause, label))
        elif then == "wait":  # to the expiry instant (no longer valid), then past it
            self.clocks.t += 3 * 3600
            self.agree()
            self.clocks.t += 60

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), revive=st.booleans())
    def drop_retire_rollback(self, data: st.DataObject, revive: bool) -> None:
        """Give a node a version without one input, retire that input, then promote the
        node back to the version that read it (refused), reviving it first or not."""
        live = self.live()
        readers: dict[str, list[str]] = {}
        for n in live:
            for u in self.model.nodes[n].versions[self.model.nodes[n].current].reads():
                readers.setdefault(u, []).append(n)
        candidates = sorted((n, u) for u, ns in readers.items() if len(ns) == 1 for n in ns)
        if not candidates:
            return
        name, dropped = data.draw(st.sampled_from(candidates), "node and input")
        node = self.model.nodes[name]
        old = node.current
        label = next((x for x in LABELS if x not in node.versions), None)
        if label is None:
            return
        current = node.versions[old]
        self.register_both(node.kind, name, label,
                           [(u, p) for u, p in current.inputs if u != dropped],
                           [f for f in current.feedback if f != dropped])
        self.both(lambda: self.model.retire(dropped, now=self.now),
                  lambda: self.reg.retire(dropped))
        self.agree()
        if revive:
            self._new_version(dropped)
        self.both(lambda: self.model.promote(name, old, now=self.now),
                  lambda: self.reg.promote(name, old))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data())
    def waive_then_run_one_suite(self, data: st.DataObject) -> None:
        """Waive a node that requires several suites, then record one of them: the waiver
        was granted on the old runs, so the other suite's old cause is open again."""
        now = self.now
        open_nodes = sorted(n for n, v in self.model.statuses(now=now).items()
                            if v.status in ("needs_retest", "waived")
                            and len(self.model.nodes[n].required_suites) > 1)
        if not open_nodes:
            return
        name = data.draw(st.sampled_from(open_nodes), "node")
        self.both(lambda: self.model.waive(name, now=now),
                  lambda: self.reg.waive(name, reason="accepted in a test"))
        self.agree()
        suite = data.draw(st.sampled_from(sorted(self.model.nodes[name].required_suites)))
        self.both(lambda: self.model.record(name, passed=True, suite=suite, now=now),
                  lambda: self.reg.record_test(name, passed=True, suite=suite))

    def _new_version(self, name: str) -> None:
        node = self.model.nodes[name]
        label = next((x for x in LABELS if x not in node.versions), None)
        if label is None:
            return
        current = node.versions[node.current]
        self.register_both(node.kind, name, label, list(current.inputs), list(current.feedback))

    @precondition(lambda self: len(self.model.nodes) > 0)
    @rule(data=st.data(), via_cli=st.booleans(), go=st.sampled_from([True, False]))
    def retire(self, data: st.DataObject, via_cli: bool, go: bool) -> None:
        if not go:  # rarer than the other changes, or the chain keeps emptying
            return
        live = self.live()
        read = {u for n in live for u in self.model.nodes[n].versions[
            self.model.nodes[n].current].reads()}
        free = [n for n in live if n not in read]  # what may be retired
        pools = [free, free, sorted(self.model.nodes)] if free else [sorted(self.model.nodes)]
        name = data.draw(st.sampled_from(data.draw(st.sampled_from(pools), "pool")), "node")
        on_model = lambda: self.model.retire(name, now=self.now)  # noqa: E731
        if via_cli:
            self.cli(on_model, "retire", name)
        else:
            self.both(on_model, lambda: self.reg.retire(name))

    @precondition(lambda self: len(self.model.nodes) > 1)
    @rule(data=st.data(), prune=st.booleans())
    def apply(self, data: st.DataObject, prune: bool) -> None:
        """A chain file of the current state, with one node left out and one node bumped
        to another version label (its inputs unchanged)."""
        live = self.live()
        if not live:
            return
        drop = data.draw(st.sampled_from([None, *live]), "left out")
        bump = data.draw(st.sampled_from([None, *live]), "bumped")
        label = data.draw(st.sampled_from(LABELS), "bumped to")
        decls, nodes = [], []
        for name in live:
            if name == drop:
                continue
            node = self.model.nodes[name]
            version = node.versions[node.current]
            decl = {"kind": node.kind, "name": name,
                    "version": label if name == bump else node.current,
                    "inputs": list(version.inputs), "feedback": list(version.feedback),
                    "needs_tests": node.needs_tests,
                    "required_suites": sorted(node.required_suites), "max_age_s": node.max_age_s}
            decls.append(decl)
            nodes.append({
                "name": name, "kind": node.kind, "version": decl["version"],
                "inputs": [u + (f"@{p}" if p else "") for u, p in version.inputs],
                "feedback": list(version.feedback), "needs_tests": node.needs_tests,
                "require_suites": sorted(node.required_suites),
                **({"max_age": f"{node.max_age_s}s"} if node.max_age_s else {})})
        text = yaml.safe_dump({"chainml": 1, "nodes": nodes}, sort_keys=False)
        self.both(lambda: self.model.apply(decls, prune=prune, now=self.now),
                  lambda: self.reg.apply_text(text, "chain.yaml", prune=prune))

    # ---- environments and deployments ------------------------------------------------------

    def env_create_both(self, name: str, after: str | None) -> None:
        self.both(lambda: self.model.env_create(name, after=after, now=self.now),
                  lambda: self.reg.env_create(name, after=after))

    def deploy_both(self, env: str, release: list[tuple[str, str | None]], *, force: bool,
                    check: bool = False, via_cli: bool = False) -> None:
        """One release on both sides. With --force and a reason it is never refused by the
        gate; without, chainml refuses it (exit 1, nothing recorded) exactly when the model
        predicts that a node it judges (one of its nodes, or a deployed node that reads one
        of them) would be untested, failed, skewed or missing_input; the judged nodes
        (``checked``) and those that block (``problems``, with their statuses) must be the
        model's; --check says the same and records nothing. Bad input is exit 2 on both
        sides. ``via_cli``: typed as ``chainml deploy ... --json`` instead."""
        specs = [n + (f"@{v}" if v else "") for n, v in release]
        reason = "forced in a test" if force else None
        # The command line reads the wall clock, not the writers' (waivers expire by it).
        now = (utcnow() - EPOCH).total_seconds() if via_cli else self.now
        try:
            checked = self.model.deploy(env, release, force=force, reason=reason, check=check,
                                        now=now)
            refused = False
        except Refused as bad:
            code, facts = self._deploy_registry(env, specs, force, reason, check, via_cli)
            assert code == 2, (f"chainml answered exit {code} deploying {specs} to {env}, "
                               f"which the model refuses as bad input ({bad}): {facts}")
            STATS["deploy bad input"] += 1
            return
        except Blocked as gate:
            checked, refused = gate.checked, True
        blocked = {n: v.status for n, v in checked.items() if v.status in BLOCKING}
        code, facts = self._deploy_registry(env, specs, force, reason, check, via_cli)
        where = (env, specs, "force" if force else "check" if check else "gate")
        assert code == (1 if refused or (check and blocked) else 0), (
            f"chainml answered exit {code}", where, facts, blocked)
        assert facts == {"checked": set(checked), "problems": blocked, "ok": not blocked,
                         "recorded": not check and (force or not blocked)}, (where, checked)
        STATS["deploy refused by the gate" if refused else
              "deploy forced past the gate" if force and blocked else
              "deploy checked" if check else "deploy accepted"] += 1
        if via_cli:
            STATS["deploy via the CLI"] += 1

    def _deploy_registry(self, env: str, specs: list[str], force: bool, reason: str | None,
                         check: bool, via_cli: bool) -> tuple[int, dict[str, Any]]:
        """The registry side of ``deploy_both``: (exit code, the facts of its answer)."""
        if via_cli:
            args = ["deploy", *specs, "--env", env, "--note", "lockstep", "--json"]
            args += ["--check"] if check else []
            args += ["--force", "--reason", reason] if force and reason else []
            typed = run(self.url, *args)
            assert "Traceback" not in typed.output, typed.output
            if typed.exit_code == 2:
                return 2, {"error": typed.stderr}
            doc = yaml.safe_load(typed.stdout)
            return typed.exit_code, {
                "checked": {e["name"] for e in doc["checked"]},
                "problems": {e["name"]: e["status"] for e in doc["problems"]},
                "ok": doc["ok"], "recorded": doc["recorded"]}
        try:
            result = self.reg.deploy(specs, env=env, check=check, force=force, reason=reason,
                                     note="lockstep")
            code = 1 if check and not result.ok else 0  # the API answers --check; exit 1
        except ChainmlError as e:
            if e.exit_code != 1:
                return e.exit_code, {"error": str(e)}
            result, code = getattr(e, "result", None), 1
            assert result is not None, e
        return code, {"checked": {e.name for e in result.checked},
                      "problems": {p.name: p.status.value for p in result.problems},
                      "ok": result.ok, "recorded": result.recorded}

    def pick_release(self, data: st.DataObject) -> list[tuple[str, str | None]]:
        """One to three nodes, mostly live ones; each NODE or NODE@VERSION (an unknown
        version or node now and then, which is bad input)."""
        live = self.live()
        pools = [live] * 6 + [sorted(self.model.nodes) + ["ghost"]] if live else [["ghost"]]
        pool = data.draw(st.sampled_from(pools), "release pool")
        names = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True),
                          "release")
        release: list[tuple[str, str | None]] = []
        for n in names:
            labels = sorted(self.model.nodes[n].versions) if n in self.model.nodes else []
            label = data.draw(st.sampled_from([None, None, *labels, *labels, "9"]), f"{n}@")
            release.append((n, label))
        return release

    def pick_env(self, data: st.DataObject) -> str:
        """Mostly an existing environment; sometimes one that does not exist (yet)."""
        known = sorted(self.model.envs)
        pools = [known] * 8 + [ENVS] if known else [ENVS]
        return data.draw(st.sampled_from(data.draw(st.sampled_from(pools), "env pool")), "env")

    @rule(name=st.sampled_from(ENVS), after=st.sampled_from([None, None, *ENVS, "nowhere"]))
    def env_create(self, name: str, after: str | None) -> None:
        self.env_create_both(name, after)

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), via_cli=st.sampled_from([False, False, False, True]))
    def deploy_forced(self, data: st.DataObject, via_cli: bool) -> None:
        """A release recorded whatever the gate says (--force --reason)."""
        self.deploy_both(self.pick_env(data), self.pick_release(data), force=True,
                         via_cli=via_cli)

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), check=st.sampled_from([False, False, True]),
          via_cli=st.sampled_from([False, False, False, True]))
    def deploy_gated(self, data: st.DataObject, check: bool, via_cli: bool) -> None:
        """A release through the gate (or --check, which records nothing either way)."""
        self.deploy_both(self.pick_env(data), self.pick_release(data), force=False,
                         check=check, via_cli=via_cli)

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), sources=st.booleans())
    def release_current(self, data: st.DataObject, sources: bool) -> None:
        """The registry's current chain released through the gate: every live node at its
        current version (sources too, sometimes), as a deploy job would."""
        release = [(n, None) for n in self.live() if sources or NAMES[n] != "source"]
        if release:
            self.deploy_both(self.pick_env(data), release, force=False)

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data())
    def undeploy(self, data: st.DataObject) -> None:
        """Undeploy a node the environment serves (mostly; a source now and then, which
        goes back to live data), else any (refused: exit 2)."""
        env = self.pick_env(data)
        served = sorted(self.model.deployed(env)) if env in self.model.envs else []
        sources = [n for n in served if NAMES[n] == "source"]  # back to live data
        pools = ([served] * 4 + [sources] * (2 if sources else 0) + [sorted(self.model.nodes)]
                 if served else [sorted(self.model.nodes)])
        name = data.draw(st.sampled_from(data.draw(st.sampled_from(pools), "pool")), "node")
        self.both(lambda: self.model.undeploy(env, name, now=self.now),
                  lambda: self.reg.undeploy(name, env=env))
        if name in served and NAMES[name] == "source":
            STATS["undeploy a source"] += 1

    @precondition(lambda self: len(self.model.envs) > 0)
    @rule(data=st.data())
    def plan_and_apply(self, data: st.DataObject) -> None:
        """``plan`` to current (or to another environment), applied as planned through the
        gate: every plan, applied, is accepted and leaves no node of the environment
        skewed or broken that was not so before."""
        env = data.draw(st.sampled_from(sorted(self.model.envs)), "env")
        to = data.draw(st.sampled_from(["current", "current", *sorted(self.model.envs)]), "to")
        try:
            plan = self.reg.plan(env, to=to)
        except ChainmlError as e:  # the release would make env serve a cycle: exit 2
            assert e.exit_code == 2 and "cycle" in str(e), e
            STATS["plan would serve a cycle"] += 1
            return
        if not plan.ok:
            STATS["plan blocked"] += 1
            return
        if not plan.nodes:
            STATS["plan empty"] += 1
            return
        broken_before = {e.name for e in self.reg.env_status(env) if e.status.value in BLOCKING}
        release: list[tuple[str, str | None]] = [(i.node, i.version) for i in plan.nodes]
        check = self.reg.deploy([f"{n}@{v}" for n, v in release], env=env, check=True)
        assert check.ok, (env, to, plan, check.problems)
        self.deploy_both(env, release, force=False)
        broken = {e.name for e in self.reg.env_status(env) if e.status.value in BLOCKING}
        assert broken <= broken_before, (env, to, plan, broken - broken_before)
        STATS["plan applied"] += 1

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data())
    def source_snapshot_and_back(self, data: st.DataObject) -> None:
        """A source a deployed node reads is deployed at one of its versions (a snapshot),
        then undeployed: the environment takes it live again, at its current version."""
        env = data.draw(st.sampled_from(sorted(self.model.envs)), "env")
        served, deployed = self.model.served(env), self.model.deployed(env)
        sources = sorted({u for n in deployed
                          for u, pin in self.model.nodes[n].versions[served[n]].inputs
                          if pin is None and NAMES[u] == "source"
                          and not self.model.nodes[u].retired})
        if not sources:
            return
        source = data.draw(st.sampled_from(sources), "source")
        label = data.draw(st.sampled_from(sorted(self.model.nodes[source].versions)), "version")
        self.deploy_both(env, [(source, label)], force=True)
        self.agree_in_environments()
        self.both(lambda: self.model.undeploy(env, source, now=self.now),
                  lambda: self.reg.undeploy(source, env=env))
        STATS["undeploy a source"] += 1

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), force=st.booleans(), bump=st.booleans())
    def redeploy_upstream(self, data: st.DataObject, force: bool, bump: bool) -> None:
        """Training–serving skew in the making: an input of a deployed node is redeployed
        alone at another version (a new one, registered first, or any it has)."""
        env = data.draw(st.sampled_from(sorted(self.model.envs)), "env")
        served, deployed = self.model.served(env), self.model.deployed(env)
        ups = sorted({u for n in deployed
                      for u, pin in self.model.nodes[n].versions[served[n]].inputs
                      if pin is None and not self.model.nodes[u].retired})
        if not ups:
            return
        up = data.draw(st.sampled_from(ups), "upstream")
        if bump:
            self._new_version(up)
        label = data.draw(st.sampled_from(sorted(self.model.nodes[up].versions)), "version")
        self.deploy_both(env, [(up, label)], force=force)

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), passed=st.booleans(), suite=st.sampled_from(SUITES))
    def record_deployed(self, data: st.DataObject, passed: bool, suite: str | None) -> None:
        """A run of the version an environment serves (against the registry's lineage)."""
        env = data.draw(st.sampled_from(sorted(self.model.envs)), "env")
        served, deployed = self.model.served(env), self.model.deployed(env)
        testable = sorted(n for n in deployed if self.model.nodes[n].needs_tests
                          and not self.model.nodes[n].retired)
        if not testable:
            return
        name = data.draw(st.sampled_from(testable), "node")
        self.both(lambda: self.model.record(name, passed=passed, suite=suite,
                                            version=served[name], now=self.now),
                  lambda: self.reg.record_test(name, passed=passed, suite=suite,
                                               version=served[name]))

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), passed=st.sampled_from([False, False, True]), two=st.booleans())
    def tested_elsewhere(self, data: st.DataObject, passed: bool, two: bool) -> None:
        """A new version of a deployed node, tested (mostly failing; one suite of two when
        ``two``) against the registry's lineage, then released with one of its inputs at
        another version: no run counts there, so that suite is failed (only failed runs) or
        skewed, and the other untested: the worst wins."""
        env = data.draw(st.sampled_from(sorted(self.model.envs)), "env")
        pairs = sorted((n, u) for n in self.model.deployed(env)
                       if self.model.nodes[n].needs_tests and not self.model.nodes[n].retired
                       for u, pin in self.model.nodes[n].versions[
                           self.model.nodes[n].current].inputs
                       if pin is None and len(self.model.nodes[u].versions) > 1)
        if not pairs:
            return
        name, up = data.draw(st.sampled_from(pairs), "node and input")
        node = self.model.nodes[name]
        if two and len(node.required_suites) < 2:
            self.both(lambda: self.model.settings(name, required_suites=["eval", "shadow"],
                                                  now=self.now),
                      lambda: self.reg.register(kind=node.kind, name=name, version=node.current,
                                                required_suites=["eval", "shadow"]))
        before = self.model.nodes[name].current
        self._new_version(name)
        label = self.model.nodes[name].current
        if label == before:
            return
        required = sorted(self.model.nodes[name].required_suites)
        suite = data.draw(st.sampled_from(required or SUITES), "suite")  # one suite of several
        self.both(lambda: self.model.record(name, passed=passed, suite=suite, now=self.now),
                  lambda: self.reg.record_test(name, passed=passed, suite=suite))
        other = sorted(set(self.model.nodes[up].versions) - {self.model.nodes[up].current})
        self.deploy_both(env, [(up, data.draw(st.sampled_from(other), "other")),
                               (name, label)], force=True)

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), then=st.sampled_from(["redeploy", "retest", "rollback", "wait"]))
    def skew_waive_and_follow(self, data: st.DataObject, then: str) -> None:
        """Waive a skewed node in its environment, then do what must end or keep the waiver:
        serve another version of a cause, record a newer passing run of the deployed version,
        move a cause back, or let it expire."""
        now = self.now

        def skewed() -> list[tuple[str, str]]:
            return sorted((e, n) for e in self.model.envs
                          for n, v in self.model.env_statuses(e, now=now).items()
                          if v.status == "skewed")

        if not skewed():  # make some: a new version of an input, deployed alone
            env = data.draw(st.sampled_from(sorted(self.model.envs)), "env")
            served, deployed = self.model.served(env), self.model.deployed(env)
            ups = sorted({u for n in deployed if self.model.nodes[n].needs_tests
                          for u, pin in self.model.nodes[n].versions[served[n]].inputs
                          if pin is None and not self.model.nodes[u].retired})
            if not ups:
                return
            up = data.draw(st.sampled_from(ups), "upstream")
            self._new_version(up)
            self.deploy_both(env, [(up, None)], force=True)
            self.agree_in_environments()
        if not skewed():
            return
        env, name = data.draw(st.sampled_from(skewed()), "env and node")
        self.both(lambda: self.model.waive_env(env, name, expires_s=3 * 3600.0, now=now),
                  lambda: self.reg.waive(name, reason="accepted in a test", expires="3h",
                                         env=env))
        self.agree_in_environments()
        verdict = self.model.env_status(env, name, now=now)
        assert verdict is not None
        causes = sorted({c for c, _, _ in verdict.reasons} & set(self.live()))
        served = self.model.served(env)
        if then in ("redeploy", "rollback") and causes:
            cause = data.draw(st.sampled_from(causes), "cause")
            label = data.draw(st.sampled_from(sorted(self.model.nodes[cause].versions)))
            if then == "rollback":  # back to what the deciding run was tested with
                tested = next(t for c, t, _ in verdict.reasons if c == cause)
                label = min(tested) if tested else label
            self.deploy_both(env, [(cause, label)], force=True)
        elif then == "retest":
            self.both(lambda: self.model.record(name, passed=True, version=served[name],
                                                now=now),
                      lambda: self.reg.record_test(name, passed=True, version=served[name]))
        elif then == "wait":  # to the expiry instant (no longer valid), then past it
            self.clocks.t += 3 * 3600
            self.agree_in_environments()
            self.clocks.t += 60

    @precondition(lambda self: len(self.model.envs) > 0 and len(self.model.nodes) > 0)
    @rule(data=st.data(), with_cause=st.booleans(), hours=st.sampled_from([1, 168]))
    def waive_in_env(self, data: st.DataObject, with_cause: bool, hours: int) -> None:
        """`waive NODE --env ENV`: mostly a skewed node (all its causes or one), sometimes
        any node (refused unless skewed or waived there)."""
        env = self.pick_env(data)
        now = self.now
        skewed = (sorted(n for n, v in self.model.env_statuses(env, now=now).items()
                         if v.status in ("skewed", "waived")) if env in self.model.envs else [])
        name = (data.draw(st.sampled_from(skewed), "node")
                if skewed and data.draw(st.booleans(), "a skewed one") else self.pick(data, "node"))
        verdict = (self.model.env_status(env, name, now=now)
                   if env in self.model.envs and not self.model.nodes[name].retired else None)
        open_ = sorted({c for c, _, _ in verdict.reasons}) if verdict else []
        causes = [open_, open_, sorted(self.model.nodes)] if open_ else [sorted(self.model.nodes)]
        cause = (data.draw(st.sampled_from(data.draw(st.sampled_from(causes), "pool")), "cause")
                 if with_cause else None)
        self.both(
            lambda: self.model.waive_env(env, name, cause=cause, expires_s=hours * 3600.0,
                                         now=now),
            lambda: self.reg.waive(name, reason="accepted in a test", cause=cause,
                                   expires=f"{hours}h", env=env))

    @rule(hours=st.sampled_from([0.5, 2, 30, 200]))
    def time_passes(self, hours: float) -> None:
        self.clocks.t += hours * 3600

    @rule()
    def switch_writer(self) -> None:
        self.writer = 1 - self.writer

    # ---- comparison -----------------------------------------------------------------------

    @invariant()
    def agree(self) -> None:
        STATS["steps"] += 1
        now = self.now
        want = self.model.statuses(now=now)
        got = {e.name: e for e in self.reg.status()}
        assert set(got) == set(want), (sorted(got), sorted(want))
        for name, verdict in want.items():
            entry = got[name]
            assert entry.status.value == verdict.status, (name, entry, verdict)
            STATS[verdict.status] += 1
            if verdict.status in ("needs_retest", "waived"):
                assert _triples(entry) == set(verdict.reasons), (name, entry.reasons, verdict)
            missing = {r.suite for r in entry.reasons if r.suite and entry.status.value
                       == "untested"}
            if missing:
                assert missing == set(verdict.missing_suites), (name, entry.reasons, verdict)
        recomputed = {e.name: (e.status.value, _triples(e)) for e in self.reg.recompute_status()}
        assert recomputed == {n: (e.status.value, _triples(e)) for n, e in got.items()}, \
            "status from the marks and from the definition disagree"
        for strict in (False, True):
            ok, failing = self.model.check(now=now, strict=strict)
            result = self.reg.check(strict=strict)
            assert (result.ok, {e.name for e in result.failing}) == (ok, set(failing)), strict
        for name in self.live():
            assert {e.name for e in self.reg.impact(name).impacted} == set(
                self.model.impact(name)), name

    @invariant()
    def agree_in_environments(self) -> None:
        """Per environment: the nodes that have an environment status, each status, and for
        skewed and waived nodes the causes, as (ancestor, tested-with, served) triples."""
        now = self.now
        for env in sorted(self.model.envs):
            want = self.model.env_statuses(env, now=now)
            got = {e.name: e for e in self.reg.env_status(env)}
            assert set(got) == set(want), (env, sorted(got), sorted(want))
            served, deployed = self.model.served(env), self.model.deployed(env)
            shown = self.reg.env_show(env).nodes
            assert {n.name: n.version for n in shown if n.deployed} == {
                n: served[n] for n in deployed}, (env, shown)
            for name in sorted(want)[:1]:  # one node asked alone answers the same
                alone = self.reg.env_status(env, name)
                assert [(e.name, e.status) for e in alone] == [(name, got[name].status)], alone
            kept = self.reg.reached()  # as a server keeps it for its node pages
            for name in sorted(want)[:3]:
                page = self.reg.node_overview(name, kept=kept).env_status[env]
                assert page == self.reg.env_status(env, name)[0], (env, name, page)
            for name, verdict in want.items():
                entry = got[name]
                assert entry.status.value == verdict.status, (env, name, entry, verdict)
                STATS[f"env {verdict.status}"] += 1
                causes = {r.cause for r in entry.reasons}
                if verdict.status in ("skewed", "waived"):
                    assert causes == {c for c, _, _ in verdict.reasons}, (env, name, entry,
                                                                          verdict)
                    assert _env_triples(entry) == set(verdict.reasons), (env, name, entry,
                                                                         verdict)
                elif verdict.status == "missing_input":
                    assert causes == set(verdict.missing), (env, name, entry, verdict)
            self.judged_every_way(env, list(got.values()))

    def judged_every_way(self, env: str, got: list[Any]) -> None:
        """Entries judged from the registry's marks where they apply (however the nodes
        they apply to are found) equal, field for field, those from the definition; but
        the path a reason names: both are a way from the cause down to the node, and the
        marks keep the one the change travelled (as ``status`` shows it)."""
        want = unrouted(self.reg.recompute_env_status(env))
        assert unrouted(got) == want, (env, "marks and definition differ")
        for above, in_sql in ((0, 0), (0, 10_000)):
            with judge_thresholds(above, in_sql):
                again = unrouted(self.reg.env_status(env))
            assert again == want, (env, above, in_sql)


@contextmanager
def judge_thresholds(above_up_to: int, in_sql: int) -> Iterator[None]:
    """``environments.judge`` deciding from the lineages above the judged nodes up to
    ``above_up_to`` of them (else from every change, walked down in SQL up to ``in_sql``
    changes): small registries take every way there is."""
    saved = judge.ABOVE_UP_TO, judge.WALK_IN_SQL
    judge.ABOVE_UP_TO, judge.WALK_IN_SQL = above_up_to, in_sql
    try:
        yield
    finally:
        judge.ABOVE_UP_TO, judge.WALK_IN_SQL = saved


def _triples(entry: Any) -> set[Triple]:
    return {(r.cause, frozenset(r.tested_with), frozenset(r.now)) for r in entry.reasons
            if r.suite is None and r.cause != entry.name}


def _env_triples(entry: Any) -> set[Triple]:
    return {(r.cause, frozenset(r.tested_with), frozenset(r.now)) for r in entry.reasons}


# ---- the runs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated empty SQLite registry, copied for every example (migrating each costs)."""
    path = tmp_path_factory.mktemp("model") / "template.db"
    Registry.init(url=f"sqlite:///{path}").close()
    return path


def test_registry_agrees_with_the_model_on_sqlite(template: Path) -> None:
    folder = Path(tempfile.mkdtemp(prefix="chainml-model-"))
    counter = iter(range(10**9))

    class OnSqlite(Lockstep):
        def __init__(self) -> None:
            path = folder / f"r{next(counter)}.db"
            shutil.copy(template, path)
            type(self).url = f"sqlite:///{path}"
            type(self).cleanup = staticmethod(lambda: path.unlink(missing_ok=True))
            super().__init__()

    STATS.clear()
    try:
        settings(max_examples=SQLITE_EXAMPLES, stateful_step_count=STEPS, deadline=None,
                 suppress_health_check=list(HealthCheck), print_blob=True,
                 phases=PHASES)(OnSqlite).TestCase().runTest()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(dict(STATS))
    # The comparison must have seen every status, or the rules reach too little.
    assert {"verified", "untested", "failed", "needs_retest", "waived"} <= set(STATS), STATS
    # ... and every environment status the rules can reach, and both sides of the gate.
    assert {"env verified", "env untested", "env failed", "env skewed", "env missing_input",
            "env waived", "deploy refused by the gate", "deploy accepted"} <= set(STATS), STATS


@pytest.mark.parametrize("backend", [b for b in ["postgresql"] if b in BACKENDS])
def test_registry_agrees_with_the_model_on_a_server(backend: str) -> None:
    class OnServer(Lockstep):
        def __init__(self) -> None:
            url, name = create_database(backend)
            Registry.init(url=url).close()
            type(self).url = url
            type(self).cleanup = staticmethod(lambda: drop_database(backend, name))
            super().__init__()

    settings(max_examples=SERVER_EXAMPLES, stateful_step_count=min(STEPS, 20), deadline=None,
             suppress_health_check=list(HealthCheck), print_blob=True,
             phases=PHASES)(OnServer).TestCase().runTest()


def test_the_model_file_imports_nothing_from_chainml() -> None:
    source = (Path(__file__).parent / "reference_model.py").read_text()
    assert "chainml" not in "\n".join(
        line for line in source.splitlines() if line.lstrip().startswith(("import", "from")))

