//! The multi-turn tool loop — the one rollout of Temper: `G` samples of each prompt, each
//! generating until it stops or closes a tool call, the calls executed, their responses appended,
//! decoding continued from the KV cache. Single-turn sampling is this loop with no tool call
//! (training, evaluation and the in-process rollout source all run it).
//!
//! The rule, per sample (row of the batch; rows are prompt-major, `G` per prompt):
//! 1. The prompts are prefilled once (left-padded) and each cache row forked into `G` rows.
//! 2. Each step, every active row picks a token from its logits (behaviour log-prob recorded,
//!    mask 1) — on the device when it samples the whole distribution (`run`; only ids and
//!    log-probs reach the host), else on the host (top-k / top-p, or a `run_with` picker). The turn ends at a stop token (`stop_token_ids`, else `<|im_end|>` /
//!    `<|endoftext|>`) or at `</tool_call>`.
//!    With an empty tool registry no turn ends at `</tool_call>` and no call is parsed: the loop
//!    is single-turn sampling, token for token what `generate` draws.
//! 3. An ended turn is decoded (special tokens skipped) and parsed for tool calls. No calls: the
//!    sample is finished (`stop`). Calls, and fewer than `max_turns` turns so far: the calls run
//!    (concurrently, as tasks on the I/O runtime, each under `tool_timeout_s`), and the tool-response text of the chat
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
use temper_model::chat::{
    ParsedCall, TOOL_CALL_CLOSE, expand_vision_placeholders, parse_tool_calls,
};
use temper_model::picker::{PickAt, Picker, TokenPicker};
use temper_model::preprocess::{ProcessedImage, preprocess_image};
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{FinishReason, Qwen3Vl, SamplingParams, VisualInput, policy_suppressed_tokens};
use temper_rewards::rollout::{Sample, ToolCallCounts};
use temper_rewards::{ToolCallRecord, ToolCallStatus, Turn};
use tokio::runtime::Handle;

use crate::config::ToolLoopConfig;
use crate::error::{ActorError, Result};
use crate::response::{ResponsePart, tool_response_text, truncate_chars};
use crate::tools::{ToolContext, ToolRegistry, execute_calls};

/// One prompt of a batched rollout: the prepared prompt, its images as given (what
/// `image_zoom` crops), and its sampling settings (its `seed` seeds its group's streams).
#[derive(Debug, Clone, Copy)]
pub struct PromptInput<'p> {
    /// The tokenised prompt with its processed images.
    pub prompt: &'p PreparedPrompt,
    /// The prompt's images as given, in prompt order.
    pub images: &'p [RgbImage],
    /// Its sampling settings.
    pub params: &'p SamplingParams,
}

/// A prompt's samples (unscored) and its tool metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutGroup {
    /// Samples in group order.
    pub samples: Vec<Sample>,
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
    /// Stamped on every sample.
    policy_version: u64,
    /// The binary's I/O runtime: tool calls run there while this (compute) thread waits.
    io: Handle,
}

/// Per-row state of the loop.
struct Row {
    /// The row's prompt in the batch.
    prompt: usize,
    tokens: Vec<u32>,
    mask: Vec<u8>,
    logprobs: Vec<f32>,
    images: Vec<ProcessedImage>,
    turns: Vec<Turn>,
    turn_start: usize,
    generated: usize,
    budget: usize,
    finish: Option<FinishReason>,
}

impl<'a, B: Backend> ToolRollout<'a, B> {
    /// Checks the config; resolves the `</tool_call>` token. Tool calls run on `io` (the binary's
    /// I/O runtime); the loop must not itself run on one of its threads (it blocks on it).
    pub fn new(
        model: &'a Qwen3Vl<B>,
        processor: &'a Processor,
        tools: &'a ToolRegistry,
        config: ToolLoopConfig,
        io: Handle,
    ) -> Result<Self> {
        config.validate()?;
        let close_id = processor.tokenizer.token_to_id(TOOL_CALL_CLOSE);
        Ok(Self {
            model,
            processor,
            tools,
            config,
            close_id,
            policy_version: 0,
            io,
        })
    }

    /// Stamps `version` on the samples (the version of the weights `model` holds).
    pub fn with_policy_version(mut self, version: u64) -> Self {
        self.policy_version = version;
        self
    }

    /// `group` samples of `prompt` with the model's seeded sampler: [`run_batch`](Self::run_batch)
    /// of one prompt.
    pub fn run(
        &self,
        prompt: &PreparedPrompt,
        images: &[RgbImage],
        group: usize,
        params: &SamplingParams,
    ) -> Result<RolloutGroup> {
        let input = PromptInput {
            prompt,
            images,
            params,
        };
        Ok(self
            .run_batch(std::slice::from_ref(&input), group)?
            .pop()
            .expect("one group per prompt"))
    }

