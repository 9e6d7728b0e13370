//! A record's files loaded: image and video parts become placeholders in the messages and
//! pixels beside them, in part order, giving the [`TaskPrompt`] the processor tokenises.
//! Paths resolve against the dataset file's folder; `file://` paths are absolute.

use std::path::{Path, PathBuf};

use image::RgbImage;
use temper_model::chat::{ContentPart, Message};
use temper_model::preprocess::{load_image, load_video_frames_dir};
use temper_model::processor::VideoClip;

use super::record::{Content, Frames, Part, Record, RecordError};
use crate::tasks::task::TaskPrompt;

/// `path` of a part: `file://` absolute, otherwise relative to `base`.
pub fn resolve_path(base: &Path, path: &str) -> PathBuf {
    match path.strip_prefix("file://") {
        Some(absolute) => PathBuf::from(absolute),
        None => base.join(path),
    }
}

/// The frames of a video part: the listed files, or a folder's image files in name order.
fn load_frames(base: &Path, frames: &Frames) -> Result<Vec<RgbImage>, RecordError> {
    Ok(match frames {
        Frames::List(list) => list
            .iter()
            .map(|p| load_image(resolve_path(base, p)))
            .collect::<Result<_, _>>()?,
        Frames::Folder(folder) => load_video_frames_dir(resolve_path(base, folder))?,
    })
}

/// `record` (from a file in folder `base`, at `line`) as a prompt, its files read.
pub fn load(record: &Record, base: &Path, line: usize) -> Result<TaskPrompt, RecordError> {
    if record.messages.is_empty() {
        return Err(RecordError::NoMessages);
    }
    let mut messages = Vec::with_capacity(record.messages.len() + 1);
    if let Some(system) = &record.system {
        messages.push(Message::system(system.clone()));
    }
    let mut images = Vec::new();
    let mut videos = Vec::new();
    let mut texts = Vec::new();
    for message in &record.messages {
        let parts = match &message.content {
            Content::Text(text) => vec![Part::Text { text: text.clone() }],
            Content::Parts(parts) => parts.clone(),
        };
        let mut content = Vec::with_capacity(parts.len());
        for part in parts {
            match part {
                Part::Text { text } => {
                    if message.role == "user" {
                        texts.push(text.clone());
                    }
                    content.push(ContentPart::Text(text));
                }
                Part::Image { image } => {
                    images.push(load_image(resolve_path(base, &image))?);
                    content.push(ContentPart::Image);
                }
                Part::Video { video, fps } => {
                    let frames = load_frames(base, &video)?;
                    videos.push(VideoClip { frames, fps });
                    content.push(ContentPart::Video);
                }
            }
        }
        messages.push(Message::new(message.role.clone(), content));
    }
    Ok(TaskPrompt {
        id: record.id.clone().unwrap_or_else(|| format!("line {line}")),
        messages,
        images,
        videos,
        text: texts.join("\n"),
        reference: Some(record.answer.clone()),
        metadata: record.metadata.clone(),
        tools: record.tools.clone(),
    })
}
