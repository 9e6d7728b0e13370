//! [`Sample`]: what a reward sees of one generated response — the prompt, the response text, the
//! reference answer, free-form metadata and the token counts that length shaping needs.
//!
//! Rewards work on text: the actor decodes the response once for scoring, while the token ids
//! themselves travel to the learner untouched (they are not part of this type).

use serde::{Deserialize, Serialize};
use temper_model::chat::Message;

/// One response to score, with what the rewards may compare it to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Sample {
    /// The prompt as rendered text (may be empty when only `messages` is known).
    pub prompt: String,
    /// The prompt as chat messages (may be empty when only `prompt` is known), the chat
    /// template's own type; text rewards read [`Message::text`] (image and video parts are
    /// placeholders, not shown to them).
    pub messages: Vec<Message>,
    /// The generated response, decoded.
    pub response: String,
    /// The dataset's reference answer; rewards that need one return `None` (not applicable)
    /// without it.
    pub reference: Option<String>,
    /// Free-form per-prompt data from the dataset (e.g. the expected language or tool calls).
    pub metadata: Option<serde_json::Value>,
    /// Number of generated response tokens; `None` when unknown (length shaping then
    /// quarantines the sample rather than guess).
    pub response_tokens: Option<usize>,
    /// The generation limit the response ran under (`max_new_tokens`), if known.
    pub max_response_tokens: Option<usize>,
    /// The turns of a multi-turn, tool-using rollout, in order (empty for a single-turn
    /// response). `response` is then the last turn's text: the final answer.
    pub turns: Vec<Turn>,
}

/// One assistant turn of a multi-turn rollout and the tool calls it made.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Turn {
    /// What the policy generated in this turn, decoded, tool-call markup included.
    pub assistant: String,
    /// The tool calls found in `assistant`, in order, with what came of each.
    pub tool_calls: Vec<ToolCallRecord>,
}

/// One tool call as the actor saw and executed it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolCallRecord {
    /// The tool's name, when the call parsed far enough to have one.
    pub name: Option<String>,
    /// The call's arguments, when they parsed as JSON.
    pub arguments: Option<serde_json::Value>,
    /// What came of the call.
    pub status: ToolCallStatus,
    /// The text the model was shown as the tool response (the error message for failures).
    pub output: String,
}

/// The outcome of one tool call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    /// The tool ran and returned a result.
    #[default]
    Ok,
    /// The call was not valid JSON of the form `{"name": ..., "arguments": {...}}`.
    Malformed,
    /// The named tool does not exist.
    UnknownTool,
    /// The tool ran and reported an error (bad arguments, out-of-range region, ...).
    Failed,
    /// The tool did not answer within its timeout.
    Timeout,
}

impl Sample {
    /// A sample with a prompt and a response; everything else empty.
    pub fn new(prompt: impl Into<String>, response: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            response: response.into(),
            ..Self::default()
        }
    }

    /// Sets the reference answer.
    pub fn with_reference(mut self, reference: impl Into<String>) -> Self {
        self.reference = Some(reference.into());
        self
    }

    /// Sets the response token count and the generation limit it ran under.
    pub fn with_tokens(mut self, response_tokens: usize, max_response_tokens: usize) -> Self {
        self.response_tokens = Some(response_tokens);
        self.max_response_tokens = Some(max_response_tokens);
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// Sets the turns of a multi-turn rollout.
    pub fn with_turns(mut self, turns: Vec<Turn>) -> Self {
        self.turns = turns;
        self
    }

    /// Sets the chat messages of the prompt.
    pub fn with_messages(mut self, messages: Vec<Message>) -> Self {
        self.messages = messages;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_what_they_name() {
        let s = Sample::new("p", "r")
            .with_reference("3")
            .with_tokens(5, 10)
            .with_metadata(serde_json::json!({"lang": "en"}));
        assert_eq!(s.prompt, "p");
        assert_eq!(s.response, "r");
        assert_eq!(s.reference.as_deref(), Some("3"));
        assert_eq!(
            (s.response_tokens, s.max_response_tokens),
            (Some(5), Some(10))
        );
        assert_eq!(s.metadata.unwrap()["lang"], "en");
    }

    #[test]
    fn deserialises_with_defaults_and_rejects_unknown_fields() {
        let s: Sample = serde_json::from_str(r#"{"response": "3"}"#).unwrap();
        assert_eq!(s.response, "3");
        assert!(s.reference.is_none() && s.messages.is_empty() && s.turns.is_empty());
        assert!(serde_json::from_str::<Sample>(r#"{"respnse": "3"}"#).is_err());
    }

    #[test]
    fn turns_round_trip_with_snake_case_statuses() {
        let s: Sample = serde_json::from_str(
            r#"{"response": "4", "turns": [{"assistant": "<tool_call>{}</tool_call>",
                "tool_calls": [{"status": "malformed", "output": "error: missing name"}]},
                {"assistant": "4"}]}"#,
        )
        .unwrap();
        assert_eq!(s.turns.len(), 2);
        assert_eq!(s.turns[0].tool_calls[0].status, ToolCallStatus::Malformed);
        assert!(s.turns[1].tool_calls.is_empty());
        let back: Sample = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
