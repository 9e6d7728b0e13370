//! [`RewardSet`]: several rewards scored together and combined into one total per sample.
//!
//! For each sample, in this order:
//!
//! 1. **Quarantine.** If any reward quarantined the sample — its own verdict, or the set's
//!    because the reward failed, panicked, timed out, returned the wrong number of scores or a
//!    NaN/±inf score or component — the total is `Err(Quarantine)` with every reason, joined by
//!    `"; "`. The learner must leave the sample out of the update; it is counted in
//!    [`RewardMetrics::quarantined`] and logged at `warn`.
//! 2. **Gates.** If a gated reward scored the sample below its `min_score`, the total is that
//!    gate's fixed `penalty` (the lowest penalty if several gates fail), whatever the other
//!    rewards say. A gate whose reward does not apply (`None`) passes.
//! 3. **Weighted sum.** Otherwise the total is `Σ weight · score` over the rewards that apply;
//!    rewards returning `None` are left out (not counted as 0, and the other weights are not
//!    rescaled). If none applies, the total is `Ok(None)`.
//!
//! The rewards of a set run concurrently, each under its own timeout. Timeouts take effect at
//! `.await` points only, so a reward must not block its thread (see [`Reward`]).

use std::collections::BTreeMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::join_all;

use crate::config::{GateConfig, RewardSetConfig};
use crate::error::{Result, RewardError};
use crate::registry::RewardRegistry;
use crate::reward::{Quarantine, Reward, RewardOutput, SampleScore};
use crate::sample::Sample;

/// One reward of a set, with what the config says about it.
#[derive(Clone)]
pub(crate) struct Member {
    pub name: String,
    pub weight: f64,
    pub timeout: Duration,
    pub gate: Option<GateConfig>,
    pub reward: Arc<dyn Reward>,
}

/// A weighted, gated combination of rewards; build it from a [`RewardSetConfig`] with
/// [`RewardSet::from_config`] (built-ins only) or [`RewardRegistry::build`] (with custom
/// rewards).
#[derive(Clone)]
pub struct RewardSet {
    members: Vec<Member>,
}

impl fmt::Debug for RewardSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for m in &self.members {
            list.entry(&format_args!(
                "{} (weight {}, timeout {:?}, gate {:?})",
                m.name, m.weight, m.timeout, m.gate
            ));
        }
        list.finish()
    }
}

/// The scores of one reward of the set, per sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardScores {
    /// The reward's metric name.
    pub name: String,
    /// Its weight in the total.
    pub weight: f64,
    /// One entry per sample; quarantines carry the set's reason (`reward `x` ...`).
    pub scores: Vec<SampleScore>,
    /// Its components, one value per sample (`None` for quarantined samples).
    pub components: BTreeMap<String, Vec<Option<f64>>>,
}

/// Mean and count of the values that applied.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stat {
    /// The mean, `None` when no value applied.
    pub mean: Option<f64>,
    /// How many values applied.
    pub count: usize,
}

impl Stat {
    /// The statistic of both sets of values together (means weighted by their counts).
    pub fn merged(self, other: Stat) -> Stat {
        let count = self.count + other.count;
        let sum = |s: Stat| s.mean.map_or(0.0, |m| m * s.count as f64);
        Stat {
            mean: (count > 0).then(|| (sum(self) + sum(other)) / count as f64),
            count,
        }
    }

    fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let (sum, count) = values
            .into_iter()
            .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
        Self {
            mean: (count > 0).then(|| sum / count as f64),
            count,
        }
    }
}

/// Summary of one reward over a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardStats {
    /// The reward's metric name.
    pub name: String,
    /// Its score over the samples it applied to.
    pub score: Stat,
    /// Samples it did not apply to (`None`).
    pub not_applicable: usize,
    /// Samples it quarantined.
    pub quarantined: usize,
    /// Samples that failed its gate (0 without a gate).
    pub gate_failed: usize,
    /// Each component over the samples where it applied.
    pub components: BTreeMap<String, Stat>,
}

/// Summary of a scored batch: the totals and every reward and component.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RewardMetrics {
    /// Samples in the batch.
    pub samples: usize,
    /// The totals that are numbers (gate penalties included).
    pub total: Stat,
    /// Samples with no applicable reward (`Ok(None)` totals).
    pub not_applicable: usize,
    /// Quarantined samples: to be left out of the update.
    pub quarantined: usize,
    /// Samples whose total is a gate penalty.
    pub gated: usize,
    /// Per reward, in config order.
    pub rewards: Vec<RewardStats>,
}

