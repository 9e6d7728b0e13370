//! `temper generate --prompt`: chat template, tokenizer, image/video preprocessing, then the
//! one rollout (the actor's tool loop: single-turn sampling without `--tools`, tool calls run
//! and answered with them), printing every sample's turns (and, with `--out`, writing the ids
//! and log-probs as `--inputs` does; tool-response tokens have log-prob 0).

use anyhow::{Context, Result};
use burn::prelude::*;
use temper_actor::tools::ToolRegistry;
use temper_actor::{Sample, ToolLoopConfig, ToolRollout};
use temper_model::chat::{ContentPart, Message, RenderOptions};
use temper_model::preprocess::{load_image, load_video_frames_dir};
use temper_model::processor::{Processor, VideoClip};
use temper_model::{Generation, Qwen3Vl};

use crate::generate::GenerateArgs;

pub fn generate_text<B: Backend>(
    args: &GenerateArgs,
    prompt: &str,
    device: &B::Device,
) -> Result<()> {
    let model = Qwen3Vl::<B>::load(&args.model, device)
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let processor = Processor::from_model_dir(&args.model, &model.config)?;
    let images = args
        .images
        .iter()
        .map(load_image)
        .collect::<Result<Vec<_>, _>>()?;
    let videos = match &args.video {
        Some(dir) => vec![VideoClip {
            frames: load_video_frames_dir(dir)?,
            fps: args.fps,
        }],
        None => Vec::new(),
    };
    let mut content: Vec<ContentPart> = images.iter().map(|_| ContentPart::Image).collect();
    content.extend(videos.iter().map(|_| ContentPart::Video));
    content.push(ContentPart::text(prompt));
    let tools = ToolRegistry::builtins(&processor.pixels)
        .select(&args.tools)
        .context("--tools")?;
    let options = RenderOptions {
        tools: tools.definitions(),
        ..RenderOptions::generation()
    };
    let prepared =
        processor.prepare_with(&[Message::new("user", content)], &images, &videos, &options)?;
    let batch = processor.batch::<B>(std::slice::from_ref(&prepared), device)?;

    let stop = if args.stop_tokens.is_empty() {
        processor.stop_token_ids.clone()
    } else {
        args.stop_tokens.clone()
    };
    args.check_fits(&model, &batch)?;
    // Tool calls run on this command's one I/O runtime.
    let io = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("temper-io")
        .enable_all()
        .build()
        .context("starting the I/O runtime")?;
    let config = ToolLoopConfig {
        max_turns: args.max_turns,
        ..ToolLoopConfig::default()
    };
    let rollout = ToolRollout::new(&model, &processor, &tools, config, io.handle().clone())?;
    let group = rollout.run(&prepared, &images, args.group, &args.sampling(stop))?;
    if let Some(out) = &args.out {
        let generations = as_generations(&group.samples);
        let longest = generations
            .iter()
            .map(|g| g.tokens.len())
            .max()
            .unwrap_or(0);
        crate::generate::write_generations(out, &generations, longest.max(args.max_new_tokens))?;
    }
    for (i, sample) in group.samples.iter().enumerate() {
        if group.samples.len() > 1 {
            println!(
                "--- sample {i} ({} tokens, {:?})",
                sample.token_ids.len(),
                sample.finish
            );
        }
        print_turns(sample);
    }
    Ok(())
}

/// A sample's turns: a single-turn sample is its text; a multi-turn one shows each turn's
/// assistant text and its tool calls with what came back.
fn print_turns(sample: &Sample) {
    if let [only] = sample.turns.as_slice()
        && only.tool_calls.is_empty()
    {
        println!("{}", only.assistant);
        return;
    }
    for (t, turn) in sample.turns.iter().enumerate() {
        println!("[turn {t}] {}", turn.assistant);
        for call in &turn.tool_calls {
            println!(
                "[tool {} → {:?}] {}",
                call.name.as_deref().unwrap_or("?"),
                call.status,
                call.output
            );
        }
    }
}

/// The samples in `write_generations`' form (one prompt).
fn as_generations(samples: &[Sample]) -> Vec<Generation> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| Generation {
            prompt: 0,
            sample: i,
            tokens: s.token_ids.clone(),
            logprobs: s.behaviour_logprobs.clone(),
            finish: s.finish,
        })
        .collect()
}
