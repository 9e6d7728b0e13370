//! DAPO, Decoupled Clip and Dynamic sAmpling Policy Optimization (Yu et al., arXiv 2503.14476,
//! Eq. 8): GRPO with a wider upper clip ("clip-higher") and a token-level loss over the whole
//! batch, without KL:
//!
//! ```text
//! r_{i,t} = exp( clamp(log π_θ − log π_old) )
//! J = (1/N) Σ_{i,t} m_{i,t} min( r Â, clip(r, 1−ε_low, 1+ε_high) Â ),   N = Σ_{i,t} m_{i,t}
//! ```
//!
//! (aggregation `TokenMean`: long responses weigh in proportion to their length; loss `= −J`).
//! Defaults from the paper: ε_low 0.2, ε_high 0.28. DAPO's dynamic sampling (drop groups whose
//! rewards are all equal) and overlong reward shaping happen before the loss, in the batch
//! builder and the rewards; here such a group simply has `Â = 0` and contributes no gradient.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::TokenBatch;
use super::grpo::token_clip_loss;
use super::{Aggregation, LossOutput, PolicyInputs};
use crate::error::{Result, non_negative};

/// Hyper-parameters of DAPO.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DapoConfig {
    /// ε_low: token ratios are clipped below at `1 − ε_low` [0.2].
    pub eps_low: f64,
    /// ε_high: token ratios are clipped above at `1 + ε_high` [0.28].
    pub eps_high: f64,
}

impl Default for DapoConfig {
    fn default() -> Self {
        Self {
            eps_low: 0.2,
            eps_high: 0.28,
        }
    }
}

impl DapoConfig {
    /// Rejects negative or non-finite values, naming the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("dapo", "eps_low", self.eps_low)?;
        non_negative("dapo", "eps_high", self.eps_high)
    }
}

/// The DAPO loss of one batch; see the module doc.
pub fn loss<B: Backend>(config: &DapoConfig, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
    config.validate()?;
    let batch = TokenBatch::new(inputs, "dapo", true, false)?;
    Ok(token_clip_loss(
        &batch,
        config.eps_low,
        config.eps_high,
        Aggregation::TokenMean,
        0.0,
    ))
}
