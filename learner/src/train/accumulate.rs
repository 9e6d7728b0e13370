//! The one micro-batch / accumulate routine of both stages.
//!
//! A batch of `(prompt, sample)` rows is cut into micro-batches of at most `micro` rows. Each
//! micro-batch is
//! 1. laid out ([`ResponseBatch`]: prompt, sample tokens, each sample's `response_mask`, the
//!    prompt's and the sample's tool images),
//! 2. scored under a fresh compute copy of the policy ([`Trainer::compute_model`]: the graph of
//!    a backward pass is consumed, precision casts included) at the stage's temperature,
//! 3. turned by the stage's objective into its share of the batch loss (SFT: token-weighted
//!    cross-entropy; RL: the policy loss weighted by the objective's aggregation), and
//! 4. back-propagated, its gradients added to one accumulator.
//!
//! So an update's gradient is the same whatever `micro` is (up to float summation order).

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use temper_model::Qwen3Vl;
use temper_model::logprobs::{EntropyGrad, TokenScores};
use temper_model::processor::PreparedPrompt;
use temper_rewards::rollout::Sample;

use super::TrainError;
use super::sequences::ResponseBatch;
use super::trainer::Trainer;

/// One micro-batch, scored, as the stage's objective receives it.
pub(super) struct MicroBatch<B: AutodiffBackend> {
    /// Its rows laid out.
    pub(super) batch: ResponseBatch<B>,
    /// `[rows, R]` log-probs (differentiable) and entropies of the response window
    /// (differentiable when the caller asked for [`EntropyGrad::Tracked`]).
    pub(super) scores: TokenScores<B>,
    /// `[rows, R]`: 1 at trained tokens.
    pub(super) mask: Tensor<B, 2>,
}

/// The summed gradients of a batch and what passing it through the learner cost.
pub(super) struct Accumulated {
    /// Σ over micro-batches of the gradients of their weighted losses.
    pub(super) grads: GradientsParams,
    /// Sequence tokens (rows × padded length) through the learner.
    pub(super) sequence_tokens: usize,
    /// Σ policy entropy over trained tokens.
    pub(super) entropy_sum: f64,
    /// Trained tokens (mask 1).
    pub(super) trained_tokens: usize,
}

/// Rows per micro-batch: `configured`, or all `rows` when 0.
pub(super) fn micro_rows(configured: usize, rows: usize) -> usize {
    if configured == 0 {
        rows.max(1)
    } else {
        configured
    }
}

impl<B: AutodiffBackend> Trainer<B> {
    /// The gradient of `rows[selected]` under `loss`, `micro` rows at a time (steps 1–4 of the
    /// module doc). `loss` gets each micro-batch's indexes into `rows` and the scored batch, and
    /// returns that micro-batch's weighted share of the loss; `entropy` says whether that loss
    /// may differentiate the entropies.
    pub(super) fn accumulate(
        &self,
        rows: &[(&PreparedPrompt, &Sample)],
        selected: &[usize],
        micro: usize,
        temperature: f32,
        entropy: EntropyGrad,
        mut loss: impl FnMut(&[usize], MicroBatch<B>) -> Result<Tensor<B, 1>, TrainError>,
    ) -> Result<Accumulated, TrainError> {
        let mut accumulator = GradientsAccumulator::<Qwen3Vl<B>>::new();
        let mut sequence_tokens = 0usize;
        let mut entropy_sum = 0.0;
        let mut trained_tokens = 0usize;
        for chunk in selected.chunks(micro.max(1)) {
            // 1. Lay out.
            let pairs: Vec<(&PreparedPrompt, &Sample)> = chunk.iter().map(|&i| rows[i]).collect();
            let batch = ResponseBatch::<B>::new(&self.processor, &pairs, &self.device)?;
            sequence_tokens += batch.forward_tokens();
            // 2. Score: [rows, R] log-probs and entropies.
            let scores = batch.scores(
                &self.compute_model(),
                temperature,
                &self.suppressed,
                entropy,
            )?;
            let mask = batch.mask(&self.device);
            entropy_sum += (scores.entropy.clone().detach() * mask.clone())
                .sum()
                .into_scalar()
                .elem::<f64>();
            trained_tokens += batch.trained_tokens().iter().sum::<usize>();
            // 3. The objective's weighted share: [1].
            let share = loss(
                chunk,
                MicroBatch {
                    batch,
                    scores,
                    mask,
                },
            )?;
            // 4. Back-propagate and accumulate.
            let grads = share.backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
        }
        Ok(Accumulated {
            grads: accumulator.grads(),
            sequence_tokens,
            entropy_sum,
            trained_tokens,
        })
    }
}
