#!/usr/bin/env bash
# The chainml story end to end, on the embedded SQLite default, in ./demo-out:
# register a chain, change something upstream, see the impact, watch the CI
# gate fail, record the retests, watch it pass, draw the graph; then deploy it to
# staging and prod, let a lone feature hotfix skew prod, watch the deployment gate
# fail and say why, ship the fix, watch it pass, and draw what prod serves.
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

echo; echo "# 6. Ship it: the tested chain goes to staging, then prod"
release="click_features txn_features user_embedding embedding_features fraud_scorer ranker"
release="$release fraud_rules ranking_safety checkout_service feed_app"
step chainml env create staging
step chainml env create prod --after staging
# Sources are not deployed: both environments read them live.
step chainml deploy $release --env staging --link "https://ci.example/deploy/1"
step chainml deploy $release --env prod --link "https://ci.example/deploy/2"
step chainml check --env prod

echo; echo "# 7. A feature hotfix goes to prod alone: training-serving skew"
step chainml register feature txn_features --version 2.1.0
# The guard refuses a release that leaves prod serving an untested combination...
expect_fail chainml deploy txn_features --env prod
# ...so it goes out anyway, with a reason kept in the history.
step chainml deploy txn_features --env prod --force --reason "2.0.1 drops refunds; hotfix"
expect_fail chainml check --env prod
step chainml env diff staging prod

echo; echo "# 8. The fix: a scorer retrained and tested on the new feature"
step chainml register model fraud_scorer --version 5.3.0
step chainml test record fraud_scorer --passed --suite offline-eval
step chainml test record fraud_scorer --passed --suite shadow
step chainml test record fraud_rules --passed
if command -v dot >/dev/null 2>&1; then
  step chainml graph --env prod --format png -o prod-skew.png   # the picture in the README
fi
# What must prod receive to serve the registry's current, tested chain without skew?
step chainml plan --env prod --to current
step chainml deploy txn_features fraud_scorer@5.3.0 --env staging
# The release the plan names (staging got it first).
step chainml deploy fraud_scorer@5.3.0 --env prod --check
step chainml deploy fraud_scorer@5.3.0 --env prod --link "https://ci.example/deploy/3"
step chainml check --env prod
step chainml log --env prod
if command -v dot >/dev/null 2>&1; then
  step chainml graph --env prod -o prod.svg
  step chainml graph --env prod --format png -o prod.png
fi
echo; echo "Done. Open $out/chain.html (or chain.svg) to see the chain, prod.svg for what prod serves."
echo "Browse it: cd $out && chainml serve   (then http://127.0.0.1:8700/)"
