//! Rotary tables: interleaved 3-axis MRoPE for the text decoder and axial 2-D RoPE for the ViT.
//!
//! Angles are formed exactly as HF does (f32 `inv_freq`, f32 `position · inv_freq`), then cos/sin
//! are taken in f64 and rounded once, on the host: the tables are small (`tokens × head_dim`).

use burn::prelude::*;
use burn::tensor::DType;

use crate::config::{RopeAxis, TextConfig};

/// f32 inverse frequencies `1 / θ^(2j/dim)` for `j < dim/2`, as HF computes them.
pub fn inv_freq(theta: f64, dim: usize) -> Vec<f32> {
    (0..dim / 2)
        .map(|j| {
            let exponent = (2 * j) as f32 / dim as f32;
            1.0 / (theta as f32).powf(exponent)
        })
        .collect()
}

/// Text MRoPE: maps `[3][B][L]` position ids to `(cos, sin)` of shape `[B, L, head_dim]`.
#[derive(Debug, Clone)]
pub struct TextRope {
    inv_freq: Vec<f32>,
    axes: Vec<RopeAxis>,
}

impl TextRope {
    pub fn new(config: &TextConfig) -> Self {
        Self {
            inv_freq: inv_freq(config.rope_theta(), config.head_dim()),
            axes: config.rope_axes(),
        }
    }

    /// `positions` is `[3][B][L]` flattened per axis as `ids(axis, b, l)`.
    pub fn cos_sin<B: Backend>(
        &self,
        batch: usize,
        len: usize,
        ids: impl Fn(usize, usize, usize) -> i64,
        device: &B::Device,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let half = self.inv_freq.len();
        let dim = 2 * half;
        let mut cos = Vec::with_capacity(batch * len * dim);
        let mut sin = Vec::with_capacity(batch * len * dim);
        let mut angles = vec![0f32; half];
        for b in 0..batch {
            for l in 0..len {
                for (j, angle) in angles.iter_mut().enumerate() {
                    *angle = ids(self.axes[j] as usize, b, l) as f32 * self.inv_freq[j];
                }
                for _ in 0..2 {
                    cos.extend(angles.iter().map(|&a| (a as f64).cos() as f32));
                    sin.extend(angles.iter().map(|&a| (a as f64).sin() as f32));
                }
            }
        }
        let shape = [batch, len, dim];
        (
            Tensor::from_data(TensorData::new(cos, shape), device),
            Tensor::from_data(TensorData::new(sin, shape), device),
        )
    }
}

/// Vision 2-D RoPE: `(cos, sin)` of shape `[N, head_dim]` (f32) for patches at `(row, col)`.
///
/// Angle vector `[r·inv, c·inv, r·inv, c·inv]`, `inv` of length `head_dim / 4`.
pub fn vision_cos_sin<B: Backend>(
    rows_cols: &[(usize, usize)],
    head_dim: usize,
    theta: f64,
    device: &B::Device,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let inv = inv_freq(theta, head_dim / 2);
    let mut cos = Vec::with_capacity(rows_cols.len() * head_dim);
    let mut sin = Vec::with_capacity(rows_cols.len() * head_dim);
    for &(r, c) in rows_cols {
        let half: Vec<f32> = inv
            .iter()
            .map(|&f| r as f32 * f)
            .chain(inv.iter().map(|&f| c as f32 * f))
            .collect();
        for _ in 0..2 {
            cos.extend(half.iter().map(|&a| (a as f64).cos() as f32));
            sin.extend(half.iter().map(|&a| (a as f64).sin() as f32));
        }
    }
    // f32 whatever the model dtype: the vision rotary runs in f32 (transformers does).
    let shape = [rows_cols.len(), head_dim];
    (
        Tensor::from_data(TensorData::new(cos, shape), (device, DType::F32)),
        Tensor::from_data(TensorData::new(sin, shape), (device, DType::F32)),
    )
}
