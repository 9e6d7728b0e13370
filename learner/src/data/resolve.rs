//! A record's files loaded: image and video parts become placeholders in the messages and
//! pixels beside them, in part order, giving the [`TaskPrompt`] the processor tokenises.
//! Paths resolve against the dataset file's folder; `file://` paths are absolute.

use std::path::{Path, PathBuf};

use temper_model::chat::{ContentPart, Message};
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

fn load_image(path: PathBuf) -> Result<image::RgbImage, RecordError> {
    match image::open(&path) {
        Ok(image) => Ok(image.to_rgb8()),
        Err(source) => Err(RecordError::Image { path, source }),
    }
}

fn frame_paths(base: &Path, frames: &Frames) -> Result<Vec<PathBuf>, RecordError> {
    match frames {
        Frames::List(list) => Ok(list.iter().map(|p| resolve_path(base, p)).collect()),
        Frames::Folder(folder) => {
            let path = resolve_path(base, folder);
            let fail = |message: String| RecordError::VideoFolder {
                path: path.clone(),
                message,
            };
            let mut files: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| fail(e.to_string()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(fail("has no frame files".into()));
            }
            Ok(files)
        }
    }
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
                    let frames = frame_paths(base, &video)?
                        .into_iter()
                        .map(load_image)
                        .collect::<Result<Vec<_>, _>>()?;
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
