//! Per-token log-probabilities and entropies of given tokens, computed in row chunks so that at
//! most `chunk × vocab` logits exist at a time (the vocabulary is 151,936 in real models).
//! Differentiable: the learner calls it under an autodiff backend. Always f32 (see below).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;

use crate::model::Qwen3Vl;
use crate::nn::{MASK_VALUE, to_f32};

/// Rows per chunk so one chunk's logits stay near `budget` floats (at least one row).
pub fn chunk_rows(vocab: usize, budget: usize) -> usize {
    (budget / vocab.max(1)).max(1)
}

/// Default logits budget per chunk: 32 Mi floats (128 MiB in f32).
pub const DEFAULT_LOGITS_BUDGET: usize = 1 << 25;

/// Whether gradients flow through the entropy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyGrad {
    /// Differentiable (an entropy term in the loss).
    Tracked,
    /// A metric only: computed off the graph, so no `[chunk, V]` tensor is kept for a backward
    /// pass through it (5 GB at 8 × 1024 tokens and Qwen's 151,936-entry vocabulary, in f32).
    Metric,
}

/// Log-probs and entropies of `targets` under the model's next-token distributions.
#[derive(Debug, Clone)]
pub struct TokenScores<B: Backend> {
    /// `[B, L]`: `log p(targets[b, t] | hidden[b, t])`.
    pub logprobs: Tensor<B, 2>,
    /// `[B, L]`: entropy of the full next-token distribution at each position.
    pub entropy: Tensor<B, 2>,
}

impl<B: Backend> Qwen3Vl<B> {
    /// Scores `targets: [B, L]` against `hidden: [B, L, D]` (position `t` predicts `targets[t]`),
    /// optionally at a sampling `temperature` (logits are divided by it, as at generation).
    pub fn token_scores(
        &self,
        hidden: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
        temperature: f32,
        logits_budget: usize,
    ) -> TokenScores<B> {
        self.token_scores_suppressed(
            hidden,
            targets,
            temperature,
            logits_budget,
            &[],
            EntropyGrad::Tracked,
        )
    }

    /// [`token_scores`](Self::token_scores) under the distribution that sampling with
    /// `suppress_token_ids = suppress` draws from: those logits are removed before the
    /// log-softmax (a suppressed target, which sampling never produces, gets a log-prob near `MASK_VALUE`).
    /// `entropy` says whether the entropies are differentiable or only reported.
    pub fn token_scores_suppressed(
        &self,
        hidden: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
        temperature: f32,
        logits_budget: usize,
        suppress: &[u32],
        entropy_grad: EntropyGrad,
    ) -> TokenScores<B> {
        let [b, l, d] = hidden.dims();
        let rows = b * l;
        let vocab = self.config.text_config.vocab_size;
        let chunk = chunk_rows(vocab, logits_budget);
        let hidden = hidden.reshape([rows, d]);
        let targets = targets.reshape([rows, 1]);
        let device = hidden.device();
        let suppressed = (!suppress.is_empty()).then(|| {
            let mut flags = vec![false; vocab];
            for &t in suppress {
                if let Some(f) = flags.get_mut(t as usize) {
                    *f = true;
                }
            }
            Tensor::<B, 1, Bool>::from_data(TensorData::new(flags, [vocab]), &device)
                .reshape([1, vocab])
        });
        let mut logprobs = Vec::new();
        let mut entropy = Vec::new();
        let mut start = 0;
        while start < rows {
            let n = chunk.min(rows - start);
            // f32 from the logits on, whatever the model dtype: log-probs feed importance
            // ratios, where bf16's 8-bit mantissa would be a ~0.4% error per token.
            let mut logits = to_f32(self.language.logits(hidden.clone().narrow(0, start, n)));
            if temperature > 0.0 && temperature != 1.0 {
                logits = logits / temperature as f64;
            }
            if let Some(mask) = &suppressed {
                logits = logits.mask_fill(mask.clone().expand([n, vocab]), MASK_VALUE);
            }
            let log_p = log_softmax(logits, 1);
            logprobs.push(log_p.clone().gather(1, targets.clone().narrow(0, start, n)));
            let log_p = match entropy_grad {
                EntropyGrad::Tracked => log_p,
                EntropyGrad::Metric => log_p.detach(),
            };
            entropy.push((log_p.clone().exp() * log_p).sum_dim(1).neg());
            start += n;
        }
        TokenScores {
            logprobs: Tensor::cat(logprobs, 0).reshape([b, l]),
            entropy: Tensor::cat(entropy, 0).reshape([b, l]),
        }
    }
}
