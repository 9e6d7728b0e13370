#!/usr/bin/env bash
# GPU parity check, run on a lent CUDA machine in one call. Build here first (no CUDA needed):
#   CUDARC_CUDA_VERSION=13000 cargo test --release --features cuda --no-run --target-dir target/cuda \
#       --test parity --test cli --test cublas 2>&1 | grep -o 'target/cuda/release/deps/[a-z_]*-[0-9a-f]*' > target/cuda/test-bins
# then carry `target/cuda` and run this script there. It runs the golden parity tests on the GPU
# (f32) through the library and through `temper forward --device cuda`, and the cuBLAS checks
# (model/tests/cublas.rs). tools/device/gpu_run.sh MODE=cublas covers the same from the bundle.
set -uo pipefail
cd "$(dirname "$0")/../.."
export TEMPER_REPO_ROOT=$PWD
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
status=0
for bin in $(cat target/cuda/test-bins); do
  case "$bin" in
    *parity-*) "$bin" --ignored --nocapture cuda_forward || status=1 ;;
    *cli-*) TEMPER_BIN=target/cuda/release/temper TEMPER_TEST_DEVICE=cuda "$bin" --nocapture forward_writes || status=1 ;;
    *cublas-*) "$bin" --ignored --nocapture || status=1 ;;
  esac
done
exit $status
