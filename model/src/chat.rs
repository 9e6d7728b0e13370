//! Chat messages to prompt text for Qwen3-VL.
//!
//! This module holds:
//! - the message types ([`Message`], [`ContentPart`], [`ToolCall`]), (de)serialisable in the
//!   OpenAI / HuggingFace chat style (`{"role": "user", "content": [{"type": "image"},
//!   {"type": "text", "text": "..."}]}`, or plain-string content), and [`JsonValue`], an
//!   order-preserving JSON value for tool definitions and tool-call arguments;
//! - [`ChatTemplate`], which renders messages with a Jinja chat template through minijinja the
//!   way transformers' `apply_chat_template` does (trim_blocks, lstrip_blocks, Python string
//!   methods, `raise_exception`, a Python-compatible `tojson`). It uses the checkpoint's
//!   template when the model directory has one, else the built-in template
//!   (`assets/qwen3_vl_chat_template.jinja`, [`BUILTIN_TEMPLATE`]) that reproduces the
//!   Qwen3-VL Instruct layout, tool calls included;
//! - [`expand_vision_placeholders`], the text-level expansion of the single image / video
//!   placeholders into one pad token per visual token (as the HF processor does), with video
//!   timestamps in the transformers 4.57 / vLLM layout;
//! - [`check_prompt_length`], a guard against prompts longer than the context;
//! - [`ChatError`], the errors of all of the above.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Enumerator, Kwargs, Object, ObjectRepr, Value, ValueKind};
use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Source of the built-in Qwen3-VL chat template (`model/assets/qwen3_vl_chat_template.jinja`).
pub const BUILTIN_TEMPLATE: &str = include_str!("../assets/qwen3_vl_chat_template.jinja");

/// `<|image_pad|>`: the image placeholder the template emits.
pub const IMAGE_PAD: &str = "<|image_pad|>";
/// `<|video_pad|>`: the video placeholder the template emits.
pub const VIDEO_PAD: &str = "<|video_pad|>";
/// `<|vision_start|>`: opens a visual block.
pub const VISION_START: &str = "<|vision_start|>";
/// `<|vision_end|>`: closes a visual block.
pub const VISION_END: &str = "<|vision_end|>";

const WRAPPED_VIDEO: &str = "<|vision_start|><|video_pad|><|vision_end|>";
const DEFAULT_TEMPLATE_NAME: &str = "default";
const TOOL_USE_TEMPLATE_NAME: &str = "tool_use";

/// Errors of prompt construction.
#[derive(Debug, Error)]
pub enum ChatError {
    /// A chat template file could not be read.
    #[error("cannot read chat template file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A chat template file is malformed (bad JSON, missing or mistyped `chat_template`).
    #[error("chat template file {} is invalid: {message}", path.display())]
    TemplateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The template source does not compile.
    #[error("chat template ({origin}) does not compile: {message}")]
    Syntax {
        /// Where the template came from.
        origin: String,
        /// The compiler's message, with the line.
        message: String,
    },
    /// Rendering failed (including `raise_exception` called by the template).
    #[error("chat template ({origin}) failed to render: {message}")]
    Render {
        /// Where the template came from.
        origin: String,
        /// The renderer's message, with the line.
        message: String,
    },
    /// The prompt has a different number of image placeholders than images given.
    #[error(
        "the prompt has {placeholders} image placeholder(s) ({IMAGE_PAD}) but {images} image(s) \
         were given; every image needs exactly one image entry in the messages"
    )]
    ImageCountMismatch {
        /// Number of `<|image_pad|>` in the text.
        placeholders: usize,
        /// Number of images given.
        images: usize,
    },
    /// The prompt has a different number of video placeholders than videos given.
    #[error(
        "the prompt has {placeholders} video placeholder(s) ({VIDEO_PAD}) but {videos} video(s) \
         were given; every video needs exactly one video entry in the messages"
    )]
    VideoCountMismatch {
        /// Number of video placeholders in the text.
        placeholders: usize,
        /// Number of videos given.
        videos: usize,
    },
    /// An image was given 0 tokens.
    #[error("image {index} has 0 visual tokens; every image yields at least one {IMAGE_PAD}")]
    EmptyImage {
        /// Index of the image (0-based, in prompt order).
        index: usize,
    },
    /// A video was given no temporal patches or 0 tokens per patch.
    #[error(
        "video {index} has {patches} temporal patch(es) of {tokens} token(s); a video needs at \
         least one patch (one timestamp) of at least one token"
    )]
    EmptyVideo {
        /// Index of the video (0-based, in prompt order).
        index: usize,
        /// Number of timestamps (temporal patches).
        patches: usize,
        /// Tokens per temporal patch.
        tokens: usize,
    },
    /// The prompt does not fit the context.
    #[error(
        "the prompt is {n_tokens} tokens long but the limit is {max} tokens; shorten the text, \
         use fewer or smaller images/videos (lower max_pixels, fewer frames), or raise the \
         context limit"
    )]
    PromptTooLong {
        /// Prompt length in tokens.
        n_tokens: usize,
        /// The limit.
        max: usize,
    },
}

