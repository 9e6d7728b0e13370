//! The video path of `Qwen3VLVideoProcessor`: frame sampling, one `smart_resize` for the whole
//! clip, uint8 resize, normalisation, padding to a multiple of `Tp`, patchify, and the
//! per-temporal-patch timestamps the Qwen3-VL prompt shows (`<1.2 seconds>`).

use std::path::Path;

use image::RgbImage;

use super::config::VisionPreprocessConfig;
use super::error::{PreprocessError, Result};
use super::images::{check_target_fits, load_image, normalization_lut, patchify_into};
use super::pyfmt::format_f64_1dp;
use super::resize::{resize_rgb, round_half_even, smart_resize_video};

/// Source frame rate assumed when a video's rate is unknown (as in HF).
pub const DEFAULT_SOURCE_FPS: f64 = 24.0;

/// Patch rows of one video.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedVideo {
    /// Flattened `(rows, C·Tp·P·P)` patch matrix: `t`-major, then merge-window order; each row
    /// holds `Tp` consecutive frames along the `Tp` axis.
    pub pixel_values: Vec<f32>,
    /// Grid in patches: `(n/Tp, h'/P, w'/P)` with `n` the padded frame count.
    pub grid_thw: [usize; 3],
    /// One timestamp (seconds) per temporal patch: the mean of the times of its first and
    /// last frame.
    pub timestamps_seconds: Vec<f64>,
    /// Source-frame index of every sampled frame (before padding).
    pub frame_indices: Vec<usize>,
}

impl ProcessedVideo {
    /// The prompt text of each temporal patch's timestamp, e.g. `"<0.8 seconds>"`.
    pub fn timestamp_strings(&self) -> Vec<String> {
        self.timestamps_seconds
            .iter()
            .map(|&s| format_timestamp(s))
            .collect()
    }
}

/// Which source frames to keep when sampling at `target_fps` (HF `Qwen3VLVideoProcessor.
/// sample_frames`).
///
/// `n = int(total / source_fps · target_fps)`, clamped to `[min_frames, max_frames]` and then
/// to at most `total`; indices are `round(linspace(0, total − 1, n))` with numpy's
/// round-half-to-even. A non-finite rate saturates `n` (NaN → 0, ∞ → `max_frames`).
pub fn sample_frame_indices(
    total_frames: usize,
    source_fps: f64,
    target_fps: f64,
    min_frames: usize,
    max_frames: usize,
) -> Vec<usize> {
    let wanted = (total_frames as f64 / source_fps * target_fps) as usize;
    let n = wanted.max(min_frames).min(max_frames).min(total_frames);
    linspace_rounded(total_frames.saturating_sub(1), n)
}

/// `numpy.linspace(0, stop, n).round().astype(int)`.
fn linspace_rounded(stop: usize, n: usize) -> Vec<usize> {
    match n {
        0 => Vec::new(),
        1 => vec![0],
        _ => {
            let div = (n - 1) as f64;
            let delta = stop as f64;
            let step = delta / div;
            (0..n)
                .map(|i| {
                    let y = if i == n - 1 {
                        delta
                    } else if step == 0.0 {
                        i as f64 / div * delta
                    } else {
                        i as f64 * step
                    };
                    round_half_even(y) as usize
                })
                .collect()
        }
    }
}

/// Timestamps (seconds) of each temporal patch, as `Qwen3VLProcessor._calculate_timestamps`:
/// indices are padded to a multiple of `temporal_patch_size` by repeating the last one, each
/// becomes `idx / fps`, and patch `t` gets `(first + last) / 2` of its frames' times.
pub fn video_timestamps(
    frame_indices: &[usize],
    source_fps: f64,
    temporal_patch_size: usize,
) -> Vec<f64> {
    let tp = temporal_patch_size.max(1);
    let Some(&last) = frame_indices.last() else {
        return Vec::new();
    };
    let mut idx = frame_indices.to_vec();
    while !idx.len().is_multiple_of(tp) {
        idx.push(last);
    }
    let times: Vec<f64> = idx.iter().map(|&i| i as f64 / source_fps).collect();
    times
        .chunks_exact(tp)
        .map(|c| (c[0] + c[tp - 1]) / 2.0)
        .collect()
}

/// The prompt text of a timestamp: `"<%.1f seconds>"` with Python's exact rounding
/// (`0.25 → "<0.2 seconds>"`, `1.5625 → "<1.6 seconds>"`).
pub fn format_timestamp(seconds: f64) -> String {
    format!("<{} seconds>", format_f64_1dp(seconds))
}

