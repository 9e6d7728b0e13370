//! The training loop of `temper train`: SFT, then RL with grouped sampling, rewards and a
//! policy-gradient objective, evaluations, metrics, checkpoints and exact resume.
//!
//! The trainer holds the policy (on an autodiff backend) and updates it in place; its samples
//! come from a [`RolloutSource`](temper_rewards::RolloutSource) handed the current weights (the
//! in-process actor in `temper train`). [`Trainer::run`] is the entry point.

pub mod checkpoint;
pub mod config;
mod config_source;
pub mod limits;
pub mod metrics_log;
pub mod observer;
pub mod plot;
mod rewarding;
pub mod run_dir;
pub mod sequences;
pub mod state;
pub mod telemetry;
mod trainer;

use std::path::PathBuf;

pub use config::{ConfigError, TrainConfig};
pub use observer::{Observer, Silent};
pub use state::{Stage, TrainerState};
pub use trainer::{DATA_ERRORS_FILE, Outcome, Summary, Trainer};

use crate::error::LearnerError;

/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading or writing a file of the run failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Building, loading, saving or running the model failed.
    #[error("model: {0}")]
    Model(String),
    /// An objective or estimator rejected its inputs.
    #[error(transparent)]
    Learner(#[from] LearnerError),
    /// Another process holds the run directory's lock.
    #[error(
        "{dir} is in use by another `temper train` (pid {pid}, see its train.lock); wait for \
         it to end or choose another --run-dir"
    )]
    RunDirInUse {
        /// The run directory.
        dir: PathBuf,
        /// The pid recorded in the lock file.
        pid: String,
    },
    /// The run cannot resume from what is in the run directory.
    #[error("cannot resume: {0}")]
    Resume(String),
    /// The reward stack could not be built.
    #[error("rewards: {0}")]
    Rewards(String),
    /// The rollout source failed.
    #[error(transparent)]
    Rollout(#[from] temper_rewards::RolloutError),
    /// The dataset could not be opened.
    #[error(transparent)]
    Data(#[from] crate::data::DataError),
    /// The task produced no prompt.
    #[error(transparent)]
    Task(#[from] crate::tasks::task::TaskError),
    /// [`Trainer::run`] was called on a trainer without a rollout source.
    #[error(
        "the trainer has no rollout source; give it one with `Trainer::with_source` (temper \
         train uses the in-process actor)"
    )]
    NoRolloutSource,
}
