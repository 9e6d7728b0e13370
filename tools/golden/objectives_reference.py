#!/usr/bin/env python3
"""Reference values for temper-learner's objectives and advantage estimators
(learner/tests/objectives.rs, learner/tests/advantages.rs).

An independent implementation, written from the formulas in shared/design/ARCHITECTURE.md
("Algorithms") and shared/design/rl-anchors.md A.1-A.3, not from verl or TRL, and structured
differently from the Rust code on purpose: the Rust code zeroes untrained positions and reduces
masked [batch, T] tensors; this script selects each row's trained tokens with boolean indexing,
loops over rows and never touches untrained positions at all. Loss and d loss / d logprobs come
from torch autograd in float64 (inputs are float32 values, exactly as the Rust tests parse them).

Conventions shared with the Rust code (part of each objective's definition there):
- a row with no trained token contributes nothing and is not counted; an all-empty batch gives
  loss 0 and a zero gradient;
- every log-ratio is clamped to [-20, 10] before exp (GSPO: the sequence log-ratio; GSPO-token:
  sg[log s_i] + logp - sg[logp]; k3: log pi_ref - log pi);
- an all-equal reward group gets advantage exactly 0.

Re-run from the repository root (deterministic; rewrites learner/tests/data/objectives.json):

    .venv-golden/bin/python tools/golden/objectives_reference.py
"""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path

import numpy as np
import torch

LOG_RATIO_MIN = -20.0
LOG_RATIO_MAX = 10.0

OUT = Path(__file__).resolve().parents[2] / "learner" / "tests" / "data" / "objectives.json"


# --------------------------------------------------------------------------------------------
# Objectives. Each takes float64 tensors (lp requires grad) and returns (loss, metrics).


def clamp_log_ratio(x):
    return torch.clamp(x, LOG_RATIO_MIN, LOG_RATIO_MAX)


def k3(lp, ref):
    """KL(pi || pi_ref) estimator pi_ref/pi - log(pi_ref/pi) - 1, log-ratio clamped."""
    x = clamp_log_ratio(ref - lp)
    return torch.exp(x) - x - 1.0


def rows(inp):
    """Yields (i, idx) for every row with at least one trained token."""
    for i in range(inp["mask"].shape[0]):
        idx = inp["mask"][i] > 0.5
        if bool(idx.any()):
            yield i, idx


def row_advantages(inp, i, idx):
    adv = inp["advantages"]
    if adv.dim() == 1:
        return adv[i].expand(int(idx.sum()))
    return adv[i][idx]


def ppo_min(ratio, adv, eps_low, eps_high):
    """min(r A, clip(r) A) and the clipped indicator (clipped branch strictly smaller)."""
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    return torch.minimum(unclipped, clipped), (clipped < unclipped).double()


def mean_or_zero(values, like):
    if not values:
        return like.sum() * 0.0
    return torch.stack(values).mean()


def token_metrics(inp, metrics):
    """Ratio statistics over trained tokens (on clamped log-ratios), and the k3 KL."""
    lp, old, m = inp["lp"].detach(), inp["old"], inp["mask"] > 0.5
    log_ratio = clamp_log_ratio(lp[m] - old[m])
    ratio = torch.exp(log_ratio)
    n = int(m.sum())
    metrics["tokens"] = n
    metrics["sequences"] = int(((inp["mask"] > 0.5).sum(dim=1) > 0).sum())
    if n == 0:
        for key in ("ratio_mean", "ratio_min", "ratio_max", "approx_kl"):
            metrics[key] = None
    else:
        metrics["ratio_mean"] = ratio.mean().item()
        metrics["ratio_min"] = ratio.min().item()
        metrics["ratio_max"] = ratio.max().item()
        metrics["approx_kl"] = (-log_ratio).mean().item()
    if inp["ref"] is not None:
        metrics["kl"] = k3(lp[m], inp["ref"][m]).mean().item() if n else None
    else:
        metrics["kl"] = None
    metrics.setdefault("clip_fraction", None)
    metrics.setdefault("gate_weight_mean", None)
    metrics.setdefault("seq_ratio_mean", None)
    return metrics


