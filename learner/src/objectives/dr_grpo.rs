//! Dr.GRPO, "GRPO done right" (Liu et al., Understanding R1-Zero-Like Training,
//! arXiv 2503.20783): GRPO without its two length/difficulty biases, i.e. no per-sequence
//! `1/|o_i|` and no std division in the advantages:
//!
//! ```text
//! r_{i,t} = exp( clamp(log π_θ − log π_old) )
//! J = (1/(B · L)) Σ_{i,t} m_{i,t} min( r Â, clip(r, 1−ε, 1+ε) Â )
//! ```
//!
//! with `B` the batch rows and `L = max_response_len` a constant (the generation budget, not the
//! padded width of the batch, which changes from batch to batch); aggregation `TokenSumNorm`, as
//! TRL's `loss_type="dr_grpo"` (`B × max_completion_length`). The advantages are
//! `Â_i = R_i − mean_G R` ([`AdvantageEstimator::dr_grpo`](crate::AdvantageEstimator::dr_grpo)).
//! ε defaults to PPO's 0.2; no KL. `max_response_len` has no default: it must be the run's
//! generation limit.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::TokenBatch;
use super::grpo::token_clip_loss;
use super::{Aggregation, LossOutput, PolicyInputs};
use crate::error::{LearnerError, Result, non_negative};

/// Hyper-parameters of Dr.GRPO.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrGrpoConfig {
    /// ε: token ratios are clipped to `[1 − ε, 1 + ε]` [0.2].
    #[serde(default = "default_eps")]
    pub eps: f64,
    /// The constant length normaliser `L`: the maximum response length of the run (required).
    pub max_response_len: usize,
}

fn default_eps() -> f64 {
    0.2
}

impl DrGrpoConfig {
    /// Default ε with the run's maximum response length.
    pub fn new(max_response_len: usize) -> Self {
        Self {
            eps: default_eps(),
            max_response_len,
        }
    }

    /// Rejects a negative ε and a zero length, naming the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("dr_grpo", "eps", self.eps)?;
        if self.max_response_len == 0 {
            return Err(LearnerError::config(
                "dr_grpo",
                "max_response_len",
                0,
                "must be >= 1",
            ));
        }
        Ok(())
    }
}

/// The Dr.GRPO loss of one batch; see the module doc.
pub fn loss<B: Backend>(config: &DrGrpoConfig, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
    config.validate()?;
    let batch = TokenBatch::new(inputs, "dr_grpo", true, false)?;
    Ok(token_clip_loss(
        &batch,
        config.eps,
        config.eps,
        Aggregation::TokenSumNorm {
            max_response_len: config.max_response_len,
        },
        0.0,
    ))
}
