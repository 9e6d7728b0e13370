//! End to end through the public API: a TOML `[[rewards]]` list is parsed, validated and built
//! (with custom rewards from a registry), a crafted batch is scored, and the totals, gates,
//! not-applicable handling, quarantines and metrics are checked by hand.

use std::sync::Arc;
use std::time::{Duration, Instant};

use temper_rewards::{
    BoxError, BoxFuture, Reward, RewardError, RewardOutput, RewardRegistry, RewardSet,
    RewardSetConfig, Sample,
};

/// Scores `metadata.bonus` (a number); not applicable without it.
struct Bonus;

impl Reward for Bonus {
    fn name(&self) -> &str {
        "bonus"
    }
    fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        Box::pin(async move {
            let scores = samples.iter().map(|s| {
                s.metadata
                    .as_ref()
                    .and_then(|m| m.get("bonus"))
                    .and_then(|b| b.as_f64())
            });
            Ok(RewardOutput::from_options(scores))
        })
    }
}

/// NaN for responses containing "nan", +inf for "inf", else 1.0.
struct NonFinite;

impl Reward for NonFinite {
    fn name(&self) -> &str {
        "non_finite"
    }
    fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        Box::pin(async move {
            Ok(RewardOutput::from_options(samples.iter().map(|s| {
                Some(if s.response.contains("nan") {
                    f64::NAN
                } else if s.response.contains("inf") {
                    f64::INFINITY
                } else {
                    1.0
                })
            })))
        })
    }
}

/// Always fails, like a sandbox that cannot be reached.
struct Broken;

impl Reward for Broken {
    fn name(&self) -> &str {
        "broken"
    }
    fn score<'a>(&'a self, _: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        Box::pin(async move { Err("sandbox unreachable".into()) })
    }
}

/// Sleeps far past any test timeout before answering.
struct Slow;

impl Reward for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(RewardOutput::from_options(
                samples.iter().map(|_| Some(1.0)),
            ))
        })
    }
}

/// Panics while scoring.
struct Panics;

impl Reward for Panics {
    fn name(&self) -> &str {
        "panics"
    }
    fn score<'a>(&'a self, _: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        Box::pin(async move { panic!("index out of bounds") })
    }
}

fn registry() -> RewardRegistry {
    let mut registry = RewardRegistry::new();
    registry.register("bonus", Arc::new(Bonus)).unwrap();
    registry
        .register("non_finite", Arc::new(NonFinite))
        .unwrap();
    registry.register("broken", Arc::new(Broken)).unwrap();
    registry.register("slow", Arc::new(Slow)).unwrap();
    registry.register("panics", Arc::new(Panics)).unwrap();
    registry
}

fn build(toml_text: &str) -> RewardSet {
    let config: RewardSetConfig = toml::from_str(toml_text).expect("config parses");
    registry().build(&config).expect("config builds")
}

fn reason(score: &temper_rewards::SampleScore) -> &str {
    &score.as_ref().expect_err("quarantined").reason
}

const MAIN: &str = r#"
[[rewards]]
kind = "format"
weight = 0.5
gate = { penalty = -1.0 }

[[rewards]]
kind = "exact_match"
weight = 1.0

[[rewards]]
kind = "length"
max_len = 100
overlong_buffer = 20

[[rewards]]
kind = "custom"
name = "bonus"
weight = 2.0

[[rewards]]
kind = "repetition"
name = "rep"
weight = 0.0
ngram = 2
"#;

