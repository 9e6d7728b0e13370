//! Sizes checked before any work starts: every prompt and response must fit the model's context,
//! and the largest buffers a step allocates must fit this machine's memory. Without this an
//! absurd size (`task.image_size = 100000`, `rl.group_size = 1e11`) aborts the process on a
//! failed allocation, or `rl.prompts_per_step = 1e9` draws images for hours, or a too-long
//! `rl.max_new_tokens` fails only after the SFT stage has run. All arithmetic is checked: a size
//! that overflows is a config error too.
//!
//! The memory estimate counts only buffers a step certainly holds (weights with their gradients
//! and AdamW moments, images, the KV cache, logits, a few activations per layer), so it is a
//! lower bound: a config it rejects cannot run; one it accepts may still be tight.

use std::path::Path;

use image::RgbImage;
use temper_model::Qwen3VlConfig;
use temper_model::chat::{ContentPart, Message};
use temper_model::preprocess::image_target_size;
use temper_model::processor::Processor;

use super::accumulate::micro_rows;
use super::config::{ConfigError, TaskConfig, TrainConfig, invalid};
use crate::embedded;

/// Bytes of one f32.
const F32: u128 = 4;
/// Activations kept per token and layer for the backward pass, in hidden-size units (residual
/// stream, norms, attention output, MLP input; the MLP's wider tensors are counted apart).
const SAVED_PER_LAYER: u128 = 8;

