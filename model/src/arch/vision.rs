//! The vision tower: SigLIP-2 style ViT with 2-D RoPE, 2×2 patch merger and DeepStack mergers.
//!
//! Input rows arrive in the processor's merge-window order (see `preprocess`); every host-side
//! table here (position-embedding taps, rotary `(row, col)`, attention segments) is built for that
//! order, and the mergers simply group 4 consecutive rows.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::{gelu, gelu_approximate};

use crate::config::VisionConfig;
use crate::error::Result;
use crate::nn::{LayerNorm, apply_rotary, linear, matmul, softmax_f32, to_dtype, to_f32};
use crate::rope::vision_cos_sin;
use crate::trace::{Trace, record};
use crate::weights::{Init, Loader, Saver};

/// LayerNorm eps of the ViT and mergers (hard-coded in HF, not in the config).
const VISION_LN_EPS: f64 = 1e-6;

/// One pre-norm ViT block: `x += proj(attn(ln1 x))`, `x += fc2(gelu_tanh(fc1(ln2 x)))`.
#[derive(Module, Debug)]
pub struct VisionBlock<B: Backend> {
    pub norm1: LayerNorm<B>,
    pub norm2: LayerNorm<B>,
    pub qkv: Linear<B>,
    pub proj: Linear<B>,
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
    pub num_heads: usize,
}

/// HF tensor names of a [`VisionBlock`] under `prefix`, written once for load and save.
struct BlockNames {
    norm1: String,
    norm2: String,
    qkv: String,
    proj: String,
    fc1: String,
    fc2: String,
}

impl BlockNames {
    fn new(prefix: &str) -> Self {
        Self {
            norm1: format!("{prefix}.norm1"),
            norm2: format!("{prefix}.norm2"),
            qkv: format!("{prefix}.attn.qkv"),
            proj: format!("{prefix}.attn.proj"),
            fc1: format!("{prefix}.mlp.linear_fc1"),
            fc2: format!("{prefix}.mlp.linear_fc2"),
        }
    }
}

impl<B: Backend> VisionBlock<B> {
    fn load(loader: &mut Loader<B>, prefix: &str, cfg: &VisionConfig) -> Result<Self> {
        let (d, i) = (cfg.hidden_size, cfg.intermediate_size);
        let n = BlockNames::new(prefix);
        Ok(Self {
            norm1: LayerNorm::load(loader, &n.norm1, d, VISION_LN_EPS)?,
            norm2: LayerNorm::load(loader, &n.norm2, d, VISION_LN_EPS)?,
            qkv: loader.linear(&n.qkv, d, 3 * d, true)?,
            proj: loader.linear(&n.proj, d, d, true)?,
            fc1: loader.linear(&n.fc1, d, i, true)?,
            fc2: loader.linear(&n.fc2, i, d, true)?,
            num_heads: cfg.num_heads,
        })
    }

    fn save(&self, saver: &mut Saver, prefix: &str) {
        let n = BlockNames::new(prefix);
        self.norm1.save(saver, &n.norm1);
        self.norm2.save(saver, &n.norm2);
        saver.linear(&n.qkv, &self.qkv);
        saver.linear(&n.proj, &self.proj);
        saver.linear(&n.fc1, &self.fc1);
        saver.linear(&n.fc2, &self.fc2);
    }

    /// `x: [N, Dv]`, `cos/sin: [N, 1, hv]`, `segments`: consecutive row counts that attend only
    /// among themselves. Returns `[N, Dv]`.
    fn forward(
        &self,
        x: Tensor<B, 2>,
        cos: &Tensor<B, 3>,
        sin: &Tensor<B, 3>,
        segments: &[usize],
    ) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let heads = self.num_heads;
        let hv = d / heads;
        let qkv = linear(&self.qkv, self.norm1.forward(x.clone())).reshape([n, 3, heads, hv]);
        let part = |i: usize| qkv.clone().narrow(1, i, 1).reshape([n, heads, hv]);
        // Rotary in f32 (`cos`/`sin` are f32), as transformers' vision rotary does.
        let dtype = qkv.dtype();
        let rotate =
            |t: Tensor<B, 3>| to_dtype(apply_rotary(to_f32(t), cos.clone(), sin.clone()), dtype);
        let q = rotate(part(0));
        let k = rotate(part(1));
        let v = part(2);
        let scale = (hv as f64).powf(-0.5);

