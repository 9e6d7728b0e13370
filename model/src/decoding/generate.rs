//! Batched, grouped generation with a KV cache kept outside the model.
//!
//! Grouped sampling prefills each prompt once and forks its cache into `G` rows, so a group of
//! samples shares the prompt's compute; all rows then decode together, one batched step per
//! token. Every sampled token comes with its behaviour log-prob (see `sampling`). Tokens are
//! picked on the device when every row samples the whole distribution (`device_sampling`), so a
//! step copies ids, not logits, to the host; top-k / top-p rows are sampled on the host (the one
//! [`Picker`] of every generation path).

use burn::prelude::*;

use crate::error::{ModelError, Result};
use crate::model::{Batch, Qwen3Vl};
use crate::picker::{PickAt, Picker};
use crate::sampling::SamplingParams;

/// Why a sample stopped: the one finish enum of every generation path (`generate` here, the
/// actor's tool loop, the learner's rollout samples).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Emitted a stop token (kept as the last token) and, in a tool loop, called no tool.
    Stop,
    /// Reached `max_new_tokens`, a token budget or the model's context.
    Length,
    /// A tool loop's last allowed turn called tools (`generate` never ends so).
    MaxTurns,
}

/// The tokens a policy may never emit, derived from the tokenizer's special tokens: the vision
/// markers and placeholders. A generated `<|image_pad|>` / `<|video_pad|>` would be re-read as an
/// image that does not exist, and a stray `<|vision_start|>` / `<|vision_end|>` opens or closes a
/// visual block that holds none. Sampling, evaluation and the learner's re-scoring all remove
/// exactly these (the one list; the learner's recomputed log-probs match the behaviour ones only
/// when both sides suppress the same ids).
pub fn policy_suppressed_tokens(special: &crate::tokenizer::SpecialTokens) -> Vec<u32> {
    vec![
        special.vision_start,
        special.vision_end,
        special.image_pad,
        special.video_pad,
    ]
}

/// One generated continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Index of the prompt in the batch.
    pub prompt: usize,
    /// Index of the sample within its prompt's group.
    pub sample: usize,
    pub tokens: Vec<u32>,
    /// Behaviour log-prob of each token.
    pub logprobs: Vec<f32>,
    pub finish: FinishReason,
}

