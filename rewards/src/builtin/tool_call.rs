//! `tool_call`: scores how a multi-turn rollout used its tools, from the actor's record of every
//! call (`sample.turns[*].tool_calls`, statuses included), plus whether the final answer is right.
//!
//! With `n` = all recorded calls, `ok` = calls with status `ok`, `parsed` = calls that are not
//! `malformed`, `m` = malformed calls, `T` = `target_calls`:
//!
//! ```text
//! valid_call_rate   = parsed / n                            (None when n = 0)
//! success_rate      = ok / n                                (None when n = 0)
//! call_count_score  = max(0, 1 − |n − T| / max(T, 1))
//! malformed_penalty = −min(m, max_penalized_malformed)
//! answer_accuracy   = exact_match(final response, reference) (None without a reference)
//! multi_turn        = answer correct AND (ok ≥ 1 when require_tool)   (None without a reference)
//! score             = Σ weight_c · component_c   over the components that are not None
//! ```
//!
//! The answer is extracted and normalised exactly as `exact_match` does (`extract`, `normalize`).
//! A sample with no turns is not applicable (`None`) unless `require_tool` is set; then it is
//! scored as a rollout that made no call.
//!
//! Against gaming: the rates are ratios, so spamming calls cannot raise them, while
//! `call_count_score` falls as the count moves away from the target; calls with junk
//! arguments fail in the tool (status `failed`) and lower `success_rate`; malformed calls cost a
//! fixed amount each (capped so that one runaway turn cannot dominate the total).

use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::{Result, non_negative};
use crate::sample::{Sample, ToolCallStatus};
use crate::text::{Extract, normalize};

/// The weight of each component in the score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolCallWeights {
    /// [0.1]
    pub valid_call_rate: f64,
    /// [0.1]
    pub success_rate: f64,
    /// [0.1]
    pub call_count_score: f64,
    /// Per malformed call (the component is negative) [0.1].
    pub malformed_penalty: f64,
    /// [1.0]
    pub answer_accuracy: f64,
    /// [0.0]
    pub multi_turn: f64,
}

impl Default for ToolCallWeights {
    fn default() -> Self {
        Self {
            valid_call_rate: 0.1,
            success_rate: 0.1,
            call_count_score: 0.1,
            malformed_penalty: 0.1,
            answer_accuracy: 1.0,
            multi_turn: 0.0,
        }
    }
}

/// Options of `kind = "tool_call"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolCallConfig {
    /// The number of calls a good rollout makes [1].
    pub target_calls: usize,
    /// Score samples without turns too, and make `multi_turn` need a successful call [false].
    pub require_tool: bool,
    /// At most this many malformed calls are penalised [5].
    pub max_penalized_malformed: usize,
    /// Compare normalised answers, as `exact_match` does [true].
    pub normalize: bool,
    /// Which part of the final response is the answer [`answer_tag_or_last_line`].
    pub extract: Extract,
    /// Component weights.
    pub weights: ToolCallWeights,
}

impl Default for ToolCallConfig {
    fn default() -> Self {
        Self {
            target_calls: 1,
            require_tool: false,
            max_penalized_malformed: 5,
            normalize: true,
            extract: Extract::AnswerTagOrLastLine,
            weights: ToolCallWeights::default(),
        }
    }
}

impl ToolCallConfig {
    /// Rejects negative or non-finite weights, naming the field.
    pub fn validate(&self) -> Result<()> {
        let w = &self.weights;
        for (field, value) in [
            ("weights.valid_call_rate", w.valid_call_rate),
            ("weights.success_rate", w.success_rate),
            ("weights.call_count_score", w.call_count_score),
            ("weights.malformed_penalty", w.malformed_penalty),
            ("weights.answer_accuracy", w.answer_accuracy),
            ("weights.multi_turn", w.multi_turn),
        ] {
            non_negative(field, value)?;
        }
        Ok(())
    }
}

/// The `tool_call` reward.
#[derive(Debug, Clone)]
pub struct ToolCallReward {
    config: ToolCallConfig,
}

impl ToolCallReward {
    /// Component names, in the order of the module doc.
    pub const COMPONENTS: [&'static str; 6] = [
        "valid_call_rate",
        "success_rate",
        "call_count_score",
        "malformed_penalty",
        "answer_accuracy",
        "multi_turn",
    ];

    /// The reward with these options.
    pub fn new(config: ToolCallConfig) -> Self {
        Self { config }
    }

