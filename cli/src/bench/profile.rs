//! `decode_profile`: where one decode step's time goes, piece by piece.
//!
//! The H100 run (bench/results/h100-2026-11-26) measured 62 ms per decode step at batch 1 and
//! ~180 ms at batch 64 for the 2B shape, whatever the cache length, against ~2 ms of weight
//! reads: the time is not in the GEMMs' memory traffic. This case times each piece of one
//! decoder layer at decode shape (batch `B`, one new token, `--prompt-len` cached positions), in
//! isolation and back to back (`reps` launches, one device sync), multiplies by the pieces per
//! step, and sets the sum against a measured `decode_step`; plus the cost of one tiny op, which
//! bounds what a step of a few thousand kernel launches can cost before any arithmetic.

use std::time::Instant;

use anyhow::Result;
use burn::prelude::*;
use burn::tensor::activation::silu;
use burn::tensor::{DType, Distribution};
use serde_json::{Map, Value, json};
use temper_model::Qwen3Vl;
use temper_model::nn::{MASK_VALUE, apply_rotary, softmax_f32, to_dtype};
use temper_model::text::FeedForward;

use super::{BenchArgs, Report, argmax_rows, now_unix, prompt_ids, sync, text_batch};

/// Calls per timed piece (after two warm-up calls).
const REPS: usize = 20;
/// Launches of the tiny op that measures per-op overhead.
const TINY_REPS: usize = 500;

/// Times `reps` back-to-back calls of `piece` between device syncs; ms per call.
fn time_piece<B: Backend, T>(
    device: &B::Device,
    reps: usize,
    mut piece: impl FnMut() -> T,
) -> Result<f64> {
    for _ in 0..2 {
        drop(piece());
    }
    sync::<B>(device)?;
    let start = Instant::now();
    for _ in 0..reps {
        drop(piece());
    }
    sync::<B>(device)?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
}

