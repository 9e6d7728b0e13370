//! Temper's rewards: the [`Reward`] trait, the [`RewardSet`] that weighs, gates and reports
//! rewards, the `[[rewards]]` config, and the rule-based built-ins.
//!
//! - A [`Reward`] scores a batch of [`Sample`]s asynchronously and returns, per sample, a score,
//!   `None` (not applicable: left out of the weighted sum, not a zero) or a [`Quarantine`] with
//!   its reason, plus named components.
//! - A [`RewardSet`] runs its rewards concurrently, each under a timeout, and combines them into
//!   one total per sample (weighted sum, gates with a fixed penalty). A reward that errors,
//!   panics, times out or returns NaN/±inf quarantines the samples concerned — counted in the
//!   metrics, logged, and to be excluded from the update — never a silent 0.
//! - [`RewardSetConfig`] is the `[[rewards]]` list; [`RewardSetConfig::validate`] names the
//!   bad field (`rewards[2].weight`). Custom Rust rewards plug in through a [`RewardRegistry`].
//!
//! Built-in kinds (stable names): `exact_match`, `numeric`, `math`, `choice`, `regex`, `format`,
//! `length` (DAPO overlong shaping), `repetition`, `code_switching` (language consistency),
//! `judge` (a judge model over HTTP or a local checkpoint), `tool_call` (multi-turn tool use);
//! each module doc in [`builtin`] states its exact rule and what it does against gaming.
//! `remote` calls a reward plug-in service over gRPC (see [`remote`]).
//!
//! Synchronous callers score a batch with [`RewardSet::score_blocking`]:
//!
//! ```
//! use temper_rewards::{RewardSet, RewardSetConfig, Sample};
//!
//! let config: RewardSetConfig = serde_json::from_str(
//!     r#"{"rewards": [{"kind": "exact_match"}, {"kind": "format", "weight": 0.1}]}"#,
//! ).unwrap();
//! let set = RewardSet::from_config(&config).unwrap();
//! let batch = set
//!     .score_blocking(&[Sample::new("How many?", "<think>1+2</think><answer>3</answer>").with_reference("3")])
//!     .unwrap();
//! assert_eq!(batch.totals[0], Ok(Some(1.1)));
//! ```

#![warn(missing_docs)]

pub mod builtin;
pub mod config;
pub mod error;
mod raw;
pub mod registry;
pub mod remote;
pub mod reward;
pub mod rollout;
pub mod sample;
pub mod set;
pub mod text;

pub use config::{GateConfig, RewardConfig, RewardEntry, RewardSetConfig};
pub use error::{BoxError, Result, RewardError};
pub use registry::RewardRegistry;
pub use remote::{RemoteConfig, RemoteReward};
pub use reward::{BoxFuture, Quarantine, Reward, RewardOutput, SampleScore};
pub use rollout::{
    Group, RewardComponent, RolloutError, RolloutPrompt, RolloutRequest, RolloutSource, Rollouts,
    ToolCallCounts,
};
pub use sample::{Sample, ToolCallRecord, ToolCallStatus, Turn};
pub use set::{RewardMetrics, RewardScores, RewardSet, RewardStats, ScoredBatch, Stat};
/// The prompt's chat messages in a [`Sample`]: the chat template's type.
pub use temper_model::chat::Message;
