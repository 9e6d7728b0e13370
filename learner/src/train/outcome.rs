//! How a run ends: [`Outcome`], and the [`Summary`] a finished run writes to `summary.json`.

use std::path::PathBuf;

use serde::Serialize;

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every stage ran; the summary was written.
    Finished(Summary),
    /// Stopped on request after a step; the checkpoint to resume from.
    Interrupted {
        /// The checkpoint written at the stop.
        checkpoint: PathBuf,
    },
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Held-out accuracy of the initial policy.
    pub eval_accuracy_initial: f64,
    /// Held-out accuracy after stage 1 (SFT).
    pub eval_accuracy_after_sft: f64,
    /// Held-out accuracy at the end.
    pub eval_accuracy_final: f64,
    /// Final minus after-SFT accuracy, in points.
    pub rl_gain_points: f64,
    /// Wall time of the run (all sessions of a resumed run together).
    pub wall_seconds: f64,
    /// The RL objective.
    pub loss: String,
    /// The run's seed.
    pub seed: u64,
    /// SFT and RL steps run.
    pub sft_steps: usize,
    /// RL steps run.
    pub rl_steps: usize,
    /// The final checkpoint.
    pub final_checkpoint: PathBuf,
}
