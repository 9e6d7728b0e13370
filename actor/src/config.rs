//! [`ToolLoopConfig`]: the limits of a multi-turn rollout (serde, unknown fields rejected).

use serde::{Deserialize, Serialize};

use crate::error::{ActorError, Result};

/// Limits of the tool loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolLoopConfig {
    /// Assistant turns per sample, the first included [4]. A turn that calls tools when this
    /// many turns have been generated ends the sample (`max_turns`), its calls not executed.
    pub max_turns: usize,
    /// How long one tool call may run, in seconds [10].
    pub tool_timeout_s: f64,
    /// Tokens after the prompt, generated and tool-response tokens together [4096]; a tool
    /// response that would pass it ends the sample (`length`). Generated tokens alone are
    /// bounded by the sampling settings' `max_new_tokens`.
    pub max_total_tokens: usize,
    /// Longest tool-response text shown to the model, in characters; longer text is cut and
    /// marked `…(truncated)` [4000].
    pub max_response_chars: usize,
}

impl Default for ToolLoopConfig {
    fn default() -> Self {
        Self {
            max_turns: 4,
            tool_timeout_s: 10.0,
            max_total_tokens: 4096,
            max_response_chars: 4000,
        }
    }
}

impl ToolLoopConfig {
    /// Rejects values that cannot work, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.max_turns == 0 {
            return Err(ActorError::config(
                "max_turns",
                0,
                "must be at least 1 (1 = no tool calls executed)",
            ));
        }
        if !(self.tool_timeout_s.is_finite() && self.tool_timeout_s > 0.0) {
            return Err(ActorError::config(
                "tool_timeout_s",
                self.tool_timeout_s,
                "must be a positive number of seconds",
            ));
        }
        if self.max_total_tokens == 0 {
            return Err(ActorError::config(
                "max_total_tokens",
                0,
                "must be at least 1",
            ));
        }
        if self.max_response_chars == 0 {
            return Err(ActorError::config(
                "max_response_chars",
                0,
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_unknown_fields_are_refused() {
        let c: ToolLoopConfig = serde_json::from_str(r#"{"max_turns": 2}"#).unwrap();
        assert_eq!(c.max_turns, 2);
        assert_eq!(c.tool_timeout_s, 10.0);
        assert!(serde_json::from_str::<ToolLoopConfig>(r#"{"max_turn": 2}"#).is_err());
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |c: ToolLoopConfig| c.validate().unwrap_err().to_string();
        let d = ToolLoopConfig::default;
        assert!(
            bad(ToolLoopConfig {
                max_turns: 0,
                ..d()
            })
            .starts_with("invalid `max_turns`")
        );
        assert!(
            bad(ToolLoopConfig {
                tool_timeout_s: 0.0,
                ..d()
            })
            .starts_with("invalid `tool_timeout_s`")
        );
        assert!(
            bad(ToolLoopConfig {
                tool_timeout_s: f64::NAN,
                ..d()
            })
            .contains("tool_timeout_s")
        );
        assert!(
            bad(ToolLoopConfig {
                max_total_tokens: 0,
                ..d()
            })
            .contains("max_total_tokens")
        );
        assert!(d().validate().is_ok());
    }
}
