//! DAPO's dynamic sampling in the trainer: only groups whose rewards differ are trained on, more
//! prompts are sampled (in rounds) to fill the step, and the data cursor moves past every
//! prompt sampled, so no prompt is used twice.

mod common;

use std::path::Path;

use serde_json::{Map, Value};
use temper_learner::train::state::RL_STREAM_START;
use temper_learner::train::{TrainConfig, TrainerState};

const PROMPTS: usize = 3;
const MAX_ROUNDS: usize = 2;

fn config(dynamic: bool) -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let mut overrides: Vec<String> = [
        "sft.steps=3",
        "sft.batch_size=6",
        "rl.steps=5",
        "rl.group_size=4",
        "rl.eval_every=0",
        "eval.examples=4",
        "eval.batch_size=4",
        "checkpoint.every=0",
        "sft.optim.warmup_steps=1",
        "rl.optim.warmup_steps=1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    overrides.push(format!("rl.prompts_per_step={PROMPTS}"));
    overrides.push(format!("rl.dynamic_sampling.max_rounds={MAX_ROUNDS}"));
    let mut config = TrainConfig::load(&path, &overrides).unwrap();
    if !dynamic {
        config.rl.dynamic_sampling = None;
    }
    config
}

fn rl_records(run_dir: &Path) -> Vec<Map<String, Value>> {
    common::metrics_records(run_dir)
        .into_iter()
        .filter(|r| r["stage"] == "rl")
        .collect()
}

fn final_state(run_dir: &Path) -> TrainerState {
    let state = common::latest_checkpoint(run_dir).join("trainer_state.json");
    serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap()
}

fn train(run_dir: &Path, dynamic: bool) {
    common::train_to_end(config(dynamic), run_dir);
}

#[test]
fn trains_only_on_groups_whose_rewards_differ() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), true);
    let records = rl_records(dir.path());
    assert_eq!(records.len(), 5);
    let mut rounds_total = 0;
    let (mut kept_total, mut second_rounds) = (0, 0);
    for r in &records {
        let rounds = r["dynamic_sampling/rounds"].as_u64().unwrap() as usize;
        let kept = r["dynamic_sampling/kept_groups"].as_u64().unwrap() as usize;
        assert!((1..=MAX_ROUNDS).contains(&rounds), "{r:?}");
        assert!(kept <= PROMPTS, "{r:?}");
        // Every informative group sampled is kept, up to the step's `prompts_per_step`.
        let sampled = rounds * PROMPTS;
        let informative = r["dynamic_sampling/informative_fraction"].as_f64().unwrap();
        let informative = (informative * sampled as f64).round() as usize;
        assert_eq!(kept, informative.min(PROMPTS), "{r:?}");
        // Another round runs only while the step is short of groups.
        if kept < PROMPTS {
            assert_eq!(rounds, MAX_ROUNDS, "{r:?}");
        }
        if rounds > 1 {
            second_rounds += 1;
        }
        // Exact match gives 0/1 rewards: a kept group has both, so no trained row has a zero
        // advantage, and the step updates once; a step that kept nothing makes no update.
        if kept > 0 {
            assert_eq!(r["advantage_zero_fraction"].as_f64(), Some(0.0), "{r:?}");
            assert_eq!(r["updates"].as_u64(), Some(1), "{r:?}");
        } else {
            assert_eq!(r["updates"].as_u64(), Some(0), "{r:?}");
        }
        kept_total += kept;
        // Reward metrics describe every sample drawn, dropped groups included.
        assert_eq!(
            r["reward/samples"].as_f64(),
            Some((rounds * PROMPTS * 4) as f64),
            "{r:?}"
        );
        rounds_total += rounds;
    }
    // The run exercises both paths: some groups are kept (and trained on), and some step is
    // short after its first round and samples a second.
    assert!(kept_total > 0, "no group was kept in any step: {records:?}");
    assert!(second_rounds > 0, "no step ran a second round: {records:?}");
    let state = final_state(dir.path());
    assert_eq!(
        state.rl_cursor,
        RL_STREAM_START + (rounds_total * PROMPTS) as u64,
        "every sampled prompt is consumed"
    );
}

#[test]
fn without_it_every_group_is_trained_on() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), false);
    let records = rl_records(dir.path());
    for r in &records {
        assert!(!r.contains_key("dynamic_sampling/rounds"), "{r:?}");
        assert_eq!(r["reward/samples"].as_f64(), Some((PROMPTS * 4) as f64));
        assert_eq!(r["updates"].as_u64(), Some(1));
    }
    let state = final_state(dir.path());
    assert_eq!(state.rl_cursor, RL_STREAM_START + (5 * PROMPTS) as u64);
}