    fn answer_correct(&self, sample: &Sample) -> Option<bool> {
        let reference = sample.reference.as_deref()?;
        let Some(answer) = self.config.extract.apply(&sample.response) else {
            return Some(false);
        };
        let equal = if self.config.normalize {
            normalize(answer) == normalize(reference)
        } else {
            answer == reference.trim()
        };
        Some(equal && !answer.is_empty())
    }

    fn score_one(&self, sample: &Sample) -> Scored<6> {
        let c = &self.config;
        if sample.turns.is_empty() && !c.require_tool {
            return Scored::not_applicable();
        }
        let calls = sample.turns.iter().flat_map(|t| &t.tool_calls);
        let (mut n, mut ok, mut malformed) = (0usize, 0usize, 0usize);
        for call in calls {
            n += 1;
            match call.status {
                ToolCallStatus::Ok => ok += 1,
                ToolCallStatus::Malformed => malformed += 1,
                _ => {}
            }
        }
        let rate = |k: usize| (n > 0).then(|| k as f64 / n as f64);
        let target = c.target_calls as f64;
        let count_score = (1.0 - (n as f64 - target).abs() / target.max(1.0)).max(0.0);
        let penalty = -(malformed.min(c.max_penalized_malformed) as f64);
        let correct = self.answer_correct(sample);
        let multi_turn = correct.map(|right| right && (!c.require_tool || ok >= 1));
        let components = [
            rate(n - malformed),
            rate(ok),
            Some(count_score),
            Some(penalty),
            correct.map(indicator),
            multi_turn.map(indicator),
        ];
        let w = &c.weights;
        let weights = [
            w.valid_call_rate,
            w.success_rate,
            w.call_count_score,
            w.malformed_penalty,
            w.answer_accuracy,
            w.multi_turn,
        ];
        let score: f64 = components
            .iter()
            .zip(weights)
            .filter_map(|(value, weight)| value.map(|v| v * weight))
            .sum();
        Scored::new(Ok(Some(score)), components)
    }
}

