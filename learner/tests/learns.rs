//! The trainer learns: short runs on the embedded tiny task whose loss, accuracy and reward move
//! the right way. A sign error in the wiring (loss, advantages, the optimiser step) makes them
//! move the wrong way or not at all, which `tests/train_cli.rs` (numbers only) would not see.
//!
//! Measured (this machine, debug profile): SFT loss 5.62 → 0.88 and held-out accuracy 0 → 0.2;
//! reward mean 0.086 → 0.484 (first vs last 4 RL steps); both tests together 17 s. Negating
//! the SFT loss or the advantages in `trainer.rs` has not yet been run against these tests.

mod common;

use std::path::Path;

use serde_json::{Map, Value};
use temper_learner::train::TrainConfig;
use temper_rewards::builtin::regex::RegexConfig;
use temper_rewards::{RewardConfig, RewardEntry};

fn config(overrides: &[&str]) -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainConfig::load(&path, &overrides).unwrap()
}

fn records(run_dir: &Path, stage: &str) -> Vec<Map<String, Value>> {
    common::metrics_records(run_dir)
        .into_iter()
        .filter(|r| r["stage"] == stage)
        .collect()
}

fn number(record: &Map<String, Value>, key: &str) -> f64 {
    record[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key}: {record:?}"))
}

fn eval_accuracy(run_dir: &Path, point: &str) -> f64 {
    let evals: Vec<_> = records(run_dir, "eval")
        .into_iter()
        .filter(|r| r["point"] == point)
        .collect();
    assert_eq!(evals.len(), 1, "one {point} evaluation");
    number(&evals[0], "accuracy")
}

/// 30 SFT steps: the cross-entropy of the last step is below 0.7× the first's, and the
/// held-out accuracy after SFT beats the randomly initialised policy's.
#[test]
fn sft_loss_falls_and_held_out_accuracy_beats_the_initial_policy() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&[
        "sft.steps=30",
        "sft.batch_size=16",
        "sft.optim.warmup_steps=2",
        "rl.steps=0",
        "eval.examples=40",
        "eval.batch_size=40",
        "eval.max_new_tokens=2",
        "checkpoint.every=0",
    ]);
    common::train_to_end(config, dir.path());
    let sft = records(dir.path(), "sft");
    assert_eq!(sft.len(), 30);
    let losses: Vec<f64> = sft.iter().map(|r| number(r, "loss")).collect();
    let (first, last) = (losses[0], losses[29]);
    assert!(
        last < 0.7 * first,
        "SFT loss {first:.4} → {last:.4} (want < 0.7×); all: {losses:.3?}"
    );
    let initial = eval_accuracy(dir.path(), "initial");
    let after_sft = eval_accuracy(dir.path(), "after_sft");
    assert!(
        after_sft > initial,
        "held-out accuracy {initial} (initial) → {after_sft} (after SFT)"
    );
    eprintln!("SFT loss {first:.4} → {last:.4}; accuracy {initial} → {after_sft}");
}

/// RL with a reward any policy can earn by always answering `1` (a regex on the response):
/// after a short SFT that teaches the answer format, GSPO raises the reward mean.
#[test]
fn rl_raises_the_mean_of_a_trivially_learnable_reward() {
    const STEPS: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&[
        "sft.steps=10",
        "sft.batch_size=16",
        "sft.optim.warmup_steps=2",
        "rl.steps=16",
        "rl.prompts_per_step=4",
        "rl.group_size=8",
        "rl.max_new_tokens=2",
        "rl.eval_every=0",
        "rl.optim.warmup_steps=1",
        "eval.examples=4",
        "eval.batch_size=4",
        "eval.max_new_tokens=2",
        "checkpoint.every=0",
    ]);
    config.rl.dynamic_sampling = None;
    let mut regex = RegexConfig::new(r"\A\s*1\s*\z");
    regex.full_match = false;
    config.rewards = vec![RewardEntry::new(RewardConfig::Regex(regex))];
    config.eval.metric = Some("regex".into());
    common::train_to_end(config, dir.path());
    let rl = records(dir.path(), "rl");
    assert_eq!(rl.len(), STEPS);
    let rewards: Vec<f64> = rl.iter().map(|r| number(r, "reward_mean")).collect();
    let window = 4;
    let mean = |xs: &[f64]| xs.iter().sum::<f64>() / xs.len() as f64;
    let (early, late) = (mean(&rewards[..window]), mean(&rewards[STEPS - window..]));
    assert!(
        late > early + 0.2,
        "reward mean {early:.3} (first {window} steps) → {late:.3} (last {window}); all: \
         {rewards:.3?}"
    );
    eprintln!("reward mean {early:.3} → {late:.3}: {rewards:.3?}");
}
