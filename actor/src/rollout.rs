//! The multi-turn tool loop: `G` samples of one prompt, each generating until it stops or
//! closes a tool call, the calls executed, their responses appended, decoding continued from
//! the KV cache.
//!
//! The rule, per sample (row of the group):
//! 1. The prompt is prefilled once and its cache forked into `G` rows.
//! 2. Each step, every active row picks a token from its logits (behaviour log-prob recorded,
//!    mask 1) — on the device when it samples the whole distribution (`run`; only ids and
//!    log-probs reach the host), else on the host (top-k / top-p, or a `run_with` picker). The turn ends at a stop token (`stop_token_ids`, else `<|im_end|>` /
//!    `<|endoftext|>`) or at `</tool_call>`.
//! 3. An ended turn is decoded (special tokens skipped) and parsed for tool calls. No calls: the
//!    sample is finished (`stop`). Calls, and fewer than `max_turns` turns so far: the calls run
//!    (concurrently, each under `tool_timeout_s`), and the tool-response text of the chat
//!    template (see `response`) is tokenised — images as vision tokens of the processed zoom —
//!    and appended with mask 0 and log-prob 0. Calls at the `max_turns`-th turn are recorded,
//!    not run (`malformed` if they do not parse, else `failed` with "not executed") and the
//!    sample finishes (`max_turns`).
//! 4. All rows then advance together in one `Qwen3Vl::extend` call: a continuing row feeds its
//!    new token, a row with tool responses feeds its token followed by the response chunk, a
//!    finished row feeds nothing (rows are ragged; padding is masked).
//! 5. `length`: `max_new_tokens` generated tokens, `max_total_tokens` tokens after the prompt,
//!    or the model's context, whichever comes first.
//!
//! Generated token ids are never re-tokenised: the ids the policy sampled are the ids stored and
//! fed back; only tool responses (new text) are tokenised.

use std::sync::Arc;
use std::time::Duration;

use burn::prelude::*;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use temper_model::chat::expand_vision_placeholders;
use temper_model::device_sampling::{DevicePicker, Picks};
use temper_model::preprocess::{ProcessedImage, preprocess_image};
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::sampling::Sampler;
use temper_model::weights::host_f32;
use temper_model::{Qwen3Vl, SamplingParams, VisualInput};
use temper_rewards::tool_calls::{TOOL_CALL_CLOSE, parse_tool_calls};
use temper_rewards::{Sample, ToolCallRecord, ToolCallStatus, Turn};

use crate::config::ToolLoopConfig;
use crate::error::{ActorError, Result};
use crate::picker::{PickAt, SamplingPicker, TokenPicker};
use crate::response::{ResponsePart, tool_response_text, truncate_chars};
use crate::tools::{ToolContext, ToolRegistry, execute_calls};

/// Why a sample stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutFinish {
    /// A turn ended with a stop token and no tool call.
    Stop,
    /// A token budget or the context ran out.
    Length,
    /// The last allowed turn called tools.
    MaxTurns,
}

/// Tool calls of a sample (or a group) by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// One finished sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSample {
    /// Index within the group.
    pub sample: usize,
    /// Every token after the prompt: generated and tool-response tokens, in order.
    pub token_ids: Vec<u32>,
    /// 1 where the policy generated the token, 0 for tool-response / template tokens.
    pub response_mask: Vec<u8>,
    /// Behaviour log-prob of each generated token; 0 (ignored) where the mask is 0.
    pub behaviour_logprobs: Vec<f32>,
    /// The images of the tool responses in sequence order (after the prompt's), as the model
    /// saw them: the learner appends them to the prompt's images to recompute the forward pass.
    pub images: Vec<ProcessedImage>,
    /// The assistant turns and their tool calls.
    pub turns: Vec<Turn>,
    /// The last turn's text: the final answer.
    pub response: String,
    /// Why it stopped.
    pub finish: RolloutFinish,
    /// Its tool calls by outcome.
    pub counts: ToolCallCounts,
}

