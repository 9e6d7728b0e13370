//! Options of `kind = "math"`.

use serde::{Deserialize, Serialize};

use crate::builtin::numeric::PercentRule;
use crate::error::{Result, RewardError, non_negative};

/// Where the final answer is looked for; see [`MathConfig::extract`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The last non-empty `\boxed{…}` / `\fbox{…}`.
    Boxed,
    /// The last `<answer>…</answer>`.
    AnswerTag,
    /// The rest of the line after the last "the answer is" / "final answer:" / "answer:" /
    /// "the correct option is".
    AnswerPhrase,
    /// The last `$…$`, `$$…$$`, `\(…\)` or `\[…\]`.
    MathDelimiters,
    /// The last non-empty line.
    LastLine,
}

/// An answer form, for [`MathConfig::forms`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// A single number (`3`, `-2.5`, `\frac{1}{2}`, `50\%`).
    Number,
    /// Any other arithmetic (`3\sqrt{2}`, `x^2 + 1`, `2\pi`).
    Expression,
    /// A tuple or list (`(1, 2)`, `1, 2`).
    Tuple,
    /// A set (`\{1, 2\}`, `1 \pm \sqrt{2}`).
    Set,
    /// An interval or a union of intervals.
    Interval,
    /// A matrix or a column vector.
    Matrix,
    /// An equation or an inequality (`x = 3`, `x > 2`).
    Relation,
    /// Words (`\text{Monday}`, `odd`).
    Text,
    /// A multiple-choice letter (`B`, `(B)`): a reference of one capital letter A–J.
    Choice,
}

/// Every form.
pub const ALL_FORMS: [Form; 9] = [
    Form::Number,
    Form::Expression,
    Form::Tuple,
    Form::Set,
    Form::Interval,
    Form::Matrix,
    Form::Relation,
    Form::Text,
    Form::Choice,
];

/// The default extraction order.
pub const DEFAULT_ORDER: [Source; 5] = [
    Source::Boxed,
    Source::AnswerTag,
    Source::AnswerPhrase,
    Source::LastLine,
    Source::MathDelimiters,
];

/// Options of `kind = "math"`. Unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MathConfig {
    /// Absolute tolerance of numeric comparisons [1e-9].
    pub abs_tol: f64,
    /// Relative tolerance, a fraction of the larger magnitude [1e-6].
    pub rel_tol: f64,
    /// Two integers are equal only when identical, whatever the tolerances (a relative
    /// tolerance of 1e-6 would make 1000001 equal 1000000) [true].
    pub exact_integers: bool,
    /// How a top-level percentage compares [default `either`: `50\%` equals `50` and `0.5`].
    pub percent: PercentRule,
    /// A reference written as a decimal with `k` fractional digits (`3.14`) also equals an
    /// answer that rounds to it at `k` digits (`\pi`) [false].
    pub round_to_reference: bool,
    /// `x = 3` equals only `x = 3`, not `3` (and `3` not `x = 3`) [false].
    pub strict_equations: bool,
    /// The answer forms accepted, in references and answers [all]. A reference of another form
    /// is quarantined; an answer of another form scores 0.
    pub forms: Vec<Form>,
    /// Where the answer is looked for, in order [`boxed`, `answer_tag`, `answer_phrase`,
    /// `last_line`, `math_delimiters`]. The first source present whose content reads as math
    /// wins; one that reads only as prose gives way to the next (unless the reference is text);
    /// hedging in the first source present is no answer.
    pub extract: Vec<Source>,
    /// More distinct boxed answers than this is listing candidates: no answer [3].
    pub max_distinct_boxes: usize,
    /// An extracted answer (or a reference) longer than this, in characters, is quarantined
    /// rather than parsed [1000].
    pub max_answer_chars: usize,
}

impl Default for MathConfig {
    fn default() -> Self {
        Self {
            abs_tol: 1e-9,
            rel_tol: 1e-6,
            exact_integers: true,
            percent: PercentRule::Either,
            round_to_reference: false,
            strict_equations: false,
            forms: ALL_FORMS.to_vec(),
            extract: DEFAULT_ORDER.to_vec(),
            max_distinct_boxes: 3,
            max_answer_chars: 1000,
        }
    }
}

impl MathConfig {
    /// Rejects bad tolerances, empty or repeated lists and absurd sizes, naming the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("abs_tol", self.abs_tol)?;
        non_negative("rel_tol", self.rel_tol)?;
        if self.forms.is_empty() {
            return Err(RewardError::config(
                "forms",
                "[]",
                "must name at least one form",
            ));
        }
        if self.extract.is_empty() {
            return Err(RewardError::config(
                "extract",
                "[]",
                "must name at least one source",
            ));
        }
        for (field, dup) in [
            ("forms", has_duplicate(&self.forms)),
            ("extract", has_duplicate(&self.extract)),
        ] {
            if let Some(d) = dup {
                return Err(RewardError::config(field, d, "must not repeat an entry"));
            }
        }
        if self.max_distinct_boxes == 0 {
            return Err(RewardError::config(
                "max_distinct_boxes",
                0,
                "must be at least 1",
            ));
        }
        if !(1..=100_000).contains(&self.max_answer_chars) {
            return Err(RewardError::config(
                "max_answer_chars",
                self.max_answer_chars,
                "must be between 1 and 100000",
            ));
        }
        Ok(())
    }
}

fn has_duplicate<T: PartialEq + std::fmt::Debug>(items: &[T]) -> Option<String> {
    items
        .iter()
        .enumerate()
        .find(|(i, x)| items[..*i].contains(x))
        .map(|(_, x)| format!("{x:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_the_field() {
        MathConfig::default().validate().unwrap();
        let cases = [
            (
                MathConfig {
                    rel_tol: -1.0,
                    ..MathConfig::default()
                },
                "`rel_tol`",
            ),
            (
                MathConfig {
                    forms: vec![],
                    ..MathConfig::default()
                },
                "`forms`",
            ),
            (
                MathConfig {
                    extract: vec![Source::Boxed, Source::Boxed],
                    ..MathConfig::default()
                },
                "`extract`",
            ),
            (
                MathConfig {
                    max_answer_chars: 0,
                    ..MathConfig::default()
                },
                "`max_answer_chars`",
            ),
            (
                MathConfig {
                    max_distinct_boxes: 0,
                    ..MathConfig::default()
                },
                "`max_distinct_boxes`",
            ),
        ];
        for (config, field) in cases {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(field), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = serde_json::from_str::<MathConfig>(r#"{"tolerance": 1}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `tolerance`"),
            "{err}"
        );
        let ok: MathConfig =
            serde_json::from_str(r#"{"extract": ["boxed", "last_line"], "forms": ["number"]}"#)
                .unwrap();
        assert_eq!(ok.extract, [Source::Boxed, Source::LastLine]);
    }
}
