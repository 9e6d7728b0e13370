//! `choice`: multiple-choice letter match. 1.0 when the response picks the reference letter,
//! 0.0 when it picks another letter or none, not applicable without a reference, quarantined
//! when the reference is not one of the configured letters.
//!
//! **Where the letter is read**, first match wins:
//! 1. the last `\boxed{…}`; 2. the last `<answer>…</answer>` (in either, an answer phrase
//!    inside is read as in 3 when the region does not start with the letter); 3. the rest of the line after the
//!    last "answer is" / "answer:" / "the correct (or right, best, final) option/choice is"
//!    (any case, an "option"/"choice" word after it skipped); 4. the last non-empty line.
//!
//! **What counts as picking a letter.** The region (after leading markup such as `(`, `**`,
//! `$`, `\text{`) must *start* with one allowed capital letter that is not the start of a word.
//! Then either nothing follows (`B`, `(B)`, `**B**.`), or a delimiter `)` `.` `:` `]` and the
//! option's text (`(B) Paris`, `B. A dog`), or — in regions 1–3 only — a lowercase word
//! (`B because …`). A lowercase letter counts only on its own (`b`, `(b)`).
//!
//! **Hedging earns nothing.** A second choice right after the first is no answer: `A or B`,
//! `A/B`, `A, B`, `A and B`, `A B C D`, `(A) or (B)`, `A. B.` all score 0.0; several boxes or
//! tags are judged by the last one only.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::{Result, RewardError};
use crate::sample::Sample;
use crate::text::{last_boxed, last_line, last_tag_content};

/// Options of `kind = "choice"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChoiceConfig {
    /// The allowed option letters, capitals, in any order [default `ABCDEFGHIJ`]. Narrow it to the
    /// dataset's options: fewer letters, fewer accidental matches.
    pub letters: String,
}

impl Default for ChoiceConfig {
    fn default() -> Self {
        Self {
            letters: "ABCDEFGHIJ".into(),
        }
    }
}

impl ChoiceConfig {
    /// Rejects an empty set, non-capital letters and repeats, naming the field.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: &str| Err(RewardError::config("letters", &self.letters, reason));
        if self.letters.is_empty() {
            return bad("must name at least one letter");
        }
        if !self.letters.chars().all(|c| c.is_ascii_uppercase()) {
            return bad("must be capital ASCII letters only, e.g. \"ABCD\"");
        }
        let mut seen = self.letters.chars().collect::<Vec<_>>();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != self.letters.len() {
            return bad("must not repeat a letter");
        }
        Ok(())
    }
}

/// Leading markup, then a letter, then the rest.
static LEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^(?:[\s(\[{*$]|\\text(?:bf)?\{|\\math(?:rm|bf)\{)*([A-Za-z])(.*)$").unwrap()
});
/// Closing markup and delimiters right after the letter.
static CLOSERS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[)\]}*$.:\s]*").unwrap());
/// After `B)` / `B.`: a second choice or a conjunction means hedging.
static HEDGE_AFTER_DELIMITER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:(?:or|and|nor)\b|[,/&;|]|\(?[A-Z](?:[).:\],]|\s*$))").unwrap()
});
static CONJUNCTION: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?:or|and|nor)\b").unwrap());
/// "answer is", "Answer:", "final answer is:", "the correct option is", "the right choice:"
/// (then an optional "option"/"choice" word: "the answer is option B").
static ANSWER_PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:answer|\b(?:correct|right|best|final)\s+(?:option|choice))(?:\s+is)?\s*[:：]?(?:\s*(?:option|choice)\b)?",
    )
    .unwrap()
});

/// The letter a region picks under the rules of the module doc; `prose_allowed` permits a
/// lowercase word after the letter (regions 1–3).
fn leading_choice(region: &str, letters: &str, prose_allowed: bool) -> Option<char> {
    let caps = LEAD.captures(region.trim())?;
    let letter = caps[1].chars().next()?;
    let rest = caps.get(2).map_or("", |m| m.as_str());
    if rest.starts_with(|c: char| c.is_alphanumeric()) {
        return None; // the start of a word, e.g. "Because"
    }
    let closers = CLOSERS.find(rest).map_or("", |m| m.as_str());
    let tail = rest[closers.len()..].trim();
    let picked = letter.to_ascii_uppercase();
    if !letters.contains(picked) {
        return None;
    }
    if tail.is_empty() {
        return Some(picked);
    }
    if letter.is_ascii_lowercase() {
        return None;
    }
    let delimited = closers.contains([')', '.', ':', ']']);
    let accepted = if delimited {
        !HEDGE_AFTER_DELIMITER.is_match(tail)
    } else {
        prose_allowed
            && tail.starts_with(|c: char| c.is_ascii_lowercase())
            && !CONJUNCTION.is_match(tail)
    };
    accepted.then_some(picked)
}

/// The letter on the rest of the line after the last answer phrase: `None` when there is no
/// phrase with text after it, `Some(None)` when that text picks no letter.
fn after_phrase(text: &str, letters: &str) -> Option<Option<char>> {
    let m = ANSWER_PHRASE.find_iter(text).last()?;
    let line = text[m.end()..].lines().next().unwrap_or("");
    (!line.trim().is_empty()).then(|| leading_choice(line, letters, true))
}

/// The `choice` reward.
#[derive(Debug, Clone)]
pub struct Choice {
    config: ChoiceConfig,
}

