//! The embedded default model: a tiny Qwen3-VL (vision tower with DeepStack, interleaved MRoPE,
//! 2×2 merger) with a byte-level tokenizer, small enough to train on a laptop CPU in minutes.
//!
//! Images are 64×64 with 8-pixel patches: an 8×8 patch grid merged 2×2 into 16 vision tokens,
//! each seeing one 16×16 cell of the shapes task's grid. The tokenizer has the 256 bytes and
//! Qwen3-VL's seven special tokens (ids 256–262) plus nine word tokens of the built-in task
//! (263–271), so any text round-trips through a vocabulary of 272. Its `initializer_range` is 0.1,
//! not the usual 0.02: a 64-wide model trained from scratch needs larger weights for the image
//! signal to survive the first layers (measured: at 0.02 it did not learn to read the image).

use std::path::Path;

use temper_model::Qwen3VlConfig;
use temper_model::chat::ChatTemplate;
use temper_model::preprocess::VisionPreprocessConfig;
use temper_model::processor::Processor;
use temper_model::tokenizer::{QWEN_SPECIAL_TOKENS, Tokenizer, byte_level_tokenizer_json};

use crate::error::{LearnerError, Result};

/// First id of the special tokens (after the 256 bytes).
const FIRST_SPECIAL_ID: u32 = 256;

/// Ordinary added tokens (ids 263–271) for the words every prompt of the built-in task repeats:
/// with bytes alone the chat template and question would be ~75 tokens against 16 image tokens,
/// and a tiny model learns to read the image far more slowly when it is a small share of the
/// context.
const WORD_TOKENS: [&str; 9] = [
    "user",
    "assistant",
    "How many",
    " squares are there?",
    " Answer with a digit.",
    " red",
    " green",
    " blue",
    " yellow",
];

/// `config.json` of the tiny model.
pub const TINY_CONFIG_JSON: &str = r#"{
  "architectures": ["Qwen3VLForConditionalGeneration"],
  "model_type": "qwen3_vl",
  "image_token_id": 261,
  "video_token_id": 262,
  "vision_start_token_id": 259,
  "vision_end_token_id": 260,
  "tie_word_embeddings": true,
  "text_config": {
    "model_type": "qwen3_vl_text",
    "vocab_size": 272,
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
    "max_position_embeddings": 1024,
    "initializer_range": 0.1,
    "attention_bias": false,
    "rope_parameters": {
      "rope_type": "default",
      "rope_theta": 10000.0,
      "mrope_section": [4, 2, 2],
      "mrope_interleaved": true
    }
  },
  "vision_config": {
    "model_type": "qwen3_vl_vision",
    "depth": 3,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "in_channels": 3,
    "patch_size": 8,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "out_hidden_size": 64,
    "num_position_embeddings": 64,
    "deepstack_visual_indexes": [0, 1],
    "hidden_act": "gelu_pytorch_tanh",
    "initializer_range": 0.02
  }
}"#;

/// `preprocessor_config.json` of the tiny model: 8-pixel patches and a minimum area small enough
/// that 64×64 images are not upscaled.
pub const TINY_PREPROCESSOR_JSON: &str = r#"{
  "image_processor_type": "Qwen2VLImageProcessor",
  "do_convert_rgb": true,
  "do_normalize": true,
  "do_rescale": true,
  "do_resize": true,
  "image_mean": [0.5, 0.5, 0.5],
  "image_std": [0.5, 0.5, 0.5],
  "merge_size": 2,
  "patch_size": 8,
  "resample": 3,
  "rescale_factor": 0.00392156862745098,
  "size": {"longest_edge": 262144, "shortest_edge": 1024},
  "temporal_patch_size": 2
}"#;

/// The tiny model's config.
pub fn tiny_config() -> Qwen3VlConfig {
    serde_json::from_str(TINY_CONFIG_JSON).expect("the embedded config parses")
}

/// `tokenizer.json` of the byte-level tokenizer with Qwen3-VL's special tokens.
pub fn tiny_tokenizer_json() -> String {
    let specials: Vec<(&str, u32)> = QWEN_SPECIAL_TOKENS
        .iter()
        .zip(FIRST_SPECIAL_ID..)
        .map(|(token, id)| (*token, id))
        .collect();
    let first_word_id = FIRST_SPECIAL_ID + QWEN_SPECIAL_TOKENS.len() as u32;
    let words: Vec<(&str, u32)> = WORD_TOKENS
        .iter()
        .zip(first_word_id..)
        .map(|(token, id)| (*token, id))
        .collect();
    byte_level_tokenizer_json(&specials, &words)
}

/// The processor (tokenizer, built-in chat template, pixel settings) of the tiny model.
pub fn tiny_processor(config: &Qwen3VlConfig) -> Result<Processor> {
    let model_error = |e: temper_model::ModelError| LearnerError::input("model", e.to_string());
    let tokenizer = Tokenizer::from_bytes(tiny_tokenizer_json().as_bytes())
        .map_err(|e| LearnerError::input("tokenizer", e.to_string()))?;
    let pixels = VisionPreprocessConfig::from_json_str(TINY_PREPROCESSOR_JSON)
        .map_err(|e| LearnerError::input("preprocessor", e.to_string()))?;
    Processor::new(tokenizer, ChatTemplate::builtin(), pixels, config).map_err(model_error)
}

/// Writes the tokenizer and preprocessor files beside a saved tiny checkpoint, so that
/// `temper generate --model DIR` and transformers' `AutoProcessor` can read it.
pub fn write_processor_files(dir: &Path) -> std::io::Result<()> {
    std::fs::write(dir.join("tokenizer.json"), tiny_tokenizer_json())?;
    std::fs::write(dir.join("preprocessor_config.json"), TINY_PREPROCESSOR_JSON)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_ids_match_the_config() {
        let config = tiny_config();
        let processor = tiny_processor(&config).unwrap();
        assert_eq!(processor.special.image_pad, config.image_token_id);
        assert_eq!(processor.special.vision_start, config.vision_start_token_id);
        assert!(processor.tokenizer.vocab_size() <= config.text_config.vocab_size);
        let ids = processor
            .tokenizer
            .encode("How many red squares? 3")
            .unwrap();
        assert_eq!(
            processor.tokenizer.decode(&ids, false).unwrap(),
            "How many red squares? 3"
        );
    }
}
