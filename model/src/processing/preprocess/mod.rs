//! Image and video preprocessing for Qwen3-VL, matching HF transformers 5.24
//! (`Qwen2VLImageProcessor` with the torchvision backend, `Qwen3VLVideoProcessor`).
//!
//! This module holds:
//! - [`VisionPreprocessConfig`] / [`VideoPreprocessConfig`]: settings read from HF
//!   `preprocessor_config.json` / `video_preprocessor_config.json`.
//! - [`smart_resize`] / [`smart_resize_video`]: the target-size rules (Python rounding), and
//!   [`resize_rgb`]: the uint8 antialiased bicubic resize, bit-exact with torchvision/ATen.
//! - [`load_image`] and [`preprocess_image`]: image → `pixel_values` rows in merge-window order
//!   plus `grid_thw`.
//! - [`sample_frame_indices`], [`preprocess_video`], [`video_timestamps`],
//!   [`format_timestamp`] and [`load_video_frames_dir`]: the video path.
//! - [`merged_token_count`]: placeholder tokens per grid.
//! - [`PreprocessError`]: the errors of all of the above.
//!
//! Everything here is plain Rust on `Vec<f32>`; no burn types.

mod config;
mod error;
mod images;
mod pyfmt;
mod resize;
mod video;

pub use config::{
    PREPROCESSOR_CONFIG_FILE, Resample, VIDEO_PREPROCESSOR_CONFIG_FILE, VideoPreprocessConfig,
    VisionPreprocessConfig,
};
pub use error::{PreprocessError, Result};
pub use images::{
    ProcessedImage, ProcessedImages, decode_image, image_target_size, load_image,
    load_image_over_white, merged_token_count, preprocess_image, preprocess_images,
    resize_for_model, to_rgb, to_rgb_over_white,
};
pub use pyfmt::format_f64_1dp;
pub use resize::{
    resize_bicubic_aa, resize_rgb, round_half_even, smart_resize, smart_resize_video,
};
pub use video::{
    DEFAULT_SOURCE_FPS, ProcessedVideo, format_timestamp, load_video_frames_dir,
    preprocess_sampled_video, preprocess_video, sample_frame_indices, video_target_size,
    video_timestamps,
};
