//! Key/value cache, kept outside the model (one immutable model serves many sequences).
//!
//! Per layer, keys and values are preallocated `[B, n_kv, capacity, head_dim]` tensors written in
//! place with `slice_assign`; capacity doubles only when a sequence outgrows it. Rows of a batch
//! share the sequence axis (prompts are left-padded), so the host also keeps, per row, which
//! cached positions are real tokens, how many real tokens there are, and the row's `rope_delta`.

use burn::prelude::*;
use burn::tensor::DType;

use crate::nn::MASK_VALUE;

/// Cached keys/values for every decoder layer, plus per-row bookkeeping.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    keys: Vec<Tensor<B, 4>>,
    values: Vec<Tensor<B, 4>>,
    len: usize,
    capacity: usize,
    /// `[B][len]`: whether a cached position holds a real (non-padding) token.
    key_valid: Vec<Vec<bool>>,
    /// Real tokens per row (the absolute index of the row's next token).
    valid_count: Vec<usize>,
    /// MRoPE delta per row (`max position + 1 − valid length` of the prompt).
    rope_deltas: Vec<i64>,
}

impl<B: Backend> KvCache<B> {
    /// An empty cache for `batch` rows with room for `capacity` positions, in the float `dtype`
    /// of the model's activations.
    pub fn new(
        layers: usize,
        batch: usize,
        kv_heads: usize,
        head_dim: usize,
        capacity: usize,
        (device, dtype): (&B::Device, DType),
    ) -> Self {
        let zeros = || {
            Tensor::zeros(
                [batch, kv_heads, capacity.max(1), head_dim],
                (device, dtype),
            )
        };
        Self {
            keys: (0..layers).map(|_| zeros()).collect(),
            values: (0..layers).map(|_| zeros()).collect(),
            len: 0,
            capacity: capacity.max(1),
            key_valid: vec![Vec::new(); batch],
            valid_count: vec![0; batch],
            rope_deltas: vec![0; batch],
        }
    }

    /// The float dtype keys and values are stored in.
    pub fn dtype(&self) -> DType {
        self.keys.first().map_or(DType::F32, Tensor::dtype)
    }

    pub fn batch(&self) -> usize {
        self.valid_count.len()
    }

    /// Filled positions along the sequence axis (padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn valid_count(&self) -> &[usize] {
        &self.valid_count
    }

    pub fn rope_deltas(&self) -> &[i64] {
        &self.rope_deltas
    }

    pub(crate) fn set_rope_deltas(&mut self, deltas: Vec<i64>) {
        self.rope_deltas = deltas;
    }

    /// Writes layer `layer`'s new keys/values `[B, n_kv, l, hd]` at the current end and returns
    /// everything cached so far for that layer, `[B, n_kv, len + l, hd]`.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        keys: Tensor<B, 4>,
        values: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [b, h, l, d] = keys.dims();
        let end = self.len + l;
        if end > self.capacity {
            self.grow(end.max(2 * self.capacity));
        }
        let range = [0..b, 0..h, self.len..end, 0..d];
        // Move the buffer out so it is uniquely owned and `slice_assign` can write in place.
        let device = keys.device();
        let placeholder = || Tensor::empty([0, 0, 0, 0], &device);
        let k = std::mem::replace(&mut self.keys[layer], placeholder())
            .slice_assign(range.clone(), keys);
        let v =
            std::mem::replace(&mut self.values[layer], placeholder()).slice_assign(range, values);
        self.keys[layer] = k.clone();
        self.values[layer] = v.clone();
        (k.narrow(2, 0, end), v.narrow(2, 0, end))
    }

    fn grow(&mut self, capacity: usize) {
        let extend = |t: &Tensor<B, 4>| {
            let [b, h, cap, d] = t.dims();
            let extra = Tensor::zeros([b, h, capacity - cap, d], (&t.device(), t.dtype()));
            Tensor::cat(vec![t.clone(), extra], 2)
        };
        self.keys = self.keys.iter().map(extend).collect();
        self.values = self.values.iter().map(extend).collect();
        self.capacity = capacity;
    }

    /// Marks `l` new positions as written; `valid[b][i]` says which hold real tokens.
    pub(crate) fn advance(&mut self, valid: &[Vec<bool>]) {
        for (row, new) in valid.iter().enumerate() {
            self.key_valid[row].extend_from_slice(new);
            self.valid_count[row] += new.iter().filter(|&&v| v).count();
        }
        self.len += valid.first().map_or(0, Vec::len);
    }

    /// Additive attention mask `[B, 1, l, len + l]` for `l` new queries whose own validity is
    /// `new_valid[b][i]`: a query sees real cached tokens and real new tokens up to itself.
    pub(crate) fn mask(&self, new_valid: &[Vec<bool>], device: &B::Device) -> Tensor<B, 4> {
        let batch = new_valid.len();
        let l = new_valid.first().map_or(0, Vec::len);
        let total = self.len + l;
        let mut data = Vec::with_capacity(batch * l * total);
        for (b, row_new) in new_valid.iter().enumerate() {
            for i in 0..l {
                for j in 0..total {
                    let key_ok = if j < self.len {
                        self.key_valid[b][j]
                    } else {
                        j - self.len <= i && row_new[j - self.len]
                    };
                    data.push(if key_ok { 0.0 } else { MASK_VALUE });
                }
            }
        }
        Tensor::from_data(TensorData::new(data, [batch, 1, l, total]), device)
    }

    /// The cache of rows `rows` (in that order; a row may be taken several times): prefill each
    /// distinct prompt once, then give every sample its prompt's row. Differentiable under an
    /// autodiff backend (a `select` on the batch axis).
    pub fn select(&self, rows: &[usize]) -> Self {
        let device = self.keys.first().map(Tensor::device).unwrap_or_default();
        let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [rows.len()]), &device);
        let pick = |t: &Tensor<B, 4>| t.clone().select(0, ids.clone());
        Self {
            keys: self.keys.iter().map(pick).collect(),
            values: self.values.iter().map(pick).collect(),
            len: self.len,
            capacity: self.capacity,
            key_valid: rows.iter().map(|&r| self.key_valid[r].clone()).collect(),
            valid_count: rows.iter().map(|&r| self.valid_count[r]).collect(),
            rope_deltas: rows.iter().map(|&r| self.rope_deltas[r]).collect(),
        }
    }

    /// Repeats every row `times` times (row-major: row 0 ×times, then row 1 ...): prefill a prompt
    /// once, then fork its cache into a group of samples.
    pub fn fork(&self, times: usize) -> Self {
        let rows: Vec<usize> = (0..self.batch() * times).map(|r| r / times).collect();
        self.select(&rows)
    }
}