    /// `group` samples of every prompt, all rows decoding together (prompt-major: prompt 0's
    /// samples, then prompt 1's, ...); sample `i` of a prompt draws from `(params.seed, i)`.
    /// [`policy_suppressed_tokens`] are added to every prompt's suppressed tokens: a generated
    /// vision placeholder would be read back as an image that does not exist. Untruncated rows
    /// are picked on the device, as `generate` does; top-k / top-p rows on the host.
    pub fn run_batch(
        &self,
        prompts: &[PromptInput<'_>],
        group: usize,
    ) -> Result<Vec<RolloutGroup>> {
        let suppressed = policy_suppressed_tokens(&self.processor.special);
        let params: Vec<SamplingParams> = prompts
            .iter()
            .map(|p| {
                let mut params = p.params.clone();
                for &t in &suppressed {
                    if !params.suppress_token_ids.contains(&t) {
                        params.suppress_token_ids.push(t);
                    }
                }
                params
            })
            .collect();
        let inputs: Vec<PromptInput<'_>> = prompts
            .iter()
            .zip(&params)
            .map(|(p, params)| PromptInput { params, ..*p })
            .collect();
        let vocab = self.model.config.text_config.vocab_size;
        let device = self.model.language.embed_tokens.val().device();
        self.run_loop(
            &inputs,
            group,
            Picker::seeded(&params, group.max(1), vocab, &device),
        )
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
        let input = PromptInput {
            prompt,
            images,
            params,
        };
        Ok(self
            .run_loop(std::slice::from_ref(&input), group, Picker::custom(picker))?
            .pop()
            .expect("one group per prompt"))
    }

    fn run_loop(
        &self,
        prompts: &[PromptInput<'_>],
        group: usize,
        mut picker: Picker<'_, B>,
    ) -> Result<Vec<RolloutGroup>> {
        if group == 0 {
            return Err(ActorError::input("group", "group size must be at least 1"));
        }
        if prompts.is_empty() {
            return Ok(Vec::new());
        }
        for (p, input) in prompts.iter().enumerate() {
            input
                .params
                .validate()
                .map_err(|m| ActorError::input("sampling", m))?;
            if input.images.len() != input.prompt.images.len() {
                return Err(ActorError::input(
                    "images",
                    format!(
                        "prompt {p}: {} raw images for a prompt with {} processed images; pass the images the prompt was prepared from",
                        input.images.len(),
                        input.prompt.images.len()
                    ),
                ));
            }
        }
        let model = self.model;
        let device = model.language.embed_tokens.val().device();
        let stops: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| {
                if p.params.stop_token_ids.is_empty() {
                    self.processor.stop_token_ids.clone()
                } else {
                    p.params.stop_token_ids.clone()
                }
            })
            .collect();
        let context_limit = model.config.text_config.max_position_embeddings;
        let budgets: Vec<usize> = prompts
            .iter()
            .map(|p| {
                self.config
                    .max_total_tokens
                    .min(context_limit.saturating_sub(p.prompt.input_ids.len()))
            })
            .collect();
        let contexts: Vec<ToolContext> = prompts
            .iter()
            .map(|p| ToolContext {
                images: Arc::new(p.images.to_vec()),
            })
            .collect();
        let timeout = Duration::from_secs_f64(self.config.tool_timeout_s);
        let tools_enabled = !self.tools.is_empty();

        let prepared: Vec<PreparedPrompt> = prompts.iter().map(|p| p.prompt.clone()).collect();
        let batch = self.processor.batch::<B>(&prepared, &device)?;
        let longest_budget = budgets.iter().copied().max().unwrap_or(0);
        let mut cache = model.new_cache(prompts.len(), batch.seq_len() + longest_budget.min(256));
        let prompt_logits = model.prefill(&batch, &mut cache)?;
        let mut cache = if group > 1 { cache.fork(group) } else { cache };
        let n_rows = prompts.len() * group;
        // Before the first step all samples of a prompt share the prompt's logits.
        let first_rows: Vec<i64> = (0..n_rows).map(|r| (r / group) as i64).collect();
        let first_rows =
            Tensor::<B, 1, Int>::from_data(TensorData::new(first_rows, [n_rows]), &device);
        let mut logits = prompt_logits.select(0, first_rows);
        let mut rows: Vec<Row> = (0..n_rows)
            .map(|r| {
                let p = r / group;
                Row {
                    prompt: p,
                    tokens: Vec::new(),
                    mask: Vec::new(),
                    logprobs: Vec::new(),
                    images: Vec::new(),
                    turns: Vec::new(),
                    turn_start: 0,
                    generated: 0,
                    budget: budgets[p],
                    finish: (prompts[p].params.max_new_tokens == 0 || budgets[p] == 0)
                        .then_some(FinishReason::Length),
                }
            })
            .collect();

        loop {
            let mut picks = picker.step(logits);
            let mut feeds: Vec<Vec<u32>> = vec![Vec::new(); n_rows];
            // Rows whose turn ended in tool calls to run now.
            let mut calling: Vec<usize> = Vec::new();
            for (r, row) in rows.iter_mut().enumerate() {
                if row.finish.is_some() {
                    continue;
                }
                let at = PickAt {
                    prompt: row.prompt,
                    sample: r % group,
                    turn: row.turns.len(),
                    position: row.tokens.len() - row.turn_start,
                };
                let (token, logprob) = picks.take(r, at);
                let special = &self.processor.special;
                if token == special.image_pad || token == special.video_pad {
                    return Err(ActorError::input(
                        "picker",
                        format!(
                            "sample {} of prompt {} generated the vision placeholder {token}; \
                             suppress <|image_pad|> and <|video_pad|> (`run` does)",
                            r % group,
                            row.prompt
                        ),
                    ));
                }
                let params = prompts[row.prompt].params;
                row.tokens.push(token);
                row.mask.push(1);
                row.logprobs.push(logprob);
                row.generated += 1;
                let stopped = stops[row.prompt].contains(&token);
                // Without tools the loop is plain single-turn sampling: tool-call markup is text.
                let closed_call = tools_enabled
                    && !stopped
                    && self.closes_call(token, &row.tokens[row.turn_start..])?;
                if stopped || closed_call {
                    let text = self.decode_turn(row)?;
                    let calls = if tools_enabled {
                        parse_tool_calls(&text)
                    } else {
                        Vec::new()
                    };
                    if calls.is_empty() {
                        row.turns.push(Turn {
                            assistant: text,
                            tool_calls: Vec::new(),
                        });
                        row.finish = Some(FinishReason::Stop);
                    } else if row.turns.len() + 1 >= self.config.max_turns {
                        row.turns.push(Turn {
                            assistant: text,
                            tool_calls: not_executed(&calls, "the turn limit was reached"),
                        });
                        row.finish = Some(FinishReason::MaxTurns);
                    } else {
                        row.turns.push(Turn {
                            assistant: text,
                            tool_calls: Vec::new(),
                        });
                        calling.push(r);
                    }
                } else if row.generated >= params.max_new_tokens || row.tokens.len() >= row.budget {
                    let text = self.decode_turn(row)?;
                    let calls = if tools_enabled {
                        parse_tool_calls(&text)
                    } else {
                        Vec::new()
                    };
                    row.turns.push(Turn {
                        assistant: text,
                        tool_calls: not_executed(&calls, "the token budget ran out"),
                    });
                    row.finish = Some(FinishReason::Length);
                } else {
                    feeds[r].push(token);
                }
            }

            // Run the calls of every row that asked, all of a prompt's at once (its images are
            // the tools' context).
            let parsed: Vec<_> = calling
                .iter()
                .map(|&r| parse_tool_calls(&rows[r].turns.last().expect("just pushed").assistant))
                .collect();
            let mut executed: Vec<Vec<_>> = (0..calling.len()).map(|_| Vec::new()).collect();
            for (p, context) in contexts.iter().enumerate() {
                let of_prompt: Vec<usize> = (0..calling.len())
                    .filter(|&k| rows[calling[k]].prompt == p)
                    .collect();
                if of_prompt.is_empty() {
                    continue;
                }
                let flat: Vec<_> = of_prompt
                    .iter()
                    .flat_map(|&k| parsed[k].iter().cloned())
                    .collect();
                let mut results = self
                    .io
                    .block_on(execute_calls(self.tools, &flat, context, timeout))
                    .into_iter();
                for &k in &of_prompt {
                    executed[k] = results.by_ref().take(parsed[k].len()).collect();
                }
            }
            let mut chunk_images: Vec<ProcessedImage> = Vec::new();
            for (k, &r) in calling.iter().enumerate() {
                let row = &mut rows[r];
                let turn_closed =
                    stops[row.prompt].contains(row.tokens.last().expect("a token was picked"));
                let mut records = Vec::with_capacity(executed[k].len());
                let mut images = Vec::new();
                for call in std::mem::take(&mut executed[k]) {
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
                if row.tokens.len() + chunk.len() >= row.budget {
                    // No room for the response and a next turn.
                    row.finish = Some(FinishReason::Length);
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

        let mut groups: Vec<Vec<Sample>> = vec![Vec::with_capacity(group); prompts.len()];
        for row in rows {
            groups[row.prompt].push(Sample {
                token_ids: row.tokens,
                response_mask: row.mask,
                behaviour_logprobs: row.logprobs,
                images: row.images,
                turns: row.turns,
                finish: row.finish.unwrap_or(FinishReason::Length),
                policy_version: self.policy_version,
            });
        }
        Ok(groups
            .into_iter()
            .map(|samples| {
                let mut counts = ToolCallCounts::default();
                for s in &samples {
                    counts.merge(&s.tool_calls());
                }
                let turns = samples.iter().map(|s| s.turns.len()).sum();
                tracing::debug!(
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
                RolloutGroup {
                    samples,
                    counts,
                    turns,
                }
            })
            .collect())
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
fn not_executed(calls: &[ParsedCall], why: &str) -> Vec<ToolCallRecord> {
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
                arguments: Some(serde_json::Value::from(&call.arguments)),
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