impl RolloutSample {
    /// Tokens the policy generated.
    pub fn generated_tokens(&self) -> usize {
        self.response_mask.iter().filter(|&&m| m == 1).count()
    }

    /// What the rewards see: the final answer, the turns and the generated-token count.
    pub fn reward_sample(
        &self,
        prompt: &str,
        reference: Option<&str>,
        max_new_tokens: usize,
    ) -> Sample {
        let mut sample = Sample::new(prompt, self.response.clone())
            .with_turns(self.turns.clone())
            .with_tokens(self.generated_tokens(), max_new_tokens);
        sample.reference = reference.map(str::to_string);
        sample
    }
}

/// A group's samples and its tool metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutGroup {
    /// Samples in group order.
    pub samples: Vec<RolloutSample>,
    /// Tool calls of all samples by outcome.
    pub counts: ToolCallCounts,
    /// Assistant turns over all samples.
    pub turns: usize,
}

/// Runs tool-using rollouts with one model, processor and tool set.
pub struct ToolRollout<'a, B: Backend> {
    model: &'a Qwen3Vl<B>,
    processor: &'a Processor,
    tools: &'a ToolRegistry,
    config: ToolLoopConfig,
    /// `</tool_call>` when the tokenizer has it as one token; else turns are checked by text.
    close_id: Option<u32>,
}

/// Per-row state of the loop.
struct Row {
    tokens: Vec<u32>,
    mask: Vec<u8>,
    logprobs: Vec<f32>,
    images: Vec<ProcessedImage>,
    turns: Vec<Turn>,
    turn_start: usize,
    generated: usize,
    finish: Option<RolloutFinish>,
}

impl<'a, B: Backend> ToolRollout<'a, B> {
    /// Checks the config; resolves the `</tool_call>` token.
    pub fn new(
        model: &'a Qwen3Vl<B>,
        processor: &'a Processor,
        tools: &'a ToolRegistry,
        config: ToolLoopConfig,
    ) -> Result<Self> {
        config.validate()?;
        let close_id = processor.tokenizer.token_to_id(TOOL_CALL_CLOSE);
        Ok(Self {
            model,
            processor,
            tools,
            config,
            close_id,
        })
    }

    /// `group` samples of `prompt` with the model's seeded sampler. `images` are the prompt's
    /// images as given (what `image_zoom` crops), in prompt order. `<|image_pad|>` and
    /// `<|video_pad|>` are added to the suppressed tokens: a generated placeholder would be
    /// read back as an image that does not exist.
    pub fn run(
        &self,
        prompt: &PreparedPrompt,
        images: &[RgbImage],
        group: usize,
        params: &SamplingParams,
    ) -> Result<RolloutGroup> {
        let mut params = params.clone();
        let special = &self.processor.special;
        for pad in [special.image_pad, special.video_pad] {
            if !params.suppress_token_ids.contains(&pad) {
                params.suppress_token_ids.push(pad);
            }
        }
        let vocab = self.model.config.text_config.vocab_size;
        let device = self.model.language.embed_tokens.val().device();
        let rows = vec![&params; group];
        match DevicePicker::new(&rows, vocab, &device) {
            // The whole distribution: picked on the device, as `generate` does.
            Some(picker) => {
                let samplers = (0..group)
                    .map(|i| Sampler::new(params.seed, i as u64))
                    .collect();
                self.run_loop(
                    prompt,
                    images,
                    group,
                    &params,
                    Picking::Device { picker, samplers },
                )
            }
            None => {
                let mut picker = SamplingPicker::new(params.clone(), group);
                self.run_with(prompt, images, group, &params, &mut picker)
            }
        }
    }

    /// [`run`](Self::run) with another token picker (`params` still give the stop tokens and
    /// `max_new_tokens`); a picker that returns a vision placeholder is an error.
    pub fn run_with(
        &self,
        prompt: &PreparedPrompt,
        images: &[RgbImage],
        group: usize,
        params: &SamplingParams,
        picker: &mut dyn TokenPicker,
    ) -> Result<RolloutGroup> {
        self.run_loop(prompt, images, group, params, Picking::Host(picker))
    }

