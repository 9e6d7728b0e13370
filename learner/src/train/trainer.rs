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
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::FloatDType;
use burn::tensor::backend::AutodiffBackend;
use serde::Serialize;
use serde_json::{Map, Value, json};
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{FinishReason, Qwen3Vl, SamplingParams, policy_suppressed_tokens};
use temper_rewards::rollout::{
    Group, RolloutPrompt, RolloutRequest, RolloutSource, Rollouts, Sample,
};

use super::TrainError;
use super::checkpoint;
use super::config::{OptimConfig, Precision, RlConfig, TaskConfig, TrainConfig, invalid};
use super::metrics_log::MetricsLog;
use super::observer::Observer;
use super::plot;
use super::rewarding::StepRewards;
use super::run_dir::RunDir;
use super::sequences::ResponseBatch;
use super::state::{Stage, TrainerState};
use super::telemetry;
use crate::data::dataset::{DatasetOptions, DatasetTask};
use crate::embedded;
use crate::grad_clip::clip_global_norm;
use crate::objectives::{Advantages, Aggregation, LossMetrics, PolicyInputs, sft};
use crate::optim::AdamW;
use crate::tasks::task::{Split, Task, TaskPrompt};

/// The bad-record log of a dataset run, in the run directory.
pub const DATA_ERRORS_FILE: &str = "data_errors.jsonl";

/// How a run ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Every stage ran; the summary was written.
    Finished(Summary),
    /// Stopped on request after a step; the checkpoint to resume from.
    Interrupted {
        /// The checkpoint written at the stop.
        checkpoint: PathBuf,
    },
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Held-out accuracy of the initial policy.
    pub eval_accuracy_initial: f64,
    /// Held-out accuracy after stage 1 (SFT).
    pub eval_accuracy_after_sft: f64,
    /// Held-out accuracy at the end.
    pub eval_accuracy_final: f64,
    /// Final minus after-SFT accuracy, in points.
    pub rl_gain_points: f64,
    /// Wall time of the run (all sessions of a resumed run together).
    pub wall_seconds: f64,
    /// The RL objective.
    pub loss: String,
    /// The run's seed.
    pub seed: u64,
    /// SFT and RL steps run.
    pub sft_steps: usize,
    /// RL steps run.
    pub rl_steps: usize,
    /// The final checkpoint.
    pub final_checkpoint: PathBuf,
}

/// The single-process trainer.
pub struct Trainer<B: AutodiffBackend> {
    config: TrainConfig,
    run_dir: PathBuf,
    device: B::Device,
    processor: Processor,
    task: Box<dyn Task>,
    model: Qwen3Vl<B>,
    optimizer: AdamW<B::InnerBackend>,
    state: TrainerState,
    /// Where groups come from (set with [`Trainer::with_source`]).
    source: Option<Box<dyn RolloutSource<B::InnerBackend>>>,
    /// Tokens the policy may not emit ([`policy_suppressed_tokens`]): sampling and the learner's
    /// scoring both remove them.
    suppressed: Vec<u32>,
    log: MetricsLog,
    stop: Arc<AtomicBool>,
    observer: Box<dyn Observer>,
    session_start: Instant,
    wall_before: f64,
    /// Holds the run directory's lock for as long as the trainer lives.
    _run: RunDir,
}

