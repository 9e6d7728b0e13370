//! The Qwen3 text decoder: RMSNorm, attention with per-head q/k norms and MRoPE, GQA, SwiGLU or
//! a sparse MoE block, DeepStack injection, final norm and (tied or untied) LM head.

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::{silu, softmax};

use crate::cache::KvCache;
use crate::config::TextConfig;
use crate::error::Result;
use crate::nn::{RmsNorm, apply_rotary, linear, matmul, softmax_f32, to_dtype, to_f32};
use crate::trace::{Trace, record};
use crate::weights::{Init, Loader, Saver, host_f32};

/// Self-attention with q/k RMSNorm per head (before RoPE) and grouped KV heads.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub o_proj: Linear<B>,
    pub q_norm: RmsNorm<B>,
    pub k_norm: RmsNorm<B>,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
}

/// HF tensor names of an [`Attention`] under `prefix`, written once for load and save.
struct AttentionNames {
    q_proj: String,
    k_proj: String,
    v_proj: String,
    o_proj: String,
    q_norm: String,
    k_norm: String,
}

impl AttentionNames {
    fn new(prefix: &str) -> Self {
        Self {
            q_proj: format!("{prefix}.q_proj"),
            k_proj: format!("{prefix}.k_proj"),
            v_proj: format!("{prefix}.v_proj"),
            o_proj: format!("{prefix}.o_proj"),
            q_norm: format!("{prefix}.q_norm"),
            k_norm: format!("{prefix}.k_norm"),
        }
    }
}

impl<B: Backend> Attention<B> {
    fn load(loader: &mut Loader<B>, prefix: &str, cfg: &TextConfig) -> Result<Self> {
        let (d, hd) = (cfg.hidden_size, cfg.head_dim());
        let (nh, nkv) = (cfg.num_attention_heads, cfg.num_key_value_heads);
        let n = AttentionNames::new(prefix);
        Ok(Self {
            q_proj: loader.linear(&n.q_proj, d, nh * hd, false)?,
            k_proj: loader.linear(&n.k_proj, d, nkv * hd, false)?,
            v_proj: loader.linear(&n.v_proj, d, nkv * hd, false)?,
            o_proj: loader.linear(&n.o_proj, nh * hd, d, false)?,
            q_norm: RmsNorm::load(loader, &n.q_norm, hd, cfg.rms_norm_eps)?,
            k_norm: RmsNorm::load(loader, &n.k_norm, hd, cfg.rms_norm_eps)?,
            num_heads: nh,
            num_kv_heads: nkv,
            head_dim: hd,
        })
    }

    fn save(&self, saver: &mut Saver, prefix: &str) {
        let n = AttentionNames::new(prefix);
        saver.linear(&n.q_proj, &self.q_proj);
        saver.linear(&n.k_proj, &self.k_proj);
        saver.linear(&n.v_proj, &self.v_proj);
        saver.linear(&n.o_proj, &self.o_proj);
        self.q_norm.save(saver, &n.q_norm);
        self.k_norm.save(saver, &n.k_norm);
    }

    /// `x: [B, l, D]`, `cos/sin: [B, 1, l, hd]`, `mask: [B, 1, l, T]` additive, where `T` is `l`
    /// without a cache or `cached + l` with one. Returns `[B, l, D]`.
    fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: &Tensor<B, 4>,
        cache: Option<(&mut KvCache<B>, usize)>,
    ) -> Tensor<B, 3> {
        let [b, l, _] = x.dims();
        let (nh, nkv, hd) = (self.num_heads, self.num_kv_heads, self.head_dim);
        let heads = |t: Tensor<B, 3>, n: usize| t.reshape([b, l, n, hd]);
        let q = self
            .q_norm
            .forward(heads(linear(&self.q_proj, x.clone()), nh))
            .swap_dims(1, 2);
        let k = self
            .k_norm
            .forward(heads(linear(&self.k_proj, x.clone()), nkv))
            .swap_dims(1, 2);
        let v = heads(linear(&self.v_proj, x), nkv).swap_dims(1, 2);
        let q = apply_rotary(q, cos.clone(), sin.clone());
        let k = apply_rotary(k, cos.clone(), sin.clone());
        let (k, v) = match cache {
            Some((cache, layer)) => cache.append(layer, k, v),
            None => (k, v),
        };
        let t = k.dims()[2];
        // GQA without copying K/V: the g query heads of one KV head form one [g·l, hd] block.
        let g = nh / nkv;
        let q = q.reshape([b, nkv, g * l, hd]);
        let scores = matmul(q, k.swap_dims(2, 3)) * (hd as f64).powf(-0.5);
        let mask = mask.clone().reshape([b, 1, 1, l, t]);
        let probs = softmax_f32(scores.reshape([b, nkv, g, l, t]), Some(mask), 4).reshape([
            b,
            nkv,
            g * l,
            t,
        ]);
        let out = matmul(probs, v).reshape([b, nh, l, hd]).swap_dims(1, 2);
        linear(&self.o_proj, out.reshape([b, l, nh * hd]))
    }
}

