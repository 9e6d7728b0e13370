//! Training-side forward: per-token log-probs and entropies equal an f64 host reference for any
//! chunk size, their gradients equal a hand-derived f64 gradient at every element, and a packed
//! row (two sequences, one with an image) scores exactly like the two sequences run separately.

mod common;

use burn::backend::Autodiff;
use burn::prelude::*;
use common::{B, Golden, data_dir};
use temper_model::logprobs::EntropyGrad;
use temper_model::weights::host_f32;
use temper_model::{Batch, Qwen3Vl};

fn tiny_a() -> (Golden, Qwen3Vl<B>) {
    let dir = data_dir().join("qwen3vl-tiny-a");
    (
        Golden::open(&dir),
        Qwen3Vl::<B>::load(&dir, &Default::default()).unwrap(),
    )
}

/// log-softmax and entropy of one row of logits, in f64.
fn reference(logits: &[f32], target: usize) -> (f64, f64) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - max).exp()).sum();
    let log_z = max + z.ln();
    let entropy = -logits
        .iter()
        .map(|&x| {
            let lp = x as f64 - log_z;
            lp.exp() * lp
        })
        .sum::<f64>();
    (logits[target] as f64 - log_z, entropy)
}

#[test]
fn token_scores_equal_an_f64_reference_for_every_chunk_size() {
    let (golden, model) = tiny_a();
    let device = Default::default();
    let batch = golden.batch("batch", &device);
    let out = model.forward(&batch, None, None).unwrap();
    let [b, l, _] = out.hidden.dims();
    let v = model.config.text_config.vocab_size;
    let logits = host_f32(model.logits(out.hidden.clone()));
    let targets: Vec<i64> = (0..b * l).map(|i| ((i * 37) % v) as i64).collect();
    let target_tensor =
        Tensor::<B, 2, Int>::from_data(TensorData::new(targets.clone(), [b, l]), &device);
    for budget in [v, 7 * v, 1 << 20] {
        let scores = model.token_scores(out.hidden.clone(), target_tensor.clone(), 1.0, budget);
        let (lp, ent) = (host_f32(scores.logprobs), host_f32(scores.entropy));
        for i in 0..b * l {
            let (ref_lp, ref_ent) = reference(&logits[i * v..(i + 1) * v], targets[i] as usize);
            assert!(
                (lp[i] as f64 - ref_lp).abs() < 1e-5,
                "budget {budget}, row {i}: {} vs {ref_lp}",
                lp[i]
            );
            assert!(
                (ent[i] as f64 - ref_ent).abs() < 1e-4,
                "budget {budget}, row {i}: entropy"
            );
        }
    }
    // Temperature divides the logits.
    let hot = model.token_scores(out.hidden.clone(), target_tensor, 2.0, v);
    let halved: Vec<f32> = logits[..v].iter().map(|x| x / 2.0).collect();
    let (ref_lp, _) = reference(&halved, targets[0] as usize);
    assert!((host_f32(hot.logprobs)[0] as f64 - ref_lp).abs() < 1e-5);
}

/// The output head in f64, read off the model itself: `logits(h) = bias + h · W`, with
/// `bias = logits(0)` and row `k` of `W` = `logits(e_k) − bias`. Returns (`W` as `[d][V]`, bias).
fn head_f64<BB: Backend>(model: &Qwen3Vl<BB>, d: usize) -> (Vec<Vec<f64>>, Vec<f64>) {
    let device = Default::default();
    let mut eye = vec![0.0f32; (d + 1) * d];
    for k in 0..d {
        eye[k * d + k] = 1.0;
    }
    let logits = host_f32(model.logits(Tensor::<BB, 3>::from_data(
        TensorData::new(eye, [1, d + 1, d]),
        &device,
    )));
    let v = logits.len() / (d + 1);
    let bias: Vec<f64> = logits[d * v..].iter().map(|&x| x as f64).collect();
    let w = (0..d)
        .map(|k| (0..v).map(|j| logits[k * v + j] as f64 - bias[j]).collect())
        .collect();
    (w, bias)
}

