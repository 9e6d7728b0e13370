//! `temper train`: the single-process trainer (SFT, then RL) on a TOML run config, with
//! progress bars, `--set` overrides, `--resume`, and Ctrl-C that checkpoints before exiting.
//!
//! The binary composes the run: the learner's [`Trainer`] takes its groups from the actor's
//! [`InProcessSource`] (the tool loop on the trainer's current weights, scored by the config's
//! reward stack); the learner crate itself never sees the actor.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Context, Result};
use burn::tensor::backend::AutodiffBackend;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use temper_actor::tools::ToolRegistry;
use temper_actor::{InProcessSource, ToolLoopConfig};
use temper_learner::train::{Observer, Outcome, TrainConfig, Trainer};
use temper_rewards::RewardSet;

use crate::device::{DeviceKind, with_backend};
use crate::metrics_server;

#[derive(Args)]
pub struct TrainArgs {
    /// Run config (TOML), e.g. configs/tiny.toml.
    #[arg(long)]
    config: PathBuf,
    /// Directory for metrics, checkpoints, summary and plot [runs/<config name>-seed<seed>].
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Override a config key, e.g. `--set rl.loss.kind=sapo` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the run in --run-dir from its latest checkpoint.
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
    // Every config error surfaces here, before any work starts.
    let config = TrainConfig::load(&args.config, &args.overrides)?;
    let run_dir = args.run_dir.clone().unwrap_or_else(|| {
        let name = args
            .config
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".into());
        PathBuf::from("runs").join(format!("{name}-seed{}", config.seed))
    });
    if let Some(addr) = &args.metrics_addr {
        let bound = metrics_server::start(addr)?;
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
    let source = InProcessSource::new(rewards, ToolRegistry::new(), ToolLoopConfig::default());
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
            eprintln!(
                "stopped; resume with: temper train --config {} --run-dir {} --resume \
                 (checkpoint {})",
                args.config.display(),
                run_dir.display(),
                checkpoint.display()
            );
            std::process::exit(130);
        }
    }
    Ok(())
}

/// Runs the trainer to its outcome (generic over the backend `--device` picked).
fn run_trainer<B: AutodiffBackend>(trainer: Trainer<B>) -> Result<Outcome> {
    Ok(trainer.run()?)
}

/// First Ctrl-C: finish the current step, checkpoint, exit. Second: exit at once.
fn install_interrupt_handler() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let presses = AtomicUsize::new(0);
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if presses.fetch_add(1, Ordering::SeqCst) == 0 {
            flag.store(true, Ordering::SeqCst);
            eprintln!("\ninterrupt: finishing the current step and writing a checkpoint (Ctrl-C again to quit now)");
        } else {
            eprintln!("\nsecond interrupt: exiting without a checkpoint");
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// The live figures of a step record, for a progress message.
fn summary_line(record: &Map<String, Value>) -> String {
    let get = |key: &str| record.get(key).and_then(Value::as_f64);
    let mut parts = Vec::new();
    for (key, label) in [
        ("reward_mean", "reward"),
        ("train_accuracy", "acc"),
        ("accuracy", "acc"),
        ("loss", "loss"),
        ("clip_fraction", "clip"),
        ("sapo_gate_mean", "gate"),
        ("grad_norm", "|g|"),
        ("tokens_per_second", "tok/s"),
    ] {
        if let Some(v) = get(key) {
            parts.push(if key == "tokens_per_second" {
                format!("{label} {v:.0}")
            } else {
                format!("{label} {v:.3}")
            });
        }
    }
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

    fn advance(&mut self, record: &Map<String, Value>) {
        if let Some(bar) = &self.bar {
            match record.get("done").and_then(Value::as_u64) {
                Some(done) => bar.set_position(done),
                None => bar.inc(1),
            }
            bar.set_message(summary_line(record));
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

    fn advance(&mut self, record: &Map<String, Value>) {
        if let (Some(stage), Some(step)) = (
            record.get("stage").and_then(Value::as_str),
            record.get("step").and_then(Value::as_u64),
        ) {
            eprintln!("{stage} step {step}: {}", summary_line(record));
        }
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }
}
