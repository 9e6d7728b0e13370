#!/usr/bin/env bash
# Proves checkpoints written by Temper load back into transformers: for every fixture case,
# `temper convert` re-saves the fixture (bf16, sharded), `temper forward` runs it, and
# transformers loads the same files and must produce the same logits.
#   bash tools/golden/setup_venv.sh && bash tools/golden/roundtrip_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=.venv-golden/bin/python
cargo build --release --quiet
T=target/release/temper
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for fixture in model/tests/data/qwen3vl-tiny-*/; do
  name=$(basename "$fixture")
  "$T" convert --model "$fixture" --out "$work/$name" --dtype bf16 --max-shard-mib 0 2>/dev/null
  shards=$(ls "$work/$name"/model-*.safetensors | wc -l)
  for case in $($PY -c "import json,sys; print(' '.join(json.load(open('$fixture/cases.json'))['cases']))"); do
    $PY - "$fixture/golden.safetensors" "$case" "$work/in.safetensors" <<'PYEOF'
import sys
from safetensors.torch import load_file, save_file
golden, case, out = sys.argv[1:]
names = ["input_ids", "attention_mask", "pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw"]
t = load_file(golden)
save_file({n: t[f"{case}.{n}"].contiguous() for n in names if f"{case}.{n}" in t}, out)
PYEOF
    "$T" forward --model "$work/$name" --inputs "$work/in.safetensors" --out "$work/ours.safetensors" 2>/dev/null
    printf '%s/%s (bf16, %s shards): ' "$name" "$case" "$shards"
    out=$($PY tools/golden/check_hf_load.py "$work/$name" --inputs "$work/in.safetensors" \
      --expect "$work/ours.safetensors" --tol 1e-4 2>&1) || { echo "FAILED"; echo "$out"; exit 1; }
    echo "$out" | grep -E "max_abs_diff"
  done
done
