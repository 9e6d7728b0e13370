//! Parity with HF transformers on every golden fixture in `tests/data`: position ids exact,
//! vision and decoder intermediates, logits (masked by attention) and log-probs within 1e-4.

mod common;

use burn::prelude::Backend;
use common::{B, Golden, fixtures, max_abs_diff};
use temper_model::Qwen3Vl;
use temper_model::trace::Trace;
use temper_model::weights::host_f32;

const TOL: f32 = 1e-4;

#[test]
fn forward_matches_transformers_on_every_fixture() {
    check_fixtures::<B>(TOL);
}

/// The same parity on the GPU (f32): `cargo test --features cuda --test parity -- --ignored`
/// on a machine with a CUDA device.
#[cfg(feature = "cuda")]
#[test]
#[ignore = "needs a CUDA device"]
fn cuda_forward_matches_transformers_on_every_fixture() {
    check_fixtures::<temper_model::backend::Cuda>(TOL);
}

fn check_fixtures<B: Backend>(tol: f32) {
    let device = Default::default();
    let fixtures = fixtures();
    assert!(!fixtures.is_empty(), "no fixtures found");
    for dir in fixtures {
        let golden = Golden::open(&dir);
        let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
        for case in golden.case_names() {
            let what = format!("{}/{case}", golden.name());
            let batch = golden.batch_on::<B>(&case, &device);
            let mut trace = Trace::default();
            let out = model.forward(&batch, None, Some(&mut trace)).unwrap();

            let (_, positions) = golden.i64(&format!("{case}.position_ids"));
            let mask: Vec<bool> = batch.attention_mask.iter().flatten().copied().collect();
            let ours = out.rope.flat();
            for (i, (&a, &b)) in ours.iter().zip(&positions).enumerate() {
                // Padded positions are meaningless to the model; HF stores 1 or 0 there.
                if mask[i % mask.len()] {
                    assert_eq!(a, b, "{what}: position id {i}");
                }
            }
            let (_, deltas) = golden.i64(&format!("{case}.rope_deltas"));
            assert_eq!(out.rope.rope_deltas, deltas, "{what}: rope_deltas");

            let mut compared = 0;
            for (name, shape, values) in &trace.entries {
                let key = format!("{case}.{name}");
                if !golden.has(&key) {
                    continue;
                }
                compared += 1;
                if name.ends_with("router_topk_idx") {
                    // Expert choices: exact, at real tokens.
                    let (gshape, expected) = golden.i64(&key);
                    assert_eq!(shape, &gshape, "{what}: shape of {name}");
                    let k = gshape[1];
                    for (i, (&a, &b)) in values.iter().zip(&expected).enumerate() {
                        if mask[i / k] {
                            assert_eq!(a as i64, b, "{what}: {name}[{i}]");
                        }
                    }
                    continue;
                }
                let (gshape, expected) = golden.f32(&key);
                assert_eq!(shape, &gshape, "{what}: shape of {name}");
                let per_row = values.len() / mask.len().max(1);
                let keep = |i: usize| !name.starts_with("lm.") || mask[i / per_row];
                let diff = max_abs_diff(values, &expected, keep);
                assert!(diff < tol, "{what}: {name} differs by {diff}");
            }
            let layers = model.config.text_config.num_hidden_layers;
            assert!(
                compared >= layers + 2,
                "{what}: only {compared} intermediates compared"
            );

            let logits = model.logits(out.hidden);
            let [_, l, v] = logits.dims();
            let (_, expected) = golden.f32(&format!("{case}.logits"));
            let diff = max_abs_diff(&host_f32(logits), &expected, |i| mask[i / v]);
            assert!(diff < tol, "{what}: logits differ by {diff}");
            println!("{what}: logits max-abs diff {diff:.2e} over {l} positions");
        }
    }
}
