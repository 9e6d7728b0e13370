//! SAPO, Soft Adaptive Policy Optimization (Gao, Zheng et al., Qwen, arXiv 2511.20347).
//!
//! A smooth gate on each token ratio replaces the hard clip:
//!
//! ```text
//! r_{i,t} = exp( clamp(log π_θ − log π_old) )
//! τ_{i,t} = τ_pos if Â_{i,t} > 0 else τ_neg
//! f(r)    = σ( τ (r − 1) ) · 4/τ
//! J       = (1/|S|) Σ_{i∈S} (1/n_i) Σ_t m_{i,t} f_{i,t}(r_{i,t}) Â_{i,t}
//! ```
//!
//! (aggregation `SeqMeanTokenMean`); loss `= −J + β · SeqMeanTokenMean(k3)`.
//! `∂f/∂r = 4 σ (1 − σ)` is 1 at `r = 1`, so on-policy SAPO has the plain policy gradient, and it
//! decays smoothly as `r` leaves 1, faster for larger τ. Defaults from the paper: τ_pos 1.0,
//! τ_neg 1.05 (negative-advantage updates are less stable, so they are damped faster); no KL.

use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::batch::TokenBatch;
use super::metrics::Extras;
use super::{Aggregation, LossOutput, PolicyInputs};
use crate::error::{Result, non_negative, positive};

/// Hyper-parameters of SAPO.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SapoConfig {
    /// Gate temperature for tokens with `Â > 0` [1.0].
    pub tau_pos: f64,
    /// Gate temperature for tokens with `Â ≤ 0` [1.05].
    pub tau_neg: f64,
    /// β: weight of the k3 KL to the reference policy [0 = off].
    pub kl_coef: f64,
}

impl Default for SapoConfig {
    fn default() -> Self {
        Self {
            tau_pos: 1.0,
            tau_neg: 1.05,
            kl_coef: 0.0,
        }
    }
}

impl SapoConfig {
    /// Rejects non-positive temperatures and a negative KL weight, naming the field.
    pub fn validate(&self) -> Result<()> {
        positive("sapo", "tau_pos", self.tau_pos)?;
        positive("sapo", "tau_neg", self.tau_neg)?;
        non_negative("sapo", "kl_coef", self.kl_coef)
    }
}

/// The SAPO loss of one batch; see the module doc.
pub fn loss<B: Backend>(config: &SapoConfig, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
    config.validate()?;
    let batch = TokenBatch::new(inputs, "sapo", true, config.kl_coef > 0.0)?;
    let advantages = batch.advantages.clone();

    // 1. Token ratios and per-token temperatures: [batch, T]
    let ratio = batch.log_ratio().exp();
    let tau = advantages.clone().greater_elem(0.0).float() * (config.tau_pos - config.tau_neg)
        + config.tau_neg;
    // 2. Soft gate f(r) = σ(τ(r − 1)) · 4/τ.
    let gate = sigmoid((ratio - 1.0) * tau.clone());
    let soft_ratio = gate.clone() * 4.0 / tau;
    let aggregation = Aggregation::SeqMeanTokenMean;
    let pg_loss = aggregation.aggregate((soft_ratio * advantages).neg(), batch.mask.clone());

    let gate = gate.detach();
    let extras = Extras {
        gate_weight: Some(gate.clone() * (gate.neg() + 1.0) * 4.0),
        ..Extras::default()
    };
    Ok(batch.finish(pg_loss, aggregation, config.kl_coef, extras))
}
