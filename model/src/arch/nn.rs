//! Leaf modules shared by the vision tower and the text decoder: RMSNorm, LayerNorm, rotary
//! application, softmax, and the matmul / linear entry points. Each keeps HF's exact formula
//! (eps inside the root, weight after the norm) and HF's precision: in a bf16 model the norms,
//! softmax and the vision rotary run in f32, as transformers runs them (`model/tests/bf16.rs`
//! measures the difference it makes).
//!
//! [`matmul`] and [`linear`] are what model code calls instead of `Tensor::matmul` /
//! `Linear::forward`: on burn-cuda (feature `cuda`, with or without autodiff) they run cuBLAS
//! (see `cublas.rs` for why and how), on every other backend they are exactly burn's op.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

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

    /// `[..., dim] → [..., dim]`. Normalises in f32 and rounds back to `x`'s dtype before the
    /// weight, like transformers' `Qwen3RMSNorm`.
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = to_f32(x);
        let variance = x.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = to_dtype(x * (variance + self.eps).sqrt().recip(), dtype);
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

    /// `[..., dim] → [..., dim]`. All in f32, rounded once at the end (torch's layer norm on
    /// bf16 inputs accumulates and applies weight and bias in f32).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = to_f32(x);
        let mean = x.clone().mean_dim(D - 1);
        let centered = x - mean;
        let variance = centered.clone().powi_scalar(2).mean_dim(D - 1);
        let normed = centered * (variance + self.eps).sqrt().recip();
        let affine =
            normed * to_f32(self.weight.val()).unsqueeze() + to_f32(self.bias.val()).unsqueeze();
        to_dtype(affine, dtype)
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

/// `x` as f32; no op when it already is.
pub fn to_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    to_dtype(x, DType::F32)
}

/// `x` rounded to the float `dtype`; no op when it already has it.
pub fn to_dtype<B: Backend, const D: usize>(x: Tensor<B, D>, dtype: DType) -> Tensor<B, D> {
    if x.dtype() == dtype {
        return x;
    }
    x.cast(FloatDType::from(dtype))
}

/// Softmax over `dim` computed in f32 (`mask`, additive, is added in f32 first), returned in
/// `scores`' dtype: transformers' `softmax(scores + mask, dtype=float32).to(dtype)`.
pub fn softmax_f32<B: Backend, const D: usize>(
    scores: Tensor<B, D>,
    mask: Option<Tensor<B, D>>,
    dim: usize,
) -> Tensor<B, D> {
    let dtype = scores.dtype();
    let mut scores = to_f32(scores);
    if let Some(mask) = mask {
        scores = scores + to_f32(mask);
    }
    to_dtype(burn::tensor::activation::softmax(scores, dim), dtype)
}

/// Numerically safe additive mask value (finite, so fully masked rows stay finite like HF's
/// `finfo.min`, instead of turning into NaN that would leak through `0 · NaN`).
pub const MASK_VALUE: f32 = -1.0e30;

/// The cuBLAS path, or what a build without it answers.
#[cfg(feature = "cuda")]
use crate::cublas as blas;

#[cfg(not(feature = "cuda"))]
mod blas {
    //! A build without `cuda` has no cuBLAS: nothing routes there.
    use burn::prelude::*;

    #[allow(clippy::extra_unused_type_parameters)] // same signature as cublas::routes
    pub fn routes<B: Backend>() -> bool {
        false
    }

    pub fn route<B: Backend, const D: usize>(
        lhs: Tensor<B, D>,
        rhs: Tensor<B, D>,
    ) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
        Err((lhs, rhs))
    }

    pub fn forced<B: Backend, const D: usize>(
        _lhs: Tensor<B, D>,
        _rhs: Tensor<B, D>,
    ) -> Option<Tensor<B, D>> {
        None
    }

    pub fn counters() -> (u64, u64) {
        (0, 0)
    }

    pub fn status() -> String {
        "not built (feature `cuda` off)".to_string()
    }
}

/// `lhs · rhs` with burn's matmul semantics: `[..., m, k] × [..., k, n] → [..., m, n]`, batch
/// dims equal or 1 (broadcast). cuBLAS on `Cuda` / `Autodiff<Cuda>` where the layout allows,
/// burn's kernel otherwise; exactly `lhs.matmul(rhs)` on every other backend.
pub fn matmul<B: Backend, const D: usize>(lhs: Tensor<B, D>, rhs: Tensor<B, D>) -> Tensor<B, D> {
    match blas::route(lhs, rhs) {
        Ok(out) => out,
        Err((lhs, rhs)) => lhs.matmul(rhs),
    }
}

/// `layer.forward(x)`: `x: [..., d_in] → [..., d_out]`, i.e. `x · W (+ b)` with `W: [d_in,
/// d_out]`. The product goes through [`matmul`] on the CUDA backends (the weight broadcast over
/// the batch becomes one GEMM with `M` = all rows); elsewhere this is `layer.forward(x)`.
pub fn linear<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    if D < 2 || !blas::routes::<B>() {
        return layer.forward(x);
    }
    let out = matmul(x, layer.weight.val().unsqueeze::<D>());
    match &layer.bias {
        Some(bias) => out + bias.val().unsqueeze::<D>(),
        None => out,
    }
}

/// Whether [`matmul`] / [`linear`] send backend `B` to cuBLAS (`Cuda` or `Autodiff<Cuda>` in a
/// `cuda` build, unless `TEMPER_CUBLAS=0`).
pub fn cublas_routes<B: Backend>() -> bool {
    blas::routes::<B>()
}

/// The cuBLAS result of `lhs · rhs` (shapes as [`matmul`]) for plain `Cuda` tensors, whatever
/// `TEMPER_CUBLAS` says; `None` on other backends, for layouts one cuBLAS call cannot express,
/// or when cuBLAS is unavailable. For benchmarks and checks that compare it with burn's.
pub fn cublas_matmul<B: Backend, const D: usize>(
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> Option<Tensor<B, D>> {
    blas::forced(lhs, rhs)
}

/// `(cuBLAS GEMMs run, CUDA matmuls that fell back to burn's kernel)` since the process started;
/// `(0, 0)` without the `cuda` feature.
pub fn cublas_counters() -> (u64, u64) {
    blas::counters()
}

/// One line on the cuBLAS path (routing mode, library, per-device ordering, counters).
pub fn cublas_status() -> String {
    blas::status()
}
