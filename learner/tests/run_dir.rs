//! The run directory's rules: one training at a time, a run's history never truncated, a
//! resume that finds the newest intact checkpoint by scanning and keeps the run's own config.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use temper_learner::train::checkpoint;
use temper_learner::train::run_dir::{LOCK_FILE, RunDir};
use temper_learner::train::{
    Observer, Outcome, Progress, Silent, TrainConfig, TrainError, Trainer,
};
use temper_model::backend::CpuAutodiff;

type B = CpuAutodiff;

const SHORT: [&str; 14] = [
    "sft.steps=2",
    "sft.batch_size=4",
    "rl.steps=3",
    "rl.prompts_per_step=2",
    "rl.group_size=2",
    "rl.eval_every=0",
    "eval.examples=4",
    "eval.batch_size=4",
    "checkpoint.every=1",
    "checkpoint.keep=10",
    "rl.dynamic_sampling.max_rounds=1",
    "seed=5",
    "sft.optim.warmup_steps=1",
    "rl.optim.warmup_steps=1",
];

fn config(extra: &[&str]) -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let overrides: Vec<String> = SHORT.iter().chain(extra).map(|s| s.to_string()).collect();
    TrainConfig::load(&path, &overrides).unwrap()
}

fn trainer(
    config: TrainConfig,
    run_dir: &Path,
    resume: bool,
    observer: Box<dyn Observer>,
    stop: Arc<AtomicBool>,
) -> Result<Trainer<B>, TrainError> {
    let source = common::in_process_source(&config);
    Ok(
        Trainer::<B>::new(config, run_dir, resume, Default::default(), stop, observer)?
            .with_source(source),
    )
}

/// Raises the stop flag after `after` RL step records.
struct StopAfterRl {
    after: usize,
    seen: usize,
    flag: Arc<AtomicBool>,
}

impl Observer for StopAfterRl {
    fn advance(&mut self, progress: Progress<'_>) {
        if let Progress::Step(record) = progress
            && record.stage() == "rl"
        {
            self.seen += 1;
            if self.seen == self.after {
                self.flag.store(true, Ordering::SeqCst);
            }
        }
    }
}

fn rl_steps(run_dir: &Path) -> Vec<u64> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["stage"] == "rl")
        .map(|r| r["step"].as_u64().unwrap())
        .collect()
}

/// Defect: nothing locked the run dir, so two trainings in one directory corrupted each other.
#[test]
fn a_second_training_in_a_locked_run_dir_is_refused_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let held = RunDir::open(&run_dir, &config(&[]), false).unwrap();
    let recorded = std::fs::read_to_string(run_dir.join(LOCK_FILE)).unwrap();
    assert_eq!(recorded.trim(), std::process::id().to_string());

    let err = trainer(
        config(&[]),
        &run_dir,
        false,
        Box::new(Silent),
        Arc::default(),
    )
    .err()
    .expect("the locked directory is refused");
    let message = err.to_string();
    assert!(matches!(err, TrainError::RunDirInUse { .. }), "{message}");
    assert!(
        message.contains(&format!("pid {}", std::process::id())),
        "{message}"
    );
    assert!(
        !run_dir.join("metrics.jsonl").exists(),
        "the refused run wrote metrics"
    );

    // Released with its holder.
    drop(held);
    RunDir::open(&run_dir, &config(&[]), false).unwrap();
}

/// Defect: a fresh run truncated an existing `metrics.jsonl` when `checkpoints/latest` was
/// absent.
#[test]
fn a_fresh_run_never_truncates_a_run_dirs_history() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(run_dir.join("checkpoints")).unwrap();
    let history = "{\"stage\":\"sft\",\"step\":1}\n";
    std::fs::write(run_dir.join("metrics.jsonl"), history).unwrap();
    let err = trainer(
        config(&[]),
        &run_dir,
        false,
        Box::new(Silent),
        Arc::default(),
    )
    .err()
    .expect("a directory with history is refused")
    .to_string();
    assert!(
        err.contains("metrics.jsonl") && err.contains("--resume"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap(),
        history
    );

    // A foreign file is not overwritten either.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("config.toml"), "mine = true\n").unwrap();
    let err = trainer(config(&[]), &other, false, Box::new(Silent), Arc::default())
        .err()
        .expect("a directory with a foreign config.toml is refused")
        .to_string();
    assert!(err.contains("config.toml"), "{err}");
    assert_eq!(
        std::fs::read_to_string(other.join("config.toml")).unwrap(),
        "mine = true\n"
    );
}