impl RewardMetrics {
    /// Adds the batch `other` to this summary, as if both had been scored as one batch (the
    /// learner scores several generation rounds of one step separately). Rewards are matched by
    /// name; a summary of the same set has the same rewards in the same order.
    pub fn merge(&mut self, other: &RewardMetrics) {
        self.samples += other.samples;
        self.total = self.total.merged(other.total);
        self.not_applicable += other.not_applicable;
        self.quarantined += other.quarantined;
        self.gated += other.gated;
        for theirs in &other.rewards {
            let Some(ours) = self.rewards.iter_mut().find(|r| r.name == theirs.name) else {
                self.rewards.push(theirs.clone());
                continue;
            };
            ours.score = ours.score.merged(theirs.score);
            ours.not_applicable += theirs.not_applicable;
            ours.quarantined += theirs.quarantined;
            ours.gate_failed += theirs.gate_failed;
            for (component, stat) in &theirs.components {
                let merged = ours
                    .components
                    .get(component)
                    .copied()
                    .unwrap_or_default()
                    .merged(*stat);
                ours.components.insert(component.clone(), merged);
            }
        }
    }

    /// Flat `key → value` metrics for logs: `reward/total` (mean), `reward/samples`,
    /// `reward/quarantined`, `reward/gated`, `reward/not_applicable`, and per reward
    /// `reward/<name>` (mean), `reward/<name>/quarantined`, `reward/<name>/not_applicable`,
    /// `reward/<name>/gate_failed` and `reward/<name>/<component>` (mean). Means over no value
    /// are left out rather than written as 0.
    pub fn to_map(&self) -> BTreeMap<String, f64> {
        let mut map = BTreeMap::new();
        let mut put = |key: String, value: Option<f64>| {
            if let Some(v) = value {
                map.insert(key, v);
            }
        };
        put("reward/total".into(), self.total.mean);
        put("reward/samples".into(), Some(self.samples as f64));
        put("reward/quarantined".into(), Some(self.quarantined as f64));
        put("reward/gated".into(), Some(self.gated as f64));
        put(
            "reward/not_applicable".into(),
            Some(self.not_applicable as f64),
        );
        for r in &self.rewards {
            let key = |suffix: &str| format!("reward/{}/{suffix}", r.name);
            put(format!("reward/{}", r.name), r.score.mean);
            put(key("quarantined"), Some(r.quarantined as f64));
            put(key("not_applicable"), Some(r.not_applicable as f64));
            put(key("gate_failed"), Some(r.gate_failed as f64));
            for (component, stat) in &r.components {
                put(key(component), stat.mean);
            }
        }
        map
    }
}

/// A scored batch: the totals the learner uses, the per-reward detail and the metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredBatch {
    /// Per sample: the total, `Ok(None)` when no reward applied, `Err` when quarantined.
    pub totals: Vec<SampleScore>,
    /// Per sample: the gate whose penalty is the total, if any.
    pub gated_by: Vec<Option<String>>,
    /// Per reward, in config order.
    pub rewards: Vec<RewardScores>,
    /// Summary of the batch.
    pub metrics: RewardMetrics,
}

impl ScoredBatch {
    /// The scores of the reward with this metric name.
    pub fn reward(&self, name: &str) -> Option<&RewardScores> {
        self.rewards.iter().find(|r| r.name == name)
    }
}

impl RewardSet {
    /// Builds a set of built-in rewards (validating the config first). Configs with
    /// `kind = "custom"` need [`RewardRegistry::build`].
    pub fn from_config(config: &RewardSetConfig) -> Result<Self> {
        RewardRegistry::new().build(config)
    }

    pub(crate) fn from_members(members: Vec<Member>) -> Self {
        Self { members }
    }

    /// The metric names of the rewards, in config order.
    pub fn names(&self) -> Vec<&str> {
        self.members.iter().map(|m| m.name.as_str()).collect()
    }

