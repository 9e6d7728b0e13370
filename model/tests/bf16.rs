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
use common::B;
use temper_model::Qwen3Vl;

fn make_bf16_default<B: Backend>(device: &B::Device) {
    let int: IntDType = <B::IntElem as Element>::dtype().into();
    set_default_dtypes::<B>(device, FloatDType::BF16, int).unwrap();
}

#[test]
fn bf16_forward_drifts_from_f32_no_more_than_transformers_bf16() {
    let device = Default::default();
    make_bf16_default::<B>(&device);
    let checked =
        common::check_bf16_drift::<B>(&device, |dir| Qwen3Vl::<B>::load(dir, &device).unwrap());
    assert!(checked >= 5, "only {checked} bf16 cases found");
}
