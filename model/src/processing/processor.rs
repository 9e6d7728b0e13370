//! Messages + images + videos → a model batch, as HF's `Qwen3VLProcessor` does: render the chat
//! template, preprocess the pixels, expand each placeholder to its merged-token count (with
//! `<t seconds>` before every video temporal patch), tokenise, check the length, left-pad.

use std::path::Path;

use burn::prelude::*;
use image::RgbImage;

use crate::chat::{
    ChatTemplate, Message, RenderOptions, VideoPlaceholder, check_prompt_length,
    expand_vision_placeholders,
};
use crate::config::Qwen3VlConfig;
use crate::error::{ModelError, Result};
use crate::model::{Batch, VisualInput};
use crate::preprocess::{
    ProcessedImage, ProcessedVideo, VisionPreprocessConfig, preprocess_image, preprocess_video,
};
use crate::tokenizer::{ConfigTokenIds, SpecialTokens, Tokenizer};

/// A decoded video: frames in order and their source frame rate.
#[derive(Debug, Clone)]
pub struct VideoClip {
    pub frames: Vec<RgbImage>,
    pub fps: f64,
}

/// One prompt ready for the model: token ids plus its preprocessed pixels.
#[derive(Debug, Clone)]
pub struct PreparedPrompt {
    pub input_ids: Vec<u32>,
    pub images: Vec<ProcessedImage>,
    pub videos: Vec<ProcessedVideo>,
}

/// Tokenizer, chat template and pixel preprocessing of one checkpoint.
#[derive(Debug)]
pub struct Processor {
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    pub pixels: VisionPreprocessConfig,
    pub special: SpecialTokens,
    /// Tokens that end a response: `<|im_end|>`, `<|endoftext|>` and the checkpoint's
    /// `generation_config.json` `eos_token_id`s (one id or a list), in that order, once each.
    pub stop_token_ids: Vec<u32>,
    /// Longest prompt accepted, in tokens.
    pub max_prompt_tokens: usize,
}

/// The generation settings file of an HF checkpoint; its `eos_token_id` adds stop tokens.
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";

