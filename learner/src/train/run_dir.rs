//! The rules of a run directory, applied before a run writes anything into it:
//!
//! - one training at a time: an advisory lock on `train.lock` (which records the holder's pid)
//!   is held for the whole run, so a second `temper train` on the same directory is refused,
//!   naming the pid, instead of the two interleaving their metrics and checkpoints;
//! - a run's history is never truncated: a fresh run starts only in a directory that holds no
//!   metrics, checkpoints, summary or foreign files;
//! - a resumed run continues under the config it was trained with: a differing key is refused,
//!   except the few that may change (more steps, evaluation and checkpoint cadence), and a run
//!   that was done continues when its steps are raised.
//!
//! The lock is `flock(2)`-style (std's `File::try_lock`): the kernel drops it when the process
//! ends, however it ends, so a killed run never leaves the directory locked.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use serde_json::Value;

use super::TrainError;
use super::checkpoint::{self, Found};
use super::config::TrainConfig;
use super::state::Stage;

/// The lock file of a run directory; holds the pid of the process that has the lock.
pub const LOCK_FILE: &str = "train.lock";
/// The run's config, as the run uses it.
pub const CONFIG_FILE: &str = "config.toml";

/// Keys a resumed run may change: they do not alter what the steps already run computed.
/// `rl.steps` and `sft.steps` may grow (not below the steps already run).
pub const RESUMABLE_KEYS: [&str; 5] = [
    "rl.steps",
    "sft.steps",
    "rl.eval_every",
    "checkpoint.every",
    "checkpoint.keep",
];

/// An open run directory: locked for this process, and the checkpoint to resume from.
#[derive(Debug)]
pub struct RunDir {
    /// Held open (and locked) for the run; closing it releases the lock.
    _lock: File,
    resume: Option<Found>,
}

impl RunDir {
    /// Locks `path` (creating it), then checks it: with `resume`, finds the newest intact
    /// checkpoint and checks `config` against the run's own; without, checks that the directory
    /// holds no run. Nothing in the directory is changed but the lock file.
    pub fn open(path: &Path, config: &TrainConfig, resume: bool) -> Result<Self, TrainError> {
        std::fs::create_dir_all(path).map_err(io(path))?;
        let lock = lock(path)?;
        let resume = if resume {
            Some(resumable(path, config)?)
        } else {
            check_fresh(path, &config.to_toml())?;
            None
        };
        Ok(Self {
            _lock: lock,
            resume,
        })
    }

    /// The checkpoint to resume from (its state adjusted to the config), if resuming.
    pub fn resume(&self) -> Option<&Found> {
        self.resume.as_ref()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Takes the advisory lock of `dir` and records this process's pid in it.
fn lock(dir: &Path) -> Result<File, TrainError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io(&path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(TrainError::RunDirInUse {
                dir: dir.to_path_buf(),
                pid: if holder.is_empty() {
                    "unknown".to_string()
                } else {
                    holder.to_string()
                },
            });
        }
        Err(TryLockError::Error(source)) => return Err(TrainError::Io { path, source }),
    }
    file.set_len(0).map_err(io(&path))?;
    file.rewind().map_err(io(&path))?;
    writeln!(file, "{}", std::process::id()).map_err(io(&path))?;
    file.flush().map_err(io(&path))?;
    Ok(file)
}

