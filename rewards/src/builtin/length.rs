//! `length`: DAPO's soft overlong punishment (Yu et al., arXiv 2503.14476, Eq. 13), a penalty
//! that grows linearly over the last `overlong_buffer` tokens before the length limit:
//!
//! ```text
//! L = response tokens,  L_max = max_len,  B = overlong_buffer,  f = penalty_factor
//! R_len = 0                        if L ≤ L_max − B
//!       = f · ((L_max − B) − L) / B if L_max − B < L ≤ L_max
//!       = −f                       if L > L_max
//! ```
//!
//! so the penalty is 0 up to `L_max − B`, reaches `−f` at `L_max` and stays there. `B = 0` is a
//! hard cliff: `−f` only past `L_max`. It is meant to be *added* to a correctness reward (weight
//! 1.0, as in the paper, where `L_max` = 20480 and `B` = 4096).
//!
//! `max_len` defaults to the sample's own generation limit (`max_response_tokens`). A sample
//! without a token count, or without any limit, is quarantined rather than guessed at: the
//! count must come from the tokenizer, never from the text. Responses cannot game it by
//! padding: the count is of generated tokens, whatever they are.

use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::{Result, RewardError, non_negative};
use crate::sample::Sample;

/// Options of `kind = "length"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LengthConfig {
    /// `L_max`, in tokens [the sample's `max_response_tokens`].
    pub max_len: Option<usize>,
    /// `B`, the soft-penalty buffer before `L_max`, in tokens [0: a hard cliff at `L_max`].
    pub overlong_buffer: usize,
    /// `f`, the largest penalty (the score reaches `−f`) [1.0].
    pub penalty_factor: f64,
}

impl Default for LengthConfig {
    fn default() -> Self {
        Self {
            max_len: None,
            overlong_buffer: 0,
            penalty_factor: 1.0,
        }
    }
}

impl LengthConfig {
    /// Rejects a zero `max_len`, a buffer longer than `max_len` and a negative factor, naming
    /// the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("penalty_factor", self.penalty_factor)?;
        if let Some(max_len) = self.max_len {
            if max_len == 0 {
                return Err(RewardError::config("max_len", 0, "must be > 0"));
            }
            if self.overlong_buffer > max_len {
                return Err(RewardError::config(
                    "overlong_buffer",
                    self.overlong_buffer,
                    format!("must be <= `max_len` ({max_len})"),
                ));
            }
        }
        Ok(())
    }
}

/// DAPO's overlong penalty of a response of `len` tokens; see the module doc.
pub fn overlong_penalty(len: usize, max_len: usize, buffer: usize, factor: f64) -> f64 {
    let start = max_len.saturating_sub(buffer);
    if len <= start {
        0.0
    } else if len <= max_len {
        factor * (start as f64 - len as f64) / buffer as f64
    } else {
        -factor
    }
}

/// The `length` reward.
#[derive(Debug, Clone)]
pub struct Length {
    config: LengthConfig,
}