    fn run_loop(
        &self,
        prompt: &PreparedPrompt,
        images: &[RgbImage],
        group: usize,
        params: &SamplingParams,
        mut picking: Picking<'_, B>,
    ) -> Result<RolloutGroup> {
        if group == 0 {
            return Err(ActorError::input("group", "group size must be at least 1"));
        }
        params
            .validate()
            .map_err(|m| ActorError::input("sampling", m))?;
        if images.len() != prompt.images.len() {
            return Err(ActorError::input(
                "images",
                format!(
                    "{} raw images for a prompt with {} processed images; pass the images the prompt was prepared from",
                    images.len(),
                    prompt.images.len()
                ),
            ));
        }
        let model = self.model;
        let device = model.language.embed_tokens.val().device();
        let stops: Vec<u32> = if params.stop_token_ids.is_empty() {
            self.processor.special.eos_ids().to_vec()
        } else {
            params.stop_token_ids.clone()
        };
        let prompt_len = prompt.input_ids.len();
        let context_limit = model.config.text_config.max_position_embeddings;
        let budget = self
            .config
            .max_total_tokens
            .min(context_limit.saturating_sub(prompt_len));
        let context = ToolContext {
            images: Arc::new(images.to_vec()),
        };
        let timeout = Duration::from_secs_f64(self.config.tool_timeout_s);

        let batch = self
            .processor
            .batch::<B>(std::slice::from_ref(prompt), &device)?;
        let mut cache = model.new_cache(1, prompt_len + budget.min(256));
        let mut logits = model.prefill(&batch, &mut cache)?.repeat_dim(0, group);
        let mut cache = if group > 1 { cache.fork(group) } else { cache };
        let mut rows: Vec<Row> = (0..group)
            .map(|_| Row {
                tokens: Vec::new(),
                mask: Vec::new(),
                logprobs: Vec::new(),
                images: Vec::new(),
                turns: Vec::new(),
                turn_start: 0,
                generated: 0,
                finish: (params.max_new_tokens == 0 || budget == 0)
                    .then_some(RolloutFinish::Length),
            })
            .collect();

        loop {
            let mut picks = picking.pick(logits);
            let mut feeds: Vec<Vec<u32>> = vec![Vec::new(); group];
            // Rows whose turn ended in tool calls to run now.
            let mut calling: Vec<usize> = Vec::new();
            for (r, row) in rows.iter_mut().enumerate() {
                if row.finish.is_some() {
                    continue;
                }
                let at = PickAt {
                    sample: r,
                    turn: row.turns.len(),
                    position: row.tokens.len() - row.turn_start,
                };
                let (token, logprob) = picks.take(r, at);
                let special = &self.processor.special;
                if token == special.image_pad || token == special.video_pad {
                    return Err(ActorError::input(
                        "picker",
                        format!(
                            "sample {r} generated the vision placeholder {token}; suppress \
                             <|image_pad|> and <|video_pad|> (`run` does)"
                        ),
                    ));
                }
                row.tokens.push(token);
                row.mask.push(1);
                row.logprobs.push(logprob);
                row.generated += 1;
                let stopped = stops.contains(&token);
                let closed_call =
                    !stopped && self.closes_call(token, &row.tokens[row.turn_start..])?;
                if stopped || closed_call {
                    let text = self.decode_turn(row)?;
                    let calls = parse_tool_calls(&text);
                    if calls.is_empty() {
                        row.turns.push(Turn {
                            assistant: text,
                            tool_calls: Vec::new(),
                        });
                        row.finish = Some(RolloutFinish::Stop);
                    } else if row.turns.len() + 1 >= self.config.max_turns {
                        row.turns.push(Turn {
                            assistant: text,
                            tool_calls: not_executed(&calls, "the turn limit was reached"),
                        });
                        row.finish = Some(RolloutFinish::MaxTurns);
                    } else {
                        row.turns.push(Turn {
                            assistant: text,
                            tool_calls: Vec::new(),
                        });
                        calling.push(r);
                    }
                } else if row.generated >= params.max_new_tokens || row.tokens.len() >= budget {
                    let text = self.decode_turn(row)?;
                    let calls = parse_tool_calls(&text);
                    row.turns.push(Turn {
                        assistant: text,
                        tool_calls: not_executed(&calls, "the token budget ran out"),
                    });
                    row.finish = Some(RolloutFinish::Length);
                } else {
                    feeds[r].push(token);
                }
            }

            // Run the calls of every row that asked, all at once.
            let parsed: Vec<_> = calling
                .iter()
                .map(|&r| parse_tool_calls(&rows[r].turns.last().expect("just pushed").assistant))
                .collect();
            let flat: Vec<_> = parsed.iter().flatten().cloned().collect();
            let mut executed = execute_calls(self.tools, &flat, &context, timeout).into_iter();
            let mut chunk_images: Vec<ProcessedImage> = Vec::new();
            for (&r, calls) in calling.iter().zip(&parsed) {
                let row = &mut rows[r];
                let turn_closed = stops.contains(row.tokens.last().expect("a token was picked"));
                let mut records = Vec::with_capacity(calls.len());
                let mut images = Vec::new();
                for call in executed.by_ref().take(calls.len()) {
                    let mut record = call.record;
                    record.output = truncate_chars(&record.output, self.config.max_response_chars);
                    for image in &call.images {
                        images.push(preprocess_image(image, &self.processor.pixels)?);
                    }
                    records.push((record, call.images.len()));
                }
                let parts: Vec<ResponsePart<'_>> = records
                    .iter()
                    .map(|(rec, n)| ResponsePart {
                        text: &rec.output,
                        images: *n,
                    })
                    .collect();
                let text = tool_response_text(&parts, turn_closed);
                let merge = self.processor.pixels.merge_size;
                let counts: Vec<usize> =
                    images.iter().map(|i| i.num_merged_tokens(merge)).collect();
                let chunk = self
                    .processor
                    .tokenizer
                    .encode(&expand_vision_placeholders(&text, &counts, &[])?)?;
                row.turns.last_mut().expect("just pushed").tool_calls =
                    records.into_iter().map(|(rec, _)| rec).collect();
                if row.tokens.len() + chunk.len() >= budget {
                    // No room for the response and a next turn.
                    row.finish = Some(RolloutFinish::Length);
                    continue;
                }
                feeds[r].push(*row.tokens.last().expect("a token was picked"));
                feeds[r].extend(&chunk);
                row.tokens.extend(&chunk);
                row.mask.extend(std::iter::repeat_n(0, chunk.len()));
                row.logprobs.extend(std::iter::repeat_n(0.0, chunk.len()));
                row.turn_start = row.tokens.len();
                chunk_images.extend(images.iter().cloned());
                row.images.extend(images);
            }

            if feeds.iter().all(Vec::is_empty) {
                break;
            }
            let visual = (!chunk_images.is_empty())
                .then(|| pack_images(&chunk_images, self.processor, &device));
            // Every unfinished row was fed, so these are the next logits of all rows that pick.
            logits = model.extend(&feeds, visual, &mut cache)?;
        }

        let samples: Vec<RolloutSample> = rows
            .into_iter()
            .enumerate()
            .map(|(sample, row)| {
                let mut counts = ToolCallCounts::default();
                for call in row.turns.iter().flat_map(|t| &t.tool_calls) {
                    counts.add(call.status);
                }
                RolloutSample {
                    sample,
                    response: row
                        .turns
                        .last()
                        .map(|t| t.assistant.clone())
                        .unwrap_or_default(),
                    token_ids: row.tokens,
                    response_mask: row.mask,
                    behaviour_logprobs: row.logprobs,
                    images: row.images,
                    turns: row.turns,
                    finish: row.finish.unwrap_or(RolloutFinish::Length),
                    counts,
                }
            })
            .collect();
        let mut counts = ToolCallCounts::default();
        for s in &samples {
            counts.merge(&s.counts);
        }
        let turns = samples.iter().map(|s| s.turns.len()).sum();
        tracing::info!(
            group,
            turns,
            calls = counts.total(),
            ok = counts.ok,
            malformed = counts.malformed,
            unknown = counts.unknown,
            failed = counts.failed,
            timeout = counts.timeout,
            "tool rollout finished"
        );
        Ok(RolloutGroup {
            samples,
            counts,
            turns,
        })
    }