def fraction(flags):
    if not flags:
        return None
    return torch.cat(flags).mean().item()


def gspo(inp, eps_low=3e-4, eps_high=4e-4, kl_coef=0.0):
    """J = mean_i min(s_i A_i, clip(s_i) A_i), s_i = exp(clamp(mean_t log r_t))."""
    assert inp["advantages"].dim() == 1
    lp, old = inp["lp"], inp["old"]
    terms, kls, flags, seq_ratios = [], [], [], []
    for i, idx in rows(inp):
        s = torch.exp(clamp_log_ratio((lp[i][idx] - old[i][idx]).mean()))
        term, clipped = ppo_min(s, inp["advantages"][i], eps_low, eps_high)
        terms.append(term)
        flags.append(clipped.expand(int(idx.sum())))
        seq_ratios.append(s.detach())
        if kl_coef > 0:
            kls.append(k3(lp[i][idx], inp["ref"][i][idx]).mean())
    pg_loss = -mean_or_zero(terms, lp)
    loss = pg_loss + kl_coef * mean_or_zero(kls, lp) if kl_coef > 0 else pg_loss
    metrics = {
        "clip_fraction": fraction(flags),
        "seq_ratio_mean": torch.stack(seq_ratios).mean().item() if seq_ratios else None,
    }
    return loss, pg_loss, metrics


def gspo_token(inp, eps_low=3e-4, eps_high=4e-4, kl_coef=0.0):
    """s_it = sg[s_i] pi/sg[pi]; J = mean_i mean_t min(s_it A_it, clip(s_it) A_it)."""
    lp, old = inp["lp"], inp["old"]
    terms, kls, flags, seq_ratios = [], [], [], []
    for i, idx in rows(inp):
        lpi = lp[i][idx]
        log_s = (lpi - old[i][idx]).mean().detach()
        s_t = torch.exp(clamp_log_ratio(log_s + lpi - lpi.detach()))
        term, clipped = ppo_min(s_t, row_advantages(inp, i, idx), eps_low, eps_high)
        terms.append(term.mean())
        flags.append(clipped)
        seq_ratios.append(torch.exp(clamp_log_ratio(log_s)))
        if kl_coef > 0:
            kls.append(k3(lpi, inp["ref"][i][idx]).mean())
    pg_loss = -mean_or_zero(terms, lp)
    loss = pg_loss + kl_coef * mean_or_zero(kls, lp) if kl_coef > 0 else pg_loss
    metrics = {
        "clip_fraction": fraction(flags),
        "seq_ratio_mean": torch.stack(seq_ratios).mean().item() if seq_ratios else None,
    }
    return loss, pg_loss, metrics


def sapo(inp, tau_pos=1.0, tau_neg=1.05, kl_coef=0.0):
    """f(r) = sigmoid(tau (r - 1)) 4/tau, tau by the sign of A; J = mean_i mean_t f(r) A."""
    lp, old = inp["lp"], inp["old"]
    terms, kls, weights = [], [], []
    for i, idx in rows(inp):
        r = torch.exp(clamp_log_ratio(lp[i][idx] - old[i][idx]))
        adv = row_advantages(inp, i, idx)
        tau = torch.where(adv > 0, torch.full_like(adv, tau_pos), torch.full_like(adv, tau_neg))
        gate = torch.sigmoid(tau * (r - 1.0)) * 4.0 / tau
        terms.append((gate * adv).mean())
        # slope df/dr by autograd on a detached copy of r: 4 sigma (1 - sigma)
        r_leaf = r.detach().clone().requires_grad_(True)
        (torch.sigmoid(tau * (r_leaf - 1.0)) * 4.0 / tau).sum().backward()
        weights.append(r_leaf.grad.detach())
        if kl_coef > 0:
            kls.append(k3(lp[i][idx], inp["ref"][i][idx]).mean())
    pg_loss = -mean_or_zero(terms, lp)
    loss = pg_loss + kl_coef * mean_or_zero(kls, lp) if kl_coef > 0 else pg_loss
    return loss, pg_loss, {"gate_weight_mean": fraction(weights)}