/// SwiGLU: `down(silu(gate x) ⊙ up x)`.
#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub gate_proj: Linear<B>,
    pub up_proj: Linear<B>,
    pub down_proj: Linear<B>,
}

/// HF tensor names of an [`Mlp`] under `prefix`, written once for load and save.
struct MlpNames {
    gate_proj: String,
    up_proj: String,
    down_proj: String,
}

impl MlpNames {
    fn new(prefix: &str) -> Self {
        Self {
            gate_proj: format!("{prefix}.gate_proj"),
            up_proj: format!("{prefix}.up_proj"),
            down_proj: format!("{prefix}.down_proj"),
        }
    }
}

impl<B: Backend> Mlp<B> {
    fn load(loader: &mut Loader<B>, prefix: &str, d: usize, i: usize) -> Result<Self> {
        let n = MlpNames::new(prefix);
        Ok(Self {
            gate_proj: loader.linear(&n.gate_proj, d, i, false)?,
            up_proj: loader.linear(&n.up_proj, d, i, false)?,
            down_proj: loader.linear(&n.down_proj, i, d, false)?,
        })
    }

    fn save(&self, saver: &mut Saver, prefix: &str) {
        let n = MlpNames::new(prefix);
        saver.linear(&n.gate_proj, &self.gate_proj);
        saver.linear(&n.up_proj, &self.up_proj);
        saver.linear(&n.down_proj, &self.down_proj);
    }

    /// `[..., D] → [..., D]`
    fn forward<const N: usize>(&self, x: Tensor<B, N>) -> Tensor<B, N> {
        let gate = silu(linear(&self.gate_proj, x.clone()));
        linear(&self.down_proj, gate * linear(&self.up_proj, x))
    }
}

/// Sparse MoE block: softmax router over all experts, top-k, renormalised weights, no shared
/// expert. Experts are stored in the hub layout, used as `x @ W`:
/// `gate_up: [E, D, 2I]` (gate = first `I` columns) and `down: [E, I, D]`.
#[derive(Module, Debug)]
pub struct SparseMoe<B: Backend> {
    /// Router `[D, E]` (HF `mlp.gate.weight` is `[E, D]`).
    pub router: Linear<B>,
    pub gate_up: Param<Tensor<B, 3>>,
    pub down: Param<Tensor<B, 3>>,
    pub top_k: usize,
}

/// HF tensor names of a [`SparseMoe`] under `prefix`, written once for load and save.
struct MoeNames {
    router: String,
    gate_up: String,
    down: String,
}

impl MoeNames {
    fn new(prefix: &str) -> Self {
        Self {
            router: format!("{prefix}.gate"),
            gate_up: format!("{prefix}.experts.gate_up_proj"),
            down: format!("{prefix}.experts.down_proj"),
        }
    }
}

