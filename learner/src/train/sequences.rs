//! [`ResponseBatch`]: prompts with their responses laid out for one learner forward pass, and the
//! per-token log-probs of the responses under the policy.
//!
//! Every row is `[padding | prompt | response]`, left-padded, so all responses end in the last
//! column. The response window is the last `R` columns (`R` = the longest response); a row with a
//! shorter response has prompt tokens at the window's start, which the mask leaves out. Position
//! ids come from the attention mask, so a token's position is the same as when it was sampled
//! (prompt left-padded, response appended) and the recomputed log-probs match the behaviour ones.

use burn::prelude::*;
use temper_model::logprobs::{DEFAULT_LOGITS_BUDGET, EntropyGrad, TokenScores};
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{Batch, Qwen3Vl};

use crate::error::{LearnerError, Result};

/// Prompts plus responses, ready for the policy.
pub struct ResponseBatch<B: Backend> {
    /// The model input.
    pub batch: Batch<B>,
    /// `R`: columns of the response window.
    pub window: usize,
    /// Response length of each row.
    pub lengths: Vec<usize>,
    /// `[rows, R]` response ids (prompt ids where the row's response is shorter).
    targets: Tensor<B, 2, Int>,
}

impl<B: Backend> ResponseBatch<B> {
    /// Lays out `rows` of `(prompt, response ids)`.
    pub fn new(
        processor: &Processor,
        rows: &[(&PreparedPrompt, &[u32])],
        device: &B::Device,
    ) -> Result<Self> {
        let model_error = |e: temper_model::ModelError| LearnerError::input("batch", e.to_string());
        if rows.is_empty() {
            return Err(LearnerError::input("batch", "no rows"));
        }
        let joined: Vec<PreparedPrompt> = rows
            .iter()
            .map(|(prompt, response)| PreparedPrompt {
                input_ids: [prompt.input_ids.as_slice(), response].concat(),
                images: prompt.images.clone(),
                videos: prompt.videos.clone(),
            })
            .collect();
        let lengths: Vec<usize> = rows.iter().map(|(_, r)| r.len()).collect();
        let window = lengths.iter().copied().max().unwrap_or(0).max(1);
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
            targets,
        })
    }

    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.lengths.len()
    }

    /// `[rows, R]`: 1 at response tokens, 0 elsewhere.
    pub fn mask(&self, device: &B::Device) -> Tensor<B, 2> {
        let values: Vec<f32> = self
            .lengths
            .iter()
            .flat_map(|&n| (0..self.window).map(move |k| f32::from(k + n >= self.window)))
            .collect();
        Tensor::from_data(TensorData::new(values, [self.rows(), self.window]), device)
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
