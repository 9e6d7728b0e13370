//! [`Trainer`]: evaluation → SFT → evaluation → RL (with periodic evaluations) → final
//! evaluation, one step at a time, writing metrics, checkpoints, a summary and a plot.
//!
//! Samples come from a [`RolloutSource`] (the in-process actor in `temper train`, a scripted one in
//! tests, a remote one in a cluster): the trainer hands it its current weights and the prompts,
//! and gets scored groups back.
//!
//! Determinism: the model is initialised from the seed, SFT and RL read examples at cursors kept
//! in the trainer state, and every RL step samples from streams derived from (seed, step, round,
//! prompt); so a run resumed from a checkpoint repeats exactly what the uninterrupted run did.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::tensor::FloatDType;
use burn::tensor::backend::AutodiffBackend;
use temper_model::Qwen3Vl;
use temper_model::processor::Processor;
use temper_rewards::rollout::RolloutSource;

use super::TrainError;
use super::checkpoint;
use super::config::{Precision, TrainConfig};
use super::metrics_log::MetricsLog;
use super::observer::Observer;
use super::outcome::{Outcome, Summary};
use super::plot;
use super::records::{EvalPoint, Position, StepRecord};
use super::run_dir::RunDir;
use super::state::{Stage, TrainerState};
use super::telemetry;
use crate::embedded;
use crate::optim::AdamW;
use crate::tasks::task::Task;

