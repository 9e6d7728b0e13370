//! bf16 forward and log-probs (burn-flex on the CPU, bf16 the device's default float) against
//! transformers' own bf16 run of the same cases (`golden_bf16.safetensors`, made by
//! `tools/golden/bf16_reference.py`) and the float32 golden logits.
//!
//! bf16 cannot match float32 to 1e-4; what it must do is drift from float32 no more than
//! transformers' bf16 does, which keeps RMSNorm, softmax and log-probs in float32. Its own
//! binary: the default dtype is per device and process-wide, and must be set before the first
//! tensor.

mod common;

use burn::prelude::*;
use burn::tensor::{Element, FloatDType, IntDType, set_default_dtypes};
use common::{B, Golden, fixtures, max_abs_diff};
use temper_model::Qwen3Vl;
use temper_model::safetensors_io::SafetensorsFile;
use temper_model::weights::host_f32;

/// Temper's bf16 drift from float32 may be at most this multiple of transformers' bf16 drift.
const DRIFT_RATIO: f32 = 1.25;

fn make_bf16_default<B: Backend>(device: &B::Device) {
    let int: IntDType = <B::IntElem as Element>::dtype().into();
    set_default_dtypes::<B>(device, FloatDType::BF16, int).unwrap();
}

#[test]
fn bf16_forward_drifts_from_f32_no_more_than_transformers_bf16() {
    let device = Default::default();
    make_bf16_default::<B>(&device);
    let (mut checked, mut failures) = (0, Vec::new());
    for dir in fixtures() {
        let Ok(reference) = SafetensorsFile::open(dir.join("golden_bf16.safetensors")) else {
            continue; // MoE fixtures: router choices may flip in bf16, so no bf16 reference
        };
        let golden = Golden::open(&dir);
        let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
        for case in golden.case_names() {
            let what = format!("{}/{case}", golden.name());
            let batch = golden.batch_on::<B>(&case, &device);
            let out = model.forward(&batch, None, None).unwrap();
            let [rows, len, _] = out.hidden.dims();

            // Log-probs of the next input ids: f32 whatever the model dtype.
            let targets = Tensor::<B, 2, Int>::from_data(
                TensorData::new(
                    batch
                        .input_ids
                        .iter()
                        .flat_map(|r| r[1..].iter().map(|&t| t as i64))
                        .collect(),
                    [rows, len - 1],
                ),
                &device,
            );
            let hidden = out.hidden.clone().narrow(1, 0, len - 1);
            let scores = model.token_scores(hidden, targets, 1.0, 1 << 20).logprobs;
            assert_eq!(
                scores.dtype(),
                burn::tensor::DType::F32,
                "{what}: log-probs not f32"
            );
            let scored = |i: usize| {
                let (r, t) = (i / (len - 1), i % (len - 1));
                batch.attention_mask[r][t] && batch.attention_mask[r][t + 1]
            };
            let ours = host_f32(scores);
            let (_, f32_lp) = golden.f32(&format!("{case}.token_logprobs"));
            let (_, hf_lp) = reference
                .read_f32(&format!("{case}.token_logprobs"))
                .unwrap();
            let (ours_lp_drift, hf_lp_drift) = (
                max_abs_diff(&ours, &f32_lp, scored),
                max_abs_diff(&hf_lp, &f32_lp, scored),
            );
            println!(
                "{what}: log-probs |temper bf16 − f32| {ours_lp_drift:.4}, |transformers bf16 − \
                 f32| {hf_lp_drift:.4}"
            );
            if ours_lp_drift > DRIFT_RATIO * hf_lp_drift {
                failures.push(format!(
                    "{what}: log-prob drift {ours_lp_drift} vs transformers' {hf_lp_drift}"
                ));
            }

            let logits = model.logits(out.hidden);
            assert_eq!(
                logits.dtype(),
                burn::tensor::DType::BF16,
                "{what}: not run in bf16"
            );
            let v = logits.dims()[2];
            let ours = host_f32(logits);
            let mask: Vec<bool> = batch.attention_mask.iter().flatten().copied().collect();
            let keep = |i: usize| mask[i / v];
            let (_, f32_logits) = golden.f32(&format!("{case}.logits"));
            let (_, hf_bf16) = reference.read_f32(&format!("{case}.logits")).unwrap();
            let ours_drift = max_abs_diff(&ours, &f32_logits, keep);
            let hf_drift = max_abs_diff(&hf_bf16, &f32_logits, keep);
            let to_hf = max_abs_diff(&ours, &hf_bf16, keep);
            println!(
                "{what}: |temper bf16 − f32| {ours_drift:.4}, |transformers bf16 − f32| \
                 {hf_drift:.4} (ratio {:.2}), |temper − transformers| (both bf16) {to_hf:.4}",
                ours_drift / hf_drift
            );
            if ours_drift > DRIFT_RATIO * hf_drift {
                failures.push(format!(
                    "{what}: drift {ours_drift} vs transformers' {hf_drift}"
                ));
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} bf16 cases found");
    assert!(failures.is_empty(), "bf16 drifts too far: {failures:#?}");
}
