//! How one burn matmul (`[..., m, k] × [..., k, n]`, batch dims broadcast) maps onto a single
//! cuBLAS call, from shapes and element strides alone.
//!
//! Pure host code (no CUDA), so it is unit-tested on every machine; `cublas.rs` (feature `cuda`)
//! turns a [`GemmPlan`] into `cublasGemmEx` / `cublasGemmStridedBatchedEx`. Batch dims that do
//! not flatten to one stride (attention's `[b, heads]` over a `[b, l, heads, hd]` buffer in
//! training, a partially broadcast batch) become a short host loop of such calls. Layouts that
//! are not a strided matrix at all (stride-0 rows, neither axis unit-strided, …) give `None`, and
//! the caller falls back to burn's own matmul.
//!
//! Row-major `X[r, c]` with row stride `ld` is, to column-major cuBLAS, `Xᵀ` with leading
//! dimension `ld`; a transposed view (`swap_dims` of the last two axes: column stride `ld`, row
//! stride 1) is `X` itself. So `C = A·B` (row-major, contiguous `C`) is computed as
//! `Cᵀ = Bᵀ·Aᵀ` with `op(B) = B.transposed ? T : N`, `op(A) = A.transposed ? T : N`: no copies
//! for the tied LM head (`embed.transpose()`) or attention's `k.swap_dims(2, 3)`.

/// One operand as cuBLAS reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operand {
    /// `true` for a column-major view (cuBLAS op `T`), `false` for row-major (op `N`).
    pub transposed: bool,
    /// Leading dimension in elements: the row stride (row-major) or column stride (transposed).
    pub ld: usize,
    /// Elements between consecutive matrices of the (inner) strided batch; 0 when broadcast.
    pub batch_stride: usize,
    /// Elements between consecutive calls of the outer loop; 0 when broadcast.
    pub outer_stride: usize,
}

/// `outer` cuBLAS calls, each computing `out[b] = lhs[b] · rhs[b]` for `b < batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmPlan {
    /// Rows of each product (`batch_rows · m` when the batch was folded into the rows).
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Matrices in each call's strided batch (1: a plain GEMM).
    pub batch: usize,
    /// Calls, each `batch` matrices further on (1 for every layout of the decode/prefill path).
    pub outer: usize,
    pub lhs: Operand,
    pub rhs: Operand,
    /// Output shape `[batch dims..., m, n]` of the matmul. The output is contiguous: leading
    /// dimension `n`, batch stride `m · n`, outer stride `batch · m · n`.
    pub out_shape: Vec<usize>,
}

/// Largest value cuBLAS takes for a dimension or leading dimension (`int`).
const MAX_DIM: usize = i32::MAX as usize;

/// Most cuBLAS calls one matmul may become (each costs a few µs of host time).
pub const MAX_OUTER_CALLS: usize = 256;

