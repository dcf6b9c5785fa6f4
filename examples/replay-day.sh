#!/usr/bin/env bash
# Pipelines report themselves (docs/ingestion.md): replay a day of a food-delivery
# company's OpenLineage events (Airflow-style START/COMPLETE pairs) into the demo
# registry, test the model the day trained, then replay the next day: new data and a
# retrained model, whose new code reads a table it never declared. Run after `make demo`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${DEMO_OUT:-$PWD/demo-out}"
[ -f "$out/.chainml/registry.db" ] || { echo "No demo registry in $out: run 'make demo' first."; exit 2; }
cd "$out"
export CHAINML_ACTOR=airflow
unset CHAINML_DATABASE_URL

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
expect_fail() { printf '\n\033[1m$ %s\033[0m\n' "$*"; if "$@"; then echo "(expected a failure)"; exit 1; else echo "(exit $? - as expected)"; fi; }

echo "# 1. The night of 2026-11-01: every task reports its run (one FAIL, retried tomorrow)"
step chainml ingest "$here/../tests/data/importers/food_delivery.jsonl" --mapping "$here/chainml-mapping.yaml"
step chainml show train_delivery_eta
echo; echo "# The model trained that night is evaluated"
step chainml test record train_delivery_eta --passed --link https://ci.example/eta/1
step chainml check train_delivery_eta

echo; echo "# 2. Events arrive at least once: the same night again changes nothing"
step chainml ingest "$here/../tests/data/importers/food_delivery.jsonl" --mapping "$here/chainml-mapping.yaml"

echo; echo "# 3. The night of 2026-11-02: new orders; the model is retrained on them by the"
echo "#    same code, which a feature flag now lets read a table it never declared"
step chainml ingest "$here/events/day-2.jsonl" --mapping "$here/chainml-mapping.yaml"
expect_fail chainml check train_delivery_eta
step chainml show train_delivery_eta

echo; echo "# 4. The retrained model is evaluated: the gate passes, but the hidden read shows"
step chainml test record train_delivery_eta --passed --link https://ci.example/eta/2
step chainml check train_delivery_eta --observed
expect_fail chainml check train_delivery_eta --observed --strict

echo; echo "# 5. Its owner declares the input (a new version of the model's definition) and"
echo "#    evaluates it: nothing hidden is left"
step chainml register model train_delivery_eta --version 9f3c2a1b-declared --input public.orders_7_days --input public.customers
step chainml test record train_delivery_eta --passed --link https://ci.example/eta/3
step chainml check train_delivery_eta --observed --strict
