//! The bridge from rollouts to the reward stack: builds [`temper_rewards`] samples, scores them,
//! keeps quarantined samples out of the advantages, and turns the set's report into metrics.

use serde_json::{Map, Value, json};
use temper_rewards::{RewardMetrics, RewardSet, RewardSetConfig, Sample};

use super::TrainError;
use super::rollout::Rollout;
use crate::advantages::AdvantageEstimator;
use crate::error::Result;

/// The run's reward stack.
pub struct Scorer {
    set: RewardSet,
}

/// Rewards of one step's rollouts.
#[derive(Default)]
pub struct StepRewards {
    /// Weighted total per rollout; `None` = quarantined (left out of the update).
    pub total: Vec<Option<f64>>,
    /// Metrics of the set (per-component means, quarantine counts).
    metrics: RewardMetrics,
}

impl Scorer {
    /// Builds the stack from the config (built-in kinds only).
    pub fn new(config: &RewardSetConfig) -> Result<Self, TrainError> {
        let set = RewardSet::from_config(config).map_err(|e| TrainError::Rewards(e.to_string()))?;
        Ok(Self { set })
    }

    /// Scores `rollouts`; `questions[p]` is prompt `p`'s (question, reference answer).
    pub fn score(
        &self,
        rollouts: &[Rollout],
        questions: &[(&str, &str)],
        max_new_tokens: usize,
    ) -> StepRewards {
        let samples: Vec<Sample> = rollouts
            .iter()
            .map(|r| {
                let (question, answer) = questions[r.prompt];
                Sample::new(question, r.text.clone())
                    .with_reference(answer)
                    .with_tokens(r.tokens.len(), max_new_tokens)
            })
            .collect();
        let mut metrics = RewardMetrics::default();
        let total = match self.set.score_blocking(&samples) {
            Ok(scored) => {
                metrics = scored.metrics.clone();
                scored
                    .totals
                    .iter()
                    .enumerate()
                    .map(|(i, total)| match total {
                        Ok(Some(t)) => Some(*t),
                        Ok(None) => {
                            tracing::warn!(sample = i, "no reward applies; left out of the update");
                            None
                        }
                        Err(q) => {
                            tracing::warn!(sample = i, reason = %q, "sample quarantined");
                            None
                        }
                    })
                    .collect()
            }
            Err(e) => {
                // The set never fails per sample; this is the runtime itself failing to start.
                tracing::error!(error = %e, "reward runtime failed; the step's samples are quarantined");
                vec![None; samples.len()]
            }
        };
        StepRewards { total, metrics }
    }
}

impl StepRewards {
    /// Appends the rewards of another generation round of the same step (its rollouts follow
    /// this round's, prompt-major).
    pub fn extend(&mut self, other: StepRewards) {
        self.total.extend(other.total);
        self.metrics.merge(&other.metrics);
    }

    /// Whether group `g` (rollouts `g·group .. (g+1)·group`) can teach anything: at least two
    /// scored samples whose rewards differ. Groups whose rewards are all equal have zero
    /// advantage under every estimator; DAPO's dynamic sampling drops them.
    pub fn informative(&self, g: usize, group: usize) -> bool {
        let scored = self.total[g * group..(g + 1) * group].iter().flatten();
        let (lo, hi) = scored.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
        hi - lo > 1e-9
    }

    /// Group advantages over the scored samples of each group (`group` consecutive rollouts per
    /// prompt); quarantined samples get 0 and are not trained on. A group with fewer than two
    /// scored samples has no baseline: all its advantages are 0.
    pub fn advantages(&self, estimator: &AdvantageEstimator, group: usize) -> Result<Vec<f32>> {
        let mut out = vec![0.0f32; self.total.len()];
        for (g, chunk) in self.total.chunks(group).enumerate() {
            let scored: Vec<(usize, f32)> = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.map(|t| (g * group + i, t as f32)))
                .collect();
            if scored.len() < 2 {
                continue;
            }
            let rewards: Vec<f32> = scored.iter().map(|(_, r)| *r).collect();
            let advantages = estimator.compute(&rewards, rewards.len())?;
            for ((index, _), advantage) in scored.iter().zip(advantages) {
                out[*index] = advantage;
            }
        }
        Ok(out)
    }

    /// Adds reward mean/std over scored samples, the quarantine count and the set's metrics.
    pub fn write_metrics(&self, record: &mut Map<String, Value>) {
        let scored: Vec<f64> = self.total.iter().flatten().copied().collect();
        let n = scored.len() as f64;
        if n > 0.0 {
            let mean = scored.iter().sum::<f64>() / n;
            let var = scored.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
            record.insert("reward_mean".into(), json!(mean));
            record.insert("reward_std".into(), json!(var.sqrt()));
        }
        record.insert("quarantined".into(), json!(self.total.len() - scored.len()));
        for (key, value) in self.metrics.to_map() {
            record.insert(key, json!(value));
        }
    }
}
