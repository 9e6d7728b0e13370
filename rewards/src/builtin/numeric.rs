//! `numeric`: 1.0 when the response's final number equals the reference number within a
//! tolerance, else 0.0; not applicable without a reference; quarantined when the reference is
//! not a number (a data error, not the model's).
//!
//! **Which number.** In order:
//! 1. the content of the last `\boxed{…}`, which must be *one* number as a whole
//!    (`\boxed{3 \text{ or } 4}` is no answer);
//! 2. with `require_boxed = true`, nothing else: no box, no answer;
//! 3. the content of the last `<answer>…</answer>`: one number as a whole, else its last number;
//! 4. the last number anywhere in the response.
//!
//! So a response that hedges or lists ("3 or 4", "1, 2, 3, …, 9") is judged by its last number
//! only: listing candidates buys exactly one try, the last.
//!
//! **Number forms.** Integers, decimals (`.5`, `-2.25`), thousands separators (`1,234`,
//! `1{,}234`: groups of exactly three digits), fractions (`3/4`, `\frac{3}{4}`, `\dfrac`,
//! `\tfrac`, `\frac34`), scientific notation (`1e-3`, `1.2 \times 10^{3}`, `1.2\cdot10^3`,
//! `10^{-2}`), percentages (`50%`, `50\%`), with `$…$`, `\$`, `x = …`, `^\circ` and a trailing
//! period stripped. `NaN`, `inf` and numbers that overflow an `f64` (`1e999`) are not numbers.
//!
//! **Percentages.** `p%` means the number `p / 100` on either side: `50%` matches a reference
//! of `0.5` or `50%`, but not `50`. With `percent = "either"` a percentage may also be read as
//! the bare number, so `50%` matches `50` as well (for datasets whose reference to "what
//! percent…?" is written without the sign).
//!
//! **Tolerance.** `|answer − reference| ≤ abs_tol + rel_tol · |reference|`.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{Scored, indicator, rule_reward};
use crate::error::{Result, non_negative};
use crate::sample::Sample;
use crate::text::{last_boxed, last_tag_content, strip_boxed, strip_math_delimiters};

/// How a percentage compares to a bare number; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PercentRule {
    /// `p%` is `p / 100`.
    Fraction,
    /// `p%` is `p / 100` or `p`.
    Either,
}

/// Options of `kind = "numeric"`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumericConfig {
    /// Absolute tolerance [1e-6].
    pub abs_tol: f64,
    /// Relative tolerance, a fraction of `|reference|` [1e-6].
    pub rel_tol: f64,
    /// How percentages compare [default `fraction`].
    pub percent: PercentRule,
    /// Only a `\boxed{}` answer counts [false].
    pub require_boxed: bool,
}

impl Default for NumericConfig {
    fn default() -> Self {
        Self {
            abs_tol: 1e-6,
            rel_tol: 1e-6,
            percent: PercentRule::Fraction,
            require_boxed: false,
        }
    }
}

impl NumericConfig {
    /// Rejects negative or non-finite tolerances, naming the field.
    pub fn validate(&self) -> Result<()> {
        non_negative("abs_tol", self.abs_tol)?;
        non_negative("rel_tol", self.rel_tol)
    }
}

/// A parsed number: its value as written, and whether it carried a `%` (then `value` is `p`,
/// not `p / 100`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number {
    /// The value as written (50 for `50%`); always finite.
    pub value: f64,
    /// Whether it was written as a percentage.
    pub percent: bool,
}

impl Number {
    /// The values this number may stand for under `rule`.
    fn readings(self, rule: PercentRule) -> Vec<f64> {
        match (self.percent, rule) {
            (false, _) => vec![self.value],
            (true, PercentRule::Fraction) => vec![self.value / 100.0],
            (true, PercentRule::Either) => vec![self.value / 100.0, self.value],
        }
    }
}

/// Decimal with optional thousands groups: `1,234.5`, `12`, `.5`.
const DEC: &str = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+";

