"""Mutation check for the model-based test: does it catch the semantics going wrong?

Each mutation below changes one line of chainml the way a plausible bug would;
the model-based test (tests/test_model_based.py, SQLite) must fail on every one.
The results are the table in docs/reliability.md. Run from the repository root:

    .venv/bin/python -m tests.mutate [--examples 100] [NAME ...]

Files are changed in place and always restored; do not edit chainml/ while it runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (name, file, original text, mutated text, what the bug would be)
MUTATIONS: list[tuple[str, str, str, str, str]] = [
    ("first-run", "chainml/rules/status.py", "return [runs[-1]], []", "return [runs[0]], []",
     "latest run chosen as the first one"),
    ("pin-crossed", "chainml/rules/graph.py",
     "        if pin is not None:\n            pairs.add((u, pin))\n        elif u not in walked:",
     "        if pin is not None:\n            pairs.add((u, pin))\n        if u not in walked:",
     "lineage crossing a pin beyond its first hop"),
    ("wrong-version", "chainml/rules/status.py",
     "return {n: tuple(sorted(set(vs))) for n, vs in out.items()}",
     "return {n: (min(vs),) for n, vs in out.items()}",
     "one version per ancestor: a reason reported for the wrong version"),
    ("waiver-newer", "chainml/rules/status.py",
     "    covered = all(_mark_triple(m) in accepted for m in marks)",
     "    covered = all(_mark_triple(m)[:2] in {a[:2] for a in accepted} for m in marks)",
     "a waiver covering a newer change of its cause"),
    ("client-time", "chainml/db/reads.py",
     "for r in sorted(rows, key=itemgetter(0)):\n        out.setdefault(r[1], [])",
     "for r in sorted(rows, key=lambda r: (str(r[4]), r[0])):\n        out.setdefault(r[1], [])",
     "latest run ordered by the writer's clock"),
    ("waiver-outlives-run", "chainml/rules/status.py",
     "        if sorted(w.runs) != runs:\n            continue\n", "",
     "a waiver not ended by a newer run of the node"),
    ("impact-crosses-pin", "chainml/db/reads.py",
     '_STEP = " WHERE e.feedback = FALSE AND e.pinned_version_id IS NULL"',
     '_STEP = " WHERE e.feedback = FALSE"',
     "impact (and marks) following pinned inputs"),
    ("structural-ignored", "chainml/rules/marks.py",
     "    return out | {n for n, _ in before ^ after}", "    return out",
     "a new version with other inputs marks only its own node as a cause"),
    ("no-rebuild-after-run", "chainml/registry.py",
     "closed = marks.rebuild(s, node, at) if v.id == node.current_version_id else 0",
     "closed = 0",
     "a test run leaves the marks as they were"),
    ("expiry-inclusive", "chainml/db/reads.py",
     'FROM waiver WHERE expires_at > ? "\n                      "AND environment_id IS NULL',
     'FROM waiver WHERE expires_at >= ? "\n                      "AND environment_id IS NULL',
     "a waiver still valid at its expiry instant"),
    ("stale-ignored", "chainml/rules/status.py",
     "if now - f.version_created_at > timedelta(seconds=f.max_age_s):",
     "if now - f.version_created_at > timedelta(seconds=f.max_age_s) * 1000:",
     "maximum age not enforced"),
    ("retire-keeps-edges", "chainml/rules/registration.py",
     "        repo.drop_edges(s, n.id)\n", "",
     "a retired node still counted downstream of its inputs"),
    ("promote-reads-retired", "chainml/rules/registration.py",
     "    gone = repo.retired_among(s, [u for u, _, _ in rows])\n    if gone:\n        raise "
     "InvalidInput(\n            f\"Version",
     "    gone = []\n    if gone:\n        raise InvalidInput(\n            f\"Version",
     "promote to a version that reads a retired node"),
    ("feedback-in-lineage", "chainml/db/reads.py",
     '"WHERE version_id = ? AND feedback = FALSE", [version_id])',
     '"WHERE version_id = ?", [version_id])',
     "feedback inputs entering the lineage"),
    ("suite-any", "chainml/rules/status.py",
     "    if not required:\n        return [runs[-1]], []",
     "    if True:\n        return [runs[-1]], []",
     "required suites ignored: the latest run of any suite decides"),
    ("kept-reaches-nothing", "chainml/environments/judge.py",
     "frozenset(_below_changed(db, changed)) if changed else frozenset())",
     "frozenset())",
     "a node page's kept environment changes reach nothing: marks trusted under skew"),
]


def run_model_test(examples: int) -> tuple[bool, float]:
    env = {**os.environ, "CHAINML_MODEL_EXAMPLES": str(examples), "CHAINML_MODEL_SHRINK": "0"}
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         "tests/test_model_based.py::test_registry_agrees_with_the_model_on_sqlite"],
        cwd=ROOT, env=env, capture_output=True, text=True)
    return out.returncode == 0, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args()
    survived = []
    for name, file, old, new, what in MUTATIONS:
        if args.names and name not in args.names:
            continue
        path = ROOT / file
        text = path.read_text()
        if text.count(old) != 1:
            print(f"{name}: the original text is not found once in {file}; update the list")
            return 2
        try:
            path.write_text(text.replace(old, new))
            passed, seconds = run_model_test(args.examples)
        finally:
            path.write_text(text)
        verdict = "SURVIVED" if passed else "killed"
        print(f"| {name} | {what} | {verdict} in {seconds:.0f} s |", flush=True)
        if passed:
            survived.append(name)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
