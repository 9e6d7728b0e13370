#!/usr/bin/env bash
# One device call on a lent H100: GPU parity of the staged `temper` binary, `temper bench`
# (bf16, then f32) against bench/torch_baseline.py (transformers, bf16) on the same card, and
# the ratio table. About 8 minutes; every step has its own time limit inside BUDGET_S.
#
# Here first:   bash tools/device/build_gpu_bundle.sh         (stages .device/temper)
# Device call:  command `bash tools/device/gpu_run.sh`, carry [".device"], timeout_s 600
#
# Back in $OUT (8 files): run.log (everything printed), parity.json, parity_bf16.json, torch.json,
# temper_bf16.json, temper_f32.json, gpu_mem.csv (epoch s, MiB used), ratios.md.
# A dry run of the whole flow on a CPU machine (fake nvidia-smi on PATH, tiny shapes):
#   DEVICE=cpu PYTHON=.venv-golden/bin/python SIZES="--preset tiny --prompt-len 12 \
#     --new-tokens 4 --batches 1,3 --train-batch 2 --train-len 16" bash tools/device/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-/tmp/temper-gpu-run}
mkdir -p "$OUT"
BIN=${TEMPER_BIN:-.device/temper}
BUDGET=${BUDGET_S:-540}
DEVICE=${DEVICE:-cuda}
PYTHON=${PYTHON:-python3}
SIZES=${SIZES:-}   # extra size flags for both benches (dry runs); the defaults are the issue's
START=$(date +%s)
exec > >(tee -a "$OUT/run.log") 2>&1
TEE=$!
export PYTHONUNBUFFERED=1 RUST_BACKTRACE=0

elapsed() { echo $(( $(date +%s) - START )); }
step() { echo; echo "=== [+$(elapsed)s] $*"; }
# bounded WANT_S cmd...: runs cmd under `timeout`, never past the script's budget.
bounded() {
  local want=$1; shift
  local left=$(( BUDGET - $(elapsed) - 10 ))
  local limit=$(( want < left ? want : left ))
  if (( limit < 20 )); then echo "--- skipped, budget spent: $*"; return 124; fi
  timeout --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "--- rc=$rc after $(elapsed)s (limit ${limit}s)"
  return $rc
}

step "machine"
nvidia-smi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.limit --format=csv
echo "cpus: $(nproc)"; free -g | head -2
chmod +x "$BIN" 2>/dev/null
"$BIN" --version || { echo "no runnable $BIN: run tools/device/build_gpu_bundle.sh and carry .device"; exit 1; }
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

# Whole-GPU memory in use, about 5 times a second, for per-case peaks (bench/ratios.py).
( while :; do
    printf '%s,%s\n' "$(date +%s.%N)" "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)"
    sleep 0.2
  done ) > "$OUT/gpu_mem.csv" 2>/dev/null &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null' EXIT

step "1. GPU parity: temper forward --device cuda vs transformers' golden logits (tiny fixtures, f32)"
bounded 120 "$PYTHON" tools/device/compare_logits.py --temper "$BIN" --device "$DEVICE" --timeout 100 \
  --json "$OUT/parity.json"

step "1b. bf16 parity: temper forward --device cuda --dtype bf16, drift vs transformers' own bf16"
bounded 90 "$PYTHON" tools/device/compare_logits.py --temper "$BIN" --device "$DEVICE" --dtype bf16 \
  --timeout 80 --json "$OUT/parity_bf16.json"

step "2. transformers baseline: bf16, sdpa (train also eager attention)"
# shellcheck disable=SC2086
bounded 150 "$PYTHON" bench/torch_baseline.py --device "$DEVICE" --dtype bf16 $SIZES --json "$OUT/torch.json"

step "3. temper bench, bf16 (generate samples the whole distribution, picked on the device)"
# shellcheck disable=SC2086
bounded 260 "$BIN" bench --device "$DEVICE" --dtype bf16 --sampling sample $SIZES \
  --cases sampler,train,prefill,decode,decode-profile,generate --json "$OUT/temper_bf16.json"

if [ "${F32:-0}" = 1 ]; then
  step "4. temper bench, f32 (no generate: the bf16 run has it)"
  # shellcheck disable=SC2086
  bounded 200 "$BIN" bench --device "$DEVICE" --dtype f32 $SIZES --cases prefill,decode,train \
    --json "$OUT/temper_f32.json"
else
  step "4. temper bench, f32: skipped (F32=1 runs it)"
fi

step "5. ratios"
kill $SAMPLER 2>/dev/null
f32_report=()
[ -f "$OUT/temper_f32.json" ] && f32_report=(--temper "$OUT/temper_f32.json")
"$PYTHON" bench/ratios.py --torch "$OUT/torch.json" --temper "$OUT/temper_bf16.json" \
  "${f32_report[@]}" --gpu-mem "$OUT/gpu_mem.csv" | tee "$OUT/ratios.md"
step "done"
exec >&- 2>&-
wait "$TEE" 2>/dev/null