/// Refuses a fresh run in a directory that holds anything but what a run leaves before its
/// first record (the lock, an empty `metrics.jsonl`, no checkpoint, this very config).
fn check_fresh(dir: &Path, config_toml: &str) -> Result<(), TrainError> {
    let mut held = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let leftover = match name.as_str() {
            LOCK_FILE => true,
            "metrics.jsonl" => std::fs::metadata(&path).is_ok_and(|m| m.len() == 0),
            CONFIG_FILE => std::fs::read_to_string(&path).is_ok_and(|text| text == config_toml),
            "checkpoints" => {
                checkpoint::scan(&path).is_ok_and(|found| found.is_empty())
                    && !path.join("latest").exists()
            }
            _ => false,
        };
        if !leftover {
            held.push(name);
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    held.sort();
    Err(TrainError::Resume(format!(
        "{} already holds a run or other files ({}); nothing was changed. Pass --resume to \
         continue that run, or choose another --run-dir",
        dir.display(),
        held.join(", ")
    )))
}

/// The checkpoint to resume from, after checking `config` against the run's own.
fn resumable(dir: &Path, config: &TrainConfig) -> Result<Found, TrainError> {
    let mut found = checkpoint::latest(dir)?.ok_or_else(|| {
        TrainError::Resume(format!(
            "{} has no checkpoint to resume from; start the run without --resume (in a new or \
             empty --run-dir)",
            dir.display()
        ))
    })?;
    if let Some(problem) = &found.pointer_problem {
        tracing::warn!(
            "{problem}; resuming from {}, found by scanning",
            found.dir.display()
        );
    }
    for (skipped, problem) in &found.skipped {
        tracing::warn!(
            "checkpoint {} is unusable ({problem}); resuming from the older {}",
            skipped.display(),
            found.dir.display()
        );
    }
    // The run's own config: the one the checkpoint was trained under, else the run's.
    let stored_path = [found.dir.join(CONFIG_FILE), dir.join(CONFIG_FILE)]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            TrainError::Resume(format!(
                "{} has no {CONFIG_FILE} to check the resumed config against",
                found.dir.display()
            ))
        })?;
    let text = std::fs::read_to_string(&stored_path).map_err(io(&stored_path))?;
    let stored: TrainConfig = toml::from_str(&text).map_err(|e| {
        TrainError::Resume(format!(
            "{} is not a run config: {e}",
            stored_path.display()
        ))
    })?;
    let state = &mut found.state;
    let mut refused = Vec::new();
    for (key, old, new) in changes(&stored, config) {
        let allowed = match key.as_str() {
            "rl.steps" => {
                let done = match state.stage {
                    Stage::Sft => 0,
                    Stage::Rl | Stage::Done => state.step,
                };
                config.rl.steps >= done
            }
            "sft.steps" => state.stage == Stage::Sft && config.sft.steps >= state.step,
            other => RESUMABLE_KEYS.contains(&other),
        };
        if allowed {
            tracing::warn!("resuming with `{key}` = {new} (the run had {old})");
        } else {
            refused.push(format!("`{key}` = {new} (the run has {old})"));
        }
    }
    if !refused.is_empty() {
        return Err(TrainError::Resume(format!(
            "the resumed config differs from the run's own ({}): {}. A resumed run keeps its \
             config; only {} may change, and steps not below those already run. Resume with \
             `temper train --run-dir {} --resume`, or start a new run in another --run-dir",
            stored_path.display(),
            refused.join(", "),
            RESUMABLE_KEYS.join(", "),
            dir.display()
        )));
    }
    // A finished run given more RL steps continues them.
    if state.stage == Stage::Done && config.rl.steps > state.step {
        tracing::warn!(
            "the run was done after {} RL steps; continuing to {}",
            state.step,
            config.rl.steps
        );
        state.stage = Stage::Rl;
        state.evaluations.final_ = None;
    }
    Ok(found)
}

/// `(dotted key, old, new)` for every leaf where two configs differ.
fn changes(old: &TrainConfig, new: &TrainConfig) -> Vec<(String, String, String)> {
    let mut a = Vec::new();
    let mut b = Vec::new();
    flatten(
        "",
        &serde_json::to_value(old).expect("a config serialises"),
        &mut a,
    );
    flatten(
        "",
        &serde_json::to_value(new).expect("a config serialises"),
        &mut b,
    );
    let mut keys: Vec<&String> = a.iter().chain(&b).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let get = |list: &[(String, String)], key: &str| {
        list.iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| "(unset)".to_string(), |(_, v)| v.clone())
    };
    keys.into_iter()
        .filter_map(|key| {
            let (x, y) = (get(&a, key), get(&b, key));
            (x != y).then(|| (key.clone(), x, y))
        })
        .collect()
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&join(k), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), v, out);
            }
        }
        Value::Null => {}
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
