#!/usr/bin/env bash
# The chainml story end to end, on the embedded SQLite default, in ./demo-out:
# register a chain, change something upstream, see the impact, watch the CI
# gate fail, record the retests, watch it pass, draw the graph.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${DEMO_OUT:-$PWD/demo-out}"
rm -rf "$out" && mkdir -p "$out" && cd "$out"
export CHAINML_ACTOR=demo
unset CHAINML_DATABASE_URL

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
expect_fail() { printf '\n\033[1m$ %s\033[0m\n' "$*"; if "$@"; then echo "(expected a failure)"; exit 1; else echo "(exit $? - as expected)"; fi; }

step chainml init
echo; echo "# 1. Register the chain (examples/chain.yaml, the docs' example)"
step chainml apply "$here/chain.yaml"
step chainml list

echo; echo "# 2. Everything that needs tests gets tested once"
for node in user_embedding ranker fraud_rules ranking_safety; do
  chainml test record "$node" --passed --link "https://ci.example/run/1" >/dev/null
done
# fraud_scorer declares two required suites: an offline evaluation and a shadow replay.
chainml test record fraud_scorer --passed --suite offline-eval >/dev/null
chainml test record fraud_scorer --passed --suite shadow >/dev/null
step chainml check

echo; echo "# 3. The raw click log is re-snapshotted: what must be retested?"
step chainml impact clicks_raw
step chainml register source clicks_raw --version 2026-11-08
expect_fail chainml check

echo; echo "# 4. Retest what the change reached"
step chainml test record user_embedding --passed
expect_fail chainml check
if command -v dot >/dev/null 2>&1; then
  step chainml graph --format png -o after-change.png   # the picture in the README
fi
step chainml test record fraud_scorer --passed --suite offline-eval
step chainml test record fraud_scorer --passed --suite shadow
for node in ranker fraud_rules ranking_safety; do
  step chainml test record "$node" --passed
done
step chainml status
step chainml check

echo; echo "# 5. See the chain"
step chainml graph -o chain.html --format html
if command -v dot >/dev/null 2>&1; then
  step chainml graph -o chain.svg
  step chainml graph -o chain.png --format png
else
  echo "(Graphviz's dot is not installed: skipping SVG/PNG; apt-get install graphviz)"
fi
step chainml graph --format mermaid -o chain.mmd
echo; echo "Done. Open $out/chain.html (or chain.svg) to see the chain."