// ---------------------------------------------------------------------------------------------
// JSON values that keep key order
// ---------------------------------------------------------------------------------------------

/// A JSON value whose objects keep their key order (as Python dicts do).
///
/// Tool definitions and tool-call arguments are rendered into the prompt with `tojson`; HF keeps
/// the caller's key order there, so this type does too (`serde_json::Value` sorts keys).
/// Deserialise it with `serde_json::from_str::<JsonValue>(..)`; a duplicate key keeps its first
/// position and its last value, as in Python.
#[derive(Clone, Debug, PartialEq)]
pub enum JsonValue {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A number.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object, keys in insertion order.
    Object(Vec<(String, JsonValue)>),
}

impl JsonValue {
    /// Parses JSON text, keeping key order.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Looks a key up in an object (`None` for other values or a missing key).
    pub fn get(&self, key: &str) -> Option<&JsonValue> {
        match self {
            JsonValue::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            JsonValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Converts to a template value (objects become order-keeping maps).
    pub fn to_template_value(&self) -> Value {
        match self {
            JsonValue::Null => Value::from(()),
            JsonValue::Bool(b) => Value::from(*b),
            JsonValue::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Value::from(i)
                } else if let Some(u) = n.as_u64() {
                    Value::from(u)
                } else {
                    Value::from(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            JsonValue::String(s) => Value::from(s.as_str()),
            JsonValue::Array(items) => Value::from(
                items
                    .iter()
                    .map(JsonValue::to_template_value)
                    .collect::<Vec<_>>(),
            ),
            JsonValue::Object(entries) => ordered_map(
                entries
                    .iter()
                    .map(|(k, v)| (Value::from(k.as_str()), v.to_template_value())),
            ),
        }
    }
}

impl From<&str> for JsonValue {
    fn from(s: &str) -> Self {
        JsonValue::String(s.to_string())
    }
}

impl From<String> for JsonValue {
    fn from(s: String) -> Self {
        JsonValue::String(s)
    }
}

impl From<bool> for JsonValue {
    fn from(b: bool) -> Self {
        JsonValue::Bool(b)
    }
}

impl From<i64> for JsonValue {
    fn from(i: i64) -> Self {
        JsonValue::Number(i.into())
    }
}

impl From<serde_json::Value> for JsonValue {
    /// Converts a `serde_json::Value` (whose objects are already key-sorted unless serde_json's
    /// `preserve_order` feature is on).
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => JsonValue::Null,
            serde_json::Value::Bool(b) => JsonValue::Bool(b),
            serde_json::Value::Number(n) => JsonValue::Number(n),
            serde_json::Value::String(s) => JsonValue::String(s),
            serde_json::Value::Array(a) => {
                JsonValue::Array(a.into_iter().map(JsonValue::from).collect())
            }
            serde_json::Value::Object(o) => JsonValue::Object(
                o.into_iter()
                    .map(|(k, v)| (k, JsonValue::from(v)))
                    .collect(),
            ),
        }
    }
}

impl fmt::Display for JsonValue {
    /// Compact JSON (`{"a":1}`), keys in order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for JsonValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            JsonValue::Null => serializer.serialize_unit(),
            JsonValue::Bool(b) => serializer.serialize_bool(*b),
            JsonValue::Number(n) => n.serialize(serializer),
            JsonValue::String(s) => serializer.serialize_str(s),
            JsonValue::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            JsonValue::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for JsonValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct JsonVisitor;

