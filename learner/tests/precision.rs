//! Mixed precision (`model.precision = "bf16"`): every pass runs on a bf16 copy of f32 master
//! weights. Updates far below bf16's resolution must still reach the masters (what a pure-bf16
//! learner loses), and losses must track an f32 run of the same seed.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use burn::tensor::bf16;
use serde_json::{Map, Value};
use temper_learner::train::TrainConfig;
use temper_model::safetensors_io::SafetensorsFile;

fn config(precision: &str, sft_steps: usize, rl_steps: usize, lr: f64) -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let overrides: Vec<String> = vec![
        format!("model.precision={precision}"),
        format!("sft.steps={sft_steps}"),
        "sft.batch_size=6".into(),
        format!("sft.optim.lr={lr}"),
        "sft.optim.min_lr=0".into(),
        "sft.optim.warmup_steps=0".into(),
        format!("rl.steps={rl_steps}"),
        "rl.prompts_per_step=2".into(),
        "rl.group_size=4".into(),
        "rl.eval_every=0".into(),
        "rl.optim.warmup_steps=0".into(),
        "eval.examples=4".into(),
        "eval.batch_size=4".into(),
        "checkpoint.every=0".into(),
    ];
    TrainConfig::load(&path, &overrides).unwrap()
}

/// A finished run: its metrics records and its final checkpoint's weights by name.
struct Run {
    records: Vec<Map<String, Value>>,
    weights: BTreeMap<String, Vec<f32>>,
}

/// Trains to the end.
fn train(config: TrainConfig) -> Run {
    let dir = tempfile::tempdir().unwrap();
    common::train_to_end(config, dir.path());
    let file =
        SafetensorsFile::open(common::latest_checkpoint(dir.path()).join("model.safetensors"))
            .unwrap();
    let weights = file
        .names()
        .into_iter()
        .map(|name| {
            let values = file.read_f32(&name).unwrap().1;
            (name, values)
        })
        .collect();
    Run {
        records: common::metrics_records(dir.path()),
        weights,
    }
}

fn losses(records: &[Map<String, Value>], stage: &str) -> Vec<f64> {
    records
        .iter()
        .filter(|r| r["stage"] == stage)
        .filter_map(|r| r.get("loss").and_then(Value::as_f64))
        .collect()
}

#[test]
fn updates_below_bf16_resolution_reach_the_f32_masters() {
    let before = train(config("bf16", 0, 0, 1e-5)).weights;
    let after = train(config("bf16", 1, 0, 1e-5)).weights;
    let (mut changed, mut changed_in_bf16, mut total) = (0usize, 0usize, 0usize);
    for (name, old) in &before {
        let new = &after[name];
        for (a, b) in old.iter().zip(new) {
            total += 1;
            changed += usize::from(a != b);
            changed_in_bf16 += usize::from(bf16::from_f32(*a) != bf16::from_f32(*b));
        }
    }
    println!("moved: {changed} of {total} in f32, {changed_in_bf16} in bf16");
    let (changed, in_bf16) = (
        changed as f64 / total as f64,
        changed_in_bf16 as f64 / total as f64,
    );
    // AdamW moves every weight by about lr = 1e-5, far below bf16's step near 0.02 (~1e-4).
    assert!(changed > 0.9, "only {changed:.3} of the f32 weights moved");
    assert!(
        in_bf16 < 0.2,
        "{in_bf16:.3} of the weights moved in bf16: the update is not below bf16 resolution"
    );
}

#[test]
fn mixed_precision_losses_track_an_f32_run() {
    let f32_records = train(config("f32", 3, 2, 3e-3)).records;
    let bf16_records = train(config("bf16", 3, 2, 3e-3)).records;
    let (f32_sft, bf16_sft) = (losses(&f32_records, "sft"), losses(&bf16_records, "sft"));
    println!("sft losses: f32 {f32_sft:?}, bf16 {bf16_sft:?}");
    assert_ne!(
        f32_sft, bf16_sft,
        "the bf16 run computed exactly what f32 did: not in bf16"
    );
    assert_eq!(f32_sft.len(), 3);
    assert_eq!(bf16_sft.len(), 3);
    for (step, (a, b)) in f32_sft.iter().zip(&bf16_sft).enumerate() {
        assert!(
            (a - b).abs() <= 0.02 * a.abs(),
            "sft step {step}: f32 loss {a} vs bf16 {b}"
        );
    }
    let rl = bf16_records.iter().filter(|r| r["stage"] == "rl").count();
    assert_eq!(rl, 2, "the bf16 run must finish its RL steps");
    for record in bf16_records.iter().filter(|r| r["stage"] == "rl") {
        for (key, value) in record {
            if let Some(v) = value.as_f64() {
                assert!(v.is_finite(), "rl metric {key} = {v}");
            }
        }
    }
}
