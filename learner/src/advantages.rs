//! Advantage estimators: one advantage per sample from scalar rewards grouped by prompt.
//!
//! Rewards come as `G = group_size` consecutive samples per prompt, so `rewards.len()` is a
//! multiple of `G`. With `mean_G` and `std_G` over a sample's own group:
//!
//! - [`AdvantageEstimator::GroupNorm`] with `std: true` (GRPO, DeepSeekMath arXiv 2402.03300; the
//!   advantage GSPO, SAPO and DAPO use): `Â_i = (R_i − mean_G R) / (std_G R + ε)`.
//!   `std_G` is the **sample** standard deviation (Bessel's `n − 1`), as `torch.std` computes it:
//!   verl's `compute_grpo_outcome_advantage` calls `torch.std` (ε 1e-6) and TRL's GRPO trainer
//!   calls `nanstd`, which applies Bessel's correction too (ε 1e-4). The default ε is verl's 1e-6.
//! - `GroupNorm` with `std: false` (Dr.GRPO, arXiv 2503.20783): `Â_i = R_i − mean_G R`; `eps` is
//!   unused.
//! - [`AdvantageEstimator::LeaveOneOut`] (RLOO, arXiv 2402.14740): the baseline is the mean of
//!   the *other* samples, `Â_i = R_i − (1/(G−1)) Σ_{j≠i} R_j = G/(G−1) · (R_i − mean_G R)`.
//!
//! A group whose rewards are all equal carries no learning signal: all its advantages are exactly
//! 0 (tested for equality first, so no `0/ε` rounding noise and no `0/0`). A group of size 1 has
//! no baseline and is an error for every estimator here. Statistics are computed in f64.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{LearnerError, Result, non_negative};

/// How per-sample advantages are computed from rewards grouped by prompt.
///
/// Deserialises from `{"kind": "group_norm", "eps": .., "std": ..}` or
/// `{"kind": "leave_one_out"}`; unknown kinds and fields are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    deny_unknown_fields,
    from = "EstimatorSerde"
)]
pub enum AdvantageEstimator {
    /// `(R − mean_G R) / (std_G R + eps)`, or `R − mean_G R` when `std` is false.
    GroupNorm {
        /// Added to the sample standard deviation [1e-6].
        #[serde(default = "default_eps")]
        eps: f64,
        /// Divide by the group's sample standard deviation (GRPO) or not (Dr.GRPO) [true].
        #[serde(default = "default_std")]
        std: bool,
    },
    /// RLOO: `R_i − mean_{j≠i} R_j`.
    LeaveOneOut,
}

/// The serde form: serde ignores extra fields of an internally tagged *unit* variant even with
/// `deny_unknown_fields`, so `LeaveOneOut` is read as an empty struct variant.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum EstimatorSerde {
    GroupNorm {
        #[serde(default = "default_eps")]
        eps: f64,
        #[serde(default = "default_std")]
        std: bool,
    },
    LeaveOneOut {},
}

impl From<EstimatorSerde> for AdvantageEstimator {
    fn from(value: EstimatorSerde) -> Self {
        match value {
            EstimatorSerde::GroupNorm { eps, std } => Self::GroupNorm { eps, std },
            EstimatorSerde::LeaveOneOut {} => Self::LeaveOneOut,
        }
    }
}

fn default_eps() -> f64 {
    1e-6
}

fn default_std() -> bool {
    true
}

impl Default for AdvantageEstimator {
    fn default() -> Self {
        Self::grpo()
    }
}

impl AdvantageEstimator {
    /// GRPO's group normalisation: `(R − mean) / (std + 1e-6)`.
    pub fn grpo() -> Self {
        Self::GroupNorm {
            eps: default_eps(),
            std: true,
        }
    }

    /// Dr.GRPO's group centring without the std division: `R − mean`.
    pub fn dr_grpo() -> Self {
        Self::GroupNorm {
            eps: default_eps(),
            std: false,
        }
    }

    /// Rejects values outside their domain, naming the field.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::GroupNorm { eps, .. } => non_negative("group_norm", "eps", eps),
            Self::LeaveOneOut => Ok(()),
        }
    }

    /// One advantage per reward; `rewards` holds `rewards.len() / group_size` groups of
    /// `group_size` consecutive samples each.
    ///
    /// Errors: `group_size < 2`, a length that is not a multiple of `group_size`, a non-finite
    /// reward (a failed reward must be quarantined upstream, never passed on as NaN).
    pub fn compute(&self, rewards: &[f32], group_size: usize) -> Result<Vec<f32>> {
        self.validate()?;
        if group_size < 2 {
            return Err(LearnerError::input(
                "group_size",
                format!(
                    "group-based advantages need at least 2 samples per prompt, got {group_size}"
                ),
            ));
        }
        if !rewards.len().is_multiple_of(group_size) {
            return Err(LearnerError::input(
                "rewards",
                format!(
                    "{} rewards do not split into groups of {group_size}",
                    rewards.len()
                ),
            ));
        }
        if let Some(i) = rewards.iter().position(|r| !r.is_finite()) {
            return Err(LearnerError::input(
                "rewards",
                format!("reward {i} is {}", rewards[i]),
            ));
        }
        let mut advantages = Vec::with_capacity(rewards.len());
        for group in rewards.chunks(group_size) {
            advantages.extend(self.group(group));
        }
        Ok(advantages)
    }

    /// Advantages of one group (at least 2 finite rewards).
    fn group(&self, rewards: &[f32]) -> Vec<f32> {
        let first = rewards[0];
        if rewards.iter().all(|&r| r == first) {
            return vec![0.0; rewards.len()];
        }
        let n = rewards.len() as f64;
        let mean = rewards.iter().map(|&r| r as f64).sum::<f64>() / n;
        let scale = match *self {
            Self::GroupNorm { std: false, .. } => 1.0,
            Self::GroupNorm { eps, std: true } => {
                let var = rewards
                    .iter()
                    .map(|&r| (r as f64 - mean).powi(2))
                    .sum::<f64>()
                    / (n - 1.0);
                1.0 / (var.sqrt() + eps)
            }
            Self::LeaveOneOut => n / (n - 1.0),
        };
        rewards
            .iter()
            .map(|&r| ((r as f64 - mean) * scale) as f32)
            .collect()
    }
}

/// Per-token advantages `[batch, T]` from per-sequence ones: `Â_i` on the trained tokens of row
/// `i` (`mask > 0.5`), 0 on every other position.
///
/// # Shapes
/// - `advantages`: `batch` values; `mask`: `[batch, T]`.
pub fn token_advantages<B: Backend>(
    advantages: &[f32],
    mask: Tensor<B, 2>,
) -> Result<Tensor<B, 2>> {
    let [batch, _] = mask.dims();
    if advantages.len() != batch {
        return Err(LearnerError::Shape {
            name: "advantages",
            actual: vec![advantages.len()],
            expected: vec![batch],
        });
    }
    let column = Tensor::<B, 1>::from_data(
        TensorData::new(advantages.to_vec(), [batch]),
        &mask.device(),
    )
    .reshape([batch, 1]);
    Ok(mask.greater_elem(0.5).float() * column)
}
