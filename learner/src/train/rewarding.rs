//! The rewards of one RL step as the update sees them: the scored [`Group`]s of every
//! generation round concatenated (prompt-major, `G` samples per group), quarantined samples kept
//! out of the advantages, and the reward set's report turned into metrics. Scoring itself happens
//! on the rollout side (the source returns groups already scored).

use temper_rewards::RewardMetrics;
use temper_rewards::rollout::Group;

use super::records::RewardRecord;
use crate::advantages::AdvantageEstimator;
use crate::error::Result;

/// Rewards of one step's samples.
#[derive(Default)]
pub struct StepRewards {
    /// Weighted total per sample, groups in order; `None` = quarantined (left out of the update).
    pub total: Vec<Option<f64>>,
    /// Metrics of the set (per-component means, quarantine counts), over all groups.
    metrics: RewardMetrics,
}

impl StepRewards {
    /// Appends the rewards of a group (its samples follow the groups already added).
    pub fn push(&mut self, group: &Group) {
        self.total.extend(&group.rewards);
        self.metrics.merge(&group.metrics);
    }

    /// Group advantages over the scored samples of each group (`group` consecutive samples per
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

    /// Reward mean/std over scored samples, the quarantine count and the set's metrics.
    pub fn record(&self) -> RewardRecord {
        let scored: Vec<f64> = self.total.iter().flatten().copied().collect();
        let n = scored.len() as f64;
        let mean = (n > 0.0).then(|| scored.iter().sum::<f64>() / n);
        let std =
            mean.map(|mean| (scored.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n).sqrt());
        RewardRecord {
            reward_mean: mean,
            reward_std: std,
            quarantined: self.total.len() - scored.len(),
            per_reward: self.metrics.to_map(),
        }
    }
}
