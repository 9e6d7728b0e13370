//! Preprocessing settings read from HuggingFace `preprocessor_config.json` (images) and
//! `video_preprocessor_config.json` (videos).
//!
//! HF names the pixel-area limits `size.shortest_edge` (minimum area) and `size.longest_edge`
//! (maximum area); here they are [`VisionPreprocessConfig::min_pixels`] and
//! [`VisionPreprocessConfig::max_pixels`]. Unknown keys are ignored (HF files carry many), missing
//! keys take the values of the released Qwen3-VL checkpoints (see [`Default`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{PreprocessError, Result};

/// HF image-processor config file name inside a model directory.
pub const PREPROCESSOR_CONFIG_FILE: &str = "preprocessor_config.json";
/// HF video-processor config file name inside a model directory.
pub const VIDEO_PREPROCESSOR_CONFIG_FILE: &str = "video_preprocessor_config.json";

/// Resampling filter used by the resize step (HF `resample`, PIL numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resample {
    /// `resample = 2`: triangle filter with antialias (torchvision `BILINEAR` on uint8).
    Bilinear,
    /// `resample = 3`: Keys cubic (a = -0.5) with antialias (torchvision `BICUBIC` on uint8).
    /// This is what Qwen2-VL/Qwen3-VL use.
    Bicubic,
}

impl Resample {
    /// Maps the PIL resampling code used in HF configs to a filter.
    pub fn from_pil_code(code: u32) -> Result<Self> {
        match code {
            2 => Ok(Self::Bilinear),
            3 => Ok(Self::Bicubic),
            other => Err(PreprocessError::InvalidConfig(format!(
                "resample = {other} is not supported; use 3 (bicubic, what Qwen3-VL uses) or 2 \
                 (bilinear)"
            ))),
        }
    }
}

/// Video-only preprocessing settings (`Qwen3VLVideoProcessor`).
#[derive(Debug, Clone, PartialEq)]
pub struct VideoPreprocessConfig {
    /// Minimum `t' * h' * w'` of the resized clip (HF `size.shortest_edge`).
    pub min_pixels: usize,
    /// Maximum `t' * h' * w'` of the resized clip (HF `size.longest_edge`).
    pub max_pixels: usize,
    /// Target sampling rate in frames per second (HF `fps`).
    pub fps: f64,
    /// Lower clamp of the sampled frame count.
    pub min_frames: usize,
    /// Upper clamp of the sampled frame count.
    pub max_frames: usize,
    /// Cap the pixel budget per frame like qwen-vl-utils (HF `cap_pixels_per_frame`, off when
    /// absent, as in transformers 5.24).
    pub cap_pixels_per_frame: bool,
    /// Per-frame token ceiling used by the cap (HF `max_video_tokens`).
    pub max_video_tokens: usize,
    /// Per-channel mean used to normalise video frames.
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation used to normalise video frames.
    pub image_std: [f64; 3],
}

/// Image and video preprocessing settings for Qwen3-VL.
#[derive(Debug, Clone, PartialEq)]
pub struct VisionPreprocessConfig {
    /// Minimum resized pixel area of an image (HF `size.shortest_edge`).
    pub min_pixels: usize,
    /// Maximum resized pixel area of an image (HF `size.longest_edge`).
    pub max_pixels: usize,
    /// Spatial patch size `P` of the vision tower.
    pub patch_size: usize,
    /// Temporal patch size `Tp` (frames per patch).
    pub temporal_patch_size: usize,
    /// Spatial merge size `m` (patches per merged token side).
    pub merge_size: usize,
    /// Per-channel mean (in `[0, 1]` units) used to normalise images.
    pub image_mean: [f64; 3],
    /// Per-channel standard deviation (in `[0, 1]` units) used to normalise images.
    pub image_std: [f64; 3],
    /// Factor mapping uint8 to `[0, 1]` (HF `rescale_factor`, `1/255`).
    pub rescale_factor: f64,
    /// Whether to resize with `smart_resize` (HF `do_resize`).
    pub do_resize: bool,
    /// Whether to multiply by `rescale_factor` (HF `do_rescale`).
    pub do_rescale: bool,
    /// Whether to normalise with mean/std (HF `do_normalize`).
    pub do_normalize: bool,
    /// Resampling filter (HF `resample`).
    pub resample: Resample,
    /// Video settings.
    pub video: VideoPreprocessConfig,
}

impl Default for VideoPreprocessConfig {
    /// Values of the released Qwen3-VL `video_preprocessor_config.json`.
    fn default() -> Self {
        Self {
            min_pixels: 4096,
            max_pixels: 25_165_824,
            fps: 2.0,
            min_frames: 4,
            max_frames: 768,
            cap_pixels_per_frame: false,
            max_video_tokens: 768,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
        }
    }
}

impl Default for VisionPreprocessConfig {
    /// Values of the released Qwen3-VL `preprocessor_config.json`.
    fn default() -> Self {
        Self {
            min_pixels: 65_536,
            max_pixels: 16_777_216,
            patch_size: 16,
            temporal_patch_size: 2,
            merge_size: 2,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            rescale_factor: 1.0 / 255.0,
            do_resize: true,
            do_rescale: true,
            do_normalize: true,
            resample: Resample::Bicubic,
            video: VideoPreprocessConfig::default(),
        }
    }
}

