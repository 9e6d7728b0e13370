//! [`ResponseBatch`]: prompts with their rollout samples laid out for one learner forward pass,
//! and the per-token log-probs of the responses under the policy.
//!
//! Every row is `[padding | prompt | sample tokens]`, left-padded, so all samples end in the last
//! column. The response window is the last `R` columns (`R` = the longest sample); a row with a
//! shorter sample has prompt tokens at the window's start, which the mask leaves out. Within the
//! window the mask is the sample's own `response_mask`: tool-response and template tokens (0) are
//! read by the forward pass but never trained on. A row's images are the prompt's followed by the
//! sample's tool images, in sequence order, so the vision tower sees what the actor's model saw.
//! Position ids come from the tokens and image grids (`get_rope_index`), so every token has the
//! position it was sampled at and the recomputed log-probs match the behaviour ones.

use burn::prelude::*;
use temper_model::logprobs::{DEFAULT_LOGITS_BUDGET, EntropyGrad, TokenScores};
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{Batch, Qwen3Vl};
use temper_rewards::rollout::Sample;

use crate::error::{LearnerError, Result};

/// Prompts plus responses, ready for the policy.
pub struct ResponseBatch<B: Backend> {
    /// The model input.
    pub batch: Batch<B>,
    /// `R`: columns of the response window.
    pub window: usize,
    /// Sample length (tokens after the prompt) of each row.
    pub lengths: Vec<usize>,
    /// `[rows, R]` row-major: 1 at trained tokens, 0 elsewhere.
    mask: Vec<f32>,
    /// `[rows, R]` response ids (prompt ids where the row's response is shorter).
    targets: Tensor<B, 2, Int>,
}

impl<B: Backend> ResponseBatch<B> {
    /// Lays out `rows` of `(prompt, sample)`.
    pub fn new(
        processor: &Processor,
        rows: &[(&PreparedPrompt, &Sample)],
        device: &B::Device,
    ) -> Result<Self> {
        let model_error = |e: temper_model::ModelError| LearnerError::input("batch", e.to_string());
        if rows.is_empty() {
            return Err(LearnerError::input("batch", "no rows"));
        }
        for (i, (_, sample)) in rows.iter().enumerate() {
            let n = sample.token_ids.len();
            if sample.response_mask.len() != n || sample.behaviour_logprobs.len() != n {
                return Err(LearnerError::input(
                    "batch",
                    format!(
                        "row {i}: {n} tokens but {} mask entries and {} behaviour log-probs; a \
                         sample carries one of each per token",
                        sample.response_mask.len(),
                        sample.behaviour_logprobs.len()
                    ),
                ));
            }
        }
        let joined: Vec<PreparedPrompt> = rows
            .iter()
            .map(|(prompt, sample)| PreparedPrompt {
                input_ids: [prompt.input_ids.as_slice(), &sample.token_ids].concat(),
                images: [prompt.images.as_slice(), &sample.images].concat(),
                videos: prompt.videos.clone(),
            })
            .collect();
        let lengths: Vec<usize> = rows.iter().map(|(_, s)| s.token_ids.len()).collect();
        let window = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mask: Vec<f32> = rows
            .iter()
            .flat_map(|(_, s)| {
                std::iter::repeat_n(0.0, window - s.token_ids.len())
                    .chain(s.response_mask.iter().map(|&m| f32::from(m == 1)))
            })
            .collect();
        let shortest_prompt = rows
            .iter()
            .map(|(p, _)| p.input_ids.len())
            .min()
            .unwrap_or(0);
        if shortest_prompt == 0 {
            return Err(LearnerError::input("batch", "a row has an empty prompt"));
        }
        let batch = processor.batch::<B>(&joined, device).map_err(model_error)?;
        let len = batch.seq_len();
        let targets: Vec<i64> = batch
            .input_ids
            .iter()
            .flat_map(|ids| ids[len - window..].iter().map(|&t| t as i64))
            .collect();
        let targets = Tensor::from_data(TensorData::new(targets, [rows.len(), window]), device);
        Ok(Self {
            batch,
            window,
            lengths,
            mask,
            targets,
        })
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// `[rows, R]`: 1 at the tokens the policy generated (each sample's `response_mask`), 0 at
    /// tool-response tokens, prompt tokens and padding.
    pub fn mask(&self, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(self.mask.clone(), [self.rows(), self.window]),
            device,
        )
    }

    /// Trained tokens (mask 1) of each row.
    pub fn trained_tokens(&self) -> Vec<usize> {
        self.mask
            .chunks(self.window)
            .map(|row| row.iter().filter(|&&m| m > 0.0).count())
            .collect()
    }

    /// `[rows, R]`: per-response-token `values[row]` right-aligned in the window, `fill` elsewhere.
    pub fn align(&self, values: &[&[f32]], fill: f32, device: &B::Device) -> Tensor<B, 2> {
        let data: Vec<f32> = values
            .iter()
            .flat_map(|row| {
                std::iter::repeat_n(fill, self.window - row.len()).chain(row.iter().copied())
            })
            .collect();
        Tensor::from_data(TensorData::new(data, [values.len(), self.window]), device)
    }

    /// Log-probs and entropies `[rows, R]` of the response tokens under `model` at `temperature`
    /// with `suppress` removed from the vocabulary, as sampling did (differentiable under an
    /// autodiff backend).
    pub fn scores(
        &self,
        model: &Qwen3Vl<B>,
        temperature: f32,
        suppress: &[u32],
    ) -> Result<TokenScores<B>> {
        let output = model
            .forward(&self.batch, None, None)
            .map_err(|e| LearnerError::input("batch", e.to_string()))?;
        let [_, len, _] = output.hidden.dims();
        let hidden = output.hidden.narrow(1, len - self.window - 1, self.window);
        Ok(model.token_scores_suppressed(
            hidden,
            self.targets.clone(),
            temperature,
            DEFAULT_LOGITS_BUDGET,
            suppress,
            // The learner reports entropy; no objective differentiates it.
            EntropyGrad::Metric,
        ))
    }
}
