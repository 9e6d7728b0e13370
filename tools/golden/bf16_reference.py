"""bf16 reference logits: transformers runs each dense fixture's golden cases in bfloat16.

Writes `golden_bf16.safetensors` beside each fixture's `golden.safetensors`, holding
`{case}.logits` (float32 copies of the bf16 model's logits) and `{case}.token_logprobs`
(log_softmax of those, upcast, at the next input id) for every case. The Rust test
`model/tests/bf16.rs` compares Temper's bf16 forward with them and with the float32 golden
logits: how far bf16 may drift from float32 is measured on transformers' own bf16 run, not
guessed.

transformers in bf16 (eager attention): weights, activations and matmul outputs are bf16;
RMSNorm normalises in float32 and casts back before its weight; attention softmax runs in
float32 (`softmax(..., dtype=float32).to(bf16)`); RoPE's cos/sin are computed in float32 and
cast to bf16. CPU, single thread, deterministic.

Run: .venv-golden/bin/python tools/golden/bf16_reference.py   (about 10 s)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import Qwen3VLForConditionalGeneration

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ("qwen3vl-tiny-a", "qwen3vl-tiny-b")
MODEL_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw",
              "pixel_values_videos", "video_grid_thw")
FLOAT_KEYS = ("pixel_values", "pixel_values_videos")


def cases(golden: dict[str, torch.Tensor]) -> list[str]:
    return sorted({k.split(".")[0] for k in golden if k.endswith(".logits")})


def run(model, golden: dict[str, torch.Tensor], case: str, dtype: torch.dtype) -> torch.Tensor:
    inputs = {}
    for key in MODEL_KEYS:
        value = golden.get(f"{case}.{key}")
        if value is not None:
            inputs[key] = value.to(dtype) if key in FLOAT_KEYS else value
    with torch.no_grad():
        out = model(**inputs, position_ids=golden[f"{case}.position_ids"], use_cache=False)
    return out.logits.float()


def masked_max(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return (a - b).abs()[mask.bool()].max().item()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path, default=ROOT / "model/tests/data")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    summary = {}
    for name in FIXTURES:
        folder = args.data / name
        golden = load_file(folder / "golden.safetensors")
        f32 = Qwen3VLForConditionalGeneration.from_pretrained(
            folder, dtype=torch.float32, attn_implementation="eager").eval()
        bf16 = Qwen3VLForConditionalGeneration.from_pretrained(
            folder, dtype=torch.bfloat16, attn_implementation="eager").eval()
        out = {}
        for case in cases(golden):
            mask = golden[f"{case}.attention_mask"]
            reference = golden[f"{case}.logits"]
            again = run(f32, golden, case, torch.float32)
            # The float32 model must reproduce the checked-in golden logits first.
            assert masked_max(again, reference, mask) < 1e-4, f"{name}/{case}: f32 rerun drifts"
            logits = run(bf16, golden, case, torch.bfloat16)
            out[f"{case}.logits"] = logits.contiguous()
            # What a learner scores: log_softmax of the f32-upcast bf16 logits at the next ids.
            ids = golden[f"{case}.input_ids"]
            logp = torch.log_softmax(logits[:, :-1], dim=-1)
            out[f"{case}.token_logprobs"] = logp.gather(2, ids[:, 1:, None])[..., 0].contiguous()
            summary[f"{name}/{case}"] = round(masked_max(logits, reference, mask), 5)
        save_file(out, folder / "golden_bf16.safetensors",
                  metadata={"producer": "tools/golden/bf16_reference.py",
                            "torch": torch.__version__,
                            "dtype": "bfloat16 (logits stored as float32)"})
    print("max |bf16 - f32| logits per case:", json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