        impl<'de> Visitor<'de> for JsonVisitor {
            type Value = JsonValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<JsonValue, E> {
                Ok(JsonValue::Null)
            }
            fn visit_none<E>(self) -> Result<JsonValue, E> {
                Ok(JsonValue::Null)
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<JsonValue, D::Error> {
                JsonValue::deserialize(d)
            }
            fn visit_bool<E>(self, b: bool) -> Result<JsonValue, E> {
                Ok(JsonValue::Bool(b))
            }
            fn visit_i64<E>(self, i: i64) -> Result<JsonValue, E> {
                Ok(JsonValue::Number(i.into()))
            }
            fn visit_u64<E>(self, u: u64) -> Result<JsonValue, E> {
                Ok(JsonValue::Number(u.into()))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<JsonValue, E> {
                serde_json::Number::from_f64(x)
                    .map(JsonValue::Number)
                    .ok_or_else(|| E::custom(format!("{x} is not a valid JSON number")))
            }
            fn visit_str<E>(self, s: &str) -> Result<JsonValue, E> {
                Ok(JsonValue::String(s.to_string()))
            }
            fn visit_string<E>(self, s: String) -> Result<JsonValue, E> {
                Ok(JsonValue::String(s))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<JsonValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(JsonValue::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<JsonValue, A::Error> {
                let mut entries: Vec<(String, JsonValue)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, JsonValue>()? {
                    match entries.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => entries.push((key, value)),
                    }
                }
                Ok(JsonValue::Object(entries))
            }
        }

        deserializer.deserialize_any(JsonVisitor)
    }
}

/// A template map that keeps insertion order (minijinja's own maps are sorted).
#[derive(Debug)]
struct OrderedMap(Vec<(Value, Value)>);

impl Object for OrderedMap {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(self.0.iter().map(|(k, _)| k.clone()).collect())
    }

    fn enumerator_len(self: &Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }
}

fn ordered_map(entries: impl IntoIterator<Item = (Value, Value)>) -> Value {
    Value::from_object(OrderedMap(entries.into_iter().collect()))
}

fn str_map<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    ordered_map(entries.into_iter().map(|(k, v)| (Value::from(k), v)))
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

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
    fn to_template_value(&self) -> Value {
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

/// Options of [`ChatTemplate::render`] (the keyword arguments of HF `apply_chat_template`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RenderOptions {
    /// Append the opening of an assistant turn (`<|im_start|>assistant\n`).
    pub add_generation_prompt: bool,
    /// Tool definitions (OpenAI function schema); empty means no tools (`tools` is `none`).
    pub tools: Vec<JsonValue>,
    /// Prefix images / videos with `Picture k: ` / `Video k: ` (Qwen's `add_vision_id`).
    pub add_vision_id: bool,
    /// Further template variables, e.g. `("enable_thinking", false)`; they override the above.
    pub extra: Vec<(String, JsonValue)>,
}

impl RenderOptions {
    /// Options with the generation prompt on and nothing else.
    pub fn generation() -> Self {
        Self {
            add_generation_prompt: true,
            ..Self::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Chat template
// ---------------------------------------------------------------------------------------------

/// Where a [`ChatTemplate`] came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateOrigin {
    /// The built-in Qwen3-VL template ([`BUILTIN_TEMPLATE`]).
    BuiltIn,
    /// A template given as a string.
    Inline,
    /// A checkpoint file (`chat_template.jinja`, `chat_template.json` or
    /// `tokenizer_config.json`).
    File(PathBuf),
}

impl fmt::Display for TemplateOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateOrigin::BuiltIn => f.write_str("built-in qwen3-vl template"),
            TemplateOrigin::Inline => f.write_str("inline template"),
            TemplateOrigin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A compiled chat template, rendered like transformers' `apply_chat_template`.
///
/// The environment matches HF's: `trim_blocks` and `lstrip_blocks` on, no auto-escaping, a
/// single trailing newline of the source dropped, lenient undefined values, Python string /
/// dict methods (minijinja-contrib `pycompat`), loop controls, and the HF additions
/// `raise_exception(msg)`, `tojson` (Python `json.dumps`: `", "`/`": "` separators, key order
/// kept, non-ASCII kept; keyword arguments `indent`, `ensure_ascii`, `sort_keys`,
/// `separators`) and `strftime_now(fmt)` (UTC here, local time in HF). The `{% generation %}`
/// tag of some training templates is not supported.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    names: Vec<String>,
    origin: TemplateOrigin,
    special_tokens: Vec<(String, Value)>,
}

impl ChatTemplate {
    /// The built-in Qwen3-VL template.
    pub fn builtin() -> Self {
        Self::build(
            vec![(DEFAULT_TEMPLATE_NAME.into(), BUILTIN_TEMPLATE.into())],
            TemplateOrigin::BuiltIn,
        )
        .expect("the built-in chat template compiles")
    }

