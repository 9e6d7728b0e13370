//! [`ChatError`]: the errors of prompt construction (template loading and rendering, vision
//! placeholder expansion, the prompt-length guard).

use std::path::PathBuf;

use thiserror::Error;

use super::expand::{IMAGE_PAD, VIDEO_PAD};

/// Errors of prompt construction.
#[derive(Debug, Error)]
pub enum ChatError {
    /// A chat template file could not be read.
    #[error("cannot read chat template file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A chat template file is malformed (bad JSON, missing or mistyped `chat_template`).
    #[error("chat template file {} is invalid: {message}", path.display())]
    TemplateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The template source does not compile.
    #[error("chat template ({origin}) does not compile: {message}")]
    Syntax {
        /// Where the template came from.
        origin: String,
        /// The compiler's message, with the line.
        message: String,
    },
    /// Rendering failed (including `raise_exception` called by the template).
    #[error("chat template ({origin}) failed to render: {message}")]
    Render {
        /// Where the template came from.
        origin: String,
        /// The renderer's message, with the line.
        message: String,
    },
    /// The prompt has a different number of image placeholders than images given.
    #[error(
        "the prompt has {placeholders} image placeholder(s) ({IMAGE_PAD}) but {images} image(s) \
         were given; every image needs exactly one image entry in the messages"
    )]
    ImageCountMismatch {
        /// Number of `<|image_pad|>` in the text.
        placeholders: usize,
        /// Number of images given.
        images: usize,
    },
    /// The prompt has a different number of video placeholders than videos given.
    #[error(
        "the prompt has {placeholders} video placeholder(s) ({VIDEO_PAD}) but {videos} video(s) \
         were given; every video needs exactly one video entry in the messages"
    )]
    VideoCountMismatch {
        /// Number of video placeholders in the text.
        placeholders: usize,
        /// Number of videos given.
        videos: usize,
    },
    /// An image was given 0 tokens.
    #[error("image {index} has 0 visual tokens; every image yields at least one {IMAGE_PAD}")]
    EmptyImage {
        /// Index of the image (0-based, in prompt order).
        index: usize,
    },
    /// A video was given no temporal patches or 0 tokens per patch.
    #[error(
        "video {index} has {patches} temporal patch(es) of {tokens} token(s); a video needs at \
         least one patch (one timestamp) of at least one token"
    )]
    EmptyVideo {
        /// Index of the video (0-based, in prompt order).
        index: usize,
        /// Number of timestamps (temporal patches).
        patches: usize,
        /// Tokens per temporal patch.
        tokens: usize,
    },
    /// The prompt does not fit the context.
    #[error(
        "the prompt is {n_tokens} tokens long but the limit is {max} tokens; shorten the text, \
         use fewer or smaller images/videos (lower max_pixels, fewer frames), or raise the \
         context limit"
    )]
    PromptTooLong {
        /// Prompt length in tokens.
        n_tokens: usize,
        /// The limit.
        max: usize,
    },
}
