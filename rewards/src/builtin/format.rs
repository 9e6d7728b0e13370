//! `format`: 1.0 when the response has exactly the expected shape, else 0.0.
//!
//! The shape (with the defaults) is, up to surrounding whitespace:
//!
//! ```text
//! <think> … </think> <answer> … </answer>
//! ```
//!
//! - one thinking block first, then one answer block last, nothing before, between (other than
//!   whitespace) or after;
//! - neither block contains a tag of either kind (no nesting, no second block hidden inside);
//! - the answer is not blank (an empty thinking block is allowed: some models skip thinking).
//!
//! `require_think = false` drops the thinking block (the response is just the answer block);
//! `require_answer = false` drops the answer block (the thinking block is followed by free
//! text, which must not contain tags). With `think_opened_in_prompt = true` the chat template
//! already opened `<think>` in the prompt (Qwen3 thinking templates do), so the response must
//! start inside the thinking block and contain only its `</think>`.
//!
//! Components: `think` and `answer`, 1.0 when exactly one well-formed block of that kind is
//! present anywhere (diagnostics for a failing format; the score is the strict check).

use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::{Result, RewardError};
use crate::sample::Sample;

/// Options of `kind = "format"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FormatConfig {
    /// Name of the thinking tag [default `think`].
    pub think_tag: String,
    /// Name of the answer tag [default `answer`].
    pub answer_tag: String,
    /// A thinking block must come first [true].
    pub require_think: bool,
    /// An answer block must come last [true].
    pub require_answer: bool,
    /// The prompt already opened the thinking block [false].
    pub think_opened_in_prompt: bool,
}

impl Default for FormatConfig {
    fn default() -> Self {
        Self {
            think_tag: "think".into(),
            answer_tag: "answer".into(),
            require_think: true,
            require_answer: true,
            think_opened_in_prompt: false,
        }
    }
}

impl FormatConfig {
    /// Rejects tag names that are empty or not `[A-Za-z0-9_-]`, equal tags, and a config that
    /// requires nothing, naming the field.
    pub fn validate(&self) -> Result<()> {
        for (field, tag) in [
            ("think_tag", &self.think_tag),
            ("answer_tag", &self.answer_tag),
        ] {
            let ok = !tag.is_empty()
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(RewardError::config(
                    field,
                    format!("{tag:?}"),
                    "must be a non-empty tag name of letters, digits, `_` or `-`",
                ));
            }
        }
        if self.think_tag == self.answer_tag {
            return Err(RewardError::config(
                "answer_tag",
                format!("{:?}", self.answer_tag),
                "must differ from `think_tag`",
            ));
        }
        if !self.require_think && !self.require_answer {
            return Err(RewardError::config(
                "require_answer",
                false,
                "at least one of `require_think` and `require_answer` must be true",
            ));
        }
        if self.think_opened_in_prompt && !self.require_think {
            return Err(RewardError::config(
                "think_opened_in_prompt",
                true,
                "needs `require_think = true`",
            ));
        }
        Ok(())
    }
}

/// The `format` reward.
#[derive(Debug, Clone)]
pub struct Format {
    config: FormatConfig,
    tags: Tags,
}

#[derive(Debug, Clone)]
struct Tags {
    think_open: String,
    think_close: String,
    answer_open: String,
    answer_close: String,
}

impl Tags {
    fn all(&self) -> [&str; 4] {
        [
            &self.think_open,
            &self.think_close,
            &self.answer_open,
            &self.answer_close,
        ]
    }

    fn any_in(&self, text: &str) -> bool {
        self.all().iter().any(|t| text.contains(t))
    }
}

impl Format {
    /// Component names: `think`, `answer` (see the module doc).
    pub const COMPONENTS: [&'static str; 2] = ["think", "answer"];

    /// The reward with these options.
    pub fn new(config: FormatConfig) -> Result<Self> {
        config.validate()?;
        let tags = Tags {
            think_open: format!("<{}>", config.think_tag),
            think_close: format!("</{}>", config.think_tag),
            answer_open: format!("<{}>", config.answer_tag),
            answer_close: format!("</{}>", config.answer_tag),
        };
        Ok(Self { config, tags })
    }

    /// Whether the response has exactly the configured shape.
    pub fn is_well_formed(&self, response: &str) -> bool {
        let t = &self.tags;
        let mut rest = response.trim();
        if self.config.require_think {
            if !self.config.think_opened_in_prompt {
                let Some(after) = rest.strip_prefix(t.think_open.as_str()) else {
                    return false;
                };
                rest = after;
            }
            let Some((thinking, after)) = rest.split_once(t.think_close.as_str()) else {
                return false;
            };
            if t.any_in(thinking) {
                return false;
            }
            rest = after.trim_start();
        }
        if !self.config.require_answer {
            return !t.any_in(rest);
        }
        let Some(inner) = rest
            .strip_prefix(t.answer_open.as_str())
            .and_then(|r| r.strip_suffix(t.answer_close.as_str()))
        else {
            return false;
        };
        !inner.trim().is_empty() && !t.any_in(inner)
    }

    /// 1.0 when exactly one `open … close` block is present and holds no further tag.
    fn one_block(&self, text: &str, open: &str, close: &str) -> bool {
        if text.matches(open).count() != 1 || text.matches(close).count() != 1 {
            return false;
        }
        match (text.find(open), text.find(close)) {
            (Some(i), Some(j)) if i < j => !self.tags.any_in(&text[i + open.len()..j]),
            _ => false,
        }
    }

    fn score_one(&self, sample: &Sample) -> Scored<2> {
        let r = &sample.response;
        let t = &self.tags;
        let think = if self.config.think_opened_in_prompt {
            r.matches(t.think_close.as_str()).count() == 1 && !r.contains(t.think_open.as_str())
        } else {
            self.one_block(r, &t.think_open, &t.think_close)
        };
        let answer = self.one_block(r, &t.answer_open, &t.answer_close);
        Scored::new(
            Ok(Some(indicator(self.is_well_formed(r)))),
            [Some(indicator(think)), Some(indicator(answer))],
        )
    }
}

rule_reward!(Format, "format");

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(config: FormatConfig, response: &str) -> bool {
        Format::new(config).unwrap().is_well_formed(response)
    }

