//! GSPO, Group Sequence Policy Optimization (Zheng et al., Qwen, arXiv 2507.18071).
//!
//! One importance ratio per sequence, the length-normalised geometric mean of its token ratios,
//! clipped at the sequence level:
//!
//! ```text
//! s_i = exp( clamp( (1/n_i) Σ_t m_{i,t} (log π_θ − log π_old)_{i,t} ) )
//! J   = (1/|S|) Σ_{i∈S} min( s_i Â_i, clip(s_i, 1−ε_low, 1+ε_high) Â_i )
//! ```
//!
//! over the non-empty rows `S`; loss `= −J + β · SeqMeanTokenMean(k3)`. Unclipped, the gradient
//! is `−(1/|S|) Â_i s_i (1/n_i)` for every trained token of row `i`: all tokens of a sequence
//! weigh the same. Advantages must be per sequence (use [`gspo_token`](super::gspo_token) for
//! per-token ones). Defaults are the paper's (§5.1): ε_low 3e-4, ε_high 4e-4, no KL (β = 0).
//! The clamp (at `[−20, 10]`) acts on the sequence log-ratio, as in verl's
//! `compute_policy_loss_gspo`; token log-ratios enter the mean unclamped.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::aggregate::seq_mean;
use super::batch::TokenBatch;
use super::clip::surrogate;
use super::metrics::Extras;
use super::ratio::clamp_log_ratio;
use super::{Aggregation, LossOutput, PolicyInputs};
use crate::error::{Result, non_negative};

/// Hyper-parameters of GSPO and GSPO-token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GspoConfig {
    /// ε_low: the sequence ratio is clipped below at `1 − ε_low` [3e-4].
    pub eps_low: f64,
    /// ε_high: the sequence ratio is clipped above at `1 + ε_high` [4e-4].
    pub eps_high: f64,
    /// β: weight of the k3 KL to the reference policy [0 = off].
    pub kl_coef: f64,
}

impl Default for GspoConfig {
    fn default() -> Self {
        Self {
            eps_low: 3e-4,
            eps_high: 4e-4,
            kl_coef: 0.0,
        }
    }
}

impl GspoConfig {
    /// Rejects negative or non-finite values, naming the field.
    pub fn validate(&self) -> Result<()> {
        self.validate_as("gspo")
    }

    /// [`validate`](Self::validate) with `section` (`gspo` or `gspo_token`) in the error.
    pub(crate) fn validate_as(&self, section: &'static str) -> Result<()> {
        non_negative(section, "eps_low", self.eps_low)?;
        non_negative(section, "eps_high", self.eps_high)?;
        non_negative(section, "kl_coef", self.kl_coef)
    }
}

/// The GSPO loss of one batch; see the module doc.
pub fn loss<B: Backend>(config: &GspoConfig, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
    config.validate_as("gspo")?;
    let batch = TokenBatch::new(inputs, "gspo", false, config.kl_coef > 0.0)?;
    let advantages = batch
        .seq_advantages
        .clone()
        .expect("per-sequence advantages are checked by TokenBatch::new");

    // 1. Sequence ratio s_i: [batch, 1]
    let seq_ratio = clamp_log_ratio(batch.seq_log_ratio()).exp();
    // 2. Clipped surrogate per sequence, mean over non-empty sequences.
    let (objective, clipped) = surrogate(
        seq_ratio.clone(),
        advantages,
        config.eps_low,
        config.eps_high,
    );
    let pg_loss = seq_mean(objective.neg(), batch.lengths.clone());

    let extras = Extras {
        clipped: Some(clipped.float()),
        seq_ratio: Some(seq_ratio),
        ..Extras::default()
    };
    Ok(batch.finish(
        pg_loss,
        Aggregation::SeqMeanTokenMean,
        config.kl_coef,
        extras,
    ))
}
