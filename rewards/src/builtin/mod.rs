//! The rule-based built-in rewards, one file per kind. Each scores samples one at a time with
//! no I/O; a private helper turns such a function into a batched [`RewardOutput`].

pub mod choice;
pub mod code_switching;
pub mod exact_match;
pub mod format;
pub mod judge;
pub mod length;
pub mod math;
pub mod numeric;
pub mod regex;
pub mod repetition;
pub mod tool_call;

use crate::reward::{RewardOutput, SampleScore};
use crate::sample::Sample;

/// One sample's outcome from a rule-based reward: its score and its component values, in the
/// order of the reward's component names.
pub(crate) struct Scored<const N: usize> {
    pub score: SampleScore,
    pub components: [Option<f64>; N],
}

impl<const N: usize> Scored<N> {
    /// A score with components.
    pub fn new(score: SampleScore, components: [Option<f64>; N]) -> Self {
        Self { score, components }
    }

    /// A sample the reward does not apply to: no score, no components.
    pub fn not_applicable() -> Self {
        Self::new(Ok(None), [None; N])
    }

    /// A quarantined sample, with no components.
    pub fn quarantined(reason: impl Into<String>) -> Self {
        Self::new(Err(crate::Quarantine::new(reason)), [None; N])
    }
}

/// Applies `score_one` to every sample and collects scores and named components.
pub(crate) fn per_sample<const N: usize>(
    samples: &[Sample],
    component_names: [&str; N],
    score_one: impl Fn(&Sample) -> Scored<N>,
) -> RewardOutput {
    let mut scores = Vec::with_capacity(samples.len());
    let mut columns: [Vec<Option<f64>>; N] =
        std::array::from_fn(|_| Vec::with_capacity(samples.len()));
    for sample in samples {
        let scored = score_one(sample);
        scores.push(scored.score);
        for (column, value) in columns.iter_mut().zip(scored.components) {
            column.push(value);
        }
    }
    let mut out = RewardOutput::new(scores);
    for (name, column) in component_names.into_iter().zip(columns) {
        out.components.insert(name.to_string(), column);
    }
    out
}

/// 1.0 for true, 0.0 for false.
pub(crate) fn indicator(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// Implements [`Reward`](crate::Reward) for a built-in with a `score_one(&self, &Sample) -> Scored<N>`
/// method and a `COMPONENTS: [&str; N]` constant.
macro_rules! rule_reward {
    ($ty:ty, $kind:literal) => {
        impl $crate::reward::Reward for $ty {
            fn name(&self) -> &str {
                $kind
            }

            fn score<'a>(
                &'a self,
                samples: &'a [$crate::sample::Sample],
            ) -> $crate::reward::BoxFuture<
                'a,
                ::std::result::Result<$crate::reward::RewardOutput, $crate::error::BoxError>,
            > {
                Box::pin(async move {
                    Ok($crate::builtin::per_sample(
                        samples,
                        Self::COMPONENTS,
                        |s| self.score_one(s),
                    ))
                })
            }
        }
    };
}
pub(crate) use rule_reward;

/// Scores samples with a built-in and blocks on the (immediately ready) future; for tests.
#[cfg(test)]
pub(crate) fn score_now(reward: &dyn crate::Reward, samples: &[Sample]) -> RewardOutput {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(reward.score(samples))
        .expect("built-ins do not fail")
}

/// The single score of one response with an optional reference; for tests.
#[cfg(test)]
pub(crate) fn score_one_response(
    reward: &dyn crate::Reward,
    response: &str,
    reference: Option<&str>,
) -> SampleScore {
    let mut sample = Sample::new("", response);
    sample.reference = reference.map(str::to_string);
    score_now(reward, &[sample]).scores.remove(0)
}
