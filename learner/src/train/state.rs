//! [`TrainerState`]: where a run stands — everything besides weights and optimiser moments that
//! a resumed run needs to continue exactly where the checkpoint left off.

use serde::{Deserialize, Serialize};

/// The stage a run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Stage 1, supervised fine-tuning.
    Sft,
    /// Stage 2, reinforcement learning.
    Rl,
    /// Finished (final evaluation written).
    Done,
}

/// Held-out accuracies measured so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Evaluations {
    /// Before any training.
    pub initial: Option<f64>,
    /// After stage 1.
    pub after_sft: Option<f64>,
    /// At the end.
    pub final_: Option<f64>,
}

/// The trainer's state, saved as `trainer_state.json` in every checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// The run's seed (a resume with another seed is refused).
    pub seed: u64,
    /// Current stage.
    pub stage: Stage,
    /// Steps completed in the current stage.
    pub step: usize,
    /// Weight updates applied since the start: the version of the policy that samples next.
    pub policy_version: u64,
    /// Index of the next training example the SFT stage reads.
    pub sft_cursor: u64,
    /// Index of the next training example (prompt) the RL stage reads.
    pub rl_cursor: u64,
    /// Held-out accuracies.
    pub evaluations: Evaluations,
    /// Wall time spent in this run so far, over all sessions.
    pub wall_seconds: f64,
    /// Lines of `metrics.jsonl` that belong to the steps up to this state; on resume, lines
    /// after them (written after the checkpoint) are dropped and written again.
    pub metrics_lines: usize,
}

/// Where the RL stage's example stream starts, far from the SFT stream's, so that the two
/// stages never see the same example.
pub const RL_STREAM_START: u64 = 1 << 32;

impl TrainerState {
    /// The state of a run that has not started.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            stage: Stage::Sft,
            step: 0,
            policy_version: 0,
            sft_cursor: 0,
            rl_cursor: RL_STREAM_START,
            evaluations: Evaluations::default(),
            wall_seconds: 0.0,
            metrics_lines: 0,
        }
    }

    /// The sampling seed of RL step `step`: every step draws from its own streams, so a resumed
    /// run samples exactly what the uninterrupted one did.
    pub fn sampling_seed(&self, step: usize) -> u64 {
        self.seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(step as u64 + 1)
    }
}