/// A mean/std entry: HF allows one number for all channels or one per channel.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum PerChannel {
    One(f64),
    Many(Vec<f64>),
}

impl PerChannel {
    fn to_rgb(&self, key: &str) -> Result<[f64; 3]> {
        match self {
            Self::One(v) => Ok([*v; 3]),
            Self::Many(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
            Self::Many(v) if v.len() == 1 => Ok([v[0]; 3]),
            Self::Many(v) => Err(PreprocessError::InvalidConfig(format!(
                "{key} has {} entries; give 3 (one per RGB channel)",
                v.len()
            ))),
        }
    }
}

/// HF `size` entry; only the pixel-area form is meaningful for Qwen-VL processors.
#[derive(Debug, Deserialize)]
struct HfSize {
    shortest_edge: Option<usize>,
    longest_edge: Option<usize>,
}

/// The keys of HF image/video processor JSON files that matter here; others are ignored.
#[derive(Debug, Deserialize)]
struct HfProcessorJson {
    size: Option<HfSize>,
    min_pixels: Option<usize>,
    max_pixels: Option<usize>,
    patch_size: Option<usize>,
    temporal_patch_size: Option<usize>,
    merge_size: Option<usize>,
    image_mean: Option<PerChannel>,
    image_std: Option<PerChannel>,
    rescale_factor: Option<f64>,
    do_resize: Option<bool>,
    do_rescale: Option<bool>,
    do_normalize: Option<bool>,
    resample: Option<u32>,
    // Video-only keys.
    fps: Option<f64>,
    min_frames: Option<usize>,
    max_frames: Option<usize>,
    cap_pixels_per_frame: Option<bool>,
    max_video_tokens: Option<usize>,
}

impl HfProcessorJson {
    /// `(min_pixels, max_pixels)`, with top-level `min_pixels`/`max_pixels` overriding `size`
    /// as HF's constructor does.
    fn pixel_range(&self, default: (usize, usize)) -> Result<(usize, usize)> {
        let (mut lo, mut hi) = match &self.size {
            None => default,
            Some(HfSize {
                shortest_edge: Some(lo),
                longest_edge: Some(hi),
            }) => (*lo, *hi),
            Some(_) => {
                return Err(PreprocessError::InvalidConfig(
                    "`size` must contain both `shortest_edge` (minimum pixel area) and \
                     `longest_edge` (maximum pixel area)"
                        .to_string(),
                ));
            }
        };
        if let Some(v) = self.min_pixels {
            lo = v;
        }
        if let Some(v) = self.max_pixels {
            hi = v;
        }
        Ok((lo, hi))
    }
}

fn parse_json(text: &str, path: &Path) -> Result<HfProcessorJson> {
    serde_json::from_str(text).map_err(|e| PreprocessError::ConfigParse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| PreprocessError::ConfigIo {
        path: path.to_path_buf(),
        source,
    })
}

impl TryFrom<HfProcessorJson> for VisionPreprocessConfig {
    type Error = PreprocessError;

