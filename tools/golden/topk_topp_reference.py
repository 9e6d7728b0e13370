"""Golden kept sets of transformers' sampling warpers: SuppressTokens -> Temperature -> TopK -> TopP.

Writes model/tests/data/sampling/topk_topp.json, read by `model/src/decoding/sampling.rs`'s test
`kept_set_equals_transformers_topk_then_topp`.

torch is not installed here (only a multi-GB CUDA wheel is on PyPI), so the four processors are
reproduced line by line in numpy from transformers 5.24.0 (`pip install transformers==5.24.0`,
file `transformers/generation/logits_process.py`):

    SuppressTokensLogitsProcessor.__call__ (line 1946):
        suppress_token_mask = torch.isin(vocab_tensor, self.suppress_tokens)
        scores = torch.where(suppress_token_mask, -float("inf"), scores)
    TemperatureLogitsWarper.__call__ (line 302):
        scores_processed = scores / self.temperature
    TopKLogitsWarper.__call__ (line 621):
        top_k = min(self.top_k, scores.size(-1))  # self.top_k = max(top_k, min_tokens_to_keep)
        indices_to_remove = scores < torch.topk(scores, top_k)[0][..., -1, None]
        scores_processed = scores.masked_fill(indices_to_remove, self.filter_value)
    TopPLogitsWarper.__call__ (line 556):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs <= (1 - self.top_p)
        sorted_indices_to_remove[..., -self.min_tokens_to_keep :] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(1, sorted_indices, sorted_indices_to_remove)
        scores_processed = scores.masked_fill(indices_to_remove, self.filter_value)

and their order in `GenerationMixin._get_logits_processor` (transformers/generation/utils.py
lines 1577-1629: suppress_tokens, then temperature, top_k, top_p). Note what TopP sees: the
scores TopK left, so its softmax is renormalised over the top-k tokens.

Each case is computed in float32 (what torch runs) and float64; the kept sets must agree and
every top-p decision must clear its threshold by more than MARGIN, so the golden does not hinge
on rounding. No ties are drawn except in the case built to have them (top-k keeps every token
tied with the k-th value). The kept set is the set of tokens whose processed score is finite.

    python tools/golden/topk_topp_reference.py   # numpy only; about a second
"""

import json
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "model/tests/data/sampling/topk_topp.json"
MARGIN = 1e-4


def suppress_tokens(scores, suppress):
    mask = np.isin(np.arange(scores.shape[-1]), np.asarray(suppress, dtype=np.int64))
    return np.where(mask, -np.inf, scores)


def temperature_warper(scores, temperature):
    return scores / scores.dtype.type(temperature)


def top_k_warper(scores, top_k, min_tokens_to_keep=1):
    top_k = min(max(top_k, min_tokens_to_keep), scores.shape[-1])
    kth = np.sort(scores)[::-1][top_k - 1]  # torch.topk(scores, top_k)[0][..., -1]
    return np.where(scores < kth, -np.inf, scores)


def softmax(x):
    finite = x[np.isfinite(x)]
    e = np.exp(x - finite.max())
    return e / e.sum()


def top_p_warper(scores, top_p, min_tokens_to_keep=1):
    sorted_indices = np.argsort(scores, kind="stable")
    sorted_logits = scores[sorted_indices]
    cumulative_probs = np.cumsum(softmax(sorted_logits))
    threshold = scores.dtype.type(1 - top_p)
    sorted_indices_to_remove = cumulative_probs <= threshold
    sorted_indices_to_remove[-min_tokens_to_keep:] = False
    indices_to_remove = np.zeros_like(sorted_indices_to_remove)
    indices_to_remove[sorted_indices] = sorted_indices_to_remove
    # Distance of the decisions that matter from the threshold: tokens of non-zero probability,
    # less the last min_tokens_to_keep (kept whatever their sum).
    decided = np.exp(sorted_logits - sorted_logits[np.isfinite(sorted_logits)].max()) > 0
    decided[-min_tokens_to_keep:] = False
    margin = np.min(np.abs(cumulative_probs[decided] - threshold), initial=np.inf)
    margin = float(margin) if np.isfinite(margin) else None  # None: nothing was decided
    return np.where(indices_to_remove, -np.inf, scores), margin


