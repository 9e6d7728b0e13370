//! Serde mirror of HF `config.json` for `Qwen3VLForConditionalGeneration` and its MoE sibling.
//!
//! Both layouts are read: transformers 5 writes the text RoPE under `rope_parameters`, the hub
//! checkpoints (transformers 4.57) under `rope_theta` + `rope_scaling`. Unknown keys are ignored
//! on purpose: HF configs carry many fields that do not change the forward pass.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Top-level `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Qwen3VlConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    pub image_token_id: u32,
    pub video_token_id: u32,
    pub vision_start_token_id: u32,
    pub vision_end_token_id: u32,
    /// Tying is decided by the top-level flag (the text config's copy is ignored, as in HF).
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Every other key of the file, kept so a saved config round-trips (HF reads them).
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn default_model_type() -> String {
    "qwen3_vl".to_string()
}

/// Text RoPE parameters, in either layout.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RopeParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrope_section: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrope_interleaved: Option<bool>,
}

/// `text_config`: the Qwen3 decoder (dense or MoE).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "default_rms_eps")]
    pub rms_norm_eps: f64,
    #[serde(default = "default_max_positions")]
    pub max_position_embeddings: usize,
    /// Hub layout: theta at the top of text_config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    /// Hub layout: mrope settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// transformers 5 layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    // --- MoE (Qwen3VLMoe) ---
    /// transformers 5.24 writes this as `num_local_experts`.
    #[serde(
        default,
        alias = "num_local_experts",
        skip_serializing_if = "Option::is_none"
    )]
    pub num_experts: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_experts_per_tok: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moe_intermediate_size: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decoder_sparse_step: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlp_only_layers: Option<Vec<usize>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn default_rms_eps() -> f64 {
    1e-6
}
fn default_max_positions() -> usize {
    262_144
}

/// `vision_config`: the SigLIP-2 style ViT with DeepStack mergers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct VisionConfig {
    pub depth: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    #[serde(default = "default_in_channels")]
    pub in_channels: usize,
    pub patch_size: usize,
    pub temporal_patch_size: usize,
    pub spatial_merge_size: usize,
    pub out_hidden_size: usize,
    pub num_position_embeddings: usize,
    #[serde(default)]
    pub deepstack_visual_indexes: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn default_in_channels() -> usize {
    3
}

/// Which of the three MRoPE axes feeds one rotary frequency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeAxis {
    T = 0,
    H = 1,
    W = 2,
}

impl TextConfig {
    /// `head_dim` from the config; when absent, HF's defaults: 128 for the dense text config,
    /// `hidden / heads` for the MoE one.
    pub fn head_dim(&self) -> usize {
        self.head_dim.unwrap_or(if self.is_moe() {
            self.hidden_size / self.num_attention_heads
        } else {
            128
        })
    }

    fn rope(&self) -> Option<&RopeParameters> {
        self.rope_parameters.as_ref().or(self.rope_scaling.as_ref())
    }

    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .or(self.rope_theta)
            .unwrap_or(5_000_000.0)
    }

    /// `[s_t, s_h, s_w]`; pure 1-D RoPE (all T) when absent.
    pub fn mrope_section(&self) -> [usize; 3] {
        match self.rope().and_then(|r| r.mrope_section.as_deref()) {
            Some([t, h, w]) => [*t, *h, *w],
            _ => [self.head_dim() / 2, 0, 0],
        }
    }

    pub fn mrope_interleaved(&self) -> bool {
        self.rope()
            .and_then(|r| r.mrope_interleaved)
            .unwrap_or(true)
    }

    /// The axis each of the `head_dim / 2` frequencies takes its position from.
    ///
    /// Interleaved (Qwen3-VL): `j % 3 == 1 && j < 3·s_h` → H, `j % 3 == 2 && j < 3·s_w` → W,
    /// else T. Block layout (Qwen2-VL): the first `s_t` are T, the next `s_h` H, the rest W.
    pub fn rope_axes(&self) -> Vec<RopeAxis> {
        let [s_t, s_h, s_w] = self.mrope_section();
        let half = self.head_dim() / 2;
        (0..half)
            .map(|j| {
                if self.mrope_interleaved() {
                    if j % 3 == 1 && j < 3 * s_h {
                        RopeAxis::H
                    } else if j % 3 == 2 && j < 3 * s_w {
                        RopeAxis::W
                    } else {
                        RopeAxis::T
                    }
                } else if j < s_t {
                    RopeAxis::T
                } else if j < s_t + s_h {
                    RopeAxis::H
                } else {
                    RopeAxis::W
                }
            })
            .collect()
    }

    pub fn is_moe(&self) -> bool {
        self.num_experts.unwrap_or(0) > 0
    }

    /// Whether decoder layer `layer` uses the sparse MoE block (HF's rule).
    pub fn layer_is_sparse(&self, layer: usize) -> bool {
        let step = self.decoder_sparse_step.unwrap_or(1).max(1);
        self.is_moe()
            && !self
                .mlp_only_layers
                .as_deref()
                .unwrap_or_default()
                .contains(&layer)
            && (layer + 1).is_multiple_of(step)
    }
}