static PLAIN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^[+-]?(?:{DEC})(?:[eE][+-]?\d+)?$")).unwrap());
static FRAC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([+-]?)\\frac(?:\{([^{}]+)\}\{([^{}]+)\}|(\d)(\d))$").unwrap());
static SLASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^([+-]?(?:{DEC}))\s*/\s*([+-]?(?:{DEC}))$")).unwrap());
static SCI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^(?:([+-]?(?:{DEC}))\s*(?:\\times|\\cdot|×|\*)\s*)?10\s*\^\s*(?:\{{\s*([+-]?\d+)\s*\}}|([+-]?\d+))$"
    ))
    .unwrap()
});
static VAR_PREFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z]\w*\s*=\s*").unwrap());
/// Any number form, for finding the last one in free text (leftmost-first alternation: the
/// longer forms come first).
static ANY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"[+-]?\\frac(?:\{{[^{{}}]*\}}\{{[^{{}}]*\}}|\d\d)|[+-]?(?:{DEC})\s*(?:\\times|\\cdot|×)\s*10\s*\^\s*(?:\{{\s*[+-]?\d+\s*\}}|[+-]?\d+)|[+-]?(?:{DEC})\s*/\s*(?:{DEC})|[+-]?(?:{DEC})(?:[eE][+-]?\d+)?(?:\s*%)?"
    ))
    .unwrap()
});

/// LaTeX and typography that never changes a number's value, removed everywhere.
fn cleanup(s: &str) -> String {
    let mut t = s.to_string();
    for (from, to) in [
        ("\\left", ""),
        ("\\right", ""),
        ("\\!", ""),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("{,}", ","),
        ("\\%", "%"),
        ("\\$", ""),
        ("$", ""),
        ("\u{2212}", "-"),
        ("^{\\circ}", ""),
        ("^\\circ", ""),
        ("°", ""),
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
    ] {
        t = t.replace(from, to);
    }
    t
}

/// Parses `s` as exactly one number (see the module doc for the forms); `None` for anything
/// else, including non-finite results and zero denominators.
pub fn parse_number(s: &str) -> Option<Number> {
    let cleaned = cleanup(strip_math_delimiters(s));
    let mut t = cleaned.trim();
    t = t.strip_suffix('.').unwrap_or(t).trim();
    t = strip_boxed(t).trim();
    if let Some(m) = VAR_PREFIX.find(t) {
        t = &t[m.end()..];
    }
    let (t, percent) = match t.strip_suffix('%') {
        Some(rest) => (rest.trim_end(), true),
        None => (t, false),
    };
    let value = parse_value(t)?;
    value.is_finite().then_some(Number { value, percent })
}

/// The value of one number without a `%`.
fn parse_value(t: &str) -> Option<f64> {
    let plain = |s: &str| -> Option<f64> {
        let s = s.trim();
        if PLAIN.is_match(s) {
            s.replace(',', "").parse::<f64>().ok()
        } else {
            None
        }
    };
    let ratio = |num: f64, den: f64| (den != 0.0).then(|| num / den);
    if let Some(v) = plain(t) {
        return Some(v);
    }
    if let Some(c) = FRAC.captures(t) {
        let sign = if &c[1] == "-" { -1.0 } else { 1.0 };
        let (num, den) = match (c.get(2), c.get(3)) {
            (Some(n), Some(d)) => (plain(n.as_str())?, plain(d.as_str())?),
            _ => (plain(&c[4])?, plain(&c[5])?),
        };
        return ratio(num, den).map(|v| sign * v);
    }
    if let Some(c) = SLASH.captures(t) {
        return ratio(plain(&c[1])?, plain(&c[2])?);
    }
    if let Some(c) = SCI.captures(t) {
        let mantissa = c.get(1).map_or(Some(1.0), |m| plain(m.as_str()))?;
        let exponent: i32 = c.get(2).or(c.get(3))?.as_str().parse().ok()?;
        return Some(mantissa * 10f64.powi(exponent));
    }
    None
}

/// The last number in free text; `None` when there is none.
pub fn last_number(text: &str) -> Option<Number> {
    let cleaned = cleanup(text);
    ANY.find_iter(&cleaned)
        .filter_map(|m| {
            let mut token = m.as_str();
            // A sign glued to a word or digit is a hyphen or a minus between terms
            // ("COVID-19", "10-3"), not the number's sign.
            let before = cleaned[..m.start()].chars().next_back();
            if before.is_some_and(|c| c.is_alphanumeric() || c == ')' || c == '}') {
                token = token.trim_start_matches(['+', '-']);
            }
            parse_number(token)
        })
        .last()
}

/// The `numeric` reward.
#[derive(Debug, Clone)]
pub struct NumericMatch {
    config: NumericConfig,
}

