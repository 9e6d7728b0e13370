//! [`ToolRegistry`]: the tools of a rollout by name, and their definitions for the prompt.

use std::collections::BTreeMap;
use std::sync::Arc;

use temper_model::chat::JsonValue;
use temper_model::preprocess::VisionPreprocessConfig;

use super::{Calculator, ImageZoom, Tool};
use crate::error::{ActorError, Result};

/// Tools by name.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// `calculator` and `image_zoom` (sized for the processor's pixel limits).
    pub fn builtins(pixels: &VisionPreprocessConfig) -> Self {
        let mut registry = Self::new();
        registry
            .register(Arc::new(Calculator))
            .expect("distinct built-in names");
        registry
            .register(Arc::new(ImageZoom::new(pixels)))
            .expect("distinct built-in names");
        registry
    }

    /// Adds a tool; a second tool of the same name is refused.
    pub fn register(&mut self, tool: Arc<dyn Tool>) -> Result<()> {
        let name = tool.name().to_string();
        if name.trim().is_empty() {
            return Err(ActorError::input("tool", "a tool needs a non-empty name"));
        }
        if self.tools.contains_key(&name) {
            return Err(ActorError::input(
                "tool",
                format!(
                    "a tool named `{name}` is already registered; give the new one another name"
                ),
            ));
        }
        self.tools.insert(name, tool);
        Ok(())
    }

    /// Keeps only the named tools (a run config's `tools = [...]`); unknown names are refused.
    pub fn select(&self, names: &[String]) -> Result<Self> {
        let mut selected = Self::new();
        for name in names {
            let tool = self.tools.get(name).ok_or_else(|| {
                ActorError::input(
                    "tools",
                    format!(
                        "no tool named `{name}`; available: {}",
                        self.names().join(", ")
                    ),
                )
            })?;
            selected.register(tool.clone())?;
        }
        Ok(selected)
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Tool names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tools.keys().cloned().collect()
    }

    /// Whether there is no tool.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The definitions to pass as the chat template's `tools` (`RenderOptions::tools`), in name
    /// order.
    pub fn definitions(&self) -> Vec<JsonValue> {
        self.tools.values().map(|t| t.definition()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temper_model::chat::{ChatTemplate, Message, RenderOptions};

    #[test]
    fn builtins_render_in_the_qwen_tools_block() {
        let registry = ToolRegistry::builtins(&VisionPreprocessConfig::default());
        assert_eq!(registry.names(), ["calculator", "image_zoom"]);
        let options = RenderOptions {
            tools: registry.definitions(),
            ..RenderOptions::generation()
        };
        let text = ChatTemplate::builtin()
            .render(&[Message::user("what is 2+2?")], &options)
            .unwrap();
        assert!(text.starts_with("<|im_start|>system\n# Tools\n"), "{text}");
        assert!(
            text.contains(
                "\n{\"type\": \"function\", \"function\": {\"name\": \"calculator\", \"description\": \"Evaluates"
            ),
            "{text}"
        );
        assert!(text.contains("\"bbox_2d\": {\"type\": \"array\""), "{text}");
        assert!(text.ends_with("<|im_start|>assistant\n"));
    }

    #[test]
    fn duplicates_and_unknown_selections_are_refused() {
        let mut registry = ToolRegistry::builtins(&VisionPreprocessConfig::default());
        let err = registry.register(Arc::new(Calculator)).unwrap_err();
        assert!(err.to_string().contains("already registered"), "{err}");
        let calc = registry.select(&["calculator".into()]).unwrap();
        assert_eq!(calc.names(), ["calculator"]);
        let err = registry.select(&["search".into()]).unwrap_err();
        assert!(
            err.to_string()
                .contains("available: calculator, image_zoom"),
            "{err}"
        );
    }
}
