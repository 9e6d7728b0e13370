//! How one burn matmul (`[..., m, k] × [..., k, n]`, batch dims broadcast) maps onto a single
//! cuBLAS call, from shapes and element strides alone.
//!
//! Pure host code (no CUDA), so it is unit-tested on every machine; `cublas.rs` (feature `cuda`)
//! turns a [`GemmPlan`] into `cublasGemmEx` / `cublasGemmStridedBatchedEx`. Layouts the plan
//! cannot express as one call (partially broadcast batch dims, stride-0 rows, …) give `None`, and
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
    /// Elements between consecutive matrices of the flattened batch; 0 when broadcast.
    pub batch_stride: usize,
}

/// One cuBLAS call computing `out[b] = lhs[b] · rhs[b]` for `b < batch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GemmPlan {
    /// Rows of each product (`batch_rows · m` when the batch was folded into the rows).
    pub m: usize,
    pub n: usize,
    pub k: usize,
    /// Matrices in the strided batch (1: a plain GEMM).
    pub batch: usize,
    pub lhs: Operand,
    pub rhs: Operand,
    /// Output shape `[batch dims..., m, n]` of the matmul (the output is contiguous, so its
    /// leading dimension is `n` and its batch stride `m · n` of the per-matrix `m`).
    pub out_shape: Vec<usize>,
}

/// Largest value cuBLAS takes for a dimension or leading dimension (`int`).
const MAX_DIM: usize = i32::MAX as usize;

