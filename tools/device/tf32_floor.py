#!/usr/bin/env python3
"""The TF32 noise floor of the GPU parity check.

burn's CUDA matmul runs f32 inputs through tensor cores as TF32 (cubek-matmul 0.2
`adjust_dtypes`: f32 global → tf32 stage/register when the device supports it), like torch with
`torch.backends.cuda.matmul.allow_tf32 = True`. This script runs transformers itself on the same
GPU, in f32 with TF32 off and on, over every golden case of the tiny fixtures, and prints max
|Δlogit| against the stored (CPU, f32) golden logits: the TF32-on column is the error an exact
implementation shows on this card at TF32 matmul precision, to set beside temper's parity.json.

    python3 tools/device/tf32_floor.py --json tf32_floor.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from transformers import AutoModelForImageTextToText

REPO = Path(__file__).resolve().parent.parent.parent
INPUT_NAMES = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw",
               "pixel_values_videos", "video_grid_thw")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixtures", default="qwen3vl-tiny-a,qwen3vl-tiny-b,qwen3vl-tiny-moe")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    rows = []
    print("| case | torch f32 (TF32 off) | torch f32 (TF32 on) |")
    print("|---|---|---|")
    for fx in args.fixtures.split(","):
        fixture = REPO / "model/tests/data" / fx
        golden = load_file(str(fixture / "golden.safetensors"))
        cases = json.loads((fixture / "cases.json").read_text())["cases"].keys()
        try:
            model = AutoModelForImageTextToText.from_pretrained(
                fixture, dtype=torch.float32, attn_implementation="eager").cuda().eval()
        except Exception as e:  # a transformers version that cannot load the fixture
            print(f"| {fx} | could not load: {str(e)[:200]} | |")
            continue
        for case in cases:
            inputs = {}
            for n in INPUT_NAMES:
                key = f"{case}.{n}"
                if key in golden:
                    t = torch.from_numpy(np.ascontiguousarray(golden[key]))
                    t = t.float() if n.startswith("pixel") else t.long()
                    inputs[n] = t.cuda()
            # transformers ≥ 5.17 wants the processor's token types (0 text, 1 image, 2 video).
            ids = inputs["input_ids"]
            types = torch.zeros_like(ids)
            types[ids == model.config.image_token_id] = 1
            types[ids == model.config.video_token_id] = 2
            inputs["mm_token_type_ids"] = types
            mask = golden[f"{case}.attention_mask"].astype(bool)
            expected = golden[f"{case}.logits"]
            row = {"case": f"{fx}/{case}"}
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                try:
                    with torch.no_grad():
                        logits = model(**inputs).logits.float().cpu().numpy()
                except Exception as e:
                    print(f"| {row['case']} | failed: {str(e)[:200]} | |")
                    break
                row["tf32_on" if tf32 else "tf32_off"] = float(np.abs(logits - expected)[mask].max())
            if "tf32_on" not in row:
                continue
            rows.append(row)
            print(f"| {row['case']} | {row['tf32_off']:.2e} | {row['tf32_on']:.2e} |")
    if args.json:
        args.json.write_text(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                                         "cases": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
