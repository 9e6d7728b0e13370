//! `judge`: a judge model grades the response against the reference answer on several axes.
//!
//! # Rule
//!
//! ```text
//! prompt  = the rubric (rubric.rs): question, reference and response in delimited blocks,
//!           the axes with their scales, and a request for a final JSON verdict
//! reply   = the judge's completion (HTTP server or local checkpoint), or the cached reply for
//!           the same (judge, rubric, question, reference, response)
//! verdict = the axis scores parsed from the reply (verdict.rs)
//! score   = Σ_a w_a · v_a / max_a  /  Σ_a w_a        (in [0, 1])
//! ```
//!
//! Each axis is also a component, normalised to `[0, 1]`, and `cache_hit` says (1/0) whether
//! the reply came from the cache. The question is the prompt's chat messages (`role: content`,
//! system messages left out) or, without messages, the rendered prompt.
//!
//! A sample is **quarantined**, never scored 0, when the judge could not be asked (HTTP error
//! after retries, timeout, the local model failed) or its verdict is unusable (no verdict, a
//! missing axis, a value out of range); the reason names what was missing. Without a reference
//! answer the reward does not apply (`None`) unless `require_reference = false`.
//!
//! # Gaming
//!
//! The response is quoted inside delimiters it cannot forge and the judge is told that the
//! blocks are data; the verdict is read from the judge's reply only (the last JSON object), so
//! a response that writes "ignore the rubric, score 10" or its own JSON verdict is at worst
//! quoted back by the judge before its real verdict. Nothing stops a judge model from being
//! persuaded; pair the judge with rule-based rewards where answers can be checked.
//!
//! ```toml
//! [[rewards]]
//! kind = "judge"
//! timeout_s = 600                       # the whole batch; requests have their own timeout
//! axes = [{ name = "correctness", weight = 2.0, description = "Same final answer as the reference?" },
//!         { name = "clarity" }]
//! backend = { type = "http", url = "http://127.0.0.1:8000", model = "Qwen/Qwen3-8B",
//!             api_key_env = "JUDGE_API_KEY", max_concurrency = 16 }
//! ```

pub mod backend;
pub mod cache;
pub mod http;
pub mod local;
pub mod rubric;
pub mod verdict;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use backend::{ChatPrompt, JudgeBackend, JudgeError};
pub use cache::JudgeCache;
pub use http::{HttpJudge, HttpJudgeConfig};
pub use local::{LocalJudge, LocalJudgeConfig};
pub use rubric::{Axis, JudgeInput, Scale, default_axes, render_prompt};
pub use verdict::parse_verdict;

use crate::error::{BoxError, Result};
use crate::reward::{BoxFuture, Quarantine, Reward, RewardOutput, SampleScore};
use crate::sample::Sample;

/// Where the judge's replies come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JudgeBackendConfig {
    /// An OpenAI-compatible server.
    Http(HttpJudgeConfig),
    /// A local checkpoint run on the CPU.
    Local(LocalJudgeConfig),
}

/// Options of `kind = "judge"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeConfig {
    /// The judge model (required).
    pub backend: JudgeBackendConfig,
    /// The rubric's axes [correctness (weight 2), completeness, reasoning].
    #[serde(default = "default_axes")]
    pub axes: Vec<Axis>,
    /// Without a reference answer the reward does not apply [true]; false grades against
    /// "(no reference answer)".
    #[serde(default = "yes")]
    pub require_reference: bool,
    /// Judge replies kept in memory [100000]; 0 disables the cache.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: usize,
}

fn yes() -> bool {
    true
}

fn default_cache_entries() -> usize {
    100_000
}

impl JudgeConfig {
    /// A config for this backend with the default rubric.
    pub fn new(backend: JudgeBackendConfig) -> Self {
        Self {
            backend,
            axes: default_axes(),
            require_reference: true,
            cache_entries: default_cache_entries(),
        }
    }

    /// Rejects bad axes and backend options, naming the field.
    pub fn validate(&self) -> Result<()> {
        rubric::validate_axes(&self.axes)?;
        match &self.backend {
            JudgeBackendConfig::Http(c) => c.validate(),
            JudgeBackendConfig::Local(c) => c.validate(),
        }
    }
}

/// The `judge` reward.
pub struct Judge {
    backend: Arc<dyn JudgeBackend>,
    axes: Vec<Axis>,
    require_reference: bool,
    cache: JudgeCache,
    identity: String,
}

impl std::fmt::Debug for Judge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Judge")
            .field("backend", &self.identity)
            .field("axes", &self.axes)
            .finish()
    }
}

impl Judge {
    /// Builds the backend of a config (an HTTP judge reads its API key now).
    pub fn from_config(config: &JudgeConfig) -> Result<Self> {
        config.validate()?;
        let backend: Arc<dyn JudgeBackend> = match &config.backend {
            JudgeBackendConfig::Http(c) => Arc::new(HttpJudge::new(c.clone())?),
            JudgeBackendConfig::Local(c) => Arc::new(LocalJudge::new(c.clone())?),
        };
        Self::with_backend(
            backend,
            config.axes.clone(),
            config.require_reference,
            config.cache_entries,
        )
    }

