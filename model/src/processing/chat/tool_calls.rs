//! Parsing of the tool calls an assistant turn contains, in Qwen's (Hermes-style) format:
//!
//! ```text
//! <tool_call>
//! {"name": "calculator", "arguments": {"expression": "2 + 3"}}
//! </tool_call>
//! ```
//!
//! A turn may hold several calls. The rule, applied left to right:
//! - each `<tool_call>` opens a call that the next `</tool_call>` closes; a call with no closing
//!   tag before the next `<tool_call>` or the end of the text is [`Malformed::Unterminated`];
//! - a `</tool_call>` with no open call is [`Malformed::UnmatchedClose`];
//! - the content between the tags, trimmed, must be one JSON object with a non-empty string
//!   `name`; `arguments` must be a JSON object, or a string holding one (some models
//!   double-encode), and may be left out (then `{}`); other keys are ignored.
//!
//! Text outside the tags is not looked at. A parsed call is the chat template's own
//! [`ToolCall`] (the type the template renders back as `<tool_call>` in an assistant message),
//! its arguments in the order the model wrote them. The actor executes what this returns and
//! records each outcome for the `tool_call` reward, so both see the same calls.

use thiserror::Error;

use super::json::JsonValue;
use super::message::ToolCall;

/// The opening tag of a tool call.
pub const TOOL_CALL_OPEN: &str = "<tool_call>";
/// The closing tag of a tool call.
pub const TOOL_CALL_CLOSE: &str = "</tool_call>";

/// Why a tool call could not be parsed. The messages are what the model is shown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Malformed {
    /// `<tool_call>` was never closed.
    #[error("the tool call is not closed: end it with </tool_call>")]
    Unterminated,
    /// `</tool_call>` without an open call.
    #[error("</tool_call> without a matching <tool_call>")]
    UnmatchedClose,
    /// Nothing between the tags.
    #[error("the tool call is empty: write a JSON object with \"name\" and \"arguments\"")]
    Empty,
    /// The content is not JSON.
    #[error(
        "the tool call is not valid JSON ({0}): write {{\"name\": ..., \"arguments\": {{...}}}}"
    )]
    InvalidJson(String),
    /// The content is JSON but not an object.
    #[error("the tool call must be a JSON object with \"name\" and \"arguments\"")]
    NotAnObject,
    /// No `name`, or not a non-empty string.
    #[error("the tool call has no \"name\" string: name the tool to call")]
    MissingName,
    /// `arguments` is neither an object nor a string holding one.
    #[error("\"arguments\" of the tool call must be a JSON object")]
    ArgumentsNotObject,
}

/// One call found in a turn: its raw text between the tags, the name when one could be read,
/// and the parse outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCall {
    /// The text between the tags (untrimmed); for an unterminated call, everything after the
    /// opening tag up to the next one or the end.
    pub raw: String,
    /// The name, when the content was an object with a string `name` (also for malformed calls).
    pub name: Option<String>,
    /// The call (its `arguments` always a JSON object, its `id` `None`), or why it is malformed.
    pub result: Result<ToolCall, Malformed>,
}

/// All tool calls of `text`, in order (see the module doc for the rule).
pub fn parse_tool_calls(text: &str) -> Vec<ParsedCall> {
    let mut calls = Vec::new();
    let mut rest = text;
    loop {
        let open = rest.find(TOOL_CALL_OPEN);
        let close = rest.find(TOOL_CALL_CLOSE);
        match (open, close) {
            (None, None) => break,
            // A close before any open: a stray closing tag.
            (open, Some(c)) if open.is_none_or(|o| c < o) => {
                calls.push(ParsedCall {
                    raw: String::new(),
                    name: None,
                    result: Err(Malformed::UnmatchedClose),
                });
                rest = &rest[c + TOOL_CALL_CLOSE.len()..];
            }
            (Some(o), _) => {
                let body_start = o + TOOL_CALL_OPEN.len();
                let after = &rest[body_start..];
                let next_open = after.find(TOOL_CALL_OPEN);
                match after.find(TOOL_CALL_CLOSE) {
                    Some(c) if next_open.is_none_or(|n| c < n) => {
                        calls.push(parse_body(&after[..c]));
                        rest = &after[c + TOOL_CALL_CLOSE.len()..];
                    }
                    _ => {
                        let end = next_open.unwrap_or(after.len());
                        let mut call = parse_body(&after[..end]);
                        call.result = Err(Malformed::Unterminated);
                        calls.push(call);
                        rest = &after[end..];
                    }
                }
            }
            (None, Some(_)) => unreachable!("handled by the stray-close arm"),
        }
    }
    calls
}