def grpo(inp, eps=0.2, kl_coef=0.0):
    """J = mean_i mean_t [min(r A, clip(r, 1-eps, 1+eps) A) - beta k3]."""
    lp, old = inp["lp"], inp["old"]
    pg_terms, terms, flags = [], [], []
    for i, idx in rows(inp):
        r = torch.exp(clamp_log_ratio(lp[i][idx] - old[i][idx]))
        term, clipped = ppo_min(r, row_advantages(inp, i, idx), eps, eps)
        flags.append(clipped)
        pg_terms.append(term.mean())
        if kl_coef > 0:
            term = term - kl_coef * k3(lp[i][idx], inp["ref"][i][idx])
        terms.append(term.mean())
    pg_loss = -mean_or_zero(pg_terms, lp)
    loss = -mean_or_zero(terms, lp)
    return loss, pg_loss, {"clip_fraction": fraction(flags)}


def token_terms(inp, eps_low, eps_high):
    lp, old = inp["lp"], inp["old"]
    terms, flags = [], []
    for i, idx in rows(inp):
        r = torch.exp(clamp_log_ratio(lp[i][idx] - old[i][idx]))
        term, clipped = ppo_min(r, row_advantages(inp, i, idx), eps_low, eps_high)
        terms.append(term)
        flags.append(clipped)
    return terms, flags


def dapo(inp, eps_low=0.2, eps_high=0.28):
    """J = sum over all trained tokens of min(r A, clip(r) A) / their number."""
    terms, flags = token_terms(inp, eps_low, eps_high)
    if terms:
        loss = -torch.cat(terms).mean()
    else:
        loss = inp["lp"].sum() * 0.0
    return loss, loss, {"clip_fraction": fraction(flags)}


def dr_grpo(inp, max_response_len, eps=0.2):
    """J = sum over all trained tokens of min(r A, clip(r) A) / (batch * max_response_len)."""
    terms, flags = token_terms(inp, eps, eps)
    batch = inp["mask"].shape[0]
    if terms:
        loss = -torch.cat(terms).sum() / (batch * max_response_len)
    else:
        loss = inp["lp"].sum() * 0.0
    return loss, loss, {"clip_fraction": fraction(flags)}


OBJECTIVES = {
    "gspo": gspo,
    "gspo_token": gspo_token,
    "sapo": sapo,
    "grpo": grpo,
    "dapo": dapo,
    "dr_grpo": dr_grpo,
}


def sft(lp, mask):
    m = mask > 0.5
    if int(m.sum()) == 0:
        return lp.sum() * 0.0
    return -lp[m].mean()


# --------------------------------------------------------------------------------------------
# Advantages.


def group_norm(rewards, group_size, eps=1e-6, std=True):
    out = []
    for g in torch.tensor(rewards, dtype=torch.float64).view(-1, group_size):
        if bool((g == g[0]).all()):
            out.append(torch.zeros_like(g))
        elif std:
            out.append((g - g.mean()) / (torch.std(g) + eps))  # torch.std: unbiased (n - 1)
        else:
            out.append(g - g.mean())
    return torch.cat(out).tolist()


def leave_one_out(rewards, group_size):
    out = []
    for g in torch.tensor(rewards, dtype=torch.float64).view(-1, group_size).tolist():
        for i, r in enumerate(g):
            others = g[:i] + g[i + 1 :]
            out.append(0.0 if all(x == g[0] for x in g) else r - sum(others) / len(others))
    return out


