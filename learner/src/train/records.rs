//! The typed records of a run: one per SFT step, RL step and evaluation. A record is written as
//! one line of `metrics.jsonl` (its serde form: `stage`, then its fields), published as
//! Prometheus gauges ([`telemetry`](super::telemetry)) and shown by the progress bar (the
//! [`Observer`](super::Observer)); all three read the same value.
//!
//! Field names are the `metrics.jsonl` contract: plots, tests and users' scripts read them.

use std::collections::BTreeMap;

use serde::Serialize;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum StepRecord {
    /// An SFT step.
    Sft(SftRecord),
    /// An RL step.
    Rl(Box<RlRecord>),
    /// A held-out evaluation.
    Eval(EvalRecord),
}

impl StepRecord {
    /// `"sft"`, `"rl"` or `"eval"` (the `stage` field).
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Sft(_) => "sft",
            Self::Rl(_) => "rl",
            Self::Eval(_) => "eval",
        }
    }

    /// Where in the run the record was written.
    pub fn position(&self) -> &Position {
        match self {
            Self::Sft(r) => &r.at,
            Self::Rl(r) => &r.at,
            Self::Eval(r) => &r.at,
        }
    }

    /// The serde form, as written to `metrics.jsonl`.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self).expect("a record serialises") {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a tagged record serialises to an object"),
        }
    }
}

/// Where a record was written: the stage's step, the run's step and the weights' version.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Position {
    /// Steps done in the record's stage (0 for the initial evaluation).
    pub step: usize,
    /// SFT steps, then RL steps: the x axis of the plot.
    pub global_step: usize,
    /// Optimiser updates applied so far.
    pub policy_version: u64,
    /// Dataset records skipped as bad so far (dataset runs only).
    #[serde(rename = "data/skipped", skip_serializing_if = "Option::is_none")]
    pub data_skipped: Option<u64>,
}

/// An SFT step: cross-entropy on the reference answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SftRecord {
    /// Where.
    #[serde(flatten)]
    pub at: Position,
    /// Mean cross-entropy per response token.
    pub loss: f64,
    /// Mean entropy of the policy per response token, in nats.
    pub entropy: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Learning rate of the update.
    pub lr: f64,
    /// Response tokens trained on.
    pub response_tokens: usize,
    /// Wall time of the step.
    pub seconds: f64,
    /// Sequence tokens (prompt + response, padding included) through the learner per second.
    pub tokens_per_second: f64,
}

/// Which evaluation of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalPoint {
    /// Before any training.
    Initial,
    /// After stage 1.
    AfterSft,
    /// Every `rl.eval_every` RL steps.
    Rl,
    /// At the end.
    Final,
}

impl EvalPoint {
    /// The serde name (`"after_sft"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "initial",
            Self::AfterSft => "after_sft",
            Self::Rl => "rl",
            Self::Final => "final",
        }
    }
}

/// A held-out evaluation: greedy answers scored by the run's reward stack.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalRecord {
    /// Where.
    #[serde(flatten)]
    pub at: Position,
    /// Which evaluation.
    pub point: EvalPoint,
    /// Mean of the `metric` reward over the held-out prompts (unscored = 0).
    pub accuracy: f64,
    /// The reward that measured it (`eval.metric`).
    pub metric: String,
    /// Held-out prompts decoded.
    pub examples: usize,
}

/// An RL step: its samples, rewards, advantages, updates and timing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RlRecord {
    /// Where.
    #[serde(flatten)]
    pub at: Position,
    /// Rewards of every sample of the step.
    #[serde(flatten)]
    pub rewards: RewardRecord,
    /// Mean of the `eval.metric` reward over the step's samples.
    pub train_accuracy: f64,
    /// Advantages of the trained samples (absent when none was trained).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub advantages: Option<AdvantageRecord>,
    /// DAPO's dynamic sampling (when on).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub dynamic_sampling: Option<DynamicSamplingRecord>,
    /// The objective's figures over the step's updates.
    #[serde(flatten)]
    pub update: UpdateRecord,
    /// Mean generated tokens per sample.
    pub response_length_mean: f64,
    /// Share of samples that ended on a stop token (the rest hit a length limit).
    pub stopped_fraction: f64,
    /// Wall time of the step.
    pub seconds: f64,
    /// Generated tokens per second of generation.
    pub generated_tokens_per_second: f64,
    /// Sequence tokens through the learner per second of update.
    pub tokens_per_second: f64,
    /// Shares of the step's wall time.
    pub time_share_generation: f64,
    /// Reward scoring's share.
    pub time_share_reward: f64,
    /// The updates' share.
    pub time_share_update: f64,
}

/// The rewards of a step's samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RewardRecord {
    /// Mean total over scored samples (absent when none was scored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_mean: Option<f64>,
    /// Standard deviation of the totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reward_std: Option<f64>,
    /// Samples left out of the update (quarantined or no reward applied).
    pub quarantined: usize,
    /// The reward set's own figures, keyed `reward/<name>[/<component>]` by the rewards'
    /// configured names ([`RewardMetrics::to_map`](temper_rewards::RewardMetrics::to_map)).
    #[serde(flatten)]
    pub per_reward: BTreeMap<String, f64>,
}

