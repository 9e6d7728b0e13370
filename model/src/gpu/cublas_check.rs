//! Numerical checks of the cuBLAS matmul path against a host f64 reference, for every layout
//! the model hands it: plain 2-D, a weight broadcast over a batch (`linear`), decode rows,
//! batched rank 4, the tied LM head's transposed embedding, attention's `k.swap_dims(2, 3)` on a
//! KV-cache view and on training's `[b, l, heads, hd]` buffers, a transposed lhs, views with a
//! handle offset, a broadcast lhs, `linear` with a bias, gradients through `Autodiff<Cuda>`, and
//! a dependent chain of cuBLAS and burn ops that fails if the stream ordering is wrong.
//!
//! Generic over the backend so one harness serves `model/tests/cublas.rs` (GPU, `cuda`
//! feature), `temper bench --cases matmul` (the prebuilt GPU bundle has no test binaries), and
//! a CPU unit test that validates the reference itself against burn's matmul (where cuBLAS does
//! not exist, each case reports it did not run).

use burn::backend::Autodiff;
use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::{FloatDType, TensorData};

use crate::nn::{cublas_counters, cublas_matmul, linear, matmul};

/// One case in one dtype. Errors are `max |x − reference| / max |reference|` over the case's
/// outputs (per output tensor, the worst one reported).
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: String,
    pub dtype: FloatDType,
    /// Largest |reference| of the (first) output, the scale errors are relative to.
    pub scale: f64,
    /// cuBLAS path's relative error; `None` when cuBLAS did not run for this case.
    pub cublas_error: Option<f64>,
    /// burn's own matmul's relative error (on CUDA f32 burn runs TF32, so this is ~1e-3).
    pub burn_error: f64,
    /// Largest relative error the cuBLAS path may have.
    pub tolerance: f64,
    /// cuBLAS GEMMs the case ran, and how many it must run (forward 1, with gradients 3).
    pub gemms: u64,
    pub expected_gemms: u64,
}

impl CheckResult {
    /// cuBLAS ran every GEMM the case expects, within tolerance.
    pub fn passed(&self) -> bool {
        self.gemms >= self.expected_gemms && self.cublas_error.is_some_and(|e| e <= self.tolerance)
    }
}

/// Relative tolerance of the cuBLAS path against the f64 reference: f32 is computed in true
/// FP32 (`CUBLAS_COMPUTE_32F`), f16/bf16 accumulate in f32 and round the output once.
pub fn tolerance(dtype: FloatDType) -> f64 {
    match dtype {
        FloatDType::F64 => 1e-12,
        FloatDType::F32 | FloatDType::Flex32 => 1e-5,
        FloatDType::F16 => 4e-3,
        FloatDType::BF16 => 1.5e-2,
    }
}