    /// Compiles a template from its source text.
    pub fn from_source(source: impl Into<String>) -> Result<Self, ChatError> {
        Self::build(
            vec![(DEFAULT_TEMPLATE_NAME.into(), source.into())],
            TemplateOrigin::Inline,
        )
    }

    /// Compiles the template of a model directory, or the built-in one if it has none.
    ///
    /// Looked up in the order transformers uses: `chat_template.jinja`, then
    /// `chat_template.json` (key `chat_template`), then `tokenizer_config.json` (key
    /// `chat_template`, a string or a list of `{"name", "template"}`; `tool_use` is used when
    /// tools are given and it exists, else `default`). The special-token strings of
    /// `tokenizer_config.json` (`eos_token`, `pad_token`, …) become template variables, as in HF.
    pub fn from_model_dir(dir: impl AsRef<Path>) -> Result<Self, ChatError> {
        let dir = dir.as_ref();
        let config_path = dir.join("tokenizer_config.json");
        let tokenizer_config = read_json_if_exists(&config_path)?;

        let mut template = match find_templates(dir, tokenizer_config.as_ref(), &config_path)? {
            Some((templates, path)) => Self::build(templates, TemplateOrigin::File(path))?,
            None => Self::builtin(),
        };
        if let Some(config) = &tokenizer_config {
            template.special_tokens = special_token_values(config);
        }
        Ok(template)
    }

    fn build(templates: Vec<(String, String)>, origin: TemplateOrigin) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        let syntax = minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| ChatError::Syntax {
                origin: origin.to_string(),
                message: describe(&e),
            })?;
        env.set_syntax(syntax);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson_filter);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", strftime_now);

