//! A run stopped after a step and resumed from its checkpoint writes the same metrics, step for
//! step, as the uninterrupted run (CPU; timing fields excepted), in both stages.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};
use temper_learner::train::{Observer, Outcome, Progress, Silent, TrainConfig, Trainer};
use temper_model::backend::CpuAutodiff;

type B = CpuAutodiff;

const SHORT: [&str; 12] = [
    "sft.steps=4",
    "sft.batch_size=6",
    "rl.steps=4",
    "rl.prompts_per_step=2",
    "rl.group_size=4",
    "rl.mini_batches=2",
    "rl.micro_batch_rows=3",
    "rl.eval_every=2",
    "eval.examples=6",
    "eval.batch_size=6",
    "sft.optim.warmup_steps=1",
    "rl.optim.warmup_steps=1",
];

fn config() -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let overrides: Vec<String> = SHORT.iter().map(|s| s.to_string()).collect();
    TrainConfig::load(&path, &overrides).unwrap()
}

/// Raises the stop flag once `after` step records of `stage` have been seen.
struct StopAfter {
    stage: &'static str,
    after: usize,
    seen: usize,
    flag: Arc<AtomicBool>,
}

impl Observer for StopAfter {
    fn advance(&mut self, progress: Progress<'_>) {
        if let Progress::Step(record) = progress
            && record.stage() == self.stage
        {
            self.seen += 1;
            if self.seen == self.after {
                self.flag.store(true, Ordering::SeqCst);
            }
        }
    }
}

/// metrics.jsonl without the fields that measure time.
fn metrics(run_dir: &Path) -> Vec<Map<String, Value>> {
    let timing =
        |key: &str| key == "seconds" || key.contains("per_second") || key.starts_with("time_share");
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let Value::Object(mut record) = serde_json::from_str(line).unwrap() else {
                panic!("a record is an object");
            };
            record.retain(|k, _| !timing(k));
            record
        })
        .collect()
}

fn run(
    run_dir: &Path,
    resume: bool,
    observer: Box<dyn Observer>,
    stop: Arc<AtomicBool>,
) -> Outcome {
    let device = Default::default();
    let config = config();
    let source = common::in_process_source(&config);
    Trainer::<B>::new(config, run_dir, resume, device, stop, observer)
        .unwrap()
        .with_source(source)
        .run()
        .unwrap()
}

#[test]
fn resumed_runs_repeat_the_uninterrupted_run_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let straight = dir.path().join("straight");
    let outcome = run(&straight, false, Box::new(Silent), Arc::default());
    assert!(matches!(outcome, Outcome::Finished(_)));
    let expected = metrics(&straight);

    for (stage, after) in [("sft", 2), ("rl", 3)] {
        let run_dir = dir.path().join(format!("stopped-in-{stage}"));
        let stop = Arc::new(AtomicBool::new(false));
        let observer = StopAfter {
            stage,
            after,
            seen: 0,
            flag: stop.clone(),
        };
        let outcome = run(&run_dir, false, Box::new(observer), stop);
        let Outcome::Interrupted { checkpoint } = outcome else {
            panic!("the run should stop in {stage}");
        };
        assert!(
            checkpoint.ends_with(format!("{stage}-{after:06}")),
            "{checkpoint:?}"
        );
        let outcome = run(&run_dir, true, Box::new(Silent), Arc::default());
        assert!(matches!(outcome, Outcome::Finished(_)));
        let resumed = metrics(&run_dir);
        assert_eq!(resumed.len(), expected.len(), "stopped in {stage}");
        for (i, (a, b)) in resumed.iter().zip(&expected).enumerate() {
            assert_eq!(a, b, "record {i} differs after a stop in {stage}");
        }
    }
}
