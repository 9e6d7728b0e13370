//! How each generated token is chosen: [`Picker`], the one picker of every generation path
//! (`Qwen3Vl::generate` and the actor's tool loop).
//!
//! A step's `[R, V]` next-token logits are picked either
//! - on the device ([`DevicePicker`]), when every row samples the whole distribution: only the
//!   chosen ids and their behaviour log-probs reach the host; or
//! - on the host, by a [`TokenPicker`] shown each row's copied logits: the seeded
//!   [`SamplingPicker`] (rows with top-k / top-p), or the caller's own picker (tests script a
//!   policy this way).
//!
//! Rows are prompt-major, `group` per prompt. Both seeded paths draw sample `i` of a prompt from
//! the stream `(params.seed, i)` with the same inverse-CDF rule, so they pick the same tokens (up
//! to float rounding at a CDF boundary) and equal seeds give equal samples whichever path runs.

use burn::prelude::*;

use crate::device_sampling::{DevicePicker, Picks};
use crate::sampling::{Sampler, SamplingParams};
use crate::weights::host_f32;

/// Where in a generation a token is being picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PickAt {
    /// The sample's prompt in the batch.
    pub prompt: usize,
    /// The sample's index in its group.
    pub sample: usize,
    /// The assistant turn, from 0 (always 0 outside a tool loop).
    pub turn: usize,
    /// Tokens already generated in this turn.
    pub position: usize,
}

/// Chooses a generated token on the host and returns it with its behaviour log-prob.
pub trait TokenPicker {
    /// The token after `logits` (`[V]`, the model's next-token logits for this row).
    fn pick(&mut self, at: PickAt, logits: &[f32]) -> (u32, f32);
}

/// The model's seeded sampler on the host: sample `i` of prompt `p` draws from the stream
/// `(params[p].seed, i)`.
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
        Self {
            params: params.to_vec(),
            group,
            samplers: seeded_samplers(params, group),
        }
    }
}

impl TokenPicker for SamplingPicker {
    fn pick(&mut self, at: PickAt, logits: &[f32]) -> (u32, f32) {
        let params = &self.params[at.prompt];
        self.samplers[at.prompt * self.group + at.sample].sample(logits, params)
    }
}

/// The picker of one generation call.
pub enum Picker<'p, B: Backend> {
    /// The seeded sampler on the device (no row truncates its distribution).
    Device {
        picker: DevicePicker<B>,
        /// One stream per row, as [`SamplingPicker`] holds them.
        samplers: Vec<Sampler>,
    },
    /// The seeded sampler on the host.
    Seeded(SamplingPicker),
    /// The caller's picker on the host.
    Custom(&'p mut dyn TokenPicker),
}

impl<'p, B: Backend> Picker<'p, B> {
    /// The seeded picker for `group` samples of every prompt (`params[p]` for prompt `p`): on the
    /// device when no row truncates its distribution, else on the host.
    pub fn seeded(
        params: &[SamplingParams],
        group: usize,
        vocab: usize,
        device: &B::Device,
    ) -> Self {
        let rows: Vec<&SamplingParams> = params
            .iter()
            .flat_map(|p| std::iter::repeat_n(p, group))
            .collect();
        match DevicePicker::new(&rows, vocab, device) {
            Some(picker) => Self::Device {
                picker,
                samplers: seeded_samplers(params, group),
            },
            None => Self::Seeded(SamplingPicker::for_prompts(params, group)),
        }
    }

    /// `picker` shown every row's logits on the host.
    pub fn custom(picker: &'p mut dyn TokenPicker) -> Self {
        Self::Custom(picker)
    }

    /// Prepares one step over the rows' next-token logits `[R, V]`; its picks are then taken row
    /// by row (rows that are done need not be asked).
    pub fn step(&mut self, logits: Tensor<B, 2>) -> StepPicks<'_, 'p> {
        let vocab = logits.dims()[1];
        match self {
            Self::Device { picker, samplers } => StepPicks::Picked(picker.pick(logits, samplers)),
            Self::Seeded(picker) => StepPicks::Host {
                picker,
                logits: host_f32(logits),
                vocab,
            },
            Self::Custom(picker) => StepPicks::Host {
                picker: &mut **picker,
                logits: host_f32(logits),
                vocab,
            },
        }
    }
}

/// One step's choices.
pub enum StepPicks<'s, 'p> {
    /// Picked on the device, every row at once.
    Picked(Picks),
    /// To pick on the host from the copied logits `[R × V]`.
    Host {
        picker: &'s mut (dyn TokenPicker + 'p),
        logits: Vec<f32>,
        vocab: usize,
    },
}

impl StepPicks<'_, '_> {
    /// Row `row`'s token and behaviour log-prob; `at` says where in its sample it is.
    pub fn take(&mut self, row: usize, at: PickAt) -> (u32, f32) {
        match self {
            Self::Picked(picks) => (picks.tokens[row], picks.logprobs[row]),
            Self::Host {
                picker,
                logits,
                vocab,
            } => picker.pick(at, &logits[row * *vocab..(row + 1) * *vocab]),
        }
    }
}

/// Prompt-major streams: sample `i` of prompt `p` draws from `(params[p].seed, i)`.
fn seeded_samplers(params: &[SamplingParams], group: usize) -> Vec<Sampler> {
    params
        .iter()
        .flat_map(|p| (0..group).map(|i| Sampler::new(p.seed, i as u64)))
        .collect()
}