        // Batch runs of equal-length segments (all frames of a video, same-size images).
        let mut outputs = Vec::new();
        let mut start = 0;
        for (len, count) in runs_of_equal(segments) {
            let rows = len * count;
            let take = |t: &Tensor<B, 3>| {
                t.clone()
                    .narrow(0, start, rows)
                    .reshape([count, len, heads, hv])
                    .swap_dims(1, 2)
            };
            let (q, k, v) = (take(&q), take(&k), take(&v));
            let scores = matmul(q, k.swap_dims(2, 3)) * scale;
            let out = matmul(softmax_f32(scores, None, 3), v); // [count, heads, len, hv]
            outputs.push(out.swap_dims(1, 2).reshape([rows, d]));
            start += rows;
        }
        let attn = linear(&self.proj, Tensor::cat(outputs, 0));
        let x = x + attn;
        let mlp = linear(
            &self.fc2,
            gelu_approximate(linear(&self.fc1, self.norm2.forward(x.clone()))),
        );
        x + mlp
    }
}

/// Groups consecutive equal segment lengths: `[4,4,6] → [(4,2),(6,1)]`.
fn runs_of_equal(segments: &[usize]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &len in segments {
        match runs.last_mut() {
            Some((l, count)) if *l == len => *count += 1,
            _ => runs.push((len, 1)),
        }
    }
    runs
}

/// Patch merger. Final merger: LayerNorm(Dv) per patch, then group 2×2 → `4Dv`.
/// DeepStack merger ("post-shuffle norm"): group first, then LayerNorm(4Dv). Both then
/// `fc1 → GELU(erf) → fc2` to the text width.
#[derive(Module, Debug)]
pub struct PatchMerger<B: Backend> {
    pub norm: LayerNorm<B>,
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
    pub postshuffle_norm: bool,
    pub group: usize,
}

/// HF tensor names of a [`PatchMerger`] under `prefix`, written once for load and save.
struct MergerNames {
    norm: String,
    fc1: String,
    fc2: String,
}

impl MergerNames {
    fn new(prefix: &str) -> Self {
        Self {
            norm: format!("{prefix}.norm"),
            fc1: format!("{prefix}.linear_fc1"),
            fc2: format!("{prefix}.linear_fc2"),
        }
    }
}

impl<B: Backend> PatchMerger<B> {
    fn load(
        loader: &mut Loader<B>,
        prefix: &str,
        cfg: &VisionConfig,
        postshuffle: bool,
    ) -> Result<Self> {
        let group = cfg.spatial_merge_size * cfg.spatial_merge_size;
        let wide = cfg.hidden_size * group;
        let norm_dim = if postshuffle { wide } else { cfg.hidden_size };
        let n = MergerNames::new(prefix);
        Ok(Self {
            norm: LayerNorm::load(loader, &n.norm, norm_dim, VISION_LN_EPS)?,
            fc1: loader.linear(&n.fc1, wide, wide, true)?,
            fc2: loader.linear(&n.fc2, wide, cfg.out_hidden_size, true)?,
            postshuffle_norm: postshuffle,
            group,
        })
    }

    fn save(&self, saver: &mut Saver, prefix: &str) {
        let n = MergerNames::new(prefix);
        self.norm.save(saver, &n.norm);
        saver.linear(&n.fc1, &self.fc1);
        saver.linear(&n.fc2, &self.fc2);
    }

    /// `[N, Dv] → [N/4, D]`
    fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let grouped = [n / self.group, d * self.group];
        let x = if self.postshuffle_norm {
            self.norm.forward(x.reshape(grouped))
        } else {
            self.norm.forward(x).reshape(grouped)
        };
        linear(&self.fc2, gelu(linear(&self.fc1, x)))
    }
}

/// Output of the vision tower for one modality (all images, or all videos, of a batch).
#[derive(Debug, Clone)]
pub struct VisionOutput<B: Backend> {
    /// `[N/4, D]` visual token embeddings, in processor order.
    pub tokens: Tensor<B, 2>,
    /// One `[N/4, D]` feature per DeepStack layer, injected after decoder layer `j`.
    pub deepstack: Vec<Tensor<B, 2>>,
}

/// The ViT.
#[derive(Module, Debug)]
pub struct VisionTower<B: Backend> {
    /// Conv3d with kernel = stride as a linear map over the flattened `(C, Tp, P, P)` patch.
    pub patch_embed: Linear<B>,
    /// `[S², Dv]` learned positions on an `S × S` grid.
    pub pos_embed: Param<Tensor<B, 2>>,
    pub blocks: Vec<VisionBlock<B>>,
    pub merger: PatchMerger<B>,
    pub deepstack_mergers: Vec<PatchMerger<B>>,
    pub deepstack_indexes: Vec<usize>,
    pub spatial_merge_size: usize,
    pub grid_side: usize,
    pub rope_theta: f64,
}

