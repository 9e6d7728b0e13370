//! A matmul node for burn's autodiff graph whose GEMMs — the forward's, and the backward's
//! `dA = dC·Bᵀ`, `dB = Aᵀ·dC` — come from the caller. `cublas.rs` plugs cuBLAS into it for
//! `Autodiff<Cuda>`; being backend-generic, the gradient bookkeeping (checkpoints, broadcast
//! batch dims, the single-GEMM weight gradient) is unit-tested on the CPU with burn's matmul as
//! the GEMM, where it must reproduce burn's own autodiff matmul.
//!
//! Follows burn-autodiff's `float_matmul` (burn-autodiff 0.21 `ops/tensor.rs`): compute-bound,
//! each side checkpointed only when the other side needs a gradient.

use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary, broadcast_shape};
use burn::prelude::*;
use burn::tensor::TensorMetadata;
use burn::tensor::ops::FloatTensor;

/// A GEMM on primitives: `[..., m, k] × [..., k, n] → [..., m, n]`, batch dims broadcast.
pub type Gemm<B> = fn(FloatTensor<B>, FloatTensor<B>) -> FloatTensor<B>;

/// Registers `out = lhs · rhs` on the graph. `out` is the forward result the caller already
/// computed (with its own GEMM) from `lhs.primitive` and `rhs.primitive`; `gemm` computes the
/// gradients. Shapes: `lhs: [..., m, k]`, `rhs: [..., k, n]`, `out: [..., m, n]`.
pub fn matmul_with<B: Backend, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
    out: FloatTensor<B>,
    gemm: Gemm<B>,
) -> FloatTensor<Autodiff<B, C>> {
    let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
    let (lhs_shape, rhs_shape) = (lhs.primitive.shape(), rhs.primitive.shape());
    match (MatmulBackward { gemm })
        .prepare::<C>([lhs.node.clone(), rhs.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            // Each side's gradient needs the other side's value.
            let lhs_state = rhs_tracked.then(|| prep.checkpoint(&lhs));
            let rhs_state = lhs_tracked.then(|| prep.checkpoint(&rhs));
            prep.finish((lhs_state, rhs_state, lhs_shape, rhs_shape), out)
        }
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// Backward of `C = A·B` through the caller's GEMM (a plain function, so the op stays
/// stateless apart from burn's `State`).
struct MatmulBackward<B: Backend> {
    gemm: Gemm<B>,
}

impl<B: Backend> std::fmt::Debug for MatmulBackward<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MatmulBackward")
    }
}

impl<B: Backend> Backward<B, 2> for MatmulBackward<B> {
    /// Checkpointed `A` and `B` (each kept only if the other side needs a gradient) and the
    /// forward shapes of `A` and `B`, to sum gradients over broadcast batch dims.
    type State = (Option<NodeId>, Option<NodeId>, Shape, Shape);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let (lhs_id, rhs_id, lhs_shape, rhs_shape) = ops.state;
        let lhs: Option<FloatTensor<B>> = lhs_id.map(|id| checkpointer.retrieve_node_output(id));
        let rhs: Option<FloatTensor<B>> = rhs_id.map(|id| checkpointer.retrieve_node_output(id));
        let gemm = self.gemm;
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| {
                let rhs = rhs.expect("B is kept when A needs a gradient");
                grad_lhs::<B>(gemm, grad, rhs, &lhs_shape)
            },
            |grad| {
                let lhs = lhs.expect("A is kept when B needs a gradient");
                grad_rhs::<B>(gemm, lhs, grad, &rhs_shape)
            },
        );
    }
}

/// `[..., r, c] → [..., c, r]` as a view (no copy; cuBLAS reads it with op `T`).
fn swap_last<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
    let rank = t.shape().num_dims();
    B::float_swap_dims(t, rank - 2, rank - 1)
}

/// `dA = dC · Bᵀ`, summed to `A`'s shape. `grad: [..., m, n]`, `rhs: [..., k, n]` →
/// `lhs_shape = [..., m, k]`.
fn grad_lhs<B: Backend>(
    gemm: Gemm<B>,
    grad: FloatTensor<B>,
    rhs: FloatTensor<B>,
    lhs_shape: &Shape,
) -> FloatTensor<B> {
    broadcast_shape::<B>(gemm(grad, swap_last::<B>(rhs)), lhs_shape)
}

