//! What an objective consumes ([`PolicyInputs`], [`Advantages`]) and returns ([`LossOutput`]).

use burn::prelude::*;

use super::LossMetrics;

/// Advantages of a batch: one per sequence, or one per token where the objective allows it.
#[derive(Debug, Clone)]
pub enum Advantages<B: Backend> {
    /// `[batch]`: `Â_i`, shared by all tokens of row `i`.
    Sequence(Tensor<B, 1>),
    /// `[batch, T]`: `Â_{i,t}` (GSPO-token, SAPO, GRPO, DAPO, Dr.GRPO; not GSPO).
    Token(Tensor<B, 2>),
}

/// One batch of responses, all `[batch, T]` over response positions.
#[derive(Debug, Clone)]
pub struct PolicyInputs<B: Backend> {
    /// `log π_θ(y_t | ·)` of the policy being trained; the only input gradients flow through.
    pub logprobs: Tensor<B, 2>,
    /// `log π_old(y_t | ·)` of the behaviour policy that sampled the tokens (detached).
    pub old_logprobs: Tensor<B, 2>,
    /// `log π_ref(y_t | ·)` of the reference policy (detached); needed when a KL coefficient is
    /// positive, otherwise only reported as the `kl` metric.
    pub ref_logprobs: Option<Tensor<B, 2>>,
    /// Advantages, per sequence or per token.
    pub advantages: Advantages<B>,
    /// 1 = a token the policy generated and is trained on; 0 = padding, prompt or tool output.
    /// Values above 0.5 count as 1.
    pub mask: Tensor<B, 2>,
}

/// A scalar loss and its metrics.
#[derive(Debug, Clone)]
pub struct LossOutput<B: Backend> {
    /// `[1]`: the loss to minimise (`−J` plus the KL term).
    pub loss: Tensor<B, 1>,
    /// Statistics of the batch, read back once per call.
    pub metrics: LossMetrics,
}
