//! One line of a dataset file: a JSON object in the Qwen-VL message layout,
//!
//! ```json
//! {"id": "q17", "source": "geometry", "system": "Be brief.", "tools": ["calculator"],
//!  "messages": [{"role": "user", "content": [{"type": "image", "image": "imgs/q17.png"},
//!                                          {"type": "text", "text": "What is the area?"}]}],
//!  "answer": "12", "metadata": {"unit": "cm2"}}
//! ```
//!
//! `content` is a list of parts or a plain string (one text part). Parts: `text`; `image` (a
//! path relative to the dataset file's folder, or `file:///abs/path`); `video` (a list of frame
//! paths, or a folder whose files, sorted by name, are the frames; `fps`, default 2). `answer` is
//! required (SFT's target, the evaluation's reference); `id`, `source`, `system`, `tools` and
//! `metadata` are optional. Other keys are ignored.

use serde::Deserialize;

/// One dataset record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Record {
    /// The record's name (logged with errors); `line N` when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Where the record comes from (informational).
    #[serde(default)]
    pub source: Option<String>,
    /// A system message placed before `messages`.
    #[serde(default)]
    pub system: Option<String>,
    /// The chat messages (at least one).
    pub messages: Vec<RecordMessage>,
    /// The reference answer.
    pub answer: String,
    /// Free-form data handed to the rewards.
    #[serde(default)]
    pub metadata: Option<serde_json::Value>,
    /// Tool names the prompt may use (each must be registered).
    #[serde(default)]
    pub tools: Vec<String>,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RecordMessage {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// The parts, or a plain string.
    pub content: Content,
}

/// A message's content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// One text part.
    Text(String),
    /// Parts in order.
    Parts(Vec<Part>),
}

/// One content part.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image file.
    Image {
        /// Relative to the dataset file's folder, or `file://` absolute.
        image: String,
    },
    /// A video as frame files.
    Video {
        /// The frames.
        video: Frames,
        /// Frames per second of the frames given.
        #[serde(default = "default_fps")]
        fps: f64,
    },
}

/// A video's frames.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Frames {
    /// Frame files in order.
    List(Vec<String>),
    /// A folder whose files, sorted by name, are the frames.
    Folder(String),
}

fn default_fps() -> f64 {
    2.0
}

/// Why a record is bad.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON, or not a record (a missing `messages` or `answer`, a wrong type).
    #[error("not a valid record: {0}")]
    Json(#[from] serde_json::Error),
    /// `messages` is empty.
    #[error("`messages` is empty")]
    NoMessages,
    /// An image or video frame could not be read or decoded, or a video folder holds no frames
    /// (the model crate's loaders, which read images as transformers does and name the file).
    #[error(transparent)]
    Media(#[from] temper_model::preprocess::PreprocessError),
    /// The chat template or the processor rejected the prompt.
    #[error("preparing the prompt: {0}")]
    Prepare(String),
    /// The prompt is longer than `data.max_prompt_tokens`.
    #[error(
        "the prompt is {tokens} tokens after the chat template, more than data.max_prompt_tokens = {max}"
    )]
    TooLong {
        /// Tokens (text and vision).
        tokens: usize,
        /// The limit.
        max: usize,
    },
    /// The record lists a tool that is not registered.
    #[error("unknown tool `{name}` (registered: {registered})")]
    UnknownTool {
        /// The tool.
        name: String,
        /// The registered names, comma-separated.
        registered: String,
    },
}
