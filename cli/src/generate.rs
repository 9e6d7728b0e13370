//! `temper generate`: token ids for an inputs file (`--inputs … --out …`, for programs), or text
//! for a prompt with images / a video (`--prompt …`, for people).

use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use clap::Args;
use temper_model::inputs::read_inputs;
use temper_model::safetensors_io::{HostTensor, write_safetensors};
use temper_model::{Batch, Generation, Qwen3Vl, SamplingParams};

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
    /// and `generated_lengths` [B·G] (with --prompt too; the text is printed as well).
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
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub(crate) fps: f64,
    #[arg(long, default_value_t = 32)]
    pub(crate) max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub(crate) temperature: f32,
    /// Nucleus sampling: the smallest set of tokens whose probability reaches this, in (0, 1].
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
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
    /// With --prompt: built-in tools the model may call (`calculator`, `image_zoom`), offered
    /// in the prompt's `# Tools` block; calls run and their responses are appended until the
    /// model answers (the tool loop training uses).
    #[arg(long, value_delimiter = ',', requires = "prompt")]
    pub(crate) tools: Vec<String>,
    /// With --tools: assistant turns per sample, the first included.
    #[arg(long, default_value_t = 4)]
    pub(crate) max_turns: usize,
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

    /// Range checks of the flags, before anything is loaded.
    fn validate(&self) -> Result<()> {
        ensure!(
            self.temperature.is_finite() && self.temperature >= 0.0,
            "--temperature must be ≥ 0 (0 = greedy), got {}",
            self.temperature
        );
        ensure!(
            self.top_p > 0.0 && self.top_p <= 1.0,
            "--top-p must be in (0, 1] (1 = off), got {}",
            self.top_p
        );
        ensure!(
            self.fps.is_finite() && self.fps > 0.0,
            "--fps must be > 0, got {}",
            self.fps
        );
        ensure!(self.group >= 1, "--group must be at least 1");
        ensure!(
            self.max_turns >= 1,
            "--max-turns must be at least 1 (1 = tool calls are not executed)"
        );
        Ok(())
    }

    /// Checks the batch against the model before generating: stop tokens inside the
    /// vocabulary, and on the CPU the KV cache of `prompts × --group` rows within the free
    /// memory (an allocation that does not fit aborts the process).
    pub(crate) fn check_fits<B: Backend>(
        &self,
        model: &Qwen3Vl<B>,
        batch: &Batch<B>,
    ) -> Result<()> {
        let vocab = model.config.text_config.vocab_size;
        if let Some(t) = self.stop_tokens.iter().find(|&&t| t as usize >= vocab) {
            bail!(
                "--stop-token {t} is not a token of {}: its vocabulary has ids 0..{vocab}",
                self.model.display()
            );
        }
        let len = batch.seq_len().saturating_add(self.max_new_tokens);
        if len > model.config.text_config.max_position_embeddings {
            return Ok(()); // generate says so, with the numbers
        }
        let available = match self.device {
            DeviceKind::Cpu => available_host_memory(),
            DeviceKind::Cuda => None,
        };
        let need = model.generation_bytes(batch.batch_size(), self.group, len);
        match (need, available) {
            (None, _) => bail!(
                "--group {} with {} prompt(s) of {len} positions: the KV cache size overflows",
                self.group,
                batch.batch_size()
            ),
            (Some(need), Some(free)) if need as u64 > free => bail!(
                "--group {} × {} prompt(s) × {len} positions (prompt + --max-new-tokens) need \
                 {:.1} GiB of KV cache and logits, but {:.1} GiB of memory is available; lower \
                 --group or --max-new-tokens",
                self.group,
                batch.batch_size(),
                need as f64 / GIB,
                free as f64 / GIB
            ),
            _ => Ok(()),
        }
    }
}

const GIB: f64 = (1u64 << 30) as f64;

pub fn run(args: GenerateArgs) -> Result<()> {
    args.validate()?;
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
    let model = Qwen3Vl::<B>::load(&args.model, device)
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let batch = read_inputs::<B>(inputs, device)?;
    args.check_fits(&model, &batch)?;
    let params = vec![args.sampling(args.stop_tokens.clone()); batch.batch_size()];
    let generations = model.generate(&batch, args.group, &params)?;
    write_generations(out_path, &generations, args.max_new_tokens)
}

/// Writes `generated_ids` / `generated_logprobs` `[rows, n]` (id -1 and log-prob 0 after a
/// sample stopped) and `generated_lengths` `[rows]`.
pub(crate) fn write_generations(
    out_path: &std::path::Path,
    generations: &[Generation],
    n: usize,
) -> Result<()> {
    let rows = generations.len();
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

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where there is no such file).
fn available_host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}