impl<B: Backend> Qwen3Vl<B> {
    /// Generates `group` samples for every prompt of `batch` (`params[p]` for prompt `p`).
    ///
    /// Rows are returned prompt-major: prompt 0's samples 0..group, then prompt 1's, ...
    /// Sample `i` of a prompt draws from the stream `(params.seed, i)`, so equal seeds give
    /// equal tokens.
    pub fn generate(
        &self,
        batch: &Batch<B>,
        group: usize,
        params: &[SamplingParams],
    ) -> Result<Vec<Generation>> {
        let prompts = batch.batch_size();
        let max_new = self.check_generate_sizes(batch, group, params)?;
        let mut cache = self.new_cache(prompts, batch.seq_len() + max_new);
        let prompt_logits = self.prefill(batch, &mut cache)?;
        let vocab = prompt_logits.dims()[1];
        let mut cache = if group > 1 { cache.fork(group) } else { cache };

        let rows = prompts * group;
        let row_params: Vec<&SamplingParams> = (0..rows).map(|r| &params[r / group]).collect();
        let mut out: Vec<Generation> = (0..rows)
            .map(|r| Generation {
                prompt: r / group,
                sample: r % group,
                tokens: Vec::new(),
                logprobs: Vec::new(),
                finish: FinishReason::Length,
            })
            .collect();
        let mut done: Vec<bool> = row_params.iter().map(|p| p.max_new_tokens == 0).collect();
        // Before the first step all samples of a prompt share the prompt's logits.
        let device = prompt_logits.device();
        let first_rows: Vec<i64> = (0..rows).map(|r| (r / group) as i64).collect();
        let first_rows =
            Tensor::<B, 1, Int>::from_data(TensorData::new(first_rows, [rows]), &device);
        let mut logits = prompt_logits.select(0, first_rows);
        let mut picker = Picker::seeded(params, group, vocab, &device);
        let pad = batch.input_ids[0][0];
        loop {
            let mut picks = picker.step(logits);
            let mut feed = vec![pad; rows];
            for r in 0..rows {
                if done[r] {
                    continue;
                }
                let p = row_params[r];
                let g = &mut out[r];
                let at = PickAt {
                    prompt: g.prompt,
                    sample: g.sample,
                    turn: 0,
                    position: g.tokens.len(),
                };
                let (token, logprob) = picks.take(r, at);
                g.tokens.push(token);
                g.logprobs.push(logprob);
                feed[r] = token;
                if p.stop_token_ids.contains(&token) {
                    g.finish = FinishReason::Stop;
                    done[r] = true;
                } else if g.tokens.len() >= p.max_new_tokens {
                    done[r] = true;
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            logits = self.decode_step(&feed, &mut cache);
        }
        Ok(out)
    }
}

impl<B: Backend> Qwen3Vl<B> {
    /// Checks a `generate` call's sizes before anything is allocated, with checked arithmetic
    /// (a huge `group` or `max_new_tokens` must be an error, not a wrapped length, a hang or an
    /// allocation abort); returns the largest `max_new_tokens`.
    fn check_generate_sizes(
        &self,
        batch: &Batch<B>,
        group: usize,
        params: &[SamplingParams],
    ) -> Result<usize> {
        let prompts = batch.batch_size();
        if params.len() != prompts {
            return Err(ModelError::input(
                "sampling",
                format!("{} sampling settings for {prompts} prompts", params.len()),
            ));
        }
        if group == 0 {
            return Err(ModelError::input("group", "group size must be at least 1"));
        }
        let vocab = self.config.text_config.vocab_size;
        for p in params {
            p.validate().map_err(|m| ModelError::input("sampling", m))?;
            if let Some(id) = p.stop_token_ids.iter().find(|&&t| t as usize >= vocab) {
                return Err(ModelError::input(
                    "stop_token_ids",
                    format!("token id {id} is outside the vocabulary (ids 0..{vocab})"),
                ));
            }
        }
        let max_new = params.iter().map(|p| p.max_new_tokens).max().unwrap_or(0);
        let limit = self.config.text_config.max_position_embeddings;
        let seq = batch.seq_len();
        if seq.checked_add(max_new).is_none_or(|total| total > limit) {
            return Err(ModelError::input(
                "max_new_tokens",
                format!(
                    "prompt length {seq} + max_new_tokens {max_new} exceeds \
                     max_position_embeddings {limit}"
                ),
            ));
        }
        if self
            .generation_bytes(prompts, group, seq + max_new)
            .is_none()
        {
            return Err(ModelError::input(
                "group",
                format!(
                    "{prompts} prompts × group {group} × {} positions: the KV cache size \
                     overflows",
                    seq + max_new
                ),
            ));
        }
        Ok(max_new)
    }

    /// Bytes a `generate` call holds on the device for `prompts × group` rows of `len`
    /// positions: the KV cache (keys and values of every layer) and one step's logits, in the
    /// model's float dtype; `None` when that overflows. Callers that know the device's free
    /// memory compare against it before calling `generate`.
    pub fn generation_bytes(&self, prompts: usize, group: usize, len: usize) -> Option<usize> {
        let t = &self.config.text_config;
        let rows = prompts.checked_mul(group)?;
        let per_position = t
            .num_hidden_layers
            .checked_mul(2)?
            .checked_mul(t.num_key_value_heads)?
            .checked_mul(t.head_dim())?;
        let cache = rows.checked_mul(len)?.checked_mul(per_position)?;
        let logits = rows.checked_mul(t.vocab_size)?;
        cache
            .checked_add(logits)?
            .checked_mul(self.float_dtype().size())
    }
}