/// `dB = Aᵀ · dC`, summed to `B`'s shape. `lhs: [..., m, k]`, `grad: [..., m, n]` →
/// `rhs_shape = [..., k, n]`. A weight broadcast over the batch (`rhs` batch dims all 1, the
/// `linear` case) gets `Σ_b A_bᵀ·dC_b` as one GEMM, `(A as [b·m, k])ᵀ · (dC as [b·m, n])`,
/// instead of a batch of GEMMs and a sum.
fn grad_rhs<B: Backend>(
    gemm: Gemm<B>,
    lhs: FloatTensor<B>,
    grad: FloatTensor<B>,
    rhs_shape: &Shape,
) -> FloatTensor<B> {
    let rank = rhs_shape.num_dims();
    let grad_shape = grad.shape();
    let batch: usize = grad_shape[..rank - 2].iter().product();
    let weight_broadcast = rhs_shape[..rank - 2].iter().all(|&d| d == 1);
    if rank > 2 && batch > 1 && weight_broadcast {
        let (m, n) = (grad_shape[rank - 2], grad_shape[rank - 1]);
        let k = rhs_shape[rank - 2];
        // The rhs batch is all ones, so the lhs batch is the output batch: `batch · m` rows.
        let lhs = B::float_reshape(lhs, Shape::new([batch * m, k]));
        let grad = B::float_reshape(grad, Shape::new([batch * m, n]));
        let weight = gemm(swap_last::<B>(lhs), grad);
        return B::float_reshape(weight, rhs_shape.clone());
    }
    broadcast_shape::<B>(gemm(swap_last::<B>(lhs), grad), rhs_shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
    use burn::tensor::ops::FloatTensorOps;
    use burn::tensor::{Distribution, TensorPrimitive};

    type Ad = Autodiff<Cpu>;

    /// `lhs · view(rhs)` through [`matmul_with`] (burn's matmul as the GEMM) and through burn's
    /// autodiff matmul: forward and both gradients must agree.
    fn compare<const D: usize>(lhs: [usize; D], rhs: [usize; D], transpose_rhs: bool) {
        let device = Default::default();
        let make = |shape: [usize; D]| {
            Tensor::<Cpu, D>::random(shape, Distribution::Uniform(-1.0, 1.0), &device)
        };
        let (a0, b0) = (make(lhs), make(rhs));
        let run = |ours: bool| {
            let a = Tensor::<Ad, D>::from_inner(a0.clone()).require_grad();
            let b = Tensor::<Ad, D>::from_inner(b0.clone()).require_grad();
            let b_used = if transpose_rhs {
                b.clone().swap_dims(D - 2, D - 1)
            } else {
                b.clone()
            };
            let out = if ours {
                let (TensorPrimitive::Float(pa), TensorPrimitive::Float(pb)) =
                    (a.clone().into_primitive(), b_used.into_primitive())
                else {
                    unreachable!("float tensors")
                };
                let forward = Cpu::float_matmul(pa.primitive.clone(), pb.primitive.clone());
                let node = matmul_with::<Cpu, NoCheckpointing>(pa, pb, forward, Cpu::float_matmul);
                Tensor::<Ad, D>::from_primitive(TensorPrimitive::Float(node))
            } else {
                a.clone().matmul(b_used)
            };
            let weights = Tensor::<Ad, D>::from_inner(Tensor::<Cpu, D>::random(
                out.dims(),
                Distribution::Uniform(-1.0, 1.0),
                &device,
            ));
            // Same upstream gradient for both runs (seeded per shape).
            let grads = (out.clone() * weights).sum().backward();
            let value = out.inner().into_data().into_vec::<f32>().unwrap();
            let ga = a
                .grad(&grads)
                .unwrap()
                .into_data()
                .into_vec::<f32>()
                .unwrap();
            let gb = b
                .grad(&grads)
                .unwrap()
                .into_data()
                .into_vec::<f32>()
                .unwrap();
            (value, ga, gb)
        };
        <Cpu as Backend>::seed(&device, 7);
        let ours = run(true);
        <Cpu as Backend>::seed(&device, 7);
        let burn = run(false);
        for (name, x, y) in [
            ("forward", &ours.0, &burn.0),
            ("dA", &ours.1, &burn.1),
            ("dB", &ours.2, &burn.2),
        ] {
            assert_eq!(x.len(), y.len(), "{name} length for {lhs:?}·{rhs:?}");
            let worst = x
                .iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0, f32::max);
            assert!(
                worst < 1e-4,
                "{name} differs by {worst} for {lhs:?}·{rhs:?}"
            );
        }
    }

    #[test]
    fn gradients_match_burns_autodiff_matmul() {
        compare([5, 7], [7, 3], false);
        // linear: weight broadcast over the batch (the single-GEMM weight gradient).
        compare([3, 4, 6], [1, 6, 5], false);
        // Tied head: the rhs leaf is [V, D], used transposed.
        compare([4, 6], [9, 6], true);
        // Attention: batched rank 4 with kᵀ.
        compare([2, 3, 5, 4], [2, 3, 7, 4], true);
        // Broadcast lhs over a batched rhs, and partially broadcast batch dims.
        compare([1, 5, 8], [3, 8, 6], false);
        compare([2, 1, 3, 4], [1, 5, 4, 2], false);
    }
}
