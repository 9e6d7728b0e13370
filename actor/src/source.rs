//! [`InProcessSource`]: the [`RolloutSource`] of a single-process run — the tool loop on the
//! learner's current weights, scored by the run's reward stack in the same process.
//!
//! The trainer hands over its policy (the inner-backend copy of its current weights) each call;
//! this source runs [`ToolRollout::run_batch`] on it with every prompt's own seed, on the
//! caller's (compute) thread, then scores each group with the reward set on the binary's I/O
//! runtime (the judge's HTTP calls, plug-in RPCs and reward timeouts live there), so a [`Group`]
//! leaves here scored (rewards next to generation). No runtime is built per call.

use std::time::Instant;

use burn::prelude::*;
use temper_model::processor::Processor;
use temper_model::{Qwen3Vl, SamplingParams};
use temper_rewards::RewardSet;
use temper_rewards::rollout::{Group, RolloutError, RolloutRequest, RolloutSource, Rollouts};
use tokio::runtime::Handle;

use crate::config::ToolLoopConfig;
use crate::rollout::{PromptInput, ToolRollout};
use crate::tools::ToolRegistry;

/// Rollouts in this process: the tool loop plus the reward stack.
pub struct InProcessSource {
    rewards: RewardSet,
    tools: ToolRegistry,
    config: ToolLoopConfig,
    io: Handle,
}

impl InProcessSource {
    /// A source that scores with `rewards` on the runtime `io` and offers `tools` under
    /// `config`'s limits. An empty registry gives single-turn sampling: a turn that calls a tool
    /// gets an `unknown tool` response (or, with `max_turns = 1`, ends the sample).
    ///
    /// `next_groups` must not be called from inside `io` (it blocks on it).
    pub fn new(
        rewards: RewardSet,
        tools: ToolRegistry,
        config: ToolLoopConfig,
        io: Handle,
    ) -> Self {
        Self {
            rewards,
            tools,
            config,
            io,
        }
    }
}

impl<B: Backend> RolloutSource<B> for InProcessSource {
    fn next_groups(
        &mut self,
        policy: &Qwen3Vl<B>,
        processor: &Processor,
        request: &RolloutRequest<'_>,
    ) -> Result<Rollouts, RolloutError> {
        let generation_started = Instant::now();
        let rollout = ToolRollout::new(
            policy,
            processor,
            &self.tools,
            self.config.clone(),
            self.io.clone(),
        )
        .map_err(RolloutError::new)?
        .with_policy_version(request.policy_version);
        let params: Vec<SamplingParams> = request
            .prompts
            .iter()
            .map(|p| SamplingParams {
                seed: p.seed,
                ..request.params.clone()
            })
            .collect();
        let inputs: Vec<PromptInput<'_>> = request
            .prompts
            .iter()
            .zip(&params)
            .map(|(p, params)| PromptInput {
                prompt: &p.prepared,
                images: &p.images,
                params,
            })
            .collect();
        let generated = rollout
            .run_batch(&inputs, request.group_size)
            .map_err(RolloutError::new)?;
        let generation_seconds = generation_started.elapsed().as_secs_f64();

        let scoring_started = Instant::now();
        let max_new_tokens = request.params.max_new_tokens;
        let groups = request
            .prompts
            .iter()
            .zip(generated)
            .map(|(prompt, group)| {
                let samples: Vec<temper_rewards::Sample> = group
                    .samples
                    .iter()
                    .map(|s| s.reward_sample(prompt, max_new_tokens))
                    .collect();
                let scored = self.io.block_on(self.rewards.score(&samples));
                Group::scored(prompt.id, group.samples, scored)
            })
            .collect();
        Ok(Rollouts {
            groups,
            generation_seconds,
            scoring_seconds: scoring_started.elapsed().as_secs_f64(),
        })
    }
}
