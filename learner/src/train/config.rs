//! The run config of `temper train`: TOML with unknown keys rejected, `--set a.b=c` overrides
//! applied to the TOML tree before it is typed, and one validation pass that names the offending
//! key before any work starts.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use temper_rewards::{RewardEntry, RewardSetConfig};

use super::config_source::Source;
use crate::advantages::AdvantageEstimator;
use crate::objectives::PolicyLoss;
use crate::optim::AdamWConfig;
use crate::schedule::WarmupCosine;
use crate::tasks::shapes::ShapesTask;

/// A config error: the key at fault, where it was set and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {message}")]
    Read {
        /// The config file.
        path: PathBuf,
        /// The I/O error.
        message: String,
    },
    /// TOML syntax (the TOML library's message names the line and column).
    #[error("config {origin}: {message}")]
    Parse {
        /// The file, or `--set` overrides.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// An unknown key, a missing key or a value of the wrong type.
    #[error("config key `{key}` ({at}): {message}")]
    Type {
        /// Full dotted key, e.g. `sft.steps` or `rewards.1.weight`.
        key: String,
        /// Where it was set: `FILE line N`, or the `--set` override.
        at: String,
        /// What is wrong and what is expected, in words.
        message: String,
    },
    /// A malformed `--set` override.
    #[error("override `{raw}`: {message}")]
    Override {
        /// The override as given.
        raw: String,
        /// What is wrong and the expected form.
        message: String,
    },
    /// A well-typed value that cannot work.
    #[error("config key `{key}` = {value}{}: {message}", at_suffix(.at))]
    Invalid {
        /// Dotted key, e.g. `rl.group_size`.
        key: String,
        /// The value as written.
        value: String,
        /// Where it was set (`FILE line N` or the `--set` override), when known.
        at: Option<String>,
        /// Why, and what would work.
        message: String,
    },
}

fn at_suffix(at: &Option<String>) -> String {
    at.as_ref().map(|at| format!(" ({at})")).unwrap_or_default()
}

pub(crate) fn invalid(key: &str, value: impl ToString, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        at: None,
        message: message.into(),
    }
}

/// Everything one `temper train` run needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Seeds model initialisation, data order and sampling.
    pub seed: u64,
    /// The policy to start from.
    pub model: ModelConfig,
    /// The built-in task (`[task]`); a run has this or `[data]`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskConfig>,
    /// The user's dataset (`[data]`); a run has this or `[task]`, not both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataConfig>,
    /// Held-out evaluation.
    pub eval: EvalConfig,
    /// Stage 1: supervised fine-tuning.
    pub sft: SftConfig,
    /// Stage 2: reinforcement learning.
    pub rl: RlConfig,
    /// The reward stack of stage 2 (`[[rewards]]`).
    pub rewards: Vec<RewardEntry>,
    /// Checkpointing.
    #[serde(default)]
    pub checkpoint: CheckpointConfig,
}

/// Where the initial policy comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `"builtin:tiny"` (the embedded tiny Qwen3-VL, random init from `seed`) or the path of a
    /// HF checkpoint directory.
    pub source: String,
    /// What rollouts, forward and backward run in; the weights the optimiser updates (and
    /// checkpoints hold) are always f32.
    #[serde(default)]
    pub precision: Precision,
}

/// Compute precision of the learner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Everything in f32 (the CPU default).
    #[default]
    F32,
    /// Mixed precision: each pass runs on a bf16 copy of the f32 weights; gradients flow back
    /// through the casts as f32, so updates and AdamW's moments stay f32 (torch autocast's
    /// arrangement). Norms, softmax, log-probs and losses run in f32 (see `temper_model::nn`).
    Bf16,
}

/// The built-in tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskConfig {
    /// Count the squares of one colour in a generated image.
    Shapes(ShapesTask),
}

