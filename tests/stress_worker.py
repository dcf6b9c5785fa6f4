"""One writer process of the concurrency tests (tests/test_concurrency.py).

Run as ``python -m tests.stress_worker PLAN.json``: it starts every worker as its own
process (see ``launch``). The plan (written by the test) names the database URL, the
chain, the number of operations, the seed and a barrier folder. Each worker opens its
own ``Registry`` (actor ``w<N>``), waits at the barrier so every worker starts at
once, runs a seeded mix of operations and writes ``<out>/w<N>.json``: every operation
it believes succeeded (with the event it should have left and the row ids it got
back) and the count of refusals by error type.

A refusal (``InvalidInput`` and its subclasses: a cycle, a version conflict, a waiver
on a node with nothing to waive, an unknown node) is an expected outcome and is
counted. Anything else escapes with a traceback and a non-zero exit: the test fails.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from chainml.errors import InvalidInput
from chainml.registry import Registry

# ---- the chain every "mix" run starts from (the test builds it with ``build_chain``) ----

# name -> (kind, fixed inputs). Inputs never change, so only the deliberate cycle
# attempt can make a cycle.
SHARED: dict[str, tuple[str, list[str]]] = {
    "S0": ("source", []),
    "S1": ("source", []),
    "F0": ("feature", ["S0"]),
    "F1": ("feature", ["S0", "S1"]),
    "M0": ("model", ["F0"]),
    "M1": ("model", ["F1", "M0"]),
    "P0": ("policy", ["M1"]),
    "C0": ("consumer", ["P0"]),
}


def own_nodes(worker: int) -> dict[str, tuple[str, list[str]]]:
    """The nodes only worker ``worker`` writes (they still read shared ones)."""
    p = f"w{worker}"
    return {
        f"{p}/src": ("source", []),
        f"{p}/feat": ("feature", [f"{p}/src", "S1"]),
        f"{p}/model": ("model", [f"{p}/feat", "F0"]),
    }


def chain(workers: int) -> dict[str, tuple[str, list[str]]]:
    out = dict(SHARED)
    for w in range(workers):
        out.update(own_nodes(w))
    return out


def build_chain(reg: Registry, workers: int) -> None:
    """Register the starting chain (version "1" everywhere) and test every testable node."""
    nodes = chain(workers)
    for name, (kind, inputs) in nodes.items():
        reg.register(kind=kind, name=name, version="1", inputs=inputs)
    for name in testable(workers):
        reg.record_test(name, passed=True)


def testable(workers: int) -> list[str]:
    return ["M0", "M1", "P0"] + [f"w{w}/model" for w in range(workers)]


# ---- the race plans ----------------------------------------------------------------------

HUB_INPUTS: list[str] = []  # the raced node is a source: no inputs


def build_race_chain(reg: Registry, fanout: int = 4) -> list[str]:
    """hub -> fanout features -> 2 models each (tested) -> a policy. Returns the testable."""
    reg.register(kind="source", name="hub", version="1")
    reg.register(kind="source", name="other", version="1")
    tested = []
    for f in range(fanout):
        reg.register(kind="feature", name=f"hub_f{f}", version="1", inputs=["hub", "other"])
        for m in range(2):
            name = f"hub_m{f}_{m}"
            reg.register(kind="model", name=name, version="1", inputs=[f"hub_f{f}"])
            tested.append(name)
    reg.register(kind="policy", name="hub_p", version="1",
                 inputs=[f"hub_m{f}_0" for f in range(fanout)])
    tested.append("hub_p")
    for name in tested:
        reg.record_test(name, passed=True)
    return tested


# ---- the worker --------------------------------------------------------------------------

WEIGHTS = [
    ("reg_shared", 18), ("reg_same", 10), ("reg_own", 15), ("promote", 15), ("test", 24),
    ("waive", 10), ("cycle", 3), ("conflict", 3), ("unknown", 2),
]


class Worker:
    def __init__(self, plan: dict[str, Any], worker: int) -> None:
        self.plan, self.worker = plan, worker
        self.rng = random.Random(plan["seed"] * 1000 + worker)
        self.reg = Registry(plan["url"], actor=f"w{worker}")
        self.done: list[dict[str, Any]] = []
        self.refused: dict[str, int] = {}
        self.counter = 0

    def label(self) -> str:
        self.counter += 1
        return f"w{self.worker}.{self.counter}"

    # Each op returns the record of a success (event None = a no-op that writes none).

    def register(self, name: str, kind: str, inputs: list[str], label: str,
                 **extra: Any) -> dict[str, Any]:
        r = self.reg.register(kind=kind, name=name, version=label, inputs=inputs, **extra)
        return {"op": "register", "node": name, "version": label,
                "created": r.created_version,
                "event": "version.registered" if r.created_version else None}

    def promote(self, name: str, label: str) -> dict[str, Any]:
        r = self.reg.promote(name, label)
        return {"op": "promote", "node": name, "version": label,
                "event": "version.promoted" if r.current_changed else None}

    def op(self, what: str) -> dict[str, Any]:
        rng, w = self.rng, self.worker
        workers = self.plan["workers"]
        if what == "reg_shared":
            name = rng.choice(sorted(SHARED))
            kind, inputs = SHARED[name]
            return self.register(name, kind, inputs, self.label())
        if what == "reg_same":  # every worker registers the same few labels
            name = rng.choice(["S0", "S1", "F0", "F1", "M0"])
            kind, inputs = SHARED[name]
            return self.register(name, kind, inputs, f"c{rng.randrange(4)}")
        if what == "reg_own":
            name, (kind, inputs) = rng.choice(sorted(own_nodes(w).items()))
            return self.register(name, kind, inputs, self.label())
        if what == "promote":
            name = rng.choice(sorted(SHARED) + sorted(own_nodes(w)))
            labels = [v.label for v in self.reg.node(name).versions]
            return self.promote(name, rng.choice(labels))
        if what == "test":
            name = rng.choice(testable(workers) if rng.random() < 0.5 else ["M0", "M1", "P0",
                                                                          f"w{w}/model"])
            run = self.reg.record_test(name, passed=rng.random() < 0.85)
            return {"op": "test", "node": name, "version": run.version, "run": run.id,
                    "event": "test.recorded"}
        if what == "waive":
            name = rng.choice(testable(workers))
            waiver = self.reg.waive(name, reason=f"accepted by w{w}", expires="2d")
            return {"op": "waive", "node": name, "waiver": waiver.id, "event": "waiver.granted"}
        if what == "cycle":  # F0 reading M1 closes F0 -> M0 -> M1 -> F0
            return self.register("F0", "feature", ["S0", "M1"], self.label())
        if what == "conflict":  # version "1" exists with other metadata
            return self.register(f"w{w}/src", "source", [], "1", meta={"changed": w})
        if what == "unknown":
            self.reg.record_test(f"w{w}/missing", passed=True)
            raise AssertionError("an unknown node was accepted")
        raise ValueError(what)

    def plan_ops(self) -> list[str]:
        mode = self.plan["mode"]
        n = self.plan["ops"]
        if mode == "mix":
            names = [n for n, _ in WEIGHTS]
            weights = [wt for _, wt in WEIGHTS]
            return self.rng.choices(names, weights, k=n)
        return [mode] * n

    def run_op(self, what: str, i: int) -> dict[str, Any]:
        if what == "same":  # every worker registers the very same hub version
            return self.register("hub", "source", HUB_INPUTS, "2")
        if what == "race":  # each worker its own hub version, then promotions
            if i == 0:
                return self.register("hub", "source", HUB_INPUTS, f"r{self.worker}")
            labels = [v.label for v in self.reg.node("hub").versions]
            return self.promote("hub", self.rng.choice(labels))
        return self.op(what)

    def run(self) -> dict[str, Any]:
        ops = self.plan_ops()
        # Connect before the barrier, so the start is not spread by connection set-up.
        self.reg.nodes(kind="source")
        barrier = Path(self.plan["barrier"])
        (barrier / f"ready-{self.worker}").touch()
        limit = time.monotonic() + 120
        while not (barrier / "go").exists():
            if time.monotonic() > limit:
                raise SystemExit("the barrier never opened")
            time.sleep(0.005)
        started = time.monotonic()
        deadline = started + self.plan["max_seconds"]
        stopped_early = False
        for i, what in enumerate(ops):
            if time.monotonic() > deadline:
                stopped_early = True
                break
            try:
                record = self.run_op(what, i)
            except InvalidInput as e:
                key = f"{what}:{type(e).__name__}"
                self.refused[key] = self.refused.get(key, 0) + 1
                continue
            record["what"] = what
            self.done.append(record)
        self.reg.close()
        return {"worker": self.worker, "planned": len(ops), "done": self.done,
                "refused": self.refused, "stopped_early": stopped_early,
                "seconds": round(time.monotonic() - started, 3)}


def run_one(plan: dict[str, Any], worker: int) -> int:
    """Run worker ``worker`` in this process; write its result file."""
    out = Worker(plan, worker).run()
    Path(plan["out"], f"w{worker}.json").write_text(json.dumps(out))
    return 0


def launch(plan: dict[str, Any]) -> int:
    """Start every worker as its own process and wait for them.

    Where the OS can fork, the workers are forked from this process after chainml is
    imported and before any database connection exists (each child opens its own), so
    16 workers do not pay 16 interpreter start-ups on a busy 2-core runner. Elsewhere
    each worker is a fresh interpreter. Either way: one process, one Registry, one
    set of connections per worker; each worker's stderr goes to ``<out>/w<N>.stderr``
    and its exit status to ``<out>/exit.json``.
    """
    out = Path(plan["out"])
    codes: dict[int, int] = {}
    if hasattr(os, "fork"):
        pids = {}
        for w in range(plan["workers"]):
            pid = os.fork()
            if pid == 0:  # the child: never returns into the launcher
                code = 1
                try:
                    err = os.open(out / f"w{w}.stderr", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                    os.dup2(err, 2)
                    code = run_one(plan, w)
                except SystemExit as e:
                    print(e, file=sys.stderr)
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stderr.flush()
                    os._exit(code)
            pids[pid] = w
        for pid, w in pids.items():
            _, status = os.waitpid(pid, 0)
            codes[w] = os.waitstatus_to_exitcode(status)
    else:
        procs = {}
        for w in range(plan["workers"]):
            with open(out / f"w{w}.stderr", "wb") as err:
                procs[w] = subprocess.Popen(
                    [sys.executable, "-m", "tests.stress_worker", plan["plan"], str(w)],
                    stderr=err)
        codes = {w: p.wait() for w, p in procs.items()}
    (out / "exit.json").write_text(json.dumps(codes))
    return 0


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text())
    plan["plan"] = argv[0]
    if len(argv) > 1:
        return run_one(plan, int(argv[1]))
    return launch(plan)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