/// Runs every case in each of `dtypes` on `device`.
pub fn run_checks<B: Backend>(device: &B::Device, dtypes: &[FloatDType]) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for &dtype in dtypes {
        let t = |seed: u64| Input::<B> {
            device,
            dtype,
            seed,
        };
        let r = &mut results;
        r.push(forward("2d", t(1).make([37, 64]), t(2).make([64, 45])));
        r.push(forward(
            "linear_broadcast_weight",
            t(3).make([3, 5, 64]),
            t(4).make::<2>([64, 40]).unsqueeze::<3>(),
        ));
        r.push(forward(
            "decode_rows",
            t(5).make([4, 1, 64]),
            t(6).make::<2>([64, 40]).unsqueeze::<3>(),
        ));
        r.push(forward(
            "batched_rank4",
            t(7).make([2, 3, 7, 16]),
            t(8).make([2, 3, 16, 9]),
        ));
        r.push(forward(
            "tied_head_transposed_rhs",
            t(9).make([6, 32]),
            t(10).make::<2>([50, 32]).transpose(),
        ));
        r.push(forward(
            "attention_kv_cache_view",
            t(11).make([2, 3, 7, 16]),
            t(12)
                .make::<4>([2, 3, 20, 16])
                .narrow(2, 0, 11)
                .swap_dims(2, 3),
        ));
        // Training (no KV cache): k and v are [b, l, heads, hd] seen as [b, heads, ...], whose
        // batch dims do not flatten to one stride (a loop of strided batches).
        r.push(forward(
            "attention_training_scores",
            t(36).make([2, 3, 5, 8]),
            view(View::HeadsSwapLast, t(37).make([2, 5, 3, 8])),
        ));
        r.push(forward(
            "attention_training_values",
            t(38).make([2, 3, 5, 5]),
            view(View::Heads, t(39).make([2, 5, 3, 8])),
        ));
        r.push(forward(
            "transposed_lhs",
            t(13).make::<2>([16, 7]).transpose(),
            t(14).make([16, 5]),
        ));
        r.push(forward(
            "offset_rows",
            t(15).make::<2>([10, 64]).narrow(0, 3, 5),
            t(16).make([64, 24]),
        ));
        r.push(forward(
            "offset_columns",
            t(17).make::<2>([5, 128]).narrow(1, 64, 64),
            t(18).make([64, 24]),
        ));
        r.push(forward(
            "lhs_broadcast",
            t(19).make([1, 5, 8]),
            t(20).make([3, 8, 6]),
        ));
        r.push(linear_case(t(21), t(22), t(23)));
        r.push(gradients(
            "grad_linear_broadcast_weight",
            t(24).make([3, 5, 32]),
            t(25).make([1, 32, 24]),
            View::Identity,
            t(26),
        ));
        r.push(gradients(
            "grad_tied_head",
            t(27).make([6, 32]),
            t(28).make([50, 32]),
            View::SwapLast,
            t(29),
        ));
        r.push(gradients(
            "grad_attention",
            t(30).make([2, 3, 7, 16]),
            t(31).make([2, 3, 11, 16]),
            View::SwapLast,
            t(32),
        ));
        r.push(gradients(
            "grad_attention_training",
            t(40).make([2, 3, 5, 8]),
            t(41).make([2, 5, 3, 8]),
            View::HeadsSwapLast,
            t(42),
        ));
        r.push(gradients(
            "grad_lhs_broadcast",
            t(33).make([1, 5, 8]),
            t(34).make([3, 8, 6]),
            View::Identity,
            t(35),
        ));
        // A rounding-free chain needs f32; the ordering it checks does not depend on dtype.
        if matches!(dtype, FloatDType::F32) {
            r.push(ordering_chain::<B>(device, dtype));
        }
    }
    results
}

/// Recipe for one deterministic input tensor: uniform in [-1, 1), then cast to `dtype`.
struct Input<'a, B: Backend> {
    device: &'a B::Device,
    dtype: FloatDType,
    seed: u64,
}

impl<B: Backend> Input<'_, B> {
    fn make<const D: usize>(self, shape: [usize; D]) -> Tensor<B, D> {
        let n = shape.iter().product();
        let values = uniform(n, self.seed);
        Tensor::<B, D>::from_data(TensorData::new(values, shape), self.device).cast(self.dtype)
    }
}