        let mut names = Vec::new();
        for (name, source) in templates {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| ChatError::Syntax {
                    origin: origin.to_string(),
                    message: describe(&e),
                })?;
            names.push(name);
        }
        Ok(Self {
            env,
            names,
            origin,
            special_tokens: Vec::new(),
        })
    }

    /// Where the template came from.
    pub fn origin(&self) -> &TemplateOrigin {
        &self.origin
    }

    /// Whether this is the built-in template.
    pub fn is_builtin(&self) -> bool {
        self.origin == TemplateOrigin::BuiltIn
    }

    /// Names of the compiled templates (`default`, and e.g. `tool_use`).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Renders messages to prompt text (with one `<|image_pad|>` / `<|video_pad|>` per image /
    /// video; see [`expand_vision_placeholders`]).
    pub fn render(
        &self,
        messages: &[Message],
        options: &RenderOptions,
    ) -> Result<String, ChatError> {
        let name = self.pick_name(!options.tools.is_empty());
        let render_err = |e: minijinja::Error| ChatError::Render {
            origin: self.origin.to_string(),
            message: describe(&e),
        };
        let template = self.env.get_template(name).map_err(render_err)?;

        let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
        for (k, v) in &self.special_tokens {
            ctx.insert(k.clone(), v.clone());
        }
        ctx.insert(
            "messages".into(),
            Value::from(
                messages
                    .iter()
                    .map(Message::to_template_value)
                    .collect::<Vec<_>>(),
            ),
        );
        let tools = if options.tools.is_empty() {
            Value::from(())
        } else {
            Value::from(
                options
                    .tools
                    .iter()
                    .map(JsonValue::to_template_value)
                    .collect::<Vec<_>>(),
            )
        };
        ctx.insert("tools".into(), tools);
        ctx.insert("documents".into(), Value::from(()));
        ctx.insert(
            "add_generation_prompt".into(),
            Value::from(options.add_generation_prompt),
        );
        if options.add_vision_id {
            ctx.insert("add_vision_id".into(), Value::from(true));
        }
        for (k, v) in &options.extra {
            ctx.insert(k.clone(), v.to_template_value());
        }
        template.render(Value::from(ctx)).map_err(render_err)
    }

    fn pick_name(&self, with_tools: bool) -> &str {
        if with_tools && self.names.iter().any(|n| n == TOOL_USE_TEMPLATE_NAME) {
            return TOOL_USE_TEMPLATE_NAME;
        }
        if self.names.iter().any(|n| n == DEFAULT_TEMPLATE_NAME) {
            return DEFAULT_TEMPLATE_NAME;
        }
        &self.names[0]
    }
}

/// A minijinja error with its chain of causes and location.
fn describe(err: &minijinja::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

fn read_json_if_exists(path: &Path) -> Result<Option<serde_json::Value>, ChatError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ChatError::TemplateFile {
                path: path.to_path_buf(),
                message: format!("not valid JSON: {e}"),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ChatError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

type NamedTemplates = Vec<(String, String)>;

fn find_templates(
    dir: &Path,
    tokenizer_config: Option<&serde_json::Value>,
    config_path: &Path,
) -> Result<Option<(NamedTemplates, PathBuf)>, ChatError> {
    let jinja = dir.join("chat_template.jinja");
    match std::fs::read_to_string(&jinja) {
        Ok(source) => return Ok(Some((vec![(DEFAULT_TEMPLATE_NAME.into(), source)], jinja))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(ChatError::Io {
                path: jinja,
                source,
            });
        }
    }

    let json_path = dir.join("chat_template.json");
    if let Some(json) = read_json_if_exists(&json_path)? {
        return match json.get("chat_template") {
            Some(value) => Ok(Some((templates_of(value, &json_path)?, json_path))),
            None => Err(ChatError::TemplateFile {
                path: json_path,
                message: "no \"chat_template\" key".into(),
            }),
        };
    }

    match tokenizer_config.and_then(|c| c.get("chat_template")) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => Ok(Some((
            templates_of(value, config_path)?,
            config_path.to_path_buf(),
        ))),
    }
}

fn templates_of(value: &serde_json::Value, path: &Path) -> Result<NamedTemplates, ChatError> {
    let bad = |message: &str| ChatError::TemplateFile {
        path: path.to_path_buf(),
        message: message.to_string(),
    };
    match value {
        serde_json::Value::String(s) => Ok(vec![(DEFAULT_TEMPLATE_NAME.into(), s.clone())]),
        serde_json::Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                let name = item.get("name").and_then(|v| v.as_str());
                let template = item.get("template").and_then(|v| v.as_str());
                match (name, template) {
                    (Some(n), Some(t)) => Ok((n.to_string(), t.to_string())),
                    _ => Err(bad(
                        "\"chat_template\" list items need string \"name\" and \"template\"",
                    )),
                }
            })
            .collect(),
        _ => Err(bad(
            "\"chat_template\" must be a string or a non-empty list of {name, template}",
        )),
    }
}