/// Plans `lhs · rhs` for `lhs: [..., m, k]` and `rhs: [..., k, n]` of equal rank ≥ 2 whose batch
/// dims are equal or 1 (broadcast), given each tensor's shape and element strides.
///
/// When the weight is broadcast over the batch (`rhs` batch dims all 1, the `linear` case) and
/// the lhs rows are evenly spaced across the batch, the batch is folded into the rows: one GEMM
/// with `m = batch · m`, which is what cuBLAS is fastest at. Returns `None` for anything that is
/// not one cuBLAS call (or is empty, or exceeds `i32`).
pub fn plan(
    lhs_shape: &[usize],
    lhs_strides: &[usize],
    rhs_shape: &[usize],
    rhs_strides: &[usize],
) -> Option<GemmPlan> {
    let rank = lhs_shape.len();
    if rank < 2
        || rhs_shape.len() != rank
        || lhs_strides.len() != rank
        || rhs_strides.len() != rank
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
    let lhs_bs = batch_stride(&lhs_shape[..rank - 2], &lhs_strides[..rank - 2], &out_batch)?;
    let rhs_bs = batch_stride(&rhs_shape[..rank - 2], &rhs_strides[..rank - 2], &out_batch)?;

    let mut out_shape = out_batch;
    out_shape.extend([m, n]);
    let rhs = Operand {
        transposed: rhs_t,
        ld: rhs_ld,
        batch_stride: rhs_bs,
    };
    // Fold the batch into the rows: row `b·m + r` sits at `b·lhs_bs + r·row_stride`, evenly
    // spaced when `lhs_bs = m · row_stride` (or trivially when m = 1).
    let folded_ld = match (batch > 1 && rhs_bs == 0 && !lhs_t, m) {
        (false, _) => None,
        (true, 1) => (lhs_bs >= k).then_some(lhs_bs),
        (true, _) => (lhs_bs == m * lhs_ld).then_some(lhs_ld),
    };
    let plan = match folded_ld {
        Some(ld) => GemmPlan {
            m: batch * m,
            n,
            k,
            batch: 1,
            lhs: Operand {
                transposed: false,
                ld,
                batch_stride: 0,
            },
            rhs,
            out_shape,
        },
        None => GemmPlan {
            m,
            n,
            k,
            batch,
            lhs: Operand {
                transposed: lhs_t,
                ld: lhs_ld,
                batch_stride: lhs_bs,
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

/// One stride for the flattened batch of an operand with batch `shape`/`strides` broadcast to
/// `out`: 0 when the operand is broadcast over every non-trivial batch dim, the innermost stride
/// when its batch dims flatten evenly, `None` when it is partially broadcast or unevenly strided.
fn batch_stride(shape: &[usize], strides: &[usize], out: &[usize]) -> Option<usize> {
    let dims: Vec<usize> = (0..out.len()).filter(|&i| out[i] > 1).collect();
    let present = dims.iter().filter(|&&i| shape[i] == out[i]).count();
    if present == 0 {
        return Some(0);
    }
    if present != dims.len() {
        return None;
    }
    // Innermost first: each outer stride must be the next inner one times its extent.
    let mut iter = dims.iter().rev();
    let &inner = iter.next()?;
    let (mut stride, mut extent) = (strides[inner], out[inner]);
    for &i in iter {
        if strides[i] != stride * extent {
            return None;
        }
        (stride, extent) = (strides[i], out[i]);
    }
    Some(strides[inner])
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
        assert_eq!(
            p.rhs,
            Operand {
                transposed: true,
                ld: 4,
                batch_stride: 0
            }
        );
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
        assert_eq!((p.m, p.n, p.k, p.batch), (l, t, d, b * h));
        assert_eq!(p.lhs, row(d, l * d));
        assert_eq!(
            p.rhs,
            Operand {
                transposed: true,
                ld: d,
                batch_stride: cap * d
            }
        );
        assert_eq!(p.out_shape, [b, h, l, t]);
    }

    #[test]
    fn lhs_broadcast_over_a_batched_rhs() {
        let p = plan(&[1, 3, 4], &[12, 4, 1], &[5, 4, 2], &contiguous(&[5, 4, 2])).unwrap();
        assert_eq!((p.m, p.batch), (3, 5));
        assert_eq!((p.lhs, p.rhs), (row(4, 0), row(2, 8)));
    }

    #[test]
    fn transposed_lhs_and_single_rows_or_columns() {
        // x.swap_dims(0, 1) of a contiguous [k, m]: the weight-gradient shape xᵀ·g.
        let (shape, strides) = swapped(&[6, 4], &contiguous(&[6, 4]), 0, 1);
        let p = plan(&shape, &strides, &[6, 2], &contiguous(&[6, 2])).unwrap();
        assert_eq!(
            p.lhs,
            Operand {
                transposed: true,
                ld: 4,
                batch_stride: 0
            }
        );
        // A single row with a strided column: read as a column-major 1×c.
        let p = plan(&[1, 4], &[0, 5], &[4, 2], &contiguous(&[4, 2])).unwrap();
        assert_eq!(
            p.lhs,
            Operand {
                transposed: true,
                ld: 5,
                batch_stride: 0
            }
        );
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
        // Partially broadcast batch: [b, 1] against [1, h].
        assert!(
            plan(
                &[2, 1, 3, 4],
                &contiguous(&[2, 1, 3, 4]),
                &[1, 5, 4, 2],
                &contiguous(&[1, 5, 4, 2])
            )
            .is_none()
        );
        // Batch dims that do not flatten to one stride.
        assert!(plan(&[2, 3, 1, 4], &[100, 4, 4, 1], &[1, 1, 4, 2], &[8, 8, 2, 1]).is_none());
        // Mismatched inner dims, incompatible batch, empty, rank 1.
        assert!(plan(&[2, 3], &[3, 1], &[4, 2], &[2, 1]).is_none());
        assert!(plan(&[2, 2, 3], &[6, 3, 1], &[3, 3, 2], &[6, 2, 1]).is_none());
        assert!(plan(&[0, 3], &[3, 1], &[3, 2], &[2, 1]).is_none());
        assert!(plan(&[3], &[1], &[3], &[1]).is_none());
    }

    #[test]
    fn multi_dim_batches_flatten() {
        let shape = [2, 3, 4, 5];
        let p = plan(&shape, &contiguous(&shape), &[2, 3, 5, 6], &contiguous(&[2, 3, 5, 6]))
            .unwrap();
        assert_eq!((p.batch, p.lhs.batch_stride, p.rhs.batch_stride), (6, 20, 30));
        // Size-1 batch dims with arbitrary strides are ignored.
        let p = plan(&[1, 3, 4, 5], &[999, 20, 5, 1], &[1, 3, 5, 6], &[7, 30, 6, 1]).unwrap();
        assert_eq!((p.batch, p.lhs.batch_stride, p.rhs.batch_stride), (3, 20, 30));
    }
}
