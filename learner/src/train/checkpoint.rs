//! Checkpoints: `checkpoints/<stage>-<step>/` holding the policy under HF names
//! (`config.json`, `model.safetensors`, plus `tokenizer.json` / `preprocessor_config.json` so
//! `temper generate` and transformers can load it), `optimizer.safetensors` (AdamW moments by
//! parameter path), `trainer_state.json` and the run's `config.toml`. A checkpoint is written
//! to a temporary directory and renamed into place, so a crash mid-write never leaves a
//! half-written checkpoint that `--resume` would pick up; `checkpoints/latest` names the newest.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use temper_model::safetensors_io::SafetensorsFile;
use temper_model::weights::SaveDtype;
use temper_model::{ModelError, Qwen3Vl};

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
    model.save(&tmp, SaveDtype::F32, MAX_SHARD_BYTES)?;
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

/// A checkpoint to resume from, with its trainer state.
#[derive(Debug, Clone)]
pub struct Found {
    /// The checkpoint directory.
    pub dir: PathBuf,
    /// Its `trainer_state.json`.
    pub state: TrainerState,
    /// Newer checkpoints passed over, each with what is wrong with it.
    pub skipped: Vec<(PathBuf, String)>,
    /// Why `checkpoints/latest` was not followed (absent, or naming a broken checkpoint).
    pub pointer_problem: Option<String>,
}

/// The newest intact checkpoint of `run_dir`: the one `checkpoints/latest` names if it is
/// intact, else the newest intact one found by scanning `checkpoints/` (a missing or stale
/// pointer loses nothing). `None` when there is no checkpoint at all; an error naming every
/// checkpoint and what is wrong with it when none is intact.
pub fn latest(run_dir: &Path) -> Result<Option<Found>, TrainError> {
    let root = run_dir.join("checkpoints");
    let pointer = root.join(LATEST);
    let mut pointer_problem = None;
    if pointer.is_file() {
        let name = std::fs::read_to_string(&pointer).map_err(|e| TrainError::Io {
            path: pointer.clone(),
            source: e,
        })?;
        let dir = root.join(name.trim());
        match intact(&dir) {
            Ok(state) => {
                return Ok(Some(Found {
                    dir,
                    state,
                    skipped: Vec::new(),
                    pointer_problem: None,
                }));
            }
            Err(problem) => {
                pointer_problem = Some(format!(
                    "{} names {}, which is unusable: {problem}",
                    pointer.display(),
                    dir.display()
                ))
            }
        }
    } else if root.is_dir() {
        pointer_problem = Some(format!("{} is missing", pointer.display()));
    }
    let mut skipped = Vec::new();
    for dir in scan(&root).map_err(|e| TrainError::Io {
        path: root.clone(),
        source: e,
    })? {
        match intact(&dir) {
            Ok(state) => {
                return Ok(Some(Found {
                    dir,
                    state,
                    skipped,
                    pointer_problem,
                }));
            }
            Err(problem) => skipped.push((dir, problem)),
        }
    }
    if skipped.is_empty() {
        return Ok(None);
    }
    let list: Vec<String> = skipped
        .iter()
        .map(|(dir, problem)| format!("{}: {problem}", dir.display()))
        .collect();
    Err(TrainError::Resume(format!(
        "no intact checkpoint in {}; {}",
        root.display(),
        list.join("; ")
    )))
}

/// Checkpoint directories under `root` (`<stage>-<step>`, no temporaries), newest first.
pub fn scan(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut names: Vec<String> = std::fs::read_dir(root)?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| is_checkpoint_name(name))
        .collect();
    names.sort_by_key(|name| order_key(name));
    Ok(names
        .into_iter()
        .rev()
        .map(|name| root.join(name))
        .collect())
}

fn is_checkpoint_name(name: &str) -> bool {
    let Some((stage, step)) = name.split_once('-') else {
        return false;
    };
    matches!(stage, "sft" | "rl" | "done")
        && !step.is_empty()
        && step.bytes().all(|b| b.is_ascii_digit())
}

/// The trainer state of checkpoint `dir` if every file a resume reads is present and whole
/// (safetensors headers parse and their tensors end where the file ends); else what is wrong.
pub fn intact(dir: &Path) -> Result<TrainerState, String> {
    if !dir.is_dir() {
        return Err("no such directory".to_string());
    }
    let state = read_state(dir).map_err(|e| e.to_string())?;
    if !dir.join("config.json").is_file() {
        return Err("config.json is missing".to_string());
    }
    let index = dir.join("model.safetensors.index.json");
    let mut weights = vec![dir.join(OPTIMIZER_FILE)];
    if index.is_file() {
        let text =
            std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
        let parsed: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| format!("model.safetensors.index.json is not JSON: {e}"))?;
        let mut shards: Vec<String> = parsed["weight_map"]
            .as_object()
            .ok_or("model.safetensors.index.json has no weight_map")?
            .values()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        shards.sort();
        shards.dedup();
        weights.extend(shards.into_iter().map(|s| dir.join(s)));
    } else {
        weights.push(dir.join("model.safetensors"));
    }
    for file in weights {
        whole_safetensors(&file).map_err(|problem| {
            format!(
                "{} {problem}",
                file.file_name().unwrap_or_default().to_string_lossy()
            )
        })?;
    }
    Ok(state)
}

/// Whether `path` is a whole safetensors file: the model crate's reader checks that the header
/// parses and that the tensor data ends exactly where the file ends (a truncated or padded file
/// fails), without reading the data.
fn whole_safetensors(path: &Path) -> Result<(), String> {
    match SafetensorsFile::open(path) {
        Ok(_) => Ok(()),
        Err(ModelError::Io { source, .. }) => Err(format!("cannot be read: {source}")),
        Err(ModelError::CorruptCheckpoint { message, .. }) => {
            Err(format!("is truncated or corrupt ({message})"))
        }
        Err(other) => Err(other.to_string()),
    }
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
