//! The [`Reward`] trait and what a reward returns.
//!
//! A reward scores a whole batch at once (remote services and judge models batch; rule-based
//! rewards simply loop) and returns, per sample, one of three things:
//!
//! - `Ok(Some(score))`: the score;
//! - `Ok(None)`: the reward does not apply to this sample (no reference answer, not a
//!   multiple-choice prompt...). It is left out of the weighted sum, which is *not* the same as 0;
//! - `Err(Quarantine)`: the sample could not be scored (bad reference, missing token count...).
//!   The sample is counted, logged and kept out of the update; it is never silently scored 0.
//!
//! Besides the score a reward may report named components (e.g. `format` reports whether the
//! thinking and answer blocks were found); the [`RewardSet`](crate::RewardSet) turns each one into
//! a metric. The trait returns a boxed future so that `Arc<dyn Reward>` works without extra crates.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::error::BoxError;
use crate::sample::Sample;

/// A boxed, `Send` future: what [`Reward::score`] returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a sample was not scored. The reason is logged and returned with the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// What went wrong, in words, e.g. "reference `abc` is not a number".
    pub reason: String,
}

impl Quarantine {
    /// A quarantine with this reason.
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Quarantine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The outcome for one sample: a score, not applicable (`Ok(None)`), or quarantined.
pub type SampleScore = Result<Option<f64>, Quarantine>;

/// What a reward returns for a batch: one [`SampleScore`] per sample, in order, plus named
/// per-sample components (`None` where a component does not apply).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RewardOutput {
    /// One entry per sample, in the order of the batch.
    pub scores: Vec<SampleScore>,
    /// Named components, each with one value per sample; reported as metrics, not summed.
    pub components: BTreeMap<String, Vec<Option<f64>>>,
}

impl RewardOutput {
    /// An output with these scores and no components.
    pub fn new(scores: Vec<SampleScore>) -> Self {
        Self {
            scores,
            components: BTreeMap::new(),
        }
    }

    /// An output where every sample scored (`Some`) or did not apply (`None`).
    pub fn from_options(scores: impl IntoIterator<Item = Option<f64>>) -> Self {
        Self::new(scores.into_iter().map(Ok).collect())
    }

    /// Adds a component with one value per sample.
    pub fn with_component(mut self, name: impl Into<String>, values: Vec<Option<f64>>) -> Self {
        self.components.insert(name.into(), values);
        self
    }
}

/// A reward: scores a batch of samples.
///
/// Implementations must return exactly one score per sample and must not block the thread for
/// long (timeouts only take effect at `.await` points; move heavy CPU work to
/// `tokio::task::spawn_blocking`). Returning `Err` quarantines the whole batch with the error's
/// message; returning NaN or ±inf quarantines that sample.
///
/// ```
/// use temper_rewards::{BoxFuture, BoxError, Reward, RewardOutput, Sample};
///
/// /// 1.0 for responses shorter than 100 bytes.
/// struct Short;
///
/// impl Reward for Short {
///     fn name(&self) -> &str {
///         "short"
///     }
///     fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
///         Box::pin(async move {
///             Ok(RewardOutput::from_options(
///                 samples.iter().map(|s| Some(if s.response.len() < 100 { 1.0 } else { 0.0 })),
///             ))
///         })
///     }
/// }
/// ```
pub trait Reward: Send + Sync {
    /// A short name for logs, e.g. the kind (`exact_match`); the set's metric name comes from
    /// the config.
    fn name(&self) -> &str;

    /// Scores the batch: one [`SampleScore`] per sample, in order.
    fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_builders_keep_order_and_components() {
        let out = RewardOutput::from_options([Some(1.0), None])
            .with_component("parsed", vec![Some(1.0), Some(0.0)]);
        assert_eq!(out.scores, vec![Ok(Some(1.0)), Ok(None)]);
        assert_eq!(out.components["parsed"], vec![Some(1.0), Some(0.0)]);
    }

    #[test]
    fn quarantine_displays_its_reason() {
        assert_eq!(Quarantine::new("no reference").to_string(), "no reference");
    }
}