#[test]
fn weighted_sum_gates_not_applicable_and_quarantine() {
    let set = build(MAIN);
    assert_eq!(
        set.names(),
        ["format", "exact_match", "length", "bonus", "rep"]
    );
    let good = "<think>2+1</think><answer>3</answer>";
    let samples = [
        // format 0.5·1 + exact 1·1 + length 0 + bonus n/a = 1.5
        Sample::new("q", good)
            .with_reference("3")
            .with_tokens(50, 100),
        // format 0.5 + exact 0 + length 1·(80−90)/20 = 0.0
        Sample::new("q", good)
            .with_reference("4")
            .with_tokens(90, 100),
        // no tags: the format gate fails, the total is the penalty whatever exact_match says
        Sample::new("q", "3")
            .with_reference("3")
            .with_tokens(1, 100),
        // no reference: exact_match does not apply; format 0.5 + bonus 2·0.25 = 1.0
        Sample::new("q", "<think>x</think><answer>7</answer>")
            .with_tokens(10, 100)
            .with_metadata(serde_json::json!({"bonus": 0.25})),
        // no token count: length quarantines the sample
        Sample::new("q", good).with_reference("3"),
    ];
    let batch = set.score_blocking(&samples).unwrap();
    assert_eq!(batch.totals[0], Ok(Some(1.5)));
    assert_eq!(batch.totals[1], Ok(Some(0.0)));
    assert_eq!(batch.totals[2], Ok(Some(-1.0)));
    assert_eq!(batch.gated_by[2].as_deref(), Some("format"));
    assert_eq!(batch.totals[3], Ok(Some(1.0)));
    assert_eq!(
        reason(&batch.totals[4]),
        "reward `length`: sample has no `response_tokens` count"
    );

    let exact = batch.reward("exact_match").unwrap();
    assert_eq!(exact.scores[3], Ok(None));
    let m = &batch.metrics;
    assert_eq!(
        (m.samples, m.quarantined, m.gated, m.not_applicable),
        (5, 1, 1, 0)
    );
    assert_eq!(m.total.count, 4);
    assert!((m.total.mean.unwrap() - (1.5 + 0.0 - 1.0 + 1.0) / 4.0).abs() < 1e-12);
    // exact_match: 1, 0, 1, n/a, 1 → mean over the 4 that applied.
    assert_eq!(m.rewards[1].score.count, 4);
    assert_eq!(m.rewards[1].score.mean, Some(0.75));
    assert_eq!(m.rewards[1].not_applicable, 1);
    assert_eq!(m.rewards[0].gate_failed, 1);
    assert_eq!(m.rewards[2].quarantined, 1);

    let map = m.to_map();
    assert_eq!(map["reward/exact_match"], 0.75);
    assert_eq!(map["reward/format/think"], 0.8);
    assert_eq!(map["reward/length/overlong"], 0.25);
    assert_eq!(map["reward/bonus"], 0.25);
    assert_eq!(map["reward/bonus/not_applicable"], 4.0);
    assert_eq!(map["reward/rep"], 0.0);
    assert_eq!(map["reward/quarantined"], 1.0);
}

#[test]
fn a_sample_no_reward_applies_to_has_no_total() {
    let set = build(
        r#"
        [[rewards]]
        kind = "exact_match"

        [[rewards]]
        kind = "custom"
        name = "bonus"
        "#,
    );
    let batch = set.score_blocking(&[Sample::new("q", "3")]).unwrap();
    assert_eq!(batch.totals, [Ok(None)]);
    assert_eq!(batch.metrics.not_applicable, 1);
    assert_eq!(batch.metrics.total.mean, None);
    assert!(!batch.metrics.to_map().contains_key("reward/total"));
}

#[test]
fn nan_and_inf_quarantine_only_their_samples() {
    let set = build(
        r#"
        [[rewards]]
        kind = "custom"
        name = "non_finite"

        [[rewards]]
        kind = "exact_match"
        "#,
    );
    let samples = [
        Sample::new("q", "fine").with_reference("fine"),
        Sample::new("q", "nan").with_reference("nan"),
        Sample::new("q", "inf").with_reference("x"),
    ];
    let batch = set.score_blocking(&samples).unwrap();
    assert_eq!(batch.totals[0], Ok(Some(2.0)));
    assert_eq!(reason(&batch.totals[1]), "reward `non_finite` returned NaN");
    assert_eq!(reason(&batch.totals[2]), "reward `non_finite` returned inf");
    assert_eq!(batch.metrics.quarantined, 2);
    // The other reward's own scores are still reported.
    assert_eq!(
        batch.reward("exact_match").unwrap().scores[1],
        Ok(Some(1.0))
    );
}

#[test]
fn errors_and_panics_quarantine_the_whole_batch_with_the_reason() {
    let set = build(
        r#"
        [[rewards]]
        kind = "custom"
        name = "broken"

        [[rewards]]
        kind = "custom"
        name = "panics"

        [[rewards]]
        kind = "exact_match"
        "#,
    );
    let samples = [
        Sample::new("q", "3").with_reference("3"),
        Sample::new("q", "4"),
    ];
    let batch = set.score_blocking(&samples).unwrap();
    for total in &batch.totals {
        assert_eq!(
            reason(total),
            "reward `broken` failed: sandbox unreachable; \
             reward `panics` panicked: index out of bounds"
        );
    }
    assert_eq!(batch.metrics.quarantined, 2);
    assert_eq!(batch.metrics.rewards[0].quarantined, 2);
    assert_eq!(batch.metrics.rewards[2].quarantined, 0);
}

