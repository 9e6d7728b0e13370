//! The training loop of `temper train`: SFT, then RL with grouped sampling, rewards and a
//! policy-gradient objective, evaluations, metrics, checkpoints and exact resume.
//!
//! The trainer holds the policy (on an autodiff backend) and updates it in place; its samples
//! come from a [`RolloutSource`](temper_rewards::RolloutSource) handed the current weights (the
//! in-process actor in `temper train`). [`Trainer::run`] is the entry point.

// The run: its config, directory, state and checkpoints.
pub mod checkpoint;
pub mod config;
mod config_source;
pub mod limits;
pub mod run_dir;
pub mod state;

// The trainer by phase: the stage machine, set-up, SFT step, RL sampling, RL step, the shared
// micro-batch routine and optimiser update, evaluation.
mod accumulate;
mod evaluation;
mod outcome;
mod rl_step;
mod sampling;
pub mod sequences;
mod setup;
mod sft_step;
mod trainer;
mod update;
mod update_stats;

// What a run reports: typed records, the rewards of a step, metrics.jsonl, gauges, the plot,
// the progress observer.
pub mod metrics_log;
pub mod observer;
pub mod plot;
pub mod records;
mod rewarding;
pub mod telemetry;

use std::path::PathBuf;

pub use config::{ConfigError, TrainConfig};
pub use observer::{Observer, Progress, Silent};
pub use outcome::{Outcome, Summary};
pub use records::StepRecord;
pub use setup::DATA_ERRORS_FILE;
pub use state::{Stage, TrainerState};
pub use trainer::Trainer;

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
    /// Building, loading, saving or running the model, or tokenising, failed.
    #[error("model: {0}")]
    Model(#[from] temper_model::ModelError),
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