impl Length {
    /// Component names: `overlong` (1.0 when past `L_max − B`), `truncated` (1.0 when at or
    /// past `L_max`: the generation hit its limit).
    pub const COMPONENTS: [&'static str; 2] = ["overlong", "truncated"];

    /// The reward with these options.
    pub fn new(config: LengthConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    fn score_one(&self, sample: &Sample) -> Scored<2> {
        let Some(len) = sample.response_tokens else {
            return Scored::quarantined("sample has no `response_tokens` count");
        };
        let Some(max_len) = self.config.max_len.or(sample.max_response_tokens) else {
            return Scored::quarantined(
                "no `max_len` configured and the sample has no `max_response_tokens`",
            );
        };
        let buffer = self.config.overlong_buffer;
        if max_len == 0 || buffer > max_len {
            return Scored::quarantined(format!(
                "`overlong_buffer` {buffer} does not fit the sample's limit of {max_len} tokens"
            ));
        }
        let score = overlong_penalty(len, max_len, buffer, self.config.penalty_factor);
        Scored::new(
            Ok(Some(score)),
            [
                Some(indicator(len > max_len - buffer)),
                Some(indicator(len >= max_len)),
            ],
        )
    }
}

rule_reward!(Length, "length");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_now;

    #[test]
    fn dapo_paper_numbers() {
        // L_max = 20480, L_cache = 4096 (DAPO's setting): free up to 16384, −1 at 20480.
        let p = |len| overlong_penalty(len, 20480, 4096, 1.0);
        assert_eq!(p(0), 0.0);
        assert_eq!(p(16384), 0.0);
        assert_eq!(p(16385), -1.0 / 4096.0);
        assert_eq!(p(18432), -0.5);
        assert_eq!(p(20480), -1.0);
        assert_eq!(p(30000), -1.0);
    }

    #[test]
    fn is_linear_and_continuous_in_the_buffer() {
        for len in 91..=100 {
            let expected = -((len - 90) as f64) / 10.0 * 0.5;
            assert!((overlong_penalty(len, 100, 10, 0.5) - expected).abs() < 1e-12);
        }
        assert_eq!(overlong_penalty(90, 100, 10, 0.5), 0.0);
        assert_eq!(overlong_penalty(101, 100, 10, 0.5), -0.5);
    }

    #[test]
    fn zero_buffer_is_a_cliff() {
        assert_eq!(overlong_penalty(100, 100, 0, 1.0), 0.0);
        assert_eq!(overlong_penalty(101, 100, 0, 1.0), -1.0);
    }

    #[test]
    fn uses_the_sample_limit_and_quarantines_missing_counts() {
        let reward = Length::new(LengthConfig {
            overlong_buffer: 4,
            ..LengthConfig::default()
        })
        .unwrap();
        let mut no_count = Sample::new("", "text");
        no_count.max_response_tokens = Some(8);
        let mut no_limit = Sample::new("", "text");
        no_limit.response_tokens = Some(3);
        let out = score_now(
            &reward,
            &[
                Sample::new("", "short").with_tokens(4, 8),
                Sample::new("", "longer").with_tokens(6, 8),
                Sample::new("", "cut").with_tokens(8, 8),
                no_count,
                no_limit,
                Sample::new("", "tiny limit").with_tokens(1, 2),
            ],
        );
        assert_eq!(out.scores[0], Ok(Some(0.0)));
        assert_eq!(out.scores[1], Ok(Some(-0.5)));
        assert_eq!(out.scores[2], Ok(Some(-1.0)));
        assert!(
            out.scores[3]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("response_tokens")
        );
        assert!(
            out.scores[4]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("max_len")
        );
        assert!(
            out.scores[5]
                .as_ref()
                .unwrap_err()
                .reason
                .contains("overlong_buffer")
        );
        assert_eq!(
            out.components["overlong"],
            vec![Some(0.0), Some(1.0), Some(1.0), None, None, None]
        );
        assert_eq!(
            out.components["truncated"],
            vec![Some(0.0), Some(0.0), Some(1.0), None, None, None]
        );
    }

    #[test]
    fn padding_text_does_not_change_the_token_count() {
        // Only the token count matters: whitespace-stuffed text with few tokens is free.
        let reward = Length::new(LengthConfig {
            max_len: Some(10),
            overlong_buffer: 2,
            penalty_factor: 1.0,
        })
        .unwrap();
        let padded = Sample::new("", " ".repeat(10_000)).with_tokens(3, 10);
        assert_eq!(score_now(&reward, &[padded]).scores[0], Ok(Some(0.0)));
    }

    #[test]
    fn validate_names_the_field() {
        let err = |c: LengthConfig| c.validate().unwrap_err().to_string();
        assert!(
            err(LengthConfig {
                max_len: Some(0),
                ..LengthConfig::default()
            })
            .starts_with("invalid `max_len`")
        );
        assert!(
            err(LengthConfig {
                max_len: Some(10),
                overlong_buffer: 11,
                ..LengthConfig::default()
            })
            .starts_with("invalid `overlong_buffer`")
        );
        assert!(
            err(LengthConfig {
                penalty_factor: -1.0,
                ..LengthConfig::default()
            })
            .starts_with("invalid `penalty_factor`")
        );
    }
}