# --------------------------------------------------------------------------------------------
# Cases.


def f32(x):
    """float32 value of a JSON number, as float64 (what the Rust test parses)."""
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def rounded(a, decimals):
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def make_cases():
    rng = np.random.default_rng(20251126)
    cases = []

    def logprobs(b, t):
        return rng.uniform(-3.0, -0.05, size=(b, t))

    # 1. Mixed lengths, right padding, tool tokens in the middle, ratios near 1 +- 0.15.
    mask = [
        [1, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 0, 0, 1, 1],
        [1, 1, 1, 1, 1, 0],
    ]
    lp = logprobs(4, 6)
    old = lp + rng.normal(0.0, 0.2, size=lp.shape)
    ref = lp + rng.normal(0.0, 0.3, size=lp.shape)
    cases.append(
        dict(
            name="mixed_lengths",
            description="4 rows of 6, 3 of them padded or with tool tokens; |log r| ~ 0.2",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(old, 4),
            ref_logprobs=rounded(ref, 4),
            mask=mask,
            advantages=dict(sequence=[1.2, -0.4, 0.7, -1.5]),
        )
    )

    # 2. Ratios within ~1e-3 of 1: GSPO's clip range (3e-4 / 4e-4) cuts through the sequences.
    lp = logprobs(4, 5)
    old = lp + rng.normal(0.0, 1e-3, size=lp.shape)
    cases.append(
        dict(
            name="near_on_policy",
            description="|log r| ~ 1e-3 per token, around GSPO's clip range per sequence",
            logprobs=rounded(lp, 5),
            old_logprobs=rounded(old, 5),
            ref_logprobs=None,
            mask=[[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]],
            advantages=dict(sequence=[0.9, -0.9, -0.3, 1.1]),
        )
    )

    # 3. Ratios far outside every clip range, and log-ratios beyond the [-20, 10] clamp:
    #    row 0 has a whole-sequence log-ratio of +11 (GSPO's sequence clamp), rows 1-2 single
    #    tokens at +12 and -25, row 3 moderate +-3.
    lp = logprobs(4, 5)
    log_r = np.array(
        [
            [11.0, 11.5, 10.8, 11.2, 11.0],
            [2.5, 12.0, -1.0, 0.3, 0.0],
            [-3.0, 0.5, -25.0, 1.5, 0.0],
            [3.0, -3.0, 2.0, -2.5, 0.8],
        ]
    )
    lp = np.clip(lp, -2.9, -0.1)
    lp[0] = np.array([-0.3, -0.2, -0.5, -0.4, -0.1])
    old = lp - log_r
    cases.append(
        dict(
            name="far_off_policy",
            description="ratios e^-25 .. e^12; row 0 mean log-ratio 11.1 > 10",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(old, 4),
            ref_logprobs=rounded(lp + rng.normal(0.0, 2.0, size=lp.shape), 4),
            mask=[[1, 1, 1, 1, 1], [1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]],
            advantages=dict(sequence=[0.8, -1.3, 0.6, -0.7]),
        )
    )

    # 4. All-equal rewards: group-normalised advantages are exactly 0; only KL terms remain.
    lp = logprobs(4, 4)
    old = lp + rng.normal(0.0, 0.1, size=lp.shape)
    cases.append(
        dict(
            name="all_equal_rewards",
            description="rewards [1, 1, 1, 1] -> advantages 0 (GroupNorm); only KL moves",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(old, 4),
            ref_logprobs=rounded(lp + rng.normal(0.0, 0.2, size=lp.shape), 4),
            mask=[[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]],
            advantages=dict(sequence=group_norm([1.0, 1.0, 1.0, 1.0], 4)),
        )
    )

    # 5. A zero-length response whose (padding) values would explode if they were used.
    lp = logprobs(3, 5)
    old = lp + rng.normal(0.0, 0.1, size=lp.shape)
    lp[1] = -1.0e4
    old[1] = 50.0
    cases.append(
        dict(
            name="zero_length_response",
            description="row 1 has no trained token and holds -1e4 / +50 garbage",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(old, 4),
            ref_logprobs=rounded(np.where(np.arange(3)[:, None] == 1, 80.0, lp + 0.1), 4),
            mask=[[1, 1, 1, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 0, 0]],
            advantages=dict(sequence=[0.5, 9.0, -0.5]),
        )
    )

    # 6. Tool-output tokens in the middle of responses with values far off-policy.
    lp = logprobs(3, 8)
    old = lp + rng.normal(0.0, 0.1, size=lp.shape)
    old[0, 3:5] = lp[0, 3:5] - 15.0
    old[2, 2:6] = lp[2, 2:6] + 30.0
    cases.append(
        dict(
            name="masked_tool_tokens",
            description="tool tokens (mask 0) mid-response with log-ratios +15 / -30",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(old, 4),
            ref_logprobs=None,
            mask=[[1, 1, 1, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 1, 1]],
            advantages=dict(sequence=[-0.6, 1.4, 0.9]),
        )
    )

    # 7. Per-token advantages (GSPO-token, SAPO, GRPO family).
    lp = logprobs(3, 6)
    old = lp + rng.normal(0.0, 0.15, size=lp.shape)
    cases.append(
        dict(
            name="token_advantages",
            description="one advantage per token, both signs within a row",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(old, 4),
            ref_logprobs=rounded(lp + rng.normal(0.0, 0.3, size=lp.shape), 4),
            mask=[[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 0, 1, 1, 1, 0]],
            advantages=dict(token=rounded(rng.normal(0.0, 1.0, size=lp.shape), 3)),
        )
    )

    # 8. Nothing to train on at all.
    lp = logprobs(2, 3)
    cases.append(
        dict(
            name="empty_batch",
            description="every mask 0: loss 0, gradient 0, token metrics None",
            logprobs=rounded(lp, 4),
            old_logprobs=rounded(lp + 1.0, 4),
            ref_logprobs=rounded(lp - 1.0, 4),
            mask=[[0, 0, 0], [0, 0, 0]],
            advantages=dict(sequence=[1.0, -1.0]),
        )
    )
    return cases


