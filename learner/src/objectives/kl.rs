//! k3 estimator of `KL(π_θ ‖ π_ref)` per sampled token (Schulman, "Approximating KL divergence",
//! 2020; GRPO, arXiv 2402.03300, Eq. 4):
//!
//! `k3 = π_ref/π_θ − log(π_ref/π_θ) − 1 = e^x − x − 1`, `x = log π_ref − log π_θ`,
//!
//! unbiased for the KL under `y ~ π_θ` and never negative. `x` is clamped to
//! [[`LOG_RATIO_MIN`](super::LOG_RATIO_MIN), [`LOG_RATIO_MAX`](super::LOG_RATIO_MAX)] before
//! `exp` like every log-ratio here (verl clamps `x` to
//! ±20 and then `k3` to ≤ 10; the second clamp is not used). Gradient:
//! `∂k3/∂log π_θ = 1 − π_ref/π_θ`.

use burn::prelude::*;

use super::ratio::clamp_log_ratio;

/// Per-token k3 KL of the policy to the reference, `[batch, T]` in, `[batch, T]` out.
pub fn k3<B: Backend>(logprobs: Tensor<B, 2>, ref_logprobs: Tensor<B, 2>) -> Tensor<B, 2> {
    let x = clamp_log_ratio(ref_logprobs - logprobs);
    x.clone().exp() - x - 1.0
}
