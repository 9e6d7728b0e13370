//! The actor crate's error type: each variant names the input at fault and, where there is one,
//! the fix.

use temper_model::ModelError;

/// Errors of the rollout worker.
#[derive(Debug, thiserror::Error)]
pub enum ActorError {
    /// A config value is out of its domain.
    #[error("invalid `{field}` = {value}: {reason}")]
    Config {
        /// The field, e.g. `max_turns`.
        field: String,
        /// The value as written.
        value: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A rollout input (prompt, sampling settings, tool registry) is unusable.
    #[error("invalid input `{name}`: {message}")]
    Input {
        /// The input, e.g. `group`.
        name: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The model, tokenizer or preprocessing failed.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A remote tool service could not be reached or described its tools badly.
    #[error("remote tools: {0}")]
    Tools(String),
}

impl ActorError {
    /// A config error for `field`.
    pub fn config(
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::Config {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// An input error for `name`.
    pub fn input(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input {
            name: name.into(),
            message: message.into(),
        }
    }
}

impl From<temper_model::tokenizer::TokenizerError> for ActorError {
    fn from(e: temper_model::tokenizer::TokenizerError) -> Self {
        Self::Model(e.into())
    }
}

impl From<temper_model::chat::ChatError> for ActorError {
    fn from(e: temper_model::chat::ChatError) -> Self {
        Self::Model(e.into())
    }
}

impl From<temper_model::preprocess::PreprocessError> for ActorError {
    fn from(e: temper_model::preprocess::PreprocessError) -> Self {
        Self::Model(e.into())
    }
}

/// The crate's result type.
pub type Result<T, E = ActorError> = std::result::Result<T, E>;