/// A user dataset: JSONL prompt files (see `crate::data`). Relative paths resolve against the
/// config file's folder ([`TrainConfig::load`]); the run's written config holds them absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// The training prompts.
    pub train: PathBuf,
    /// The held-out prompts evaluation reads (required: `eval.examples` is at least 1, and
    /// evaluating on training prompts would not measure generalisation).
    #[serde(default)]
    pub eval: Option<PathBuf>,
    /// A new seeded order every epoch (`false`: file order).
    #[serde(default = "default_shuffle")]
    pub shuffle: bool,
    /// Longest prompt kept, in tokens after the chat template; longer records are skipped.
    pub max_prompt_tokens: usize,
}

fn default_shuffle() -> bool {
    true
}

/// Held-out evaluation: greedy decoding on the eval split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Held-out examples per evaluation.
    pub examples: usize,
    /// Prompts decoded together.
    pub batch_size: usize,
    /// Longest answer decoded.
    pub max_new_tokens: usize,
    /// The reward (a `[[rewards]]` metric name) whose mean over the held-out samples is the
    /// accuracy, scored by the same stack RL trains on; unset: the first answer rule
    /// (`exact_match`, `numeric`, `math` or `choice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
}

/// Optimiser, schedule and clipping, shared by both stages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Learning rate at the end of the cosine.
    #[serde(default)]
    pub min_lr: f64,
    /// Linear warm-up, in optimiser steps.
    #[serde(default)]
    pub warmup_steps: usize,
    /// Global gradient-norm clip (0 = off).
    #[serde(default = "default_max_grad_norm")]
    pub max_grad_norm: f64,
    /// AdamW settings.
    #[serde(default)]
    pub adamw: AdamWConfig,
}

fn default_max_grad_norm() -> f64 {
    1.0
}

/// Stage 1: cross-entropy on reference answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftConfig {
    /// Optimiser steps (0 skips the stage).
    pub steps: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Rows per forward/backward pass; gradients of a step's micro-batches are accumulated
    /// (0 = the whole step at once).
    #[serde(default)]
    pub micro_batch_rows: usize,
    /// Optimiser and schedule.
    pub optim: OptimConfig,
}

/// Stage 2: grouped sampling, rewards, advantages and policy-gradient updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RlConfig {
    /// Rollout steps (each: sample, score, update).
    pub steps: usize,
    /// Prompts per rollout step.
    pub prompts_per_step: usize,
    /// Samples per prompt, `G`.
    pub group_size: usize,
    /// Passes over each rollout batch.
    #[serde(default = "one")]
    pub epochs: usize,
    /// Optimiser steps per pass (the batch is split into this many mini-batches).
    #[serde(default = "one")]
    pub mini_batches: usize,
    /// Rows per forward/backward pass inside a mini-batch (0 = the whole mini-batch).
    #[serde(default)]
    pub micro_batch_rows: usize,
    /// Longest response sampled.
    pub max_new_tokens: usize,
    /// Sampling temperature (log-probs are taken at this temperature too).
    #[serde(default = "default_temperature")]
    pub temperature: f32,
    /// Nucleus sampling mass (1 = off).
    #[serde(default = "default_top_p")]
    pub top_p: f32,
    /// Entropy bonus β (verl's `entropy_coeff`): the loss is the objective's minus β × the
    /// token-mean policy entropy over the generated tokens of the mini-batch. A small β keeps
    /// the policy exploring, so groups stay informative instead of collapsing onto one answer
    /// (0 = off, the papers' setting).
    #[serde(default)]
    pub entropy_coef: f64,
    /// Top-k sampling (0 = off).
    #[serde(default)]
    pub top_k: usize,
    /// The objective, e.g. `{ kind = "gspo" }` or `{ kind = "sapo", tau_pos = 1.0 }`.
    pub loss: PolicyLoss,
    /// Advantage estimator; default: the one the objective's paper uses.
    #[serde(default)]
    pub advantage: Option<AdvantageEstimator>,
    /// Evaluate every this many rollout steps (0 = only at the end).
    #[serde(default)]
    pub eval_every: usize,
    /// DAPO's dynamic sampling: train only on groups whose rewards differ, sampling more
    /// prompts until the step has `prompts_per_step` of them (absent = train on every group).
    #[serde(default)]
    pub dynamic_sampling: Option<DynamicSampling>,
    /// Optimiser and schedule.
    pub optim: OptimConfig,
}

