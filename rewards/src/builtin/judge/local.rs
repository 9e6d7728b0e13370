//! [`LocalJudge`]: a judge run from a checkpoint directory through `temper-model` on the CPU,
//! greedy-decoded — for small judges and for tests without a server.
//!
//! The checkpoint (config, safetensors, `tokenizer.json`, optional chat template) is loaded on
//! first use. Loading and generation are CPU work and run on tokio's blocking pool
//! (`spawn_blocking`), never on the async runtime's threads; the prompts of a batch are
//! left-padded into one batch and decoded together, each until `<|im_end|>`/`<|endoftext|>` or
//! `max_new_tokens`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use temper_model::backend::Cpu;
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::{Qwen3Vl, SamplingParams};

use super::backend::{ChatPrompt, JudgeBackend, JudgeError};
use crate::error::{Result, RewardError};
use crate::reward::BoxFuture;

/// Options of `backend = { type = "local", ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalJudgeConfig {
    /// The checkpoint directory (HF layout: `config.json`, safetensors, `tokenizer.json`).
    pub checkpoint: PathBuf,
    /// Tokens generated per verdict at most [512].
    #[serde(default = "default_max_new_tokens")]
    pub max_new_tokens: usize,
}

fn default_max_new_tokens() -> usize {
    512
}

impl LocalJudgeConfig {
    /// Checks that the checkpoint directory has a `config.json` and that `max_new_tokens > 0`.
    pub fn validate(&self) -> Result<()> {
        if !self.checkpoint.join("config.json").is_file() {
            return Err(RewardError::config(
                "backend.checkpoint",
                self.checkpoint.display(),
                "must be a checkpoint directory with a config.json",
            ));
        }
        if self.max_new_tokens == 0 {
            return Err(RewardError::config(
                "backend.max_new_tokens",
                0,
                "must be >= 1",
            ));
        }
        Ok(())
    }
}

struct Loaded {
    model: Qwen3Vl<Cpu>,
    processor: Processor,
}

/// The local-checkpoint judge.
pub struct LocalJudge {
    config: LocalJudgeConfig,
    /// Loaded on first use; the mutex also keeps two batches from decoding at once, which
    /// would only split the same cores.
    loaded: Arc<Mutex<Option<Loaded>>>,
}

impl std::fmt::Debug for LocalJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalJudge")
            .field("config", &self.config)
            .finish()
    }
}

impl LocalJudge {
    /// A judge for this checkpoint (validated now, loaded on first use).
    pub fn new(config: LocalJudgeConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            loaded: Arc::new(Mutex::new(None)),
        })
    }
}

/// Loads (once) and decodes every prompt; runs on the blocking pool.
fn generate_blocking(
    config: &LocalJudgeConfig,
    loaded: &Mutex<Option<Loaded>>,
    prompts: &[ChatPrompt],
) -> Vec<std::result::Result<String, JudgeError>> {
    let local = |e: &dyn std::fmt::Display| JudgeError::Local(e.to_string());
    let mut guard = loaded.lock().unwrap_or_else(|e| e.into_inner());
    if guard.is_none() {
        let device = Default::default();
        let loading = Qwen3Vl::<Cpu>::load(&config.checkpoint, &device).and_then(|model| {
            let processor = Processor::from_model_dir(&config.checkpoint, &model.config)?;
            Ok(Loaded { model, processor })
        });
        match loading {
            Ok(l) => *guard = Some(l),
            Err(e) => {
                let error = JudgeError::Local(format!(
                    "cannot load the checkpoint {}: {e}",
                    config.checkpoint.display()
                ));
                return vec![Err(error); prompts.len()];
            }
        }
    }
    let Loaded { model, processor } = guard.as_ref().expect("loaded above");
    // Prompts that cannot be prepared (too long...) fail alone; the rest decode as one batch.
    let mut results: Vec<std::result::Result<String, JudgeError>> =
        Vec::with_capacity(prompts.len());
    let mut prepared: Vec<(usize, PreparedPrompt)> = Vec::new();
    for (i, prompt) in prompts.iter().enumerate() {
        match processor.prepare(&prompt.messages, &[], &[]) {
            Ok(p) => {
                prepared.push((i, p));
                results.push(Ok(String::new()));
            }
            Err(e) => results.push(Err(local(&e))),
        }
    }
    if prepared.is_empty() {
        return results;
    }
    let device = Default::default();
    let batch_prompts: Vec<PreparedPrompt> = prepared.iter().map(|(_, p)| p.clone()).collect();
    let params = SamplingParams {
        stop_token_ids: processor.stop_token_ids.clone(),
        ..SamplingParams::greedy(config.max_new_tokens)
    };
    let generated = processor
        .batch::<Cpu>(&batch_prompts, &device)
        .and_then(|batch| model.generate(&batch, 1, &vec![params; batch_prompts.len()]));
    match generated {
        Err(e) => {
            for (i, _) in &prepared {
                results[*i] = Err(local(&e));
            }
        }
        Ok(generations) => {
            for ((i, _), g) in prepared.iter().zip(generations) {
                results[*i] = processor
                    .tokenizer
                    .decode(&g.tokens, true)
                    .map_err(|e| local(&e));
            }
        }
    }
    results
}

impl JudgeBackend for LocalJudge {
    fn identity(&self) -> String {
        let dir = std::fs::canonicalize(&self.config.checkpoint)
            .unwrap_or_else(|_| self.config.checkpoint.clone());
        format!("local|{}|{}", dir.display(), self.config.max_new_tokens)
    }

    fn complete(
        &self,
        prompts: Vec<ChatPrompt>,
    ) -> BoxFuture<'_, Vec<std::result::Result<String, JudgeError>>> {
        let config = self.config.clone();
        let loaded = Arc::clone(&self.loaded);
        Box::pin(async move {
            let n = prompts.len();
            tokio::task::spawn_blocking(move || generate_blocking(&config, &loaded, &prompts))
                .await
                .unwrap_or_else(|e| {
                    vec![Err(JudgeError::Local(format!("generation panicked: {e}"))); n]
                })
        })
    }
}