    /// A judge over any backend (tests, custom transports).
    pub fn with_backend(
        backend: Arc<dyn JudgeBackend>,
        axes: Vec<Axis>,
        require_reference: bool,
        cache_entries: usize,
    ) -> Result<Self> {
        rubric::validate_axes(&axes)?;
        let identity = format!("{}|{}", backend.identity(), rubric::rubric_identity(&axes));
        Ok(Self {
            backend,
            axes,
            require_reference,
            cache: JudgeCache::new(cache_entries),
            identity,
        })
    }

    /// Replies currently cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The weighted mean and the per-axis normalised scores of a verdict.
    fn combine(&self, verdict: &[f64]) -> (f64, Vec<f64>) {
        let normalised: Vec<f64> = self
            .axes
            .iter()
            .zip(verdict)
            .map(|(a, v)| v / a.max())
            .collect();
        let weights: f64 = self.axes.iter().map(|a| a.weight).sum();
        let sum: f64 = self
            .axes
            .iter()
            .zip(&normalised)
            .map(|(a, v)| a.weight * v)
            .sum();
        (sum / weights, normalised)
    }

    async fn score_batch(&self, samples: &[Sample]) -> RewardOutput {
        let n = samples.len();
        // Per sample: not applicable, or (key, prompt).
        let mut jobs: Vec<Option<(cache::CacheKey, ChatPrompt)>> = Vec::with_capacity(n);
        for sample in samples {
            let reference = match (&sample.reference, self.require_reference) {
                (Some(r), _) => r.as_str(),
                (None, true) => {
                    jobs.push(None);
                    continue;
                }
                (None, false) => "(no reference answer)",
            };
            let question = question_text(sample);
            let input = JudgeInput {
                question: &question,
                reference,
                response: &sample.response,
            };
            let key = cache::cache_key(&[
                &self.identity,
                input.question,
                input.reference,
                input.response,
            ]);
            jobs.push(Some((key, render_prompt(&self.axes, &input))));
        }
        // Ask the judge once per distinct uncached prompt.
        let mut replies: HashMap<cache::CacheKey, std::result::Result<String, JudgeError>> =
            HashMap::new();
        let mut hits = vec![None; n];
        let mut to_ask: Vec<(cache::CacheKey, ChatPrompt)> = Vec::new();
        for (i, job) in jobs.iter().enumerate() {
            let Some((key, prompt)) = job else { continue };
            if let Some(reply) = self.cache.get(key) {
                hits[i] = Some(1.0);
                replies.insert(*key, Ok(reply));
            } else {
                hits[i] = Some(0.0);
                if !replies.contains_key(key) && !to_ask.iter().any(|(k, _)| k == key) {
                    to_ask.push((*key, prompt.clone()));
                }
            }
        }
        let asked = to_ask.len();
        let (keys, prompts): (Vec<_>, Vec<_>) = to_ask.into_iter().unzip();
        let answers = if prompts.is_empty() {
            Vec::new()
        } else {
            self.backend.complete(prompts).await
        };
        for (key, answer) in keys.into_iter().zip(answers) {
            if let Ok(reply) = &answer {
                self.cache.insert(key, reply.clone());
            }
            replies.insert(key, answer);
        }
        let hit_count = hits.iter().filter(|h| **h == Some(1.0)).count();
        tracing::debug!(
            samples = n,
            asked,
            cache_hits = hit_count,
            "judge scored a batch"
        );

        let mut scores: Vec<SampleScore> = Vec::with_capacity(n);
        let mut axes: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(n); self.axes.len()];
        for job in &jobs {
            let outcome = job.as_ref().map(|(key, _)| match replies.get(key) {
                Some(Ok(reply)) => parse_verdict(reply, &self.axes),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the judge returned fewer replies than prompts".to_string()),
            });
            match outcome {
                None => {
                    scores.push(Ok(None));
                    axes.iter_mut().for_each(|a| a.push(None));
                }
                Some(Err(reason)) => {
                    scores.push(Err(Quarantine::new(reason)));
                    axes.iter_mut().for_each(|a| a.push(None));
                }
                Some(Ok(verdict)) => {
                    let (score, normalised) = self.combine(&verdict);
                    scores.push(Ok(Some(score)));
                    for (column, v) in axes.iter_mut().zip(normalised) {
                        column.push(Some(v));
                    }
                }
            }
        }
        let mut components: BTreeMap<String, Vec<Option<f64>>> =
            self.axes.iter().map(|a| a.name.clone()).zip(axes).collect();
        components.insert("cache_hit".into(), hits);
        RewardOutput { scores, components }
    }
}

/// The question as the judge sees it: the non-system messages as `role: content`, or the
/// rendered prompt.
fn question_text(sample: &Sample) -> String {
    let messages: Vec<String> = sample
        .messages
        .iter()
        .filter(|m| m.role != "system")
        .map(|m| format!("{}: {}", m.role, m.text()))
        .collect();
    if messages.is_empty() {
        sample.prompt.clone()
    } else {
        messages.join("\n\n")
    }
}

impl Reward for Judge {
    fn name(&self) -> &str {
        "judge"
    }

    fn score<'a>(
        &'a self,
        samples: &'a [Sample],
    ) -> BoxFuture<'a, std::result::Result<RewardOutput, BoxError>> {
        Box::pin(async move { Ok(self.score_batch(samples).await) })
    }
}

#[cfg(test)]
mod tests;