/// DAPO's dynamic sampling (Yu et al., arXiv 2503.14476, §3.2): a group whose rewards are all
/// equal has zero advantage and only dilutes the batch, so it is dropped and more prompts are
/// sampled until the step holds `prompts_per_step` informative groups or `max_rounds` rounds of
/// `prompts_per_step` prompts have been generated; the step then trains on the groups it has.
/// Generation is cheap next to the update, so the update's compute goes to groups that teach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicSampling {
    /// Most generation rounds per step (each of `prompts_per_step` prompts); at least 1.
    pub max_rounds: usize,
}

fn one() -> usize {
    1
}

fn default_temperature() -> f32 {
    1.0
}

fn default_top_p() -> f32 {
    1.0
}

/// When checkpoints are written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Every this many steps of a stage (0 = only at stage ends and on interrupt).
    pub every: usize,
    /// Checkpoints kept (the oldest are deleted; at least 1).
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { every: 0, keep: 2 }
    }
}

impl TrainConfig {
    /// Reads `path`, applies `overrides` (`a.b=c`), types and validates the result.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let mut config = Self::from_toml_str(&text, &path.display().to_string(), overrides)?;
        let folder = path.parent().unwrap_or(Path::new(""));
        config.resolve_paths(folder);
        Ok(config)
    }

    /// Makes `[data]`'s relative paths absolute, resolved against `folder` (the config file's).
    pub fn resolve_paths(&mut self, folder: &Path) {
        if let Some(data) = &mut self.data {
            for path in std::iter::once(&mut data.train).chain(data.eval.as_mut()) {
                let joined = folder.join(&*path);
                *path = std::path::absolute(&joined).unwrap_or(joined);
            }
        }
    }

    /// [`load`](Self::load) from text; `origin` names it in errors.
    ///
    /// The overrides are applied to the TOML tree, and the tree is typed directly (not
    /// re-serialised), so an error names the full key (`sft.steps`) and the line of the user's
    /// file that set it, or the `--set` override that did.
    pub fn from_toml_str(
        text: &str,
        origin: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let mut tree: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        for raw in overrides {
            apply_override(&mut tree, raw)?;
        }
        let source = Source {
            text,
            origin,
            overrides,
        };
        let mut config = Self::deserialize(toml::Value::Table(tree.clone()))
            .map_err(|e| source.type_error(&tree, &e))?;
        for note in config.clamp_warmups() {
            tracing::warn!("{note}");
        }
        config.validate().map_err(|e| source.place(e))?;
        Ok(config)
    }

    /// Shortens each stage's learning-rate warm-up to the stage's optimiser steps where it is
    /// longer (a short smoke run of a full config), returning one note per change, which names
    /// the key. Without it, `--set sft.steps=3` would fail on `sft.optim.warmup_steps`, then on
    /// `rl.optim.warmup_steps`, one at a time.
    pub fn clamp_warmups(&mut self) -> Vec<String> {
        let rl_updates = self
            .rl
            .steps
            .checked_mul(self.rl.epochs)
            .and_then(|n| n.checked_mul(self.rl.mini_batches));
        let mut notes = Vec::new();
        for (key, optim, updates) in [
            (
                "sft.optim.warmup_steps",
                &mut self.sft.optim,
                Some(self.sft.steps),
            ),
            ("rl.optim.warmup_steps", &mut self.rl.optim, rl_updates),
        ] {
            if let Some(updates) = updates
                && updates > 0
                && optim.warmup_steps > updates
            {
                notes.push(format!(
                    "config key `{key}` = {} is longer than the stage's {updates} optimiser \
                     steps: using {updates}",
                    optim.warmup_steps
                ));
                optim.warmup_steps = updates;
            }
        }
        notes
    }

    /// The config as TOML (written into the run directory); reads back to the same config.
    ///
    /// Serialised through a JSON tree with its nulls removed: an unset optional field (a
    /// reward's `max_len`, `rl.advantage`) is absent in TOML, which has no null.
    pub fn to_toml(&self) -> String {
        let mut tree = serde_json::to_value(self).expect("the config serialises");
        drop_nulls(&mut tree);
        toml::to_string(&tree).expect("a config without nulls is valid TOML")
    }

    /// The `[[rewards]]` entries as a reward-set config.
    pub fn reward_set(&self) -> RewardSetConfig {
        RewardSetConfig {
            rewards: self.rewards.clone(),
        }
    }

    /// The reward that measures accuracy: `eval.metric`, or the first answer rule of the stack.
    pub fn eval_metric(&self) -> Result<&str, ConfigError> {
        let names = || {
            self.rewards
                .iter()
                .map(|r| format!("`{}`", r.metric_name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.eval.metric {
            Some(name) if self.rewards.iter().any(|r| r.metric_name() == name) => Ok(name),
            Some(name) => Err(invalid(
                "eval.metric",
                format!("{name:?}"),
                format!(
                    "names no reward of the stack; the [[rewards]] are: {}",
                    if self.rewards.is_empty() {
                        "(none)".into()
                    } else {
                        names()
                    }
                ),
            )),
            None => self
                .rewards
                .iter()
                .find(|r| r.reward.checks_answer())
                .map(|r| r.metric_name())
                .ok_or_else(|| {
                    invalid(
                        "eval.metric",
                        "(unset)",
                        format!(
                            "accuracy is the mean of a reward over the held-out samples, and no \
                         answer rule (exact_match, numeric, math, choice) is among the \
                         [[rewards]] ({}); add one, or name the reward with eval.metric",
                            if self.rewards.is_empty() {
                                "none".into()
                            } else {
                                names()
                            }
                        ),
                    )
                }),
        }
    }

    /// Rejects values that cannot work, naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.model.source != "builtin:tiny" && !Path::new(&self.model.source).is_dir() {
            return Err(invalid(
                "model.source",
                format!("{:?}", self.model.source),
                "must be \"builtin:tiny\" or an existing checkpoint directory",
            ));
        }
        match (&self.task, &self.data) {
            (Some(TaskConfig::Shapes(task)), None) => {
                task.validate().map_err(|m| invalid("task", "shapes", m))?
            }
            (None, Some(data)) => {
                positive_count("data.max_prompt_tokens", data.max_prompt_tokens)?;
                if data.eval.is_none() {
                    return Err(invalid(
                        "data.eval",
                        "(unset)",
                        "a dataset run needs an eval file: evaluation (eval.examples ≥ 1) reads \
                         held-out prompts, never training ones",
                    ));
                }
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "task and data",
                    "both set",
                    "a run reads prompts from the built-in `[task]` or from a `[data]` \
                     dataset, not both: remove one",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "task or data",
                    "neither set",
                    "a run needs prompts: a built-in `[task]` (kind = \"shapes\") or a \
                     `[data]` dataset (train = \"prompts.jsonl\")",
                ));
            }
        }
        positive_count("eval.examples", self.eval.examples)?;
        positive_count("eval.batch_size", self.eval.batch_size)?;
        positive_count("eval.max_new_tokens", self.eval.max_new_tokens)?;
        if self.sft.steps > 0 {
            positive_count("sft.batch_size", self.sft.batch_size)?;
        }
        self.sft.optim.validate("sft.optim", self.sft.steps)?;

        let rl = &self.rl;
        if rl.steps > 0 {
            positive_count("rl.prompts_per_step", rl.prompts_per_step)?;
            positive_count("rl.max_new_tokens", rl.max_new_tokens)?;
            positive_count("rl.epochs", rl.epochs)?;
            positive_count("rl.mini_batches", rl.mini_batches)?;
            if rl.group_size < 2 {
                return Err(invalid(
                    "rl.group_size",
                    rl.group_size,
                    format!(
                        "`{}` compares samples within a group and needs at least 2 per prompt",
                        rl.loss.kind()
                    ),
                ));
            }
            let Some(rows) = rl.prompts_per_step.checked_mul(rl.group_size) else {
                return Err(invalid(
                    "rl.prompts_per_step × rl.group_size",
                    format!("{} × {}", rl.prompts_per_step, rl.group_size),
                    "is too large: the samples of a step overflow a count",
                ));
            };
            if !rows.is_multiple_of(rl.mini_batches) {
                return Err(invalid(
                    "rl.mini_batches",
                    rl.mini_batches,
                    format!(
                        "must divide the {rows} samples of a step (prompts_per_step × group_size)"
                    ),
                ));
            }
            if self.rewards.is_empty() {
                return Err(invalid(
                    "rewards",
                    "[]",
                    "stage 2 needs at least one [[rewards]] entry",
                ));
            }
        }
        if !(rl.temperature > 0.0 && rl.temperature.is_finite()) {
            return Err(invalid(
                "rl.temperature",
                rl.temperature,
                "must be > 0 (log-probs are taken at the sampling temperature)",
            ));
        }
        if !(rl.entropy_coef >= 0.0 && rl.entropy_coef.is_finite()) {
            return Err(invalid(
                "rl.entropy_coef",
                rl.entropy_coef,
                "must be a finite number ≥ 0 (0 turns the entropy bonus off)",
            ));
        }
        if let Some(dynamic) = rl.dynamic_sampling {
            positive_count("rl.dynamic_sampling.max_rounds", dynamic.max_rounds)?;
        }
        if !(rl.top_p > 0.0 && rl.top_p <= 1.0) {
            return Err(invalid("rl.top_p", rl.top_p, "must be in (0, 1]"));
        }
        rl.loss
            .validate()
            .map_err(|e| invalid("rl.loss", rl.loss.kind(), e.to_string()))?;
        if let Some(advantage) = &rl.advantage {
            advantage
                .validate()
                .map_err(|e| invalid("rl.advantage", "…", e.to_string()))?;
        }
        let rl_updates = rl
            .steps
            .saturating_mul(rl.epochs)
            .saturating_mul(rl.mini_batches);
        rl.optim.validate("rl.optim", rl_updates)?;
        if !self.rewards.is_empty() {
            self.reward_set()
                .validate()
                .map_err(|e| invalid("rewards", "…", e.to_string()))?;
        }
        self.eval_metric()?;
        if self.checkpoint.keep == 0 {
            return Err(invalid(
                "checkpoint.keep",
                0,
                "at least the latest checkpoint must be kept",
            ));
        }
        let kl_coef = rl.loss.kl_coef();
        if kl_coef > 0.0 {
            return Err(invalid(
                "rl.loss.kl_coef",
                kl_coef,
                "the trainer keeps no frozen reference policy, so there are no reference \
                 log-probs for the KL term; remove the key (or set it to 0)",
            ));
        }
        // Last: sizes are checked against the model's context and this machine's memory.
        super::limits::check(self)
    }
}

