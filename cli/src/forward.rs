//! `temper forward`: logits `[B,L,V]`, token log-probs `[B,L-1]`, MRoPE position ids `[3,B,L]`
//! and rope deltas `[B,1]` for a processor-style inputs file, in f32 or bf16 compute.

use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use clap::Args;
use temper_model::Qwen3Vl;
use temper_model::inputs::read_inputs;
use temper_model::logprobs::DEFAULT_LOGITS_BUDGET;
use temper_model::safetensors_io::{HostTensor, write_safetensors};
use temper_model::weights::host_f32;

use crate::device::{DeviceKind, Dtype, with_backend};

#[derive(Args)]
pub struct ForwardArgs {
    /// HF checkpoint directory (config.json + safetensors).
    #[arg(long)]
    model: PathBuf,
    /// safetensors with input_ids, attention_mask and optional pixel_values/image_grid_thw,
    /// pixel_values_videos/video_grid_thw.
    #[arg(long)]
    inputs: PathBuf,
    /// Where to write logits, token_logprobs, position_ids, rope_deltas.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// Compute dtype: the checkpoint is loaded in f32 and cast (`bf16`: norms, softmax and
    /// log-probs still run in f32). Outputs are written as f32.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
}

pub fn run(args: ForwardArgs) -> Result<()> {
    with_backend!(args.device, |B, device| forward::<B>(&args, &device))
}

fn forward<B: Backend>(args: &ForwardArgs, device: &B::Device) -> Result<()> {
    let model = Qwen3Vl::<B>::load(&args.model, device)
        .with_context(|| format!("loading the model from {}", args.model.display()))?
        .cast(args.dtype.float());
    let batch = read_inputs::<B>(&args.inputs, device)?;
    let out = model.forward(&batch, None, None)?;
    let [b, l, _] = out.hidden.dims();
    let vocab = model.config.text_config.vocab_size;

    // log_softmax(logits[t])[input_ids[t + 1]]
    let token_logprobs = if l > 1 {
        let flat: Vec<i64> = batch
            .input_ids
            .iter()
            .flat_map(|r| r[1..].iter().map(|&t| t as i64))
            .collect();
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(flat, [b, l - 1]), device);
        let hidden = out.hidden.clone().narrow(1, 0, l - 1);
        host_f32(
            model
                .token_scores(hidden, targets, 1.0, DEFAULT_LOGITS_BUDGET)
                .logprobs,
        )
    } else {
        Vec::new()
    };
    let logits = host_f32(model.logits(out.hidden));
    let non_finite = logits.iter().filter(|x| !x.is_finite()).count();
    if non_finite > 0 {
        tracing::warn!(
            non_finite,
            of = logits.len(),
            "{non_finite} of {} logits are NaN or infinite; the warnings above name the weight or \
             input tensor holding non-finite values",
            logits.len()
        );
    }

    let tensors = vec![
        (
            "logits".to_string(),
            HostTensor::f32(vec![b, l, vocab], logits),
        ),
        (
            "token_logprobs".to_string(),
            HostTensor::f32(vec![b, l - 1], token_logprobs),
        ),
        (
            "position_ids".to_string(),
            HostTensor::i64(vec![3, b, l], out.rope.flat()),
        ),
        (
            "rope_deltas".to_string(),
            HostTensor::i64(vec![b, 1], out.rope.rope_deltas.clone()),
        ),
    ];
    write_safetensors(&args.out, &tensors, None)?;
    eprintln!("wrote {} ({b}×{l} tokens)", args.out.display());
    Ok(())
}
