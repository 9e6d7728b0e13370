//! `temper train`: the single-process trainer (SFT, then RL) on a TOML run config, with
//! progress bars, `--set` overrides, `--resume`, and Ctrl-C that checkpoints before exiting.
//!
//! The binary composes the run: the learner's [`Trainer`] takes its groups from the actor's
//! [`InProcessSource`] (the tool loop on the trainer's current weights, scored by the config's
//! reward stack); the learner crate itself never sees the actor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use temper_actor::tools::ToolRegistry;
use temper_actor::{InProcessSource, ToolLoopConfig};
use temper_learner::train::{
    Observer, Outcome, Progress, StepRecord, TrainConfig, Trainer, run_dir,
};
use temper_rewards::RewardSet;

use crate::device::{DeviceKind, with_backend};
use crate::metrics_server;

#[derive(Args)]
pub struct TrainArgs {
    /// Run config (TOML), e.g. configs/tiny.toml; with --resume the run's own
    /// `<run dir>/config.toml` is used when this is left out.
    #[arg(long, required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Directory for metrics, checkpoints, summary and plot [runs/<config name>-seed<seed>,
    /// plus a hash of the config when --set changes it].
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Override a config key, e.g. `--set rl.loss.kind=sapo` (repeatable). On --resume only
    /// the keys a resumed run may change are accepted, e.g. more `rl.steps`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the run in --run-dir from its newest intact checkpoint, under its own config.
    #[arg(long)]
    resume: bool,
    /// No progress bars (log lines only).
    #[arg(long)]
    no_progress: bool,
    /// Serve live metrics for Prometheus at http://ADDR/metrics (bearer token from
    /// TEMPER_METRICS_TOKEN), e.g. 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Device to train on (the policy, its rollouts and its updates).
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
}

pub fn run(args: TrainArgs) -> Result<()> {
    // Every config error surfaces here, before any work starts. A resumed run reads its own
    // config from the run directory (overrides on top, checked by the trainer).
    let (config, run_dir) = match (&args.config, &args.run_dir) {
        (None, Some(run_dir)) => {
            let path = run_dir.join(run_dir::CONFIG_FILE);
            if !path.is_file() {
                bail!(
                    "{} holds no run to resume ({} is missing); pass --config to start one",
                    run_dir.display(),
                    path.display()
                );
            }
            (TrainConfig::load(&path, &args.overrides)?, run_dir.clone())
        }
        (None, None) => bail!("--resume needs --run-dir DIR (or --config FILE)"),
        (Some(path), run_dir) => {
            let config = TrainConfig::load(path, &args.overrides)?;
            let run_dir = run_dir
                .clone()
                .unwrap_or_else(|| default_run_dir(path, &args.overrides, &config));
            (config, run_dir)
        }
    };
    // The binary's one I/O runtime: the metrics server, reward scoring (judge HTTP, plug-in
    // RPCs, timeouts). Model compute stays on this thread.
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("temper-io")
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    if let Some(addr) = &args.metrics_addr {
        let bound = metrics_server::start(io.handle(), addr)?;
        eprintln!(
            "metrics: http://{bound}/metrics (bearer token from {})",
            metrics_server::TOKEN_ENV
        );
    }
    let stop = install_interrupt_handler()?;
    let observer: Box<dyn Observer> = if args.no_progress {
        Box::new(LogLines)
    } else {
        Box::new(Bars::default())
    };
    let rewards =
        RewardSet::from_config(&config.reward_set()).context("building the reward stack")?;
    // The embedded tasks use no tools: the rollout is single-turn sampling.
    let source = InProcessSource::new(
        rewards,
        ToolRegistry::new(),
        ToolLoopConfig::default(),
        io.handle().clone(),
    );
    let outcome = with_backend!(args.device, |Inner, device| {
        let trainer = Trainer::<burn::backend::Autodiff<Inner>>::new(
            config,
            &run_dir,
            args.resume,
            device,
            stop,
            observer,
        )
        .with_context(|| format!("setting up the run in {}", run_dir.display()))?;
        run_trainer(trainer.with_source(source))?
    });
    match outcome {
        Outcome::Finished(summary) => {
            println!("{}", serde_json::to_string_pretty(&summary)?);
            println!(
                "run directory: {} (metrics.jsonl, summary.json, progress.svg, checkpoints/)",
                run_dir.display()
            );
        }
        Outcome::Interrupted { checkpoint } => {
            // The run's config (overrides included) is in the run directory: the hint needs
            // nothing else, and pasting it cannot change the run.
            eprintln!(
                "stopped; resume with: temper train --run-dir {} --resume (checkpoint {})",
                run_dir.display(),
                checkpoint.display()
            );
            std::process::exit(130);
        }
    }
    Ok(())
}

