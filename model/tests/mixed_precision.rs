//! A bf16 compute copy (`Qwen3Vl::cast`) of an f32 model on a device whose default float type
//! stays f32 — what mixed-precision training runs forward and backward on. Host-made inputs
//! (masks, rotary tables, pixels, the KV cache) must follow the weights' dtype, and the copy
//! must be as accurate as a model loaded in bf16 (`tests/bf16.rs`). (The two are not
//! identical on burn-flex: its f32→bf16 cast rounds a few values next to a tie the other way —
//! 6 in 100,000 in a check — while loading rounds to nearest.)

mod common;

use burn::module::{Module, ModuleVisitor, Param, ParamId};
use burn::prelude::*;
use burn::tensor::{DType, FloatDType};
use common::{B, Golden};
use temper_model::{Qwen3Vl, SamplingParams};

#[test]
fn a_bf16_copy_of_an_f32_model_drifts_no_more_than_transformers_bf16() {
    let device = Default::default();
    let checked = common::check_bf16_drift::<B>(&device, |dir| {
        let master = Qwen3Vl::<B>::load(dir, &device).unwrap();
        assert_eq!(master.float_dtype(), DType::F32);
        master.cast(FloatDType::BF16)
    });
    assert!(checked >= 5, "only {checked} bf16 cases found");
}

#[test]
fn a_bf16_copy_keeps_parameter_ids_and_generates_from_a_bf16_cache() {
    let device = Default::default();
    let dir = common::data_dir().join("qwen3vl-tiny-a");
    let master = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let copy = master.cast(FloatDType::BF16);
    assert_eq!(param_ids(&copy), param_ids(&master));
    assert_eq!(copy.new_cache(1, 4).dtype(), DType::BF16);

    let batch = Golden::open(&dir).batch("image", &device);
    let params = SamplingParams {
        max_new_tokens: 6,
        seed: 3,
        ..SamplingParams::default()
    };
    let out = copy.generate(&batch, 2, &[params]).unwrap();
    assert_eq!(out.len(), 2);
    for g in &out {
        assert_eq!(g.tokens.len(), 6);
        assert!(g.logprobs.iter().all(|lp| lp.is_finite() && *lp <= 0.0));
    }
}

fn param_ids<M: Module<B>>(model: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor<B> for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.id);
        }
    }
    let mut ids = Ids(Vec::new());
    model.visit(&mut ids);
    ids.0
}
