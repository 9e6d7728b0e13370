//! [`TokenBatch`]: a [`PolicyInputs`] batch checked and sanitised once, shared by every objective.
//!
//! Untrained positions of every input are replaced by 0 (so the log-ratio there is 0, the ratio
//! 1, and no NaN or ±inf stored in padding can reach the loss or the gradient); the behaviour and
//! reference log-probs and the advantages are detached.

use burn::prelude::*;

use super::kl::k3;
use super::metrics::{Extras, MetricInputs};
use super::ratio::clamp_log_ratio;
use super::{Advantages, Aggregation, LossMetrics, LossOutput, PolicyInputs};
use crate::error::{LearnerError, Result};

/// A checked, sanitised batch.
pub(crate) struct TokenBatch<B: Backend> {
    /// `[batch, T]` current-policy log-probs (differentiable), 0 at untrained positions.
    pub logprobs: Tensor<B, 2>,
    /// `[batch, T]` behaviour log-probs (detached), 0 at untrained positions.
    pub old_logprobs: Tensor<B, 2>,
    /// `[batch, T]` reference log-probs (detached), 0 at untrained positions.
    pub ref_logprobs: Option<Tensor<B, 2>>,
    /// `[batch, T]` per-token advantages (detached), 0 at untrained positions.
    pub advantages: Tensor<B, 2>,
    /// `[batch, 1]` per-sequence advantages when they were given per sequence (0 for empty rows).
    pub seq_advantages: Option<Tensor<B, 2>>,
    /// `[batch, T]` trained positions.
    pub trained: Tensor<B, 2, Bool>,
    /// `[batch, T]` the mask as 0/1 floats.
    pub mask: Tensor<B, 2>,
    /// `[batch, 1]` trained tokens per row, `n_i`.
    pub lengths: Tensor<B, 2>,
}

impl<B: Backend> TokenBatch<B> {
    /// Checks shapes, the advantage kind the objective accepts and the presence of the reference
    /// log-probs when `needs_ref`; `kind` names the objective in errors.
    pub fn new(
        inputs: PolicyInputs<B>,
        kind: &'static str,
        token_advantages_allowed: bool,
        needs_ref: bool,
    ) -> Result<Self> {
        let PolicyInputs {
            logprobs,
            old_logprobs,
            ref_logprobs,
            advantages,
            mask,
        } = inputs;
        let [batch, len] = logprobs.dims();
        if batch == 0 || len == 0 {
            return Err(LearnerError::input(
                "logprobs",
                format!("empty batch of shape [{batch}, {len}]"),
            ));
        }
        let expect = |name: &'static str, actual: Vec<usize>, expected: Vec<usize>| {
            if actual == expected {
                Ok(())
            } else {
                Err(LearnerError::Shape {
                    name,
                    actual,
                    expected,
                })
            }
        };
        expect(
            "old_logprobs",
            old_logprobs.dims().to_vec(),
            vec![batch, len],
        )?;
        expect("mask", mask.dims().to_vec(), vec![batch, len])?;
        if let Some(r) = &ref_logprobs {
            expect("ref_logprobs", r.dims().to_vec(), vec![batch, len])?;
        } else if needs_ref {
            return Err(LearnerError::input(
                "ref_logprobs",
                format!("`{kind}` has a positive `kl_coef` and needs reference log-probs"),
            ));
        }

        let trained = mask.detach().greater_elem(0.5);
        let untrained = trained.clone().bool_not();
        let mask = trained.clone().float();
        let lengths = mask.clone().sum_dim(1);
        let zero_untrained = |t: Tensor<B, 2>| t.mask_fill(untrained.clone(), 0.0);

        let (advantages, seq_advantages) = match advantages {
            Advantages::Sequence(a) => {
                expect("advantages", a.dims().to_vec(), vec![batch])?;
                let column = a
                    .detach()
                    .reshape([batch, 1])
                    .mask_fill(lengths.clone().lower_elem(0.5), 0.0);
                let grid = zero_untrained(column.clone().expand([batch, len]));
                (grid, Some(column))
            }
            Advantages::Token(a) => {
                if !token_advantages_allowed {
                    return Err(LearnerError::input(
                        "advantages",
                        format!(
                            "`{kind}` has one ratio per sequence and needs one advantage per \
                             sequence (`[batch]`); use `gspo_token` for per-token advantages"
                        ),
                    ));
                }
                expect("advantages", a.dims().to_vec(), vec![batch, len])?;
                (zero_untrained(a.detach()), None)
            }
        };

        Ok(Self {
            logprobs: zero_untrained(logprobs),
            old_logprobs: zero_untrained(old_logprobs.detach()),
            ref_logprobs: ref_logprobs.map(|r| zero_untrained(r.detach())),
            advantages,
            seq_advantages,
            trained,
            mask,
            lengths,
        })
    }

    /// `[batch, T]` clamped token log-ratios `clamp(log π_θ − log π_old)`, differentiable.
    pub fn log_ratio(&self) -> Tensor<B, 2> {
        clamp_log_ratio(self.logprobs.clone() - self.old_logprobs.clone())
    }

    /// `[batch, 1]` mean unclamped log-ratio over each row's trained tokens (0 for empty rows),
    /// differentiable: `(1/n_i) Σ_t m (log π_θ − log π_old)`.
    pub fn seq_log_ratio(&self) -> Tensor<B, 2> {
        let sum = (self.logprobs.clone() - self.old_logprobs.clone()).sum_dim(1);
        sum / self.lengths.clone().clamp_min(1.0)
    }

    /// Adds `kl_coef ·` the aggregated k3 KL to `pg_loss` (when `kl_coef > 0`) and reads the
    /// metrics.
    pub fn finish(
        &self,
        pg_loss: Tensor<B, 1>,
        aggregation: Aggregation,
        kl_coef: f64,
        extras: Extras<B>,
    ) -> LossOutput<B> {
        let kl = self
            .ref_logprobs
            .clone()
            .map(|r| k3(self.logprobs.clone(), r));
        let loss = match &kl {
            Some(kl) if kl_coef > 0.0 => {
                pg_loss.clone() + aggregation.aggregate(kl.clone(), self.mask.clone()) * kl_coef
            }
            _ => pg_loss.clone(),
        };
        let metrics = LossMetrics::read(
            self,
            MetricInputs {
                loss: loss.clone(),
                pg_loss,
                kl,
                extras,
            },
        );
        LossOutput { loss, metrics }
    }
}