/// Loads the frames of a video from a directory of image files (`.png`, `.jpg`, `.jpeg`, any
/// case), sorted by file name; other files are ignored. Name frames with zero-padded numbers so
/// that name order is time order.
pub fn load_video_frames_dir(dir: impl AsRef<Path>) -> Result<Vec<RgbImage>> {
    let dir = dir.as_ref();
    let io_err = |source| PreprocessError::VideoDirIo {
        dir: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"));
        if is_image && path.is_file() {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(PreprocessError::EmptyVideoDir {
            dir: dir.to_path_buf(),
        });
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths.iter().map(load_image).collect()
}

fn check_fps(what: &'static str, fps: f64) -> Result<()> {
    if fps.is_finite() && fps > 0.0 {
        Ok(())
    } else {
        Err(PreprocessError::InvalidFps { what, fps })
    }
}

/// Samples frames from a whole decoded clip at `cfg.video.fps` and preprocesses them (HF's
/// default `do_sample_frames=True` path). `source_fps = None` assumes 24 fps, as HF does.
pub fn preprocess_video(
    frames: &[RgbImage],
    source_fps: Option<f64>,
    cfg: &VisionPreprocessConfig,
) -> Result<ProcessedVideo> {
    cfg.validate()?;
    let fps = source_fps.unwrap_or(DEFAULT_SOURCE_FPS);
    check_fps("source fps", fps)?;
    let v = &cfg.video;
    let indices = sample_frame_indices(frames.len(), fps, v.fps, v.min_frames, v.max_frames);
    let sampled: Vec<&RgbImage> = indices.iter().map(|&i| &frames[i]).collect();
    process_frames(&sampled, &indices, fps, cfg)
}

/// Preprocesses frames that were already sampled: `frames[k]` is source frame
/// `frame_indices[k]` of a clip running at `source_fps` (used only for the timestamps).
///
/// All frames must have the same size. The frame count is padded to a multiple of `Tp` by
/// repeating the last frame; one `smart_resize` size applies to the whole clip.
pub fn preprocess_sampled_video(
    frames: &[RgbImage],
    frame_indices: &[usize],
    source_fps: f64,
    cfg: &VisionPreprocessConfig,
) -> Result<ProcessedVideo> {
    let frames: Vec<&RgbImage> = frames.iter().collect();
    process_frames(&frames, frame_indices, source_fps, cfg)
}

fn process_frames(
    frames: &[&RgbImage],
    frame_indices: &[usize],
    source_fps: f64,
    cfg: &VisionPreprocessConfig,
) -> Result<ProcessedVideo> {
    cfg.validate()?;
    check_fps("source fps", source_fps)?;
    if frame_indices.len() != frames.len() {
        return Err(PreprocessError::FrameIndexCount {
            indices: frame_indices.len(),
            frames: frames.len(),
        });
    }
    let tp = cfg.temporal_patch_size;
    let Some(first) = frames.first() else {
        return Err(PreprocessError::TooFewFrames {
            frames: 0,
            required: tp,
        });
    };
    let (w, h) = first.dimensions();
    for (index, f) in frames.iter().enumerate() {
        if f.dimensions() != (w, h) {
            return Err(PreprocessError::FrameSizeMismatch {
                index,
                height: f.height() as usize,
                width: f.width() as usize,
                first_height: h as usize,
                first_width: w as usize,
            });
        }
    }
    let (h, w) = (h as usize, w as usize);
    let (th, tw) = video_target_size(frames.len(), h, w, cfg)?;
    check_target_fits(th, tw)?;

    let resized: Vec<RgbImage> = frames
        .iter()
        .map(|f| resize_rgb(f, th, tw, cfg.resample))
        .collect();
    let mut refs: Vec<&RgbImage> = resized.iter().collect();
    // Pad to a multiple of Tp by repeating the last frame.
    while !refs.len().is_multiple_of(tp) {
        refs.push(&resized[resized.len() - 1]);
    }
    let lut = normalization_lut(cfg, cfg.video.image_mean, cfg.video.image_std);
    let mut pixel_values = Vec::new();
    let grid_thw = patchify_into(&refs, &lut, cfg, &mut pixel_values);
    Ok(ProcessedVideo {
        pixel_values,
        grid_thw,
        timestamps_seconds: video_timestamps(frame_indices, source_fps, tp),
        frame_indices: frame_indices.to_vec(),
    })
}

/// The per-frame size the video processor resizes a clip of `num_frames` frames of
/// `height x width` to (including the optional per-frame pixel cap).
pub fn video_target_size(
    num_frames: usize,
    height: usize,
    width: usize,
    cfg: &VisionPreprocessConfig,
) -> Result<(usize, usize)> {
    let v = &cfg.video;
    let factor = cfg.factor();
    if !cfg.do_resize {
        if num_frames < cfg.temporal_patch_size || num_frames == 0 {
            return Err(PreprocessError::TooFewFrames {
                frames: num_frames,
                required: cfg.temporal_patch_size,
            });
        }
        if !height.is_multiple_of(factor)
            || !width.is_multiple_of(factor)
            || height == 0
            || width == 0
        {
            return Err(PreprocessError::NotPatchAligned {
                what: "video".to_string(),
                height,
                width,
                factor,
            });
        }
        return Ok((height, width));
    }
    let mut max_pixels = v.max_pixels;
    if v.cap_pixels_per_frame && num_frames > 0 {
        let frame_cap = v.max_video_tokens * factor * factor;
        let floor = (v.min_pixels as f64 * 1.05) as usize;
        let per_frame = frame_cap.min(v.max_pixels / num_frames).max(floor);
        max_pixels = per_frame * num_frames;
    }
    smart_resize_video(
        num_frames,
        height,
        width,
        cfg.temporal_patch_size,
        factor,
        v.min_pixels,
        max_pixels,
    )
}
