//! `temper convert`: re-save a checkpoint under HF names, in another dtype or shard size (what
//! the learner writes; transformers loads the result).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use temper_model::Qwen3Vl;
use temper_model::backend::Cpu;
use temper_model::weights::SaveDtype;

#[derive(Args)]
pub struct ConvertArgs {
    /// HF checkpoint directory to read.
    #[arg(long)]
    model: PathBuf,
    /// Directory to write (config.json + safetensors).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, value_enum, default_value = "bf16")]
    dtype: Dtype,
    /// Largest shard in MiB; bigger checkpoints get model.safetensors.index.json.
    #[arg(long, default_value_t = 5 * 1024)]
    max_shard_mib: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Dtype {
    F32,
    Bf16,
    F16,
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let device = Default::default();
    let model = Qwen3Vl::<Cpu>::load(&args.model, &device)
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let dtype = match args.dtype {
        Dtype::F32 => SaveDtype::F32,
        Dtype::Bf16 => SaveDtype::Bf16,
        Dtype::F16 => SaveDtype::F16,
    };
    let max_bytes = args.max_shard_mib.saturating_mul(1 << 20).max(1);
    model.save(&args.out, dtype, max_bytes)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
