//! Checkpoints: `checkpoints/<stage>-<step>/` holding the policy under HF names
//! (`config.json`, `model.safetensors`, plus `tokenizer.json` / `preprocessor_config.json` so
//! `temper generate` and transformers can load it), `optimizer.safetensors` (AdamW moments by
//! parameter path), `trainer_state.json` and the run's `config.toml`. A checkpoint is written
//! to a temporary directory and renamed into place, so a crash mid-write never leaves a
//! half-written checkpoint that `--resume` would pick up; `checkpoints/latest` names the newest.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use temper_model::Qwen3Vl;
use temper_model::weights::SaveDtype;

use super::TrainError;
use super::state::{Stage, TrainerState};
use crate::optim::AdamW;

const LATEST: &str = "latest";
/// Checkpoints are small enough for one file; HF's default shard size keeps big ones loadable.
const MAX_SHARD_BYTES: usize = 5 << 30;

/// What a checkpoint directory must contain to resume from it.
pub const STATE_FILE: &str = "trainer_state.json";
/// The optimiser's state file.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Writes one checkpoint and prunes old ones, keeping `keep`; returns its directory.
pub fn save<B: Backend>(
    run_dir: &Path,
    model: &Qwen3Vl<B>,
    optimizer: &AdamW<B>,
    state: &TrainerState,
    config_toml: &str,
    processor_files: &dyn Fn(&Path) -> std::io::Result<()>,
    keep: usize,
) -> Result<PathBuf, TrainError> {
    let root = run_dir.join("checkpoints");
    let stage = match state.stage {
        Stage::Sft => "sft",
        Stage::Rl => "rl",
        Stage::Done => "done",
    };
    let name = format!("{stage}-{:06}", state.step);
    let dir = root.join(&name);
    let tmp = root.join(format!(".{name}.tmp"));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| TrainError::Io { path, source: e }
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    model
        .save(&tmp, SaveDtype::F32, MAX_SHARD_BYTES)
        .map_err(|e| TrainError::Model(e.to_string()))?;
    processor_files(&tmp).map_err(io(&tmp))?;
    optimizer.save(&tmp.join(OPTIMIZER_FILE))?;
    let state_json = serde_json::to_string_pretty(state).expect("state serialises");
    std::fs::write(tmp.join(STATE_FILE), state_json).map_err(io(&tmp))?;
    std::fs::write(tmp.join("config.toml"), config_toml).map_err(io(&tmp))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    std::fs::write(root.join(LATEST), &name).map_err(io(&root))?;
    prune(&root, keep, &name).map_err(io(&root))?;
    Ok(dir)
}

/// The newest checkpoint of `run_dir`, if any.
pub fn latest(run_dir: &Path) -> Result<Option<PathBuf>, TrainError> {
    let root = run_dir.join("checkpoints");
    let pointer = root.join(LATEST);
    if !pointer.is_file() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).map_err(|e| TrainError::Io {
        path: pointer.clone(),
        source: e,
    })?;
    let dir = root.join(name.trim());
    if !dir.join(STATE_FILE).is_file() {
        return Err(TrainError::Resume(format!(
            "{} names checkpoint {}, which has no {STATE_FILE}",
            pointer.display(),
            dir.display()
        )));
    }
    Ok(Some(dir))
}

/// Reads a checkpoint's trainer state.
pub fn read_state(dir: &Path) -> Result<TrainerState, TrainError> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| TrainError::Io {
        path: path.clone(),
        source: e,
    })?;
    serde_json::from_str(&text)
        .map_err(|e| TrainError::Resume(format!("{} is not a trainer state: {e}", path.display())))
}

/// Deletes all but the `keep` newest checkpoints (by modification order of their names,
/// which sort by stage then step), never the one just written.
fn prune(root: &Path, keep: usize, current: &str) -> std::io::Result<()> {
    let mut names: Vec<String> = std::fs::read_dir(root)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    names.sort_by_key(|name| order_key(name));
    let excess = names.len().saturating_sub(keep);
    for name in names.into_iter().take(excess) {
        if name != current {
            std::fs::remove_dir_all(root.join(name))?;
        }
    }
    Ok(())
}

/// Sort key of a checkpoint name: stage order, then step.
fn order_key(name: &str) -> (u8, String) {
    let stage = match name.split('-').next() {
        Some("sft") => 0,
        Some("rl") => 1,
        _ => 2,
    };
    (stage, name.to_string())
}
