//! `regex`: `match_score` when a pattern matches the extracted text, else `miss_score`.
//!
//! The pattern is compiled once, when the set is built, so a bad pattern fails the config up
//! front. Rust's `regex` runs in linear time, so a response cannot stall the reward with
//! catastrophic backtracking. By default the pattern may match anywhere (`is_match`); set
//! `full_match = true` to require it to cover the whole extracted text, so that a response
//! cannot satisfy it by appending the right string to anything else.

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::{Result, RewardError, finite};
use crate::sample::Sample;
use crate::text::Extract;

/// Options of `kind = "regex"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegexConfig {
    /// The pattern, in Rust `regex` syntax (required). Inline flags work: `(?i)` for any case.
    pub pattern: String,
    /// The pattern must match the whole extracted text [false].
    #[serde(default)]
    pub full_match: bool,
    /// Which part of the response is tested [default `full`]; with `answer_tag` and no tag, a miss.
    #[serde(default = "full")]
    pub extract: Extract,
    /// Score on a match [1.0].
    #[serde(default = "one")]
    pub match_score: f64,
    /// Score on a miss [0.0].
    #[serde(default)]
    pub miss_score: f64,
}

fn full() -> Extract {
    Extract::Full
}

fn one() -> f64 {
    1.0
}

impl RegexConfig {
    /// A config with this pattern and default options.
    pub fn new(pattern: impl Into<String>) -> Self {
        Self {
            pattern: pattern.into(),
            full_match: false,
            extract: Extract::Full,
            match_score: 1.0,
            miss_score: 0.0,
        }
    }

    /// Rejects a pattern that does not compile and non-finite scores, naming the field.
    pub fn validate(&self) -> Result<()> {
        self.compile()?;
        finite("match_score", self.match_score)?;
        finite("miss_score", self.miss_score)
    }

    fn compile(&self) -> Result<Regex> {
        let pattern = if self.full_match {
            format!(r"\A(?:{})\z", self.pattern)
        } else {
            self.pattern.clone()
        };
        Regex::new(&pattern).map_err(|e| {
            RewardError::config("pattern", format!("{:?}", self.pattern), e.to_string())
        })
    }
}

/// The `regex` reward.
#[derive(Debug, Clone)]
pub struct RegexMatch {
    config: RegexConfig,
    regex: Regex,
}

impl RegexMatch {
    /// Component names: none (the score says it all).
    pub const COMPONENTS: [&'static str; 0] = [];

    /// Compiles the pattern.
    pub fn new(config: RegexConfig) -> Result<Self> {
        config.validate()?;
        let regex = config.compile()?;
        Ok(Self { config, regex })
    }

    fn score_one(&self, sample: &Sample) -> Scored<0> {
        let matched = self
            .config
            .extract
            .apply(&sample.response)
            .is_some_and(|text| self.regex.is_match(text));
        let c = &self.config;
        let score = c.miss_score + indicator(matched) * (c.match_score - c.miss_score);
        Scored::new(Ok(Some(score)), [])
    }
}

rule_reward!(RegexMatch, "regex");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_one_response;

    fn score(config: RegexConfig, response: &str) -> f64 {
        let reward = RegexMatch::new(config).unwrap();
        score_one_response(&reward, response, None)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn searches_by_default_and_ignores_the_reference() {
        let c = RegexConfig::new(r"\d+ apples");
        assert_eq!(score(c.clone(), "I have 3 apples."), 1.0);
        assert_eq!(score(c, "I have three apples."), 0.0);
    }

    #[test]
    fn full_match_stops_appending_to_junk() {
        let c = RegexConfig {
            full_match: true,
            ..RegexConfig::new(r"[A-D]")
        };
        assert_eq!(score(c.clone(), "B"), 1.0);
        assert_eq!(score(c.clone(), "  B \n"), 1.0); // the extracted text is trimmed
        assert_eq!(score(c.clone(), "ABCD"), 0.0);
        assert_eq!(score(c.clone(), "junk B"), 0.0);
        // An alternation in the pattern stays inside the anchors.
        let alt = RegexConfig {
            full_match: true,
            ..RegexConfig::new("yes|no")
        };
        assert_eq!(score(alt.clone(), "no"), 1.0);
        assert_eq!(score(alt, "yes and no"), 0.0);
    }

    #[test]
    fn extract_and_custom_scores() {
        let c = RegexConfig {
            extract: Extract::AnswerTag,
            match_score: 0.5,
            miss_score: -0.5,
            ..RegexConfig::new("^42$")
        };
        assert_eq!(score(c.clone(), "<answer>42</answer>"), 0.5);
        assert_eq!(score(c.clone(), "42"), -0.5); // no tag: a miss
        assert_eq!(score(c, "<answer>42</answer> 7"), 0.5);
    }

    #[test]
    fn catastrophic_patterns_stay_linear() {
        let c = RegexConfig {
            full_match: true,
            ..RegexConfig::new("(a+)+b")
        };
        assert_eq!(score(c, &"a".repeat(10_000)), 0.0);
    }

    #[test]
    fn a_bad_pattern_fails_up_front_naming_the_field() {
        let err = RegexMatch::new(RegexConfig::new("(unclosed"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("invalid `pattern` = \"(unclosed\""),
            "{err}"
        );
        let err = RegexConfig {
            match_score: f64::NAN,
            ..RegexConfig::new("x")
        }
        .validate()
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("invalid `match_score`"), "{err}");
    }
}
