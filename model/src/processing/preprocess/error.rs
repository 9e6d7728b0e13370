//! The error type shared by all preprocessing functions.

use std::path::PathBuf;

use thiserror::Error;

/// Errors raised while loading or preprocessing images and videos.
///
/// Every message names the offending input (file, directory, size or setting) and says how to
/// fix it. No preprocessing function panics on bad input; they return one of these instead.
#[derive(Debug, Error)]
pub enum PreprocessError {
    /// The image file does not exist.
    #[error("image file {} not found; check the path", path.display())]
    ImageNotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The image file exists but could not be read.
    #[error("cannot read image file {}: {source}; check its permissions", path.display())]
    ImageIo {
        /// The file that failed to read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The image file could not be decoded (corrupt, truncated or an unsupported format).
    #[error(
        "cannot decode image file {}: {message}; the file is corrupt, truncated or not a \
         PNG/JPEG image, re-export it as PNG or JPEG",
        path.display()
    )]
    ImageDecode {
        /// The file that failed to decode (`<memory>` for in-memory bytes).
        path: PathBuf,
        /// What the decoder reported.
        message: String,
    },
    /// The image (or video frame) has a zero height or width.
    #[error("{what} has an empty size {height}x{width}; pass an image with at least one pixel")]
    EmptyImage {
        /// Which input is empty (for example `image` or `video frame 3`).
        what: String,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
    /// The long side is more than 200 times the short side (`smart_resize` refuses such inputs).
    #[error(
        "input of {height}x{width} pixels has aspect ratio {ratio} > 200; crop or pad it so \
         that the long side is at most 200 times the short side"
    )]
    AspectRatio {
        /// Height in pixels (after the short-side upscale for videos).
        height: usize,
        /// Width in pixels (after the short-side upscale for videos).
        width: usize,
        /// `max(h, w) / min(h, w)`.
        ratio: f64,
    },
    /// The resize target has a zero side (only possible with `min_pixels = 0`).
    #[error(
        "input of {height}x{width} pixels resizes to an empty {target_height}x{target_width} \
         image; raise min_pixels (size.shortest_edge) above 0"
    )]
    EmptyTarget {
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
        /// Computed target height.
        target_height: usize,
        /// Computed target width.
        target_width: usize,
    },
    /// Resizing is off but the input size is not a multiple of `patch_size * merge_size`.
    #[error(
        "{what} is {height}x{width} pixels, which is not a multiple of {factor} \
         (patch_size * merge_size) in both sides; enable do_resize or resize it first"
    )]
    NotPatchAligned {
        /// Which input (for example `image` or `video`).
        what: String,
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
        /// Required multiple.
        factor: usize,
    },
    /// The video frame directory cannot be listed.
    #[error("cannot read video frame directory {}: {source}; check that it exists", dir.display())]
    VideoDirIo {
        /// The directory.
        dir: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The video frame directory holds no image files.
    #[error(
        "video frame directory {} contains no .png/.jpg/.jpeg files; decode the video into \
         frames named so that they sort in time order (e.g. frame_00001.png)",
        dir.display()
    )]
    EmptyVideoDir {
        /// The directory.
        dir: PathBuf,
    },
    /// The video has fewer frames than one temporal patch needs.
    #[error(
        "video has {frames} frame(s) after sampling but at least {required} \
         (temporal_patch_size) are needed; pass a longer clip or repeat its frames"
    )]
    TooFewFrames {
        /// Frames available (after sampling).
        frames: usize,
        /// Frames required.
        required: usize,
    },
    /// The frames of one video do not all have the same size.
    #[error(
        "video frame {index} is {height}x{width} pixels but frame 0 is \
         {first_height}x{first_width}; all frames of a clip must have the same size"
    )]
    FrameSizeMismatch {
        /// Index of the first frame whose size differs.
        index: usize,
        /// Its height.
        height: usize,
        /// Its width.
        width: usize,
        /// Height of frame 0.
        first_height: usize,
        /// Width of frame 0.
        first_width: usize,
    },
    /// The number of frame indices does not match the number of frames.
    #[error(
        "got {indices} frame indices for {frames} frames; pass one source-frame index per \
         sampled frame"
    )]
    FrameIndexCount {
        /// Number of indices given.
        indices: usize,
        /// Number of frames given.
        frames: usize,
    },
    /// A frame rate is zero, negative or not finite.
    #[error("{what} {fps} is not a positive finite frame rate; pass frames per second > 0")]
    InvalidFps {
        /// Which rate (`source fps` or `target fps`).
        what: &'static str,
        /// The value given.
        fps: f64,
    },
    /// The preprocessing configuration is invalid.
    #[error("invalid preprocessing config: {0}")]
    InvalidConfig(String),
    /// A preprocessing config file could not be read.
    #[error("cannot read preprocessing config {}: {source}", path.display())]
    ConfigIo {
        /// The config file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A preprocessing config file is not valid JSON or has wrongly typed fields.
    #[error(
        "cannot parse preprocessing config {}: {message}; it must be a huggingface \
         preprocessor_config.json / video_preprocessor_config.json",
        path.display()
    )]
    ConfigParse {
        /// The config file (`<memory>` for strings).
        path: PathBuf,
        /// What the parser reported.
        message: String,
    },
}

/// Result alias for preprocessing.
pub type Result<T, E = PreprocessError> = std::result::Result<T, E>;
