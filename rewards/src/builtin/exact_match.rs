//! `exact_match`: 1.0 when the extracted answer equals the reference, else 0.0; not applicable
//! (`None`) without a reference.
//!
//! The answer is the content of the last `<answer>…</answer>` or, without one, the last
//! non-empty line ([`Extract::AnswerTagOrLastLine`]). With `normalize` (the default) both sides
//! go through [`normalize`]: trimmed, lowercased, whitespace collapsed,
//! one trailing period, math delimiters and a surrounding `\boxed{}` stripped. Nothing else is
//! removed: `"The answer is 3"` does not equal `"3"` (finding a number inside prose is the
//! `numeric` reward's job) and `"3 4"` does not equal `"3"`.

use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::Result;
use crate::sample::Sample;
use crate::text::{Extract, normalize};

/// Options of `kind = "exact_match"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExactMatchConfig {
    /// Compare normalised strings [true]; false compares the trimmed strings as they are.
    pub normalize: bool,
    /// Which part of the response is the answer [default `answer_tag_or_last_line`].
    pub extract: Extract,
}

impl Default for ExactMatchConfig {
    fn default() -> Self {
        Self {
            normalize: true,
            extract: Extract::AnswerTagOrLastLine,
        }
    }
}

impl ExactMatchConfig {
    /// Every value of the fields is valid; kept for symmetry with the other kinds.
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// The `exact_match` reward.
#[derive(Debug, Clone)]
pub struct ExactMatch {
    config: ExactMatchConfig,
}

impl ExactMatch {
    /// Component names: `answered` (1.0 when an answer could be extracted).
    pub const COMPONENTS: [&'static str; 1] = ["answered"];

    /// The reward with these options.
    pub fn new(config: ExactMatchConfig) -> Self {
        Self { config }
    }

    fn score_one(&self, sample: &Sample) -> Scored<1> {
        let Some(reference) = sample.reference.as_deref() else {
            return Scored::not_applicable();
        };
        let Some(answer) = self.config.extract.apply(&sample.response) else {
            return Scored::new(Ok(Some(0.0)), [Some(0.0)]);
        };
        let equal = if self.config.normalize {
            normalize(answer) == normalize(reference)
        } else {
            answer == reference.trim()
        };
        let answered = !answer.is_empty();
        Scored::new(
            Ok(Some(indicator(equal && answered))),
            [Some(indicator(answered))],
        )
    }
}

rule_reward!(ExactMatch, "exact_match");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_one_response;

    fn score(config: ExactMatchConfig, response: &str, reference: Option<&str>) -> Option<f64> {
        score_one_response(&ExactMatch::new(config), response, reference).unwrap()
    }

    fn default(response: &str, reference: &str) -> f64 {
        score(ExactMatchConfig::default(), response, Some(reference)).unwrap()
    }

    #[test]
    fn single_digit_answers_of_the_demo() {
        assert_eq!(default("3", "3"), 1.0);
        assert_eq!(default(" 3.", "3"), 1.0);
        assert_eq!(default("3\n", " 3 "), 1.0);
        assert_eq!(default("4", "3"), 0.0);
        assert_eq!(default("3 4", "3"), 0.0);
        assert_eq!(default("The answer is 3", "3"), 0.0);
        assert_eq!(default("33", "3"), 0.0);
        assert_eq!(default("3.5", "3"), 0.0);
    }

    #[test]
    fn normalisation_strips_wrappers_case_and_spacing() {
        assert_eq!(default(r"\boxed{3}", "3"), 1.0);
        assert_eq!(default(r"$\boxed{3}$.", "3"), 1.0);
        assert_eq!(default("  New   York ", "new york"), 1.0);
        assert_eq!(default("PARIS.", "Paris"), 1.0);
        let raw = ExactMatchConfig {
            normalize: false,
            ..ExactMatchConfig::default()
        };
        assert_eq!(score(raw, "PARIS", Some("Paris")), Some(0.0));
        assert_eq!(score(raw, " Paris \n", Some("Paris")), Some(1.0));
    }

    #[test]
    fn the_answer_tag_wins_and_the_last_one_counts() {
        assert_eq!(
            default("<think>maybe 4</think><answer>3</answer>", "3"),
            1.0
        );
        assert_eq!(default("reasoning\nmore reasoning\n3", "3"), 1.0);
        // Gaming: two answers, the last one is judged.
        assert_eq!(default("<answer>3</answer><answer>4</answer>", "3"), 0.0);
        assert_eq!(default("<answer>4</answer><answer>3</answer>", "3"), 1.0);
        // Gaming: the answer in the reasoning but a different final line.
        assert_eq!(default("it is 3\n4", "3"), 0.0);
    }

    #[test]
    fn gaming_by_listing_or_emptiness_earns_nothing() {
        assert_eq!(default("1 2 3 4 5 6 7 8 9", "3"), 0.0);
        assert_eq!(default("3, 4", "3"), 0.0);
        assert_eq!(default("<answer></answer>", ""), 0.0);
        assert_eq!(default("", ""), 0.0);
        assert_eq!(default("   ", "3"), 0.0);
    }

    #[test]
    fn no_reference_means_not_applicable() {
        assert_eq!(score(ExactMatchConfig::default(), "3", None), None);
    }

    #[test]
    fn answer_tag_only_mode_scores_zero_without_a_tag() {
        let tag_only = ExactMatchConfig {
            extract: Extract::AnswerTag,
            ..ExactMatchConfig::default()
        };
        assert_eq!(score(tag_only, "3", Some("3")), Some(0.0));
        assert_eq!(score(tag_only, "<answer>3</answer>", Some("3")), Some(1.0));
    }

    #[test]
    fn reports_whether_an_answer_was_found() {
        let out = crate::builtin::score_now(
            &ExactMatch::new(ExactMatchConfig::default()),
            &[
                Sample::new("", "3").with_reference("4"),
                Sample::new("", "").with_reference("4"),
                Sample::new("", "3"),
            ],
        );
        assert_eq!(out.components["answered"], vec![Some(1.0), Some(0.0), None]);
    }
}