/// Removes every null from a JSON tree's objects (TOML has no null; an absent key is `None`).
fn drop_nulls(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

fn positive_count(key: &str, value: usize) -> Result<(), ConfigError> {
    if value == 0 {
        return Err(invalid(key, 0, "must be at least 1"));
    }
    Ok(())
}

impl OptimConfig {
    /// The schedule over `total_steps` optimiser steps.
    pub fn schedule(&self, total_steps: usize) -> WarmupCosine {
        WarmupCosine {
            lr: self.lr,
            min_lr: self.min_lr,
            warmup_steps: self.warmup_steps,
            total_steps,
        }
    }

    fn validate(&self, key: &str, total_steps: usize) -> Result<(), ConfigError> {
        self.schedule(total_steps.max(self.warmup_steps))
            .validate()
            .map_err(|m| invalid(&format!("{key}.lr"), self.lr, m))?;
        if self.warmup_steps > total_steps && total_steps > 0 {
            return Err(invalid(
                &format!("{key}.warmup_steps"),
                self.warmup_steps,
                format!("exceeds the stage's {total_steps} optimiser steps"),
            ));
        }
        if !(self.max_grad_norm >= 0.0 && self.max_grad_norm.is_finite()) {
            return Err(invalid(
                &format!("{key}.max_grad_norm"),
                self.max_grad_norm,
                "must be ≥ 0 (0 = no clipping)",
            ));
        }
        self.adamw
            .validate("adamw")
            .map_err(|e| invalid(&format!("{key}.adamw"), "…", e.to_string()))
    }
}

/// Sets `a.b.c = value` in `tree`; `value` is read as a TOML value (`3`, `1e-4`, `true`,
/// `"text"`, `[1, 2]`) and, if it is not one, as a bare string (`kind=sapo`). A numeric segment
/// indexes an array (`rewards.0.weight=2`).
pub fn apply_override(tree: &mut toml::Table, raw: &str) -> Result<(), ConfigError> {
    let fail = |message: &str| ConfigError::Override {
        raw: raw.to_string(),
        message: message.to_string(),
    };
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| fail("expected KEY=VALUE, e.g. rl.loss.kind=sapo"))?;
    let key = key.trim();
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(fail("empty key segment; keys look like rl.optim.lr"));
    }
    let value = parse_value(value.trim());
    let mut root = toml::Value::Table(std::mem::take(tree));
    let result = set_path(&mut root, &segments, value).map_err(|m| fail(&m));
    let toml::Value::Table(table) = root else {
        unreachable!("the root stays a table")
    };
    *tree = table;
    result
}

