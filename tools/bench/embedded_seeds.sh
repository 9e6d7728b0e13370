#!/usr/bin/env bash
# The embedded default's acceptance check (issue 12, item 8): for each seed, `temper train
# --config configs/tiny.toml` must finish within 10 minutes wall time on the 2-core machine with a
# final held-out accuracy at least 15 points above the after-SFT accuracy AND at least 70%. Runs
# the seeds one after another (never in parallel: the wall time is part of the check) and prints
# one table row per run; say how the machine was loaded when you quote it.
#
#   bash tools/bench/embedded_seeds.sh [SEEDS...]          (default: seeds 0-4 × GSPO, SAPO: ten runs)
#   LOSS=sapo bash tools/bench/embedded_seeds.sh 1 2 3    (the objective of the listed seeds)
#   EXTRA="--set rl.dynamic_sampling.max_rounds=1" bash tools/bench/embedded_seeds.sh 1 2 3
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
OUT=${OUT:-runs/bench-embedded}
mkdir -p "$OUT"
seeds=("$@")
runs=()
if [ ${#seeds[@]} -eq 0 ]; then
  for loss in gspo sapo; do for s in 0 1 2 3 4; do runs+=("$s $loss"); done; done
else
  for s in "${seeds[@]}"; do runs+=("$s ${LOSS:-gspo}"); done
fi
printf '| seed | loss | initial | after SFT | final | gain (points) | wall s | pass |\n|---|---|---|---|---|---|---|---|\n'
for run in "${runs[@]}"; do
  read -r seed loss <<<"$run"
  dir="$OUT/seed$seed-$loss"
  rm -rf "$dir"
  # shellcheck disable=SC2086
  ./target/release/temper train --config configs/tiny.toml --run-dir "$dir" --no-progress \
    --set seed="$seed" --set rl.loss.kind="$loss" ${EXTRA:-} >"$dir.log" 2>&1 || {
      echo "| $seed | $loss | run failed: see $dir.log |"; continue; }
  python3 - "$dir/summary.json" "$seed" "$loss" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
gain = 100 * (s["eval_accuracy_final"] - s["eval_accuracy_after_sft"])
ok = gain >= 15 and s["eval_accuracy_final"] >= 0.70 and s["wall_seconds"] <= 600
print(f"| {sys.argv[2]} | {sys.argv[3]} | {100*s['eval_accuracy_initial']:.1f}% | "
      f"{100*s['eval_accuracy_after_sft']:.1f}% | {100*s['eval_accuracy_final']:.1f}% | "
      f"{gain:+.1f} | {s['wall_seconds']:.0f} | {'yes' if ok else 'NO'} |")
PY
done
