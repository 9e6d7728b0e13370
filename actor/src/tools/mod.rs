//! Tools the policy can call during a rollout: the [`Tool`] trait, what a call gets
//! ([`ToolContext`]) and returns ([`ToolOutput`] or a [`ToolError`]), the [`ToolRegistry`] that
//! names them and renders their definitions for the chat template's `tools`, the executor that
//! runs a turn's calls concurrently on the I/O runtime, each under a timeout ([`execute_calls`]),
//! and the built-ins: [`Calculator`]
//! (`calculator`) and [`ImageZoom`] (`image_zoom`); tools of a gRPC tool service join them
//! through [`connect_remote_tools`].

mod calculator;
mod execute;
mod image_zoom;
mod registry;
mod remote;

use std::sync::Arc;

use image::RgbImage;
use serde_json::{Map, Value};
use temper_model::chat::JsonValue;
/// A boxed, `Send` future: what [`Tool::call`] returns (the type [`Reward::score`] returns).
///
/// [`Reward::score`]: temper_rewards::Reward::score
pub use temper_rewards::BoxFuture;

pub use calculator::{Calculator, evaluate};
pub use execute::{ExecutedCall, execute_calls};
pub use image_zoom::{ImageZoom, ZoomRegion};
pub use registry::ToolRegistry;
pub use remote::{RemoteTool, connect_remote_tools};

/// What a tool call sees besides its arguments: the images of the prompt, in prompt order.
#[derive(Debug, Clone, Default)]
pub struct ToolContext {
    /// The prompt's images as given (before the processor's resize).
    pub images: Arc<Vec<RgbImage>>,
}

/// A tool's answer: text, and images the model is shown after it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// The text of the tool response.
    pub text: String,
    /// Images shown to the model (each becomes vision tokens in the tool response).
    pub images: Vec<RgbImage>,
}

impl ToolOutput {
    /// A text-only output.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            images: Vec::new(),
        }
    }
}

/// Why a call failed; the message is what the model is shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The arguments were well-formed but the tool could not do it.
    #[error("{0}")]
    Failed(String),
}

/// A tool the policy may call by name.
///
/// The contract, stated once:
/// - `call` is async, like [`Reward::score`](temper_rewards::Reward::score): the executor awaits
///   it on the binary's I/O runtime, all calls of a turn concurrently, each under the tool loop's
///   `tool_timeout_s`. A call that has not answered by then is dropped (status `timeout`); the
///   timeout only takes effect at `.await` points, so move heavy CPU work to
///   `tokio::task::spawn_blocking`.
/// - `Ok(output)`: the text (and images) the model is shown; `Err(ToolError)`: the call failed,
///   and the error's message is what the model is shown. A panic is caught and recorded as
///   `failed`; never panic on bad input.
///
/// ```
/// use serde_json::{Map, Value};
/// use temper_actor::tools::{BoxFuture, Tool, ToolContext, ToolError, ToolOutput};
/// use temper_model::chat::JsonValue;
///
/// /// Echoes its `text` argument.
/// struct Echo;
///
/// impl Tool for Echo {
///     fn name(&self) -> &str {
///         "echo"
///     }
///     fn description(&self) -> &str {
///         "Repeats the text it is given."
///     }
///     fn parameters(&self) -> JsonValue {
///         JsonValue::parse(r#"{"type": "object", "properties": {"text": {"type": "string"}}}"#)
///             .unwrap()
///     }
///     fn call<'a>(
///         &'a self,
///         arguments: &'a Map<String, Value>,
///         _: &'a ToolContext,
///     ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
///         Box::pin(async move {
///             match arguments.get("text") {
///                 Some(Value::String(text)) => Ok(ToolOutput::text(text.clone())),
///                 _ => Err(ToolError::InvalidArguments("\"text\" must be a string".into())),
///             }
///         })
///     }
/// }
/// ```
pub trait Tool: Send + Sync {
    /// The name the model calls it by.
    fn name(&self) -> &str;
    /// One or two sentences for the system prompt.
    fn description(&self) -> &str;
    /// The JSON schema of the arguments object.
    fn parameters(&self) -> JsonValue;
    /// Runs one call (see the trait doc for the contract).
    fn call<'a>(
        &'a self,
        arguments: &'a Map<String, Value>,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>>;

    /// The definition in the OpenAI function format that Qwen's template lists under `# Tools`:
    /// `{"type": "function", "function": {"name", "description", "parameters"}}`.
    fn definition(&self) -> JsonValue {
        JsonValue::Object(vec![
            ("type".into(), JsonValue::String("function".into())),
            (
                "function".into(),
                JsonValue::Object(vec![
                    ("name".into(), JsonValue::String(self.name().into())),
                    (
                        "description".into(),
                        JsonValue::String(self.description().into()),
                    ),
                    ("parameters".into(), self.parameters()),
                ]),
            ),
        ])
    }
}