    /// Whether `token` (the last of `turn`) closes a tool call.
    fn closes_call(&self, token: u32, turn: &[u32]) -> Result<bool> {
        match self.close_id {
            Some(id) => Ok(token == id),
            None => {
                // The tag spans several tokens: look at the tail's text.
                let tail = &turn[turn.len().saturating_sub(TOOL_CALL_CLOSE.len())..];
                let text = self.processor.tokenizer.decode(tail, false)?;
                Ok(text.ends_with(TOOL_CALL_CLOSE))
            }
        }
    }

    fn decode_turn(&self, row: &Row) -> Result<String> {
        Ok(self
            .processor
            .tokenizer
            .decode(&row.tokens[row.turn_start..], true)?)
    }
}

/// Records of calls that were found but not run: `malformed` when they do not parse, else
/// `failed` with the reason.
fn not_executed(
    calls: &[temper_rewards::tool_calls::ParsedCall],
    why: &str,
) -> Vec<ToolCallRecord> {
    calls
        .iter()
        .map(|c| match &c.result {
            Err(e) => ToolCallRecord {
                name: c.name.clone(),
                arguments: None,
                status: ToolCallStatus::Malformed,
                output: format!("error: {e}"),
            },
            Ok(call) => ToolCallRecord {
                name: Some(call.name.clone()),
                arguments: Some(serde_json::Value::Object(call.arguments.clone())),
                status: ToolCallStatus::Failed,
                output: format!("not executed: {why}"),
            },
        })
        .collect()
}

