//! [`ResponseBatch`]: prompts with their rollout samples laid out for one learner forward pass,
//! and the per-token log-probs of the responses under the policy.
//!
//! Two layouts compute the same log-probs (up to float summation order):
//! - **Shared prefix** (when rows share prompts: a group's `G` samples). Each distinct prompt but
//!   its last token is prefilled once into a KV cache; every row continues its prompt's cache
//!   with `[last prompt token, sample tokens but the last]`, so the prompt, image tokens
//!   included, goes through the policy once per group instead of `G` times, and the gradient
//!   flows back through the cache into that one prefill. Rows share a prompt when they hold the
//!   same `&PreparedPrompt` (the trainer's groups do).
//! - **Joined** (every row its own prompt, e.g. SFT; or a prompt that ends inside a vision block,
//!   which cannot be split before its last token): every row is `[padding | prompt | sample
//!   tokens]`, left-padded, so all samples end in the last column.
//!
//! Either way the response window is `R` columns (`R` = the longest sample), samples
//! right-aligned; a row with a shorter sample has masked columns at the window's start. Within
//! the window the mask is the sample's own `response_mask`: tool-response and template tokens
//! (0) are read by the forward pass but never trained on. A row's images are the prompt's
//! followed by the sample's tool images, in sequence order, so the vision tower sees what the
//! actor's model saw. Position ids come from the tokens and image grids (`get_rope_index`, and
//! its continuation rule in `Qwen3Vl::extend`), so every token has the position it was sampled
//! at and the recomputed log-probs match the behaviour ones.

use burn::prelude::*;
use temper_model::logprobs::{DEFAULT_LOGITS_BUDGET, EntropyGrad, TokenScores};
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{Batch, Qwen3Vl, VisualInput};
use temper_rewards::rollout::Sample;

use crate::error::{LearnerError, Result};

/// Prompts plus responses, ready for the policy.
pub struct ResponseBatch<B: Backend> {
    layout: Layout<B>,
    /// `R`: columns of the response window.
    pub window: usize,
    /// Sample length (tokens after the prompt) of each row.
    pub lengths: Vec<usize>,
    /// `[rows, R]` row-major: 1 at trained tokens, 0 elsewhere.
    mask: Vec<f32>,
    /// `[rows, R]` response ids (another real id of the row where its response is shorter).
    targets: Tensor<B, 2, Int>,
}

/// How the rows reach the policy (see the module doc).
enum Layout<B: Backend> {
    /// `[padding | prompt | sample]` rows, one forward pass.
    Joined(Batch<B>),
    /// Distinct prompts (less their last token) prefilled once, rows continued from them.
    Shared {
        /// The distinct prompts, each without its last token.
        prompts: Batch<B>,
        /// Row → index into `prompts`.
        prompt_of_row: Vec<usize>,
        /// Per row: the prompt's last token, then the sample's tokens but the last.
        chunks: Vec<Vec<u32>>,
        /// The rows' tool images, in row then sequence order.
        images: Option<VisualInput<B>>,
    },
}

impl<B: Backend> Layout<B> {
    /// `[padding | prompt | sample]` rows.
    fn joined(
        processor: &Processor,
        rows: &[(&PreparedPrompt, &Sample)],
        device: &B::Device,
    ) -> Result<Self> {
        let joined: Vec<PreparedPrompt> = rows
            .iter()
            .map(|(prompt, sample)| PreparedPrompt {
                input_ids: [prompt.input_ids.as_slice(), &sample.token_ids].concat(),
                images: [prompt.images.as_slice(), &sample.images].concat(),
                videos: prompt.videos.clone(),
            })
            .collect();
        Ok(Self::Joined(
            processor.batch::<B>(&joined, device).map_err(model_error)?,
        ))
    }

    /// `distinct` (the rows' prompts, each with a token before its last and ending outside a
    /// vision block) less their last token, and per row `[last prompt token, sample tokens but
    /// the last]` (every sample has a token).
    fn shared(
        processor: &Processor,
        rows: &[(&PreparedPrompt, &Sample)],
        distinct: &[&PreparedPrompt],
        device: &B::Device,
    ) -> Result<Self> {
        let prefixes: Vec<PreparedPrompt> = distinct
            .iter()
            .map(|p| PreparedPrompt {
                input_ids: p.input_ids[..p.input_ids.len() - 1].to_vec(),
                images: p.images.clone(),
                videos: p.videos.clone(),
            })
            .collect();
        let prompt_of_row: Vec<usize> = rows
            .iter()
            .map(|(p, _)| {
                distinct
                    .iter()
                    .position(|d| std::ptr::eq(*d, *p))
                    .expect("every row's prompt is distinct-listed")
            })
            .collect();
        let continuations: Vec<PreparedPrompt> = rows
            .iter()
            .map(|(p, s)| PreparedPrompt {
                input_ids: [
                    &p.input_ids[p.input_ids.len() - 1..],
                    &s.token_ids[..s.token_ids.len() - 1],
                ]
                .concat(),
                images: s.images.clone(),
                videos: Vec::new(),
            })
            .collect();
        // The processor packs the tool images as a prefill would.
        let images = processor
            .batch::<B>(&continuations, device)
            .map_err(model_error)?
            .images;
        Ok(Self::Shared {
            prompts: processor
                .batch::<B>(&prefixes, device)
                .map_err(model_error)?,
            prompt_of_row,
            chunks: continuations.into_iter().map(|c| c.input_ids).collect(),
            images,
        })
    }
}

