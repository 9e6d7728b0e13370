//! Vision placeholder expansion: the special tokens of a visual block and
//! [`expand_vision_placeholders`], which turns each image / video placeholder of rendered prompt
//! text into one pad token per visual token, as the HF processor does.

use super::error::ChatError;

/// `<|image_pad|>`: the image placeholder the template emits.
pub const IMAGE_PAD: &str = "<|image_pad|>";
/// `<|video_pad|>`: the video placeholder the template emits.
pub const VIDEO_PAD: &str = "<|video_pad|>";
/// `<|vision_start|>`: opens a visual block.
pub const VISION_START: &str = "<|vision_start|>";
/// `<|vision_end|>`: closes a visual block.
pub const VISION_END: &str = "<|vision_end|>";

const WRAPPED_VIDEO: &str = "<|vision_start|><|video_pad|><|vision_end|>";

/// What one video expands to: per temporal patch, its timestamp text and
/// `tokens_per_temporal_patch` video pads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoPlaceholder {
    /// Merged visual tokens per temporal patch (`h·w / merge²` of the video grid).
    pub tokens_per_temporal_patch: usize,
    /// One timestamp per temporal patch, already formatted (e.g. `<0.5 seconds>`, see
    /// [`format_timestamp`]).
    pub timestamps: Vec<String>,
}

/// Formats a timestamp as the Qwen3-VL processor does: `<{seconds:.1f} seconds>` (Python's
/// rounding of the exact binary value).
pub use crate::preprocess::format_timestamp;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Image,
    Video,
}

/// Finds the vision placeholders in order: `(start, end, kind)`.
fn scan_placeholders(text: &str) -> Vec<(usize, usize, Placeholder)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("<|") {
        let start = at + offset;
        let rest = &text[start..];
        let hit = if rest.starts_with(WRAPPED_VIDEO) {
            Some((WRAPPED_VIDEO.len(), Placeholder::Video))
        } else if rest.starts_with(IMAGE_PAD) {
            Some((IMAGE_PAD.len(), Placeholder::Image))
        } else if rest.starts_with(VIDEO_PAD) {
            Some((VIDEO_PAD.len(), Placeholder::Video))
        } else {
            None
        };
        match hit {
            Some((len, kind)) => {
                found.push((start, start + len, kind));
                at = start + len;
            }
            None => at = start + 2,
        }
    }
    found
}

/// Expands the vision placeholders of rendered prompt text, as the HF Qwen3-VL processor does.
///
/// - The k-th `<|image_pad|>` becomes `image_token_counts[k]` × `<|image_pad|>`.
/// - The k-th video placeholder, either the whole `<|vision_start|><|video_pad|><|vision_end|>`
///   the template emits or a bare `<|video_pad|>`, becomes, for each temporal patch t,
///   `timestamps[t] + "<|vision_start|>" + "<|video_pad|>" × tokens + "<|vision_end|>"`
///   (the transformers 4.57 / vLLM layout: no extra outer vision_start/vision_end).
///
/// Every `<|image_pad|>` in the text counts as one placeholder, so expand only once. Errors
/// when the placeholder counts differ from the numbers of images / videos given, or when an
/// image or video has no tokens.
pub fn expand_vision_placeholders(
    text: &str,
    image_token_counts: &[usize],
    videos: &[VideoPlaceholder],
) -> Result<String, ChatError> {
    let found = scan_placeholders(text);
    let n_images = found.iter().filter(|p| p.2 == Placeholder::Image).count();
    let n_videos = found.len() - n_images;
    if n_images != image_token_counts.len() {
        return Err(ChatError::ImageCountMismatch {
            placeholders: n_images,
            images: image_token_counts.len(),
        });
    }
    if n_videos != videos.len() {
        return Err(ChatError::VideoCountMismatch {
            placeholders: n_videos,
            videos: videos.len(),
        });
    }
    if let Some(index) = image_token_counts.iter().position(|&n| n == 0) {
        return Err(ChatError::EmptyImage { index });
    }
    if let Some((index, v)) = videos
        .iter()
        .enumerate()
        .find(|(_, v)| v.timestamps.is_empty() || v.tokens_per_temporal_patch == 0)
    {
        return Err(ChatError::EmptyVideo {
            index,
            patches: v.timestamps.len(),
            tokens: v.tokens_per_temporal_patch,
        });
    }

    let extra: usize = image_token_counts
        .iter()
        .map(|n| n * IMAGE_PAD.len())
        .sum::<usize>()
        + videos
            .iter()
            .map(|v| {
                v.timestamps
                    .iter()
                    .map(|t| t.len() + VISION_START.len() + VISION_END.len())
                    .sum::<usize>()
                    + v.timestamps.len() * v.tokens_per_temporal_patch * VIDEO_PAD.len()
            })
            .sum::<usize>();
    let mut out = String::with_capacity(text.len() + extra);
    let (mut images, mut video_iter) = (image_token_counts.iter(), videos.iter());
    let mut last = 0;
    for (start, end, kind) in found {
        out.push_str(&text[last..start]);
        match kind {
            Placeholder::Image => {
                let n = *images.next().expect("counted above");
                for _ in 0..n {
                    out.push_str(IMAGE_PAD);
                }
            }
            Placeholder::Video => {
                let video = video_iter.next().expect("counted above");
                for timestamp in &video.timestamps {
                    out.push_str(timestamp);
                    out.push_str(VISION_START);
                    for _ in 0..video.tokens_per_temporal_patch {
                        out.push_str(VIDEO_PAD);
                    }
                    out.push_str(VISION_END);
                }
            }
        }
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}