impl<B: Backend> SparseMoe<B> {
    fn load(loader: &mut Loader<B>, prefix: &str, cfg: &TextConfig) -> Result<Self> {
        let d = cfg.hidden_size;
        let e = cfg.num_experts.unwrap_or(0);
        let i = cfg.moe_intermediate_size.unwrap_or(0);
        let n = MoeNames::new(prefix);
        let (gate_up_name, down_name) = (&n.gate_up, &n.down);
        // transformers 5 saves the transposed layout ([E, 2I, D] / [E, D, I]); detect by shape.
        let gate_up = if loader.shape_of(gate_up_name) == Some(vec![e, 2 * i, d]) && 2 * i != d {
            loader
                .param(gate_up_name, [e, 2 * i, d], Init::Normal(0.02))?
                .map(|t| t.swap_dims(1, 2))
        } else {
            loader.param(gate_up_name, [e, d, 2 * i], Init::Normal(0.02))?
        };
        let down = if loader.shape_of(down_name) == Some(vec![e, d, i]) && i != d {
            loader
                .param(down_name, [e, d, i], Init::Normal(0.02))?
                .map(|t| t.swap_dims(1, 2))
        } else {
            loader.param(down_name, [e, i, d], Init::Normal(0.02))?
        };
        Ok(Self {
            router: loader.linear(&n.router, d, e, false)?,
            gate_up,
            down,
            top_k: cfg.num_experts_per_tok.unwrap_or(1),
        })
    }

    fn save(&self, saver: &mut Saver, prefix: &str) {
        let n = MoeNames::new(prefix);
        saver.linear(&n.router, &self.router);
        saver.param(&n.gate_up, &self.gate_up);
        saver.param(&n.down, &self.down);
    }

    /// `x: [N, D] → [N, D]`; also returns the chosen experts `[N][k]` (descending weight).
    fn forward(&self, x: Tensor<B, 2>) -> (Tensor<B, 2>, Vec<Vec<usize>>) {
        let [n, d] = x.dims();
        let [experts, _, two_i] = self.gate_up.val().dims();
        let inter = two_i / 2;
        // Routing in f32, rounded to the activations' dtype only to scale expert outputs
        // (transformers' `softmax(router_logits, dtype=float)`).
        let probs = softmax(to_f32(linear(&self.router, x.clone())), 1);
        let host = host_f32(probs.clone());
        let k = self.top_k;
        let chosen: Vec<Vec<usize>> = host
            .chunks(experts)
            .map(|row| top_k_indices(row, k))
            .collect();
        let flat: Vec<i64> = chosen.iter().flatten().map(|&e| e as i64).collect();
        let idx = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [n, k]), &x.device());
        let weights = probs.gather(1, idx);
        let weights = weights.clone() / weights.sum_dim(1);
        let weights_flat = to_dtype(weights.reshape([n * k]), x.dtype());

        // Bucket (token, slot) pairs by expert in one pass; tokens stay in ascending order.
        let mut routed: Vec<(Vec<i64>, Vec<i64>)> = vec![(Vec::new(), Vec::new()); experts];
        for (t, experts_of_token) in chosen.iter().enumerate() {
            for (s, &e) in experts_of_token.iter().enumerate() {
                routed[e].0.push(t as i64);
                routed[e].1.push((t * k + s) as i64);
            }
        }
        let mut out = Tensor::<B, 2>::zeros([n, d], (&x.device(), x.dtype()));
        for (e, (rows, slots)) in routed.into_iter().enumerate() {
            if rows.is_empty() {
                continue;
            }
            let m = rows.len();
            let device = x.device();
            let rows = Tensor::<B, 1, Int>::from_data(TensorData::new(rows, [m]), &device);
            let slots = Tensor::<B, 1, Int>::from_data(TensorData::new(slots, [m]), &device);
            let xe = x.clone().select(0, rows.clone());
            let gate_up = self.gate_up.val().narrow(0, e, 1).reshape([d, two_i]);
            let gu = matmul(xe, gate_up);
            let h = silu(gu.clone().narrow(1, 0, inter)) * gu.narrow(1, inter, inter);
            let ye = matmul(h, self.down.val().narrow(0, e, 1).reshape([inter, d]));
            let we = weights_flat.clone().select(0, slots).unsqueeze_dim(1);
            out = out.select_assign(0, rows, ye * we, IndexingUpdateOp::Add);
        }
        (out, chosen)
    }
}

