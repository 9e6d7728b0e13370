//! Setting up a run: the run directory (locked), the policy (the embedded tiny model from the
//! seed, an HF checkpoint, or the run's latest checkpoint when resuming), the processor, the
//! optimiser, the task, and the metrics log.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use temper_model::processor::Processor;
use temper_model::{Qwen3Vl, policy_suppressed_tokens};

use super::TrainError;
use super::checkpoint;
use super::config::{OptimConfig, TaskConfig, TrainConfig, invalid};
use super::metrics_log::MetricsLog;
use super::observer::Observer;
use super::run_dir::RunDir;
use super::state::{Stage, TrainerState};
use super::trainer::Trainer;
use crate::data::dataset::{DatasetOptions, DatasetTask};
use crate::embedded;
use crate::optim::AdamW;
use crate::tasks::task::{Split, Task};

/// The bad-record log of a dataset run, in the run directory.
pub const DATA_ERRORS_FILE: &str = "data_errors.jsonl";

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

        let (model, processor, state, optimizer) = match &resume_from {
            Some(checkpoint::Found { dir, state, .. }) => {
                let state = state.clone();
                if state.seed != config.seed {
                    return Err(TrainError::Resume(format!(
                        "the checkpoint was trained with seed {} but the config says {}",
                        state.seed, config.seed
                    )));
                }
                let model = Qwen3Vl::<B>::load(dir, &device)?;
                let processor = Processor::from_model_dir(dir, &model.config)?;
                let adamw = stage_optim(&config, state.stage).adamw;
                let optimizer = AdamW::load(adamw, &dir.join(checkpoint::OPTIMIZER_FILE), &device)?;
                (model, processor, state, optimizer)
            }
            None => {
                let (model, processor) = if config.model.source == "builtin:tiny" {
                    let model_config = embedded::tiny_config();
                    let processor = embedded::tiny_processor(&model_config)?;
                    let model = Qwen3Vl::<B>::random(model_config, config.seed, &device)?;
                    (model, processor)
                } else {
                    let dir = Path::new(&config.model.source);
                    let model = Qwen3Vl::<B>::load(dir, &device)?;
                    let processor = Processor::from_model_dir(dir, &model.config)?;
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
        let metric = config.eval_metric()?.to_string();
        Ok(Self {
            wall_before: state.wall_seconds,
            suppressed,
            metric,
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
