//! The rollout data model and the seam between generation and learning:
//!
//! - [`Sample`]: one response as the learner trains on it — every token after the prompt
//!   (generated and tool-response tokens), the response mask, behaviour log-probs, the tool images
//!   the model saw, the turns the rewards read, why it stopped and the policy version that made it.
//! - [`Group`]: the samples of one prompt, already scored (weighted totals, per-reward values and
//!   the reward set's metrics).
//! - [`RolloutSource`]: where a trainer gets groups from. The contract is stated once, on the
//!   trait.
//!
//! Why these live in `temper-rewards`: dependencies point down (model ← rewards ← actor,
//! model ← learner). The learner must not depend on the actor (a remote source replaces it), so
//! the types both sides exchange live in a crate both see. A [`Group`] arrives scored — rewards are
//! computed on the rollout side, next to generation — so it carries [`RewardMetrics`], a type of
//! this crate; `temper-model` sits below the rewards and cannot hold them. The reward-facing
//! [`crate::Sample`] (text only) stays what a reward sees; [`Sample::reward_sample`] derives it.

use burn::prelude::Backend;
use image::RgbImage;
use temper_model::preprocess::ProcessedImage;
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{FinishReason, Qwen3Vl, SamplingParams};

use crate::error::BoxError;
use crate::sample::{ToolCallStatus, Turn};
use crate::set::{RewardMetrics, ScoredBatch};

/// One finished sample of a rollout.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Every token after the prompt: generated and tool-response tokens, in order.
    pub token_ids: Vec<u32>,
    /// 1 where the policy generated the token (trained on), 0 for tool-response / template
    /// tokens (never trained on).
    pub response_mask: Vec<u8>,
    /// Behaviour log-prob of each token; 0 (ignored) where the mask is 0.
    pub behaviour_logprobs: Vec<f32>,
    /// The images of the tool responses in sequence order (after the prompt's), as the model
    /// saw them: the learner appends them to the prompt's images to recompute the forward pass.
    pub images: Vec<ProcessedImage>,
    /// The assistant turns and their tool calls; the last turn's text is the final answer.
    pub turns: Vec<Turn>,
    /// Why it stopped.
    pub finish: FinishReason,
    /// The policy version (optimiser updates) of the weights that generated it.
    pub policy_version: u64,
}

impl Sample {
    /// Tokens the policy generated (mask 1).
    pub fn generated_tokens(&self) -> usize {
        self.response_mask.iter().filter(|&&m| m == 1).count()
    }

    /// The final answer: the last turn's text (empty when nothing was generated).
    pub fn response(&self) -> &str {
        self.turns.last().map_or("", |t| t.assistant.as_str())
    }

    /// Its tool calls by outcome.
    pub fn tool_calls(&self) -> ToolCallCounts {
        let mut counts = ToolCallCounts::default();
        for call in self.turns.iter().flat_map(|t| &t.tool_calls) {
            counts.add(call.status);
        }
        counts
    }

    /// What the rewards see: the final answer, the turns, the prompt's reference and metadata,
    /// and the generated-token count against `max_new_tokens`.
    pub fn reward_sample(&self, prompt: &RolloutPrompt, max_new_tokens: usize) -> crate::Sample {
        let mut sample = crate::Sample::new(prompt.text.clone(), self.response())
            .with_turns(self.turns.clone())
            .with_tokens(self.generated_tokens(), max_new_tokens);
        sample.reference = prompt.reference.clone();
        sample.metadata = prompt.metadata.clone();
        sample
    }
}

/// Tool calls of a sample (or a group) by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ToolCallCounts {
    /// Calls that ran and returned a result.
    pub ok: usize,
    /// Calls that did not parse.
    pub malformed: usize,
    /// Calls of a tool that does not exist.
    pub unknown: usize,
    /// Calls the tool rejected, that crashed, or that were not executed.
    pub failed: usize,
    /// Calls that ran out of time.
    pub timeout: usize,
}

impl ToolCallCounts {
    /// Counts one call.
    pub fn add(&mut self, status: ToolCallStatus) {
        match status {
            ToolCallStatus::Ok => self.ok += 1,
            ToolCallStatus::Malformed => self.malformed += 1,
            ToolCallStatus::UnknownTool => self.unknown += 1,
            ToolCallStatus::Failed => self.failed += 1,
            ToolCallStatus::Timeout => self.timeout += 1,
        }
    }

