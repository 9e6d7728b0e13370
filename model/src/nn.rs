//! Leaf modules shared by the vision tower and the text decoder: RMSNorm, LayerNorm, rotary
//! application. Each keeps HF's exact formula (eps inside the root, weight after the norm).

use burn::module::Param;
use burn::prelude::*;

use crate::error::Result;
use crate::weights::{Init, Loader, Saver};

/// `w ⊙ x / sqrt(mean(x²) + eps)` over the last axis.
#[derive(Module, Debug)]
pub struct RmsNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> RmsNorm<B> {
    pub fn load(loader: &mut Loader<B>, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: loader.param(&format!("{name}.weight"), [dim], Init::Ones)?,
            eps,
        })
    }

    pub fn save(&self, saver: &mut Saver, name: &str) {
        saver.param(&format!("{name}.weight"), &self.weight);
    }

    /// `[..., dim] → [..., dim]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let variance = x.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = x * (variance + self.eps).sqrt().recip();
        normed * self.weight.val().unsqueeze()
    }
}

/// LayerNorm with bias; `(x − mean) / sqrt(var + eps) · w + b` over the last axis (biased var).
#[derive(Module, Debug)]
pub struct LayerNorm<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Param<Tensor<B, 1>>,
    pub eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    pub fn load(loader: &mut Loader<B>, name: &str, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            weight: loader.param(&format!("{name}.weight"), [dim], Init::Ones)?,
            bias: loader.param(&format!("{name}.bias"), [dim], Init::Zeros)?,
            eps,
        })
    }

    pub fn save(&self, saver: &mut Saver, name: &str) {
        saver.param(&format!("{name}.weight"), &self.weight);
        saver.param(&format!("{name}.bias"), &self.bias);
    }

    /// `[..., dim] → [..., dim]`
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let mean = x.clone().mean_dim(D - 1);
        let centered = x - mean;
        let variance = centered.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = centered * (variance + self.eps).sqrt().recip();
        normed * self.weight.val().unsqueeze() + self.bias.val().unsqueeze()
    }
}

/// `rotate_half([a, b]) = [−b, a]` over the last axis.
pub fn rotate_half<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let dim = x.dims()[D - 1];
    let first = x.clone().narrow(D - 1, 0, dim / 2);
    let second = x.narrow(D - 1, dim / 2, dim / 2);
    Tensor::cat(vec![second.neg(), first], D - 1)
}

/// `x·cos + rotate_half(x)·sin`; `cos`/`sin` broadcast against `x`.
pub fn apply_rotary<B: Backend, const D: usize>(
    x: Tensor<B, D>,
    cos: Tensor<B, D>,
    sin: Tensor<B, D>,
) -> Tensor<B, D> {
    x.clone() * cos + rotate_half(x) * sin
}

/// Numerically safe additive mask value (finite, so fully masked rows stay finite like HF's
/// `finfo.min`, instead of turning into NaN that would leak through `0 · NaN`).
pub const MASK_VALUE: f32 = -1.0e30;