/// Defect: with `checkpoints/latest` missing, --resume said "has no checkpoint; start without
/// --resume" although checkpoints existed, and following that advice wiped the run. Now the
/// newest intact checkpoint is found by scanning, and a corrupt newest one is passed over for
/// an older intact one.
#[test]
fn resume_scans_for_the_newest_intact_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let stop = Arc::new(AtomicBool::new(false));
    let observer = StopAfterRl {
        after: 2,
        seen: 0,
        flag: stop.clone(),
    };
    let outcome = trainer(config(&[]), &run_dir, false, Box::new(observer), stop)
        .unwrap()
        .run()
        .unwrap();
    let Outcome::Interrupted { checkpoint: newest } = outcome else {
        panic!("the run stops after RL step 2");
    };
    assert!(newest.ends_with("rl-000002"), "{newest:?}");
    let root = run_dir.join("checkpoints");

    // No pointer: the scan finds the newest.
    std::fs::remove_file(root.join("latest")).unwrap();
    let found = checkpoint::latest(&run_dir)
        .unwrap()
        .expect("found by scanning");
    assert_eq!(found.dir, newest);
    assert!(found.pointer_problem.unwrap().contains("missing"));

    // The newest truncated: the next older one, and the newest named with its problem.
    let weights = newest.join("model.safetensors");
    let len = std::fs::metadata(&weights).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);
    let found = checkpoint::latest(&run_dir).unwrap().expect("an older one");
    assert!(found.dir.ends_with("rl-000001"), "{:?}", found.dir);
    assert_eq!(found.skipped.len(), 1);
    assert_eq!(found.skipped[0].0, newest);
    assert!(
        found.skipped[0].1.contains("truncated"),
        "{}",
        found.skipped[0].1
    );

    // The resume continues from there, repeating step 2, and loses nothing.
    let outcome = trainer(
        config(&[]),
        &run_dir,
        true,
        Box::new(Silent),
        Arc::default(),
    )
    .unwrap()
    .run()
    .unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)));
    assert_eq!(rl_steps(&run_dir), vec![1, 2, 3]);

    // Nothing intact at all: an error naming each checkpoint, not "start without --resume".
    for dir in checkpoint::scan(&root).unwrap() {
        std::fs::write(dir.join(checkpoint::STATE_FILE), "{").unwrap();
    }
    std::fs::remove_file(root.join("latest")).unwrap();
    let err = checkpoint::latest(&run_dir).unwrap_err().to_string();
    assert!(
        err.contains("no intact checkpoint") && err.contains("done-000003"),
        "{err}"
    );
}

/// Defect: resume compared only the seed, so a changed config (the resume hint dropped the
/// `--set` flags) silently changed the run and overwrote its `config.toml`. Now a differing key
/// is refused, and more steps continue a finished run.
#[test]
fn resume_keeps_the_runs_config_and_continues_with_more_steps() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let outcome = trainer(
        config(&[]),
        &run_dir,
        false,
        Box::new(Silent),
        Arc::default(),
    )
    .unwrap()
    .run()
    .unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)));
    let written = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();

    for set in ["rl.loss.kind=sapo", "rl.optim.lr=0.01", "rl.steps=2"] {
        let err = trainer(
            config(&[set]),
            &run_dir,
            true,
            Box::new(Silent),
            Arc::default(),
        )
        .err()
        .unwrap_or_else(|| panic!("{set} accepted"))
        .to_string();
        let key = set.split('=').next().unwrap();
        assert!(err.contains(&format!("`{key}`")), "{set}: {err}");
        assert!(err.contains("--resume"), "{err}");
        assert_eq!(
            std::fs::read_to_string(run_dir.join("config.toml")).unwrap(),
            written,
            "{set} changed the run's config"
        );
    }

    // More RL steps: the finished run continues (not "done"), each step once.
    let outcome = trainer(
        config(&["rl.steps=4"]),
        &run_dir,
        true,
        Box::new(Silent),
        Arc::default(),
    )
    .unwrap()
    .run()
    .unwrap();
    let Outcome::Finished(summary) = outcome else {
        panic!("finishes");
    };
    assert_eq!(summary.rl_steps, 4);
    assert_eq!(rl_steps(&run_dir), vec![1, 2, 3, 4]);
}