/// The `eos_token_id`s of `dir/generation_config.json` (none when the file is absent).
fn generation_stop_ids(dir: &Path) -> Result<Vec<u32>> {
    let path = dir.join(GENERATION_CONFIG_FILE);
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let bad = |message: String| ModelError::Config {
        path: path.clone(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io {
        path: path.clone(),
        source,
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let id = |v: &serde_json::Value| {
        v.as_u64()
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| bad(format!("`eos_token_id` holds {v}, not a token id")))
    };
    match value.get("eos_token_id") {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(ids)) => ids.iter().map(id).collect(),
        Some(one) => Ok(vec![id(one)?]),
    }
}

/// `special`'s end tokens followed by `extra`, each once.
fn stop_ids(special: &SpecialTokens, extra: Vec<u32>) -> Vec<u32> {
    let mut ids = special.eos_ids().to_vec();
    for id in extra {
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

impl Processor {
    /// Reads `tokenizer.json`, the chat template (built-in Qwen3-VL one if the directory has
    /// none) and the preprocessor configs of a checkpoint directory.
    pub fn from_model_dir(dir: impl AsRef<Path>, config: &Qwen3VlConfig) -> Result<Self> {
        let dir = dir.as_ref();
        let tokenizer = Tokenizer::from_model_dir(dir)?;
        let ids = ConfigTokenIds {
            image_token_id: Some(config.image_token_id),
            video_token_id: Some(config.video_token_id),
            vision_start_token_id: Some(config.vision_start_token_id),
            vision_end_token_id: Some(config.vision_end_token_id),
        };
        let special = SpecialTokens::resolve(&tokenizer, &ids)?;
        let pixels = if dir
            .join(crate::preprocess::PREPROCESSOR_CONFIG_FILE)
            .is_file()
        {
            VisionPreprocessConfig::from_model_dir(dir)?
        } else {
            VisionPreprocessConfig::default()
        };
        Ok(Self {
            tokenizer,
            template: ChatTemplate::from_model_dir(dir)?,
            pixels,
            stop_token_ids: stop_ids(&special, generation_stop_ids(dir)?),
            special,
            max_prompt_tokens: config.text_config.max_position_embeddings,
        })
    }

    /// Builds a processor from parts held in memory (a tokenizer the caller made, e.g. the
    /// embedded demo's byte-level one); special-token ids are checked against `config`.
    pub fn new(
        tokenizer: Tokenizer,
        template: ChatTemplate,
        pixels: VisionPreprocessConfig,
        config: &Qwen3VlConfig,
    ) -> Result<Self> {
        let ids = ConfigTokenIds {
            image_token_id: Some(config.image_token_id),
            video_token_id: Some(config.video_token_id),
            vision_start_token_id: Some(config.vision_start_token_id),
            vision_end_token_id: Some(config.vision_end_token_id),
        };
        let special = SpecialTokens::resolve(&tokenizer, &ids)?;
        Ok(Self {
            tokenizer,
            template,
            pixels,
            stop_token_ids: stop_ids(&special, Vec::new()),
            special,
            max_prompt_tokens: config.text_config.max_position_embeddings,
        })
    }

    /// Renders, preprocesses and tokenises one conversation (generation prompt appended).
    pub fn prepare(
        &self,
        messages: &[Message],
        images: &[RgbImage],
        videos: &[VideoClip],
    ) -> Result<PreparedPrompt> {
        self.prepare_with(messages, images, videos, &RenderOptions::generation())
    }

    /// [`prepare`](Self::prepare) with explicit template options, e.g. the tool definitions
    /// of a tool-using rollout (`RenderOptions::tools`).
    pub fn prepare_with(
        &self,
        messages: &[Message],
        images: &[RgbImage],
        videos: &[VideoClip],
        options: &RenderOptions,
    ) -> Result<PreparedPrompt> {
        let merge = self.pixels.merge_size;
        let images: Vec<ProcessedImage> = images
            .iter()
            .map(|image| preprocess_image(image, &self.pixels))
            .collect::<std::result::Result<_, _>>()?;
        let videos: Vec<ProcessedVideo> = videos
            .iter()
            .map(|clip| preprocess_video(&clip.frames, Some(clip.fps), &self.pixels))
            .collect::<std::result::Result<_, _>>()?;
        let text = self.template.render(messages, options)?;
        let image_counts: Vec<usize> = images.iter().map(|i| i.num_merged_tokens(merge)).collect();
        let placeholders: Vec<VideoPlaceholder> = videos
            .iter()
            .map(|v| VideoPlaceholder {
                tokens_per_temporal_patch: v.grid_thw[1] * v.grid_thw[2] / (merge * merge),
                timestamps: v.timestamp_strings(),
            })
            .collect();
        let text = expand_vision_placeholders(&text, &image_counts, &placeholders)?;
        let input_ids = self.tokenizer.encode(&text)?;
        check_prompt_length(input_ids.len(), self.max_prompt_tokens)?;
        Ok(PreparedPrompt {
            input_ids,
            images,
            videos,
        })
    }

    /// Left-pads prompts into one batch (pad = `<|endoftext|>`), packing all images of the batch
    /// into one `pixel_values` and all videos into another, in prompt order.
    pub fn batch<B: Backend>(
        &self,
        prompts: &[PreparedPrompt],
        device: &B::Device,
    ) -> Result<Batch<B>> {
        let len = prompts.iter().map(|p| p.input_ids.len()).max().unwrap_or(0);
        if len == 0 {
            return Err(ModelError::input("prompts", "no prompt to batch"));
        }
        let pad = self.special.pad();
        let input_ids = prompts
            .iter()
            .map(|p| [vec![pad; len - p.input_ids.len()], p.input_ids.clone()].concat())
            .collect();
        let attention_mask = prompts
            .iter()
            .map(|p| {
                [
                    vec![false; len - p.input_ids.len()],
                    vec![true; p.input_ids.len()],
                ]
                .concat()
            })
            .collect();
        let row = self.pixels.row_len();
        let pack = |parts: Vec<(&[f32], [usize; 3])>| -> Option<VisualInput<B>> {
            if parts.is_empty() {
                return None;
            }
            let values: Vec<f32> = parts.iter().flat_map(|(v, _)| v.iter().copied()).collect();
            let rows = values.len() / row;
            Some(VisualInput {
                pixel_values: Tensor::from_data(TensorData::new(values, [rows, row]), device),
                grid_thw: parts.iter().map(|(_, g)| *g).collect(),
            })
        };
        let images = prompts
            .iter()
            .flat_map(|p| {
                p.images
                    .iter()
                    .map(|i| (i.pixel_values.as_slice(), i.grid_thw))
            })
            .collect();
        let videos = prompts
            .iter()
            .flat_map(|p| {
                p.videos
                    .iter()
                    .map(|v| (v.pixel_values.as_slice(), v.grid_thw))
            })
            .collect();
        Ok(Batch {
            input_ids,
            attention_mask,
            images: pack(images),
            videos: pack(videos),
            segment_ids: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stop_ids_of(json: Option<&str>) -> Result<Vec<u32>> {
        let dir = tempfile::tempdir().unwrap();
        if let Some(json) = json {
            std::fs::write(dir.path().join(GENERATION_CONFIG_FILE), json).unwrap();
        }
        generation_stop_ids(dir.path())
    }

    #[test]
    fn generation_config_eos_ids_are_one_id_or_a_list() {
        assert_eq!(stop_ids_of(None).unwrap(), Vec::<u32>::new());
        assert_eq!(
            stop_ids_of(Some(r#"{"top_p": 0.8}"#)).unwrap(),
            Vec::<u32>::new()
        );
        assert_eq!(
            stop_ids_of(Some(r#"{"eos_token_id": 151645}"#)).unwrap(),
            [151645]
        );
        assert_eq!(
            stop_ids_of(Some(r#"{"eos_token_id": [151645, 151643]}"#)).unwrap(),
            [151645, 151643]
        );
        let err = stop_ids_of(Some(r#"{"eos_token_id": "</s>"}"#))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("generation_config.json") && err.contains("eos_token_id"),
            "{err}"
        );
        let err = stop_ids_of(Some("{")).unwrap_err().to_string();
        assert!(err.contains("generation_config.json"), "{err}");
    }
}