/// Indices of the `k` largest values, largest first (ties: lower index first, like torch).
fn top_k_indices(row: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// Dense SwiGLU or sparse MoE.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)] // one per layer; boxing would only add an indirection
pub enum FeedForward<B: Backend> {
    Dense(Mlp<B>),
    Sparse(SparseMoe<B>),
}

/// Pre-norm decoder layer.
#[derive(Module, Debug)]
pub struct DecoderLayer<B: Backend> {
    pub input_layernorm: RmsNorm<B>,
    pub self_attn: Attention<B>,
    pub post_attention_layernorm: RmsNorm<B>,
    pub mlp: FeedForward<B>,
}

/// HF tensor names of a [`DecoderLayer`] under `prefix`, written once for load and save.
struct LayerNames {
    input_layernorm: String,
    self_attn: String,
    post_attention_layernorm: String,
    mlp: String,
}

impl LayerNames {
    fn new(prefix: &str) -> Self {
        Self {
            input_layernorm: format!("{prefix}.input_layernorm"),
            self_attn: format!("{prefix}.self_attn"),
            post_attention_layernorm: format!("{prefix}.post_attention_layernorm"),
            mlp: format!("{prefix}.mlp"),
        }
    }
}

impl<B: Backend> DecoderLayer<B> {
    fn load(loader: &mut Loader<B>, prefix: &str, layer: usize, cfg: &TextConfig) -> Result<Self> {
        let (d, eps) = (cfg.hidden_size, cfg.rms_norm_eps);
        let n = LayerNames::new(prefix);
        let mlp = if cfg.layer_is_sparse(layer) {
            FeedForward::Sparse(SparseMoe::load(loader, &n.mlp, cfg)?)
        } else {
            FeedForward::Dense(Mlp::load(loader, &n.mlp, d, cfg.intermediate_size)?)
        };
        Ok(Self {
            input_layernorm: RmsNorm::load(loader, &n.input_layernorm, d, eps)?,
            self_attn: Attention::load(loader, &n.self_attn, cfg)?,
            post_attention_layernorm: RmsNorm::load(loader, &n.post_attention_layernorm, d, eps)?,
            mlp,
        })
    }

    fn save(&self, saver: &mut Saver, prefix: &str) {
        let n = LayerNames::new(prefix);
        self.input_layernorm.save(saver, &n.input_layernorm);
        self.self_attn.save(saver, &n.self_attn);
        self.post_attention_layernorm
            .save(saver, &n.post_attention_layernorm);
        match &self.mlp {
            FeedForward::Dense(mlp) => mlp.save(saver, &n.mlp),
            FeedForward::Sparse(moe) => moe.save(saver, &n.mlp),
        }
    }

    fn forward(
        &self,
        x: Tensor<B, 3>,
        cos: &Tensor<B, 4>,
        sin: &Tensor<B, 4>,
        mask: &Tensor<B, 4>,
        cache: Option<(&mut KvCache<B>, usize)>,
        router_choices: Option<&mut Vec<Vec<usize>>>,
    ) -> Tensor<B, 3> {
        let attn = self.self_attn.forward(
            self.input_layernorm.forward(x.clone()),
            cos,
            sin,
            mask,
            cache,
        );
        let h = x + attn;
        let normed = self.post_attention_layernorm.forward(h.clone());
        let ff = match &self.mlp {
            FeedForward::Dense(mlp) => mlp.forward(normed),
            FeedForward::Sparse(moe) => {
                let [b, l, d] = normed.dims();
                let (out, chosen) = moe.forward(normed.reshape([b * l, d]));
                if let Some(sink) = router_choices {
                    *sink = chosen;
                }
                out.reshape([b, l, d])
            }
        };
        h + ff
    }
}

/// DeepStack feature for one decoder layer, laid out over the flattened `[B·L]` positions:
/// `rows` is `[1 + visual tokens, D]` (row 0 zeros) and `index[p]` picks the row for position `p`.
#[derive(Debug, Clone)]
pub struct DeepStackInjection<B: Backend> {
    pub rows: Tensor<B, 2>,
    pub index: Tensor<B, 1, Int>,
}

/// Embedding, decoder layers and final norm.
#[derive(Module, Debug)]
pub struct TextModel<B: Backend> {
    pub embed_tokens: Param<Tensor<B, 2>>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: RmsNorm<B>,
    /// `None` when tied to `embed_tokens`.
    pub lm_head: Option<Linear<B>>,
}

/// HF tensor names of the [`TextModel`], written once for load and save.
struct TextNames;

impl TextNames {
    const PREFIX: &'static str = "model.language_model";
    /// The untied output head (outside `model.`, as in transformers).
    const LM_HEAD: &'static str = "lm_head";

    fn embed_tokens() -> String {
        format!("{}.embed_tokens.weight", Self::PREFIX)
    }

    fn layer(i: usize) -> String {
        format!("{}.layers.{i}", Self::PREFIX)
    }

    fn norm() -> String {
        format!("{}.norm", Self::PREFIX)
    }
}

impl<B: Backend> TextModel<B> {
    pub fn load(loader: &mut Loader<B>, cfg: &TextConfig, tied: bool) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| DecoderLayer::load(loader, &TextNames::layer(i), i, cfg))
            .collect::<Result<Vec<_>>>()?;
        let lm_head = if tied {
            None
        } else {
            Some(loader.linear(TextNames::LM_HEAD, cfg.hidden_size, cfg.vocab_size, false)?)
        };
        Ok(Self {
            embed_tokens: loader.param(
                &TextNames::embed_tokens(),
                [cfg.vocab_size, cfg.hidden_size],
                Init::Normal(0.02),
            )?,
            layers,
            norm: RmsNorm::load(
                loader,
                &TextNames::norm(),
                cfg.hidden_size,
                cfg.rms_norm_eps,
            )?,
            lm_head,
        })
    }

    pub fn save(&self, saver: &mut Saver) {
        saver.param(&TextNames::embed_tokens(), &self.embed_tokens);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.save(saver, &TextNames::layer(i));
        }
        self.norm.save(saver, &TextNames::norm());
        if let Some(head) = &self.lm_head {
            saver.linear(TextNames::LM_HEAD, head);
        }
    }

    /// Token embeddings `[N] → [N, D]`.
    pub fn embed(&self, ids: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        self.embed_tokens.val().select(0, ids)
    }

    /// Runs the decoder layers and the final norm.
    ///
    /// `x: [B, l, D]` input embeddings, `cos/sin: [B, l, hd]`, `mask: [B, 1, l, T]`;
    /// `deepstack[j]` is added after layer `j`. Returns normed hidden states `[B, l, D]`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        mut x: Tensor<B, 3>,
        cos: Tensor<B, 3>,
        sin: Tensor<B, 3>,
        mask: Tensor<B, 4>,
        mut cache: Option<&mut KvCache<B>>,
        deepstack: &[DeepStackInjection<B>],
        mut trace: Option<&mut Trace>,
    ) -> Tensor<B, 3> {
        let [b, l, d] = x.dims();
        // cos/sin come from the host in the default float dtype; the text rotary runs in the
        // activations' dtype (transformers casts them the same way).
        let dtype = x.dtype();
        let (cos, sin) = (
            to_dtype(cos, dtype).unsqueeze_dim(1),
            to_dtype(sin, dtype).unsqueeze_dim(1),
        );
        record(&mut trace, || "lm.inputs_embeds".into(), &x);
        for (i, layer) in self.layers.iter().enumerate() {
            let mut choices = Vec::new();
            let layer_cache = cache.as_deref_mut().map(|c| (c, i));
            x = layer.forward(
                x,
                &cos,
                &sin,
                &mask,
                layer_cache,
                trace.is_some().then_some(&mut choices),
            );
            record(&mut trace, || format!("lm.layer_{i}"), &x);
            if let Some(trace) = trace.as_deref_mut().filter(|_| !choices.is_empty()) {
                let k = choices[0].len();
                let flat: Vec<f32> = choices.iter().flatten().map(|&e| e as f32).collect();
                trace.entries.push((
                    format!("lm.layer_{i}.router_topk_idx"),
                    vec![choices.len(), k],
                    flat,
                ));
            }
            if let Some(inject) = deepstack.get(i) {
                let add = inject.rows.clone().select(0, inject.index.clone());
                x = x + add.reshape([b, l, d]);
            }
        }
        let x = self.norm.forward(x);
        record(&mut trace, || "lm.final_norm".into(), &x);
        x
    }

    /// LM head over rows: `[N, D] → [N, V]`.
    pub fn logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        match &self.lm_head {
            Some(head) => linear(head, hidden),
            // The transposed embedding is a view: cuBLAS reads it in place (op T).
            None => matmul(hidden, self.embed_tokens.val().transpose()),
        }
    }
}