fn uniform(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A tensor's values (logical order) as f64, and its shape.
fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> (Vec<f64>, Vec<usize>) {
    let shape = t.dims().to_vec();
    let values = t
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 data");
    (values.into_iter().map(f64::from).collect(), shape)
}

/// For each flat index of the output batch `out`, the flat batch index of an operand whose
/// batch dims are `shape` (1 = broadcast).
fn batch_map(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let total: usize = out.iter().product();
    (0..total)
        .map(|flat| {
            let (mut rest, mut index, mut stride) = (flat, 0, 1);
            for d in (0..out.len()).rev() {
                let i = rest % out[d];
                rest /= out[d];
                if shape[d] != 1 {
                    index += i * stride;
                }
                stride *= shape[d];
            }
            index
        })
        .collect()
}

/// Host `a · b` for `a: [..., m, k]`, `b: [..., k, n]` with broadcast batch dims; returns the
/// output `[..., m, n]` and, per output matrix, the batch indices of `a` and `b`.
struct HostMatmul {
    m: usize,
    k: usize,
    n: usize,
    a_index: Vec<usize>,
    b_index: Vec<usize>,
}

impl HostMatmul {
    fn new(a_shape: &[usize], b_shape: &[usize]) -> Self {
        let r = a_shape.len();
        let out: Vec<usize> = (0..r - 2).map(|i| a_shape[i].max(b_shape[i])).collect();
        Self {
            m: a_shape[r - 2],
            k: a_shape[r - 1],
            n: b_shape[r - 1],
            a_index: batch_map(&a_shape[..r - 2], &out),
            b_index: batch_map(&b_shape[..r - 2], &out),
        }
    }

    fn forward(&self, a: &[f64], b: &[f64]) -> Vec<f64> {
        let (m, k, n) = (self.m, self.k, self.n);
        let mut out = vec![0.0; self.a_index.len() * m * n];
        for (o, (&ia, &ib)) in self.a_index.iter().zip(&self.b_index).enumerate() {
            for i in 0..m {
                for p in 0..k {
                    let av = a[(ia * m + i) * k + p];
                    let row = &b[(ib * k + p) * n..(ib * k + p + 1) * n];
                    let dst = &mut out[(o * m + i) * n..(o * m + i + 1) * n];
                    for (d, bv) in dst.iter_mut().zip(row) {
                        *d += av * bv;
                    }
                }
            }
        }
        out
    }

    /// `(dA, dB)` for upstream gradient `g` (shape of the output), summed over broadcast dims.
    fn gradients(&self, a: &[f64], b: &[f64], g: &[f64]) -> (Vec<f64>, Vec<f64>) {
        let (m, k, n) = (self.m, self.k, self.n);
        let (mut da, mut db) = (vec![0.0; a.len()], vec![0.0; b.len()]);
        for (o, (&ia, &ib)) in self.a_index.iter().zip(&self.b_index).enumerate() {
            for i in 0..m {
                for p in 0..k {
                    let mut acc = 0.0;
                    for j in 0..n {
                        let gv = g[(o * m + i) * n + j];
                        acc += gv * b[(ib * k + p) * n + j];
                        db[(ib * k + p) * n + j] += a[(ia * m + i) * k + p] * gv;
                    }
                    da[(ia * m + i) * k + p] += acc;
                }
            }
        }
        (da, db)
    }
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// `max |x − reference| / max |reference|` (NaN counts as infinitely wrong).
fn relative_error(x: &[f64], reference: &[f64]) -> f64 {
    let scale = max_abs(reference).max(f64::MIN_POSITIVE);
    let worst = x.iter().zip(reference).fold(0.0f64, |m, (a, b)| {
        let d = (a - b).abs();
        if d.is_nan() { f64::INFINITY } else { m.max(d) }
    });
    if x.len() == reference.len() {
        worst / scale
    } else {
        f64::INFINITY
    }
}

fn gemms_since(before: u64) -> u64 {
    cublas_counters().0 - before
}

/// `lhs · rhs` by `nn::cublas_matmul` and by burn, against the host reference.
fn forward<B: Backend, const D: usize>(
    name: &str,
    lhs: Tensor<B, D>,
    rhs: Tensor<B, D>,
) -> CheckResult {
    let dtype = float_dtype(&lhs);
    let (a, a_shape) = host(lhs.clone());
    let (b, b_shape) = host(rhs.clone());
    let reference = HostMatmul::new(&a_shape, &b_shape).forward(&a, &b);
    let burn = host(lhs.clone().matmul(rhs.clone())).0;
    let before = cublas_counters().0;
    let cublas = cublas_matmul(lhs, rhs).map(|t| host(t).0);
    CheckResult {
        name: name.to_string(),
        dtype,
        scale: max_abs(&reference),
        cublas_error: cublas.map(|c| relative_error(&c, &reference)),
        burn_error: relative_error(&burn, &reference),
        tolerance: tolerance(dtype),
        gemms: gemms_since(before),
        expected_gemms: 1,
    }
}

/// `nn::linear` (with a bias) against `x · W + b` on the host and against `Linear::forward`.
/// Runs cuBLAS only where `nn::linear` routes (so `TEMPER_CUBLAS=0` shows as not run).
fn linear_case<B: Backend>(x: Input<B>, w: Input<B>, bias: Input<B>) -> CheckResult {
    let dtype = x.dtype;
    let x = x.make([2, 5, 48]);
    let layer = Linear {
        weight: Param::from_tensor(w.make([48, 20])),
        bias: Some(Param::from_tensor(bias.make([20]))),
    };
    let (xv, x_shape) = host(x.clone());
    let (wv, w_shape) = host(layer.weight.val().unsqueeze::<3>());
    let (bv, _) = host(layer.bias.as_ref().expect("bias").val());
    let mut reference = HostMatmul::new(&x_shape, &w_shape).forward(&xv, &wv);
    for (i, r) in reference.iter_mut().enumerate() {
        *r += bv[i % bv.len()];
    }
    let burn = host(layer.forward(x.clone())).0;
    let before = cublas_counters().0;
    let out = host(linear(&layer, x)).0;
    let gemms = gemms_since(before);
    CheckResult {
        name: "linear_with_bias".into(),
        dtype,
        scale: max_abs(&reference),
        cublas_error: (gemms > 0).then(|| relative_error(&out, &reference)),
        burn_error: relative_error(&burn, &reference),
        tolerance: tolerance(dtype),
        gemms,
        expected_gemms: 1,
    }
}

/// How the rhs leaf is viewed before the product (metadata-only permutations).
#[derive(Clone, Copy)]
enum View {
    Identity,
    /// `swap_dims` of the last two axes (the tied head's `transpose`, attention's `kᵀ`).
    SwapLast,
    /// `[b, l, heads, hd] → [b, heads, l, hd]` (`swap_dims(1, 2)`, rank 4): v without a cache.
    Heads,
    /// `Heads`, then `SwapLast`: kᵀ without a cache.
    HeadsSwapLast,
}

fn view<X: Backend, const D: usize>(v: View, t: Tensor<X, D>) -> Tensor<X, D> {
    match v {
        View::Identity => t,
        View::SwapLast => t.swap_dims(D - 2, D - 1),
        View::Heads => t.swap_dims(1, 2),
        View::HeadsSwapLast => t.swap_dims(1, 2).swap_dims(D - 2, D - 1),
    }
}

/// Gradients of `sum(matmul(lhs, view(rhs)) ⊙ g)` through `Autodiff<B>`: `nn::matmul` (the
/// cuBLAS op on CUDA) and burn's autodiff matmul, against the host `dA = g·Bᵀ`, `dB = Aᵀ·g`.
fn gradients<B: Backend, const D: usize>(
    name: &str,
    lhs: Tensor<B, D>,
    rhs_leaf: Tensor<B, D>,
    rhs_view: View,
    upstream: Input<B>,
) -> CheckResult {
    let dtype = float_dtype(&lhs);
    let (a, a_shape) = host(lhs.clone());
    let (b, b_shape) = host(view(rhs_view, rhs_leaf.clone()));
    let host_mm = HostMatmul::new(&a_shape, &b_shape);
    let mut out_shape = [0usize; D];
    for (i, o) in out_shape.iter_mut().enumerate().take(D - 2) {
        *o = a_shape[i].max(b_shape[i]);
    }
    out_shape[D - 2] = host_mm.m;
    out_shape[D - 1] = host_mm.n;
    let g = upstream.make(out_shape);
    let (gv, _) = host(g.clone());
    let (da, db) = host_mm.gradients(&a, &b, &gv);

    let x = Tensor::<Autodiff<B>, D>::from_inner(lhs).require_grad();
    let y = Tensor::<Autodiff<B>, D>::from_inner(rhs_leaf).require_grad();
    let g = Tensor::<Autodiff<B>, D>::from_inner(g);
    // Both gradients, the rhs one seen through the same view as the forward.
    let run = |through_nn: bool| -> (Vec<f64>, Vec<f64>) {
        let (xl, yl) = (x.clone(), y.clone());
        let rhs = view(rhs_view, yl.clone());
        let out = if through_nn {
            matmul(xl.clone(), rhs)
        } else {
            xl.clone().matmul(rhs)
        };
        let grads = (out * g.clone()).sum().backward();
        let gx = xl.grad(&grads).expect("lhs gradient");
        let gy = yl.grad(&grads).expect("rhs gradient");
        (host(gx).0, host(view(rhs_view, gy)).0)
    };
    let error =
        |(gx, gy): (Vec<f64>, Vec<f64>)| relative_error(&gx, &da).max(relative_error(&gy, &db));
    let burn_error = error(run(false));
    let before = cublas_counters().0;
    let ours = run(true);
    let gemms = gemms_since(before);
    CheckResult {
        name: name.to_string(),
        dtype,
        scale: max_abs(&da),
        cublas_error: (gemms > 0).then(|| error(ours)),
        burn_error,
        tolerance: tolerance(dtype),
        gemms,
        expected_gemms: 3,
    }
}

/// `x ← tanh(x · W_i)` for 12 steps with cuBLAS GEMMs between burn kernels, each step queued
/// behind an unrelated burn matmul that keeps cubecl's stream busy: a GEMM that ran before its
/// input was written, or a burn op that read the GEMM's output too early, shows as an O(1)
/// error. Compared with the same chain on the host.
fn ordering_chain<B: Backend>(device: &B::Device, dtype: FloatDType) -> CheckResult {
    const STEPS: usize = 12;
    let (rows, width) = (64, 256);
    let input = |seed: u64, shape: [usize; 2], scale: f32| {
        let values: Vec<f32> = uniform(shape[0] * shape[1], seed)
            .into_iter()
            .map(|v| v * scale)
            .collect();
        Tensor::<B, 2>::from_data(TensorData::new(values, shape), device).cast(dtype)
    };
    // Weights scaled so activations stay O(1) through tanh.
    let scale = (3.0 / width as f32).sqrt();
    let weights: Vec<Tensor<B, 2>> = (0..STEPS)
        .map(|i| input(100 + i as u64, [width, width], scale))
        .collect();
    let x0 = input(99, [rows, width], 1.0);
    let busy = input(98, [512, 512], 0.05);

    let mut reference = host(x0.clone()).0;
    for w in &weights {
        let (wv, w_shape) = host(w.clone());
        reference = HostMatmul::new(&[rows, width], &w_shape).forward(&reference, &wv);
        reference.iter_mut().for_each(|v| *v = v.tanh());
    }
    let chain = |use_cublas: bool| -> Option<Vec<f64>> {
        let mut x = x0.clone();
        for w in &weights {
            let _ = busy.clone().matmul(busy.clone());
            // A fresh buffer each step, so allocations get reused while GEMMs are in flight.
            let input = x.clone() * 1.0;
            drop(x);
            let product = if use_cublas {
                cublas_matmul(input, w.clone())?
            } else {
                input.matmul(w.clone())
            };
            x = product.tanh();
        }
        Some(host(x).0)
    };
    let burn = chain(false).expect("burn's chain always runs");
    let before = cublas_counters().0;
    let ours = chain(true);
    CheckResult {
        name: "ordering_chain".into(),
        dtype,
        scale: max_abs(&reference),
        cublas_error: ours.map(|c| relative_error(&c, &reference)),
        burn_error: relative_error(&burn, &reference),
        // FP32 error grows a little over the steps; an ordering bug is O(1).
        tolerance: 1e-4,
        gemms: gemms_since(before),
        expected_gemms: STEPS as u64,
    }
}

fn float_dtype<B: Backend, const D: usize>(t: &Tensor<B, D>) -> FloatDType {
    match t.dtype() {
        burn::tensor::DType::F64 => FloatDType::F64,
        burn::tensor::DType::F16 => FloatDType::F16,
        burn::tensor::DType::BF16 => FloatDType::BF16,
        burn::tensor::DType::Flex32 => FloatDType::Flex32,
        _ => FloatDType::F32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;

    /// On the CPU no case runs cuBLAS, but burn's matmul and autodiff must match the host
    /// reference: that validates the reference, views and gradient bookkeeping used on the GPU.
    #[test]
    fn reference_matches_burn_on_cpu() {
        let results = run_checks::<Cpu>(&Default::default(), &[FloatDType::F32]);
        assert_eq!(results.len(), 19);
        for r in &results {
            assert!(r.cublas_error.is_none() && r.gemms == 0, "{r:?}");
            assert!(r.burn_error < 1e-5, "{r:?}");
            assert!(!r.passed());
        }
    }

    #[test]
    fn batch_map_broadcasts() {
        assert_eq!(batch_map(&[1, 3], &[2, 3]), [0, 1, 2, 0, 1, 2]);
        assert_eq!(batch_map(&[2, 1], &[2, 3]), [0, 0, 0, 1, 1, 1]);
        assert_eq!(batch_map(&[], &[]), [0]);
    }
}