    /// Scores a batch; see the module doc for how totals are formed. Never fails: failures
    /// become quarantined samples. Needs a tokio runtime with time enabled (for timeouts).
    pub async fn score(&self, samples: &[Sample]) -> ScoredBatch {
        let n = samples.len();
        let rewards = if n == 0 {
            self.members
                .iter()
                .map(|m| RewardScores {
                    name: m.name.clone(),
                    weight: m.weight,
                    scores: Vec::new(),
                    components: BTreeMap::new(),
                })
                .collect()
        } else {
            join_all(self.members.iter().map(|m| run_member(m, samples))).await
        };
        self.combine(n, rewards)
    }

    /// [`score`](Self::score) on a small current-thread runtime, for synchronous callers.
    /// Fails if the runtime cannot start, or when called from inside an async runtime (use
    /// `score(..).await` there).
    pub fn score_blocking(&self, samples: &[Sample]) -> Result<ScoredBatch> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(RewardError::Runtime(
                "`score_blocking` was called inside an async runtime; use `score(..).await`".into(),
            ));
        }
        // Time for timeouts, I/O for the judge and remote rewards.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RewardError::Runtime(format!("cannot start a tokio runtime: {e}")))?;
        Ok(runtime.block_on(self.score(samples)))
    }

    /// Totals, gates and metrics from the per-reward scores.
    fn combine(&self, n: usize, rewards: Vec<RewardScores>) -> ScoredBatch {
        let mut totals = Vec::with_capacity(n);
        let mut gated_by = Vec::with_capacity(n);
        let mut gate_failed = vec![0usize; self.members.len()];
        for i in 0..n {
            let mut reasons = Vec::new();
            let mut sum = 0.0;
            let mut applied = false;
            let mut gate: Option<(f64, &str)> = None;
            for (k, (member, scores)) in self.members.iter().zip(&rewards).enumerate() {
                match &scores.scores[i] {
                    Err(q) => reasons.push(q.reason.as_str()),
                    Ok(None) => {}
                    Ok(Some(score)) => {
                        if let Some(g) = &member.gate
                            && *score < g.min_score
                        {
                            gate_failed[k] += 1;
                            if gate.is_none_or(|(penalty, _)| g.penalty < penalty) {
                                gate = Some((g.penalty, member.name.as_str()));
                            }
                        }
                        sum += member.weight * score;
                        applied = true;
                    }
                }
            }
            let (total, gated) = if !reasons.is_empty() {
                (Err(Quarantine::new(reasons.join("; "))), None)
            } else if let Some((penalty, name)) = gate {
                (Ok(Some(penalty)), Some(name.to_string()))
            } else if !applied {
                (Ok(None), None)
            } else if !sum.is_finite() {
                let reason = format!("the weighted total overflowed to {sum}");
                (Err(Quarantine::new(reason)), None)
            } else {
                (Ok(Some(sum)), None)
            };
            totals.push(total);
            gated_by.push(gated);
        }
        let metrics = metrics(&totals, &gated_by, &rewards, &gate_failed);
        for r in &metrics.rewards {
            if r.quarantined > 0 {
                let scores = rewards.iter().find(|s| s.name == r.name);
                let first = scores
                    .and_then(|s| s.scores.iter().find_map(|x| x.as_ref().err()))
                    .map_or("", |q| q.reason.as_str());
                tracing::warn!(
                    reward = %r.name,
                    quarantined = r.quarantined,
                    samples = n,
                    first_reason = %first,
                    "reward quarantined samples"
                );
            }
        }
        ScoredBatch {
            totals,
            gated_by,
            rewards,
            metrics,
        }
    }
}

/// Runs one reward under its timeout and turns every failure into quarantined samples.
async fn run_member(member: &Member, samples: &[Sample]) -> RewardScores {
    let n = samples.len();
    let name = &member.name;
    let quarantine_all = |what: String| RewardScores {
        name: name.clone(),
        weight: member.weight,
        scores: vec![Err(Quarantine::new(format!("reward `{name}` {what}"))); n],
        components: BTreeMap::new(),
    };
    let started = std::panic::catch_unwind(AssertUnwindSafe(|| member.reward.score(samples)));
    let future = match started {
        Ok(future) => future,
        Err(panic) => return quarantine_all(format!("panicked: {}", panic_message(&*panic))),
    };
    let output = match tokio::time::timeout(member.timeout, AssertUnwindSafe(future).catch_unwind())
        .await
    {
        Err(_) => {
            return quarantine_all(format!("timed out after {}s", member.timeout.as_secs_f64()));
        }
        Ok(Err(panic)) => return quarantine_all(format!("panicked: {}", panic_message(&*panic))),
        Ok(Ok(Err(error))) => return quarantine_all(format!("failed: {error}")),
        Ok(Ok(Ok(output))) => output,
    };
    check_output(member, n, output).unwrap_or_else(quarantine_all)
}

