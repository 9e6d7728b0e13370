#!/usr/bin/env python3
"""PyTorch / transformers baseline for `temper bench`: the same model shape, prompts and cases.

Builds `Qwen3VLForConditionalGeneration` from a config of the same shape as `temper bench
--preset` (random weights, HF's own init), on one device, in bf16 by default, and measures:

- prefill_b{B}:          one forward over a B x prompt batch with use_cache=True and
                         logits_to_keep=1 (Temper's prefill also computes only the last logits);
- generate_{mode}_b{B}:  model.generate, exactly --new-tokens per row (no EOS), mode `sample`
                         (do_sample=True, temperature 1, top_k=0, top_p=1) or `greedy`;
                         decode time = generate(N) - generate(1), as in temper bench;
- train_{R}x{L}[_eager]: forward with labels (mean token NLL, logits upcast to f32 by HF) +
                         backward, with the default (sdpa) attention and, if asked, eager.

Peak memory per case: torch.cuda.max_memory_allocated / max_memory_reserved; each case also
records its wall-clock window (start_unix / end_unix) so an nvidia-smi sampler can be matched to
it (tools/device/gpu_run.sh). `--json` is rewritten after every case.

    python3 bench/torch_baseline.py --device cuda --json torch.json
    python3 bench/torch_baseline.py --device cpu --preset tiny --prompt-len 12 --new-tokens 4 \
        --batches 1,3 --train-batch 2 --train-len 16      # a quick CPU check
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
TINY_CONFIG = REPO / "model/tests/data/qwen3vl-tiny-a/config.json"

# Qwen3-VL-2B-Instruct's shape; the same numbers as `qwen3vl_2b_config` in cli/src/bench.rs.
QWEN3VL_2B = {
    "model_type": "qwen3_vl",
    "architectures": ["Qwen3VLForConditionalGeneration"],
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "tie_word_embeddings": True,
    "text_config": {
        "model_type": "qwen3_vl_text",
        "vocab_size": 151936,
        "hidden_size": 2048,
        "intermediate_size": 6144,
        "num_hidden_layers": 28,
        "num_attention_heads": 16,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "rms_norm_eps": 1e-6,
        "max_position_embeddings": 262144,
        "hidden_act": "silu",
        "attention_bias": False,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5000000.0,
            "mrope_section": [24, 20, 20],
            "mrope_interleaved": True,
        },
    },
    "vision_config": {
        "model_type": "qwen3_vl_vision",
        "depth": 24,
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_heads": 16,
        "in_channels": 3,
        "patch_size": 16,
        "temporal_patch_size": 2,
        "spatial_merge_size": 2,
        "out_hidden_size": 2048,
        "num_position_embeddings": 2304,
        "deepstack_visual_indexes": [5, 11, 17],
        "hidden_act": "gelu_pytorch_tanh",
    },
}


def csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def csv_words(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", choices=["2b", "tiny"], default="2b")
    p.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    p.add_argument("--cases", type=csv_words, default=["prefill", "generate", "train"],
                   help="comma list of prefill,generate,train, run in this order")
    p.add_argument("--prompt-len", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    p.add_argument("--batches", type=csv_ints, default=[1, 16, 64])
    p.add_argument("--generate-batches", type=csv_ints, default=None, help="default: --batches")
    p.add_argument("--sampling", type=csv_words, default=["sample", "greedy"],
                   help="generate modes: sample (do_sample, T=1, top_k=0, top_p=1) and/or greedy")
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--train-len", type=int, default=1024)
    p.add_argument("--train-steps", type=int, default=2)
    p.add_argument("--train-attn", type=csv_words, default=["sdpa", "eager"],
                   help="attention implementations for the train case (first one also runs prefill/generate)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.new_tokens < 2:
        p.error("--new-tokens must be at least 2")
    for mode in args.sampling:
        if mode not in ("sample", "greedy"):
            p.error(f"--sampling: unknown mode {mode}")
    for case in args.cases:
        if case not in ("prefill", "generate", "train"):
            p.error(f"--cases: unknown case {case}")
    return args


def preset_config(preset: str) -> dict:
    if preset == "tiny":
        return json.loads(TINY_CONFIG.read_text())
    return json.loads(json.dumps(QWEN3VL_2B))


def id_bound(cfg: dict) -> int:
    """Prompt ids stay below every special id, as in cli/src/bench.rs."""
    keys = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")
    return max(1, min([cfg["text_config"]["vocab_size"]] + [cfg[k] for k in keys]))


def prompt_ids(rows: int, length: int, bound: int) -> list[list[int]]:
    return [[(i * 7919 + r * 104_729) % bound for i in range(length)] for r in range(rows)]


class Runner:
    def __init__(self, args):
        self.args = args
        self.dev = torch.device(args.device)
        self.cuda = self.dev.type == "cuda"
        self.dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
        self.cases: list[dict] = []
        self.meta: dict = {}
        self.t0 = time.perf_counter()

    # --- bookkeeping -------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        print(f"[torch +{time.perf_counter() - self.t0:.1f}s] {msg}", file=sys.stderr, flush=True)

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.dev)

    def write(self) -> None:
        if self.args.json is None:
            return
        data = dict(self.meta)
        data["cases"] = self.cases
        tmp = self.args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        os.replace(tmp, self.args.json)

    def begin_case(self) -> float:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.dev)
        return time.time()

    def end_case(self, case: dict, start_unix: float) -> None:
        if self.cuda:
            case["peak_allocated_mib"] = torch.cuda.max_memory_allocated(self.dev) / 2**20
            case["peak_reserved_mib"] = torch.cuda.max_memory_reserved(self.dev) / 2**20
        case["start_unix"] = start_unix
        case["end_unix"] = time.time()
        self.cases.append(case)
        rate = case.get("tokens_per_s") or float("nan")
        self.log(f"{case['case']}: {rate:.1f} tokens/s ({case.get('seconds', 0):.4f} s)"
                 + (f", peak {case['peak_allocated_mib']:.0f} MiB" if self.cuda else ""))
        self.write()
        if self.cuda:
            torch.cuda.empty_cache()

    # --- model -------------------------------------------------------------------------------
    def build(self, attn: str):
        import transformers
        from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

        cfg_dict = preset_config(self.args.preset)
        self.cfg_dict = cfg_dict
        config = Qwen3VLConfig.from_dict(cfg_dict)
        torch.manual_seed(self.args.seed)
        start = time.perf_counter()
        with torch.device(self.dev):
            try:
                model = Qwen3VLForConditionalGeneration._from_config(
                    config, dtype=self.dtype, attn_implementation=attn)
            except TypeError:  # older transformers spell it torch_dtype
                model = Qwen3VLForConditionalGeneration._from_config(
                    config, torch_dtype=self.dtype, attn_implementation=attn)
        model.eval()
        self.sync()
        init_s = time.perf_counter() - start
        model.generation_config.eos_token_id = None
        model.generation_config.pad_token_id = 0
        params = sum(p.numel() for p in model.parameters())
        self.meta.update({
            "tool": "torch",
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "device": self.args.device,
            "device_name": torch.cuda.get_device_name(self.dev) if self.cuda else "cpu",
            "dtype": self.args.dtype,
            "preset": self.args.preset,
            "attn_implementation": attn,
            "params": params,
            "init_s": init_s,
            "prompt_len": self.args.prompt_len,
            "new_tokens": self.args.new_tokens,
            "started_unix": self.meta.get("started_unix", time.time()),
        })
        self.log(f"model built in {init_s:.1f} s: {params / 1e6:.1f} M params, {attn}, {self.args.dtype}")
        self.write()
        return model

    def batch(self, rows: int, length: int):
        ids = torch.tensor(prompt_ids(rows, length, id_bound(self.cfg_dict)), dtype=torch.long, device=self.dev)
        return ids, torch.ones_like(ids)

    # --- cases -------------------------------------------------------------------------------
    def prefill_once(self, model, ids, mask) -> float:
        out = model(input_ids=ids, attention_mask=mask, use_cache=True, logits_to_keep=1)
        return float(out.logits[0, -1, 0].float().item())

    @torch.inference_mode()
    def prefill(self, model, b: int) -> float:
        start_unix = self.begin_case()
        ids, mask = self.batch(b, self.args.prompt_len)
        warm = time.perf_counter()
        self.prefill_once(model, ids, mask)
        self.sync()
        warmup_s = time.perf_counter() - warm
        times, value = [], float("nan")
        for _ in range(self.args.repeats):
            self.sync()
            t = time.perf_counter()
            value = self.prefill_once(model, ids, mask)
            self.sync()
            times.append(time.perf_counter() - t)
        secs = statistics.median(times)
        tokens = b * self.args.prompt_len
        self.end_case({
            "case": f"prefill_b{b}", "kind": "prefill", "batch": b, "prompt_len": self.args.prompt_len,
            "tokens": tokens, "seconds": secs, "seconds_all": times, "tokens_per_s": tokens / secs,
            "warmup_s": warmup_s, "logit_0_0": value,
        }, start_unix)
        return secs

    def generate_kwargs(self, mode: str, n: int) -> dict:
        kw = dict(max_new_tokens=n, min_new_tokens=n, pad_token_id=0, use_cache=True)
        if mode == "sample":
            kw.update(do_sample=True, temperature=1.0, top_k=0, top_p=1.0)
        else:
            kw.update(do_sample=False)
        return kw

    @torch.inference_mode()
    def generate(self, model, b: int, mode: str) -> None:
        start_unix = self.begin_case()
        ids, mask = self.batch(b, self.args.prompt_len)
        n = self.args.new_tokens

        def timed(new: int) -> float:
            torch.manual_seed(self.args.seed)
            self.sync()
            t = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, **self.generate_kwargs(mode, new))
            self.sync()
            secs = time.perf_counter() - t
            assert tuple(out.shape) == (b, self.args.prompt_len + new), f"generate returned {tuple(out.shape)}"
            return secs

        warmup_s = timed(min(n, 4))
        # generate(1) = prefill + first token: subtracted, so decode counts only the N - 1 steps.
        first_s = statistics.median([timed(1), timed(1)])
        total = timed(n)
        decode_s = total - first_s
        self.end_case({
            "case": f"generate_{mode}_b{b}", "kind": "generate", "sampling": mode, "batch": b,
            "prompt_len": self.args.prompt_len, "new_tokens": n, "tokens": b * (n - 1),
            "total_s": total, "first_token_s": first_s, "decode_s": decode_s, "seconds": decode_s,
            # None when the decode steps are too short to time against generate(1)'s noise.
            "tokens_per_s": b * (n - 1) / decode_s if decode_s > 0 else None,
            "e2e_tokens_per_s": b * n / total,
            "warmup_s": warmup_s,
        }, start_unix)

    def train(self, model, attn: str) -> None:
        rows, length = self.args.train_batch, self.args.train_len
        start_unix = self.begin_case()
        ids, _ = self.batch(rows, length)
        model.train()

        def step():
            self.sync()
            t = time.perf_counter()
            out = model(input_ids=ids, labels=ids)
            out.loss.backward()
            value = float(out.loss.item())
            self.sync()
            secs = time.perf_counter() - t
            del out
            model.zero_grad(set_to_none=True)
            return secs, value

        warmup_s, _ = step()
        times, loss = [], float("nan")
        for _ in range(self.args.train_steps):
            secs, loss = step()
            times.append(secs)
        model.eval()
        secs = statistics.median(times)
        self.end_case({
            "case": train_case_name(self.args, attn), "kind": "train", "attn_implementation": attn,
            "batch": rows, "seq_len": length, "tokens": rows * length, "seconds": secs,
            "seconds_all": times, "tokens_per_s": rows * length / secs, "warmup_s": warmup_s,
            "loss": loss,
        }, start_unix)


def train_case_name(args, attn: str) -> str:
    """`train_RxL` for the first attention implementation, `train_RxL_<attn>` for the others."""
    suffix = "" if attn == args.train_attn[0] else f"_{attn}"
    return f"train_{args.train_batch}x{args.train_len}{suffix}"


def set_attn(model, attn: str) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attn)
    else:  # older transformers
        for module in model.modules():
            cfg = getattr(module, "config", None)
            if cfg is not None:
                cfg._attn_implementation = attn


def main(argv=None) -> int:
    args = parse_args(argv)
    runner = Runner(args)
    runner.meta["started_unix"] = time.time()
    model = runner.build(args.train_attn[0] if args.train_attn else "sdpa")
    for case in args.cases:
        if case == "prefill":
            for b in args.batches:
                runner.prefill(model, b)
        elif case == "generate":
            for mode in args.sampling:
                for b in args.generate_batches or args.batches:
                    runner.generate(model, b, mode)
        elif case == "train":
            for attn in args.train_attn:
                set_attn(model, attn)
                try:
                    runner.train(model, attn)
                except torch.OutOfMemoryError as e:  # record it, go on
                    runner.log(f"train ({attn}) out of memory: {e}")
                    runner.cases.append({"case": train_case_name(args, attn),
                                         "kind": "train", "error": "out of memory"})
                    runner.write()
                    model.zero_grad(set_to_none=True)
                    torch.cuda.empty_cache()
            set_attn(model, args.train_attn[0])
    runner.meta["finished_unix"] = time.time()
    runner.write()

    print(f"\ntorch baseline | {runner.meta['device_name']} | {args.dtype} | preset {args.preset} | "
          f"{runner.meta['params']} params | torch {torch.__version__}, transformers {runner.meta['transformers']}")
    print("| case | batch | tokens | seconds | tokens/s | peak alloc MiB |")
    print("|---|---|---|---|---|---|")
    for c in runner.cases:
        peak = c.get("peak_allocated_mib")
        print(f"| {c['case']} | {c.get('batch', '')} | {c.get('tokens', '')} | "
              f"{c.get('seconds', float('nan')):.4f} | {c.get('tokens_per_s') or float('nan'):.1f} | "
              f"{'' if peak is None else f'{peak:.0f}'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
