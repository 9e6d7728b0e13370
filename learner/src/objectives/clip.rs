//! The PPO clipped surrogate `min(r·Â, clip(r, 1−ε_low, 1+ε_high)·Â)` (arXiv 1707.06347), shared
//! by GSPO (on sequence ratios) and GRPO / DAPO / Dr.GRPO (on token ratios).
//!
//! Written as a selection instead of `min`: the term is *clipped* when `Â > 0` and
//! `r > 1+ε_high`, or `Â < 0` and `r < 1−ε_low`; then its value is `clip(r)·Â` (constant, zero
//! gradient), otherwise `r·Â`. This equals the `min` form in value everywhere and in gradient
//! everywhere but on ties, where the `min` form's gradient is ambiguous.

use burn::prelude::*;

/// Returns the surrogate `J` (to maximise) and whether each element is clipped.
pub(crate) fn surrogate<B: Backend, const D: usize>(
    ratio: Tensor<B, D>,
    advantages: Tensor<B, D>,
    eps_low: f64,
    eps_high: f64,
) -> (Tensor<B, D>, Tensor<B, D, Bool>) {
    let (low, high) = (1.0 - eps_low, 1.0 + eps_high);
    let pushed_up = advantages
        .clone()
        .greater_elem(0.0)
        .bool_and(ratio.clone().greater_elem(high));
    let pushed_down = advantages
        .clone()
        .lower_elem(0.0)
        .bool_and(ratio.clone().lower_elem(low));
    let clipped = pushed_up.bool_or(pushed_down);
    let unclipped_term = ratio.clone() * advantages.clone();
    let clipped_term = ratio.clamp(low, high) * advantages;
    (
        unclipped_term.mask_where(clipped.clone(), clipped_term),
        clipped,
    )
}
