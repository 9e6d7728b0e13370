//! How the next token of a row is chosen: [`TokenPicker`]. The rollout uses
//! [`SamplingPicker`] (the model's seeded sampler, with behaviour log-probs); tests script a
//! policy by forcing tokens through the same interface.

use temper_model::SamplingParams;
use temper_model::sampling::Sampler;

/// Where in a rollout a token is being picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickAt {
    /// The sample's prompt in the batch (0 for a single-prompt rollout).
    pub prompt: usize,
    /// The sample's index in its group.
    pub sample: usize,
    /// The assistant turn, from 0.
    pub turn: usize,
    /// Tokens already generated in this turn.
    pub position: usize,
}

/// Chooses each generated token and returns it with its behaviour log-prob.
pub trait TokenPicker {
    /// The token after `logits` (`[V]`, the model's next-token logits for this row).
    fn pick(&mut self, at: PickAt, logits: &[f32]) -> (u32, f32);
}

/// The model's sampler: sample `i` of a prompt draws from the stream `(params.seed, i)`, as
/// `Qwen3Vl::generate` does, so a single-turn rollout samples the same tokens.
#[derive(Debug, Clone)]
pub struct SamplingPicker {
    /// Per prompt.
    params: Vec<SamplingParams>,
    group: usize,
    /// Prompt-major, `group` per prompt.
    samplers: Vec<Sampler>,
}

impl SamplingPicker {
    /// Samplers for `group` samples of one prompt.
    pub fn new(params: SamplingParams, group: usize) -> Self {
        Self::for_prompts(std::slice::from_ref(&params), group)
    }

    /// Samplers for `group` samples of each prompt (`params[p]` for prompt `p`).
    pub fn for_prompts(params: &[SamplingParams], group: usize) -> Self {
        let samplers = params
            .iter()
            .flat_map(|p| (0..group).map(|i| Sampler::new(p.seed, i as u64)))
            .collect();
        Self {
            params: params.to_vec(),
            group,
            samplers,
        }
    }
}

impl TokenPicker for SamplingPicker {
    fn pick(&mut self, at: PickAt, logits: &[f32]) -> (u32, f32) {
        let params = &self.params[at.prompt];
        self.samplers[at.prompt * self.group + at.sample].sample(logits, params)
    }
}