/// `bos_token`, `eos_token`, … of a `tokenizer_config.json` as template variables (strings, or
/// the `content` of an added-token object; `additional_special_tokens` as a list).
fn special_token_values(config: &serde_json::Value) -> Vec<(String, Value)> {
    fn token_text(v: &serde_json::Value) -> Option<&str> {
        match v {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()),
            _ => None,
        }
    }
    let mut out = Vec::new();
    for key in [
        "bos_token",
        "eos_token",
        "unk_token",
        "sep_token",
        "pad_token",
        "cls_token",
        "mask_token",
    ] {
        if let Some(text) = config.get(key).and_then(token_text) {
            out.push((key.to_string(), Value::from(text)));
        }
    }
    if let Some(serde_json::Value::Array(items)) = config.get("additional_special_tokens") {
        let list: Vec<Value> = items
            .iter()
            .filter_map(token_text)
            .map(Value::from)
            .collect();
        out.push(("additional_special_tokens".into(), Value::from(list)));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HF template helpers: raise_exception, tojson, strftime_now
// ---------------------------------------------------------------------------------------------

fn raise_exception(message: String) -> Result<Value, minijinja::Error> {
    Err(minijinja::Error::new(
        ErrorKind::InvalidOperation,
        format!("the template raised an exception: {message}"),
    ))
}

struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

/// `tojson` as HF defines it: `json.dumps(x, ensure_ascii=False, indent=None,
/// separators=None, sort_keys=False)` (positional arguments in that order, or keywords).
fn tojson_filter(
    value: Value,
    args: Vec<Value>,
    kwargs: Kwargs,
) -> Result<Value, minijinja::Error> {
    let arg = |pos: usize, name: &str| -> Result<Option<Value>, minijinja::Error> {
        if kwargs.has(name) {
            return kwargs.get::<Value>(name).map(Some);
        }
        Ok(args.get(pos).cloned())
    };
    let ensure_ascii = arg(0, "ensure_ascii")?.is_some_and(|v| v.is_true());
    let indent = match arg(1, "indent")? {
        None => None,
        Some(v) if v.is_none() || v.is_undefined() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                let n = i64::try_from(v.clone()).map_err(|_| {
                    minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: indent must be an integer or a string",
                    )
                })?;
                Some(" ".repeat(n.max(0) as usize))
            }
        },
    };
    let (default_item, default_key) = if indent.is_some() {
        (",", ": ")
    } else {
        (", ", ": ")
    };
    let (item_sep, key_sep) = match arg(2, "separators")? {
        Some(v) if !(v.is_none() || v.is_undefined()) => {
            let parts: Vec<Value> = v.try_iter()?.collect();
            match parts.as_slice() {
                [a, b] if a.as_str().is_some() && b.as_str().is_some() => (
                    a.as_str().unwrap_or_default().to_string(),
                    b.as_str().unwrap_or_default().to_string(),
                ),
                _ => {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be a pair of strings",
                    ));
                }
            }
        }
        _ => (default_item.to_string(), default_key.to_string()),
    };
    let sort_keys = arg(3, "sort_keys")?.is_some_and(|v| v.is_true());
    kwargs.assert_all_used()?;
    let style = JsonStyle {
        ensure_ascii,
        indent,
        item_sep,
        key_sep,
        sort_keys,
    };
    let mut out = String::new();
    write_py_json(&mut out, &value, &style, 0)?;
    Ok(Value::from_safe_string(out))
}

/// Serialises a template value like Python's `json.dumps`.
fn write_py_json(
    out: &mut String,
    value: &Value,
    style: &JsonStyle,
    depth: usize,
) -> Result<(), minijinja::Error> {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number => {
            if value.is_integer() {
                out.push_str(&value.to_string());
            } else {
                let x = f64::try_from(value.clone())?;
                out.push_str(&python_float_repr(x));
            }
        }
        ValueKind::String => write_py_json_str(out, value.as_str().unwrap_or_default(), style),
        ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            if style.sort_keys {
                keys.sort();
            }
            if keys.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline_indent(out, style, depth + 1);
                let key_text = match key.as_str() {
                    Some(s) => s.to_string(),
                    None => key.to_string(),
                };
                write_py_json_str(out, &key_text, style);
                out.push_str(&style.key_sep);
                write_py_json(out, &value.get_item(key)?, style, depth + 1)?;
            }
            newline_indent(out, style, depth);
            out.push('}');
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&style.item_sep);
                }
                newline_indent(out, style, depth + 1);
                write_py_json(out, item, style, depth + 1)?;
            }
            newline_indent(out, style, depth);
            out.push(']');
        }
        _ => {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "tojson: object of kind {} is not JSON serializable",
                    value.kind()
                ),
            ));
        }
    }
    Ok(())
}