/// Plans `lhs · rhs` for `lhs: [..., m, k]` and `rhs: [..., k, n]` of equal rank ≥ 2 whose batch
/// dims are equal or 1 (broadcast), given each tensor's shape and element strides.
///
/// When the weight is broadcast over the batch (`rhs` batch dims all 1, the `linear` case) and
/// the lhs rows are evenly spaced across the batch, the batch is folded into the rows: one GEMM
/// with `m = batch · m`, which is what cuBLAS is fastest at. Otherwise the innermost batch dims
/// that flatten to one stride in both operands form a strided batch and the rest an outer loop
/// (at most [`MAX_OUTER_CALLS`]). Returns `None` for anything else (or empty, or over `i32`).
pub fn plan(
    lhs_shape: &[usize],
    lhs_strides: &[usize],
    rhs_shape: &[usize],
    rhs_strides: &[usize],
) -> Option<GemmPlan> {
    let rank = lhs_shape.len();
    if rank < 2 || rhs_shape.len() != rank || lhs_strides.len() != rank || rhs_strides.len() != rank
    {
        return None;
    }
    let (m, k) = (lhs_shape[rank - 2], lhs_shape[rank - 1]);
    let (k_rhs, n) = (rhs_shape[rank - 2], rhs_shape[rank - 1]);
    if k != k_rhs || m == 0 || n == 0 || k == 0 {
        return None;
    }
    let mut out_batch = Vec::with_capacity(rank - 2);
    for (&a, &b) in lhs_shape[..rank - 2].iter().zip(&rhs_shape[..rank - 2]) {
        out_batch.push(match (a, b) {
            _ if a == b => a,
            (1, _) => b,
            (_, 1) => a,
            _ => return None,
        });
    }
    let batch: usize = out_batch.iter().product();
    if batch == 0 {
        return None;
    }
    let (lhs_t, lhs_ld) = matrix(m, k, lhs_strides[rank - 2], lhs_strides[rank - 1])?;
    let (rhs_t, rhs_ld) = matrix(k, n, rhs_strides[rank - 2], rhs_strides[rank - 1])?;
    let split = split_batch(
        &lhs_shape[..rank - 2],
        &lhs_strides[..rank - 2],
        &rhs_shape[..rank - 2],
        &rhs_strides[..rank - 2],
        &out_batch,
    )?;
    let (inner, outer) = (split.inner, batch / split.inner);
    if outer > MAX_OUTER_CALLS {
        return None;
    }

    let mut out_shape = out_batch;
    out_shape.extend([m, n]);
    let rhs = Operand {
        transposed: rhs_t,
        ld: rhs_ld,
        batch_stride: split.rhs.0,
        outer_stride: split.rhs.1,
    };
    let lhs_bs = split.lhs.0;
    // Fold the batch into the rows: row `b·m + r` sits at `b·lhs_bs + r·row_stride`, evenly
    // spaced when `lhs_bs = m · row_stride` (or trivially when m = 1).
    let folded_ld = match (
        outer == 1 && inner > 1 && rhs.batch_stride == 0 && !lhs_t,
        m,
    ) {
        (false, _) => None,
        (true, 1) => (lhs_bs >= k).then_some(lhs_bs),
        (true, _) => (lhs_bs == m * lhs_ld).then_some(lhs_ld),
    };
    let plan = match folded_ld {
        Some(ld) => GemmPlan {
            m: inner * m,
            n,
            k,
            batch: 1,
            outer: 1,
            lhs: Operand {
                transposed: false,
                ld,
                batch_stride: 0,
                outer_stride: 0,
            },
            rhs,
            out_shape,
        },
        None => GemmPlan {
            m,
            n,
            k,
            batch: inner,
            outer,
            lhs: Operand {
                transposed: lhs_t,
                ld: lhs_ld,
                batch_stride: lhs_bs,
                outer_stride: split.lhs.1,
            },
            rhs,
            out_shape,
        },
    };
    let fits = [plan.m, plan.n, plan.k, plan.batch, plan.lhs.ld, plan.rhs.ld]
        .iter()
        .all(|&v| v <= MAX_DIM);
    fits.then_some(plan)
}

/// Layout of one `[r, c]` matrix with row stride `s_r` and column stride `s_c`:
/// `(transposed, ld)`, preferring row-major when both fit (a single row or column).
/// The leading dimension of a single row / column is irrelevant to addressing, so it is set to
/// the smallest value cuBLAS accepts.
fn matrix(r: usize, c: usize, s_r: usize, s_c: usize) -> Option<(bool, usize)> {
    if c == 1 || s_c == 1 {
        let ld = if r == 1 { c } else { s_r };
        if ld >= c {
            return Some((false, ld));
        }
    }
    if r == 1 || s_r == 1 {
        let ld = if c == 1 { r } else { s_c };
        if ld >= r {
            return Some((true, ld));
        }
    }
    None
}

/// The batch dims split into an inner strided batch and an outer loop: `inner` matrices per
/// call, and per operand `(batch stride, outer stride)` in elements (0 = broadcast).
struct BatchSplit {
    inner: usize,
    lhs: (usize, usize),
    rhs: (usize, usize),
}