/// HF tensor names of the [`VisionTower`], written once for load and save.
struct TowerNames;

impl TowerNames {
    const PREFIX: &'static str = "model.visual";

    fn patch_embed() -> String {
        format!("{}.patch_embed.proj", Self::PREFIX)
    }

    fn pos_embed() -> String {
        format!("{}.pos_embed.weight", Self::PREFIX)
    }

    fn block(i: usize) -> String {
        format!("{}.blocks.{i}", Self::PREFIX)
    }

    fn merger() -> String {
        format!("{}.merger", Self::PREFIX)
    }

    fn deepstack_merger(j: usize) -> String {
        format!("{}.deepstack_merger_list.{j}", Self::PREFIX)
    }

    /// The patch embedding's on-disk shape (a Conv3d kernel).
    fn patch_embed_shape(cfg: &VisionConfig) -> [usize; 5] {
        [
            cfg.hidden_size,
            cfg.in_channels,
            cfg.temporal_patch_size,
            cfg.patch_size,
            cfg.patch_size,
        ]
    }
}

impl<B: Backend> VisionTower<B> {
    pub fn load(loader: &mut Loader<B>, cfg: &VisionConfig) -> Result<Self> {
        let d = cfg.hidden_size;
        let patch_embed = loader.linear_shaped(
            &TowerNames::patch_embed(),
            &TowerNames::patch_embed_shape(cfg),
            cfg.patch_dim(),
            d,
            true,
        )?;
        let blocks = (0..cfg.depth)
            .map(|i| VisionBlock::load(loader, &TowerNames::block(i), cfg))
            .collect::<Result<Vec<_>>>()?;
        let deepstack_mergers = (0..cfg.deepstack_visual_indexes.len())
            .map(|j| PatchMerger::load(loader, &TowerNames::deepstack_merger(j), cfg, true))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            patch_embed,
            pos_embed: loader.param(
                &TowerNames::pos_embed(),
                [cfg.num_position_embeddings, d],
                Init::Normal(0.02),
            )?,
            blocks,
            merger: PatchMerger::load(loader, &TowerNames::merger(), cfg, false)?,
            deepstack_mergers,
            deepstack_indexes: cfg.deepstack_visual_indexes.clone(),
            spatial_merge_size: cfg.spatial_merge_size,
            grid_side: cfg.position_grid_side(),
            rope_theta: cfg.rope_theta(),
        })
    }

    pub fn save(&self, saver: &mut Saver, cfg: &VisionConfig) {
        saver.linear_shaped(
            &TowerNames::patch_embed(),
            &self.patch_embed,
            &TowerNames::patch_embed_shape(cfg),
        );
        saver.param(&TowerNames::pos_embed(), &self.pos_embed);
        for (i, block) in self.blocks.iter().enumerate() {
            block.save(saver, &TowerNames::block(i));
        }
        self.merger.save(saver, &TowerNames::merger());
        for (j, merger) in self.deepstack_mergers.iter().enumerate() {
            merger.save(saver, &TowerNames::deepstack_merger(j));
        }
    }

    /// `pixel_values: [N, C·Tp·P·P]` rows for `grids` (`(t, h, w)` in patches each).
    /// `trace_prefix` names recorded intermediates (e.g. `vision_image`).
    pub fn forward(
        &self,
        pixel_values: Tensor<B, 2>,
        grids: &[[usize; 3]],
        mut trace: Option<&mut Trace>,
        trace_prefix: &str,
    ) -> VisionOutput<B> {
        let device = pixel_values.device();
        let layout = PatchLayout::new(grids, self.spatial_merge_size, self.grid_side);
        let n = layout.rows_cols.len();

        // Pixels come from the host in the default float dtype; the patch embedding runs in its
        // weights' dtype.
        let pixel_values = to_dtype(pixel_values, self.patch_embed.weight.val().dtype());
        let patches = linear(&self.patch_embed, pixel_values);
        record(
            &mut trace,
            || format!("{trace_prefix}.patch_embed"),
            &patches,
        );
        let d = patches.dims()[1];
        let taps = Tensor::<B, 1, Int>::from_data(
            TensorData::new(layout.pos_indices.clone(), [4 * n]),
            &device,
        );
        // Bilinear taps of the learned grid, weighted and summed in f32 (transformers multiplies
        // the embeddings by f32 weights), then rounded to the patches' dtype.
        let weights = Tensor::<B, 2>::from_data(
            TensorData::new(layout.pos_weights.clone(), [n, 4]),
            (&device, DType::F32),
        );
        let taps = to_f32(self.pos_embed.val().select(0, taps).reshape([n, 4, d]));
        let pos = (taps * weights.unsqueeze_dim(2)).sum_dim(1).reshape([n, d]);
        let dtype = patches.dtype();
        let mut x = patches + to_dtype(pos, dtype);
        record(&mut trace, || format!("{trace_prefix}.embed"), &x);

        let head_dim = d / self.blocks.first().map_or(1, |b| b.num_heads);
        let (cos, sin) = vision_cos_sin::<B>(&layout.rows_cols, head_dim, self.rope_theta, &device);
        let (cos, sin) = (cos.unsqueeze_dim(1), sin.unsqueeze_dim(1));
        let mut deepstack = Vec::with_capacity(self.deepstack_mergers.len());
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(x, &cos, &sin, &layout.segments);
            record(&mut trace, || format!("{trace_prefix}.block_{i}"), &x);
            if let Some(j) = self.deepstack_indexes.iter().position(|&k| k == i) {
                let feature = self.deepstack_mergers[j].forward(x.clone());
                record(
                    &mut trace,
                    || format!("{trace_prefix}.deepstack_{j}"),
                    &feature,
                );
                deepstack.push((j, feature));
            }
        }
        deepstack.sort_by_key(|(j, _)| *j);
        let tokens = self.merger.forward(x);
        record(&mut trace, || format!("{trace_prefix}.merger"), &tokens);
        VisionOutput {
            tokens,
            deepstack: deepstack.into_iter().map(|(_, f)| f).collect(),
        }
    }
}