/// The single-process trainer.
pub struct Trainer<B: AutodiffBackend> {
    pub(super) config: TrainConfig,
    pub(super) run_dir: PathBuf,
    pub(super) device: B::Device,
    pub(super) processor: Processor,
    pub(super) task: Box<dyn Task>,
    pub(super) model: Qwen3Vl<B>,
    pub(super) optimizer: AdamW<B::InnerBackend>,
    pub(super) state: TrainerState,
    /// Where groups come from (set with [`Trainer::with_source`]).
    pub(super) source: Option<Box<dyn RolloutSource<B::InnerBackend>>>,
    /// Tokens the policy may not emit ([`policy_suppressed_tokens`]): sampling and the learner's
    /// scoring both remove them.
    pub(super) suppressed: Vec<u32>,
    /// The reward whose mean is the accuracy ([`TrainConfig::eval_metric`], resolved once).
    pub(super) metric: String,
    pub(super) log: MetricsLog,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) observer: Box<dyn Observer>,
    pub(super) session_start: Instant,
    pub(super) wall_before: f64,
    /// Holds the run directory's lock for as long as the trainer lives.
    pub(super) _run: RunDir,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Takes groups from `source` (required before [`run`](Self::run): evaluation and RL
    /// sample through it). `temper train` passes the in-process actor.
    pub fn with_source(mut self, source: impl RolloutSource<B::InnerBackend> + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Where the run stands.
    pub fn state(&self) -> &TrainerState {
        &self.state
    }

    /// Runs to the end, or until the stop flag is raised (then checkpoints and returns).
    pub fn run(mut self) -> Result<Outcome, TrainError> {
        if self.state.evaluations.initial.is_none() {
            let accuracy = self.evaluate(EvalPoint::Initial)?;
            self.state.evaluations.initial = Some(accuracy);
        }
        if self.state.stage == Stage::Sft {
            let total = self.config.sft.steps;
            self.observer.begin("sft", total, self.state.step);
            while self.state.step < total {
                self.sft_step()?;
                if let Some(outcome) = self.after_step(self.config.sft.steps)? {
                    return Ok(outcome);
                }
            }
            self.observer.end("sft");
            let accuracy = self.evaluate(EvalPoint::AfterSft)?;
            self.state.evaluations.after_sft = Some(accuracy);
            self.state.stage = Stage::Rl;
            self.state.step = 0;
            // Stage 2 starts a fresh optimiser and schedule.
            self.optimizer = AdamW::new(self.config.rl.optim.adamw);
            self.checkpoint()?;
        }
        if self.state.stage == Stage::Rl {
            let total = self.config.rl.steps;
            self.observer.begin("rl", total, self.state.step);
            while self.state.step < total {
                self.rl_step()?;
                let every = self.config.rl.eval_every;
                if every > 0 && self.state.step.is_multiple_of(every) && self.state.step < total {
                    self.evaluate(EvalPoint::Rl)?;
                }
                if let Some(outcome) = self.after_step(total)? {
                    return Ok(outcome);
                }
            }
            self.observer.end("rl");
            let accuracy = self.evaluate(EvalPoint::Final)?;
            self.state.evaluations.final_ = Some(accuracy);
            self.state.stage = Stage::Done;
        }
        let final_checkpoint = self.checkpoint()?;
        self.finish(final_checkpoint)
    }

    /// Checkpoints when due or when asked to stop; returns the outcome if stopping.
    fn after_step(&mut self, stage_steps: usize) -> Result<Option<Outcome>, TrainError> {
        let every = self.config.checkpoint.every;
        let stopping = self.stop.load(Ordering::SeqCst);
        let due =
            every > 0 && self.state.step.is_multiple_of(every) && self.state.step < stage_steps;
        if !(stopping || due) {
            return Ok(None);
        }
        let dir = self.checkpoint()?;
        if stopping {
            self.observer.note(&format!(
                "interrupted: checkpoint written to {}",
                dir.display()
            ));
            self.write_plot();
            return Ok(Some(Outcome::Interrupted { checkpoint: dir }));
        }
        Ok(None)
    }

    fn checkpoint(&mut self) -> Result<PathBuf, TrainError> {
        self.state.wall_seconds = self.wall_seconds();
        self.state.metrics_lines = self.log.len();
        let builtin = self.config.model.source == "builtin:tiny";
        let source = PathBuf::from(&self.config.model.source);
        let processor_files = move |dir: &Path| -> std::io::Result<()> {
            if builtin {
                return embedded::write_processor_files(dir);
            }
            // What transformers, vLLM and `temper generate` read beside the weights.
            for name in [
                "tokenizer.json",
                "tokenizer_config.json",
                "chat_template.jinja",
                "chat_template.json",
                "preprocessor_config.json",
                "video_preprocessor_config.json",
                "generation_config.json",
                "special_tokens_map.json",
                "vocab.json",
                "merges.txt",
            ] {
                let from = source.join(name);
                if from.is_file() {
                    std::fs::copy(&from, dir.join(name))?;
                }
            }
            Ok(())
        };
        let dir = checkpoint::save(
            &self.run_dir,
            &self.model.valid(),
            &self.optimizer,
            &self.state,
            &self.config.to_toml(),
            &processor_files,
            self.config.checkpoint.keep,
        )?;
        tracing::info!(checkpoint = %dir.display(), step = self.state.step, "checkpoint written");
        Ok(dir)
    }

    /// The model a forward/backward pass runs on: the f32 masters, or (mixed precision) a bf16
    /// copy whose casts are in the graph, so gradients reach the masters in f32. Made per
    /// micro-batch: a backward pass consumes the graph, casts included.
    pub(super) fn compute_model(&self) -> Qwen3Vl<B> {
        match self.config.model.precision {
            Precision::F32 => self.model.clone(),
            Precision::Bf16 => self.model.cast(FloatDType::BF16),
        }
    }

    /// The policy that rollouts and evaluation decode with (no graph), in compute precision.
    pub(super) fn inference_policy(&self) -> Qwen3Vl<B::InnerBackend> {
        let policy = self.model.valid();
        match self.config.model.precision {
            Precision::F32 => policy,
            Precision::Bf16 => policy.cast(FloatDType::BF16),
        }
    }

    pub(super) fn wall_seconds(&self) -> f64 {
        self.wall_before + self.session_start.elapsed().as_secs_f64()
    }

    /// SFT steps first, then RL steps: the x axis of the plot.
    pub(super) fn global_step(&self) -> usize {
        match self.state.stage {
            Stage::Sft => self.state.step,
            Stage::Rl | Stage::Done => self.config.sft.steps + self.state.step,
        }
    }

    /// Where the run stands, for a record.
    pub(super) fn position(&self) -> Position {
        Position {
            step: self.state.step,
            global_step: self.global_step(),
            policy_version: self.state.policy_version,
            data_skipped: self.task.skipped(),
        }
    }

    /// Appends `record` to `metrics.jsonl` and publishes it as gauges.
    pub(super) fn write_record(&mut self, record: &StepRecord) -> Result<(), TrainError> {
        let fields = record.to_map();
        telemetry::publish(record.stage(), &fields);
        let path = self.log.path().to_path_buf();
        self.log
            .write(fields)
            .map_err(|source| TrainError::Io { path, source })
    }

    fn write_plot(&self) {
        let path = self.run_dir.join("progress.svg");
        if let Err(message) = plot::draw(self.log.records(), &path) {
            tracing::warn!(%message, "could not draw the progress plot");
        }
    }

    fn finish(mut self, final_checkpoint: PathBuf) -> Result<Outcome, TrainError> {
        let evaluations = self.state.evaluations;
        let wall_seconds = self.wall_seconds();
        let initial = evaluations.initial.unwrap_or(f64::NAN);
        let after_sft = evaluations.after_sft.unwrap_or(initial);
        let final_ = evaluations.final_.unwrap_or(after_sft);
        let summary = Summary {
            eval_accuracy_initial: initial,
            eval_accuracy_after_sft: after_sft,
            eval_accuracy_final: final_,
            rl_gain_points: 100.0 * (final_ - after_sft),
            wall_seconds,
            loss: self.config.rl.loss.kind().to_string(),
            seed: self.config.seed,
            sft_steps: self.config.sft.steps,
            rl_steps: self.config.rl.steps,
            final_checkpoint,
        };
        let path = self.run_dir.join("summary.json");
        let text = serde_json::to_string_pretty(&summary).expect("summary serialises");
        std::fs::write(&path, text).map_err(|source| TrainError::Io { path, source })?;
        self.write_plot();
        self.observer.note(&format!(
            "done in {:.0} s: held-out accuracy {:.1}% → {:.1}% (after SFT) → {:.1}% (final)",
            wall_seconds,
            100.0 * initial,
            100.0 * after_sft,
            100.0 * final_
        ));
        Ok(Outcome::Finished(summary))
    }
}