/// `Σ_i w_i·log p_i(t_i) + u_i·H_i` over rows `h_i` of `hidden` (`[rows][d]`) and its gradient
/// with respect to `hidden`, in f64, for `logits = bias + h·W`:
/// `∂/∂z_j = w(δ_jt − p_j) − u·p_j(log p_j + H)`, then `∂/∂h_k = Σ_j ∂/∂z_j · W_kj`.
fn loss_and_grad_f64(
    head: &(Vec<Vec<f64>>, Vec<f64>),
    hidden: &[f64],
    targets: &[usize],
    w: &[f64],
    u: &[f64],
) -> (f64, Vec<f64>) {
    let (weight, bias) = head;
    let d = weight.len();
    let mut loss = 0.0;
    let mut grad = vec![0.0; hidden.len()];
    for (i, &t) in targets.iter().enumerate() {
        let h = &hidden[i * d..(i + 1) * d];
        let z: Vec<f64> = (0..bias.len())
            .map(|j| bias[j] + (0..d).map(|k| h[k] * weight[k][j]).sum::<f64>())
            .collect();
        let max = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_z = max + z.iter().map(|&x| (x - max).exp()).sum::<f64>().ln();
        let logp: Vec<f64> = z.iter().map(|&x| x - log_z).collect();
        let entropy = -logp.iter().map(|&lp| lp.exp() * lp).sum::<f64>();
        loss += w[i] * logp[t] + u[i] * entropy;
        let dz: Vec<f64> = logp
            .iter()
            .enumerate()
            .map(|(j, &lp)| {
                let p = lp.exp();
                w[i] * (f64::from(u8::from(j == t)) - p) - u[i] * p * (lp + entropy)
            })
            .collect();
        for k in 0..d {
            grad[i * d + k] = dz.iter().zip(&weight[k]).map(|(g, w)| g * w).sum();
        }
    }
    (loss, grad)
}

/// The gradient of `Σ w·logprob + Σ u·entropy` through the chunked scorer equals the
/// hand-derived f64 gradient at every element of `hidden` (whose derivation is itself checked
/// by f64 central differences). Bound: f32 arithmetic over a vocabulary of ~1k terms; measured
/// worst error 3.8e-7·‖g‖∞ (printed), asserted at `|a − e| ≤ 1e-5·‖g‖∞ + 1e-4·|e|`,
/// far below the 5–105% slack of the old absolute 2e-2 finite-difference tolerance.
#[test]
fn token_score_gradients_equal_an_f64_reference() {
    type A = Autodiff<B>;
    let device = Default::default();
    let dir = data_dir().join("qwen3vl-tiny-a");
    let model = Qwen3Vl::<A>::load(&dir, &device).unwrap();
    let (b, l, d) = (2, 5, model.config.text_config.hidden_size);
    let values: Vec<f32> = (0..b * l * d).map(|i| ((i as f32) * 0.61).sin()).collect();
    let target_ids = [3usize, 99, 500, 7, 1000, 12, 13, 14, 15, 16];
    let targets = Tensor::<A, 2, Int>::from_data(
        TensorData::new(
            target_ids.iter().map(|&t| t as i64).collect::<Vec<_>>(),
            [b, l],
        ),
        &device,
    );
    // loss = Σ w·logprob + Σ u·entropy, with fixed weights so every position matters differently.
    let w: Vec<f64> = (0..b * l).map(|i| 1.0 + i as f64 * 0.1).collect();
    let u: Vec<f64> = (0..b * l).map(|i| 0.5 - i as f64 * 0.05).collect();
    let as_tensor = |x: &[f64]| {
        Tensor::<A, 2>::from_data(
            TensorData::new(x.iter().map(|&v| v as f32).collect::<Vec<_>>(), [b, l]),
            &device,
        )
    };
    let hidden = Tensor::<A, 3>::from_data(TensorData::new(values.clone(), [b, l, d]), &device)
        .require_grad();
    let scores = model.token_scores(hidden.clone(), targets, 1.0, 3 * 1024);
    let loss = (scores.logprobs * as_tensor(&w)).sum() + (scores.entropy * as_tensor(&u)).sum();
    let ours_loss = host_f32(loss.clone())[0] as f64;
    let grads = loss.backward();
    let analytic = host_f32(hidden.grad(&grads).unwrap());

    let head = head_f64(&model, d);
    let hidden64: Vec<f64> = values.iter().map(|&v| v as f64).collect();
    let (ref_loss, reference) = loss_and_grad_f64(&head, &hidden64, &target_ids, &w, &u);
    assert!(
        (ours_loss - ref_loss).abs() <= 1e-5 * ref_loss.abs().max(1.0),
        "loss {ours_loss} vs f64 {ref_loss}"
    );

    // The f64 gradient is the derivative of the f64 loss (central differences, h = 1e-5:
    // truncation error ~h² and rounding ~1e-16/h, both far below 1e-7 relative).
    let h = 1e-5;
    for &i in &[0usize, 17, 64, 200, 333, b * l * d - 1] {
        let mut plus = hidden64.clone();
        plus[i] += h;
        let mut minus = hidden64.clone();
        minus[i] -= h;
        let numeric = (loss_and_grad_f64(&head, &plus, &target_ids, &w, &u).0
            - loss_and_grad_f64(&head, &minus, &target_ids, &w, &u).0)
            / (2.0 * h);
        assert!(
            (reference[i] - numeric).abs() <= 1e-7 * numeric.abs().max(1.0),
            "f64 reference d loss / d hidden[{i}]: {} vs central difference {numeric}",
            reference[i]
        );
    }

    let scale = reference.iter().fold(0.0f64, |m, g| m.max(g.abs()));
    assert!(
        scale > 0.1,
        "a gradient this small would make the bound meaningless"
    );
    let mut worst = 0.0f64;
    for (i, (&a, &e)) in analytic.iter().zip(&reference).enumerate() {
        let err = (a as f64 - e).abs();
        worst = worst.max(err / scale);
        assert!(
            err <= 1e-5 * scale + 1e-4 * e.abs(),
            "d loss / d hidden[{i}]: {a} vs f64 {e} (‖g‖∞ {scale})"
        );
    }
    eprintln!("worst gradient error: {worst:.2e} of ‖g‖∞ = {scale:.3}");
}