/// Statistics of the trained samples' advantages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AdvantageRecord {
    /// Mean.
    pub advantage_mean: f64,
    /// Standard deviation.
    pub advantage_std: f64,
    /// Smallest.
    pub advantage_min: f64,
    /// Largest.
    pub advantage_max: f64,
    /// Share that is exactly 0 (groups whose rewards all agree).
    pub advantage_zero_fraction: f64,
}

impl AdvantageRecord {
    /// The statistics of `advantages[rows]`; `None` for no rows.
    pub fn of(advantages: &[f32], rows: &[usize]) -> Option<Self> {
        if rows.is_empty() {
            return None;
        }
        let values: Vec<f64> = rows.iter().map(|&i| f64::from(advantages[i])).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        Some(Self {
            advantage_mean: mean,
            advantage_std: var.sqrt(),
            advantage_min: values.iter().copied().fold(f64::INFINITY, f64::min),
            advantage_max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            advantage_zero_fraction: values.iter().filter(|v| **v == 0.0).count() as f64 / n,
        })
    }
}

/// DAPO's dynamic sampling in a step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DynamicSamplingRecord {
    /// Generation rounds run.
    #[serde(rename = "dynamic_sampling/rounds")]
    pub rounds: usize,
    /// Groups the update trained on.
    #[serde(rename = "dynamic_sampling/kept_groups")]
    pub kept_groups: usize,
    /// Share of sampled groups whose rewards differ.
    #[serde(rename = "dynamic_sampling/informative_fraction")]
    pub informative_fraction: f64,
}

/// The objective's figures over a step's updates: micro-batch values weighted as the objective
/// weights them, averaged over updates. Optional figures are those the objective has.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateRecord {
    /// The objective (`gspo`, `sapo`, ...).
    pub loss_kind: String,
    /// The loss (absent when no update ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// The policy-gradient part of the loss.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pg_loss: Option<f64>,
    /// Share of tokens (or sequences) clipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clip_fraction: Option<f64>,
    /// SAPO's mean soft-gate weight.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sapo_gate_mean: Option<f64>,
    /// Mean importance ratio.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_mean: Option<f64>,
    /// Mean sequence-level ratio (GSPO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq_ratio_mean: Option<f64>,
    /// Approximate KL to the behaviour policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approx_kl: Option<f64>,
    /// KL to the reference policy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
    /// Smallest ratio seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_min: Option<f64>,
    /// Largest ratio seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio_max: Option<f64>,
    /// Mean global gradient norm before clipping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<f64>,
    /// Learning rate of the last update.
    pub lr: f64,
    /// Optimiser updates in the step.
    pub updates: usize,
    /// Mean policy entropy per trained token, in nats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entropy: Option<f64>,
    /// Mean `|log π_learner − log π_behaviour|` on trained tokens before the step's first update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprob_mismatch_mean: Option<f64>,
    /// Largest such difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logprob_mismatch_max: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Position {
        Position {
            step: 3,
            global_step: 13,
            policy_version: 13,
            data_skipped: None,
        }
    }

    #[test]
    fn records_serialise_flat_with_their_stage() {
        let eval = StepRecord::Eval(EvalRecord {
            at: at(),
            point: EvalPoint::AfterSft,
            accuracy: 0.5,
            metric: "exact_match".into(),
            examples: 8,
        });
        assert_eq!(
            serde_json::to_value(&eval).unwrap(),
            serde_json::json!({
                "stage": "eval", "step": 3, "global_step": 13, "policy_version": 13,
                "point": "after_sft", "accuracy": 0.5, "metric": "exact_match", "examples": 8
            })
        );
        let skipped = Position {
            data_skipped: Some(2),
            ..at()
        };
        let map = StepRecord::Sft(SftRecord {
            at: skipped,
            loss: 1.0,
            entropy: 0.5,
            grad_norm: 2.0,
            lr: 1e-3,
            response_tokens: 4,
            seconds: 0.1,
            tokens_per_second: 40.0,
        })
        .to_map();
        assert_eq!(map["stage"], "sft");
        assert_eq!(map["data/skipped"], 2);
    }

    #[test]
    fn advantage_statistics_are_over_the_trained_rows() {
        let stats = AdvantageRecord::of(&[1.0, -1.0, 0.0, 7.0], &[0, 1, 2]).unwrap();
        assert_eq!(stats.advantage_mean, 0.0);
        assert!((stats.advantage_std - (2.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert_eq!((stats.advantage_min, stats.advantage_max), (-1.0, 1.0));
        assert!((stats.advantage_zero_fraction - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(AdvantageRecord::of(&[1.0], &[]), None);
    }
}