impl NumericMatch {
    /// Component names: `parsed` (a number was found), `boxed` (it came from `\boxed{}`).
    pub const COMPONENTS: [&'static str; 2] = ["parsed", "boxed"];

    /// The reward with these options.
    pub fn new(config: NumericConfig) -> Self {
        Self { config }
    }

    /// The response's final answer and whether it came from a box; see the module doc.
    pub fn extract(&self, response: &str) -> (Option<Number>, bool) {
        if let Some(boxed) = last_boxed(response) {
            return (parse_number(boxed), true);
        }
        if self.config.require_boxed {
            return (None, false);
        }
        if let Some(tag) = last_tag_content(response, "answer") {
            return (parse_number(tag).or_else(|| last_number(tag)), false);
        }
        (last_number(response), false)
    }

    fn matches(&self, answer: Number, reference: Number) -> bool {
        let rule = self.config.percent;
        reference.readings(rule).into_iter().any(|r| {
            answer
                .readings(rule)
                .into_iter()
                .any(|a| (a - r).abs() <= self.config.abs_tol + self.config.rel_tol * r.abs())
        })
    }

    fn score_one(&self, sample: &Sample) -> Scored<2> {
        let Some(reference) = sample.reference.as_deref() else {
            return Scored::not_applicable();
        };
        let Some(reference) = parse_number(reference) else {
            return Scored::quarantined(format!("reference `{reference}` is not a number"));
        };
        let (answer, boxed) = self.extract(&sample.response);
        let correct = answer.is_some_and(|a| self.matches(a, reference));
        Scored::new(
            Ok(Some(indicator(correct))),
            [Some(indicator(answer.is_some())), Some(indicator(boxed))],
        )
    }
}

rule_reward!(NumericMatch, "numeric");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::score_one_response;

    fn value(s: &str) -> Option<f64> {
        parse_number(s).map(|n| n.readings(PercentRule::Fraction)[0])
    }

    fn score_with(config: NumericConfig, response: &str, reference: &str) -> f64 {
        score_one_response(&NumericMatch::new(config), response, Some(reference))
            .unwrap()
            .unwrap()
    }

    fn score(response: &str, reference: &str) -> f64 {
        score_with(NumericConfig::default(), response, reference)
    }

    #[test]
    fn parses_every_documented_form() {
        for (text, expected) in [
            ("3", 3.0),
            ("-2.25", -2.25),
            (".5", 0.5),
            ("+7", 7.0),
            ("1,234", 1234.0),
            ("1,234,567.5", 1234567.5),
            ("1{,}234", 1234.0),
            ("3/4", 0.75),
            ("-3 / 4", -0.75),
            (r"\frac{3}{4}", 0.75),
            (r"\dfrac{3}{4}", 0.75),
            (r"\tfrac{1}{8}", 0.125),
            (r"-\frac{1}{2}", -0.5),
            (r"\frac{-1}{2}", -0.5),
            (r"\frac34", 0.75),
            ("1e-3", 1e-3),
            ("2.5E+2", 250.0),
            (r"1.2 \times 10^{3}", 1200.0),
            (r"1.2\cdot10^3", 1200.0),
            ("1.2 × 10^-2", 0.012),
            ("10^{-2}", 0.01),
            ("50%", 0.5),
            (r"12.5\%", 0.125),
            (r"$\frac{1}{3}$", 1.0 / 3.0),
            (r"\$18.", 18.0),
            ("x = 5", 5.0),
            (r"30^\circ", 30.0),
            (r"\boxed{42}", 42.0),
            ("\u{2212}4", -4.0),
        ] {
            let got = value(text).unwrap_or_else(|| panic!("`{text}` did not parse"));
            assert!(
                (got - expected).abs() < 1e-12,
                "`{text}`: {got} != {expected}"
            );
        }
    }

    #[test]
    fn rejects_what_is_not_exactly_one_finite_number() {
        for text in [
            "",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "1e999",
            "10^{400}",
            "3 or 4",
            "3 4",
            "3,4",
            "1/0",
            r"\frac{1}{0}",
            "abc",
            "3x",
            "1,23",
            "..5",
            "e5",
        ] {
            assert_eq!(parse_number(text), None, "`{text}` parsed");
        }
    }

    #[test]
    fn last_number_in_free_text() {
        let last = |t: &str| last_number(t).map(|n| n.value);
        assert_eq!(last("so 12 apples and 30 pears, total 42."), Some(42.0));
        assert_eq!(last(r"it is $\frac{3}{4}$"), Some(0.75));
        assert_eq!(last("from 1,234 to 2,000"), Some(2000.0));
        assert_eq!(last("10-3 = 7"), Some(7.0));
        assert_eq!(last("COVID-19"), Some(19.0));
        assert_eq!(last("it dropped to -5"), Some(-5.0));
        assert_eq!(last(r"about 1.2 \times 10^{3} m"), Some(1200.0));
        assert_eq!(last("the answer is NaN"), None);
        assert_eq!(last(""), None);
    }