/// Packs processed images into one visual input (rows concatenated).
fn pack_images<B: Backend>(
    images: &[ProcessedImage],
    processor: &Processor,
    device: &B::Device,
) -> VisualInput<B> {
    let row_len = processor.pixels.row_len();
    let values: Vec<f32> = images
        .iter()
        .flat_map(|i| i.pixel_values.iter().copied())
        .collect();
    let rows = values.len() / row_len;
    VisualInput {
        pixel_values: Tensor::from_data(TensorData::new(values, [rows, row_len]), device),
        grid_thw: images.iter().map(|i| i.grid_thw).collect(),
    }
}

/// Where a step's tokens come from: picked on the device (the seeded sampler over untruncated
/// distributions; only ids and log-probs reach the host), or by a host [`TokenPicker`] shown
/// each row's copied logits.
enum Picking<'p, B: Backend> {
    Device {
        picker: DevicePicker<B>,
        samplers: Vec<Sampler>,
    },
    Host(&'p mut dyn TokenPicker),
}

impl<'p, B: Backend> Picking<'p, B> {
    /// Prepares a step over the group's next-token logits `[G, V]`.
    fn pick(&mut self, logits: Tensor<B, 2>) -> StepPicks<'_, 'p> {
        match self {
            Self::Device { picker, samplers } => StepPicks::Picked(picker.pick(logits, samplers)),
            Self::Host(picker) => {
                let vocab = logits.dims()[1];
                StepPicks::Host {
                    picker: &mut **picker,
                    logits: host_f32(logits),
                    vocab,
                }
            }
        }
    }
}

/// One step's choices, taken row by row (finished rows are never asked).
enum StepPicks<'s, 'p> {
    Picked(Picks),
    Host {
        picker: &'s mut (dyn TokenPicker + 'p),
        logits: Vec<f32>,
        vocab: usize,
    },
}

impl StepPicks<'_, '_> {
    fn take(&mut self, row: usize, at: PickAt) -> (u32, f32) {
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