def kept(logits, temperature, top_k, top_p, suppress, dtype):
    scores = np.asarray(logits, dtype=dtype)
    scores = suppress_tokens(scores, suppress)
    scores = temperature_warper(scores, temperature)
    if top_k != 0:
        scores = top_k_warper(scores, top_k)
    margin = None
    if top_p < 1.0:
        scores, margin = top_p_warper(scores, top_p)
    return sorted(int(i) for i in np.flatnonzero(np.isfinite(scores))), margin


def f32(x):
    """The value as the f32 the Rust side holds (SamplingParams stores f32)."""
    return float(np.float32(x))


def main():
    rng = np.random.default_rng(20261202)
    cases = []

    def add(name, logits, temperature, top_k, top_p, suppress=()):
        logits = [f32(v) for v in logits]
        temperature, top_p = f32(temperature), f32(top_p)
        want32, margin32 = kept(logits, temperature, top_k, top_p, suppress, np.float32)
        want64, margin64 = kept(logits, temperature, top_k, top_p, suppress, np.float64)
        assert want32 == want64, f"{name}: float32 and float64 disagree"
        if margin64 is not None:
            assert min(margin32, margin64) > MARGIN, f"{name}: top-p margin {margin32}"
        cases.append(
            {
                "name": name,
                "logits": logits,
                "temperature": temperature,
                "top_k": top_k,
                "top_p": top_p,
                "suppress": list(suppress),
                "kept": want32,
                "top_p_margin": margin64,
            }
        )

    def logits(v, scale=3.0):
        return (rng.standard_normal(v) * scale).tolist()

    # Top-k then top-p: the nucleus is taken over the renormalised top-k (the defect this
    # golden pins: over the whole vocabulary it keeps more tokens).
    add("topk_topp_v64", logits(64), 1.0, 10, 0.8)
    add("topk_topp_tempered_v100", logits(100), 0.7, 20, 0.9)
    add("topk_topp_hot_v100", logits(100), 1.6, 30, 0.75)
    add("topk_topp_flat_v200", logits(200, 0.5), 1.0, 50, 0.5)
    add("topk_topp_suppressed_v80", logits(80), 1.0, 8, 0.9, suppress=(3, 17, 41))
    add("topk_small_topp_v50", logits(50), 1.0, 3, 0.95)
    # Each truncation alone.
    add("topp_only_v64", logits(64), 1.0, 0, 0.9)
    add("topp_only_tempered_v64", logits(64), 0.5, 0, 0.6)
    add("topk_only_v64", logits(64), 1.2, 7, 1.0)
    # top_k = 1 keeps the argmax; top_k above the vocabulary keeps everything top-p keeps.
    add("topk_one_v40", logits(40), 1.0, 1, 0.9)
    add("topk_above_vocab_v30", logits(30), 1.0, 100, 0.85)
    # A tiny top_p keeps only the most likely token.
    add("topp_tiny_v40", logits(40), 1.0, 5, 1e-6)
    # Ties at the k-th value: TopK keeps every tied token (scores < kth are removed).
    tied = logits(32)
    order = np.argsort(tied)[::-1]
    for i in order[3:6]:
        tied[i] = tied[order[3]]
    add("topk_ties_at_kth_v32", tied, 1.0, 4, 1.0)
    # Suppressed tokens beyond the top-k count: k exceeds the tokens left.
    add("topk_exceeds_unsuppressed_v6", logits(6), 1.0, 5, 1.0, suppress=(0, 2, 4))

    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "generator": "tools/golden/topk_topp_reference.py",
        "reference": "transformers 5.24.0 SuppressTokens/Temperature/TopK/TopP warpers, in numpy",
        "cases": cases,
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    for c in cases:
        print(f"{c['name']}: {len(c['kept'])} kept, top-p margin {c['top_p_margin']}")


if __name__ == "__main__":
    main()
