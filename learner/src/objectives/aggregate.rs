//! How per-token terms `ℓ_{i,t}` become one scalar, over trained tokens only (`m_{i,t} = 1`,
//! `n_i = Σ_t m_{i,t}`, `S = {i : n_i > 0}` the non-empty rows, `N = Σ_i n_i`):
//!
//! - `SeqMeanTokenMean`: `(1/|S|) Σ_{i∈S} (1/n_i) Σ_t m ℓ` — every sequence weighs the same
//!   whatever its length (GRPO's `(1/G) Σ_i (1/|o_i|) Σ_t`, GSPO, SAPO; verl's
//!   `seq-mean-token-mean`, TRL's `grpo`);
//! - `TokenMean`: `(1/N) Σ_{i,t} m ℓ` — every token weighs the same (DAPO; verl's `token-mean`);
//! - `TokenSumNorm`: `Σ_{i,t} m ℓ / (batch · max_response_len)` — a constant normaliser, so no
//!   length bias at all (Dr.GRPO; TRL's `dr_grpo`).
//!
//! Rows with `n_i = 0` add nothing and are not counted in `|S|`; empty sums divide by
//! `max(·, 1)`, so a batch without trained tokens gives 0.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// An aggregation of per-token terms over the trained tokens of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Aggregation {
    /// Mean over non-empty sequences of the mean over their trained tokens.
    SeqMeanTokenMean,
    /// Mean over all trained tokens of the batch.
    TokenMean,
    /// Sum over all trained tokens divided by `batch · max_response_len`.
    TokenSumNorm {
        /// The constant length normaliser (the generation budget).
        max_response_len: usize,
    },
}

impl Aggregation {
    /// Aggregates `per_token` over the tokens where `mask > 0.5`.
    ///
    /// # Shapes
    /// - `per_token`, `mask`: `[batch, T]`
    /// - returns `[1]`
    pub fn aggregate<B: Backend>(
        &self,
        per_token: Tensor<B, 2>,
        mask: Tensor<B, 2>,
    ) -> Tensor<B, 1> {
        let [batch, _] = per_token.dims();
        let trained = mask.detach().greater_elem(0.5);
        let mask = trained.clone().float();
        let masked = per_token.mask_fill(trained.bool_not(), 0.0);
        match *self {
            Self::SeqMeanTokenMean => {
                let lengths = mask.sum_dim(1); // [batch, 1]
                let seq_means = masked.sum_dim(1) / lengths.clone().clamp_min(1.0);
                seq_mean(seq_means, lengths)
            }
            Self::TokenMean => masked.sum() / mask.sum().clamp_min(1.0),
            Self::TokenSumNorm { max_response_len } => {
                masked.sum() / (batch * max_response_len.max(1)) as f64
            }
        }
    }
}

/// `(1/|S|) Σ_{i∈S} v_i` for per-sequence values `v: [batch, 1]` and lengths `n: [batch, 1]`.
/// `v_i` of an empty row must be finite; it is dropped.
pub(crate) fn seq_mean<B: Backend>(values: Tensor<B, 2>, lengths: Tensor<B, 2>) -> Tensor<B, 1> {
    let non_empty = lengths.greater_elem(0.5);
    let count = non_empty.clone().float().sum().clamp_min(1.0);
    values.mask_fill(non_empty.bool_not(), 0.0).sum() / count
}
