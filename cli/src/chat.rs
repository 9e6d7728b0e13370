//! `temper generate --prompt`: chat template, tokenizer, image/video preprocessing, then decode
//! and print the text of every sample (and, with `--out`, write the ids and log-probs as
//! `--inputs` does).

use anyhow::{Context, Result};
use burn::prelude::*;
use temper_model::Qwen3Vl;
use temper_model::chat::{ContentPart, Message};
use temper_model::preprocess::{load_image, load_video_frames_dir};
use temper_model::processor::{Processor, VideoClip};

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
    let prepared = processor.prepare(&[Message::new("user", content)], &images, &videos)?;
    let batch = processor.batch::<B>(&[prepared], device)?;

    let stop = if args.stop_tokens.is_empty() {
        processor.stop_token_ids.clone()
    } else {
        args.stop_tokens.clone()
    };
    args.check_fits(&model, &batch)?;
    let generations = model.generate(&batch, args.group, &[args.sampling(stop)])?;
    if let Some(out) = &args.out {
        crate::generate::write_generations(out, &generations, args.max_new_tokens)?;
    }
    for g in &generations {
        let text = processor.tokenizer.decode(&g.tokens, true)?;
        if generations.len() > 1 {
            println!(
                "--- sample {} ({} tokens, {:?})",
                g.sample,
                g.tokens.len(),
                g.finish
            );
        }
        println!("{text}");
    }
    Ok(())
}
