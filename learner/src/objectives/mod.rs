//! Policy-gradient objectives as a closed, typed set: [`PolicyLoss`] names one objective and its
//! hyper-parameters; [`PolicyLoss::compute`] turns a [`PolicyInputs`] batch into a scalar loss
//! (`−J`, to minimise) and typed [`LossMetrics`].
//!
//! Notation (per row `i` of the batch, per response position `t`): `m_{i,t}` the mask (1 = a token
//! the policy generated and is trained on), `n_i = Σ_t m_{i,t}`, `log r_{i,t} = log π_θ − log π_old`,
//! `Â` the advantage. Every objective:
//!
//! - sees only trained tokens: untrained positions (padding, prompt, tool output) are replaced by
//!   0 before any arithmetic, so whatever they hold (even NaN or −inf) reaches neither the loss nor
//!   the gradient;
//! - clamps log-ratios to [`LOG_RATIO_MIN`, `LOG_RATIO_MAX`] = [−20, 10] before `exp` (as verl
//!   does; verl's GSPO clamps at ≤ 10, its token losses at ±20): a ratio beyond `e^10 ≈ 22026`
//!   means the sample is hopelessly off-policy, and its term becomes a constant (zero gradient)
//!   instead of overflowing;
//! - lets a row with `n_i = 0` (a zero-length response) contribute nothing: it is left out of
//!   every numerator and of the sequence count; a batch without trained tokens has loss 0 and a
//!   zero gradient;
//! - detaches `old_logprobs`, `ref_logprobs` and the advantages, so the gradient flows through
//!   `logprobs` only.
//!
//! Aggregation ([`Aggregation`]) is part of each objective's definition:
//!
//! | objective | aggregation | why |
//! |---|---|---|
//! | GSPO | mean over non-empty sequences (the per-sequence term has no token index) | paper Eq. 5 |
//! | GSPO-token, SAPO, GRPO | `SeqMeanTokenMean` | `(1/G) Σ_i (1/|y_i|) Σ_t` in the papers |
//! | DAPO | `TokenMean` over all trained tokens of the batch | paper Eq. 8, token-level loss |
//! | Dr.GRPO | `TokenSumNorm`: `Σ / (batch · max_response_len)` | paper: no `1/|o_i|` |
//!
//! A KL term `β · k3` (GSPO, GSPO-token, SAPO, GRPO; `kl_coef`, default 0) is aggregated like the
//! objective's tokens. The normalisers `|S|` and `N` are those of the batch passed in: a caller
//! that splits one optimiser step into micro-batches weighs each micro-batch's loss by its share
//! (`LossMetrics::sequences` or `tokens`) to get the full batch's loss. Metrics cost one small
//! device-to-host read per call.

mod aggregate;
mod batch;
mod clip;
pub mod dapo;
pub mod dr_grpo;
pub mod grpo;
pub mod gspo;
pub mod gspo_token;
mod inputs;
pub mod kl;
mod metrics;
mod policy_loss;
pub mod ratio;
pub mod sapo;
pub mod sft;

pub use aggregate::Aggregation;
pub use dapo::DapoConfig;
pub use dr_grpo::DrGrpoConfig;
pub use grpo::GrpoConfig;
pub use gspo::GspoConfig;
pub use inputs::{Advantages, LossOutput, PolicyInputs};
pub use metrics::LossMetrics;
pub use policy_loss::PolicyLoss;
pub use ratio::{LOG_RATIO_MAX, LOG_RATIO_MIN};
pub use sapo::SapoConfig;
pub use sft::{SftMetrics, SftOutput};