/// Checks shapes and finiteness; per-sample problems quarantine that sample, a wrong shape
/// (returned as `Err`) quarantines the batch.
fn check_output(
    member: &Member,
    n: usize,
    output: RewardOutput,
) -> std::result::Result<RewardScores, String> {
    let name = &member.name;
    if output.scores.len() != n {
        return Err(format!(
            "returned {} scores for {n} samples",
            output.scores.len()
        ));
    }
    if let Some((component, values)) = output.components.iter().find(|(_, v)| v.len() != n) {
        return Err(format!(
            "returned {} values of component `{component}` for {n} samples",
            values.len()
        ));
    }
    let mut scores: Vec<SampleScore> = output
        .scores
        .into_iter()
        .map(|score| match score {
            Err(q) => Err(Quarantine::new(format!("reward `{name}`: {}", q.reason))),
            Ok(Some(x)) if !x.is_finite() => {
                Err(Quarantine::new(format!("reward `{name}` returned {x}")))
            }
            ok => ok,
        })
        .collect();
    for (component, values) in &output.components {
        for (i, value) in values.iter().enumerate() {
            if let Some(x) = value
                && !x.is_finite()
                && scores[i].is_ok()
            {
                let reason = format!("reward `{name}` returned {x} for component `{component}`");
                scores[i] = Err(Quarantine::new(reason));
            }
        }
    }
    let components = output
        .components
        .into_iter()
        .map(|(component, values)| {
            let values = values
                .into_iter()
                .zip(&scores)
                .map(|(v, s)| if s.is_ok() { v } else { None })
                .collect();
            (component, values)
        })
        .collect();
    Ok(RewardScores {
        name: name.clone(),
        weight: member.weight,
        scores,
        components,
    })
}

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