fn set_path(root: &mut toml::Value, segments: &[&str], value: toml::Value) -> Result<(), String> {
    let (last, parents) = segments.split_last().expect("split yields one segment");
    let mut node = root;
    for segment in parents {
        node = descend(node, segment)?;
    }
    match node {
        toml::Value::Table(table) => {
            table.insert(last.to_string(), value);
            Ok(())
        }
        toml::Value::Array(array) => {
            let index: usize = last
                .parse()
                .map_err(|_| format!("`{last}` indexes an array: use a number"))?;
            let len = array.len();
            let slot = array
                .get_mut(index)
                .ok_or_else(|| format!("index {index} is past the array's end ({len} entries)"))?;
            *slot = value;
            Ok(())
        }
        _ => Err("the parent of the key is not a table".to_string()),
    }
}

fn descend<'a>(node: &'a mut toml::Value, segment: &str) -> Result<&'a mut toml::Value, String> {
    match node {
        toml::Value::Table(table) => Ok(table
            .entry(segment.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))),
        toml::Value::Array(array) => {
            let index: usize = segment
                .parse()
                .map_err(|_| format!("`{segment}` indexes an array: use a number"))?;
            let len = array.len();
            array
                .get_mut(index)
                .ok_or_else(|| format!("index {index} is past the array's end ({len} entries)"))
        }
        _ => Err(format!("`{segment}` is below a value that is not a table")),
    }
}

fn parse_value(text: &str) -> toml::Value {
    let wrapped = format!("v = {text}");
    match toml::from_str::<toml::Table>(&wrapped) {
        Ok(mut table) => table.remove("v").expect("parsed key"),
        Err(_) => toml::Value::String(text.to_string()),
    }
}
