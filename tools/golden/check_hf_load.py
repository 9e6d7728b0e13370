#!/usr/bin/env python3
"""Load a Qwen3-VL checkpoint directory into HF transformers and compare its logits.

Proves that a checkpoint (e.g. one saved by the Rust side) loads back into transformers and
computes the expected logits.

    .venv-golden/bin/python tools/golden/check_hf_load.py DIR --inputs IN.safetensors \
        --expect OUT.safetensors [--tol 1e-4] [--prefix CASE.] [--save-logits FILE]

DIR           config.json + model.safetensors, or sharded model-XXXXX-of-YYYYY.safetensors with
              model.safetensors.index.json; any float dtype (bf16 weights are upcast to --dtype).
              Both config styles load: transformers-5 (`rope_parameters`) and the hub/4.57 style
              (`rope_theta` + `rope_scaling`). MoE expert tensors may be in the hub layout
              (E, D, 2I)/(E, I, D) or the transformers layout (E, 2I, D)/(E, D, I).
--inputs      safetensors with `input_ids` (B, L) and optionally `attention_mask` (B, L; default all
              ones), `position_ids` (3, B, L; default: computed with get_rope_index, padding aware),
              `mm_token_type_ids` (default: derived from image/video token ids in config),
              `pixel_values` + `image_grid_thw`, `pixel_values_videos` + `video_grid_thw`.
--expect      safetensors with `logits` (B, L, V). Compared only where attention_mask == 1.
--prefix      key prefix in both files (e.g. `image.` to use a fixture's golden.safetensors directly).

Prints the max-abs difference; exit status 0 if it is <= --tol, 1 if above, 2 on a load error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from safetensors import safe_open


def load_tensors(path: Path, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    with safe_open(str(path), "pt") as f:
        for k in f.keys():
            if k.startswith(prefix):
                out[k[len(prefix):]] = f.get_tensor(k)
    return out


def model_class(model_type: str):
    from transformers import Qwen3VLForConditionalGeneration, Qwen3VLMoeForConditionalGeneration

    classes = {"qwen3_vl": Qwen3VLForConditionalGeneration, "qwen3_vl_moe": Qwen3VLMoeForConditionalGeneration}
    if model_type not in classes:
        raise SystemExit(f"unsupported model_type {model_type!r} (expected one of {sorted(classes)})")
    return classes[model_type]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--inputs", type=Path, required=True)
    ap.add_argument("--expect", type=Path, required=True)
    ap.add_argument("--prefix", default="", help="key prefix in --inputs and --expect (e.g. 'image.')")
    ap.add_argument("--tol", type=float, default=1e-4, help="max allowed abs logit difference (default 1e-4)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="dtype to run the model in (default float32; bf16 checkpoints are upcast)")
    ap.add_argument("--attn", default="eager", choices=["eager", "sdpa"])
    ap.add_argument("--save-logits", type=Path, help="write the transformers logits here (key `logits`)")
    args = ap.parse_args()

    import transformers
    from safetensors.torch import save_file

    torch.set_num_threads(1)  # small models; makes results reproducible bit-for-bit
    cfg_path = args.dir / "config.json"
    if not cfg_path.is_file():
        print(f"error: {cfg_path} not found", file=sys.stderr)
        return 2
    cfg = json.loads(cfg_path.read_text())
    cls = model_class(cfg.get("model_type", ""))
    dtype = getattr(torch, args.dtype)
    kw = {"attn_implementation": args.attn, "dtype": dtype}
    if cfg.get("model_type") == "qwen3_vl_moe":
        kw["experts_implementation"] = "eager"
    try:
        model, info = cls.from_pretrained(args.dir, output_loading_info=True, **kw)
        model.eval()
    except Exception as e:  # noqa: BLE001 - report any load failure
        print(f"error: transformers {transformers.__version__} failed to load {args.dir}: {e!r}", file=sys.stderr)
        return 2
    # Refuse silently missing / re-initialised weights: every parameter must come from the files.
    n_params = sum(p.numel() for p in model.parameters())
    print(f"loaded {cls.__name__} from {args.dir} ({n_params} parameters, dtype {args.dtype}, attn {args.attn})")

    index = args.dir / "model.safetensors.index.json"
    if index.is_file():
        weight_files = sorted({args.dir / f for f in json.loads(index.read_text())["weight_map"].values()})
    else:
        weight_files = [args.dir / "model.safetensors"]
    stored = set()
    for wf in weight_files:
        with safe_open(str(wf), "pt") as f:
            stored.update(f.keys())
    expected = set(model.state_dict().keys())
    if model.config.tie_word_embeddings if hasattr(model.config, "tie_word_embeddings") else False:
        expected.discard("lm_head.weight")
    missing = sorted(expected - stored)
    unexpected = sorted(stored - expected)
    if missing or unexpected:
        print(f"error: checkpoint keys differ from {cls.__name__}: missing {missing[:10]}"
              f"{'...' if len(missing) > 10 else ''}, unexpected {unexpected[:10]}"
              f"{'...' if len(unexpected) > 10 else ''}", file=sys.stderr)
        return 2
    if info:
        for k in ("missing_keys", "unexpected_keys", "mismatched_keys"):
            if info.get(k):
                print(f"error: from_pretrained reported {k}: {sorted(info[k])[:10]}", file=sys.stderr)
                return 2

    inp = load_tensors(args.inputs, args.prefix)
    exp = load_tensors(args.expect, args.prefix)
    if "input_ids" not in inp:
        print(f"error: no '{args.prefix}input_ids' in {args.inputs}", file=sys.stderr)
        return 2
    if "logits" not in exp:
        print(f"error: no '{args.prefix}logits' in {args.expect}", file=sys.stderr)
        return 2
    ids = inp["input_ids"].long()
    mask = inp.get("attention_mask", torch.ones_like(ids)).long()
    mm = inp.get("mm_token_type_ids")
    if mm is None:
        mm = (ids == model.config.image_token_id).long() + 2 * (ids == model.config.video_token_id).long()
    mm = mm.long()
    fwd = {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": mm}
    for k in ("pixel_values", "pixel_values_videos"):
        if k in inp:
            fwd[k] = inp[k].to(dtype)
    for k in ("image_grid_thw", "video_grid_thw"):
        if k in inp:
            fwd[k] = inp[k].long()
    pos = inp.get("position_ids")
    if pos is None:
        pos, _ = model.model.get_rope_index(
            ids, mm_token_type_ids=mm, image_grid_thw=fwd.get("image_grid_thw"),
            video_grid_thw=fwd.get("video_grid_thw"), attention_mask=mask,
        )
        print("position_ids not given: computed with get_rope_index (padding aware)")
    with torch.no_grad():
        logits = model(**fwd, position_ids=pos.long(), use_cache=False).logits.float()
    if args.save_logits:
        save_file({"logits": logits.contiguous()}, str(args.save_logits))
    want = exp["logits"].float()
    if want.shape != logits.shape:
        print(f"error: logits shape {tuple(logits.shape)} != expected {tuple(want.shape)}", file=sys.stderr)
        return 1
    m = mask.bool()
    diff = (logits[m] - want[m]).abs()
    max_diff = diff.max().item() if diff.numel() else 0.0
    arg_agree = (logits[m].argmax(-1) == want[m].argmax(-1)).float().mean().item() if diff.numel() else 1.0
    print(f"max_abs_diff {max_diff:.3e} (mean {diff.mean().item():.3e}) over {int(m.sum())} positions; "
          f"argmax agreement {arg_agree:.4f}; tol {args.tol:g}")
    if not (max_diff <= args.tol):
        print("FAIL")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
