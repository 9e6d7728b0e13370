//! Gradient accumulation in the trainer: an RL update computed one row at a time
//! (`rl.micro_batch_rows = 1`) gives the loss, gradient norm and updated weights of the same
//! update computed in one pass (`= rows`), for each aggregation: GSPO (sequence mean of token
//! means), DAPO (token mean over the batch) and Dr.GRPO (token sum over a constant).
//!
//! Both runs sample the same rollouts (the same seed and weights up to the first update), so
//! any difference comes from how the micro-batches' losses are weighted and summed. Responses
//! of different lengths make the three weightings differ (checked below), so a per-micro-batch
//! normalisation error cannot hide behind equal-length rows.

mod common;

use std::path::Path;

use temper_learner::objectives::{DapoConfig, DrGrpoConfig, GspoConfig, PolicyLoss};
use temper_learner::train::TrainConfig;
use temper_model::safetensors_io::SafetensorsFile;
use temper_rewards::builtin::regex::RegexConfig;
use temper_rewards::{RewardConfig, RewardEntry};

const PROMPTS: usize = 2;
const GROUP: usize = 4;
const ROWS: usize = PROMPTS * GROUP;
const MAX_NEW_TOKENS: usize = 6;

fn config(loss: PolicyLoss, micro_batch_rows: usize) -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let overrides: Vec<String> = [
        "sft.steps=2".to_string(),
        "sft.batch_size=8".into(),
        "sft.optim.warmup_steps=1".into(),
        "rl.steps=1".into(),
        format!("rl.prompts_per_step={PROMPTS}"),
        format!("rl.group_size={GROUP}"),
        format!("rl.max_new_tokens={MAX_NEW_TOKENS}"),
        // A hot sampler: responses of varied lengths and content.
        "rl.temperature=3.0".into(),
        "rl.eval_every=0".into(),
        "rl.optim.warmup_steps=0".into(),
        // AdamW's first update is lr·g/(|g| + ε): with the default ε = 1e-8 an entry with |g| ≈ ε
        // turns the f32 reassociation of the gradient sums (~1e-7 relative) into a few percent
        // of lr. With ε = 1e-3 the update is smooth in g, so equal gradients must give updated
        // weights equal to 1e-6, as the accumulation contract says.
        "rl.optim.adamw.eps=1e-3".into(),
        format!("rl.micro_batch_rows={micro_batch_rows}"),
        "eval.examples=1".into(),
        "eval.batch_size=1".into(),
        "eval.max_new_tokens=1".into(),
        "checkpoint.every=0".into(),
    ]
    .to_vec();
    let mut config = TrainConfig::load(&path, &overrides).unwrap();
    config.rl.dynamic_sampling = None;
    config.rl.loss = loss;
    // Rewards that differ within a group whatever the policy: the response has a letter.
    config.rewards = vec![RewardEntry::new(RewardConfig::Regex(RegexConfig::new(
        "[A-Za-z]",
    )))];
    // A regex is no answer rule: the accuracy must name it.
    config.eval.metric = Some("regex".into());
    config
}

/// The RL step's record and the weights after the update.
struct Step {
    loss: f64,
    grad_norm: f64,
    response_length_mean: f64,
    advantage_zero_fraction: f64,
    weights: Vec<(String, Vec<f32>)>,
}

fn run(loss: PolicyLoss, micro_batch_rows: usize) -> Step {
    let dir = tempfile::tempdir().unwrap();
    common::train_to_end(config(loss, micro_batch_rows), dir.path());
    let records: Vec<_> = common::metrics_records(dir.path())
        .into_iter()
        .filter(|r| r["stage"] == "rl")
        .collect();
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(r["updates"].as_u64(), Some(1), "{r:?}");
    let number = |key: &str| r[key].as_f64().unwrap_or_else(|| panic!("{key}: {r:?}"));
    let file =
        SafetensorsFile::open(common::latest_checkpoint(dir.path()).join("model.safetensors"))
            .unwrap();
    let mut names = file.names();
    names.sort();
    let weights = names
        .into_iter()
        .map(|name| {
            let values = file.read_f32(&name).unwrap().1;
            (name, values)
        })
        .collect();
    Step {
        loss: number("loss"),
        grad_norm: number("grad_norm"),
        response_length_mean: number("response_length_mean"),
        advantage_zero_fraction: number("advantage_zero_fraction"),
        weights,
    }
}

/// `micro_batch_rows = GROUP` (one group per micro-batch) and `= ROWS` agree: loss, grad norm and
/// updated weights within 1e-6 (f32 sums in another order); both lay each group out as
/// continuations of its shared prompt. `micro_batch_rows = 1` (every row alone, so laid out
/// joined) agrees within 1e-5: the two layouts' gradients differ by f32 reassociation, ~1e-6
/// relative (`rollout_batch.rs` compares the layouts directly).
fn check(objective: PolicyLoss) {
    let loss = objective.kind();
    let whole = run(objective, ROWS);
    // The update is a real one: rewards differ, so advantages are not all zero.
    assert!(whole.advantage_zero_fraction < 1.0, "{loss}: no signal");
    assert!(
        whole.grad_norm > 1e-3,
        "{loss}: grad norm {}",
        whole.grad_norm
    );
    for (micro, tolerance) in [(GROUP, 1e-6), (1, 1e-5)] {
        let rows = run(objective, micro);
        assert_eq!(whole.response_length_mean, rows.response_length_mean);
        assert!(
            (whole.loss - rows.loss).abs() <= tolerance * whole.loss.abs().max(1.0),
            "{loss}: loss {} (one pass) vs {} ({micro} rows at a time)",
            whole.loss,
            rows.loss
        );
        assert!(
            (whole.grad_norm - rows.grad_norm).abs() <= tolerance * whole.grad_norm.max(1.0),
            "{loss}: grad norm {} vs {} ({micro} rows at a time)",
            whole.grad_norm,
            rows.grad_norm
        );
        assert_eq!(whole.weights.len(), rows.weights.len());
        let mut worst = (0.0f32, String::new());
        for ((name, a), (other, b)) in whole.weights.iter().zip(&rows.weights) {
            assert_eq!(name, other);
            for (x, y) in a.iter().zip(b) {
                let diff = (x - y).abs();
                if diff > worst.0 {
                    worst = (diff, name.clone());
                }
            }
        }
        assert!(
            worst.0 as f64 <= tolerance,
            "{loss}: updated weights differ by {} in {} ({micro} rows at a time)",
            worst.0,
            worst.1
        );
    }
}

#[test]
fn gspo_micro_batches_equal_one_pass() {
    check(PolicyLoss::Gspo(GspoConfig::default()));
}

#[test]
fn dapo_micro_batches_equal_one_pass() {
    check(PolicyLoss::Dapo(DapoConfig::default()));
}

#[test]
fn dr_grpo_micro_batches_equal_one_pass() {
    check(PolicyLoss::DrGrpo(DrGrpoConfig::new(MAX_NEW_TOKENS)));
}