fn newline_indent(out: &mut String, style: &JsonStyle, depth: usize) {
    if let Some(indent) = &style.indent {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    }
}

fn write_py_json_str(out: &mut String, s: &str, style: &JsonStyle) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if style.ensure_ascii && !c.is_ascii() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for exponents in
/// [-4, 16), else `1e-07` / `1.5e+16` style; `NaN`, `Infinity`, `-Infinity` as `json.dumps`.
fn python_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let fixed = format!("{x}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// `strftime_now(format)`: the current UTC time formatted with `%Y %m %d %H %M %S %y %j %b %B
/// %a %A %p %I %%`; other directives are copied unchanged.
fn strftime_now(format: String) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    format_utc(secs, &format)
}

fn format_utc(secs: i64, format: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
    ];
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_mar = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_mar + 2) / 153;
    let day = doy_mar - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let cumulative = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let yday = cumulative[(month - 1) as usize] + day + i64::from(leap && month > 2);
    let weekday = (days + 3).rem_euclid(7) as usize; // 1970-01-01 was a Thursday.
    let month_name = MONTHS[(month - 1) as usize];
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };

    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('Y') => out.push_str(&year.to_string()),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('j') => out.push_str(&format!("{yday:03}")),
            Some('H') => out.push_str(&format!("{hour:02}")),
            Some('I') => out.push_str(&format!("{hour12:02}")),
            Some('M') => out.push_str(&format!("{minute:02}")),
            Some('S') => out.push_str(&format!("{second:02}")),
            Some('p') => out.push_str(if hour < 12 { "AM" } else { "PM" }),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('a') => out.push_str(&DAYS[weekday][..3]),
            Some('A') => out.push_str(DAYS[weekday]),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Vision placeholder expansion and the length guard
// ---------------------------------------------------------------------------------------------

/// What one video expands to: per temporal patch, its timestamp text and
/// `tokens_per_temporal_patch` video pads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VideoPlaceholder {
    /// Merged visual tokens per temporal patch (`h·w / merge²` of the video grid).
    pub tokens_per_temporal_patch: usize,
    /// One timestamp per temporal patch, already formatted (e.g. `<0.5 seconds>`, see
    /// [`format_timestamp`]).
    pub timestamps: Vec<String>,
}

/// Formats a timestamp as the Qwen3-VL processor does: `<{seconds:.1f} seconds>` (Python's
/// rounding of the exact binary value).
pub use crate::preprocess::format_timestamp;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Image,
    Video,
}

/// Finds the vision placeholders in order: `(start, end, kind)`.
fn scan_placeholders(text: &str) -> Vec<(usize, usize, Placeholder)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = text[at..].find("<|") {
        let start = at + offset;
        let rest = &text[start..];
        let hit = if rest.starts_with(WRAPPED_VIDEO) {
            Some((WRAPPED_VIDEO.len(), Placeholder::Video))
        } else if rest.starts_with(IMAGE_PAD) {
            Some((IMAGE_PAD.len(), Placeholder::Image))
        } else if rest.starts_with(VIDEO_PAD) {
            Some((VIDEO_PAD.len(), Placeholder::Video))
        } else {
            None
        };
        match hit {
            Some((len, kind)) => {
                found.push((start, start + len, kind));
                at = start + len;
            }
            None => at = start + 2,
        }
    }
    found
}

