//! Training-side forward: per-token log-probs and entropies equal an f64 host reference for any
//! chunk size, their gradients equal finite differences, and a packed row (two sequences, one
//! with an image) scores exactly like the two sequences run separately.

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

#[test]
fn token_score_gradients_equal_finite_differences() {
    type A = Autodiff<B>;
    let device = Default::default();
    let dir = data_dir().join("qwen3vl-tiny-a");
    let model = Qwen3Vl::<A>::load(&dir, &device).unwrap();
    let (b, l, d) = (2, 5, model.config.text_config.hidden_size);
    let values: Vec<f32> = (0..b * l * d).map(|i| ((i as f32) * 0.61).sin()).collect();
    let targets = Tensor::<A, 2, Int>::from_data(
        TensorData::new(vec![3i64, 99, 500, 7, 1000, 12, 13, 14, 15, 16], [b, l]),
        &device,
    );
    // loss = Σ w·logprob + Σ u·entropy, with fixed weights so every position matters differently.
    let loss_of = |hidden: Tensor<A, 3>| {
        let scores = model.token_scores(hidden, targets.clone(), 1.0, 3 * 1024);
        let w = Tensor::<A, 2>::from_data(
            TensorData::new(
                (0..b * l).map(|i| 1.0 + i as f32 * 0.1).collect::<Vec<_>>(),
                [b, l],
            ),
            &device,
        );
        let u = Tensor::<A, 2>::from_data(
            TensorData::new(
                (0..b * l)
                    .map(|i| 0.5 - i as f32 * 0.05)
                    .collect::<Vec<_>>(),
                [b, l],
            ),
            &device,
        );
        (scores.logprobs * w).sum() + (scores.entropy * u).sum()
    };
    let hidden = Tensor::<A, 3>::from_data(TensorData::new(values.clone(), [b, l, d]), &device)
        .require_grad();
    let grads = loss_of(hidden.clone()).backward();
    let analytic = host_f32(hidden.grad(&grads).unwrap());
    let eval = |vals: Vec<f32>| -> f64 {
        host_f32(loss_of(Tensor::from_data(
            TensorData::new(vals, [b, l, d]),
            &device,
        )))[0] as f64
    };
    let h = 1e-2f32;
    for &i in &[0usize, 17, 64, 200, 333, b * l * d - 1] {
        let mut plus = values.clone();
        plus[i] += h;
        let mut minus = values.clone();
        minus[i] -= h;
        let numeric = (eval(plus) - eval(minus)) / (2.0 * h as f64);
        let a = analytic[i] as f64;
        assert!(
            (a - numeric).abs() < 2e-2 * numeric.abs().max(1.0),
            "d loss / d hidden[{i}]: {a} vs {numeric}"
        );
    }
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