rule_reward!(ToolCallReward, "tool_call");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_now;
    use crate::sample::{ToolCallRecord, Turn};

    fn call(status: ToolCallStatus) -> ToolCallRecord {
        ToolCallRecord {
            name: Some("calculator".into()),
            arguments: Some(serde_json::json!({"expression": "2+2"})),
            status,
            output: "4".into(),
        }
    }

    fn rollout(statuses: &[ToolCallStatus], answer: &str) -> Sample {
        let turns = vec![
            Turn {
                assistant: "<tool_call>...</tool_call>".into(),
                tool_calls: statuses.iter().map(|&s| call(s)).collect(),
            },
            Turn {
                assistant: answer.into(),
                tool_calls: Vec::new(),
            },
        ];
        Sample::new("what is 2+2?", answer)
            .with_reference("4")
            .with_turns(turns)
    }

    fn components(config: ToolCallConfig, sample: &Sample) -> (f64, Vec<Option<f64>>) {
        let out = score_now(&ToolCallReward::new(config), std::slice::from_ref(sample));
        let values = ToolCallReward::COMPONENTS
            .iter()
            .map(|name| out.components[*name][0])
            .collect();
        (out.scores[0].clone().unwrap().unwrap(), values)
    }

    #[test]
    fn one_successful_call_and_a_right_answer() {
        let (score, c) = components(
            ToolCallConfig::default(),
            &rollout(&[ToolCallStatus::Ok], "4"),
        );
        assert_eq!(
            c,
            vec![
                Some(1.0),
                Some(1.0),
                Some(1.0),
                Some(-0.0),
                Some(1.0),
                Some(1.0)
            ]
        );
        assert!((score - 1.3).abs() < 1e-12, "{score}");
    }

    #[test]
    fn statuses_set_the_rates() {
        use ToolCallStatus::*;
        let s = rollout(&[Ok, Malformed, UnknownTool, Failed], "5");
        let (score, c) = components(ToolCallConfig::default(), &s);
        // 3 of 4 parsed, 1 of 4 succeeded, 4 calls vs target 1 → count score 0, 1 malformed.
        assert_eq!(
            c,
            vec![
                Some(0.75),
                Some(0.25),
                Some(0.0),
                Some(-1.0),
                Some(0.0),
                Some(0.0)
            ]
        );
        assert!((score - (0.075 + 0.025 - 0.1)).abs() < 1e-12, "{score}");
    }

    #[test]
    fn spamming_calls_never_pays() {
        let one = components(
            ToolCallConfig::default(),
            &rollout(&[ToolCallStatus::Ok], "4"),
        )
        .0;
        for k in [2usize, 3, 10, 100] {
            let spam = rollout(&vec![ToolCallStatus::Ok; k], "4");
            let (score, c) = components(ToolCallConfig::default(), &spam);
            assert!(score < one, "{k} calls: {score} vs {one}");
            assert_eq!(c[0], Some(1.0), "rates stay at most 1");
        }
        // Target 2: 2 calls is best, 1 and 3 are equally worse.
        let config = ToolCallConfig {
            target_calls: 2,
            ..ToolCallConfig::default()
        };
        let count = |k: usize| components(config, &rollout(&vec![ToolCallStatus::Ok; k], "4")).1[2];
        assert_eq!(count(2), Some(1.0));
        assert_eq!(count(1), Some(0.5));
        assert_eq!(count(3), Some(0.5));
        assert_eq!(count(0), Some(0.0));
    }

    #[test]
    fn junk_arguments_and_malformed_spam_cost() {
        let good = components(
            ToolCallConfig::default(),
            &rollout(&[ToolCallStatus::Ok], "4"),
        )
        .0;
        // The tool rejects junk arguments: the call is `failed`.
        let junk = components(
            ToolCallConfig::default(),
            &rollout(&[ToolCallStatus::Failed], "4"),
        );
        assert_eq!(junk.1[1], Some(0.0));
        assert!(junk.0 < good);
        // Malformed spam is penalised per call up to the cap.
        let spam = |k: usize| {
            components(
                ToolCallConfig::default(),
                &rollout(&vec![ToolCallStatus::Malformed; k], "4"),
            )
            .1[3]
        };
        assert_eq!(spam(2), Some(-2.0));
        assert_eq!(spam(50), Some(-5.0));
    }

    #[test]
    fn require_tool_makes_multi_turn_need_a_successful_call() {
        let config = ToolCallConfig {
            require_tool: true,
            weights: ToolCallWeights {
                multi_turn: 1.0,
                answer_accuracy: 0.0,
                ..ToolCallWeights::default()
            },
            ..ToolCallConfig::default()
        };
        let with_call = components(config, &rollout(&[ToolCallStatus::Ok], "4")).1;
        assert_eq!(with_call[5], Some(1.0));
        let failed_call = components(config, &rollout(&[ToolCallStatus::Failed], "4")).1;
        assert_eq!(failed_call[5], Some(0.0));
        // Answering right without any tool: scored (require_tool), multi_turn 0.
        let no_turns = Sample::new("q", "4").with_reference("4");
        let (score, c) = components(config, &no_turns);
        assert_eq!(c[..3], [None, None, Some(0.0)]);
        assert_eq!(c[4..], [Some(1.0), Some(0.0)]);
        assert_eq!(score, 0.0);
    }

    #[test]
    fn not_applicable_without_turns_unless_required() {
        let out = score_now(
            &ToolCallReward::new(ToolCallConfig::default()),
            &[Sample::new("q", "4").with_reference("4")],
        );
        assert_eq!(out.scores, vec![Ok(None)]);
        // Without a reference the answer components are None, the rest still scores.
        let mut s = rollout(&[ToolCallStatus::Ok], "4");
        s.reference = None;
        let (score, c) = components(ToolCallConfig::default(), &s);
        assert_eq!(c[4..], [None, None]);
        assert!((score - 0.3).abs() < 1e-12);
    }

    #[test]
    fn the_answer_is_normalised_like_exact_match() {
        let c = components(
            ToolCallConfig::default(),
            &rollout(&[ToolCallStatus::Ok], "so\n<answer> 4. </answer>"),
        )
        .1;
        assert_eq!(c[4], Some(1.0));
        let c = components(
            ToolCallConfig::default(),
            &rollout(&[ToolCallStatus::Ok], "4\n5"),
        )
        .1;
        assert_eq!(c[4], Some(0.0));
    }

    #[test]
    fn config_rejects_unknown_fields_and_negative_weights() {
        assert!(serde_json::from_str::<ToolCallConfig>(r#"{"target_call": 1}"#).is_err());
        assert!(
            serde_json::from_str::<ToolCallConfig>(r#"{"weights": {"succes_rate": 1}}"#).is_err()
        );
        let config: ToolCallConfig =
            serde_json::from_str(r#"{"weights": {"success_rate": -1}}"#).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("weights.success_rate"), "{err}");
    }
}