#[test]
fn a_reward_past_its_timeout_is_quarantined_and_does_not_hold_the_batch() {
    let set = build(
        r#"
        [[rewards]]
        kind = "custom"
        name = "slow"
        timeout_s = 0.05

        [[rewards]]
        kind = "exact_match"
        "#,
    );
    let started = Instant::now();
    let batch = set
        .score_blocking(&[Sample::new("q", "3").with_reference("3")])
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(
        reason(&batch.totals[0]),
        "reward `slow` timed out after 0.05s"
    );
    assert_eq!(
        batch.reward("exact_match").unwrap().scores[0],
        Ok(Some(1.0))
    );
}

#[test]
fn scores_from_inside_an_async_runtime() {
    let set = build(MAIN);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let sample = Sample::new("q", "<think>x</think><answer>3</answer>")
        .with_reference("3")
        .with_tokens(5, 100);
    let batch = runtime.block_on(set.score(std::slice::from_ref(&sample)));
    assert_eq!(batch.totals, [Ok(Some(1.5))]);
    let nested = runtime.block_on(async { set.score_blocking(&[sample]) });
    assert!(matches!(nested, Err(RewardError::Runtime(_))));
}

#[test]
fn every_builtin_kind_parses_from_toml_with_its_options() {
    let set = build(
        r#"
        [[rewards]]
        kind = "exact_match"
        normalize = false
        extract = "answer_tag"

        [[rewards]]
        kind = "numeric"
        abs_tol = 0.0
        rel_tol = 1e-4
        percent = "either"
        require_boxed = true

        [[rewards]]
        kind = "choice"
        letters = "ABCD"

        [[rewards]]
        kind = "regex"
        pattern = '^\d+$'
        full_match = true
        extract = "answer_tag_or_full"
        match_score = 1.0
        miss_score = -0.5

        [[rewards]]
        kind = "format"
        think_tag = "reasoning"
        answer_tag = "final"
        require_think = true
        require_answer = true
        think_opened_in_prompt = false

        [[rewards]]
        kind = "length"
        overlong_buffer = 4
        penalty_factor = 0.5

        [[rewards]]
        kind = "repetition"
        ngram = 4
        penalty = 0.5
        unit = "chars"
        "#,
    );
    assert_eq!(set.names().len(), 7);
}

/// Parses and validates; the error text.
fn invalid(toml_text: &str) -> String {
    match toml::from_str::<RewardSetConfig>(toml_text) {
        Err(parse) => parse.to_string(),
        Ok(config) => registry().build(&config).unwrap_err().to_string(),
    }
}

#[test]
fn bad_configs_fail_up_front_naming_the_field() {
    let base = "[[rewards]]\nkind = \"exact_match\"\n\n[[rewards]]\nkind = \"format\"\n";
    let with = |extra: &str| invalid(&format!("{base}{extra}\n"));
    assert!(with("weight = nan").starts_with("invalid `rewards[1].weight` = NaN"));
    assert!(with("weight = -inf").starts_with("invalid `rewards[1].weight` = -inf"));
    assert!(with("timeout_s = 0").starts_with("invalid `rewards[1].timeout_s` = 0"));
    assert!(with("gate = { penalty = inf }").starts_with("invalid `rewards[1].gate.penalty`"));
    assert!(with("think_tag = \"\"").starts_with("invalid `rewards[1].think_tag`"));
    assert!(with("name = \"exact_match\"").starts_with("invalid `rewards[1].name`"));

    let kind = |k: &str| {
        invalid(&format!(
            "{base}\n[[rewards]]\nkind = \"{k}\"\nmodel = \"x\"\n"
        ))
    };
    // Every kind checks its own options.
    for k in ["code_switching", "judge", "tool_call", "remote"] {
        let err = kind(k);
        assert!(err.contains("unknown field `model`"), "{k}: {err}");
    }
    let err = invalid("[[rewards]]\nkind = \"numeric\"\nrel_tol = nan\n");
    assert!(
        err.starts_with("invalid `rewards[0].rel_tol` = NaN"),
        "{err}"
    );
    let err = invalid("[[rewards]]\nkind = \"custom\"\nname = \"nobody\"\n");
    assert!(
        err.starts_with("`rewards[0].name`: no custom reward named `nobody`"),
        "{err}"
    );
    let err = with("normalise = true");
    assert!(err.contains("unknown field `normalise`"), "{err}");
    let err = invalid("[[rewards]]\nkind = \"exact\"\n");
    assert!(err.contains("unknown variant `exact`"), "{err}");
    let err = invalid("rewards = []\n");
    assert!(err.starts_with("invalid `rewards`"), "{err}");
}
