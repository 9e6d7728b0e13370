#!/usr/bin/env python3
"""Ratio table: `temper bench` JSON(s) against `bench/torch_baseline.py` JSON, same cases.

ratio = temper tokens/s / torch tokens/s (above 1: temper is faster). Peak GPU memory per case
comes from an nvidia-smi log of `epoch_seconds,MiB` lines (tools/device/gpu_run.sh writes one):
the largest reading inside the case's wall-clock window (warm-up included), whole process
(CUDA context and allocator pools included), for both tools alike; torch's own
max_memory_allocated is shown beside it.

    python3 bench/ratios.py --torch torch.json --temper temper_bf16.json --temper temper_f32.json \
        --gpu-mem gpu_mem.csv
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"(cannot read {path}: {e})")
        return None


def read_mem(path: Path | None) -> list[tuple[float, float]]:
    if path is None or not path.exists():
        return []
    samples = []
    for line in path.read_text().splitlines():
        parts = line.strip().split(",")
        try:
            samples.append((float(parts[0]), float(parts[1])))
        except (ValueError, IndexError):
            continue
    return samples


def peak(samples, case: dict | None) -> float | None:
    if not samples or not case or "start_unix" not in case:
        return None
    lo, hi = case["start_unix"], case.get("end_unix", case["start_unix"])
    inside = [mib for t, mib in samples if lo - 0.25 <= t <= hi + 0.25]
    return max(inside) if inside else None


def by_case(report: dict | None) -> dict[str, dict]:
    return {c["case"]: c for c in (report or {}).get("cases", []) if "case" in c}


def fmt(x, spec=".1f") -> str:
    return "" if x is None else format(x, spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--torch", type=Path, required=True)
    p.add_argument("--temper", type=Path, action="append", default=[])
    p.add_argument("--gpu-mem", type=Path, default=None)
    args = p.parse_args(argv)

    torch_report = load(args.torch)
    tempers = [(path, load(path)) for path in args.temper]
    tempers = [(f"temper {r.get('dtype', '?')}", r) for path, r in tempers if r]
    mem = read_mem(args.gpu_mem)
    tc = by_case(torch_report)

    print("## Setup")
    if torch_report:
        print(f"- torch: {torch_report.get('device_name')} | {torch_report.get('dtype')} | torch "
              f"{torch_report.get('torch')} | transformers {torch_report.get('transformers')} | attention "
              f"{torch_report.get('attn_implementation')} | {torch_report.get('params')} params | init "
              f"{fmt(torch_report.get('init_s'))} s")
    for label, r in tempers:
        print(f"- {label}: {r.get('backend')} | build {r.get('build_features')} | {r.get('params')} params | "
              f"init {fmt(r.get('init_s'))} s")
        sampler = by_case(r).get("host_sampler")
        if sampler:
            print(f"  picking: {sampler.get('notes', '')}")
    params = {torch_report.get("params") if torch_report else None} | {r.get("params") for _, r in tempers}
    params.discard(None)
    if len(params) > 1:
        print(f"- WARNING: parameter counts differ: {sorted(params)}")

    batches = sorted({int(m.group(1)) for r in [torch_report] + [r for _, r in tempers] if r
                      for c in by_case(r) for m in [re.search(r"_b(\d+)$", c)] if m})
    trains = sorted({c for r in [torch_report] + [r for _, r in tempers] if r for c in by_case(r)
                     if re.fullmatch(r"train_\d+x\d+", c)})
    rows = []  # (label, torch case, temper case or callable)
    for b in batches:
        rows.append((f"prefill, batch {b} (prompt tokens/s)", f"prefill_b{b}", f"prefill_b{b}"))
    for b in batches:
        rows.append((f"generate greedy, batch {b} (decode tokens/s)", f"generate_greedy_b{b}",
                     f"generate_greedy_b{b}"))
        rows.append((f"generate sample, batch {b} (decode tokens/s)", f"generate_sample_b{b}",
                     f"generate_sample_b{b}"))
        rows.append((f"temper decode_step + device argmax vs HF generate sample, batch {b}",
                     f"generate_sample_b{b}", f"decode_device_greedy_b{b}"))
    for t in trains:
        rows.append((f"{t.replace('train_', 'train fwd+bwd ')} vs HF sdpa", t, t))
        rows.append((f"{t.replace('train_', 'train fwd+bwd ')} vs HF eager attention", f"{t}_eager", t))

    print("\n## Throughput (tokens/s; ratio = temper / torch, > 1 means temper is faster)")
    header = "| case | torch |" + "".join(f" {label} | ratio |" for label, _ in tempers)
    print(header)
    print("|---|---|" + "---|---|" * len(tempers))
    for label, torch_case, temper_case in rows:
        t = tc.get(torch_case)
        cells, any_value = [], t is not None
        for _, r in tempers:
            ours = by_case(r).get(temper_case)
            rate = ours.get("tokens_per_s") if ours else None
            any_value |= rate is not None
            ratio = rate / t["tokens_per_s"] if rate and t and t.get("tokens_per_s") else None
            cells.append(f" {fmt(rate)} | {fmt(ratio, '.2f')} |")
        if any_value:
            print(f"| {label} | {fmt(t.get('tokens_per_s') if t else None)} |" + "".join(cells))

    print("\n## Peak GPU memory per case (MiB; nvidia-smi, whole process; torch allocator peak in brackets)")
    print("| case | torch |" + "".join(f" {label} |" for label, _ in tempers))
    print("|---|---|" + "---|" * len(tempers))
    names = list(dict.fromkeys(list(tc) + [c for _, r in tempers for c in by_case(r)]))
    for name in names:
        if name == "host_sampler":
            continue
        t = tc.get(name)
        torch_cell = fmt(peak(mem, t), ".0f")
        if t and t.get("peak_allocated_mib") is not None:
            torch_cell += f" [{t['peak_allocated_mib']:.0f}]"
        cells = [fmt(peak(mem, by_case(r).get(name)), ".0f") for _, r in tempers]
        print(f"| {name} | {torch_cell} |" + "".join(f" {c} |" for c in cells))

    print("\n## Sanity")
    for label, r in [("torch", torch_report)] + tempers:
        for name, c in by_case(r).items():
            if "loss" in c:
                print(f"- {label} {name}: loss {c['loss']:.4f} (random init: about ln(vocab))")
            if c.get("finite") is False:
                print(f"- {label} {name}: NON-FINITE output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
