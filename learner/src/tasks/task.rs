//! The [`Task`] trait: where a run's prompts come from.
//!
//! A task is a pure function of `(run seed, split, index)` to a [`TaskPrompt`]: the chat
//! messages, the images and video clips they refer to (in order of their placeholders), the
//! reference answer, optional metadata for the rewards, and the tool names the prompt allows.
//! The trainer reads training prompts at the cursors kept in its state and held-out prompts at
//! indices `0..eval.examples` of [`Split::Eval`], so a task that answers the same index with the
//! same prompt makes a run resumable exactly.
//!
//! - `Ok(prompt)`: the prompt at that index.
//! - `Err(TaskError)`: the task cannot produce a prompt there (an index past a finite split, a
//!   dataset file changed since it was opened). The run stops with the error; a task never
//!   substitutes another prompt silently. Records a task skips (bad dataset lines) are skipped
//!   when the task is built, never at this point.

use image::RgbImage;
use temper_model::chat::Message;
use temper_model::processor::VideoClip;

/// Which example stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Examples the policy trains on.
    Train,
    /// Held-out examples for evaluation.
    Eval,
}

/// One prompt of a task, before tokenisation.
#[derive(Debug, Clone)]
pub struct TaskPrompt {
    /// The task's name for the prompt (a dataset record's `id`; the index for generated tasks).
    pub id: String,
    /// The chat messages; image and video parts are placeholders for `images` and `videos`.
    pub messages: Vec<Message>,
    /// The images, in the order of the messages' image parts.
    pub images: Vec<RgbImage>,
    /// The video clips, in the order of the messages' video parts.
    pub videos: Vec<VideoClip>,
    /// The prompt text the rewards see.
    pub text: String,
    /// The reference answer (SFT's target, evaluation's expected answer).
    pub reference: Option<String>,
    /// Free-form per-prompt data for the rewards.
    pub metadata: Option<serde_json::Value>,
    /// Tool names the prompt allows (empty: no restriction stated).
    pub tools: Vec<String>,
}

/// Why a task produced no prompt at an index.
#[derive(Debug, thiserror::Error)]
#[error("task prompt {index} of the {split:?} split: {source}")]
pub struct TaskError {
    /// The split asked for.
    pub split: Split,
    /// The index asked for.
    pub index: u64,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// A source of prompts (see the module doc for the contract).
pub trait Task: Send {
    /// The prompt at `index` of `split` in a run seeded with `seed`.
    fn prompt(&self, seed: u64, split: Split, index: u64) -> Result<TaskPrompt, TaskError>;

    /// How many distinct prompts `split` has; `None` for an unbounded (generated) split.
    fn len(&self, split: Split) -> Option<u64>;

    /// Records left out when the task was built (bad dataset lines); `None` for a task that
    /// reads no records. Reported in every step record as `data/skipped`.
    fn skipped(&self) -> Option<u64> {
        None
    }
}
