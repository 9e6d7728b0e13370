//! `temper convert`: re-save a checkpoint under HF names, in another dtype or shard size (what
//! the learner writes; transformers loads the result), with the tokenizer, processor,
//! generation and chat-template files beside it.
//!
//! The new checkpoint is written into a fresh temporary directory next to `--out` and moved in
//! only when complete. Into a directory that already holds a checkpoint, the new files replace
//! the old ones and every file of the old checkpoint that the new one does not have (a stale
//! `model.safetensors.index.json` or shard, a single `model.safetensors`, a tokenizer of another
//! model) is removed: otherwise the loader would pick stale weights. Other files in `--out` are
//! left alone.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use temper_model::Qwen3Vl;
use temper_model::backend::Cpu;
use temper_model::weights::{SaveDtype, checkpoint_weight_files};

/// Files of a HF model directory besides config and weights that `convert` carries over.
pub const SIDE_FILES: [&str; 11] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "preprocessor_config.json",
    "video_preprocessor_config.json",
    "generation_config.json",
    "chat_template.jinja",
    "chat_template.json",
];

#[derive(Args)]
pub struct ConvertArgs {
    /// HF checkpoint directory to read.
    #[arg(long)]
    model: PathBuf,
    /// Directory to write (config.json + safetensors + tokenizer/processor files).
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
    if args.out.is_file() {
        bail!(
            "--out {} is a file; name a directory to write the checkpoint into",
            args.out.display()
        );
    }
    if let (Ok(a), Ok(b)) = (args.model.canonicalize(), args.out.canonicalize())
        && a == b
    {
        bail!(
            "--out {} is the --model directory; convert into another directory (the source \
             checkpoint is the only copy of the weights)",
            args.out.display()
        );
    }
    let device = Default::default();
    let model = Qwen3Vl::<Cpu>::load(&args.model, &device)
        .with_context(|| format!("loading the model from {}", args.model.display()))?;
    let dtype = match args.dtype {
        Dtype::F32 => SaveDtype::F32,
        Dtype::Bf16 => SaveDtype::Bf16,
        Dtype::F16 => SaveDtype::F16,
    };
    let max_bytes = args.max_shard_mib.saturating_mul(1 << 20).max(1);

    let staging = Staging::new(&args.out)?;
    model.save(staging.path(), dtype, max_bytes)?;
    for name in SIDE_FILES {
        let from = args.model.join(name);
        if from.is_file() {
            std::fs::copy(&from, staging.path().join(name)).with_context(|| {
                format!("cannot copy {} into {}", from.display(), args.out.display())
            })?;
        }
    }
    staging.install(&args.out)?;
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

/// A temporary directory beside the output, removed unless installed.
struct Staging(PathBuf);

impl Staging {
    fn new(out: &Path) -> Result<Self> {
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let name = out
            .file_name()
            .map_or("checkpoint".into(), |n| n.to_string_lossy().into_owned());
        let dir = parent.join(format!(".{name}.convert-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot remove the leftover {}", dir.display()))?;
        }
        std::fs::create_dir(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Moves the new checkpoint into `out`: a rename when `out` does not exist; otherwise its
    /// files one by one (each rename replaces the old file), then the old weight files the new
    /// checkpoint does not have are removed.
    fn install(self, out: &Path) -> Result<()> {
        if !out.exists() {
            return std::fs::rename(&self.0, out)
                .with_context(|| format!("cannot move the checkpoint into {}", out.display()));
        }
        let mut new_files = Vec::new();
        for entry in std::fs::read_dir(&self.0)
            .with_context(|| format!("cannot read {}", self.0.display()))?
        {
            let entry = entry.with_context(|| format!("cannot read {}", self.0.display()))?;
            new_files.push(entry.file_name());
        }
        // Weights first, config.json last: the directory never pairs the new config with
        // weights that are still the old ones.
        new_files.sort_by_key(|n| n == "config.json");
        for name in &new_files {
            let to = out.join(name);
            std::fs::rename(self.0.join(name), &to)
                .with_context(|| format!("cannot write {}", to.display()))?;
        }
        let mut stale = checkpoint_weight_files(out)
            .with_context(|| format!("cannot read {}", out.display()))?;
        stale.extend(
            SIDE_FILES
                .iter()
                .map(|name| out.join(name))
                .filter(|p| p.is_file()),
        );
        for path in stale {
            if path
                .file_name()
                .is_some_and(|n| !new_files.iter().any(|m| m == n))
            {
                std::fs::remove_file(&path)
                    .with_context(|| format!("cannot remove the stale file {}", path.display()))?;
                tracing::info!(file = %path.display(), "removed a file of the previous checkpoint");
            }
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.0.exists() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
