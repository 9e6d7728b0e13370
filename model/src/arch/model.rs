//! `Qwen3VlForConditionalGeneration`: the vision tower feeding the text decoder.
//!
//! One forward pass: MRoPE ids from the token ids and grids → vision tower (one call for all
//! images, one for all videos) → token embeddings with visual rows substituted at the pad
//! positions → decoder with DeepStack features added after the first layers → final norm.
//! The KV cache is passed in, never owned, so one immutable model serves any number of sequences.

use std::path::Path;

use burn::prelude::*;

use crate::cache::KvCache;
use crate::config::Qwen3VlConfig;
use crate::error::{ModelError, Result};
use crate::nn::MASK_VALUE;
use crate::position::{RopeIndex, VisualTokens, rope_index_packed};
use crate::rope::TextRope;
use crate::text::{DeepStackInjection, TextModel};
use crate::trace::Trace;
use crate::vision::{VisionOutput, VisionTower};
use crate::weights::{
    Checkpoint, Loader, RandomInit, SaveDtype, Saver, TensorSource, save_checkpoint,
};

/// Pixel rows of one modality with their grids `(t, h, w)` in patches.
#[derive(Debug, Clone)]
pub struct VisualInput<B: Backend> {
    /// `[N, C·Tp·P·P]` in the processor's merge-window order.
    pub pixel_values: Tensor<B, 2>,
    pub grid_thw: Vec<[usize; 3]>,
}

/// A padded batch of prompts (HF processor semantics).
#[derive(Debug, Clone)]
pub struct Batch<B: Backend> {
    /// `[B][L]` token ids, left-padded.
    pub input_ids: Vec<Vec<u32>>,
    /// `[B][L]`, `true` for real tokens.
    pub attention_mask: Vec<Vec<bool>>,
    pub images: Option<VisualInput<B>>,
    pub videos: Option<VisualInput<B>>,
    /// `[B][L]` sequence ids for packed rows (several sequences per row, attending only within
    /// themselves, positions restarting at each); `None` for one sequence per row.
    pub segment_ids: Option<Vec<Vec<u32>>>,
}

impl<B: Backend> Batch<B> {
    /// A text-only batch of one unpadded prompt.
    pub fn text(ids: Vec<u32>) -> Self {
        let len = ids.len();
        Self {
            input_ids: vec![ids],
            attention_mask: vec![vec![true; len]],
            images: None,
            videos: None,
            segment_ids: None,
        }
    }

    pub fn batch_size(&self) -> usize {
        self.input_ids.len()
    }

    pub fn seq_len(&self) -> usize {
        self.input_ids.first().map_or(0, Vec::len)
    }
}

/// Result of a full forward pass.
#[derive(Debug, Clone)]
pub struct ForwardOutput<B: Backend> {
    /// `[B, L, D]` after the final norm (the LM head's input).
    pub hidden: Tensor<B, 3>,
    pub rope: RopeIndex,
}

/// The policy model.
#[derive(Module, Debug)]
pub struct Qwen3Vl<B: Backend> {
    pub visual: VisionTower<B>,
    pub language: TextModel<B>,
    #[module(skip)]
    pub config: Qwen3VlConfig,
}

impl<B: Backend> Qwen3Vl<B> {
    /// Builds the model from any parameter source.
    pub fn from_source(
        config: Qwen3VlConfig,
        source: &mut dyn TensorSource,
        device: &B::Device,
    ) -> Result<Self> {
        let mut loader = Loader::<B> {
            source,
            device: device.clone(),
        };
        Ok(Self {
            visual: VisionTower::load(&mut loader, &config.vision_config)?,
            language: TextModel::load(
                &mut loader,
                &config.text_config,
                config.tie_word_embeddings,
            )?,
            config,
        })
    }

    /// Loads a HF checkpoint directory (`config.json` + safetensors, single or sharded).
    pub fn load(dir: impl AsRef<Path>, device: &B::Device) -> Result<Self> {
        let dir = dir.as_ref();
        let config = Qwen3VlConfig::from_file(dir.join("config.json"))?;
        let mut checkpoint = Checkpoint::open(dir)?;
        Self::from_source(config, &mut checkpoint, device)
    }

