//! GSPO-token (Zheng et al., Qwen, arXiv 2507.18071, §4.3): GSPO's sequence ratio carried by
//! every token, so advantages may differ per token:
//!
//! ```text
//! s_{i,t} = sg[s_i] · π_θ(y_{i,t}) / sg[π_θ(y_{i,t})]
//!         = exp( clamp( sg[log s_i] + log π_θ(y_{i,t}) − sg[log π_θ(y_{i,t})] ) )
//! J = (1/|S|) Σ_{i∈S} (1/n_i) Σ_t m_{i,t} min( s_{i,t} Â_{i,t}, clip(s_{i,t}, 1−ε_low, 1+ε_high) Â_{i,t} )
//! ```
//!
//! (`sg` = stop-gradient, `log s_i` the unclamped mean token log-ratio of row `i`; aggregation
//! `SeqMeanTokenMean`). `s_{i,t}` equals `s_i` in value and has gradient `s_i ∇log π_θ(y_{i,t})`,
//! so with `Â_{i,t} = Â_i` the loss and its gradient are exactly GSPO's. This is how verl
//! implements its `gspo` loss. Hyper-parameters: [`GspoConfig`].

use burn::prelude::*;

use super::batch::TokenBatch;
use super::clip::surrogate;
use super::metrics::Extras;
use super::ratio::clamp_log_ratio;
use super::{Aggregation, GspoConfig, LossOutput, PolicyInputs};
use crate::error::Result;

/// The GSPO-token loss of one batch; see the module doc.
pub fn loss<B: Backend>(config: &GspoConfig, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
    config.validate_as("gspo_token")?;
    let batch = TokenBatch::new(inputs, "gspo_token", true, config.kl_coef > 0.0)?;

    // 1. Token-carried sequence ratio s_{i,t}: [batch, T]
    let seq_log_ratio = batch.seq_log_ratio().detach(); // [batch, 1]
    let logprobs = batch.logprobs.clone();
    let log_ratio = seq_log_ratio.clone() + logprobs.clone() - logprobs.detach();
    let ratio = clamp_log_ratio(log_ratio).exp();
    // 2. Clipped surrogate per token, SeqMeanTokenMean.
    let (objective, clipped) = surrogate(
        ratio,
        batch.advantages.clone(),
        config.eps_low,
        config.eps_high,
    );
    let aggregation = Aggregation::SeqMeanTokenMean;
    let pg_loss = aggregation.aggregate(objective.neg(), batch.mask.clone());

    let extras = Extras {
        clipped: Some(clipped.float()),
        seq_ratio: Some(clamp_log_ratio(seq_log_ratio).exp()),
        ..Extras::default()
    };
    Ok(batch.finish(pg_loss, aggregation, config.kl_coef, extras))
}
