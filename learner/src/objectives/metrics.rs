//! [`LossMetrics`]: what one objective call reports, computed on the device and read back in one
//! transfer. Token statistics are over trained tokens, sequence statistics over non-empty rows;
//! a statistic that does not apply to the objective, or whose set is empty, is `None`.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::TokenBatch;

/// Statistics of one batch under one objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossMetrics {
    /// The loss value (policy-gradient term plus `kl_coef ·` the aggregated KL).
    pub loss: f64,
    /// The policy-gradient term alone, `−J`.
    pub pg_loss: f64,
    /// Trained tokens in the batch, `N = Σ m`.
    pub tokens: usize,
    /// Rows with at least one trained token, `|S|`.
    pub sequences: usize,
    /// Fraction of trained tokens whose term is clipped (zero gradient): GSPO (a token is clipped
    /// with its sequence), GSPO-token, GRPO, DAPO, Dr.GRPO.
    pub clip_fraction: Option<f64>,
    /// SAPO: mean gate slope `f'(r) = 4 σ(τ(r−1)) (1 − σ(τ(r−1)))`, the factor SAPO puts on the
    /// plain policy gradient `Â·∇r` of each token: 1 on-policy, → 0 as `r` leaves 1.
    pub gate_weight_mean: Option<f64>,
    /// Mean token ratio `r = exp(clamp(log π_θ − log π_old))`.
    pub ratio_mean: Option<f64>,
    /// Smallest token ratio.
    pub ratio_min: Option<f64>,
    /// Largest token ratio.
    pub ratio_max: Option<f64>,
    /// `mean(log π_old − log π_θ)`: the k1 estimate of `KL(π_old ‖ π_θ)` (verl's `ppo_kl`).
    pub approx_kl: Option<f64>,
    /// GSPO, GSPO-token: mean sequence ratio `s_i = exp(clamp(mean_t log r_{i,t}))`.
    pub seq_ratio_mean: Option<f64>,
    /// Mean k3 KL to the reference policy, when `ref_logprobs` are given.
    pub kl: Option<f64>,
}

/// The tensors the metrics are computed from.
pub(crate) struct MetricInputs<B: Backend> {
    /// `[1]` total loss.
    pub loss: Tensor<B, 1>,
    /// `[1]` policy-gradient term.
    pub pg_loss: Tensor<B, 1>,
    /// `[batch, T]` per-token k3 KL.
    pub kl: Option<Tensor<B, 2>>,
    /// Objective-specific tensors.
    pub extras: Extras<B>,
}

/// Objective-specific tensors for the metrics; `None` where the statistic does not apply.
pub(crate) struct Extras<B: Backend> {
    /// `[batch, T]` or `[batch, 1]`: 1 where clipped.
    pub clipped: Option<Tensor<B, 2>>,
    /// `[batch, T]` SAPO gate slopes.
    pub gate_weight: Option<Tensor<B, 2>>,
    /// `[batch, 1]` sequence ratios.
    pub seq_ratio: Option<Tensor<B, 2>>,
}

impl<B: Backend> Default for Extras<B> {
    fn default() -> Self {
        Self {
            clipped: None,
            gate_weight: None,
            seq_ratio: None,
        }
    }
}

impl LossMetrics {
    /// Reduces everything to scalars on the device and reads them back at once.
    pub(crate) fn read<B: Backend>(batch: &TokenBatch<B>, inputs: MetricInputs<B>) -> Self {
        let mask = batch.mask.clone();
        let untrained = batch.trained.clone().bool_not();
        let log_ratio = batch.log_ratio().detach();
        let ratio = log_ratio.clone().exp();
        let token_sum = |t: Tensor<B, 2>| (t.detach() * mask.clone()).sum();

        let mut scalars = vec![
            inputs.loss.detach(),
            inputs.pg_loss.detach(),
            mask.clone().sum(),
            batch.lengths.clone().greater_elem(0.5).float().sum(),
            token_sum(ratio.clone()),
            ratio
                .clone()
                .mask_fill(untrained.clone(), f32::INFINITY)
                .min(),
            ratio.mask_fill(untrained, f32::NEG_INFINITY).max(),
            token_sum(-log_ratio),
        ];
        let extras = inputs.extras;
        let optional = [
            extras.clipped.map(token_sum),
            extras.gate_weight.map(token_sum),
            extras
                .seq_ratio
                .map(|s| (s.detach() * batch.lengths.clone().greater_elem(0.5).float()).sum()),
            inputs.kl.map(token_sum),
        ];
        let present: Vec<bool> = optional.iter().map(Option::is_some).collect();
        scalars.extend(optional.into_iter().flatten());

        let data = Tensor::cat(scalars, 0).into_data();
        let values: Vec<f64> = data.iter::<f64>().collect();
        let tokens = values[2].round() as usize;
        let sequences = values[3].round() as usize;
        let per_token = |sum: f64| (tokens > 0).then(|| sum / tokens as f64);
        let mut rest = values[8..].iter().copied();
        let mut next = |i: usize| if present[i] { rest.next() } else { None };
        let clip_sum = next(0);
        let gate_sum = next(1);
        let seq_ratio_sum = next(2);
        let kl_sum = next(3);

        Self {
            loss: values[0],
            pg_loss: values[1],
            tokens,
            sequences,
            clip_fraction: clip_sum.and_then(per_token),
            gate_weight_mean: gate_sum.and_then(per_token),
            ratio_mean: per_token(values[4]),
            ratio_min: (tokens > 0).then_some(values[5]),
            ratio_max: (tokens > 0).then_some(values[6]),
            approx_kl: per_token(values[7]),
            seq_ratio_mean: seq_ratio_sum
                .and_then(|sum| (sequences > 0).then(|| sum / sequences as f64)),
            kl: kl_sum.and_then(per_token),
        }
    }
}
