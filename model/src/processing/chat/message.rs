//! Chat message types: [`Message`], [`ContentPart`] and [`ToolCall`], (de)serialisable in the
//! OpenAI / HuggingFace chat style, and their template values.

use minijinja::value::Value;
use serde::de::{self, Deserializer};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::json::{JsonValue, str_map};

/// One item of a message's content.
///
/// Images and videos are placeholders only: the pixels travel separately (preprocessing), in
/// the order their placeholders appear in the prompt.
///
/// Serialised as `{"type": "text", "text": ...}`, `{"type": "image"}`, `{"type": "video"}`.
/// Deserialisation also accepts a bare string (text), `image_url` / `input_image` /
/// `video_url` / `input_text` types, and typeless items with a `text`, `image`, `image_url` or
/// `video` key (extra keys such as the image path are ignored).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContentPart {
    /// Text, inserted verbatim.
    Text(String),
    /// One image: `<|vision_start|><|image_pad|><|vision_end|>` in the prompt.
    Image,
    /// One video: `<|vision_start|><|video_pad|><|vision_end|>` in the prompt.
    Video,
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text(text.into())
    }

    fn to_template_value(&self) -> Value {
        match self {
            ContentPart::Text(t) => str_map([
                ("type", Value::from("text")),
                ("text", Value::from(t.as_str())),
            ]),
            ContentPart::Image => str_map([("type", Value::from("image"))]),
            ContentPart::Video => str_map([("type", Value::from("video"))]),
        }
    }

    fn from_json<E: de::Error>(v: JsonValue) -> Result<Self, E> {
        let text_of = |v: &JsonValue| -> Result<String, E> {
            v.get("text")
                .and_then(JsonValue::as_str)
                .map(str::to_string)
                .ok_or_else(|| E::custom("a text content item needs a string \"text\" field"))
        };
        match &v {
            JsonValue::String(s) => Ok(ContentPart::Text(s.clone())),
            JsonValue::Object(_) => match v.get("type") {
                Some(JsonValue::String(t)) => match t.as_str() {
                    "text" | "input_text" => Ok(ContentPart::Text(text_of(&v)?)),
                    "image" | "image_url" | "input_image" => Ok(ContentPart::Image),
                    "video" | "video_url" | "input_video" => Ok(ContentPart::Video),
                    other => Err(E::custom(format!(
                        "unknown content type {other:?} (expected text, image or video)"
                    ))),
                },
                Some(_) => Err(E::custom("content item \"type\" must be a string")),
                None if v.get("image").is_some() || v.get("image_url").is_some() => {
                    Ok(ContentPart::Image)
                }
                None if v.get("video").is_some() => Ok(ContentPart::Video),
                None if v.get("text").is_some() => Ok(ContentPart::Text(text_of(&v)?)),
                None => Err(E::custom(
                    "content item has no \"type\" and no text/image/video field",
                )),
            },
            _ => Err(E::custom("a content item must be a string or an object")),
        }
    }
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self {
            ContentPart::Text(t) => {
                map.serialize_entry("type", "text")?;
                map.serialize_entry("text", t)?;
            }
            ContentPart::Image => map.serialize_entry("type", "image")?,
            ContentPart::Video => map.serialize_entry("type", "video")?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        ContentPart::from_json(JsonValue::deserialize(deserializer)?)
    }
}

/// A tool call made by the assistant.
///
/// Serialised in the OpenAI form `{"id": ..., "type": "function", "function": {"name": ...,
/// "arguments": ...}}`; the flat form `{"name": ..., "arguments": ...}` is accepted too.
/// `arguments` is rendered verbatim when it is a string (OpenAI sends a JSON string), else
/// with `tojson` (HF style: an object).
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    /// The call id, if any (not rendered by the Qwen template).
    pub id: Option<String>,
    /// Function name.
    pub name: String,
    /// Arguments: an object, or a string holding JSON.
    pub arguments: JsonValue,
}

impl ToolCall {
    /// A call with object arguments.
    pub fn new(name: impl Into<String>, arguments: JsonValue) -> Self {
        Self {
            id: None,
            name: name.into(),
            arguments,
        }
    }

    fn function_json(&self) -> JsonValue {
        JsonValue::Object(vec![
            ("name".into(), JsonValue::String(self.name.clone())),
            ("arguments".into(), self.arguments.clone()),
        ])
    }

    fn to_json(&self) -> JsonValue {
        let mut entries = Vec::new();
        if let Some(id) = &self.id {
            entries.push(("id".to_string(), JsonValue::String(id.clone())));
        }
        entries.push(("type".into(), JsonValue::String("function".into())));
        entries.push(("function".into(), self.function_json()));
        JsonValue::Object(entries)
    }
}