    fn try_from(raw: HfProcessorJson) -> Result<Self> {
        let d = Self::default();
        let (min_pixels, max_pixels) = raw.pixel_range((d.min_pixels, d.max_pixels))?;
        let image_mean = match &raw.image_mean {
            Some(v) => v.to_rgb("image_mean")?,
            None => d.image_mean,
        };
        let image_std = match &raw.image_std {
            Some(v) => v.to_rgb("image_std")?,
            None => d.image_std,
        };
        let cfg = Self {
            min_pixels,
            max_pixels,
            patch_size: raw.patch_size.unwrap_or(d.patch_size),
            temporal_patch_size: raw.temporal_patch_size.unwrap_or(d.temporal_patch_size),
            merge_size: raw.merge_size.unwrap_or(d.merge_size),
            image_mean,
            image_std,
            rescale_factor: raw.rescale_factor.unwrap_or(d.rescale_factor),
            do_resize: raw.do_resize.unwrap_or(true),
            do_rescale: raw.do_rescale.unwrap_or(true),
            do_normalize: raw.do_normalize.unwrap_or(true),
            resample: match raw.resample {
                Some(code) => Resample::from_pil_code(code)?,
                None => Resample::Bicubic,
            },
            video: VideoPreprocessConfig {
                image_mean,
                image_std,
                ..VideoPreprocessConfig::default()
            },
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl<'de> Deserialize<'de> for VisionPreprocessConfig {
    /// Deserialises from the JSON layout of an HF `preprocessor_config.json`.
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> std::result::Result<Self, D::Error> {
        let raw = HfProcessorJson::deserialize(de)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl VisionPreprocessConfig {
    /// Parses an HF `preprocessor_config.json` text; video settings take their defaults.
    pub fn from_json_str(text: &str) -> Result<Self> {
        Self::try_from(parse_json(text, Path::new("<memory>"))?)
    }

    /// Reads an HF `preprocessor_config.json` file; video settings take their defaults.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let raw = parse_json(&read_file(path)?, path)?;
        Self::try_from(raw).map_err(|e| with_path(e, path))
    }

    /// Reads `preprocessor_config.json` from a model directory, plus
    /// `video_preprocessor_config.json` when that file exists.
    pub fn from_model_dir(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let cfg = Self::from_file(dir.join(PREPROCESSOR_CONFIG_FILE))?;
        let video = dir.join(VIDEO_PREPROCESSOR_CONFIG_FILE);
        if video.is_file() {
            cfg.with_video_file(video)
        } else {
            Ok(cfg)
        }
    }

    /// Applies the settings of an HF `video_preprocessor_config.json` text.
    ///
    /// Its `patch_size`, `temporal_patch_size` and `merge_size` must equal the image ones (the
    /// vision tower has one patch embedding); its mean/std, when present, apply to videos only.
    pub fn with_video_json_str(self, text: &str) -> Result<Self> {
        self.apply_video(parse_json(text, Path::new("<memory>"))?)
    }

    /// Reads an HF `video_preprocessor_config.json` file and applies it (see
    /// [`Self::with_video_json_str`]).
    pub fn with_video_file(self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let raw = parse_json(&read_file(path)?, path)?;
        self.apply_video(raw).map_err(|e| with_path(e, path))
    }

    fn apply_video(mut self, raw: HfProcessorJson) -> Result<Self> {
        for (key, got, want) in [
            ("patch_size", raw.patch_size, self.patch_size),
            (
                "temporal_patch_size",
                raw.temporal_patch_size,
                self.temporal_patch_size,
            ),
            ("merge_size", raw.merge_size, self.merge_size),
        ] {
            if let Some(got) = got
                && got != want
            {
                return Err(PreprocessError::InvalidConfig(format!(
                    "video {key} = {got} differs from the image {key} = {want}; the vision tower \
                     has a single patch embedding, so both processors must agree"
                )));
            }
        }
        let d = VideoPreprocessConfig::default();
        let (min_pixels, max_pixels) = raw.pixel_range((d.min_pixels, d.max_pixels))?;
        let v = &mut self.video;
        v.min_pixels = min_pixels;
        v.max_pixels = max_pixels;
        if let Some(fps) = raw.fps {
            v.fps = fps;
        }
        if let Some(n) = raw.min_frames {
            v.min_frames = n;
        }
        if let Some(n) = raw.max_frames {
            v.max_frames = n;
        }
        if let Some(b) = raw.cap_pixels_per_frame {
            v.cap_pixels_per_frame = b;
        }
        if let Some(n) = raw.max_video_tokens {
            v.max_video_tokens = n;
        }
        if let Some(m) = &raw.image_mean {
            v.image_mean = m.to_rgb("image_mean")?;
        }
        if let Some(s) = &raw.image_std {
            v.image_std = s.to_rgb("image_std")?;
        }
        self.validate()?;
        Ok(self)
    }

    /// `patch_size * merge_size`: every resized side is a multiple of this.
    pub fn factor(&self) -> usize {
        self.patch_size * self.merge_size
    }

    /// Length of one `pixel_values` row: `3 * temporal_patch_size * patch_size²`.
    pub fn row_len(&self) -> usize {
        3 * self.temporal_patch_size * self.patch_size * self.patch_size
    }

    /// Checks that sizes are positive, std is non-zero and the video settings are usable.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(PreprocessError::InvalidConfig(msg));
        for (key, v) in [
            ("patch_size", self.patch_size),
            ("temporal_patch_size", self.temporal_patch_size),
            ("merge_size", self.merge_size),
        ] {
            if v == 0 {
                return bad(format!("{key} is 0; it must be at least 1"));
            }
        }
        for (key, std) in [
            ("image_std", self.image_std),
            ("video image_std", self.video.image_std),
        ] {
            if std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
                return bad(format!(
                    "{key} = {std:?} has a zero or non-finite entry; every channel needs a \
                     non-zero std"
                ));
            }
        }
        if self.do_rescale && (self.rescale_factor == 0.0 || !self.rescale_factor.is_finite()) {
            return bad(format!(
                "rescale_factor = {} must be finite and non-zero (usually 1/255)",
                self.rescale_factor
            ));
        }
        if !(self.video.fps.is_finite() && self.video.fps > 0.0) {
            return bad(format!(
                "video fps = {} must be a positive frame rate (Qwen3-VL uses 2)",
                self.video.fps
            ));
        }
        if self.video.min_frames > self.video.max_frames {
            return bad(format!(
                "video min_frames = {} exceeds max_frames = {}",
                self.video.min_frames, self.video.max_frames
            ));
        }
        Ok(())
    }
}

fn with_path(e: PreprocessError, path: &Path) -> PreprocessError {
    match e {
        PreprocessError::InvalidConfig(msg) => PreprocessError::ConfigParse {
            path: PathBuf::from(path),
            message: msg,
        },
        other => other,
    }
}
