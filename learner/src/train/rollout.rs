//! Rollouts: `G` samples per prompt from the current policy, with their behaviour log-probs and
//! decoded text.

use burn::prelude::*;
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{FinishReason, Qwen3Vl, SamplingParams};

use super::TrainError;

/// One sampled response.
#[derive(Debug, Clone)]
pub struct Rollout {
    /// Index of its prompt in the step's prompt list.
    pub prompt: usize,
    /// Response ids, the stop token included when one was emitted.
    pub tokens: Vec<u32>,
    /// Behaviour log-prob of each token, at the sampling temperature.
    pub logprobs: Vec<f32>,
    /// The response text (special tokens skipped).
    pub text: String,
    /// Whether it ended with a stop token (else it hit the length limit).
    pub stopped: bool,
}

/// Samples `group` responses for each prompt; rows come prompt-major.
pub fn sample<B: Backend>(
    policy: &Qwen3Vl<B>,
    processor: &Processor,
    prompts: &[PreparedPrompt],
    group: usize,
    params: &SamplingParams,
    device: &B::Device,
) -> Result<Vec<Rollout>, TrainError> {
    let model_error = |e: temper_model::ModelError| TrainError::Model(e.to_string());
    let batch = processor.batch::<B>(prompts, device).map_err(model_error)?;
    // Each prompt draws from its own streams: seed + prompt index.
    let per_prompt: Vec<SamplingParams> = (0..prompts.len())
        .map(|p| SamplingParams {
            seed: params.seed.wrapping_add((p as u64) << 20),
            ..params.clone()
        })
        .collect();
    let generations = policy
        .generate(&batch, group, &per_prompt)
        .map_err(model_error)?;
    generations
        .into_iter()
        .map(|g| {
            let text = processor
                .tokenizer
                .decode(&g.tokens, true)
                .map_err(|e| TrainError::Model(e.to_string()))?;
            Ok(Rollout {
                prompt: g.prompt,
                stopped: g.finish == FinishReason::Stop,
                tokens: g.tokens,
                logprobs: g.logprobs,
                text,
            })
        })
        .collect()
}