pub(super) fn decode_profile_case<B: Backend>(
    model: &Qwen3Vl<B>,
    b: usize,
    args: &BenchArgs,
    bound: usize,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    let start_unix = now_unix();
    let t = &model.config.text_config;
    let (d, hd) = (t.hidden_size, t.head_dim());
    let (nh, nkv) = (t.num_attention_heads, t.num_key_value_heads);
    let layers = t.num_hidden_layers;
    let cached = args.prompt_len;
    let dtype = model.float_dtype();
    let layer = &model.language.layers[0];
    let attn = &layer.self_attn;
    let random = |shape: [usize; 4]| -> Tensor<B, 4> {
        to_dtype(
            Tensor::random(shape, Distribution::Normal(0.0, 1.0), device),
            dtype,
        )
    };

    // One decode step's inputs: x [B, 1, D], rotary tables, the mask over `cached + 1` keys,
    // and a cache buffer with room for more (read through a narrowed view, as `KvCache` does).
    let x: Tensor<B, 3> = random([1, b, 1, d]).reshape([b, 1, d]);
    let cos = random([b, 1, 1, hd]);
    let sin = random([b, 1, 1, hd]);
    let total = cached + 1;
    let keys = random([b, nkv, total + 64, hd]);
    let values = random([b, nkv, total + 64, hd]);
    let mask = Tensor::<B, 4>::zeros([b, 1, 1, total], (device, DType::F32));
    let q_step: Tensor<B, 4> = random([b, nh, 1, hd]);
    let scale = (hd as f64).powf(-0.5);
    let g = nh / nkv;

    let mut pieces: Vec<(&str, usize, f64)> = Vec::new();
    let mut add = |name: &'static str, per_step: usize, ms: f64| pieces.push((name, per_step, ms));

    add(
        "rms_norm (input, post-attention)",
        2 * layers,
        time_piece::<B, _>(device, REPS, || layer.input_layernorm.forward(x.clone()))?,
    );
    add(
        "q/k/v projections (3 GEMMs)",
        layers,
        time_piece::<B, _>(device, REPS, || {
            let q = attn.q_proj.forward(x.clone());
            let k = attn.k_proj.forward(x.clone());
            let v = attn.v_proj.forward(x.clone());
            (q, k, v)
        })?,
    );
    add(
        "q/k norms + rotary",
        layers,
        time_piece::<B, _>(device, REPS, || {
            let q = attn.q_norm.forward(q_step.clone());
            let k = attn.k_norm.forward(q_step.clone().narrow(1, 0, nkv));
            (
                apply_rotary(q, cos.clone(), sin.clone()),
                apply_rotary(k, cos.clone(), sin.clone()),
            )
        })?,
    );
    let new_kv = random([b, nkv, 1, hd]);
    let mut buffer = Some(keys.clone());
    add(
        "KV cache write (keys + values)",
        layers,
        2.0 * time_piece::<B, _>(device, REPS, || {
            let written = buffer
                .take()
                .expect("buffer")
                .slice_assign([0..b, 0..nkv, cached..cached + 1, 0..hd], new_kv.clone());
            buffer = Some(written);
        })?,
    );
    add(
        "attention: q·kᵀ, f32 softmax, ·v",
        layers,
        time_piece::<B, _>(device, REPS, || {
            let k = keys.clone().narrow(2, 0, total);
            let v = values.clone().narrow(2, 0, total);
            let q = q_step.clone().reshape([b, nkv, g, hd]);
            let scores = q.matmul(k.swap_dims(2, 3)) * scale;
            let probs = softmax_f32(
                scores.reshape([b, nkv, g, 1, total]),
                Some(mask.clone().reshape([b, 1, 1, 1, total])),
                4,
            );
            probs.reshape([b, nkv, g, total]).matmul(v)
        })?,
    );
    let heads_out: Tensor<B, 3> = random([1, b, 1, nh * hd]).reshape([b, 1, nh * hd]);
    add(
        "o projection",
        layers,
        time_piece::<B, _>(device, REPS, || attn.o_proj.forward(heads_out.clone()))?,
    );
    if let FeedForward::Dense(mlp) = &layer.mlp {
        add(
            "MLP: gate, up, silu·up, down",
            layers,
            time_piece::<B, _>(device, REPS, || {
                let gate = silu(mlp.gate_proj.forward(x.clone()));
                mlp.down_proj.forward(gate * mlp.up_proj.forward(x.clone()))
            })?,
        );
    }
    add(
        "residual adds",
        2 * layers,
        time_piece::<B, _>(device, REPS, || x.clone() + x.clone())?,
    );
    let hidden: Tensor<B, 2> = x.clone().reshape([b, d]);
    add(
        "LM head + final norm",
        1,
        time_piece::<B, _>(device, REPS, || {
            model
                .language
                .logits(model.language.norm.forward(hidden.clone()))
        })?,
    );
    let masked = Tensor::<B, 4>::full([b, 1, 1, total], MASK_VALUE, (device, DType::F32));
    add(
        "mask + rotary tables upload",
        1,
        time_piece::<B, _>(device, REPS, || {
            let host: Vec<f32> = vec![0.0; b * total];
            let m = Tensor::<B, 4>::from_data(TensorData::new(host, [b, 1, 1, total]), device);
            m + masked.clone()
        })?,
    );

    // The real thing: decode steps on a cache prefilled with `cached` tokens.
    let batch = text_batch::<B>(prompt_ids(b, cached, bound));
    let mut cache = model.new_cache(b, cached + 2 * REPS + 4);
    let mut ids = argmax_rows(model.prefill(&batch, &mut cache)?);
    let step_ms = time_piece::<B, _>(device, REPS, || {
        ids = argmax_rows(model.decode_step(&ids, &mut cache));
    })?;

    // Per-op overhead: a one-element add, launched back to back.
    let one = Tensor::<B, 1>::ones([1], device);
    let tiny_us = 1e3 * time_piece::<B, _>(device, TINY_REPS, || one.clone() + 1.0)?;

    let sum_ms: f64 = pieces.iter().map(|(_, n, ms)| *n as f64 * ms).sum();
    let mut components = Map::new();
    for (name, per_step, ms) in &pieces {
        components.insert(
            name.to_string(),
            json!({"ms_per_call": ms, "calls_per_step": per_step, "ms_per_step": *per_step as f64 * ms}),
        );
    }
    let breakdown: Vec<String> = pieces
        .iter()
        .map(|(name, n, ms)| format!("{name} {:.2}", *n as f64 * ms))
        .collect();
    report.push(json!({
        "case": format!("decode_profile_b{b}"),
        "kind": "decode_profile",
        "batch": b,
        "cached": cached,
        "components": Value::Object(components),
        "sum_of_pieces_ms": sum_ms,
        "decode_step_ms": step_ms,
        "tiny_op_us": tiny_us,
        "seconds": step_ms * 1e-3,
        "tokens_per_s": b as f64 / (step_ms * 1e-3),
        "notes": format!(
            "step {step_ms:.2} ms, pieces sum {sum_ms:.2} ms (ms per step: {}); one tiny op {tiny_us:.1} µs",
            breakdown.join(", ")
        ),
        "start_unix": start_unix,
        "end_unix": now_unix(),
    }))
}
