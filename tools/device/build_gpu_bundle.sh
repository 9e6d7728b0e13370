#!/usr/bin/env bash
# Builds the CUDA `temper` binary here (no GPU or CUDA toolkit needed: libcuda, NVRTC and
# cuBLAS are loaded at run time) and stages it, stripped and gzipped, as .device/temper.gz for
# tools/device/gpu_run.sh, which unpacks it. The device call then carries [".device"] (carry
# limit: 64 MiB for the whole working tree plus carried files; the release binary is ~370 MB
# with debug info and ~82 MiB stripped — lingua's n-gram models are ~35 MB of it — which
# gzip brings to ~32 MiB).
#
#   bash tools/device/build_gpu_bundle.sh          # ~6 min incremental, 15-20 min cold, 2 cores
#
# Environment: FEATURES (default `cuda,burn/autotune`: burn is a default-features=false
# dependency, so burn-cuda's own default `autotune` is off unless asked for; autotune picks
# matmul/reduce kernels per shape as burn does by default), TARGET_DIR (default target/cuda),
# CARGO_FLAGS (e.g. --offline).
set -euo pipefail
cd "$(dirname "$0")/../.."

FEATURES=${FEATURES:-cuda,burn/autotune}
TARGET_DIR=${TARGET_DIR:-target/cuda}
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
# Recorded in `temper bench --json` (build_features).
export TEMPER_BUILD_FEATURES="$FEATURES"

# (`git rev-parse --git-path`: in a worktree .git is a file.)
exclude=$(git rev-parse --git-path info/exclude 2>/dev/null || true)
if [ -n "$exclude" ] && [ -d "$(dirname "$exclude")" ] && ! grep -qx '/.device/' "$exclude" 2>/dev/null; then
  echo '/.device/' >> "$exclude"
fi

echo "building: cargo build --release --features $FEATURES --target-dir $TARGET_DIR ${CARGO_FLAGS:-}"
start=$(date +%s)
# shellcheck disable=SC2086
cargo build --release --features "$FEATURES" --target-dir "$TARGET_DIR" ${CARGO_FLAGS:-}
echo "built in $(( $(date +%s) - start )) s"

mkdir -p .device
strip --strip-all -o .device/temper.tmp "$TARGET_DIR/release/temper"
chmod +x .device/temper.tmp
echo "stripped: $(( $(stat -c %s .device/temper.tmp) / 1048576 )) MiB (unstripped $(( $(stat -c %s "$TARGET_DIR/release/temper") / 1048576 )) MiB)"

# It must run here too (CPU backend) and say clearly that there is no GPU.
.device/temper.tmp --help > /dev/null
.device/temper.tmp bench --device cpu --preset tiny --cases prefill,matmul --prompt-len 8 --batches 1 \
  --repeats 1 --train-batch 1 --train-len 64 > /dev/null 2>&1 || { echo "staged binary failed a CPU bench"; exit 1; }

# Only the compressed binary travels; gpu_run.sh unpacks it to .device/temper.
gzip -6 -c .device/temper.tmp > .device/temper.gz.tmp
mv .device/temper.gz.tmp .device/temper.gz
rm -f .device/temper.tmp .device/temper
size=$(stat -c %s .device/temper.gz)
echo "staged .device/temper.gz: $(( size / 1048576 )) MiB"

# What the device call would send: tracked + untracked-not-ignored files, plus .device.
tree=0
if git rev-parse --is-inside-work-tree > /dev/null 2>&1; then
  tree=$(git ls-files -z --cached --others --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)
fi
total=$(( tree + size ))
echo "working tree ~$(( tree / 1048576 )) MiB + .device $(( size / 1048576 )) MiB = $(( total / 1048576 )) MiB of 64 MiB"
if (( size > 50 * 1048576 )); then
  echo "WARNING: the compressed binary is over 50 MiB"; exit 1
fi
if (( total > 62 * 1048576 )); then
  echo "WARNING: too close to the 64 MiB carry limit"; exit 1
fi
