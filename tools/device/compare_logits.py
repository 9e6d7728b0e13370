#!/usr/bin/env python3
"""GPU parity of the `temper` binary: `temper forward --device cuda` on every golden case of the
tiny fixtures (model/tests/data/qwen3vl-tiny-{a,b,moe}), compared with the transformers outputs
stored in each fixture's golden.safetensors.

Per case it prints max |Δlogit| over real (unmasked) positions, max |Δ token log-prob| where
both tokens are real, and whether MRoPE position ids and rope deltas are exact. The cases run as
parallel processes. Exit status 1 if any case fails to run or differs by more than --tol.

With `--dtype bf16` (`temper forward --dtype bf16`) there is no 1e-4 to meet: each case's mean
|Δ| from the f32 golden values is compared with transformers' own bf16 run of the case
(`golden_bf16.safetensors`, tools/golden/bf16_reference.py), and passes within 1.2× (logits) and
1.5× (log-probs), the bounds model/tests/bf16.rs holds on the CPU.

    python3 tools/device/compare_logits.py --temper .device/temper --device cuda --json parity.json
    python3 tools/device/compare_logits.py --dtype bf16 --fixtures qwen3vl-tiny-a,qwen3vl-tiny-b

Needs numpy and safetensors (both on the device image; also in .venv-golden here).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

REPO = Path(__file__).resolve().parent.parent.parent
INPUT_NAMES = ("input_ids", "attention_mask", "pixel_values", "image_grid_thw",
               "pixel_values_videos", "video_grid_thw")


def cases_of(fixture: Path) -> list[str]:
    return list(json.loads((fixture / "cases.json").read_text())["cases"].keys())


BF16_LOGIT_RATIO, BF16_LOGPROB_RATIO = 1.2, 1.5


def run_case(temper: str, device: str, compute_dtype: str, fixture: Path, case: str, golden: dict,
             reference: dict | None, scratch: Path, timeout: float) -> dict:
    name = f"{fixture.name}/{case}"
    inputs = scratch / f"{fixture.name}-{case}-in.safetensors"
    outputs = scratch / f"{fixture.name}-{case}-out.safetensors"
    tensors = {}
    for n in INPUT_NAMES:
        key = f"{case}.{n}"
        if key in golden:
            dtype = np.float32 if n.startswith("pixel") else np.int64
            tensors[n] = np.ascontiguousarray(golden[key].astype(dtype))
    save_file(tensors, str(inputs))
    cmd = [temper, "forward", "--model", str(fixture), "--inputs", str(inputs), "--out", str(outputs),
           "--device", device, "--dtype", compute_dtype]
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"case": name, "ok": False, "error": f"timed out after {timeout:.0f} s"}
    secs = time.perf_counter() - start
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no stderr)"]
        first = next((ln for ln in lines if ln.startswith("Error") or "panicked" in ln), lines[-1])
        return {"case": name, "ok": False, "seconds": secs, "error": first[:500]}
    ours = load_file(str(outputs))
    mask = golden[f"{case}.attention_mask"].astype(bool)  # [B, L]
    logits, expected = ours["logits"], golden[f"{case}.logits"]
    if logits.shape != expected.shape:
        return {"case": name, "ok": False, "error": f"logits shape {logits.shape} vs {expected.shape}"}
    dlogit = float(np.abs(logits - expected)[mask].max()) if mask.any() else 0.0
    lp, expected_lp = ours["token_logprobs"], golden[f"{case}.token_logprobs"]
    both = mask[:, :-1] & mask[:, 1:]
    dlp = float(np.abs(lp - expected_lp)[both].max()) if both.any() else 0.0
    pos, expected_pos = ours["position_ids"], golden[f"{case}.position_ids"]
    positions_ok = bool(((pos == expected_pos) | ~mask[None]).all())
    deltas_ok = bool((ours["rope_deltas"] == golden[f"{case}.rope_deltas"]).all())
    result = {"case": name, "seconds": secs, "max_abs_dlogit": dlogit, "max_abs_dlogprob": dlp,
              "positions_exact": positions_ok, "rope_deltas_exact": deltas_ok,
              "logits_std": float(expected[mask].std()), "ok": True}
    if reference is not None:
        def mean_drift(values, golden_values, keep):
            return float(np.abs(values - golden_values)[keep].mean())
        ours_logit = mean_drift(logits, expected, mask)
        hf_logit = mean_drift(reference[f"{case}.logits"], expected, mask)
        ours_lp = mean_drift(lp, expected_lp, both)
        hf_lp = mean_drift(reference[f"{case}.token_logprobs"], expected_lp, both)
        result.update({"mean_dlogit": ours_logit, "hf_bf16_mean_dlogit": hf_logit,
                       "logit_drift_ratio": ours_logit / hf_logit,
                       "mean_dlogprob": ours_lp, "hf_bf16_mean_dlogprob": hf_lp,
                       "logprob_drift_ratio": ours_lp / hf_lp})
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--temper", default=str(REPO / ".device/temper"))
    p.add_argument("--device", default="cuda")
    p.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    p.add_argument("--fixtures", default=None,
                   help="default: all three (f32), the two dense ones with a bf16 reference (bf16)")
    p.add_argument("--jobs", type=int, default=9)
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per temper process")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    bf16 = args.dtype == "bf16"
    fixtures = args.fixtures or ("qwen3vl-tiny-a,qwen3vl-tiny-b" if bf16
                                 else "qwen3vl-tiny-a,qwen3vl-tiny-b,qwen3vl-tiny-moe")
    jobs = []
    for fx in fixtures.split(","):
        fixture = REPO / "model/tests/data" / fx
        golden = load_file(str(fixture / "golden.safetensors"))
        reference = load_file(str(fixture / "golden_bf16.safetensors")) if bf16 else None
        jobs += [(fixture, case, golden, reference) for case in cases_of(fixture)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_case, args.temper, args.device, args.dtype, fixture, case, golden,
                               reference, Path(tmp), args.timeout)
                   for fixture, case, golden, reference in jobs]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - start

    failed = 0
    if bf16:
        print(f"bf16 parity: temper forward --device {args.device} --dtype bf16, mean |Δ| from the f32 "
              f"golden values vs transformers' bf16 run ({wall:.1f} s wall)")
        print("| case | mean Δlogit | HF bf16 | ratio | mean Δlogprob | HF bf16 | ratio | positions | result |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in results:
            if not r["ok"]:
                failed += 1
                print(f"| {r['case']} | | | | | | | | ERROR: {r['error']} |")
                continue
            good = (r["logit_drift_ratio"] <= BF16_LOGIT_RATIO
                    and r["logprob_drift_ratio"] <= BF16_LOGPROB_RATIO
                    and r["positions_exact"] and r["rope_deltas_exact"])
            failed += not good
            r["pass"] = good
            print(f"| {r['case']} | {r['mean_dlogit']:.4f} | {r['hf_bf16_mean_dlogit']:.4f} | "
                  f"{r['logit_drift_ratio']:.2f} | {r['mean_dlogprob']:.4f} | "
                  f"{r['hf_bf16_mean_dlogprob']:.4f} | {r['logprob_drift_ratio']:.2f} | "
                  f"{'exact' if r['positions_exact'] else 'DIFFER'} | {'ok' if good else 'FAIL'} |")
        print(f"{len(results) - failed}/{len(results)} cases within {BF16_LOGIT_RATIO}× / "
              f"{BF16_LOGPROB_RATIO}× of transformers' bf16 drift")
        if args.json:
            args.json.write_text(json.dumps({"device": args.device, "dtype": "bf16", "wall_s": wall,
                                             "cases": results}, indent=2))
        return 1 if failed else 0
    print(f"GPU parity: temper forward --device {args.device} vs transformers golden logits "
          f"(f32; tolerance {args.tol:g}; {wall:.1f} s wall, {args.jobs} at a time)")
    print("| case | max abs Δlogit | max abs Δlogprob | positions | rope deltas | s | result |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        if not r["ok"]:
            failed += 1
            print(f"| {r['case']} | | | | | {r.get('seconds', 0):.1f} | ERROR: {r['error']} |")
            continue
        good = (r["max_abs_dlogit"] < args.tol and r["max_abs_dlogprob"] < args.tol
                and r["positions_exact"] and r["rope_deltas_exact"])
        failed += not good
        r["pass"] = good
        print(f"| {r['case']} | {r['max_abs_dlogit']:.2e} | {r['max_abs_dlogprob']:.2e} | "
              f"{'exact' if r['positions_exact'] else 'DIFFER'} | "
              f"{'exact' if r['rope_deltas_exact'] else 'DIFFER'} | {r['seconds']:.1f} | "
              f"{'ok' if good else 'FAIL'} |")
    print(f"{len(results) - failed}/{len(results)} cases within tolerance")
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "tol": args.tol, "wall_s": wall,
                                         "cases": results}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