    /// All calls.
    pub fn total(&self) -> usize {
        self.ok + self.malformed + self.unknown + self.failed + self.timeout
    }

    /// Adds another count.
    pub fn merge(&mut self, other: &ToolCallCounts) {
        self.ok += other.ok;
        self.malformed += other.malformed;
        self.unknown += other.unknown;
        self.failed += other.failed;
        self.timeout += other.timeout;
    }
}

/// One reward's values over a group's samples.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardComponent {
    /// The reward's metric name (`exact_match`, `format`, ...).
    pub name: String,
    /// Per sample: its score, `None` when it did not apply or quarantined the sample.
    pub values: Vec<Option<f64>>,
}

/// The scored samples of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// The prompt's id ([`RolloutPrompt::id`]).
    pub prompt_id: u64,
    /// The samples, in group order.
    pub samples: Vec<Sample>,
    /// Per sample: the weighted total; `None` = quarantined or no reward applied (left out of
    /// the update).
    pub rewards: Vec<Option<f64>>,
    /// Per reward of the set, in config order.
    pub components: Vec<RewardComponent>,
    /// The reward set's summary of this group.
    pub metrics: RewardMetrics,
}

impl Group {
    /// A group from its samples and the reward set's scores of them (same order). Quarantined and
    /// not-applicable samples get no reward and are logged.
    pub fn scored(prompt_id: u64, samples: Vec<Sample>, scored: ScoredBatch) -> Self {
        let rewards = scored
            .totals
            .iter()
            .enumerate()
            .map(|(i, total)| match total {
                Ok(Some(t)) => Some(*t),
                Ok(None) => {
                    tracing::warn!(
                        prompt = prompt_id,
                        sample = i,
                        "no reward applies; left out of the update"
                    );
                    None
                }
                Err(q) => {
                    tracing::warn!(prompt = prompt_id, sample = i, reason = %q, "sample quarantined");
                    None
                }
            })
            .collect();
        let components = scored
            .rewards
            .iter()
            .map(|r| RewardComponent {
                name: r.name.clone(),
                values: r
                    .scores
                    .iter()
                    .map(|s| s.as_ref().ok().copied().flatten())
                    .collect(),
            })
            .collect();
        Self {
            prompt_id,
            samples,
            rewards,
            components,
            metrics: scored.metrics,
        }
    }

    /// Whether the group can teach anything: at least two scored samples whose rewards differ.
    /// Groups whose rewards are all equal have zero advantage under every estimator; DAPO's
    /// dynamic sampling drops them.
    pub fn informative(&self) -> bool {
        let (lo, hi) = self
            .rewards
            .iter()
            .flatten()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &r| {
                (lo.min(r), hi.max(r))
            });
        hi - lo > 1e-9
    }

    /// The values of the reward named `name`, if the set has it.
    pub fn component(&self, name: &str) -> Option<&[Option<f64>]> {
        self.components
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.values.as_slice())
    }
}

/// One prompt to roll out, with what the rewards compare its samples to.
#[derive(Debug, Clone)]
pub struct RolloutPrompt {
    /// Identifies the prompt within the run (the trainer uses its data-stream index).
    pub id: u64,
    /// The tokenised prompt with its processed images.
    pub prepared: PreparedPrompt,
    /// The prompt's images as given (what tools such as `image_zoom` crop), in prompt order.
    pub images: Vec<RgbImage>,
    /// The prompt text the rewards see.
    pub text: String,
    /// The reference answer, if the task has one.
    pub reference: Option<String>,
    /// Free-form per-prompt data for the rewards.
    pub metadata: Option<serde_json::Value>,
    /// The seed of this prompt's sample streams: sample `i` draws from `(seed, i)`.
    pub seed: u64,
}

/// What a trainer asks a [`RolloutSource`] for.
#[derive(Debug, Clone)]
pub struct RolloutRequest<'a> {
    /// The prompts, one group each.
    pub prompts: &'a [RolloutPrompt],
    /// Samples per prompt.
    pub group_size: usize,
    /// Sampling settings; `seed` is ignored (each prompt carries its own).
    pub params: SamplingParams,
    /// The version of the policy handed over; stamped on every sample.
    pub policy_version: u64,
}

