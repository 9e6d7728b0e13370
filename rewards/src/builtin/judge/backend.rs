//! [`JudgeBackend`]: where a judge model's replies come from — an OpenAI-compatible server
//! ([`HttpJudge`](super::http::HttpJudge)) or a local checkpoint
//! ([`LocalJudge`](super::local::LocalJudge)) — and the errors a backend reports.
//!
//! A backend completes a batch of chat prompts and returns one result per prompt, so that one
//! refused request quarantines its own sample and not the whole batch.

use crate::reward::BoxFuture;
use temper_model::chat::Message;

/// One chat conversation to complete.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPrompt {
    /// The messages, in order (`system`, then `user`).
    pub messages: Vec<Message>,
}

/// Why a judge reply could not be had.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum JudgeError {
    /// The server answered with an error status (after retries for 429 and 5xx).
    #[error("judge server answered {status}: {body}")]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The start of the reply body.
        body: String,
    },
    /// The server could not be reached (after retries).
    #[error("judge server unreachable: {0}")]
    Connect(String),
    /// No reply within `request_timeout_s`.
    #[error("judge request timed out after {0}s")]
    Timeout(f64),
    /// The reply was not an OpenAI chat completion with a message content.
    #[error("judge reply is not a chat completion: {0}")]
    BadReply(String),
    /// The local checkpoint could not be loaded or run.
    #[error("local judge failed: {0}")]
    Local(String),
}

/// A source of judge replies.
pub trait JudgeBackend: Send + Sync {
    /// What identifies the judge for caching: the same identity and prompt give the same reply
    /// (e.g. `http|<url>|<model>|<max_tokens>|<temperature>`).
    fn identity(&self) -> String;

    /// Completes every prompt; one result per prompt, in order.
    fn complete(&self, prompts: Vec<ChatPrompt>) -> BoxFuture<'_, Vec<Result<String, JudgeError>>>;
}
