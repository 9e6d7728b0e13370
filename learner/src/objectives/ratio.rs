//! Importance ratios `r = π_θ / π_old = exp(log π_θ − log π_old)` and their clamp.
//!
//! Every objective clamps a log-ratio to `[LOG_RATIO_MIN, LOG_RATIO_MAX]` before `exp`, as verl
//! does (`compute_policy_loss_gspo` clamps at ≤ 10, its token losses at ±20). Inside the range
//! nothing changes; outside it the clamped value is a constant, so the term keeps a finite value
//! and gets a zero gradient (no `inf`, no `inf · 0 = NaN`). `e^10 ≈ 22026` is far beyond any clip
//! range; `e^−20 ≈ 2e−9` is numerically zero. The gradient passes at the bounds themselves, as
//! with `torch.clamp`.

use burn::prelude::*;

/// Lower clamp of a log-ratio before `exp`.
pub const LOG_RATIO_MIN: f64 = -20.0;
/// Upper clamp of a log-ratio before `exp`.
pub const LOG_RATIO_MAX: f64 = 10.0;

/// `clamp(log_ratio, LOG_RATIO_MIN, LOG_RATIO_MAX)`.
pub fn clamp_log_ratio<B: Backend, const D: usize>(log_ratio: Tensor<B, D>) -> Tensor<B, D> {
    log_ratio.clamp(LOG_RATIO_MIN, LOG_RATIO_MAX)
}