/// Checks the sizes of `config` against its model and this machine.
pub fn check(config: &TrainConfig) -> Result<(), ConfigError> {
    let (model, processor) = model_of(config)?;
    let context = model.text_config.max_position_embeddings;
    let pixels = &processor.pixels;
    // The longest prompt, the generated image's side (0: images come from a dataset and are
    // not counted), and the SFT answer's length with the key that sets it.
    let (prompt, side, height, width, answer) = match (&config.task, &config.data) {
        (Some(TaskConfig::Shapes(task)), _) => {
            // Prompt length: the question's text tokens plus the image's merged vision tokens.
            let side = task.image_size as usize;
            let (height, width) = image_target_size(side, side, pixels)
                .map_err(|e| invalid("task.image_size", side, e.to_string()))?;
            let merge = pixels.merge_size.max(1);
            let image_tokens =
                (height / pixels.patch_size) * (width / pixels.patch_size) / (merge * merge);
            let prompt = text_tokens(&task.questions(), &processor)? + image_tokens;
            if prompt > context {
                return Err(invalid(
                    "task.image_size",
                    side,
                    format!(
                        "a {side}×{side} image becomes {image_tokens} vision tokens and the \
                         prompt {prompt} tokens, more than the model's context of {context} \
                         positions (max_position_embeddings)"
                    ),
                ));
            }
            let answer = processor
                .tokenizer
                .encode(&task.max_shapes.to_string())
                .map_or(1, |ids| ids.len())
                + 1;
            (prompt, side, height, width, Some(answer))
        }
        (None, Some(data)) => (data.max_prompt_tokens, 0, 0, 0, None),
        (None, None) => return Ok(()),
    };
    let mut lengths = vec![("eval.max_new_tokens", config.eval.max_new_tokens)];
    if config.sft.steps > 0
        && let Some(answer) = answer
    {
        lengths.push(("task.max_shapes", answer));
    }
    if config.rl.steps > 0 {
        lengths.push(("rl.max_new_tokens", config.rl.max_new_tokens));
    }
    for (key, new_tokens) in lengths {
        if prompt.checked_add(new_tokens).is_none_or(|n| n > context) {
            return Err(invalid(
                key,
                new_tokens,
                format!(
                    "the {prompt}-token prompt plus {new_tokens} response tokens exceed the \
                     model's context of {context} positions (max_position_embeddings); at most \
                     {} fit",
                    context - prompt
                ),
            ));
        }
    }

    // Memory.
    let Some(available) = available_memory() else {
        return Ok(());
    };
    let text = &model.text_config;
    let n = |v: usize| v as u128;
    let hidden = n(text.hidden_size);
    let layers = n(text.num_hidden_layers);
    let vocab = n(text.vocab_size);
    let kv_per_token = product(&[
        layers,
        2,
        n(text.num_key_value_heads),
        n(model.text_config.head_dim()),
        F32,
    ]);
    let params =
        vocab * hidden + layers * (4 * hidden * hidden + 3 * hidden * n(text.intermediate_size));
    // Weights, their gradients and AdamW's two moments, all f32.
    let weights = params * 4 * F32;
    // The generated image and its f32 pixel rows (each frame repeated temporal_patch_size times).
    let image = product(&[n(side), n(side), 3]).and_then(|raw| {
        product(&[n(height), n(width), 3, n(pixels.temporal_patch_size), F32])
            .and_then(|rows| raw.checked_add(rows))
    });
    let activations = |rows: usize, seq: usize| -> Option<u128> {
        let per_token =
            (SAVED_PER_LAYER * hidden + 3 * n(text.intermediate_size)) * layers + 2 * vocab;
        product(&[n(rows), n(seq), per_token, F32])
    };
    let generation = |rows: usize, prompts: usize, new: usize| -> Option<u128> {
        let seq = n(prompt) + n(new);
        let cache = product(&[n(rows), seq, kv_per_token?])?;
        let logits = product(&[n(rows), vocab, F32])?;
        let images = product(&[n(prompts), image?])?;
        cache.checked_add(logits)?.checked_add(images)
    };
    let rl = &config.rl;
    let mut phases: Vec<(String, String, Option<u128>)> = Vec::new();
    // An evaluation decodes at most `examples` prompts together.
    let eval_rows = config.eval.batch_size.min(config.eval.examples);
    phases.push((
        "eval.batch_size".into(),
        config.eval.batch_size.to_string(),
        generation(eval_rows, eval_rows, config.eval.max_new_tokens),
    ));
    if config.sft.steps > 0 {
        let rows = micro(config.sft.micro_batch_rows, config.sft.batch_size);
        let bytes =
            product(&[n(config.sft.batch_size), image.unwrap_or(u128::MAX)]).and_then(|images| {
                images.checked_add(activations(rows, prompt + answer.unwrap_or(0))?)
            });
        phases.push((
            "sft.batch_size".into(),
            config.sft.batch_size.to_string(),
            bytes,
        ));
    }
    if rl.steps > 0 {
        let rounds = rl.dynamic_sampling.map_or(1, |d| d.max_rounds);
        let rows = rl.prompts_per_step.checked_mul(rl.group_size);
        let held = rows.and_then(|r| r.checked_mul(rounds));
        let prompts = rl.prompts_per_step.checked_mul(rounds);
        let bytes = match (rows, held, prompts) {
            (Some(rows), Some(held), Some(prompts)) => {
                let sampled = generation(rows, prompts, rl.max_new_tokens);
                // Every round's responses and behaviour log-probs are kept for the update.
                let kept = product(&[n(held), n(rl.max_new_tokens), 8]);
                let update = activations(
                    micro(rl.micro_batch_rows, rows / rl.mini_batches.max(1)),
                    prompt + rl.max_new_tokens,
                );
                sampled
                    .and_then(|s| s.checked_add(kept?))
                    .and_then(|s| s.checked_add(update?))
            }
            _ => None,
        };
        let mut value = format!("{} × {}", rl.prompts_per_step, rl.group_size);
        if rounds > 1 {
            value.push_str(&format!(" (× {rounds} rl.dynamic_sampling.max_rounds)"));
        }
        phases.push(("rl.prompts_per_step × rl.group_size".into(), value, bytes));
    }
    for (key, value, bytes) in phases {
        let total = bytes.and_then(|b| b.checked_add(weights));
        match total {
            None => {
                return Err(invalid(
                    &key,
                    value,
                    "is too large: the buffers of one step do not even have a size that fits \
                     in 128 bits",
                ));
            }
            Some(total) if total > available => {
                return Err(invalid(
                    &key,
                    value,
                    format!(
                        "one step needs at least {} of memory (images, KV cache, logits and \
                         activations at a {prompt}-token prompt), more than the {} this machine \
                         has available; lower it (or set the stage's micro_batch_rows)",
                        gib(total),
                        gib(available)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Rows of one forward/backward pass over `rows` (the trainer's micro-batches).
fn micro(configured: usize, rows: usize) -> usize {
    micro_rows(configured, rows).min(rows)
}

fn product(factors: &[u128]) -> Option<u128> {
    factors.iter().try_fold(1u128, |acc, &f| acc.checked_mul(f))
}

fn gib(bytes: u128) -> String {
    let gib = bytes as f64 / f64::from(1u32 << 30);
    if gib >= 1e6 {
        format!("{gib:.2e} GiB")
    } else {
        format!("{gib:.1} GiB")
    }
}

/// The model config and processor of `model.source`, read without loading any weights.
fn model_of(config: &TrainConfig) -> Result<(Qwen3VlConfig, Processor), ConfigError> {
    let source = &config.model.source;
    let fail =
        |e: &dyn std::fmt::Display| invalid("model.source", format!("{source:?}"), e.to_string());
    if source == "builtin:tiny" {
        let model = embedded::tiny_config();
        let processor = embedded::tiny_processor(&model).map_err(|e| fail(&e))?;
        return Ok((model, processor));
    }
    let dir = Path::new(source);
    let model = Qwen3VlConfig::from_file(dir.join("config.json")).map_err(|e| fail(&e))?;
    let processor = Processor::from_model_dir(dir, &model).map_err(|e| fail(&e))?;
    Ok((model, processor))
}

/// Text tokens of the longest prompt: a prompt with a small probe image, less the probe's
/// vision tokens (the chat template and the question do not depend on the image's size).
fn text_tokens(questions: &[String], processor: &Processor) -> Result<usize, ConfigError> {
    let probe_side = processor.pixels.factor() as u32;
    let probe = RgbImage::new(probe_side, probe_side);
    let merge = processor.pixels.merge_size;
    let mut longest = 0;
    for question in questions {
        let messages = [Message::new(
            "user",
            vec![ContentPart::Image, ContentPart::text(question.clone())],
        )];
        let prepared = processor
            .prepare(&messages, std::slice::from_ref(&probe), &[])
            .map_err(|e| invalid("task", "shapes", format!("preparing a prompt: {e}")))?;
        let vision: usize = prepared
            .images
            .iter()
            .map(|i| i.num_merged_tokens(merge))
            .sum();
        longest = longest.max(prepared.input_ids.len() - vision);
    }
    Ok(longest)
}

/// `MemAvailable` of `/proc/meminfo` (Linux); `None` where it cannot be read, and then only
/// the context and overflow checks apply.
fn available_memory() -> Option<u128> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u128 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