/// Splits the output batch `out` (operands' batch `shape`/`strides`, 1 = broadcast) at the
/// outermost dim from which both operands' remaining dims flatten to one stride each; the dims
/// before it must flatten too, as the outer loop. Size-1 output dims are ignored.
fn split_batch(
    lhs_shape: &[usize],
    lhs_strides: &[usize],
    rhs_shape: &[usize],
    rhs_strides: &[usize],
    out: &[usize],
) -> Option<BatchSplit> {
    let dims: Vec<usize> = (0..out.len()).filter(|&i| out[i] > 1).collect();
    // Per non-trivial dim: its extent and each operand's stride (0 where broadcast).
    let extents: Vec<usize> = dims.iter().map(|&i| out[i]).collect();
    let per_dim = |shape: &[usize], strides: &[usize]| -> Vec<usize> {
        dims.iter()
            .map(|&i| if shape[i] == 1 { 0 } else { strides[i] })
            .collect()
    };
    let (lhs, rhs) = (
        per_dim(lhs_shape, lhs_strides),
        per_dim(rhs_shape, rhs_strides),
    );
    // Dims [from, to) flatten when each stride is the next one's times the next extent.
    let flat = |s: &[usize], from: usize, to: usize| {
        (from..to.saturating_sub(1)).all(|i| s[i] == s[i + 1] * extents[i + 1])
    };
    let stride = |s: &[usize], from: usize, to: usize| if from < to { s[to - 1] } else { 0 };
    let d = dims.len();
    let split = (0..=d).find(|&at| flat(&lhs, at, d) && flat(&rhs, at, d))?;
    if !(flat(&lhs, 0, split) && flat(&rhs, 0, split)) {
        return None;
    }
    Some(BatchSplit {
        inner: extents[split..].iter().product(),
        lhs: (stride(&lhs, split, d), stride(&lhs, 0, split)),
        rhs: (stride(&rhs, split, d), stride(&rhs, 0, split)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contiguous(shape: &[usize]) -> Vec<usize> {
        let mut strides = vec![1; shape.len()];
        for i in (0..shape.len().saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        strides
    }

    /// `swap_dims(a, b)` of a shape/strides pair, as burn does it (metadata only).
    fn swapped(shape: &[usize], strides: &[usize], a: usize, b: usize) -> (Vec<usize>, Vec<usize>) {
        let (mut shape, mut strides) = (shape.to_vec(), strides.to_vec());
        shape.swap(a, b);
        strides.swap(a, b);
        (shape, strides)
    }

    fn row(ld: usize, batch_stride: usize) -> Operand {
        Operand {
            transposed: false,
            ld,
            batch_stride,
            outer_stride: 0,
        }
    }

    fn col(ld: usize, batch_stride: usize) -> Operand {
        Operand {
            transposed: true,
            ld,
            batch_stride,
            outer_stride: 0,
        }
    }

    #[test]
    fn plain_2d() {
        let p = plan(&[5, 7], &contiguous(&[5, 7]), &[7, 3], &contiguous(&[7, 3])).unwrap();
        assert_eq!((p.m, p.n, p.k, p.batch), (5, 3, 7, 1));
        assert_eq!((p.lhs, p.rhs), (row(7, 0), row(3, 0)));
        assert_eq!(p.out_shape, [5, 3]);
    }

    #[test]
    fn linear_over_a_batch_folds_into_one_gemm() {
        // [b, l, d] × [1, d, n] (burn's linear unsqueezes the weight).
        let p = plan(
            &[4, 6, 8],
            &contiguous(&[4, 6, 8]),
            &[1, 8, 10],
            &contiguous(&[1, 8, 10]),
        )
        .unwrap();
        assert_eq!((p.m, p.n, p.k, p.batch), (24, 10, 8, 1));
        assert_eq!(p.lhs, row(8, 0));
        assert_eq!(p.out_shape, [4, 6, 10]);
        // Decode: one row per sequence.
        let p = plan(&[3, 1, 8], &[8, 8, 1], &[1, 8, 10], &[80, 10, 1]).unwrap();
        assert_eq!((p.m, p.batch, p.lhs), (3, 1, row(8, 0)));
        // Rows of a padded (pitched) lhs fold too: stride 16 between rows and 6·16 per batch.
        let p = plan(&[2, 6, 8], &[96, 16, 1], &[1, 8, 10], &[80, 10, 1]).unwrap();
        assert_eq!((p.m, p.batch, p.lhs), (12, 1, row(16, 0)));
    }

    #[test]
    fn uneven_rows_stay_a_strided_batch() {
        // Rows of each matrix are contiguous but the matrices are 100 elements apart.
        let p = plan(&[2, 6, 8], &[100, 8, 1], &[1, 8, 10], &[80, 10, 1]).unwrap();
        assert_eq!((p.m, p.batch), (6, 2));
        assert_eq!((p.lhs, p.rhs), (row(8, 100), row(10, 0)));
    }

    #[test]
    fn tied_head_uses_the_transposed_embedding_in_place() {
        // hidden [N, D] × embed[V, D].transpose() = [D, V] with strides [1, D].
        let (shape, strides) = swapped(&[11, 4], &contiguous(&[11, 4]), 0, 1);
        let p = plan(&[3, 4], &contiguous(&[3, 4]), &shape, &strides).unwrap();
        assert_eq!((p.m, p.n, p.k), (3, 11, 4));
        assert_eq!(p.rhs, col(4, 0));
    }

    #[test]
    fn attention_scores_from_a_kv_cache_view() {
        // q [b, h, l, d] contiguous; k is a narrow of a [b, h, cap, d] cache to t positions,
        // then swap_dims(2, 3): [b, h, d, t] with strides [h·cap·d, cap·d, 1, d].
        let (b, h, l, d, cap, t) = (2, 3, 5, 4, 16, 9);
        let cache_strides = contiguous(&[b, h, cap, d]);
        let (k_shape, k_strides) = swapped(&[b, h, t, d], &cache_strides, 2, 3);
        let p = plan(
            &[b, h, l, d],
            &contiguous(&[b, h, l, d]),
            &k_shape,
            &k_strides,
        )
        .unwrap();
        assert_eq!((p.m, p.n, p.k, p.batch, p.outer), (l, t, d, b * h, 1));
        assert_eq!(p.lhs, row(d, l * d));
        assert_eq!(p.rhs, col(d, cap * d));
        assert_eq!(p.out_shape, [b, h, l, t]);
    }

    #[test]
    fn training_attention_loops_over_the_batch() {
        // No cache: k = [b, l, h, d].swap_dims(1, 2) → [b, h, l, d] with strides
        // [l·h·d, d, h·d, 1]; kᵀ swaps the last two. The heads flatten (stride d), the batch
        // does not (l·h·d ≠ h·d), so one strided batch of h per sequence.
        let (b, h, l, d) = (3, 4, 5, 8);
        let (k_shape, k_strides) = swapped(&[b, l, h, d], &contiguous(&[b, l, h, d]), 1, 2);
        let (kt_shape, kt_strides) = swapped(&k_shape, &k_strides, 2, 3);
        let q = [b, h, l, d];
        let p = plan(&q, &contiguous(&q), &kt_shape, &kt_strides).unwrap();
        assert_eq!((p.m, p.n, p.k, p.batch, p.outer), (l, l, d, h, b));
        assert_eq!(
            p.lhs,
            Operand {
                outer_stride: h * l * d,
                ..row(d, l * d)
            }
        );
        assert_eq!(
            p.rhs,
            Operand {
                outer_stride: l * h * d,
                ..col(h * d, d)
            }
        );
        // probs · v with v = [b, l, h, d].swap_dims(1, 2): rows of v are h·d apart.
        let probs = [b, h, l, l];
        let p = plan(&probs, &contiguous(&probs), &k_shape, &k_strides).unwrap();
        assert_eq!((p.batch, p.outer), (h, b));
        assert_eq!(
            p.rhs,
            Operand {
                outer_stride: l * h * d,
                ..row(h * d, d)
            }
        );
    }

    #[test]
    fn lhs_broadcast_over_a_batched_rhs() {
        let p = plan(&[1, 3, 4], &[12, 4, 1], &[5, 4, 2], &contiguous(&[5, 4, 2])).unwrap();
        assert_eq!((p.m, p.batch, p.outer), (3, 5, 1));
        assert_eq!((p.lhs, p.rhs), (row(4, 0), row(2, 8)));
    }

    #[test]
    fn transposed_lhs_and_single_rows_or_columns() {
        // x.swap_dims(0, 1) of a contiguous [k, m]: the weight-gradient shape xᵀ·g.
        let (shape, strides) = swapped(&[6, 4], &contiguous(&[6, 4]), 0, 1);
        let p = plan(&shape, &strides, &[6, 2], &contiguous(&[6, 2])).unwrap();
        assert_eq!(p.lhs, col(4, 0));
        // A single row with a strided column: read as a column-major 1×c.
        let p = plan(&[1, 4], &[0, 5], &[4, 2], &contiguous(&[4, 2])).unwrap();
        assert_eq!(p.lhs, col(5, 0));
        // A single column with any row stride is row-major.
        assert_eq!(
            plan(&[3, 1], &[7, 3], &[1, 2], &[2, 1]).unwrap().lhs,
            row(7, 0)
        );
    }

    #[test]
    fn unsupported_layouts_fall_back() {
        // Stride-0 rows (an expanded tensor).
        assert!(plan(&[4, 3], &[0, 1], &[3, 2], &[2, 1]).is_none());
        // Neither dimension unit-strided.
        assert!(plan(&[4, 3], &[6, 2], &[3, 2], &[2, 1]).is_none());
        // Batch dims that flatten neither as a whole nor as outer × inner.
        let shape = [2, 3, 5, 1, 4];
        assert!(
            plan(
                &shape,
                &[999, 100, 4, 4, 1],
                &[1, 1, 1, 4, 2],
                &[8, 8, 8, 2, 1]
            )
            .is_none()
        );
        // Too many outer calls.
        let (b, h) = (MAX_OUTER_CALLS + 1, 2);
        assert!(plan(&[b, h, 1, 4], &[100, 4, 4, 1], &[1, 1, 4, 2], &[8, 8, 2, 1]).is_none());
        // Mismatched inner dims, incompatible batch, empty, rank 1.
        assert!(plan(&[2, 3], &[3, 1], &[4, 2], &[2, 1]).is_none());
        assert!(plan(&[2, 2, 3], &[6, 3, 1], &[3, 3, 2], &[6, 2, 1]).is_none());
        assert!(plan(&[0, 3], &[3, 1], &[3, 2], &[2, 1]).is_none());
        assert!(plan(&[3], &[1], &[3], &[1]).is_none());
    }

    #[test]
    fn partial_broadcasts_and_uneven_batches_loop() {
        // [b, 1] against [1, h]: h matrices per call (lhs broadcast inside), b calls.
        let p = plan(
            &[2, 1, 3, 4],
            &contiguous(&[2, 1, 3, 4]),
            &[1, 5, 4, 2],
            &contiguous(&[1, 5, 4, 2]),
        )
        .unwrap();
        assert_eq!((p.batch, p.outer), (5, 2));
        assert_eq!((p.lhs.batch_stride, p.lhs.outer_stride), (0, 12));
        assert_eq!((p.rhs.batch_stride, p.rhs.outer_stride), (8, 0));
        // Matrices 4 apart within a group of 3, groups 100 apart.
        let p = plan(&[2, 3, 1, 4], &[100, 4, 4, 1], &[1, 1, 4, 2], &[8, 8, 2, 1]).unwrap();
        assert_eq!((p.batch, p.outer, p.m), (3, 2, 1));
        assert_eq!((p.lhs.batch_stride, p.lhs.outer_stride), (4, 100));
        assert_eq!((p.rhs.batch_stride, p.rhs.outer_stride), (0, 0));
    }

    #[test]
    fn multi_dim_batches_flatten() {
        let shape = [2, 3, 4, 5];
        let p = plan(
            &shape,
            &contiguous(&shape),
            &[2, 3, 5, 6],
            &contiguous(&[2, 3, 5, 6]),
        )
        .unwrap();
        assert_eq!(
            (p.batch, p.outer, p.lhs.batch_stride, p.rhs.batch_stride),
            (6, 1, 20, 30)
        );
        // Size-1 batch dims with arbitrary strides are ignored.
        let p = plan(
            &[1, 3, 4, 5],
            &[999, 20, 5, 1],
            &[1, 3, 5, 6],
            &[7, 30, 6, 1],
        )
        .unwrap();
        assert_eq!(
            (p.batch, p.lhs.batch_stride, p.rhs.batch_stride),
            (3, 20, 30)
        );
    }
}