/// A source's answer: one scored group per requested prompt, in request order, and where the
/// time went.
#[derive(Debug, Clone, Default)]
pub struct Rollouts {
    /// One group per prompt of the request, in order.
    pub groups: Vec<Group>,
    /// Seconds spent generating (tool calls included).
    pub generation_seconds: f64,
    /// Seconds spent scoring.
    pub scoring_seconds: f64,
}

/// A rollout source failed (the model, a tool set-up, the transport of a remote source).
#[derive(Debug, thiserror::Error)]
#[error("rollout: {source}")]
pub struct RolloutError {
    /// What failed.
    #[source]
    pub source: BoxError,
}

impl RolloutError {
    /// Wraps the error of a source.
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

/// Where a trainer's groups come from.
///
/// Contract: [`next_groups`](Self::next_groups) returns exactly one [`Group`] per prompt of the
/// request, in request order, each with `group_size` samples generated by `policy` (the caller's
/// current weights, `request.policy_version`) and already scored by the source's reward stack.
/// Sample `i` of prompt `p` draws from the stream `(prompts[p].seed, i)`, so equal requests on
/// equal weights give equal groups (exact resume depends on it). A sample's tokens after the
/// prompt are never re-tokenised: the learner scores `token_ids` as they are, under the processor
/// the prompts were prepared with, suppressing [`temper_model::policy_suppressed_tokens`].
/// Errors are the source failing as a whole; a sample a reward could not score comes back with
/// reward `None`, not as an error.
pub trait RolloutSource<B: Backend> {
    /// Samples and scores the request's groups with `policy`.
    fn next_groups(
        &mut self,
        policy: &Qwen3Vl<B>,
        processor: &Processor,
        request: &RolloutRequest<'_>,
    ) -> Result<Rollouts, RolloutError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::ToolCallRecord;

    fn sample(turns: Vec<Turn>) -> Sample {
        Sample {
            token_ids: vec![1, 2, 3],
            response_mask: vec![1, 0, 1],
            behaviour_logprobs: vec![-0.5, 0.0, -0.25],
            images: Vec::new(),
            turns,
            finish: FinishReason::Stop,
            policy_version: 3,
        }
    }

    #[test]
    fn reward_sample_sees_the_last_turn_and_the_generated_count() {
        let turns = vec![
            Turn {
                assistant: "<tool_call>x</tool_call>".into(),
                tool_calls: vec![ToolCallRecord {
                    status: ToolCallStatus::Malformed,
                    ..ToolCallRecord::default()
                }],
            },
            Turn {
                assistant: "3".into(),
                tool_calls: Vec::new(),
            },
        ];
        let prompt = RolloutPrompt {
            id: 7,
            prepared: PreparedPrompt {
                input_ids: vec![9],
                images: Vec::new(),
                videos: Vec::new(),
            },
            images: Vec::new(),
            text: "How many?".into(),
            reference: Some("3".into()),
            metadata: None,
            seed: 0,
        };
        let s = sample(turns);
        let r = s.reward_sample(&prompt, 10);
        assert_eq!(r.response, "3");
        assert_eq!(r.reference.as_deref(), Some("3"));
        assert_eq!(
            (r.response_tokens, r.max_response_tokens),
            (Some(2), Some(10))
        );
        assert_eq!(r.turns.len(), 2);
        assert_eq!(s.tool_calls().malformed, 1);
        assert_eq!(s.tool_calls().total(), 1);
    }

    #[test]
    fn a_group_is_informative_only_when_scored_rewards_differ() {
        let group = |rewards: Vec<Option<f64>>| Group {
            prompt_id: 0,
            samples: Vec::new(),
            rewards,
            components: Vec::new(),
            metrics: RewardMetrics::default(),
        };
        assert!(!group(vec![Some(1.0), Some(1.0), None]).informative());
        assert!(!group(vec![Some(1.0), None]).informative());
        assert!(group(vec![Some(1.0), None, Some(0.0)]).informative());
    }
}
