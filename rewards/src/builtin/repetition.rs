//! `repetition`: a penalty for repeated n-grams, in `[−penalty, 0]`:
//!
//! ```text
//! units  = the response's words (lowercased, punctuation trimmed) or its non-space characters
//! grams  = the n-grams of consecutive units (there are |units| − n + 1)
//! score  = −penalty · (1 − |distinct grams| / |grams|)
//! ```
//!
//! (the form of open-r1's repetition penalty). A response shorter than `n` units has no
//! n-grams and scores 0. Lowercasing and trimming punctuation stop the cheapest evasions
//! (`The the THE`, `the. the, the!`); `unit = "chars"` is for scripts without spaces between
//! words (Chinese, Japanese), where a whole sentence would otherwise be one "word".
//!
//! What it cannot see: repetition diluted by enough fresh text. Pair it with `length` to keep
//! padding from paying off.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Scored, rule_reward};
use crate::error::{Result, RewardError, non_negative};
use crate::sample::Sample;

/// The unit an n-gram is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Whitespace-separated words, lowercased, with leading and trailing punctuation trimmed.
    Words,
    /// Characters, lowercased, whitespace skipped.
    Chars,
}

/// Options of `kind = "repetition"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RepetitionConfig {
    /// `n`, the n-gram length [default 3].
    pub ngram: usize,
    /// The largest penalty: a response made of one repeated n-gram scores close to `−penalty`
    /// [1.0].
    pub penalty: f64,
    /// What an n-gram is made of [default `words`].
    pub unit: Unit,
}

impl Default for RepetitionConfig {
    fn default() -> Self {
        Self {
            ngram: 3,
            penalty: 1.0,
            unit: Unit::Words,
        }
    }
}

impl RepetitionConfig {
    /// Rejects `ngram = 0` and a negative or non-finite penalty, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.ngram == 0 {
            return Err(RewardError::config("ngram", 0, "must be >= 1"));
        }
        non_negative("penalty", self.penalty)
    }
}

/// The fraction of `n`-grams of `units` that repeat an earlier one (`1 − distinct / total`);
/// 0 when there are fewer than `n` units.
pub fn repeated_fraction<T: std::hash::Hash + Eq>(units: &[T], n: usize) -> f64 {
    if n == 0 || units.len() < n {
        return 0.0;
    }
    let total = units.len() - n + 1;
    let distinct = units.windows(n).collect::<HashSet<_>>().len();
    1.0 - distinct as f64 / total as f64
}

/// The `repetition` reward.
#[derive(Debug, Clone)]
pub struct Repetition {
    config: RepetitionConfig,
}

impl Repetition {
    /// Component names: `repeated_fraction` (`1 − distinct / total` n-grams).
    pub const COMPONENTS: [&'static str; 1] = ["repeated_fraction"];

    /// The reward with these options.
    pub fn new(config: RepetitionConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    fn fraction(&self, response: &str) -> f64 {
        let lower = response.to_lowercase();
        match self.config.unit {
            Unit::Words => {
                let words: Vec<&str> = lower
                    .split_whitespace()
                    .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
                    .filter(|w| !w.is_empty())
                    .collect();
                repeated_fraction(&words, self.config.ngram)
            }
            Unit::Chars => {
                let chars: Vec<char> = lower.chars().filter(|c| !c.is_whitespace()).collect();
                repeated_fraction(&chars, self.config.ngram)
            }
        }
    }

    fn score_one(&self, sample: &Sample) -> Scored<1> {
        let fraction = self.fraction(&sample.response);
        Scored::new(Ok(Some(-self.config.penalty * fraction)), [Some(fraction)])
    }
}

rule_reward!(Repetition, "repetition");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_one_response;

    fn score(config: RepetitionConfig, response: &str) -> f64 {
        let reward = Repetition::new(config).unwrap();
        score_one_response(&reward, response, None)
            .unwrap()
            .unwrap()
    }

    fn default(response: &str) -> f64 {
        score(RepetitionConfig::default(), response)
    }

    #[test]
    fn no_repetition_no_penalty() {
        assert_eq!(default("the quick brown fox jumps over the lazy dog"), 0.0);
        assert_eq!(default(""), 0.0);
        assert_eq!(default("two words"), 0.0);
    }

    #[test]
    fn counts_repeated_ngrams_exactly() {
        // 6 words, 4 trigrams: "a b c", "b c a", "c a b", "a b c" → 3 distinct.
        assert_eq!(default("a b c a b c"), -(1.0 - 3.0 / 4.0));
        assert_eq!(repeated_fraction(&[1, 1, 1, 1], 1), 0.75);
        assert_eq!(repeated_fraction(&[1, 2], 3), 0.0);
    }

    #[test]
    fn a_loop_is_penalised_almost_fully() {
        let looping = "I will check again. ".repeat(50);
        let s = default(&looping);
        assert!(s < -0.9, "{s}");
        let heavy = RepetitionConfig {
            penalty: 2.0,
            ..RepetitionConfig::default()
        };
        assert!((score(heavy, &looping) - 2.0 * s).abs() < 1e-12);
    }

    #[test]
    fn case_and_punctuation_do_not_hide_repetition() {
        let plain = default("the cat sat the cat sat the cat sat");
        assert!(plain < 0.0);
        assert_eq!(default("The cat sat, THE CAT SAT. the cat sat!"), plain);
    }

    #[test]
    fn chars_unit_sees_repetition_without_spaces() {
        let chars = RepetitionConfig {
            unit: Unit::Chars,
            ..RepetitionConfig::default()
        };
        let looping = "我不知道".repeat(20);
        assert_eq!(default(&looping), 0.0); // one "word" for the words unit
        assert!(score(chars, &looping) < -0.9);
        assert_eq!(score(chars, "我今天很高兴见到你"), 0.0);
    }

    #[test]
    fn validate_names_the_field() {
        let err = RepetitionConfig {
            ngram: 0,
            ..RepetitionConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid `ngram`"));
        let err = RepetitionConfig {
            penalty: f64::NAN,
            ..RepetitionConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().starts_with("invalid `penalty`"));
    }
}