/// Whether `text` holds at least one `<tool_call>` or `</tool_call>` tag.
pub fn mentions_tool_call(text: &str) -> bool {
    text.contains(TOOL_CALL_OPEN) || text.contains(TOOL_CALL_CLOSE)
}

fn parse_body(raw: &str) -> ParsedCall {
    let malformed = |name: Option<String>, why: Malformed| ParsedCall {
        raw: raw.to_string(),
        name,
        result: Err(why),
    };
    let body = raw.trim();
    if body.is_empty() {
        return malformed(None, Malformed::Empty);
    }
    let value = match JsonValue::parse(body) {
        Ok(v) => v,
        Err(e) => return malformed(None, Malformed::InvalidJson(e.to_string())),
    };
    let JsonValue::Object(mut object) = value else {
        return malformed(None, Malformed::NotAnObject);
    };
    let name = match value_of(&mut object, "name", false) {
        Some(JsonValue::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => return malformed(None, Malformed::MissingName),
    };
    let arguments = match value_of(&mut object, "arguments", true) {
        None | Some(JsonValue::Null) => JsonValue::Object(Vec::new()),
        Some(args @ JsonValue::Object(_)) => args,
        Some(JsonValue::String(s)) => match JsonValue::parse(&s) {
            Ok(args @ JsonValue::Object(_)) => args,
            _ => return malformed(Some(name), Malformed::ArgumentsNotObject),
        },
        Some(_) => return malformed(Some(name), Malformed::ArgumentsNotObject),
    };
    ParsedCall {
        raw: raw.to_string(),
        name: Some(name.clone()),
        result: Ok(ToolCall::new(name, arguments)),
    }
}

/// The value of `key` in an object's entries (taken out when `take`, else cloned).
fn value_of(entries: &mut Vec<(String, JsonValue)>, key: &str, take: bool) -> Option<JsonValue> {
    let at = entries.iter().position(|(k, _)| k == key)?;
    Some(if take {
        entries.remove(at).1
    } else {
        entries[at].1.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok(call: &ParsedCall) -> &ToolCall {
        call.result.as_ref().expect("a well-formed call")
    }

    fn argument<'c>(call: &'c ToolCall, key: &str) -> &'c JsonValue {
        call.arguments.get(key).expect("the argument is there")
    }

    #[test]
    fn one_call_in_qwen_layout() {
        let text = "Let me compute.\n<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"2+3\"}}\n</tool_call>";
        let calls = parse_tool_calls(text);
        assert_eq!(calls.len(), 1);
        let call = ok(&calls[0]);
        assert_eq!(call.name, "calculator");
        assert_eq!(
            call.arguments,
            JsonValue::from(json!({"expression": "2+3"}))
        );
        assert_eq!(call.id, None);
        assert_eq!(calls[0].name.as_deref(), Some("calculator"));
    }

    #[test]
    fn several_calls_and_surrounding_whitespace() {
        let text = "<tool_call>  {\"name\":\"a\",\"arguments\":{}}\t</tool_call>\n\n\
                    text between\n<tool_call>\n\n{\"name\": \" b \", \"arguments\": {\"x\": 1}}\n</tool_call>";
        let calls = parse_tool_calls(text);
        assert_eq!(calls.len(), 2);
        assert_eq!(ok(&calls[0]).name, "a");
        assert_eq!(ok(&calls[1]).name, "b");
        assert_eq!(argument(ok(&calls[1]), "x"), &JsonValue::from(1));
    }

    #[test]
    fn no_tags_means_no_calls() {
        assert!(parse_tool_calls("the answer is 4").is_empty());
        assert!(!mentions_tool_call("the answer is 4"));
        assert!(mentions_tool_call("x </tool_call>"));
    }

    #[test]
    fn unterminated_calls_are_malformed_but_keep_the_name() {
        let calls = parse_tool_calls("<tool_call>\n{\"name\": \"zoom\", \"arguments\": {}}");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].result, Err(Malformed::Unterminated));
        assert_eq!(calls[0].name.as_deref(), Some("zoom"));
        // An open call followed by another opening tag: the first is unterminated, the second
        // parses.
        let calls = parse_tool_calls(
            "<tool_call>{\"name\": \"a\"<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>",
        );
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].result, Err(Malformed::Unterminated));
        assert_eq!(ok(&calls[1]).name, "b");
    }

    #[test]
    fn stray_closing_tag_is_malformed() {
        let calls = parse_tool_calls("{\"name\": \"a\"}</tool_call>");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].result, Err(Malformed::UnmatchedClose));
    }

    #[test]
    fn invalid_json_and_non_objects() {
        let one = |body: &str| {
            let calls = parse_tool_calls(&format!("<tool_call>{body}</tool_call>"));
            assert_eq!(calls.len(), 1, "{body}");
            calls[0].result.clone()
        };
        assert!(matches!(
            one("{name: calculator}"),
            Err(Malformed::InvalidJson(_))
        ));
        assert!(matches!(
            one("{\"name\": \"a\", "),
            Err(Malformed::InvalidJson(_))
        ));
        assert_eq!(one("   "), Err(Malformed::Empty));
        assert_eq!(one("[1, 2]"), Err(Malformed::NotAnObject));
        assert_eq!(one("\"calculator\""), Err(Malformed::NotAnObject));
        assert_eq!(one("{\"arguments\": {}}"), Err(Malformed::MissingName));
        assert_eq!(
            one("{\"name\": 3, \"arguments\": {}}"),
            Err(Malformed::MissingName)
        );
        assert_eq!(
            one("{\"name\": \"  \", \"arguments\": {}}"),
            Err(Malformed::MissingName)
        );
        assert_eq!(
            one("{\"name\": \"a\", \"arguments\": [1]}"),
            Err(Malformed::ArgumentsNotObject)
        );
        assert_eq!(
            one("{\"name\": \"a\", \"arguments\": \"not json\"}"),
            Err(Malformed::ArgumentsNotObject)
        );
        assert_eq!(
            one("{\"name\": \"a\", \"arguments\": \"[1]\"}"),
            Err(Malformed::ArgumentsNotObject)
        );
    }

    #[test]
    fn string_encoded_and_missing_arguments_are_accepted() {
        let calls = parse_tool_calls(
            "<tool_call>{\"name\": \"calculator\", \"arguments\": \"{\\\"expression\\\": \\\"1+1\\\"}\"}</tool_call>\
             <tool_call>{\"name\": \"now\"}</tool_call>",
        );
        assert_eq!(
            argument(ok(&calls[0]), "expression"),
            &JsonValue::from("1+1")
        );
        assert_eq!(ok(&calls[1]).arguments, JsonValue::Object(Vec::new()));
    }

    #[test]
    fn arguments_keep_the_order_the_model_wrote() {
        let calls = parse_tool_calls(
            "<tool_call>{\"name\": \"image_zoom\", \"arguments\": {\"z\": 1, \"a\": 2}}</tool_call>",
        );
        let JsonValue::Object(entries) = &ok(&calls[0]).arguments else {
            panic!("arguments are an object");
        };
        let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["z", "a"]);
    }

    #[test]
    fn malformed_messages_say_how_to_fix() {
        assert!(Malformed::Unterminated.to_string().contains("</tool_call>"));
        assert!(Malformed::MissingName.to_string().contains("name"));
    }
}
