//! Temper's rollout worker: generates a group of samples for a prompt with a multi-turn tool
//! loop continued from the KV cache, and hands back what the learner and the rewards need.
//!
//! - [`ToolRollout`] (`rollout`): the one rollout loop (single-turn sampling is the loop without
//!   tool calls) — generate until a stop token or `</tool_call>`,
//!   run the calls, append the tool responses in the chat template's form (images as vision
//!   tokens), continue decoding from the cache; per sample the token ids after the prompt, the
//!   response mask (1 = policy token, 0 = tool/template token), behaviour log-probs, the tool
//!   images, the turns for rewards, the finish reason and tool-call counts.
//! - [`tools`]: the [`Tool`](tools::Tool) trait, the [`ToolRegistry`](tools::ToolRegistry), the
//!   executor with per-call timeouts, and the built-ins `calculator` and `image_zoom`.
//! - [`InProcessSource`] (`source`): the trainer's in-process
//!   [`RolloutSource`](temper_rewards::RolloutSource) — this loop on the learner's current
//!   weights, scored by the run's reward stack.
//! - [`ToolLoopConfig`] (`config`): `max_turns`, `tool_timeout_s`, token budgets.
//! - [`response`]: the template text of tool responses. Tokens are chosen by the model crate's
//!   one picker (`temper_model::picker`: seeded sampling on the device or the host, or a
//!   scripted policy in tests), the same one `Qwen3Vl::generate` uses.
//!
//! Tool calls are parsed by `temper_model::chat::parse_tool_calls`, next to the chat template
//! that writes `<tool_call>`; the `tool_call` reward scores the records made from its output.

#![warn(missing_docs)]

pub mod config;
pub mod error;
pub mod response;
pub mod rollout;
pub mod source;
pub mod tools;

pub use config::ToolLoopConfig;
pub use error::{ActorError, Result};
pub use rollout::{PromptInput, RolloutGroup, ToolRollout};
pub use source::InProcessSource;
pub use temper_model::FinishReason;
pub use temper_rewards::rollout::{Sample, ToolCallCounts};
