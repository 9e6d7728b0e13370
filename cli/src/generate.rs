//! `temper generate`: token ids for an inputs file (`--inputs … --out …`, for programs), or text
//! for a prompt with images / a video (`--prompt …`, for people).

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::prelude::*;
use clap::Args;
use temper_model::inputs::read_inputs;
use temper_model::safetensors_io::{HostTensor, write_safetensors};
use temper_model::{Qwen3Vl, SamplingParams};

use crate::device::{DeviceKind, with_backend};

#[derive(Args)]
pub struct GenerateArgs {
    /// HF checkpoint directory (config.json + safetensors).
    #[arg(long)]
    pub(crate) model: PathBuf,
    /// Processor-style inputs file (see `temper forward`).
    #[arg(long, requires = "out", conflicts_with = "prompt")]
    pub(crate) inputs: Option<PathBuf>,
    /// Where to write `generated_ids` [B·G, N] (-1 after a stop), `generated_logprobs` [B·G, N]
    /// and `generated_lengths` [B·G].
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// A user message to answer (uses the model dir's tokenizer and chat template).
    #[arg(long)]
    pub(crate) prompt: Option<String>,
    /// Images shown with the prompt, in order.
    #[arg(long = "image")]
    pub(crate) images: Vec<PathBuf>,
    /// A directory of video frames (sorted by name) shown with the prompt.
    #[arg(long)]
    pub(crate) video: Option<PathBuf>,
    /// Frame rate of the frames in `--video`.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) fps: f64,
    #[arg(long, default_value_t = 32)]
    pub(crate) max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub(crate) temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    pub(crate) top_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub(crate) top_k: usize,
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Samples per prompt (prefilled once, then forked).
    #[arg(long, default_value_t = 1)]
    pub(crate) group: usize,
    /// Token ids that end a sample (default: none for --inputs, `<|im_end|>`/`<|endoftext|>`
    /// for --prompt).
    #[arg(long = "stop-token", value_delimiter = ',')]
    pub(crate) stop_tokens: Vec<u32>,
    #[arg(long, value_enum, default_value = "cpu")]
    pub(crate) device: DeviceKind,
}

impl GenerateArgs {
    pub(crate) fn sampling(&self, stop_token_ids: Vec<u32>) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            max_new_tokens: self.max_new_tokens,
            stop_token_ids,
            seed: self.seed,
            suppress_token_ids: Vec::new(),
        }
    }
}

pub fn run(args: GenerateArgs) -> Result<()> {
    with_backend!(args.device, |B, device| {
        match (&args.inputs, &args.prompt) {
            (Some(inputs), None) => generate_ids::<B>(&args, inputs, &device),
            (None, Some(prompt)) => crate::chat::generate_text::<B>(&args, prompt, &device),
            _ => {
                bail!("give either --inputs IN.safetensors --out OUT.safetensors, or --prompt TEXT")
            }
        }
    })
}

fn generate_ids<B: Backend>(
    args: &GenerateArgs,
    inputs: &std::path::Path,
    device: &B::Device,
) -> Result<()> {
    let out_path = args
        .out
        .as_ref()
        .expect("clap requires --out with --inputs");
    let model = Qwen3Vl::<B>::load(&args.model, device)?;
    let batch = read_inputs::<B>(inputs, device)?;
    let params = vec![args.sampling(args.stop_tokens.clone()); batch.batch_size()];
    let generations = model.generate(&batch, args.group, &params)?;
    let rows = generations.len();
    let n = args.max_new_tokens;
    // After a sample stops, its row holds id -1 and log-prob 0.
    let mut ids = vec![-1i64; rows * n];
    let mut logprobs = vec![0f32; rows * n];
    for (r, g) in generations.iter().enumerate() {
        for (t, (&token, &lp)) in g.tokens.iter().zip(&g.logprobs).enumerate() {
            ids[r * n + t] = token as i64;
            logprobs[r * n + t] = lp;
        }
    }
    let tensors = vec![
        (
            "generated_ids".to_string(),
            HostTensor::i64(vec![rows, n], ids),
        ),
        (
            "generated_logprobs".to_string(),
            HostTensor::f32(vec![rows, n], logprobs),
        ),
        (
            "generated_lengths".to_string(),
            HostTensor::i64(
                vec![rows],
                generations.iter().map(|g| g.tokens.len() as i64).collect(),
            ),
        ),
    ];
    write_safetensors(out_path, &tensors, None)?;
    eprintln!("wrote {} ({rows} rows × {n} tokens)", out_path.display());
    Ok(())
}