impl<B: Backend> ResponseBatch<B> {
    /// Lays out `rows` of `(prompt, sample)`: shared-prefix where it applies (see
    /// [`with_layout`](Self::with_layout)), else joined.
    pub fn new(
        processor: &Processor,
        rows: &[(&PreparedPrompt, &Sample)],
        device: &B::Device,
    ) -> Result<Self> {
        Self::with_layout(processor, rows, device, true)
    }

    /// [`new`](Self::new) with the layout up to the caller: `shared` lays the rows out as
    /// continuations of their prompts where that applies — some rows share a prompt, every
    /// prompt has a token before its last and ends outside a vision block, every sample has a
    /// token — and joined otherwise or when `shared` is false. Both give the same log-probs;
    /// tests compare them.
    pub fn with_layout(
        processor: &Processor,
        rows: &[(&PreparedPrompt, &Sample)],
        device: &B::Device,
        shared: bool,
    ) -> Result<Self> {
        if rows.is_empty() {
            return Err(LearnerError::input("batch", "no rows"));
        }
        for (i, (prompt, sample)) in rows.iter().enumerate() {
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
            if prompt.input_ids.is_empty() {
                return Err(LearnerError::input("batch", "a row has an empty prompt"));
            }
        }
        let lengths: Vec<usize> = rows.iter().map(|(_, s)| s.token_ids.len()).collect();
        let window = lengths.iter().copied().max().unwrap_or(0).max(1);
        let mask: Vec<f32> = rows
            .iter()
            .flat_map(|(_, s)| {
                std::iter::repeat_n(0.0, window - s.token_ids.len())
                    .chain(s.response_mask.iter().map(|&m| f32::from(m == 1)))
            })
            .collect();
        // Right-aligned sample ids; the masked columns of a shorter row repeat a real id of it
        // (its first token, or its prompt's last for an empty sample).
        let targets: Vec<i64> = rows
            .iter()
            .flat_map(|(p, s)| {
                let ids = &s.token_ids;
                let fill = ids.first().or(p.input_ids.last()).copied().unwrap_or(0);
                std::iter::repeat_n(fill, window - ids.len())
                    .chain(ids.iter().copied())
                    .map(i64::from)
            })
            .collect();
        let targets = Tensor::from_data(TensorData::new(targets, [rows.len(), window]), device);
        let distinct = distinct_prompts(rows);
        let shared = shared
            && distinct.len() < rows.len()
            && distinct.iter().all(|p| splits_before_last(processor, p))
            && rows.iter().all(|(_, s)| !s.token_ids.is_empty());
        let layout = if shared {
            Layout::shared(processor, rows, &distinct, device)?
        } else {
            Layout::joined(processor, rows, device)?
        };
        Ok(Self {
            layout,
            window,
            lengths,
            mask,
            targets,
        })
    }

    /// Whether the rows are laid out as continuations of shared prompts.
    pub fn is_shared_prefix(&self) -> bool {
        matches!(self.layout, Layout::Shared { .. })
    }

    /// Token positions the policy's forward pass runs over (padding included): the learner's
    /// throughput counts these.
    pub fn forward_tokens(&self) -> usize {
        match &self.layout {
            Layout::Joined(batch) => batch.batch_size() * batch.seq_len(),
            Layout::Shared {
                prompts, chunks, ..
            } => prompts.batch_size() * prompts.seq_len() + chunks.len() * self.window,
        }
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
    /// with `suppress` removed from the vocabulary, as sampling did (log-probs differentiable
    /// under an autodiff backend; entropies only when `entropy` is [`EntropyGrad::Tracked`]).
    pub fn scores(
        &self,
        model: &Qwen3Vl<B>,
        temperature: f32,
        suppress: &[u32],
        entropy: EntropyGrad,
    ) -> Result<TokenScores<B>> {
        let hidden = match &self.layout {
            Layout::Joined(batch) => {
                let output = model.forward(batch, None, None).map_err(model_error)?;
                let [_, len, _] = output.hidden.dims();
                output.hidden.narrow(1, len - self.window - 1, self.window)
            }
            Layout::Shared {
                prompts,
                prompt_of_row,
                chunks,
                images,
            } => {
                let mut cache =
                    model.new_cache(prompts.batch_size(), prompts.seq_len() + self.window);
                model
                    .forward(prompts, Some(&mut cache), None)
                    .map_err(model_error)?;
                let mut cache = cache.select(prompt_of_row);
                // Chunks are the window's length, left-padded as the samples are right-aligned.
                model
                    .extend_hidden(chunks, images.clone(), &mut cache)
                    .map_err(model_error)?
            }
        };
        Ok(model.token_scores_suppressed(
            hidden,
            self.targets.clone(),
            temperature,
            DEFAULT_LOGITS_BUDGET,
            suppress,
            entropy,
        ))
    }
}

/// The distinct prompts of `rows`, in order of first appearance (by reference).
fn distinct_prompts<'p>(rows: &[(&'p PreparedPrompt, &Sample)]) -> Vec<&'p PreparedPrompt> {
    let mut distinct: Vec<&PreparedPrompt> = Vec::new();
    for (prompt, _) in rows {
        if !distinct.iter().any(|d| std::ptr::eq(*d, *prompt)) {
            distinct.push(prompt);
        }
    }
    distinct
}

/// Whether `prompt` can be prefilled without its last token: it has a token before it, and the
/// last one does not open, fill or close a vision block.
fn splits_before_last(processor: &Processor, prompt: &PreparedPrompt) -> bool {
    let s = &processor.special;
    let vision = [s.vision_start, s.vision_end, s.image_pad, s.video_pad];
    prompt.input_ids.len() > 1 && !vision.contains(prompt.input_ids.last().expect("length > 1"))
}

fn model_error(e: temper_model::ModelError) -> LearnerError {
    LearnerError::input("batch", e.to_string())
}