def configs(case):
    """The objective configs each case runs (as serde JSON for the Rust PolicyLoss)."""
    per_token = "token" in case["advantages"]
    has_ref = case["ref_logprobs"] is not None
    out = []
    if not per_token:
        out += [{"kind": "gspo"}, {"kind": "gspo", "eps_low": 0.2, "eps_high": 0.3}]
    out += [{"kind": "gspo_token"}, {"kind": "gspo_token", "eps_low": 0.2, "eps_high": 0.3}]
    out += [{"kind": "sapo"}, {"kind": "sapo", "tau_pos": 2.0, "tau_neg": 3.0}]
    out += [{"kind": "grpo"}, {"kind": "dapo"}, {"kind": "dr_grpo", "max_response_len": 8}]
    if has_ref:
        if not per_token:
            out.append({"kind": "gspo", "eps_low": 0.2, "eps_high": 0.3, "kl_coef": 0.1})
        out.append({"kind": "gspo_token", "kl_coef": 0.1})
        out.append({"kind": "sapo", "kl_coef": 0.05})
        out.append({"kind": "grpo", "eps": 0.2, "kl_coef": 0.04})
    return out


def tensors(case):
    lp = torch.tensor(f32(case["logprobs"]), requires_grad=True)
    adv = case["advantages"]
    return dict(
        lp=lp,
        old=torch.tensor(f32(case["old_logprobs"])),
        ref=None if case["ref_logprobs"] is None else torch.tensor(f32(case["ref_logprobs"])),
        mask=torch.tensor(np.asarray(case["mask"], dtype=np.float64)),
        advantages=torch.tensor(f32(adv["sequence"] if "sequence" in adv else adv["token"])),
    )