/// `runs/<config name>-seed<seed>`; with overrides, a hash of the resulting config is appended,
/// so a run with other `--set` values never shares a directory with the plain one.
fn default_run_dir(config_path: &Path, overrides: &[String], config: &TrainConfig) -> PathBuf {
    let name = config_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "run".into());
    let mut dir = format!("{name}-seed{}", config.seed);
    if !overrides.is_empty() {
        dir.push_str(&format!(
            "-{:08x}",
            fnv1a(config.to_toml().as_bytes()) as u32
        ));
    }
    PathBuf::from("runs").join(dir)
}

/// FNV-1a, 64 bits: a stable hash (std's `DefaultHasher` may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Runs the trainer to its outcome (generic over the backend `--device` picked).
fn run_trainer<B: AutodiffBackend>(trainer: Trainer<B>) -> Result<Outcome> {
    Ok(trainer.run()?)
}

/// First Ctrl-C or SIGTERM (what Slurm and Kubernetes send before killing a job): finish the
/// current step, checkpoint, exit. Second: exit at once.
fn install_interrupt_handler() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let presses = AtomicUsize::new(0);
    let flag = stop.clone();
    // With ctrlc's `termination` feature the handler also runs on SIGTERM and SIGHUP.
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            flag.store(true, Ordering::SeqCst);
            eprintln!(
                "\ninterrupt: finishing the current step and writing a checkpoint (interrupt \
                 again to quit now)"
            );
        } else {
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C / SIGTERM handler")?;
    Ok(stop)
}

/// The live figures of a step record, for a progress message.
fn summary_line(record: &StepRecord) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut put = |label: &str, value: Option<f64>| {
        if let Some(v) = value {
            parts.push(format!("{label} {v:.3}"));
        }
    };
    let tokens_per_second = match record {
        StepRecord::Sft(r) => {
            put("loss", Some(r.loss));
            put("|g|", Some(r.grad_norm));
            r.tokens_per_second
        }
        StepRecord::Rl(r) => {
            put("reward", r.rewards.reward_mean);
            put("acc", Some(r.train_accuracy));
            put("loss", r.update.loss);
            put("clip", r.update.clip_fraction);
            put("gate", r.update.sapo_gate_mean);
            put("|g|", r.update.grad_norm);
            r.tokens_per_second
        }
        StepRecord::Eval(r) => {
            put("acc", Some(r.accuracy));
            return parts.join("  ");
        }
    };
    parts.push(format!("tok/s {tokens_per_second:.0}"));
    parts.join("  ")
}

/// Progress bars, one per phase.
#[derive(Default)]
struct Bars {
    bar: Option<ProgressBar>,
}

impl Observer for Bars {
    fn begin(&mut self, phase: &str, total: usize, done: usize) {
        let bar = ProgressBar::new(total as u64).with_position(done as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(phase.to_string());
        self.bar = Some(bar);
    }

    fn advance(&mut self, progress: Progress<'_>) {
        if let Some(bar) = &self.bar {
            match progress {
                Progress::Step(record) => {
                    bar.inc(1);
                    bar.set_message(summary_line(record));
                }
                Progress::Eval { done, accuracy } => {
                    bar.set_position(done as u64);
                    bar.set_message(format!("acc {accuracy:.3}"));
                }
            }
        }
    }

    fn end(&mut self, _phase: &str) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }

    fn note(&mut self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

/// One log line per step, for non-interactive runs.
struct LogLines;

impl Observer for LogLines {
    fn begin(&mut self, phase: &str, total: usize, done: usize) {
        eprintln!("{phase}: {done}/{total}");
    }

    fn advance(&mut self, progress: Progress<'_>) {
        if let Progress::Step(record) = progress {
            let step = record.position().step;
            eprintln!("{} step {step}: {}", record.stage(), summary_line(record));
        }
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defect 4: the default run dir ignored `--set`, so `--set rl.loss.kind=sapo` in a second
    /// terminal shared `runs/tiny-seed0` with the plain run.
    #[test]
    fn the_default_run_dir_differs_per_override_set() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml");
        let dir = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let config = TrainConfig::load(&path, &sets).unwrap();
            default_run_dir(&path, &sets, &config)
        };
        let plain = dir(&[]);
        assert_eq!(plain, PathBuf::from("runs/tiny-seed0"));
        let sapo = dir(&["rl.loss.kind=sapo"]);
        assert_ne!(sapo, plain);
        assert!(
            sapo.to_string_lossy().starts_with("runs/tiny-seed0-"),
            "{sapo:?}"
        );
        assert_ne!(dir(&["rl.loss.kind=grpo"]), sapo);
        // The same overrides find the same directory again (a later --resume).
        assert_eq!(dir(&["rl.loss.kind=sapo"]), sapo);
    }
}
