//! Chat messages to prompt text for Qwen3-VL.
//!
//! This module holds:
//! - the message types ([`Message`], [`ContentPart`], [`ToolCall`]; `message.rs`),
//!   (de)serialisable in the OpenAI / HuggingFace chat style (`{"role": "user", "content":
//!   [{"type": "image"}, {"type": "text", "text": "..."}]}`, or plain-string content), and
//!   [`JsonValue`] (`json.rs`), an order-preserving JSON value for tool definitions and
//!   tool-call arguments;
//! - [`ChatTemplate`], which renders messages with a Jinja chat template through minijinja the
//!   way transformers' `apply_chat_template` does (trim_blocks, lstrip_blocks, Python string
//!   methods, `raise_exception`, a Python-compatible `tojson`). It uses the checkpoint's
//!   template when the model directory has one, else the built-in template
//!   (`assets/qwen3_vl_chat_template.jinja`, [`BUILTIN_TEMPLATE`]) that reproduces the
//!   Qwen3-VL Instruct layout, tool calls included (`template.rs`; the HF additions to the
//!   environment in `template_env.rs`);
//! - [`expand_vision_placeholders`], the text-level expansion of the single image / video
//!   placeholders into one pad token per visual token (as the HF processor does), with video
//!   timestamps in the transformers 4.57 / vLLM layout (`expand.rs`);
//! - [`parse_tool_calls`], the one parser of the `<tool_call>` blocks the template writes, into
//!   its [`ToolCall`]s (`tool_calls.rs`);
//! - [`check_prompt_length`], a guard against prompts longer than the context
//!   (`prompt_length.rs`);
//! - [`ChatError`], the errors of all of the above (`error.rs`).

mod error;
mod expand;
mod json;
mod message;
mod prompt_length;
mod template;
mod template_env;
mod tool_calls;

pub use error::ChatError;
pub use expand::{
    IMAGE_PAD, VIDEO_PAD, VISION_END, VISION_START, VideoPlaceholder, expand_vision_placeholders,
    format_timestamp,
};
pub use json::JsonValue;
pub use message::{ContentPart, Message, ToolCall};
pub use prompt_length::check_prompt_length;
pub use template::{BUILTIN_TEMPLATE, ChatTemplate, RenderOptions, TemplateOrigin};
pub use tool_calls::{
    Malformed, ParsedCall, TOOL_CALL_CLOSE, TOOL_CALL_OPEN, mentions_tool_call, parse_tool_calls,
};
