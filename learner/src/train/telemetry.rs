//! Every metrics record the trainer writes to `metrics.jsonl` is also published through the
//! [`metrics`] facade, so a Prometheus exporter installed by the binary (`temper train
//! --metrics-addr`) serves the live run: each numeric field becomes a gauge
//! `temper_<field>{stage="sft"|"rl"|"eval"}` (non-alphanumerics → `_`, e.g.
//! `reward/exact_match` → `temper_reward_exact_match`), and `temper_records_total{stage}` counts
//! the records. Without an installed recorder these calls do nothing.

use std::sync::Once;

use metrics::Unit;

/// The gauges described once per process, with their units (`None`: a fraction in 0–1 or a
/// plain number). Every other field is published undescribed.
const DESCRIBED: [(&str, Option<Unit>, &str); 10] = [
    ("seconds", Some(Unit::Seconds), "wall time of the step"),
    (
        "tokens_per_second",
        Some(Unit::CountPerSecond),
        "sequence tokens through the learner per second",
    ),
    (
        "generated_tokens_per_second",
        Some(Unit::CountPerSecond),
        "tokens generated per second of generation",
    ),
    (
        "time_share_generation",
        None,
        "share of the step spent generating, 0-1",
    ),
    (
        "time_share_reward",
        None,
        "share of the step spent scoring, 0-1",
    ),
    (
        "time_share_update",
        None,
        "share of the step spent in updates, 0-1",
    ),
    (
        "accuracy",
        None,
        "held-out accuracy (mean of the eval.metric reward), 0-1",
    ),
    (
        "train_accuracy",
        None,
        "mean of the eval.metric reward over the RL samples, 0-1",
    ),
    (
        "response_tokens",
        Some(Unit::Count),
        "response tokens trained on in the SFT step",
    ),
    (
        "entropy",
        None,
        "mean policy entropy per trained token, nats",
    ),
];

/// Describes the gauges of [`DESCRIBED`] and the records counter to the installed recorder,
/// once per process ([`publish`] calls it).
pub fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_counter!(
            "temper_records_total",
            Unit::Count,
            "records written, by stage"
        );
        for (field, unit, help) in DESCRIBED {
            match unit {
                Some(unit) => metrics::describe_gauge!(metric_name(field), unit, help),
                None => metrics::describe_gauge!(metric_name(field), help),
            }
        }
    });
}

/// Publishes a record's numeric fields (its serde form,
/// [`StepRecord::to_map`](super::records::StepRecord::to_map)) as gauges labelled with its stage.
pub fn publish(stage: &'static str, fields: &serde_json::Map<String, serde_json::Value>) {
    describe();
    metrics::counter!("temper_records_total", "stage" => stage).increment(1);
    for (key, value) in fields {
        let Some(number) = value.as_f64() else {
            continue;
        };
        metrics::gauge!(metric_name(key), "stage" => stage).set(number);
    }
}

/// `temper_` + the field with every character outside `[a-zA-Z0-9_]` replaced by `_`.
pub fn metric_name(field: &str) -> String {
    let cleaned: String = field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("temper_{cleaned}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use crate::train::records::{EvalPoint, EvalRecord, Position, StepRecord};

    #[test]
    fn names_are_prometheus_safe() {
        assert_eq!(
            metric_name("reward/exact_match/answered"),
            "temper_reward_exact_match_answered"
        );
        assert_eq!(metric_name("grad_norm"), "temper_grad_norm");
        assert_eq!(
            metric_name("dynamic-sampling.rounds"),
            "temper_dynamic_sampling_rounds"
        );
    }

    #[test]
    fn numeric_fields_become_gauges_labelled_by_stage() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let record = StepRecord::Eval(EvalRecord {
            at: Position {
                step: 3,
                global_step: 5,
                policy_version: 5,
                data_skipped: None,
            },
            point: EvalPoint::Rl,
            accuracy: 0.25,
            metric: "exact_match".into(),
            examples: 4,
        });
        metrics::with_local_recorder(&recorder, || publish(record.stage(), &record.to_map()));
        let mut seen: Vec<(String, String, f64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| {
                let key = key.key().clone();
                let stage = key
                    .labels()
                    .find(|l| l.key() == "stage")
                    .map(|l| l.value().to_string())
                    .unwrap();
                let value = match value {
                    DebugValue::Gauge(v) => v.into_inner(),
                    DebugValue::Counter(c) => c as f64,
                    DebugValue::Histogram(_) => unreachable!("no histograms are published"),
                };
                (key.name().to_string(), stage, value)
            })
            .collect();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                ("temper_accuracy".into(), "eval".into(), 0.25),
                ("temper_examples".into(), "eval".into(), 4.0),
                ("temper_global_step".into(), "eval".into(), 5.0),
                ("temper_policy_version".into(), "eval".into(), 5.0),
                ("temper_records_total".into(), "eval".into(), 1.0),
                ("temper_step".into(), "eval".into(), 3.0),
            ]
        );
    }
}
