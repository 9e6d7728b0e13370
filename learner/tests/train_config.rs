//! `temper train` config: the shipped configs parse, overrides apply, and every kind of bad
//! config fails with one error naming the key.

use std::path::Path;

use temper_learner::train::{ConfigError, TrainConfig};

fn tiny_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    std::fs::read_to_string(path).unwrap()
}

fn load(overrides: &[&str]) -> Result<TrainConfig, ConfigError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainConfig::from_toml_str(&tiny_text(), "configs/tiny.toml", &overrides)
}

fn error(overrides: &[&str]) -> String {
    load(overrides).unwrap_err().to_string()
}

#[test]
fn shipped_config_parses_and_overrides_apply() {
    let config = load(&[]).unwrap();
    assert_eq!(config.rl.loss.kind(), "gspo");
    let config = load(&[
        "rl.loss.kind=sapo",
        "rl.steps=17",
        "sft.optim.lr=5e-3",
        "seed=3",
        "rewards.0.weight=2.0",
    ])
    .unwrap();
    assert_eq!(config.rl.loss.kind(), "sapo");
    assert_eq!(config.rl.steps, 17);
    assert_eq!(config.sft.optim.lr, 5e-3);
    assert_eq!(config.seed, 3);
    // The written form reads back to the same config.
    let again = TrainConfig::from_toml_str(&config.to_toml(), "round trip", &[]).unwrap();
    assert_eq!(again, config);
}

#[test]
fn unknown_keys_are_named() {
    let e = error(&["rl.group_sise=4"]);
    assert!(e.contains("group_sise"), "{e}");
    let e = error(&["sft.optim.lrr=1"]);
    assert!(e.contains("lrr"), "{e}");
    let e = error(&["rl.loss.eps_hihg=0.1"]);
    assert!(e.contains("eps_hihg"), "{e}");
}

#[test]
fn wrong_types_are_named() {
    let e = error(&["rl.steps=\"many\""]);
    assert!(e.contains("steps"), "{e}");
    let e = error(&["rl.loss.kind=ppo"]);
    assert!(e.contains("ppo") || e.contains("kind"), "{e}");
}

#[test]
fn impossible_values_are_named() {
    let e = error(&["rl.group_size=1"]);
    assert!(e.contains("rl.group_size") && e.contains("gspo"), "{e}");
    let e = error(&["rl.mini_batches=3"]);
    assert!(e.contains("rl.mini_batches"), "{e}");
    let e = error(&["eval.examples=0"]);
    assert!(e.contains("eval.examples"), "{e}");
    let e = error(&["rl.optim.lr=-1"]);
    assert!(e.contains("rl.optim.lr"), "{e}");
    let e = error(&["rl.temperature=0"]);
    assert!(e.contains("rl.temperature"), "{e}");
    let e = error(&["rl.loss.eps_low=-0.1"]);
    assert!(e.contains("rl.loss") && e.contains("eps_low"), "{e}");
    let e = error(&["model.source=/no/such/dir"]);
    assert!(e.contains("model.source"), "{e}");
    let e = error(&["task.max_shapes=40"]);
    assert!(e.contains("max_shapes"), "{e}");
}

#[test]
fn malformed_overrides_are_explained() {
    let e = error(&["rl.steps"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = error(&["rewards.x.weight=1"]);
    assert!(e.contains("number"), "{e}");
    let e = error(&["rewards.5.weight=1"]);
    assert!(e.contains("past the array"), "{e}");
}