    /// Seeded random weights (tiny models, benchmarks), with the text config's
    /// `initializer_range` as the standard deviation when it has one (HF's `_init_weights`).
    pub fn random(config: Qwen3VlConfig, seed: u64, device: &B::Device) -> Result<Self> {
        let std = config
            .text_config
            .extra
            .get("initializer_range")
            .and_then(serde_json::Value::as_f64);
        Self::from_source(config, &mut RandomInit { seed, std }, device)
    }

    /// All parameters under their HF names (what `state_dict()` would hold).
    pub fn hf_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut saver = Saver::default();
        self.visual.save(&mut saver, &self.config.vision_config);
        self.language.save(&mut saver);
        saver.tensors
    }

    /// Writes `config.json` and HF-named safetensors (sharded above `max_shard_bytes`).
    pub fn save(
        &self,
        dir: impl AsRef<Path>,
        dtype: SaveDtype,
        max_shard_bytes: usize,
    ) -> Result<()> {
        let dir = dir.as_ref();
        save_checkpoint(dir, self.hf_tensors(), dtype, max_shard_bytes)?;
        let mut config = self.config.clone();
        let dtype_name = match dtype {
            SaveDtype::F32 => "float32",
            SaveDtype::Bf16 => "bfloat16",
            SaveDtype::F16 => "float16",
        };
        let architecture = if config.text_config.is_moe() {
            "Qwen3VLMoeForConditionalGeneration"
        } else {
            "Qwen3VLForConditionalGeneration"
        };
        config.extra.insert("dtype".into(), dtype_name.into());
        config
            .extra
            .entry("architectures".into())
            .or_insert_with(|| serde_json::json!([architecture]));
        let config_path = dir.join("config.json");
        let json = serde_json::to_string_pretty(&config).expect("config serialises");
        crate::output_file::write_file(&config_path, json.as_bytes())
    }

    fn visual_tokens(&self) -> VisualTokens {
        VisualTokens {
            image_token_id: self.config.image_token_id,
            video_token_id: self.config.video_token_id,
            spatial_merge_size: self.config.vision_config.spatial_merge_size,
        }
    }

    /// Checks a batch against the config before any compute: shapes, ids, grids.
    pub fn validate(&self, batch: &Batch<B>) -> Result<()> {
        let vocab = self.config.text_config.vocab_size;
        let seq = batch.seq_len();
        if batch.batch_size() == 0 || seq == 0 {
            return Err(ModelError::input("input_ids", "the batch is empty"));
        }
        if batch.attention_mask.len() != batch.batch_size() {
            return Err(ModelError::input(
                "attention_mask",
                format!(
                    "has {} rows, input_ids has {}",
                    batch.attention_mask.len(),
                    batch.batch_size()
                ),
            ));
        }
        for (b, (ids, mask)) in batch
            .input_ids
            .iter()
            .zip(&batch.attention_mask)
            .enumerate()
        {
            if ids.len() != seq || mask.len() != seq {
                return Err(ModelError::input(
                    "input_ids",
                    format!("row {b} is not of length {seq}"),
                ));
            }
            if let Some(&bad) = ids.iter().find(|&&id| id as usize >= vocab) {
                return Err(ModelError::input(
                    "input_ids",
                    format!("row {b} holds token id {bad}, outside the vocabulary of {vocab}"),
                ));
            }
            if !mask.iter().any(|&m| m) {
                return Err(ModelError::input(
                    "attention_mask",
                    format!("row {b} has no real token"),
                ));
            }
            if let Some(segments) = &batch.segment_ids
                && segments.get(b).map(Vec::len) != Some(seq)
            {
                return Err(ModelError::input(
                    "segment_ids",
                    format!("row {b} is not of length {seq}"),
                ));
            }
        }
        let max_len = self.config.text_config.max_position_embeddings;
        if seq > max_len {
            return Err(ModelError::input(
                "input_ids",
                format!(
                    "sequence length {seq} exceeds max_position_embeddings {max_len}; shorten the prompt"
                ),
            ));
        }
        self.validate_visual(batch)
    }

    /// Checks the batch's pixel rows and grids against the vision config.
    pub(crate) fn validate_visual(&self, batch: &Batch<B>) -> Result<()> {
        let v = &self.config.vision_config;
        for (name, input) in [("image", &batch.images), ("video", &batch.videos)] {
            let Some(input) = input else { continue };
            let [rows, dim] = input.pixel_values.dims();
            if dim != v.patch_dim() {
                return Err(ModelError::input(
                    format!(
                        "pixel_values{}",
                        if name == "video" { "_videos" } else { "" }
                    ),
                    format!(
                        "rows have {dim} values, the vision config needs C·Tp·P·P = {}",
                        v.patch_dim()
                    ),
                ));
            }
            let mut expected = 0;
            for &[t, h, w] in &input.grid_thw {
                if t == 0 || h % v.spatial_merge_size != 0 || w % v.spatial_merge_size != 0 {
                    return Err(ModelError::input(
                        format!("{name}_grid_thw"),
                        format!(
                            "grid ({t}, {h}, {w}) must have t ≥ 1 and h, w divisible by the merge size {}",
                            v.spatial_merge_size
                        ),
                    ));
                }
                expected += t * h * w;
            }
            if rows != expected {
                return Err(ModelError::input(
                    format!("{name}_grid_thw"),
                    format!("describes {expected} patches but pixel_values has {rows} rows"),
                ));
            }
        }
        Ok(())
    }

    /// Full forward over a batch, optionally filling `cache` (prefill). Returns hidden states.
    pub fn forward(
        &self,
        batch: &Batch<B>,
        cache: Option<&mut KvCache<B>>,
        trace: Option<&mut Trace>,
    ) -> Result<ForwardOutput<B>> {
        self.validate(batch)?;
        self.run(batch, cache.map(|c| (c, false)), trace)
    }

    /// The forward pass behind [`forward`](Self::forward) and [`extend`](Self::extend). With
    /// `(cache, true)` the batch *continues* the cached rows: MRoPE ids start at each row's next
    /// position and the rows' deltas accumulate; with `(cache, false)` it is a prefill.
    pub(crate) fn run(
        &self,
        batch: &Batch<B>,
        cache: Option<(&mut KvCache<B>, bool)>,
        mut trace: Option<&mut Trace>,
    ) -> Result<ForwardOutput<B>> {
        let device = self.language.embed_tokens.val().device();
        let (b, l) = (batch.batch_size(), batch.seq_len());
        let d = self.config.text_config.hidden_size;
        let grids =
            |v: &Option<VisualInput<B>>| v.as_ref().map(|v| v.grid_thw.clone()).unwrap_or_default();
        if batch.segment_ids.is_some() && cache.is_some() {
            return Err(ModelError::input(
                "segment_ids",
                "packed rows cannot be prefilled into a KV cache",
            ));
        }
        let mut rope = rope_index_packed(
            &batch.input_ids,
            &batch.attention_mask,
            batch.segment_ids.as_deref(),
            &grids(&batch.images),
            &grids(&batch.videos),
            self.visual_tokens(),
        )?;
        if let Some((cache, true)) = &cache {
            // A continuation: the chunk's ids were counted from 0; shift them to the row's next
            // position (valid count + delta), which is where get_rope_index over the whole
            // sequence would have its counter. All three axes shift alike.
            for row in 0..b {
                let start = cache.valid_count()[row] as i64 + cache.rope_deltas()[row];
                for axis in &mut rope.positions {
                    for (id, &real) in axis[row].iter_mut().zip(&batch.attention_mask[row]) {
                        if real {
                            *id += start;
                        }
                    }
                }
                rope.rope_deltas[row] += cache.rope_deltas()[row];
            }
        }

        let run_vision =
            |input: &Option<VisualInput<B>>, name: &str, trace: &mut Option<&mut Trace>| {
                input.as_ref().map(|v| {
                    self.visual.forward(
                        v.pixel_values.clone(),
                        &v.grid_thw,
                        trace.as_deref_mut(),
                        name,
                    )
                })
            };
        let images = run_vision(&batch.images, "vision_image", &mut trace);
        let videos = run_vision(&batch.videos, "vision_video", &mut trace);

        let flat_ids: Vec<i64> = batch
            .input_ids
            .iter()
            .flatten()
            .map(|&id| id as i64)
            .collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(flat_ids, [b * l]), &device);
        let mut embeds = self.language.embed(ids);
        let mut deepstack = Vec::new();
        if images.is_some() || videos.is_some() {
            let (embedded, injections) = self.insert_visual(batch, embeds, images, videos)?;
            embeds = embedded;
            deepstack = injections;
        }
        let x = embeds.reshape([b, l, d]);

        let text_rope = TextRope::new(&self.config.text_config);
        let (cos, sin) = text_rope.cos_sin::<B>(
            b,
            l,
            |axis, row, col| rope.positions[axis][row][col],
            &device,
        );
        let hidden = match cache {
            Some((cache, _)) => {
                let mask = cache.mask(&batch.attention_mask, &device);
                let hidden =
                    self.language
                        .forward(x, cos, sin, mask, Some(cache), &deepstack, trace);
                cache.advance(&batch.attention_mask);
                cache.set_rope_deltas(rope.rope_deltas.clone());
                hidden
            }
            None => {
                let mask = full_mask::<B>(batch, &device);
                self.language
                    .forward(x, cos, sin, mask, None, &deepstack, trace)
            }
        };
        Ok(ForwardOutput { hidden, rope })
    }

    /// Substitutes visual token embeddings at pad positions and lays DeepStack features out over
    /// the flattened positions. Everything is a `select` (gather), so gradients flow.
    fn insert_visual(
        &self,
        batch: &Batch<B>,
        embeds: Tensor<B, 2>,
        images: Option<VisionOutput<B>>,
        videos: Option<VisionOutput<B>>,
    ) -> Result<(Tensor<B, 2>, Vec<DeepStackInjection<B>>)> {
        let device = embeds.device();
        let [positions, d] = embeds.dims();
        let n_img = images.as_ref().map_or(0, |v| v.tokens.dims()[0]);
        let n_vid = videos.as_ref().map_or(0, |v| v.tokens.dims()[0]);
        let (mut seen_img, mut seen_vid) = (0usize, 0usize);
        let mut gather = Vec::with_capacity(positions);
        let mut ds_index = Vec::with_capacity(positions);
        for (p, &id) in batch.input_ids.iter().flatten().enumerate() {
            if id == self.config.image_token_id && images.is_some() {
                gather.push((positions + seen_img) as i64);
                ds_index.push((1 + seen_img) as i64);
                seen_img += 1;
            } else if id == self.config.video_token_id && videos.is_some() {
                gather.push((positions + n_img + seen_vid) as i64);
                ds_index.push((1 + n_img + seen_vid) as i64);
                seen_vid += 1;
            } else {
                gather.push(p as i64);
                ds_index.push(0);
            }
        }
        if seen_img != n_img || seen_vid != n_vid {
            return Err(ModelError::input(
                "input_ids",
                format!(
                    "has {seen_img} <|image_pad|> and {seen_vid} <|video_pad|> tokens but the vision tower \
                     produced {n_img} image and {n_vid} video tokens; expand each placeholder to t·h·w/4 pads"
                ),
            ));
        }
        let mut table = vec![embeds];
        table.extend(images.as_ref().map(|v| v.tokens.clone()));
        table.extend(videos.as_ref().map(|v| v.tokens.clone()));
        let gather = Tensor::<B, 1, Int>::from_data(TensorData::new(gather, [positions]), &device);
        let embeds = Tensor::cat(table, 0).select(0, gather);
        let embeds_dtype = embeds.dtype();

        let ds_index =
            Tensor::<B, 1, Int>::from_data(TensorData::new(ds_index, [positions]), &device);
        let layers = images
            .as_ref()
            .map_or(0, |v| v.deepstack.len())
            .max(videos.as_ref().map_or(0, |v| v.deepstack.len()));
        let injections = (0..layers)
            .map(|j| {
                let mut rows = vec![Tensor::zeros([1, d], (&device, embeds_dtype))];
                rows.extend(images.as_ref().map(|v| v.deepstack[j].clone()));
                rows.extend(videos.as_ref().map(|v| v.deepstack[j].clone()));
                DeepStackInjection {
                    rows: Tensor::cat(rows, 0),
                    index: ds_index.clone(),
                }
            })
            .collect();
        Ok((embeds, injections))
    }

    /// Logits `[B, L, V]` from hidden states `[B, L, D]`.
    pub fn logits(&self, hidden: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, l, d] = hidden.dims();
        let logits = self.language.logits(hidden.reshape([b * l, d]));
        let v = logits.dims()[1];
        logits.reshape([b, l, v])
    }

    /// A fresh cache sized for this model.
    pub fn new_cache(&self, batch: usize, capacity: usize) -> KvCache<B> {
        let t = &self.config.text_config;
        KvCache::new(
            t.num_hidden_layers,
            batch,
            t.num_key_value_heads,
            t.head_dim(),
            capacity,
            (
                &self.language.embed_tokens.val().device(),
                self.float_dtype(),
            ),
        )
    }

    /// Prefills `cache` with the batch and returns the last position's logits `[B, V]`.
    pub fn prefill(&self, batch: &Batch<B>, cache: &mut KvCache<B>) -> Result<Tensor<B, 2>> {
        let out = self.forward(batch, Some(cache), None)?;
        let [b, l, d] = out.hidden.dims();
        let last = out.hidden.narrow(1, l - 1, 1).reshape([b, d]);
        Ok(self.language.logits(last))
    }

    /// One decode step: feeds `tokens[b]` to row `b` and returns next-token logits `[B, V]`.
    /// A new token at absolute index `p` gets MRoPE id `p + rope_delta` on all three axes.
    pub fn decode_step(&self, tokens: &[u32], cache: &mut KvCache<B>) -> Tensor<B, 2> {
        let device = self.language.embed_tokens.val().device();
        let b = tokens.len();
        let d = self.config.text_config.hidden_size;
        let ids: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [b]), &device);
        let x = self.language.embed(ids).reshape([b, 1, d]);
        let positions: Vec<i64> = (0..b)
            .map(|row| cache.valid_count()[row] as i64 + cache.rope_deltas()[row])
            .collect();
        let text_rope = TextRope::new(&self.config.text_config);
        let (cos, sin) = text_rope.cos_sin::<B>(b, 1, |_, row, _| positions[row], &device);
        let valid = vec![vec![true]; b];
        let mask = cache.mask(&valid, &device);
        let hidden = self
            .language
            .forward(x, cos, sin, mask, Some(cache), &[], None);
        cache.advance(&valid);
        self.language.logits(hidden.reshape([b, d]))
    }
}

/// Additive causal mask `[B, 1, L, L]` over real tokens, restricted to each packed sequence.
fn full_mask<B: Backend>(batch: &Batch<B>, device: &B::Device) -> Tensor<B, 4> {
    let (b, l) = (batch.batch_size(), batch.seq_len());
    let mut data = Vec::with_capacity(b * l * l);
    for row in 0..b {
        let valid = &batch.attention_mask[row];
        let segment = |t: usize| batch.segment_ids.as_ref().map_or(0, |s| s[row][t]);
        for i in 0..l {
            for (j, &real) in valid.iter().enumerate() {
                let visible = j <= i && real && segment(i) == segment(j);
                data.push(if visible { 0.0 } else { MASK_VALUE });
            }
        }
    }
    Tensor::from_data(TensorData::new(data, [b, 1, l, l]), device)
}