    #[test]
    fn matches_within_tolerance() {
        assert_eq!(score("The answer is 3", "3"), 1.0);
        assert_eq!(score("3.0000001", "3"), 1.0);
        assert_eq!(score("3.001", "3"), 0.0);
        assert_eq!(score(r"\boxed{\frac{1}{2}}", "0.5"), 1.0);
        assert_eq!(score("0.5", r"\frac{1}{2}"), 1.0);
        assert_eq!(score(r"\boxed{1,234}", "1234"), 1.0);
        assert_eq!(score("1e-3", "0.001"), 1.0);
        let loose = NumericConfig {
            abs_tol: 0.0,
            rel_tol: 0.01,
            ..NumericConfig::default()
        };
        assert_eq!(score_with(loose, "101", "100"), 1.0);
        assert_eq!(score_with(loose, "102", "100"), 0.0);
    }

    #[test]
    fn percent_rule_is_explicit() {
        assert_eq!(score("50%", "0.5"), 1.0);
        assert_eq!(score("50%", "50%"), 1.0);
        assert_eq!(score("0.5", "50%"), 1.0);
        assert_eq!(score("50%", "50"), 0.0);
        let either = NumericConfig {
            percent: PercentRule::Either,
            ..NumericConfig::default()
        };
        assert_eq!(score_with(either, "50%", "50"), 1.0);
        assert_eq!(score_with(either, "50%", "0.5"), 1.0);
        assert_eq!(score_with(either, "0.5", "50"), 0.0);
    }

    #[test]
    fn the_box_wins_and_must_hold_one_number() {
        assert_eq!(score(r"maybe 4, so \boxed{3}. Check: 4 - 1 = 3", "3"), 1.0);
        assert_eq!(score(r"\boxed{3} then 4", "4"), 0.0);
        assert_eq!(score(r"\boxed{4} no wait \boxed{3}", "3"), 1.0);
        // Gaming: hedging inside the box is no answer.
        assert_eq!(score(r"\boxed{3 \text{ or } 4}", "3"), 0.0);
        assert_eq!(score(r"\boxed{3, 4}", "4"), 0.0);
        let boxed_only = NumericConfig {
            require_boxed: true,
            ..NumericConfig::default()
        };
        assert_eq!(score_with(boxed_only, "3", "3"), 0.0);
        assert_eq!(score_with(boxed_only, r"\boxed{3}", "3"), 1.0);
    }

    #[test]
    fn hedging_and_listing_are_judged_by_the_last_number_only() {
        // "3 or 4" is judged by its last number, 4.
        assert_eq!(score("3 or 4", "3"), 0.0);
        assert_eq!(score("3 or 4", "4"), 1.0);
        // Listing every candidate buys one try, the last one.
        let listing = "1 2 3 4 5 6 7 8 9 10";
        assert_eq!(score(listing, "3"), 0.0);
        assert_eq!(score("<answer>1, 2, 3, 4, 5</answer>", "3"), 0.0);
        assert_eq!(score("<answer>3</answer> (or maybe 4)", "3"), 1.0);
    }

    #[test]
    fn empty_nan_and_huge_responses_score_zero() {
        assert_eq!(score("", "3"), 0.0);
        assert_eq!(score("I don't know", "0"), 0.0);
        assert_eq!(score("NaN", "0"), 0.0);
        assert_eq!(score("inf", "1e308"), 0.0);
        assert_eq!(score("1e999", "1e308"), 0.0);
        assert_eq!(score("1e308", "5"), 0.0);
        assert_eq!(score(&"9".repeat(400), "5"), 0.0);
        assert_eq!(
            score("12345678901234567890", "1.234567890123456789e19"),
            1.0
        );
    }

    #[test]
    fn reference_problems_are_explicit() {
        let reward = NumericMatch::new(NumericConfig::default());
        assert_eq!(score_one_response(&reward, "3", None), Ok(None));
        let bad = score_one_response(&reward, "3", Some("three")).unwrap_err();
        assert_eq!(bad.reason, "reference `three` is not a number");
    }

    #[test]
    fn validate_names_the_field() {
        let bad = NumericConfig {
            rel_tol: -1.0,
            ..NumericConfig::default()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.contains("`rel_tol`"), "{err}");
    }
}
