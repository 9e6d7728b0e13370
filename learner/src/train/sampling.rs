//! RL sampling: the task's prompts tokenised, handed with the current weights to the
//! [`RolloutSource`](temper_rewards::RolloutSource), and its scored groups checked; with DAPO's
//! dynamic sampling, further rounds until enough groups teach.

use burn::tensor::backend::AutodiffBackend;
use temper_model::{Qwen3Vl, SamplingParams};
use temper_rewards::rollout::{Group, RolloutPrompt, RolloutRequest, Rollouts};

use super::TrainError;
use super::config::RlConfig;
use super::rewarding::StepRewards;
use super::trainer::Trainer;
use crate::tasks::task::{Split, TaskPrompt};

/// One RL step's sampled groups: every round's prompts and scored groups (one per prompt, in
/// order), their rewards, and the groups the update trains on.
#[derive(Default)]
pub(super) struct Sampled {
    pub(super) prompts: Vec<RolloutPrompt>,
    pub(super) groups: Vec<Group>,
    pub(super) rewards: StepRewards,
    /// Indexes of the groups (= prompts) to train on, in sampling order.
    pub(super) kept_groups: Vec<usize>,
    /// Generation rounds run.
    pub(super) rounds: usize,
    pub(super) generation_seconds: f64,
    pub(super) scoring_seconds: f64,
}

impl<B: AutodiffBackend> Trainer<B> {
    /// The task's prompt `index` of `split`, tokenised, whose samples draw from `seed`'s
    /// streams.
    pub(super) fn prompt(
        &self,
        split: Split,
        index: u64,
        seed: u64,
    ) -> Result<RolloutPrompt, TrainError> {
        let TaskPrompt {
            messages,
            images,
            videos,
            text,
            reference,
            metadata,
            ..
        } = self.task.prompt(self.config.seed, split, index)?;
        let prepared = self.processor.prepare(&messages, &images, &videos)?;
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

    /// Asks the source for `prompts`' groups with the current policy.
    pub(super) fn rollouts(
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

    /// Samples `G` responses for `prompts_per_step` prompts and scores them. Without dynamic
    /// sampling every group is kept; with it, groups whose rewards are all equal are dropped and
    /// further rounds of prompts are sampled (each round from its own seed streams and the next
    /// prompts of the data stream) until `prompts_per_step` groups are kept or `max_rounds` ran.
    pub(super) fn sample_groups(&mut self, rl: &RlConfig) -> Result<Sampled, TrainError> {
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
                stop_token_ids: self.processor.stop_token_ids.clone(),
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
}