/// `EntropyGrad::Metric`: the same entropies, but no gradient through them — a loss over
/// log-probs + entropy then has the gradient of the log-prob term alone.
#[test]
fn metric_entropy_has_the_same_values_and_no_gradient() {
    type A = Autodiff<B>;
    let device = Default::default();
    let dir = data_dir().join("qwen3vl-tiny-a");
    let model = Qwen3Vl::<A>::load(&dir, &device).unwrap();
    let (b, l, d) = (2, 4, model.config.text_config.hidden_size);
    let values: Vec<f32> = (0..b * l * d).map(|i| ((i as f32) * 0.37).cos()).collect();
    let targets = Tensor::<A, 2, Int>::from_data(
        TensorData::new(vec![5i64, 80, 300, 9, 1001, 40, 41, 42], [b, l]),
        &device,
    );
    let grad_of = |entropy: EntropyGrad, with_entropy: bool| {
        let hidden = Tensor::<A, 3>::from_data(TensorData::new(values.clone(), [b, l, d]), &device)
            .require_grad();
        let scores =
            model.token_scores_suppressed(hidden.clone(), targets.clone(), 1.0, 1024, &[], entropy);
        let entropies = host_f32(scores.entropy.clone());
        let mut loss = scores.logprobs.sum();
        if with_entropy {
            loss = loss + scores.entropy.sum();
        }
        let grads = loss.backward();
        (entropies, host_f32(hidden.grad(&grads).unwrap()))
    };
    let (tracked_entropy, tracked_grad) = grad_of(EntropyGrad::Tracked, true);
    let (metric_entropy, metric_grad) = grad_of(EntropyGrad::Metric, true);
    let (_, logprob_only_grad) = grad_of(EntropyGrad::Tracked, false);
    assert_eq!(tracked_entropy, metric_entropy);
    assert_eq!(metric_grad, logprob_only_grad);
    let differ = tracked_grad
        .iter()
        .zip(&logprob_only_grad)
        .any(|(a, b)| (a - b).abs() > 1e-6);
    assert!(differ, "the tracked entropy must contribute a gradient");
}

#[test]
fn a_packed_row_scores_like_its_sequences_alone() {
    let (golden, model) = tiny_a();
    let device = Default::default();
    let text = golden.batch("text", &device);
    let image = golden.batch("image", &device);
    let alone =
        |batch: &Batch<B>| host_f32(model.logits(model.forward(batch, None, None).unwrap().hidden));
    let (text_logits, image_logits) = (alone(&text), alone(&image));

    let (lt, li) = (text.seq_len(), image.seq_len());
    let packed = Batch::<B> {
        input_ids: vec![[text.input_ids[0].clone(), image.input_ids[0].clone()].concat()],
        attention_mask: vec![vec![true; lt + li]],
        images: image.images.clone(),
        videos: None,
        segment_ids: Some(vec![[vec![0; lt], vec![1; li]].concat()]),
    };
    let out = model.forward(&packed, None, None).unwrap();
    assert_eq!(
        out.rope.positions[0][0][lt], 0,
        "positions restart in the second sequence"
    );
    let packed_logits = host_f32(model.logits(out.hidden));
    let expected = [text_logits, image_logits].concat();
    let diff = packed_logits
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(diff < 1e-5, "packed vs separate logits differ by {diff}");

    let mut cache = model.new_cache(1, 64);
    assert!(
        model.prefill(&packed, &mut cache).is_err(),
        "packed rows cannot be cached"
    );
}
