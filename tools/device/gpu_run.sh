#!/usr/bin/env bash
# One device call on a lent H100: GPU parity of the staged `temper` binary, `temper bench`
# (bf16, then f32) against bench/torch_baseline.py (transformers, bf16) on the same card, and
# the ratio table. About 8 minutes; every step has its own time limit inside BUDGET_S.
#
# Here first:   bash tools/device/build_gpu_bundle.sh         (stages .device/temper.gz)
# Device call:  command `bash tools/device/gpu_run.sh`, carry [".device"], timeout_s 600
#
# Back in $OUT (8 files): run.log (everything printed), parity.json, parity_bf16.json, torch.json,
# temper_bf16.json, temper_f32.json, gpu_mem.csv (epoch s, MiB used), ratios.md.
#
# MODE=cublas (about 8 minutes) tests the cuBLAS matmul path instead of comparing with torch:
# parity (f32 and bf16, now through cuBLAS), `temper bench --cases matmul` (burn vs cuBLAS on the 2B's
# GEMM shapes, plus the cuBLAS correctness checks in f32 and bf16, forward and gradients; a
# failed check makes that step exit non-zero), and an A/B of prefill/decode/train with
# TEMPER_CUBLAS=0 (burn's matmul) against the default (cuBLAS). Files: run.log, parity.json,
# parity_bf16.json, matmul_bf16.json, ab_burn.json, ab_cublas.json, ab.md, gpu_mem.csv.
#   Device call:  command `MODE=cublas bash tools/device/gpu_run.sh`, carry [".device"]
#   Dry run here: as below with MODE=cublas and DEVICE=cpu; --dtype bf16 then runs on the CPU.
# Both modes first look for libcublas (system, /usr/local/cuda*, then Python site-packages,
# e.g. torch's nvidia wheels) and put its directory on LD_LIBRARY_PATH if the loader lacks it.
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
MODE=${MODE:-full} # full | cublas (see above)
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
# build_gpu_bundle.sh stages the binary gzipped (the carry limit is 64 MiB).
if [ ! -f "$BIN" ] && [ -f "$BIN.gz" ]; then
  gzip -dc "$BIN.gz" > "$BIN" 2>/dev/null \
    || "$PYTHON" -c 'import gzip, shutil, sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$BIN.gz" "$BIN"
fi
chmod +x "$BIN" 2>/dev/null
"$BIN" --version || { echo "no runnable $BIN: run tools/device/build_gpu_bundle.sh and carry .device"; exit 1; }
"$PYTHON" -c "import torch, transformers; print('torch', torch.__version__, '| transformers', transformers.__version__, '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"

step "libcublas (the cuBLAS matmul path dlopens it; without it temper falls back to burn's matmul)"
if ldconfig -p 2>/dev/null | grep -q 'libcublas\.so'; then
  ldconfig -p | grep 'libcublas\.so' | head -3
else
  found=""
  for dir in /usr/local/cuda/lib64 /usr/local/cuda-*/lib64 /usr/local/cuda/targets/*/lib \
      $("$PYTHON" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null); do
    lib=$(find "$dir" -name 'libcublas.so*' 2>/dev/null | sort | head -1)
    if [ -n "$lib" ]; then found=$(dirname "$lib"); break; fi
  done
  if [ -n "$found" ]; then
    export LD_LIBRARY_PATH="$found${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "libcublas not on the loader path; using $found"; ls "$found" | grep -i cublas
  else
    echo "WARNING: no libcublas found: the cuBLAS path will report unavailable and use burn's matmul"
  fi
fi

# Whole-GPU memory in use, about 5 times a second, for per-case peaks (bench/ratios.py).
( while :; do
    printf '%s,%s\n' "$(date +%s.%N)" "$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -1)"
    sleep 0.2
  done ) > "$OUT/gpu_mem.csv" 2>/dev/null &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null' EXIT

if [ "$MODE" = cublas ]; then
  step "1. GPU parity through cuBLAS: temper forward --device cuda vs transformers' golden logits (f32)"
  bounded 90 "$PYTHON" tools/device/compare_logits.py --temper "$BIN" --device "$DEVICE" --timeout 80 \
    --json "$OUT/parity.json"

  step "1b. bf16 parity through cuBLAS: drift vs transformers' own bf16"
  bounded 70 "$PYTHON" tools/device/compare_logits.py --temper "$BIN" --device "$DEVICE" --dtype bf16 \
    --timeout 60 --json "$OUT/parity_bf16.json"

  step "2. temper bench --cases matmul (bf16): burn vs cuBLAS per GEMM shape, then the cuBLAS checks"
  # shellcheck disable=SC2086
  RUST_LOG=temper_model=info,warn bounded 130 "$BIN" bench --device "$DEVICE" --dtype bf16 $SIZES \
    --cases matmul --json "$OUT/matmul_bf16.json"

  step "3. A/B: prefill, decode, train (bf16) with burn's matmul (TEMPER_CUBLAS=0)"
  # Smaller than the full run so both sides fit; a dry run's SIZES win.
  AB_SIZES=${AB_SIZES:-${SIZES:---batches 1,64 --new-tokens 48 --repeats 2 --train-steps 2}}
  # shellcheck disable=SC2086
  TEMPER_CUBLAS=0 bounded 120 "$BIN" bench --device "$DEVICE" --dtype bf16 $AB_SIZES \
    --cases prefill,decode,train --json "$OUT/ab_burn.json"

  step "4. A/B: the same with cuBLAS (default)"
  # shellcheck disable=SC2086
  RUST_LOG=temper_model=info,warn bounded 120 "$BIN" bench --device "$DEVICE" --dtype bf16 \
    $AB_SIZES --cases prefill,decode,train --json "$OUT/ab_cublas.json"

  step "5. A/B table"
  kill $SAMPLER 2>/dev/null
  "$PYTHON" - "$OUT/ab_burn.json" "$OUT/ab_cublas.json" <<'PY' | tee "$OUT/ab.md"
import json, sys
def cases(path):
    try:
        return {c["case"]: c for c in json.load(open(path)).get("cases", [])}
    except (OSError, ValueError):
        return {}
burn, cublas = cases(sys.argv[1]), cases(sys.argv[2])
print("| case | burn tokens/s | cuBLAS tokens/s | cuBLAS/burn |")
print("|---|---|---|---|")
for name in list(burn) + [n for n in cublas if n not in burn]:
    b = (burn.get(name) or {}).get("tokens_per_s")
    c = (cublas.get(name) or {}).get("tokens_per_s")
    ratio = f"{c / b:.2f}x" if b and c else "n/a"
    fmt = lambda v: f"{v:.1f}" if isinstance(v, (int, float)) else "missing"
    print(f"| {name} | {fmt(b)} | {fmt(c)} | {ratio} |")
PY
  step "done"
  exec >&- 2>&-
  wait "$TEE" 2>/dev/null
  exit 0
fi

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