/// One RL step's sampled groups: every round's prompts and scored groups (one per prompt, in
/// order), their rewards, and the groups the update trains on.
#[derive(Default)]
struct Sampled {
    prompts: Vec<RolloutPrompt>,
    groups: Vec<Group>,
    rewards: StepRewards,
    /// Indexes of the groups (= prompts) to train on, in sampling order.
    kept_groups: Vec<usize>,
    /// Generation rounds run.
    rounds: usize,
    generation_seconds: f64,
    scoring_seconds: f64,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Sets up a run in `run_dir`: a fresh one, or (with `resume`) from its latest checkpoint.
    pub fn new(
        config: TrainConfig,
        run_dir: &Path,
        resume: bool,
        device: B::Device,
        stop: Arc<AtomicBool>,
        observer: Box<dyn Observer>,
    ) -> Result<Self, TrainError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |e: std::io::Error| TrainError::Io { path, source: e }
        };
        config.validate()?;

        let run = RunDir::open(run_dir, &config, resume)?;
        let resume_from = run.resume().cloned();

        let model_error = |e: temper_model::ModelError| TrainError::Model(e.to_string());
        let (model, processor, state, optimizer) = match &resume_from {
            Some(checkpoint::Found { dir, state, .. }) => {
                let state = state.clone();
                if state.seed != config.seed {
                    return Err(TrainError::Resume(format!(
                        "the checkpoint was trained with seed {} but the config says {}",
                        state.seed, config.seed
                    )));
                }
                let model = Qwen3Vl::<B>::load(dir, &device).map_err(model_error)?;
                let processor =
                    Processor::from_model_dir(dir, &model.config).map_err(model_error)?;
                let adamw = stage_optim(&config, state.stage).adamw;
                let optimizer = AdamW::load(adamw, &dir.join(checkpoint::OPTIMIZER_FILE), &device)?;
                (model, processor, state, optimizer)
            }
            None => {
                let (model, processor) = if config.model.source == "builtin:tiny" {
                    let model_config = embedded::tiny_config();
                    let processor = embedded::tiny_processor(&model_config)?;
                    let model = Qwen3Vl::<B>::random(model_config, config.seed, &device)
                        .map_err(model_error)?;
                    (model, processor)
                } else {
                    let dir = Path::new(&config.model.source);
                    let model = Qwen3Vl::<B>::load(dir, &device).map_err(model_error)?;
                    let processor =
                        Processor::from_model_dir(dir, &model.config).map_err(model_error)?;
                    (model, processor)
                };
                let state = TrainerState::new(config.seed);
                let optimizer = AdamW::new(stage_optim(&config, Stage::Sft).adamw);
                (model, processor, state, optimizer)
            }
        };
        let task = open_task(&config, &processor, run_dir)?;
        std::fs::write(run_dir.join("config.toml"), config.to_toml())
            .map_err(io(&run_dir.join("config.toml")))?;
        let log_path = run_dir.join("metrics.jsonl");
        let log = MetricsLog::open(&log_path, state.metrics_lines).map_err(io(&log_path))?;
        let suppressed = policy_suppressed_tokens(&processor.special);
        Ok(Self {
            wall_before: state.wall_seconds,
            suppressed,
            config,
            run_dir: run_dir.to_path_buf(),
            device,
            processor,
            task,
            model,
            optimizer,
            state,
            source: None,
            log,
            stop,
            observer,
            session_start: Instant::now(),
            _run: run,
        })
    }

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

    /// Asks the source for `prompts`' groups with the current policy.
    fn rollouts(
        &mut self,
        policy: &Qwen3Vl<B::InnerBackend>,
        prompts: &[RolloutPrompt],
        group_size: usize,
        params: SamplingParams,
    ) -> Result<Rollouts, TrainError> {
        let source = self.source.as_mut().ok_or(TrainError::NoRolloutSource)?;
        let request = RolloutRequest {
            prompts,
            group_size,
            params,
            policy_version: self.state.policy_version,
        };
        let rollouts = source.next_groups(policy, &self.processor, &request)?;
        if rollouts.groups.len() != prompts.len()
            || rollouts
                .groups
                .iter()
                .any(|g| g.samples.len() != group_size)
        {
            return Err(TrainError::Rollout(temper_rewards::RolloutError::new(
                format!(
                    "the source returned {} groups of sizes {:?} for {} prompts of group size \
                     {group_size}; a source returns one full group per prompt",
                    rollouts.groups.len(),
                    rollouts
                        .groups
                        .iter()
                        .map(|g| g.samples.len())
                        .collect::<Vec<_>>(),
                    prompts.len()
                ),
            )));
        }
        Ok(rollouts)
    }

    /// Runs to the end, or until the stop flag is raised (then checkpoints and returns).
    pub fn run(mut self) -> Result<Outcome, TrainError> {
        if self.state.evaluations.initial.is_none() {
            let accuracy = self.evaluate("initial")?;
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
            let accuracy = self.evaluate("after_sft")?;
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
                    self.evaluate("rl")?;
                }
                if let Some(outcome) = self.after_step(total)? {
                    return Ok(outcome);
                }
            }
            self.observer.end("rl");
            let accuracy = self.evaluate("final")?;
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
            for name in [
                "tokenizer.json",
                "tokenizer_config.json",
                "chat_template.jinja",
                "preprocessor_config.json",
                "video_preprocessor_config.json",
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
    fn compute_model(&self) -> Qwen3Vl<B> {
        match self.config.model.precision {
            Precision::F32 => self.model.clone(),
            Precision::Bf16 => self.model.cast(FloatDType::BF16),
        }
    }

    /// The policy that rollouts and evaluation decode with (no graph), in compute precision.
    fn inference_policy(&self) -> Qwen3Vl<B::InnerBackend> {
        let policy = self.model.valid();
        match self.config.model.precision {
            Precision::F32 => policy,
            Precision::Bf16 => policy.cast(FloatDType::BF16),
        }
    }

    fn wall_seconds(&self) -> f64 {
        self.wall_before + self.session_start.elapsed().as_secs_f64()
    }

    /// SFT steps first, then RL steps: the x axis of the plot.
    fn global_step(&self) -> usize {
        match self.state.stage {
            Stage::Sft => self.state.step,
            Stage::Rl | Stage::Done => self.config.sft.steps + self.state.step,
        }
    }

    /// The task's prompt `index` of `split`, tokenised, whose samples draw from `seed`'s
    /// streams.
    fn prompt(&self, split: Split, index: u64, seed: u64) -> Result<RolloutPrompt, TrainError> {
        let TaskPrompt {
            messages,
            images,
            videos,
            text,
            reference,
            metadata,
            ..
        } = self.task.prompt(self.config.seed, split, index)?;
        let prepared = self
            .processor
            .prepare(&messages, &images, &videos)
            .map_err(|e| TrainError::Model(e.to_string()))?;
        Ok(RolloutPrompt {
            id: index,
            prepared,
            images,
            text,
            reference,
            metadata,
            seed,
        })
    }

    /// Greedy answers on the held-out split; records and returns the accuracy.
    fn evaluate(&mut self, point: &str) -> Result<f64, TrainError> {
        let eval = self.config.eval.clone();
        let phase = format!("eval {point}");
        self.observer.begin(&phase, eval.examples, 0);
        let policy = self.inference_policy();
        let params = SamplingParams::greedy(eval.max_new_tokens);
        let params = SamplingParams {
            stop_token_ids: self.processor.special.eos_ids().to_vec(),
            suppress_token_ids: self.suppressed.clone(),
            ..params
        };
        let mut correct = 0usize;
        let mut start = 0usize;
        while start < eval.examples {
            let end = (start + eval.batch_size).min(eval.examples);
            // Greedy: the seeds draw nothing.
            let prompts = (start..end)
                .map(|i| self.prompt(Split::Eval, i as u64, 0))
                .collect::<Result<Vec<_>, _>>()?;
            let rollouts = self.rollouts(&policy, &prompts, 1, params.clone())?;
            correct += rollouts
                .groups
                .iter()
                .zip(&prompts)
                .filter(|(g, p)| answers(g.samples[0].response(), p))
                .count();
            let mut note = Map::new();
            note.insert("done".into(), json!(end));
            note.insert("accuracy".into(), json!(correct as f64 / end as f64));
            self.observer.advance(&note);
            start = end;
        }
        self.observer.end(&phase);
        let accuracy = correct as f64 / eval.examples as f64;
        let mut record = Map::new();
        record.insert("stage".into(), json!("eval"));
        record.insert("step".into(), json!(self.state.step));
        record.insert("global_step".into(), json!(self.global_step()));
        record.insert("point".into(), json!(point));
        record.insert("accuracy".into(), json!(accuracy));
        record.insert("examples".into(), json!(eval.examples));
        record.insert("policy_version".into(), json!(self.state.policy_version));
        self.write_record(record)?;
        self.observer.note(&format!(
            "held-out accuracy ({point}): {:.1}%",
            100.0 * accuracy
        ));
        Ok(accuracy)
    }

    fn write_record(&mut self, record: Map<String, Value>) -> Result<(), TrainError> {
        telemetry::publish(&record);
        let path = self.log.path().to_path_buf();
        self.log
            .write(record)
            .map_err(|source| TrainError::Io { path, source })
    }

    /// One SFT step: cross-entropy on the reference answer (and the end-of-turn token).
    fn sft_step(&mut self) -> Result<(), TrainError> {
        let started = Instant::now();
        let sft = self.config.sft.clone();
        let cursor = self.state.sft_cursor;
        let prompts = (0..sft.batch_size as u64)
            .map(|i| self.prompt(Split::Train, cursor + i, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let im_end = self.processor.special.im_end;
        // The reference answer (and the end-of-turn token) as a sample every token of which is
        // trained on.
        let responses: Vec<Sample> = prompts
            .iter()
            .map(|p| {
                let mut ids = self
                    .processor
                    .tokenizer
                    .encode(reference(p))
                    .map_err(|e| TrainError::Model(e.to_string()))?;
                ids.push(im_end);
                Ok(Sample {
                    response_mask: vec![1; ids.len()],
                    behaviour_logprobs: vec![0.0; ids.len()],
                    token_ids: ids,
                    images: Vec::new(),
                    turns: Vec::new(),
                    finish: FinishReason::Stop,
                    policy_version: self.state.policy_version,
                })
            })
            .collect::<Result<_, TrainError>>()?;
        let rows: Vec<(&PreparedPrompt, &Sample)> = prompts
            .iter()
            .zip(&responses)
            .map(|(p, r)| (&p.prepared, r))
            .collect();
        let total_tokens: usize = responses.iter().map(|r| r.token_ids.len()).sum();
        let micro = micro_rows(sft.micro_batch_rows, rows.len());

        let mut accumulator = GradientsAccumulator::<Qwen3Vl<B>>::new();
        let mut loss_sum = 0.0;
        let mut entropy_sum = 0.0;
        let mut sequence_tokens = 0usize;
        for chunk in rows.chunks(micro) {
            let batch = ResponseBatch::<B>::new(&self.processor, chunk, &self.device)?;
            sequence_tokens += batch.rows() * batch.batch.seq_len();
            let scores = batch.scores(&self.compute_model(), 1.0, &self.suppressed)?;
            let mask = batch.mask(&self.device);
            entropy_sum += masked_sum(scores.entropy.clone(), mask.clone());
            let output = sft::cross_entropy(scores.logprobs, mask)?;
            let weight = output.metrics.tokens as f64 / total_tokens.max(1) as f64;
            loss_sum += output.metrics.loss * weight;
            let grads = (output.loss * weight).backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
        }
        let optim = sft.optim;
        let (grad_norm, lr) = self.apply_update(accumulator.grads(), &optim, sft.steps);
        self.state.sft_cursor += sft.batch_size as u64;
        self.state.step += 1;

        let seconds = started.elapsed().as_secs_f64();
        let mut record = self.step_record("sft");
        record.insert("loss".into(), json!(loss_sum));
        record.insert(
            "entropy".into(),
            json!(entropy_sum / total_tokens.max(1) as f64),
        );
        record.insert("grad_norm".into(), json!(grad_norm));
        record.insert("lr".into(), json!(lr));
        record.insert("response_tokens".into(), json!(total_tokens));
        record.insert("seconds".into(), json!(seconds));
        record.insert(
            "tokens_per_second".into(),
            json!(sequence_tokens as f64 / seconds),
        );
        self.observer.advance(&record);
        self.write_record(record)
    }

    /// Clips, steps the optimiser on the stage's schedule; returns (grad norm, lr).
    fn apply_update(
        &mut self,
        mut grads: GradientsParams,
        optim: &OptimConfig,
        stage_updates: usize,
    ) -> (f64, f64) {
        let grad_norm = if optim.max_grad_norm > 0.0 {
            clip_global_norm::<B, _>(&self.model, &mut grads, optim.max_grad_norm)
        } else {
            crate::grad_clip::global_grad_norm::<B, _>(&self.model, &grads)
        };
        let lr = optim
            .schedule(stage_updates)
            .lr_at(self.optimizer.steps() as usize);
        // burn's `map` consumes the module; the clone shares the parameter buffers.
        self.model = self.optimizer.step::<B, _>(lr, self.model.clone(), grads);
        self.state.policy_version += 1;
        (grad_norm, lr)
    }

    /// One RL step: sample `G` responses per prompt, score them, compute group advantages and
    /// apply `epochs × mini_batches` updates.
    fn rl_step(&mut self) -> Result<(), TrainError> {
        let started = Instant::now();
        let rl = self.config.rl.clone();

        // 1–2. Sample from the current policy (a detached copy), score, and compute advantages
        // within each prompt's group; with dynamic sampling, in rounds until enough groups teach.
        let Sampled {
            prompts,
            groups,
            rewards,
            kept_groups,
            rounds,
            generation_seconds,
            scoring_seconds,
        } = self.sample_groups(&rl)?;
        let estimator = rl
            .advantage
            .unwrap_or_else(|| rl.loss.advantage_estimator());
        let advantages = rewards.advantages(&estimator, rl.group_size)?;

        // 3. Updates on the kept groups' rows that were scored (quarantined ones are left out).
        let learner_started = Instant::now();
        let trained: Vec<usize> = kept_groups
            .iter()
            .flat_map(|&g| g * rl.group_size..(g + 1) * rl.group_size)
            .filter(|&i| rewards.total[i].is_some())
            .collect();
        // Sample `i` of the step (prompt-major) is sample `i % G` of group `i / G`.
        let rows: Vec<(&PreparedPrompt, &Sample)> = groups
            .iter()
            .zip(&prompts)
            .flat_map(|(g, p)| g.samples.iter().map(move |s| (&p.prepared, s)))
            .collect();
        let updates_per_step = rl.epochs * rl.mini_batches;
        let mut stats = UpdateStats::default();
        let mut sequence_tokens = 0usize;
        for epoch in 0..rl.epochs {
            for mini in split_even(&trained, rl.mini_batches) {
                if mini.is_empty() {
                    continue;
                }
                let measure_mismatch = epoch == 0 && stats.updates == 0;
                let (grads, tokens) =
                    self.policy_gradient(&rows, &advantages, mini, measure_mismatch, &mut stats)?;
                sequence_tokens += tokens;
                let (grad_norm, lr) =
                    self.apply_update(grads, &rl.optim, rl.steps * updates_per_step);
                stats.grad_norms.push(grad_norm);
                stats.lr = lr;
                stats.updates += 1;
            }
        }
        let learner_seconds = learner_started.elapsed().as_secs_f64();
        self.state.rl_cursor += (rounds * rl.prompts_per_step) as u64;
        self.state.step += 1;

        let seconds = started.elapsed().as_secs_f64();
        let samples = rows.len();
        let generated: usize = rows.iter().map(|(_, s)| s.generated_tokens()).sum();
        let correct = groups
            .iter()
            .zip(&prompts)
            .flat_map(|(g, p)| g.samples.iter().map(move |s| (s, p)))
            .filter(|(s, p)| answers(s.response(), p))
            .count();
        let mut record = self.step_record("rl");
        rewards.write_metrics(&mut record);
        record.insert(
            "train_accuracy".into(),
            json!(correct as f64 / samples as f64),
        );
        write_advantage_stats(&mut record, &advantages, &trained);
        if rl.dynamic_sampling.is_some() {
            record.insert("dynamic_sampling/rounds".into(), json!(rounds));
            record.insert(
                "dynamic_sampling/kept_groups".into(),
                json!(kept_groups.len()),
            );
            let informative = groups.iter().filter(|g| g.informative()).count();
            record.insert(
                "dynamic_sampling/informative_fraction".into(),
                json!(informative as f64 / groups.len() as f64),
            );
        }
        stats.write(&mut record, &rl.loss);
        record.insert(
            "response_length_mean".into(),
            json!(generated as f64 / samples as f64),
        );
        let stopped = rows
            .iter()
            .filter(|(_, s)| s.finish == FinishReason::Stop)
            .count();
        record.insert(
            "stopped_fraction".into(),
            json!(stopped as f64 / samples as f64),
        );
        record.insert("seconds".into(), json!(seconds));
        record.insert(
            "generated_tokens_per_second".into(),
            json!(generated as f64 / generation_seconds),
        );
        record.insert(
            "tokens_per_second".into(),
            json!(sequence_tokens as f64 / learner_seconds),
        );
        record.insert(
            "time_share_generation".into(),
            json!(generation_seconds / seconds),
        );
        record.insert("time_share_reward".into(), json!(scoring_seconds / seconds));
        record.insert("time_share_update".into(), json!(learner_seconds / seconds));
        self.observer.advance(&record);
        self.write_record(record)
    }

    /// Samples `G` responses for `prompts_per_step` prompts and scores them. Without dynamic
    /// sampling every group is kept; with it, groups whose rewards are all equal are dropped and
    /// further rounds of prompts are sampled (each round from its own seed streams and the next
    /// prompts of the data stream) until `prompts_per_step` groups are kept or `max_rounds` ran.
    fn sample_groups(&mut self, rl: &RlConfig) -> Result<Sampled, TrainError> {
        let (max_rounds, filter) = match rl.dynamic_sampling {
            Some(dynamic) => (dynamic.max_rounds, true),
            None => (1, false),
        };
        let per_round = rl.prompts_per_step;
        let mut sampled = Sampled::default();
        let policy = self.inference_policy();
        while sampled.rounds < max_rounds && sampled.kept_groups.len() < per_round {
            let round = sampled.rounds;
            let cursor = self.state.rl_cursor + (round * per_round) as u64;
            // Round 0 draws what a run without dynamic sampling draws; each prompt draws from its
            // own streams (seed + prompt index).
            let round_seed = self
                .state
                .sampling_seed(self.state.step)
                .wrapping_add((round as u64) << 44);
            let prompts = (0..per_round as u64)
                .map(|i| self.prompt(Split::Train, cursor + i, round_seed.wrapping_add(i << 20)))
                .collect::<Result<Vec<_>, _>>()?;
            let params = SamplingParams {
                temperature: rl.temperature,
                top_p: rl.top_p,
                top_k: rl.top_k,
                max_new_tokens: rl.max_new_tokens,
                stop_token_ids: self.processor.special.eos_ids().to_vec(),
                seed: round_seed,
                suppress_token_ids: self.suppressed.clone(),
            };
            let rollouts = self.rollouts(&policy, &prompts, rl.group_size, params)?;
            sampled.generation_seconds += rollouts.generation_seconds;
            sampled.scoring_seconds += rollouts.scoring_seconds;

            for group in rollouts.groups {
                let keep = !filter || group.informative();
                if keep && sampled.kept_groups.len() < per_round {
                    sampled.kept_groups.push(sampled.groups.len());
                }
                sampled.rewards.push(&group);
                sampled.groups.push(group);
            }
            sampled.prompts.extend(prompts);
            sampled.rounds += 1;
        }
        Ok(sampled)
    }

    /// Accumulated policy gradient of one mini-batch (`rows`), micro-batch by micro-batch;
    /// returns the gradients and the tokens processed.
    fn policy_gradient(
        &self,
        samples: &[(&PreparedPrompt, &Sample)],
        advantages: &[f32],
        rows: &[usize],
        measure_mismatch: bool,
        stats: &mut UpdateStats,
    ) -> Result<(GradientsParams, usize), TrainError> {
        let rl = &self.config.rl;
        let loss = rl.loss;
        let aggregation = loss.aggregation();
        let micro = micro_rows(rl.micro_batch_rows, rows.len());
        // Each micro-batch's loss is weighted by its share of what the objective averages over.
        let share = |chunk: &[usize]| -> f64 {
            let count = |set: &[usize], f: &dyn Fn(usize) -> usize| -> usize {
                set.iter()
                    .map(|&i| f(samples[i].1.generated_tokens()))
                    .sum()
            };
            match aggregation {
                Aggregation::SeqMeanTokenMean => {
                    let nonempty = |n: usize| usize::from(n > 0);
                    count(chunk, &nonempty) as f64 / count(rows, &nonempty).max(1) as f64
                }
                Aggregation::TokenMean => {
                    count(chunk, &|n| n) as f64 / count(rows, &|n| n).max(1) as f64
                }
                Aggregation::TokenSumNorm { .. } => chunk.len() as f64 / rows.len() as f64,
            }
        };
        let mut accumulator = GradientsAccumulator::<Qwen3Vl<B>>::new();
        let mut tokens = 0usize;
        for chunk in rows.chunks(micro) {
            let pairs: Vec<(&PreparedPrompt, &Sample)> =
                chunk.iter().map(|&i| samples[i]).collect();
            let batch = ResponseBatch::<B>::new(&self.processor, &pairs, &self.device)?;
            tokens += batch.rows() * batch.batch.seq_len();
            let compute = self.compute_model();
            let scores = batch.scores(&compute, rl.temperature, &self.suppressed)?;
            let mask = batch.mask(&self.device);
            let behaviour: Vec<&[f32]> = chunk
                .iter()
                .map(|&i| samples[i].1.behaviour_logprobs.as_slice())
                .collect();
            let old_logprobs = batch.align(&behaviour, 0.0, &self.device);
            stats.entropy_sum += masked_sum(scores.entropy.clone(), mask.clone());
            stats.entropy_tokens += batch.trained_tokens().iter().sum::<usize>();
            if measure_mismatch {
                stats.record_mismatch(
                    scores.logprobs.clone().detach(),
                    old_logprobs.clone(),
                    mask.clone(),
                );
            }
            let chunk_advantages: Vec<f32> = chunk.iter().map(|&i| advantages[i]).collect();
            let n = chunk_advantages.len();
            let advantages =
                Tensor::<B, 1>::from_data(TensorData::new(chunk_advantages, [n]), &self.device);
            let output = loss.compute(PolicyInputs {
                logprobs: scores.logprobs,
                old_logprobs,
                ref_logprobs: None,
                advantages: Advantages::Sequence(advantages),
                mask,
            })?;
            let weight = share(chunk);
            stats.add(&output.metrics, weight);
            let grads = (output.loss * weight).backward();
            accumulator.accumulate(&self.model, GradientsParams::from_grads(grads, &self.model));
        }
        Ok((accumulator.grads(), tokens))
    }

    fn step_record(&self, stage: &str) -> Map<String, Value> {
        let mut record = Map::new();
        record.insert("stage".into(), json!(stage));
        record.insert("step".into(), json!(self.state.step));
        record.insert("global_step".into(), json!(self.global_step()));
        record.insert("policy_version".into(), json!(self.state.policy_version));
        if let Some(skipped) = self.task.skipped() {
            record.insert("data/skipped".into(), json!(skipped));
        }
        record
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

/// The run's task: the built-in one, or the `[data]` dataset (validated, its bad records logged
/// to `<run-dir>/data_errors.jsonl`); `eval.examples` checked against a finite eval split.
fn open_task(
    config: &TrainConfig,
    processor: &Processor,
    run_dir: &Path,
) -> Result<Box<dyn Task>, TrainError> {
    let task: Box<dyn Task> = match (&config.task, &config.data) {
        (Some(TaskConfig::Shapes(shapes)), _) => Box::new(shapes.clone()),
        (None, Some(data)) => {
            let error_log = run_dir.join(DATA_ERRORS_FILE);
            let options = DatasetOptions {
                train: &data.train,
                eval: data.eval.as_deref(),
                shuffle: data.shuffle,
                max_prompt_tokens: data.max_prompt_tokens,
                error_log: &error_log,
            };
            Box::new(DatasetTask::open(&options, processor)?)
        }
        // `TrainConfig::validate` names both keys.
        (None, None) => unreachable!("a validated config has a task or a dataset"),
    };
    if let Some(n) = task.len(Split::Eval)
        && n < config.eval.examples as u64
    {
        return Err(invalid(
            "eval.examples",
            config.eval.examples,
            format!("the eval split has only {n} usable prompts"),
        )
        .into());
    }
    Ok(task)
}

/// The optimiser settings of `stage`.
fn stage_optim(config: &TrainConfig, stage: Stage) -> OptimConfig {
    match stage {
        Stage::Sft => config.sft.optim,
        Stage::Rl | Stage::Done => config.rl.optim,
    }
}

/// Whether a response answers the prompt's reference exactly (surrounding whitespace ignored):
/// the held-out accuracy and the training accuracy use the same strict rule as `exact_match`.
fn answers(response: &str, prompt: &RolloutPrompt) -> bool {
    response.trim() == reference(prompt).trim()
}

/// The reference answer of a task prompt (the built-in task gives every prompt one).
fn reference(prompt: &RolloutPrompt) -> &str {
    prompt.reference.as_deref().unwrap_or_default()
}

/// Rows per micro-batch: `configured`, or all `rows` when 0.
pub(super) fn micro_rows(configured: usize, rows: usize) -> usize {
    if configured == 0 {
        rows.max(1)
    } else {
        configured
    }
}

/// Splits `items` into `parts` contiguous, near-equal slices.
fn split_even(items: &[usize], parts: usize) -> Vec<&[usize]> {
    let parts = parts.max(1);
    let base = items.len() / parts;
    let extra = items.len() % parts;
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let len = base + usize::from(p < extra);
        out.push(&items[start..start + len]);
        start += len;
    }
    out
}

/// Sum of `values` where `mask` is 1, read to the host.
fn masked_sum<B: Backend>(values: Tensor<B, 2>, mask: Tensor<B, 2>) -> f64 {
    (values.detach() * mask).sum().into_scalar().elem::<f64>()
}

fn write_advantage_stats(record: &mut Map<String, Value>, advantages: &[f32], rows: &[usize]) {
    if rows.is_empty() {
        return;
    }
    let values: Vec<f64> = rows.iter().map(|&i| f64::from(advantages[i])).collect();
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    let zero = values.iter().filter(|v| **v == 0.0).count() as f64 / n;
    record.insert("advantage_mean".into(), json!(mean));
    record.insert("advantage_std".into(), json!(var.sqrt()));
    record.insert(
        "advantage_min".into(),
        json!(values.iter().copied().fold(f64::INFINITY, f64::min)),
    );
    record.insert(
        "advantage_max".into(),
        json!(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    );
    record.insert("advantage_zero_fraction".into(), json!(zero));
}

/// Loss metrics of a step's updates, combined.
#[derive(Default)]
struct UpdateStats {
    updates: usize,
    lr: f64,
    grad_norms: Vec<f64>,
    /// Σ weight · value per metric, and Σ weight, over micro-batches.
    weighted: Vec<(&'static str, f64, f64)>,
    ratio_min: Option<f64>,
    ratio_max: Option<f64>,
    entropy_sum: f64,
    entropy_tokens: usize,
    mismatch_sum: f64,
    mismatch_max: f64,
    mismatch_tokens: f64,
}

impl UpdateStats {
    fn add(&mut self, metrics: &LossMetrics, weight: f64) {
        let mut push = |name: &'static str, value: Option<f64>| {
            let Some(value) = value else { return };
            match self.weighted.iter_mut().find(|(n, _, _)| *n == name) {
                Some(entry) => {
                    entry.1 += weight * value;
                    entry.2 += weight;
                }
                None => self.weighted.push((name, weight * value, weight)),
            }
        };
        push("loss", Some(metrics.loss));
        push("pg_loss", Some(metrics.pg_loss));
        push("clip_fraction", metrics.clip_fraction);
        push("sapo_gate_mean", metrics.gate_weight_mean);
        push("ratio_mean", metrics.ratio_mean);
        push("seq_ratio_mean", metrics.seq_ratio_mean);
        push("approx_kl", metrics.approx_kl);
        push("kl", metrics.kl);
        if let Some(v) = metrics.ratio_min {
            self.ratio_min = Some(self.ratio_min.map_or(v, |m| m.min(v)));
        }
        if let Some(v) = metrics.ratio_max {
            self.ratio_max = Some(self.ratio_max.map_or(v, |m| m.max(v)));
        }
    }

    /// Train/inference mismatch: `|log π_learner − log π_behaviour|` on trained tokens, before
    /// any update of the step (the learner's copy and the sampler's are the same weights).
    fn record_mismatch<B: Backend>(
        &mut self,
        learner: Tensor<B, 2>,
        behaviour: Tensor<B, 2>,
        mask: Tensor<B, 2>,
    ) {
        let diff = (learner - behaviour).abs() * mask.clone();
        let values = Tensor::cat(vec![diff.clone().sum(), diff.max(), mask.sum()], 0)
            .into_data()
            .iter::<f64>()
            .collect::<Vec<_>>();
        self.mismatch_sum += values[0];
        self.mismatch_max = self.mismatch_max.max(values[1]);
        self.mismatch_tokens += values[2];
    }

    fn write(&self, record: &mut Map<String, Value>, loss: &crate::objectives::PolicyLoss) {
        record.insert("loss_kind".into(), json!(loss.kind()));
        for (name, sum, weight) in &self.weighted {
            if *weight > 0.0 {
                // Micro-batch weights sum to 1 per update: divide by the updates to average them.
                record.insert((*name).into(), json!(sum / weight));
            }
        }
        if let Some(v) = self.ratio_min {
            record.insert("ratio_min".into(), json!(v));
        }
        if let Some(v) = self.ratio_max {
            record.insert("ratio_max".into(), json!(v));
        }
        if !self.grad_norms.is_empty() {
            let n = self.grad_norms.len() as f64;
            record.insert(
                "grad_norm".into(),
                json!(self.grad_norms.iter().sum::<f64>() / n),
            );
        }
        record.insert("lr".into(), json!(self.lr));
        record.insert("updates".into(), json!(self.updates));
        if self.entropy_tokens > 0 {
            record.insert(
                "entropy".into(),
                json!(self.entropy_sum / self.entropy_tokens as f64),
            );
        }
        if self.mismatch_tokens > 0.0 {
            record.insert(
                "logprob_mismatch_mean".into(),
                json!(self.mismatch_sum / self.mismatch_tokens),
            );
            record.insert("logprob_mismatch_max".into(), json!(self.mismatch_max));
        }
    }
}