/// Host-side tables for patches in merge-window order.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchLayout {
    /// Spatial `(row, col)` of every patch (in patches).
    pub rows_cols: Vec<(usize, usize)>,
    /// Four bilinear taps per patch into the `S × S` position table (row-major).
    pub pos_indices: Vec<i64>,
    pub pos_weights: Vec<f32>,
    /// Attention segments: one per image, one per video temporal patch.
    pub segments: Vec<usize>,
}

impl PatchLayout {
    pub fn new(grids: &[[usize; 3]], merge: usize, side: usize) -> Self {
        let mut layout = Self {
            rows_cols: Vec::new(),
            pos_indices: Vec::new(),
            pos_weights: Vec::new(),
            segments: Vec::new(),
        };
        for &[t, h, w] in grids {
            let ys = torch_linspace(0.0, (side - 1) as f32, h);
            let xs = torch_linspace(0.0, (side - 1) as f32, w);
            for _ in 0..t {
                layout.segments.push(h * w);
                for bh in 0..h / merge {
                    for bw in 0..w / merge {
                        for ih in 0..merge {
                            for iw in 0..merge {
                                let (r, c) = (bh * merge + ih, bw * merge + iw);
                                layout.rows_cols.push((r, c));
                                layout.push_taps(ys[r], xs[c], side);
                            }
                        }
                    }
                }
            }
        }
        layout
    }

    /// Bilinear (align_corners) taps at fractional grid coordinates `(y, x)`, upper tap clamped.
    fn push_taps(&mut self, y: f32, x: f32, side: usize) {
        let (y0, x0) = (y as usize, x as usize);
        let (y1, x1) = ((y0 + 1).min(side - 1), (x0 + 1).min(side - 1));
        let (dy, dx) = (y - y0 as f32, x - x0 as f32);
        for (yy, xx) in [(y0, x0), (y0, x1), (y1, x0), (y1, x1)] {
            self.pos_indices.push((yy * side + xx) as i64);
        }
        self.pos_weights.extend([
            (1.0 - dy) * (1.0 - dx),
            (1.0 - dy) * dx,
            dy * (1.0 - dx),
            dy * dx,
        ]);
    }
}

/// `torch.linspace(start, end, steps)` in f32, bit for bit (it fills from both ends).
fn torch_linspace(start: f32, end: f32, steps: usize) -> Vec<f32> {
    if steps == 1 {
        return vec![start];
    }
    let step = (end - start) / (steps - 1) as f32;
    let halfway = steps / 2;
    (0..steps)
        .map(|i| {
            if i < halfway {
                start + step * i as f32
            } else {
                end - step * (steps - i - 1) as f32
            }
        })
        .collect()
}