impl Serialize for ToolCall {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ToolCall {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let v = JsonValue::deserialize(deserializer)?;
        if !matches!(v, JsonValue::Object(_)) {
            return Err(de::Error::custom("a tool call must be an object"));
        }
        let id = v.get("id").and_then(JsonValue::as_str).map(str::to_string);
        let function = v.get("function").unwrap_or(&v);
        let name = function
            .get("name")
            .and_then(JsonValue::as_str)
            .ok_or_else(|| de::Error::custom("a tool call needs a string function name"))?
            .to_string();
        let arguments = function
            .get("arguments")
            .cloned()
            .unwrap_or(JsonValue::Object(Vec::new()));
        Ok(Self {
            id,
            name,
            arguments,
        })
    }
}

/// One chat message.
///
/// Roles used by the Qwen template: `system`, `user`, `assistant`, `tool`. `content` accepts a
/// string, a list of items, or `null` (no content, e.g. an assistant turn with only tool
/// calls).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The content items, in order.
    #[serde(default, deserialize_with = "deserialize_content")]
    pub content: Vec<ContentPart>,
    /// Tool calls of an assistant message.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "deserialize_null_default"
    )]
    pub tool_calls: Vec<ToolCall>,
    /// Thinking text of an assistant message (used by thinking-model templates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    /// The id of the call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Optional name (e.g. of the tool that answered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

fn deserialize_content<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ContentPart>, D::Error> {
    match JsonValue::deserialize(d)? {
        JsonValue::Null => Ok(Vec::new()),
        JsonValue::String(s) => Ok(vec![ContentPart::Text(s)]),
        JsonValue::Array(items) => items.into_iter().map(ContentPart::from_json).collect(),
        item @ JsonValue::Object(_) => Ok(vec![ContentPart::from_json(item)?]),
        _ => Err(de::Error::custom(
            "message content must be a string, a list of items or null",
        )),
    }
}

fn deserialize_null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Message {
    /// A message with the given role and content items.
    pub fn new(role: impl Into<String>, content: Vec<ContentPart>) -> Self {
        Self {
            role: role.into(),
            content,
            tool_calls: Vec::new(),
            reasoning_content: None,
            tool_call_id: None,
            name: None,
        }
    }

    /// A system message with text content.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new("system", vec![ContentPart::Text(text.into())])
    }

    /// A user message with text content.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new("user", vec![ContentPart::Text(text.into())])
    }

    /// An assistant message with text content.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new("assistant", vec![ContentPart::Text(text.into())])
    }

    /// A tool-result message with text content.
    pub fn tool(text: impl Into<String>) -> Self {
        Self::new("tool", vec![ContentPart::Text(text.into())])
    }

    /// Adds tool calls (builder style).
    pub fn with_tool_calls(mut self, calls: Vec<ToolCall>) -> Self {
        self.tool_calls = calls;
        self
    }

    /// The text items, concatenated (as the template renders them, without images and videos):
    /// what a text-only reader, such as a reward, sees of the message.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|p| match p {
                ContentPart::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    /// Number of image items.
    pub fn image_count(&self) -> usize {
        self.content
            .iter()
            .filter(|p| matches!(p, ContentPart::Image))
            .count()
    }

    /// Number of video items.
    pub fn video_count(&self) -> usize {
        self.content
            .iter()
            .filter(|p| matches!(p, ContentPart::Video))
            .count()
    }

    /// The message as the template sees it. Content that is empty or a single text item is
    /// passed as a plain string (as OpenAI/HF callers pass text-only messages, and as text-only
    /// templates expect); other content is a list of `{"type": ...}` items.
    pub(super) fn to_template_value(&self) -> Value {
        let content = match self.content.as_slice() {
            [] => Value::from(""),
            [ContentPart::Text(t)] => Value::from(t.as_str()),
            parts => Value::from(
                parts
                    .iter()
                    .map(ContentPart::to_template_value)
                    .collect::<Vec<_>>(),
            ),
        };
        let mut entries = vec![
            ("role", Value::from(self.role.as_str())),
            ("content", content),
        ];
        if !self.tool_calls.is_empty() {
            let calls = self
                .tool_calls
                .iter()
                .map(|c| c.to_json().to_template_value())
                .collect::<Vec<_>>();
            entries.push(("tool_calls", Value::from(calls)));
        }
        if let Some(r) = &self.reasoning_content {
            entries.push(("reasoning_content", Value::from(r.as_str())));
        }
        if let Some(id) = &self.tool_call_id {
            entries.push(("tool_call_id", Value::from(id.as_str())));
        }
        if let Some(name) = &self.name {
            entries.push(("name", Value::from(name.as_str())));
        }
        str_map(entries)
    }
}
