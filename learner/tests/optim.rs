//! AdamW against torch.optim.AdamW (tools/golden/adamw_reference.py → data/adamw.json), and its
//! state surviving a save/load into a freshly built module (new `ParamId`s), as on resume.

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;
use serde_json::Value;
use temper_learner::optim::{AdamW, AdamWConfig, parameter_paths};
use temper_model::backend::{Cpu, CpuAutodiff};

type B = CpuAutodiff;

#[derive(Module, Debug)]
struct TwoParams<B: Backend> {
    matrix: Param<Tensor<B, 2>>,
    vector: Param<Tensor<B, 1>>,
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn build(matrix: Vec<f32>, vector: Vec<f32>) -> TwoParams<B> {
    let device = Default::default();
    TwoParams {
        matrix: Param::from_tensor(Tensor::from_data(TensorData::new(matrix, [3, 4]), &device)),
        vector: Param::from_tensor(Tensor::from_data(TensorData::new(vector, [4]), &device)),
    }
}

/// Gradients equal to `grads` exactly: d/dp Σ p·g = g.
fn grads_of(model: &TwoParams<B>, step: &Value) -> GradientsParams {
    let device = Default::default();
    let g = &step["grads"];
    let gm = Tensor::<B, 2>::from_data(TensorData::new(floats(&g["matrix"]), [3, 4]), &device);
    let gv = Tensor::<B, 1>::from_data(TensorData::new(floats(&g["vector"]), [4]), &device);
    let loss = (model.matrix.val() * gm).sum() + (model.vector.val() * gv).sum();
    GradientsParams::from_grads(loss.backward(), model)
}

fn assert_close(actual: Tensor<Cpu, 1>, expected: &Value, what: &str) {
    let actual: Vec<f32> = actual.into_data().to_vec().unwrap();
    for (i, (a, e)) in actual.iter().zip(floats(expected)).enumerate() {
        assert!((a - e).abs() < 2e-6, "{what}[{i}]: {a} vs torch {e}");
    }
}

fn golden() -> Value {
    let text = include_str!("data/adamw.json");
    serde_json::from_str(text).unwrap()
}

fn config(golden: &Value) -> AdamWConfig {
    let c = &golden["config"];
    AdamWConfig {
        beta1: c["beta1"].as_f64().unwrap(),
        beta2: c["beta2"].as_f64().unwrap(),
        eps: c["eps"].as_f64().unwrap(),
        weight_decay: c["weight_decay"].as_f64().unwrap(),
    }
}

#[test]
fn adamw_matches_torch_with_decay_on_matrices_only() {
    let golden = golden();
    let mut model = build(
        floats(&golden["initial"]["matrix"]),
        floats(&golden["initial"]["vector"]),
    );
    let mut optimizer = AdamW::new(config(&golden));
    for (k, step) in golden["steps"].as_array().unwrap().iter().enumerate() {
        let grads = grads_of(&model, step);
        model = optimizer.step::<B, _>(step["lr"].as_f64().unwrap(), model, grads);
        let what = format!("step {k}");
        assert_close(
            model.matrix.val().inner().reshape([12]),
            &step["after"]["matrix"],
            &format!("{what} matrix"),
        );
        assert_close(
            model.vector.val().inner(),
            &step["after"]["vector"],
            &format!("{what} vector"),
        );
    }
}

#[test]
fn state_saved_and_loaded_continues_exactly() {
    let golden = golden();
    let steps = golden["steps"].as_array().unwrap();
    let mut model = build(
        floats(&golden["initial"]["matrix"]),
        floats(&golden["initial"]["vector"]),
    );
    let mut optimizer = AdamW::new(config(&golden));
    for step in &steps[..2] {
        let grads = grads_of(&model, step);
        model = optimizer.step::<B, _>(step["lr"].as_f64().unwrap(), model, grads);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("optimizer.safetensors");
    optimizer.save(&path).unwrap();

    // A "restarted" process: the module is rebuilt from values (new ParamIds).
    let values = |t: Tensor<Cpu, 1>| -> Vec<f32> { t.into_data().to_vec().unwrap() };
    let mut restarted = build(
        values(model.matrix.val().inner().reshape([12])),
        values(model.vector.val().inner()),
    );
    let device = Default::default();
    let mut reloaded = AdamW::<Cpu>::load(config(&golden), &path, &device).unwrap();
    assert_eq!(reloaded.steps(), 2);
    let step = &steps[2];
    let grads = grads_of(&restarted, step);
    restarted = reloaded.step::<B, _>(step["lr"].as_f64().unwrap(), restarted, grads);
    assert_close(
        restarted.matrix.val().inner().reshape([12]),
        &step["after"]["matrix"],
        "resumed matrix",
    );
    assert_close(
        restarted.vector.val().inner(),
        &step["after"]["vector"],
        "resumed vector",
    );
    assert_eq!(
        parameter_paths::<B, _>(&restarted),
        vec!["matrix", "vector"]
    );
}
