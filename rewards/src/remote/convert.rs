//! Conversions between [`Sample`]s and results and their `temper.reward.v1` messages.
//!
//! JSON values (metadata, tool-call arguments) travel as JSON text; token counts as `uint64`;
//! a result's `oneof` maps `score` → `Ok(Some)`, `not_applicable` → `Ok(None)`, `error` (or no
//! outcome at all) → quarantine.

use std::collections::HashMap;

use temper_proto::reward::v1 as pb;

use crate::reward::{Quarantine, SampleScore};
use crate::sample::{Sample, ToolCallStatus};

/// The message for one sample.
pub(crate) fn sample_to_proto(sample: &Sample) -> pb::Sample {
    pb::Sample {
        prompt: sample.prompt.clone(),
        messages: sample
            .messages
            .iter()
            .map(|m| pb::Message {
                role: m.role.clone(),
                content: m.text(),
            })
            .collect(),
        response: sample.response.clone(),
        reference: sample.reference.clone(),
        metadata_json: sample.metadata.as_ref().map(|m| m.to_string()),
        response_tokens: sample.response_tokens.map(|n| n as u64),
        max_response_tokens: sample.max_response_tokens.map(|n| n as u64),
        turns: sample
            .turns
            .iter()
            .map(|turn| pb::Turn {
                assistant: turn.assistant.clone(),
                tool_calls: turn
                    .tool_calls
                    .iter()
                    .map(|call| pb::ToolCallRecord {
                        name: call.name.clone(),
                        arguments_json: call.arguments.as_ref().map(|a| a.to_string()),
                        status: status_to_proto(call.status) as i32,
                        output: call.output.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn status_to_proto(status: ToolCallStatus) -> pb::ToolCallStatus {
    match status {
        ToolCallStatus::Ok => pb::ToolCallStatus::Ok,
        ToolCallStatus::Malformed => pb::ToolCallStatus::Malformed,
        ToolCallStatus::UnknownTool => pb::ToolCallStatus::UnknownTool,
        ToolCallStatus::Failed => pb::ToolCallStatus::Failed,
        ToolCallStatus::Timeout => pb::ToolCallStatus::Timeout,
    }
}

/// One result's score and components; `source` names the service in quarantine reasons.
pub(crate) fn result_from_proto(
    result: pb::SampleResult,
    source: &str,
) -> (SampleScore, HashMap<String, f64>) {
    use pb::sample_result::Outcome;
    let score = match result.outcome {
        Some(Outcome::Score(score)) => Ok(Some(score)),
        Some(Outcome::NotApplicable(_)) => Ok(None),
        Some(Outcome::Error(reason)) => Err(Quarantine::new(format!(
            "{source} could not score the sample: {reason}"
        ))),
        None => Err(Quarantine::new(format!(
            "{source} returned a result with no outcome (neither score, not_applicable nor error)"
        ))),
    };
    (score, result.components)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::{ToolCallRecord, Turn};
    use temper_model::chat::Message;

    #[test]
    fn samples_keep_every_field() {
        let sample = Sample::new("p", "r")
            .with_reference("ref")
            .with_tokens(3, 8)
            .with_metadata(serde_json::json!({"lang": "en"}))
            .with_messages(vec![Message::user("hi")])
            .with_turns(vec![Turn {
                assistant: "call".into(),
                tool_calls: vec![ToolCallRecord {
                    name: Some("zoom".into()),
                    arguments: Some(serde_json::json!({"x": 1})),
                    status: ToolCallStatus::UnknownTool,
                    output: "no such tool".into(),
                }],
            }]);
        let pb = sample_to_proto(&sample);
        assert_eq!((pb.prompt.as_str(), pb.response.as_str()), ("p", "r"));
        assert_eq!(pb.reference.as_deref(), Some("ref"));
        assert_eq!(
            (pb.response_tokens, pb.max_response_tokens),
            (Some(3), Some(8))
        );
        let metadata: serde_json::Value =
            serde_json::from_str(pb.metadata_json.as_deref().unwrap()).unwrap();
        assert_eq!(metadata["lang"], "en");
        assert_eq!(pb.messages[0].role, "user");
        let call = &pb.turns[0].tool_calls[0];
        assert_eq!(call.status(), pb::ToolCallStatus::UnknownTool);
        assert_eq!(call.arguments_json.as_deref(), Some(r#"{"x":1}"#));
        assert_eq!(call.name.as_deref(), Some("zoom"));

        let empty = sample_to_proto(&Sample::new("", ""));
        assert!(empty.reference.is_none() && empty.metadata_json.is_none());
        assert!(empty.response_tokens.is_none());
    }

    #[test]
    fn outcomes_map_to_scores_none_and_quarantines() {
        use pb::sample_result::Outcome;
        let result = |outcome| pb::SampleResult {
            outcome,
            components: HashMap::from([("len".to_string(), 2.0)]),
        };
        let (score, components) = result_from_proto(result(Some(Outcome::Score(0.5))), "svc");
        assert_eq!(score, Ok(Some(0.5)));
        assert_eq!(components["len"], 2.0);
        let na = Some(Outcome::NotApplicable(pb::NotApplicable {}));
        assert_eq!(result_from_proto(result(na), "svc").0, Ok(None));
        let err = Some(Outcome::Error("no reference".into()));
        assert_eq!(
            result_from_proto(result(err), "svc").0.unwrap_err().reason,
            "svc could not score the sample: no reference"
        );
        let none = result_from_proto(result(None), "svc").0.unwrap_err().reason;
        assert!(none.contains("no outcome"), "{none}");
    }
}