impl VisionConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters
            .as_ref()
            .and_then(|r| r.rope_theta)
            .unwrap_or(10_000.0)
    }
    /// Side of the learned position-embedding grid (`sqrt(num_position_embeddings)`).
    pub fn position_grid_side(&self) -> usize {
        (self.num_position_embeddings as f64).sqrt().round() as usize
    }
    /// Length of one flattened patch row: `C·Tp·P·P`.
    pub fn patch_dim(&self) -> usize {
        self.in_channels * self.temporal_patch_size * self.patch_size * self.patch_size
    }
}

impl Qwen3VlConfig {
    /// Reads and validates `config.json` (either layout).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ModelError::io(path, e))?;
        Self::from_json(&text).map_err(|message| ModelError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    /// Parses and validates a config from JSON text.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let config: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the invariants the forward pass relies on.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let t = &self.text_config;
        let v = &self.vision_config;
        let hd = t.head_dim();
        if t.num_attention_heads == 0 || t.num_key_value_heads == 0 {
            return Err("text_config: attention/KV head counts must be positive".into());
        }
        if !t.num_attention_heads.is_multiple_of(t.num_key_value_heads) {
            return Err(format!(
                "text_config.num_attention_heads ({}) must be a multiple of num_key_value_heads ({})",
                t.num_attention_heads, t.num_key_value_heads
            ));
        }
        if !hd.is_multiple_of(2) {
            return Err(format!("text_config.head_dim ({hd}) must be even"));
        }
        let section: usize = t.mrope_section().iter().sum();
        if section != hd / 2 {
            return Err(format!(
                "text_config mrope_section {:?} must sum to head_dim/2 = {}",
                t.mrope_section(),
                hd / 2
            ));
        }
        if v.num_heads == 0
            || !v.hidden_size.is_multiple_of(v.num_heads)
            || !v.head_dim().is_multiple_of(4)
        {
            return Err(format!(
                "vision_config: hidden_size ({}) / num_heads ({}) must be a multiple of 4",
                v.hidden_size, v.num_heads
            ));
        }
        let side = v.position_grid_side();
        if side * side != v.num_position_embeddings {
            return Err(format!(
                "vision_config.num_position_embeddings ({}) must be a square",
                v.num_position_embeddings
            ));
        }
        if v.out_hidden_size != t.hidden_size {
            return Err(format!(
                "vision_config.out_hidden_size ({}) must equal text_config.hidden_size ({})",
                v.out_hidden_size, t.hidden_size
            ));
        }
        if let Some(&bad) = v.deepstack_visual_indexes.iter().find(|&&i| i >= v.depth) {
            return Err(format!(
                "vision_config.deepstack_visual_indexes has {bad}, beyond depth {}",
                v.depth
            ));
        }
        if v.deepstack_visual_indexes.len() > t.num_hidden_layers {
            return Err("more DeepStack features than decoder layers".into());
        }
        if t.is_moe() {
            let k = t.num_experts_per_tok.unwrap_or(0);
            if k == 0 || k > t.num_experts.unwrap_or(0) || t.moe_intermediate_size.is_none() {
                return Err("MoE text_config needs 0 < num_experts_per_tok <= num_experts and moe_intermediate_size".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaved_axes_match_the_spec_for_real_sizes() {
        let mut cfg: TextConfig = serde_json::from_str(
            r#"{"vocab_size":10,"hidden_size":2048,"intermediate_size":8,"num_hidden_layers":1,
            "num_attention_heads":16,"num_key_value_heads":8,"head_dim":128,
            "rope_scaling":{"mrope_section":[24,20,20],"mrope_interleaved":true}}"#,
        )
        .unwrap();
        let axes = cfg.rope_axes();
        assert_eq!(axes.len(), 64);
        // T H W T H W ... for j < 60, then T for 60..64.
        for (j, axis) in axes.iter().enumerate() {
            let expected = if j >= 60 {
                RopeAxis::T
            } else {
                [RopeAxis::T, RopeAxis::H, RopeAxis::W][j % 3]
            };
            assert_eq!(*axis, expected, "frequency {j}");
        }
        cfg.rope_scaling.as_mut().unwrap().mrope_interleaved = Some(false);
        let block = cfg.rope_axes();
        assert_eq!(block[23], RopeAxis::T);
        assert_eq!(block[24], RopeAxis::H);
        assert_eq!(block[44], RopeAxis::W);
    }
}