impl Choice {
    /// Component names: `answered` (a letter was picked).
    pub const COMPONENTS: [&'static str; 1] = ["answered"];

    /// The reward with these options.
    pub fn new(config: ChoiceConfig) -> Self {
        Self { config }
    }

    /// The letter the response picks, if any; see the module doc.
    pub fn extract(&self, response: &str) -> Option<char> {
        let letters = self.config.letters.as_str();
        if let Some(region) = last_boxed(response).or_else(|| last_tag_content(response, "answer"))
        {
            // `<answer>The correct option is (B).</answer>`: the phrase inside the region.
            return leading_choice(region, letters, true)
                .or_else(|| after_phrase(region, letters).flatten());
        }
        if let Some(picked) = after_phrase(response, letters) {
            return picked;
        }
        leading_choice(last_line(response), letters, false)
    }

    fn score_one(&self, sample: &Sample) -> Scored<1> {
        let Some(reference) = sample.reference.as_deref() else {
            return Scored::not_applicable();
        };
        let Some(expected) = leading_choice(reference, &self.config.letters, false) else {
            return Scored::quarantined(format!(
                "reference `{reference}` is not one of the letters {}",
                self.config.letters
            ));
        };
        let picked = self.extract(&sample.response);
        Scored::new(
            Ok(Some(indicator(picked == Some(expected)))),
            [Some(indicator(picked.is_some()))],
        )
    }
}

rule_reward!(Choice, "choice");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_one_response;

    fn pick(response: &str) -> Option<char> {
        Choice::new(ChoiceConfig::default()).extract(response)
    }

    #[test]
    fn reads_the_usual_answer_forms() {
        for response in [
            "B",
            "b",
            "(B)",
            "(b)",
            "B.",
            "**B**",
            "[B]",
            r"\boxed{B}",
            r"\boxed{\text{B}}",
            "$B$",
            "B) Paris",
            "(B) Paris",
            "B. A dog",
            "B: Paris",
            "<answer>B</answer>",
            "<answer>(B) because it is blue</answer>",
            "The answer is B.",
            "So the correct answer is **(B)**.",
            "Final answer: B because A is too small",
            "long reasoning about A and C\nAnswer: B",
            "reasoning\nthe answer is\n(B)",
        ] {
            assert_eq!(pick(response), Some('B'), "`{response}`");
        }
    }

    /// Regression: "The correct option is (B)." picked nothing (the phrase only knew "answer").
    #[test]
    fn the_correct_option_is_b_picks_b() {
        for response in [
            "The correct option is (B).",
            "So the correct choice is B",
            "The right option: B",
            "The best choice is (B) because it is blue",
            "The answer is option B.",
            "Final choice: (B)",
        ] {
            assert_eq!(pick(response), Some('B'), "`{response}`");
        }
        assert_eq!(pick(r"\boxed{The correct option is (B).}"), Some('B'));
        assert_eq!(pick("<answer>The answer is (B)</answer>"), Some('B'));
        assert_eq!(pick("<answer>The answer is A or B</answer>"), None);
        // Prose around a letter is still not a pick, and hedging still earns nothing.
        assert_eq!(pick("A good choice is B"), None);
        assert_eq!(pick("The correct option is A or B"), None);
    }

    #[test]
    fn hedging_and_listing_pick_nothing() {
        for response in [
            "A or B",
            "A/B",
            "A, B",
            "A and B",
            "A B C D",
            "A, B, C, D",
            "(A) or (B)",
            "(A) (B)",
            "A. B.",
            "B) or C)",
            "<answer>A or B</answer>",
            r"\boxed{A, B}",
            "The answer is A or B",
            "The answer is B or C.",
        ] {
            assert_eq!(pick(response), None, "`{response}`");
        }
    }

    #[test]
    fn words_and_prose_are_not_choices() {
        for response in [
            "Because it is blue",
            "A good choice is B",
            "I think it is B",
            "Cats",
            "",
            "The answer is unclear",
            "x",
        ] {
            assert_eq!(pick(response), None, "`{response}`");
        }
    }

    #[test]
    fn the_last_box_or_tag_counts() {
        assert_eq!(pick(r"\boxed{A} no, \boxed{C}"), Some('C'));
        assert_eq!(pick("<answer>A</answer><answer>D</answer>"), Some('D'));
        assert_eq!(pick("Answer: A. Wait. Answer: C"), Some('C'));
    }

    #[test]
    fn letters_outside_the_set_are_no_answer() {
        let abcd = Choice::new(ChoiceConfig {
            letters: "ABCD".into(),
        });
        assert_eq!(abcd.extract("E"), None);
        assert_eq!(abcd.extract("D"), Some('D'));
    }

    #[test]
    fn scores_and_reference_handling() {
        let reward = Choice::new(ChoiceConfig::default());
        let score = |r: &str, reference: Option<&str>| score_one_response(&reward, r, reference);
        assert_eq!(score("(B) Paris", Some("B")), Ok(Some(1.0)));
        assert_eq!(score("(B) Paris", Some("(b)")), Ok(Some(1.0)));
        assert_eq!(score("C", Some("B")), Ok(Some(0.0)));
        assert_eq!(score("A or B", Some("B")), Ok(Some(0.0)));
        assert_eq!(score("B", None), Ok(None));
        let bad = score("B", Some("Paris")).unwrap_err();
        assert_eq!(
            bad.reason,
            "reference `Paris` is not one of the letters ABCDEFGHIJ"
        );
    }

    #[test]
    fn validate_names_the_field() {
        for letters in ["", "abc", "AAB", "A B"] {
            let err = ChoiceConfig {
                letters: letters.into(),
            }
            .validate()
            .unwrap_err()
            .to_string();
            assert!(err.starts_with("invalid `letters`"), "{err}");
        }
        assert!(ChoiceConfig::default().validate().is_ok());
    }
}
