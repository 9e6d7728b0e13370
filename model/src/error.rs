//! The model crate's error type: every failure names the input it came from and, where there is
//! one, the fix.

use std::path::PathBuf;

/// Errors from loading, validating and running the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing an output failed; `path` is the file the user asked for (never a temporary).
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A directory holds two checkpoints at once: loading either could silently pick stale
    /// weights.
    #[error(
        "{path} holds both model.safetensors and model.safetensors.index.json (two checkpoints \
         mixed in one directory); remove the stale one, or re-save into an empty directory"
    )]
    AmbiguousCheckpoint { path: PathBuf },
    #[error("invalid config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path} is not a valid safetensors file ({message}); re-download or re-save it")]
    CorruptCheckpoint { path: PathBuf, message: String },
    #[error(
        "checkpoint {path} has no tensor `{name}`; is it a Qwen3-VL checkpoint matching config.json?"
    )]
    MissingTensor { path: PathBuf, name: String },
    #[error(
        "tensor `{name}` in {path} has shape {actual:?}, expected {expected:?} (from config.json)"
    )]
    TensorShape {
        path: PathBuf,
        name: String,
        actual: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("tensor `{name}` in {path} has dtype {actual}, expected {expected}")]
    TensorDtype {
        path: PathBuf,
        name: String,
        actual: String,
        expected: String,
    },
    #[error("invalid input `{name}`: {message}")]
    Input { name: String, message: String },
    #[error(transparent)]
    Preprocess(#[from] crate::preprocess::PreprocessError),
    #[error(transparent)]
    Tokenizer(#[from] crate::tokenizer::TokenizerError),
    #[error(transparent)]
    Chat(#[from] crate::chat::ChatError),
}

impl ModelError {
    /// Shorthand for an input validation error.
    pub fn input(name: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Input {
            name: name.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Write {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