/// Expands the vision placeholders of rendered prompt text, as the HF Qwen3-VL processor does.
///
/// - The k-th `<|image_pad|>` becomes `image_token_counts[k]` × `<|image_pad|>`.
/// - The k-th video placeholder, either the whole `<|vision_start|><|video_pad|><|vision_end|>`
///   the template emits or a bare `<|video_pad|>`, becomes, for each temporal patch t,
///   `timestamps[t] + "<|vision_start|>" + "<|video_pad|>" × tokens + "<|vision_end|>"`
///   (the transformers 4.57 / vLLM layout: no extra outer vision_start/vision_end).
///
/// Every `<|image_pad|>` in the text counts as one placeholder, so expand only once. Errors
/// when the placeholder counts differ from the numbers of images / videos given, or when an
/// image or video has no tokens.
pub fn expand_vision_placeholders(
    text: &str,
    image_token_counts: &[usize],
    videos: &[VideoPlaceholder],
) -> Result<String, ChatError> {
    let found = scan_placeholders(text);
    let n_images = found.iter().filter(|p| p.2 == Placeholder::Image).count();
    let n_videos = found.len() - n_images;
    if n_images != image_token_counts.len() {
        return Err(ChatError::ImageCountMismatch {
            placeholders: n_images,
            images: image_token_counts.len(),
        });
    }
    if n_videos != videos.len() {
        return Err(ChatError::VideoCountMismatch {
            placeholders: n_videos,
            videos: videos.len(),
        });
    }
    if let Some(index) = image_token_counts.iter().position(|&n| n == 0) {
        return Err(ChatError::EmptyImage { index });
    }
    if let Some((index, v)) = videos
        .iter()
        .enumerate()
        .find(|(_, v)| v.timestamps.is_empty() || v.tokens_per_temporal_patch == 0)
    {
        return Err(ChatError::EmptyVideo {
            index,
            patches: v.timestamps.len(),
            tokens: v.tokens_per_temporal_patch,
        });
    }

    let extra: usize = image_token_counts
        .iter()
        .map(|n| n * IMAGE_PAD.len())
        .sum::<usize>()
        + videos
            .iter()
            .map(|v| {
                v.timestamps
                    .iter()
                    .map(|t| t.len() + VISION_START.len() + VISION_END.len())
                    .sum::<usize>()
                    + v.timestamps.len() * v.tokens_per_temporal_patch * VIDEO_PAD.len()
            })
            .sum::<usize>();
    let mut out = String::with_capacity(text.len() + extra);
    let (mut images, mut video_iter) = (image_token_counts.iter(), videos.iter());
    let mut last = 0;
    for (start, end, kind) in found {
        out.push_str(&text[last..start]);
        match kind {
            Placeholder::Image => {
                let n = *images.next().expect("counted above");
                for _ in 0..n {
                    out.push_str(IMAGE_PAD);
                }
            }
            Placeholder::Video => {
                let video = video_iter.next().expect("counted above");
                for timestamp in &video.timestamps {
                    out.push_str(timestamp);
                    out.push_str(VISION_START);
                    for _ in 0..video.tokens_per_temporal_patch {
                        out.push_str(VIDEO_PAD);
                    }
                    out.push_str(VISION_END);
                }
            }
        }
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Checks that a prompt of `n_tokens` tokens fits a limit of `max` tokens.
pub fn check_prompt_length(n_tokens: usize, max: usize) -> Result<(), ChatError> {
    if n_tokens > max {
        return Err(ChatError::PromptTooLong { n_tokens, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        assert_eq!(python_float_repr(1.0), "1.0");
        assert_eq!(python_float_repr(0.1), "0.1");
        assert_eq!(python_float_repr(1e-7), "1e-07");
        assert_eq!(python_float_repr(1e20), "1e+20");
        assert_eq!(python_float_repr(1e16), "1e+16");
        assert_eq!(python_float_repr(1e15), "1000000000000000.0");
        assert_eq!(python_float_repr(-2.5), "-2.5");
        assert_eq!(
            python_float_repr(1.2345678901234568e17),
            "1.2345678901234568e+17"
        );
    }

    #[test]
    fn utc_formatting() {
        // 2024-02-29 13:05:09 UTC, a Thursday, day 60 of a leap year.
        let secs = 1_709_211_909;
        assert_eq!(
            format_utc(secs, "%Y-%m-%d %H:%M:%S %j %a %A %b %B %y %I%p %% %Q"),
            "2024-02-29 13:05:09 060 Thu Thursday Feb February 24 01PM % %Q"
        );
        assert_eq!(format_utc(0, "%d %b %Y"), "01 Jan 1970");
    }
}
