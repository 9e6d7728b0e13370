//! [`ChatTemplate`]: a Jinja chat template compiled with minijinja and rendered like
//! transformers' `apply_chat_template`; where it comes from ([`TemplateOrigin`], the
//! checkpoint's files or [`BUILTIN_TEMPLATE`]) and its options ([`RenderOptions`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::error::ChatError;
use super::json::JsonValue;
use super::message::Message;
use super::template_env::{raise_exception, strftime_now, tojson_filter};

/// Source of the built-in Qwen3-VL chat template (`model/assets/qwen3_vl_chat_template.jinja`).
pub const BUILTIN_TEMPLATE: &str = include_str!("../../../assets/qwen3_vl_chat_template.jinja");

const DEFAULT_TEMPLATE_NAME: &str = "default";
const TOOL_USE_TEMPLATE_NAME: &str = "tool_use";

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
    /// video; see [`expand_vision_placeholders`](super::expand_vision_placeholders)).
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
