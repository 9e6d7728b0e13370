//! Supervised fine-tuning: token cross-entropy on response tokens, averaged over the trained
//! tokens of the batch (the SFT warm-up before RL, and off-policy distillation on teacher samples,
//! which minimises the sequence-level forward KL `KL(π_T ‖ π_θ)`):
//!
//! ```text
//! L = − Σ_{i,t} m_{i,t} log π_θ(y_{i,t}) / Σ_{i,t} m_{i,t}
//! ```
//!
//! `∂L/∂log π_θ(y_{i,t}) = −m_{i,t} / N`. Untrained positions (prompt, tool output, padding) are
//! replaced by 0 first, so they may hold anything; a batch without trained tokens has loss 0.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::Aggregation;
use crate::error::{LearnerError, Result};

/// The SFT loss and its metrics.
#[derive(Debug, Clone)]
pub struct SftOutput<B: Backend> {
    /// `[1]`: mean negative log-likelihood of the trained tokens.
    pub loss: Tensor<B, 1>,
    /// Statistics of the batch.
    pub metrics: SftMetrics,
}

/// Statistics of one SFT batch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SftMetrics {
    /// The loss value: mean negative log-likelihood per trained token.
    pub loss: f64,
    /// Trained tokens in the batch.
    pub tokens: usize,
}

/// Token-mean cross-entropy of the trained tokens.
///
/// # Shapes
/// - `logprobs`, `mask`: `[batch, T]` (`mask > 0.5` = trained)
/// - returns `loss`: `[1]`
pub fn cross_entropy<B: Backend>(
    logprobs: Tensor<B, 2>,
    mask: Tensor<B, 2>,
) -> Result<SftOutput<B>> {
    if mask.dims() != logprobs.dims() {
        return Err(LearnerError::Shape {
            name: "mask",
            actual: mask.dims().to_vec(),
            expected: logprobs.dims().to_vec(),
        });
    }
    let mask = mask.detach().greater_elem(0.5).float();
    let tokens = mask.clone().sum();
    let loss = Aggregation::TokenMean.aggregate(logprobs.neg(), mask);
    let values: Vec<f64> = Tensor::cat(vec![loss.clone().detach(), tokens], 0)
        .into_data()
        .iter::<f64>()
        .collect();
    Ok(SftOutput {
        loss,
        metrics: SftMetrics {
            loss: values[0],
            tokens: values[1].round() as usize,
        },
    })
}
