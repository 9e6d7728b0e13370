//! [`UpdateStats`]: the objective's figures over one RL step's updates, gathered micro-batch by
//! micro-batch and turned into the step's [`UpdateRecord`].

use burn::prelude::*;

use super::records::UpdateRecord;
use crate::objectives::{LossMetrics, PolicyLoss};

/// Σ weight · value and Σ weight of one figure over micro-batches.
#[derive(Debug, Default, Clone, Copy)]
struct Weighted {
    sum: f64,
    weight: f64,
}

impl Weighted {
    fn add(&mut self, value: Option<f64>, weight: f64) {
        if let Some(value) = value {
            self.sum += weight * value;
            self.weight += weight;
        }
    }

    /// The weighted mean; micro-batch weights sum to 1 per update, so over several updates this
    /// is the mean of the updates' values.
    fn mean(self) -> Option<f64> {
        (self.weight > 0.0).then(|| self.sum / self.weight)
    }
}

/// The loss metrics of a step's updates, combined.
#[derive(Debug, Default)]
pub(super) struct UpdateStats {
    pub(super) updates: usize,
    pub(super) lr: f64,
    pub(super) grad_norms: Vec<f64>,
    loss: Weighted,
    pg_loss: Weighted,
    clip_fraction: Weighted,
    sapo_gate_mean: Weighted,
    ratio_mean: Weighted,
    seq_ratio_mean: Weighted,
    approx_kl: Weighted,
    kl: Weighted,
    ratio_min: Option<f64>,
    ratio_max: Option<f64>,
    pub(super) entropy_sum: f64,
    pub(super) entropy_tokens: usize,
    mismatch_sum: f64,
    mismatch_max: f64,
    mismatch_tokens: f64,
}

impl UpdateStats {
    /// Adds one micro-batch's metrics with its share `weight` of the update.
    pub(super) fn add(&mut self, metrics: &LossMetrics, weight: f64) {
        self.loss.add(Some(metrics.loss), weight);
        self.pg_loss.add(Some(metrics.pg_loss), weight);
        self.clip_fraction.add(metrics.clip_fraction, weight);
        self.sapo_gate_mean.add(metrics.gate_weight_mean, weight);
        self.ratio_mean.add(metrics.ratio_mean, weight);
        self.seq_ratio_mean.add(metrics.seq_ratio_mean, weight);
        self.approx_kl.add(metrics.approx_kl, weight);
        self.kl.add(metrics.kl, weight);
        if let Some(v) = metrics.ratio_min {
            self.ratio_min = Some(self.ratio_min.map_or(v, |m| m.min(v)));
        }
        if let Some(v) = metrics.ratio_max {
            self.ratio_max = Some(self.ratio_max.map_or(v, |m| m.max(v)));
        }
    }

    /// Train/inference mismatch: `|log π_learner − log π_behaviour|` on trained tokens, before
    /// any update of the step (the learner's copy and the sampler's are the same weights).
    pub(super) fn record_mismatch<B: Backend>(
        &mut self,
        learner: Tensor<B, 2>,
        behaviour: Tensor<B, 2>,
        mask: Tensor<B, 2>,
    ) {
        let diff = (learner - behaviour).abs() * mask.clone();
        let values = Tensor::cat(vec![diff.clone().sum(), diff.max(), mask.sum()], 0)
            .into_data()
            .iter::<f64>()
            .collect::<Vec<_>>();
        self.mismatch_sum += values[0];
        self.mismatch_max = self.mismatch_max.max(values[1]);
        self.mismatch_tokens += values[2];
    }

    /// The step's record of the objective `loss`.
    pub(super) fn record(&self, loss: &PolicyLoss) -> UpdateRecord {
        let mismatch = self.mismatch_tokens > 0.0;
        UpdateRecord {
            loss_kind: loss.kind().to_string(),
            loss: self.loss.mean(),
            pg_loss: self.pg_loss.mean(),
            clip_fraction: self.clip_fraction.mean(),
            sapo_gate_mean: self.sapo_gate_mean.mean(),
            ratio_mean: self.ratio_mean.mean(),
            seq_ratio_mean: self.seq_ratio_mean.mean(),
            approx_kl: self.approx_kl.mean(),
            kl: self.kl.mean(),
            ratio_min: self.ratio_min,
            ratio_max: self.ratio_max,
            grad_norm: (!self.grad_norms.is_empty())
                .then(|| self.grad_norms.iter().sum::<f64>() / self.grad_norms.len() as f64),
            lr: self.lr,
            updates: self.updates,
            entropy: (self.entropy_tokens > 0)
                .then(|| self.entropy_sum / self.entropy_tokens as f64),
            logprob_mismatch_mean: mismatch.then(|| self.mismatch_sum / self.mismatch_tokens),
            logprob_mismatch_max: mismatch.then_some(self.mismatch_max),
        }
    }
}