fn metrics(
    totals: &[SampleScore],
    gated_by: &[Option<String>],
    rewards: &[RewardScores],
    gate_failed: &[usize],
) -> RewardMetrics {
    let count = |scores: &[SampleScore], f: fn(&SampleScore) -> bool| {
        scores.iter().filter(|s| f(s)).count()
    };
    let values = |scores: &[SampleScore]| -> Vec<f64> {
        scores.iter().filter_map(|s| *s.as_ref().ok()?).collect()
    };
    RewardMetrics {
        samples: totals.len(),
        total: Stat::of(values(totals)),
        not_applicable: count(totals, |s| matches!(s, Ok(None))),
        quarantined: count(totals, |s| s.is_err()),
        gated: gated_by.iter().filter(|g| g.is_some()).count(),
        rewards: rewards
            .iter()
            .zip(gate_failed)
            .map(|(r, &gate_failed)| RewardStats {
                name: r.name.clone(),
                score: Stat::of(values(&r.scores)),
                not_applicable: count(&r.scores, |s| matches!(s, Ok(None))),
                quarantined: count(&r.scores, |s| s.is_err()),
                gate_failed,
                components: r
                    .components
                    .iter()
                    .map(|(c, v)| (c.clone(), Stat::of(v.iter().flatten().copied())))
                    .collect(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::BoxError;
    use crate::reward::BoxFuture;

    /// Returns fixed scores and components, whatever the samples.
    struct Fixed {
        scores: Vec<SampleScore>,
        components: BTreeMap<String, Vec<Option<f64>>>,
    }

    impl Reward for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn score<'a>(&'a self, _: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
            let out = RewardOutput {
                scores: self.scores.clone(),
                components: self.components.clone(),
            };
            Box::pin(async move { Ok(out) })
        }
    }

    fn fixed(scores: Vec<SampleScore>) -> Arc<dyn Reward> {
        Arc::new(Fixed {
            scores,
            components: BTreeMap::new(),
        })
    }

    fn member(name: &str, weight: f64, reward: Arc<dyn Reward>) -> Member {
        Member {
            name: name.into(),
            weight,
            timeout: Duration::from_secs(5),
            gate: None,
            reward,
        }
    }

    fn samples(n: usize) -> Vec<Sample> {
        (0..n).map(|i| Sample::new("", i.to_string())).collect()
    }

    #[test]
    fn weighted_sum_skips_not_applicable_without_rescaling() {
        let set = RewardSet::from_members(vec![
            member("a", 2.0, fixed(vec![Ok(Some(1.0)), Ok(None), Ok(None)])),
            member(
                "b",
                0.5,
                fixed(vec![Ok(Some(-1.0)), Ok(Some(4.0)), Ok(None)]),
            ),
        ]);
        let batch = set.score_blocking(&samples(3)).unwrap();
        assert_eq!(batch.totals, vec![Ok(Some(1.5)), Ok(Some(2.0)), Ok(None)]);
        let m = &batch.metrics;
        assert_eq!(
            m.total,
            Stat {
                mean: Some(1.75),
                count: 2
            }
        );
        assert_eq!(m.not_applicable, 1);
        assert_eq!(
            m.rewards[0].score,
            Stat {
                mean: Some(1.0),
                count: 1
            }
        );
        assert_eq!(m.rewards[0].not_applicable, 2);
    }

    #[test]
    fn gates_replace_the_total_with_the_lowest_failed_penalty() {
        let gated = |name, scores, penalty| Member {
            gate: Some(GateConfig {
                penalty,
                min_score: 1.0,
            }),
            ..member(name, 0.0, fixed(scores))
        };
        let set = RewardSet::from_members(vec![
            gated(
                "fmt",
                vec![Ok(Some(1.0)), Ok(Some(0.0)), Ok(Some(0.0)), Ok(None)],
                -1.0,
            ),
            gated(
                "lang",
                vec![Ok(Some(1.0)), Ok(Some(1.0)), Ok(Some(0.5)), Ok(None)],
                -2.0,
            ),
            member("acc", 1.0, fixed(vec![Ok(Some(1.0)); 4])),
        ]);
        let batch = set.score_blocking(&samples(4)).unwrap();
        assert_eq!(
            batch.totals,
            vec![Ok(Some(1.0)), Ok(Some(-1.0)), Ok(Some(-2.0)), Ok(Some(1.0))]
        );
        assert_eq!(
            batch.gated_by,
            vec![None, Some("fmt".into()), Some("lang".into()), None]
        );
        assert_eq!(batch.metrics.gated, 2);
        assert_eq!(batch.metrics.rewards[0].gate_failed, 2);
        assert_eq!(batch.metrics.rewards[1].gate_failed, 1);
    }

    #[test]
    fn quarantine_wins_and_collects_every_reason() {
        let set = RewardSet::from_members(vec![
            member(
                "a",
                1.0,
                fixed(vec![Err(Quarantine::new("bad ref")), Ok(Some(1.0))]),
            ),
            member(
                "b",
                1.0,
                fixed(vec![Ok(Some(f64::NAN)), Ok(Some(f64::NEG_INFINITY))]),
            ),
        ]);
        let batch = set.score_blocking(&samples(2)).unwrap();
        assert_eq!(
            batch.totals[0].as_ref().unwrap_err().reason,
            "reward `a`: bad ref; reward `b` returned NaN"
        );
        assert_eq!(
            batch.totals[1].as_ref().unwrap_err().reason,
            "reward `b` returned -inf"
        );
        assert_eq!(batch.metrics.quarantined, 2);
        assert_eq!(batch.metrics.rewards[1].quarantined, 2);
        assert_eq!(batch.metrics.total, Stat::default());
    }

    #[test]
    fn wrong_shapes_and_bad_components_are_quarantined() {
        let short = member("short", 1.0, fixed(vec![Ok(Some(1.0))]));
        let batch = RewardSet::from_members(vec![short])
            .score_blocking(&samples(2))
            .unwrap();
        for total in &batch.totals {
            assert_eq!(
                total.as_ref().unwrap_err().reason,
                "reward `short` returned 1 scores for 2 samples"
            );
        }
        let nan_component = Arc::new(Fixed {
            scores: vec![Ok(Some(1.0)), Ok(Some(1.0))],
            components: BTreeMap::from([("c".to_string(), vec![Some(f64::NAN), Some(2.0)])]),
        });
        let batch = RewardSet::from_members(vec![member("x", 1.0, nan_component)])
            .score_blocking(&samples(2))
            .unwrap();
        assert_eq!(
            batch.totals[0].as_ref().unwrap_err().reason,
            "reward `x` returned NaN for component `c`"
        );
        assert_eq!(batch.totals[1], Ok(Some(1.0)));
        assert_eq!(batch.rewards[0].components["c"], vec![None, Some(2.0)]);
    }

    #[test]
    fn overflowing_totals_are_quarantined_not_infinite() {
        let set = RewardSet::from_members(vec![
            member("a", 1e308, fixed(vec![Ok(Some(10.0))])),
            member("b", 1e308, fixed(vec![Ok(Some(10.0))])),
        ]);
        let batch = set.score_blocking(&samples(1)).unwrap();
        assert!(
            batch.totals[0]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("overflowed")
        );
    }

    #[test]
    fn empty_batches_and_nested_runtimes() {
        let set = RewardSet::from_members(vec![member("a", 1.0, fixed(vec![]))]);
        let batch = set.score_blocking(&[]).unwrap();
        assert!(batch.totals.is_empty());
        assert_eq!(batch.metrics.samples, 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let inside = rt.block_on(async { set.score_blocking(&[]) });
        assert!(matches!(inside, Err(RewardError::Runtime(_))));
    }

    #[test]
    fn metrics_map_has_every_reward_and_component() {
        let with_component = Arc::new(Fixed {
            scores: vec![Ok(Some(1.0)), Ok(Some(0.0))],
            components: BTreeMap::from([("parsed".to_string(), vec![Some(1.0), None])]),
        });
        let set = RewardSet::from_members(vec![member("acc", 1.0, with_component)]);
        let map = set.score_blocking(&samples(2)).unwrap().metrics.to_map();
        assert_eq!(map["reward/total"], 0.5);
        assert_eq!(map["reward/acc"], 0.5);
        assert_eq!(map["reward/acc/parsed"], 1.0);
        assert_eq!(map["reward/acc/quarantined"], 0.0);
        assert_eq!(map["reward/samples"], 2.0);
        assert_eq!(map["reward/quarantined"], 0.0);
    }

    /// Scores the response read as a number (`x` = not applicable, `q` = an error), with a
    /// component that applies to even numbers only.
    struct Echo;

    impl Reward for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn score<'a>(
            &'a self,
            batch: &'a [Sample],
        ) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
            let scores = batch
                .iter()
                .map(|s| match s.response.as_str() {
                    "x" => Ok(None),
                    "q" => Err(Quarantine::new("not a number")),
                    r => Ok(Some(r.parse::<f64>().unwrap())),
                })
                .collect();
            let even = batch
                .iter()
                .map(|s| s.response.parse::<f64>().ok().filter(|v| v % 2.0 == 0.0))
                .collect();
            let out = RewardOutput {
                scores,
                components: BTreeMap::from([("even".to_string(), even)]),
            };
            Box::pin(async move { Ok(out) })
        }
    }

    #[test]
    fn merged_metrics_equal_those_of_one_batch() {
        let set = RewardSet::from_members(vec![member("echo", 1.0, Arc::new(Echo))]);
        let batch = |responses: &[&str]| -> Vec<Sample> {
            responses.iter().map(|r| Sample::new("", *r)).collect()
        };
        let first = ["1", "2", "x", "q"];
        let second = ["4", "7", "x"];
        let whole = set
            .score_blocking(&batch(&[&first[..], &second[..]].concat()))
            .unwrap()
            .metrics;
        let mut merged = set.score_blocking(&batch(&first)).unwrap().metrics;
        merged.merge(&set.score_blocking(&batch(&second)).unwrap().metrics);
        assert_eq!(merged.to_map(), whole.to_map());
        assert_eq!(merged.total.count, 4);
        assert_eq!(merged.total.mean, Some(3.5));
        assert_eq!(merged.rewards[0].components["even"].mean, Some(3.0));

        // Merging into an empty summary gives the batch itself.
        let mut empty = RewardMetrics::default();
        empty.merge(&whole);
        assert_eq!(empty, whole);
    }
}
