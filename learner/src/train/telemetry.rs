//! Every metrics record the trainer writes to `metrics.jsonl` is also published through the
//! [`metrics`] facade, so a Prometheus exporter installed by the binary (`temper train
//! --metrics-addr`) serves the live run: each numeric field becomes a gauge
//! `temper_<field>{stage="sft"|"rl"|"eval"}` (non-alphanumerics → `_`, e.g.
//! `reward/exact_match` → `temper_reward_exact_match`), and `temper_records_total{stage}` counts
//! the records. Without an installed recorder these calls do nothing.

use serde_json::{Map, Value};

/// Publishes `record`'s numeric fields as gauges labelled with its stage.
pub fn publish(record: &Map<String, Value>) {
    let stage = record
        .get("stage")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    metrics::counter!("temper_records_total", "stage" => stage.clone()).increment(1);
    for (key, value) in record {
        let Some(number) = value.as_f64() else {
            continue;
        };
        metrics::gauge!(metric_name(key), "stage" => stage.clone()).set(number);
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
    use serde_json::json;

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
        let record = json!({"stage": "rl", "step": 3, "reward_mean": 0.25, "loss_kind": "gspo"});
        metrics::with_local_recorder(&recorder, || publish(record.as_object().unwrap()));
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
                ("temper_records_total".into(), "rl".into(), 1.0),
                ("temper_reward_mean".into(), "rl".into(), 0.25),
                ("temper_step".into(), "rl".into(), 3.0),
            ]
        );
    }
}
