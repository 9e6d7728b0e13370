//! GRPO, Group Relative Policy Optimization (Shao et al., DeepSeekMath, arXiv 2402.03300, Eq. 3):
//! PPO's token-level clipped surrogate, averaged per sequence then over sequences, with an
//! optional k3 KL penalty to a reference policy:
//!
//! ```text
//! r_{i,t} = exp( clamp(log π_θ − log π_old) )
//! J = (1/|S|) Σ_{i∈S} (1/n_i) Σ_t m_{i,t} [ min( r Â, clip(r, 1−ε, 1+ε) Â ) − β k3_{i,t} ]
//! ```
//!
//! (aggregation `SeqMeanTokenMean`; loss `= −J`). Defaults: ε 0.2 (PPO's, verl's `clip_ratio`),
//! β 0 (KL off; DeepSeekMath used 0.04). Advantages per sequence or per token.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::TokenBatch;
use super::clip::surrogate;
use super::metrics::Extras;
use super::{Aggregation, LossOutput, PolicyInputs};
use crate::error::{Result, non_negative};

/// Hyper-parameters of GRPO.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpoConfig {
    /// ε: token ratios are clipped to `[1 − ε, 1 + ε]` [0.2].
    pub eps: f64,
    /// β: weight of the k3 KL to the reference policy [0 = off].
    pub kl_coef: f64,
}

impl Default for GrpoConfig {
    fn default() -> Self {
        Self {
            eps: 0.2,
            kl_coef: 0.0,
        }
    }
}

impl GrpoConfig {
    /// Rejects negative or non-finite values, naming the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("grpo", "eps", self.eps)?;
        non_negative("grpo", "kl_coef", self.kl_coef)
    }
}

/// The GRPO loss of one batch; see the module doc.
pub fn loss<B: Backend>(config: &GrpoConfig, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
    config.validate()?;
    let batch = TokenBatch::new(inputs, "grpo", true, config.kl_coef > 0.0)?;
    Ok(token_clip_loss(
        &batch,
        config.eps,
        config.eps,
        Aggregation::SeqMeanTokenMean,
        config.kl_coef,
    ))
}

/// The token-level clipped objective shared by GRPO, DAPO and Dr.GRPO, which differ only in
/// their clip range, aggregation and KL.
pub(crate) fn token_clip_loss<B: Backend>(
    batch: &TokenBatch<B>,
    eps_low: f64,
    eps_high: f64,
    aggregation: Aggregation,
    kl_coef: f64,
) -> LossOutput<B> {
    let ratio = batch.log_ratio().exp();
    let (objective, clipped) = surrogate(ratio, batch.advantages.clone(), eps_low, eps_high);
    let pg_loss = aggregation.aggregate(objective.neg(), batch.mask.clone());
    let extras = Extras {
        clipped: Some(clipped.float()),
        ..Extras::default()
    };
    batch.finish(pg_loss, aggregation, kl_coef, extras)
}