def sig(x, digits=10):
    if x is None:
        return None
    if isinstance(x, list):
        return [sig(v, digits) for v in x]
    if isinstance(x, int):
        return x
    if not math.isfinite(x):
        raise ValueError(f"non-finite reference value {x}")
    return float(f"{x:.{digits}g}")


def run_case(case):
    results = []
    for config in configs(case):
        inp = tensors(case)
        params = {k: v for k, v in config.items() if k != "kind"}
        loss, pg_loss, metrics = OBJECTIVES[config["kind"]](inp, **params)
        loss.backward()
        grad = inp["lp"].grad
        assert grad is not None and torch.isfinite(grad).all() and torch.isfinite(loss)
        metrics = token_metrics(inp, metrics)
        metrics["loss"] = loss.item()
        metrics["pg_loss"] = pg_loss.item()
        results.append(
            dict(
                config=config,
                loss=sig(loss.item()),
                grad=sig(grad.tolist()),
                metrics={k: sig(v) for k, v in sorted(metrics.items())},
            )
        )
    return results


def sft_cases():
    out = []
    for name, case in [
        ("mixed", dict(logprobs=[[-0.5, -1.25, -2.0, -9.0], [-0.1, -3.5, -7.0, -7.0]],
                       mask=[[1, 1, 1, 0], [0, 1, 1, 0]])),
        ("empty", dict(logprobs=[[-0.5, -1.0]], mask=[[0, 0]])),
    ]:
        lp = torch.tensor(f32(case["logprobs"]), requires_grad=True)
        loss = sft(lp, torch.tensor(np.asarray(case["mask"], dtype=np.float64)))
        loss.backward()
        out.append(dict(name=name, **case, loss=sig(loss.item()), grad=sig(lp.grad.tolist()),
                        tokens=int(np.sum(case["mask"]))))
    return out


def advantage_cases():
    rewards = [1.0, 0.0, 0.0, 1.0, 0.5, 0.2, 0.9, 0.1, 3.0, 3.0, 3.0, 3.0, 0.1, 0.1, 0.1, 0.1]
    rewards = f32(rewards).tolist()
    out = []
    for estimator, values in [
        ({"kind": "group_norm"}, group_norm(rewards, 4)),
        ({"kind": "group_norm", "eps": 1e-4}, group_norm(rewards, 4, eps=1e-4)),
        ({"kind": "group_norm", "std": False}, group_norm(rewards, 4, std=False)),
        ({"kind": "leave_one_out"}, leave_one_out(rewards, 4)),
    ]:
        out.append(dict(estimator=estimator, group_size=4, expected=sig(values)))
    out.append(
        dict(estimator={"kind": "group_norm"}, group_size=2,
             expected=sig(group_norm(rewards, 2)))
    )
    return dict(rewards=sig(rewards), cases=out)


def dump(doc) -> str:
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    # keep each innermost list of numbers on one line
    pattern = re.compile(r"\[\s*((?:-?[\d.eE+-]+|null|true|false)(?:,\s*(?:-?[\d.eE+-]+|null|true|false))*)\s*\]")
    return pattern.sub(lambda m: "[" + ", ".join(s.strip() for s in m.group(1).split(",")) + "]", text) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = make_cases()
    for case in cases:
        case["results"] = run_case(case)
    doc = dict(
        generator="tools/golden/objectives_reference.py",
        torch=torch.__version__,
        log_ratio_clamp=[LOG_RATIO_MIN, LOG_RATIO_MAX],
        cases=cases,
        sft=sft_cases(),
        advantages=advantage_cases(),
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump(doc))
    n = sum(len(c["results"]) for c in cases)
    print(f"wrote {args.out} ({len(cases)} cases, {n} objective results)")


if __name__ == "__main__":
    main()