    fn default(response: &str) -> bool {
        ok(FormatConfig::default(), response)
    }

    #[test]
    fn accepts_the_expected_shape() {
        assert!(default("<think>2+1=3</think><answer>3</answer>"));
        assert!(default(
            "\n <think>\nlong\nthought\n</think>\n\n<answer> 3 </answer>\n"
        ));
        assert!(default("<think></think><answer>3</answer>"));
    }

    #[test]
    fn rejects_gaming_and_broken_shapes() {
        for response in [
            "",
            "3",
            "<answer>3</answer>",
            "<think>x</think>",
            "<think>x</think><answer></answer>",
            "<think>x</think><answer>   </answer>",
            "<answer>3</answer><think>x</think>",
            "<think>x</think>junk<answer>3</answer>",
            "<think>x</think><answer>3</answer>trailing",
            "preamble<think>x</think><answer>3</answer>",
            "<think>x</think><answer>3</answer><answer>4</answer>",
            "<think>x</think><think>y</think><answer>3</answer>",
            "<think><answer>3</answer></think><answer>3</answer>",
            "<think>x</think><answer><think>3</think></answer>",
            "<think>x<answer>3</answer>",
            "<think>x</think><answer>3",
            "<THINK>x</THINK><ANSWER>3</ANSWER>",
        ] {
            assert!(!default(response), "accepted `{response}`");
        }
    }

    #[test]
    fn optional_blocks_and_prompt_opened_thinking() {
        let answer_only = FormatConfig {
            require_think: false,
            ..FormatConfig::default()
        };
        assert!(ok(answer_only.clone(), "<answer>3</answer>"));
        assert!(!ok(answer_only, "<think>x</think><answer>3</answer>"));

        let think_only = FormatConfig {
            require_answer: false,
            ..FormatConfig::default()
        };
        assert!(ok(think_only.clone(), "<think>x</think> The answer is 3."));
        assert!(!ok(think_only, "<think>x</think> <think>y</think>"));

        let opened = FormatConfig {
            think_opened_in_prompt: true,
            ..FormatConfig::default()
        };
        assert!(ok(opened.clone(), "x\n</think>\n<answer>3</answer>"));
        assert!(!ok(opened, "<think>x</think><answer>3</answer>"));

        let custom = FormatConfig {
            think_tag: "reasoning".into(),
            answer_tag: "final".into(),
            ..FormatConfig::default()
        };
        assert!(ok(custom, "<reasoning>x</reasoning><final>3</final>"));
    }

    #[test]
    fn components_diagnose_each_block() {
        let reward = Format::new(FormatConfig::default()).unwrap();
        let out = crate::builtin::score_now(
            &reward,
            &[
                Sample::new("", "<think>x</think><answer>3</answer>"),
                Sample::new("", "<think>x</think>3"),
                Sample::new("", "<answer>3</answer> <answer>4</answer>"),
            ],
        );
        assert_eq!(
            out.scores,
            vec![Ok(Some(1.0)), Ok(Some(0.0)), Ok(Some(0.0))]
        );
        assert_eq!(
            out.components["think"],
            vec![Some(1.0), Some(1.0), Some(0.0)]
        );
        assert_eq!(
            out.components["answer"],
            vec![Some(1.0), Some(0.0), Some(0.0)]
        );
    }

    #[test]
    fn validate_names_the_field() {
        let cases = [
            (
                FormatConfig {
                    think_tag: "".into(),
                    ..FormatConfig::default()
                },
                "think_tag",
            ),
            (
                FormatConfig {
                    answer_tag: "a b".into(),
                    ..FormatConfig::default()
                },
                "answer_tag",
            ),
            (
                FormatConfig {
                    answer_tag: "think".into(),
                    ..FormatConfig::default()
                },
                "answer_tag",
            ),
            (
                FormatConfig {
                    require_think: false,
                    require_answer: false,
                    ..FormatConfig::default()
                },
                "require_answer",
            ),
            (
                FormatConfig {
                    require_think: false,
                    think_opened_in_prompt: true,
                    ..FormatConfig::default()
                },
                "think_opened_in_prompt",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid `{field}`")), "{err}");
        }
    }
}
