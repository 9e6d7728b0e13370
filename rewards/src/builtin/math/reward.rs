//! The `math` reward: extraction, parsing and equivalence put together.

use std::sync::LazyLock;

use regex::Regex;

use super::config::{Form, MathConfig, Source};
use super::equiv::Equiv;
use super::eval::exact;
use super::expr::Expr;
use super::extract::{Extracted, extract};
use super::parse::{Limits, ParseError, is_hedge_word, is_math_word, normalize_text, parse_answer};
use crate::builtin::choice::{Choice, ChoiceConfig};
use crate::builtin::{Scored, indicator, rule_reward};
use crate::sample::Sample;
use crate::text::{last_boxed, strip_boxed, strip_math_delimiters};

/// Evaluation steps one comparison may take (a step is one tree node at one point).
pub const MAX_EVAL_STEPS: u64 = 200_000;

/// A reference that is one option letter: `B`, `(B)`, `\text{B}`.
static CHOICE_REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\(?\s*(?:\\text\{)?\s*([A-J])\s*\}?\s*\)?\.?$").unwrap());
/// A decimal reference, for `round_to_reference`.
static DECIMAL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^-?\d*\.(\d+)$").unwrap());
/// `3,5` / `-0,25`: a decimal comma when the part after it is not a thousands group.
static DECIMAL_COMMA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([+-]?\d+),(\d{1,2}|\d{4,})$").unwrap());
/// A negation before a trailing value: "it cannot be 5", "the answer is not 5".
static NEGATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:not|cannot|never|neither|nor|except|no|isn't|aren't|can't|won't|wrong|incorrect)\b|n't\b").unwrap()
});
/// A prose word (not a command name).
static WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\\A-Za-z])([A-Za-z]{2,})").unwrap());

/// The form of a parsed answer, for the `forms` option.
pub fn form_of(e: &Expr) -> Form {
    let mut vars = vec![];
    e.vars(&mut vars);
    if e.is_scalar() && vars.is_empty() && exact(e).is_some() {
        return Form::Number;
    }
    e.form()
}

/// A reference or answer as written, without a surrounding box, math delimiters or period.
fn unwrap(s: &str) -> &str {
    let mut t = s.trim();
    loop {
        let before = t;
        t = strip_math_delimiters(t);
        t = strip_boxed(t).trim();
        t = t.strip_suffix('.').map_or(t, str::trim);
        if t == before {
            return t;
        }
    }
}

/// The `math` reward.
#[derive(Debug, Clone)]
pub struct MathAnswer {
    config: MathConfig,
}

/// How the answer turned out, before comparison.
enum Answer {
    Parsed(Expr),
    None,
}

impl MathAnswer {
    /// Component names: `parsed` (an answer was found and read), `boxed` (it came from a box).
    pub const COMPONENTS: [&'static str; 2] = ["parsed", "boxed"];

    /// The reward with these options (validated by the config).
    pub fn new(config: MathConfig) -> Self {
        Self { config }
    }

    fn limits(&self) -> Limits {
        Limits::default()
    }

    /// Parses an extracted answer. A last line (or answer phrase) that is a sentence ending in
    /// math (`so the total is 42`) is read from after its last word, unless that word is a
    /// hedge (`3 or 4`) or the sentence has a negation (`it cannot be 5`).
    fn read(&self, text: &str, source: Source) -> Result<Answer, String> {
        let err = match parse_answer(text, self.limits()) {
            Ok(e) => return Ok(Answer::Parsed(e)),
            Err(ParseError::TooLarge(r)) => return Err(r),
            Err(err) => err,
        };
        if matches!(source, Source::LastLine | Source::AnswerPhrase)
            && let Some(answer) = self.read_tail(text)
        {
            return Ok(answer);
        }
        Ok(match err {
            ParseError::Hedge(_) => Answer::None,
            _ => Answer::Parsed(Expr::Text(normalize_text(text))),
        })
    }

    /// The math after the last prose word of a sentence; `Some(Answer::None)` when that word is
    /// a hedge or the sentence has a negation, `None` when there is no such tail.
    fn read_tail(&self, text: &str) -> Option<Answer> {
        let word = WORD
            .captures_iter(text)
            .filter_map(|c| c.get(1))
            .filter(|m| !is_math_word(m.as_str()))
            .last()?;
        if is_hedge_word(word.as_str()) || NEGATION.is_match(&text[..word.end()]) {
            return Some(Answer::None);
        }
        let tail = text[word.end()..].trim_start_matches([' ', ':', '=', ',']);
        if tail.trim().is_empty() {
            return None;
        }
        match parse_answer(tail, self.limits()) {
            Ok(Expr::Text(_)) | Err(_) => None,
            Ok(e) => Some(Answer::Parsed(e)),
        }
    }

    /// Scores a multiple-choice reference: the response must pick that letter, as the
    /// `choice` reward reads it (box, answer tag, answer phrase, last line; hedging picks none).
    fn score_choice(&self, letter: char, response: &str) -> Scored<2> {
        let picked = Choice::new(ChoiceConfig::default()).extract(response);
        let boxed = last_boxed(response).is_some();
        Scored::new(
            Ok(Some(indicator(picked == Some(letter)))),
            [Some(indicator(picked.is_some())), Some(indicator(boxed))],
        )
    }

    /// The score of one response against one reference.
    pub(crate) fn score_pair(&self, reference: &str, response: &str) -> Scored<2> {
        let cfg = &self.config;
        let reference = unwrap(reference);
        if reference.is_empty() {
            return Scored::quarantined("the reference is empty");
        }
        if reference.chars().count() > cfg.max_answer_chars {
            return Scored::quarantined(format!(
                "the reference is {} characters, over `max_answer_chars` = {}",
                reference.chars().count(),
                cfg.max_answer_chars
            ));
        }
        if cfg.forms.contains(&Form::Choice)
            && let Some(c) = CHOICE_REFERENCE.captures(reference)
        {
            let letter = c[1].chars().next().expect("one letter");
            return self.score_choice(letter, response);
        }
        let gold = match parse_answer(reference, self.limits()) {
            Ok(e) => e,
            Err(ParseError::TooLarge(r)) => {
                return Scored::quarantined(format!("reference `{reference}`: {r}"));
            }
            Err(_) => Expr::Text(normalize_text(reference)),
        };
        let gold_form = form_of(&gold);
        if !cfg.forms.contains(&gold_form) {
            return Scored::quarantined(format!(
                "reference `{reference}` is a {gold_form:?} answer, not one of `forms` {:?}",
                cfg.forms
            ));
        }
        // The first source present whose answer is math wins; a sentence of prose (a last line or
        // answer phrase that reads as no math) gives way to a later source, unless the reference
        // is text itself. Hedging at
        // the first source present is final: no second try.
        let mut prose: Option<(String, Source, Expr)> = None;
        let mut chosen: Option<(String, Source, Expr)> = None;
        let mut any = false;
        for source in &cfg.extract {
            let text = match extract(
                response,
                std::slice::from_ref(source),
                cfg.max_distinct_boxes,
            ) {
                Extracted::Found(text, _) => text,
                Extracted::Hedged(_) if !any => {
                    return Scored::new(Ok(Some(0.0)), [Some(0.0), Some(1.0)]);
                }
                Extracted::Hedged(_) | Extracted::Nothing => continue,
            };
            let chars = text.chars().count();
            if chars > cfg.max_answer_chars
                && matches!(source, Source::LastLine | Source::AnswerPhrase)
            {
                continue; // a long closing paragraph is prose, not a giant answer
            }
            if chars > cfg.max_answer_chars {
                return Scored::quarantined(format!(
                    "the extracted answer is {chars} characters, over `max_answer_chars` = {}",
                    cfg.max_answer_chars
                ));
            }
            let first = !any;
            any = true;
            match self.read(unwrap(&text), *source) {
                Ok(Answer::Parsed(e @ Expr::Text(_)))
                    if gold_form != Form::Text
                        && matches!(source, Source::LastLine | Source::AnswerPhrase) =>
                {
                    if prose.is_none() {
                        prose = Some((text, *source, e));
                    }
                }
                Ok(Answer::Parsed(e)) => {
                    chosen = Some((text, *source, e));
                    break;
                }
                Ok(Answer::None) if first => {
                    let boxed = Some(indicator(*source == Source::Boxed));
                    return Scored::new(Ok(Some(0.0)), [Some(0.0), boxed]);
                }
                Ok(Answer::None) => {}
                Err(r) => {
                    return Scored::quarantined(format!("the answer is too large to compare: {r}"));
                }
            }
        }
        let Some((text, source, answer)) = chosen.or(prose) else {
            return Scored::new(Ok(Some(0.0)), [Some(0.0), Some(0.0)]);
        };
        let boxed = Some(indicator(source == Source::Boxed));
        if !cfg.forms.contains(&form_of(&answer)) {
            return Scored::new(Ok(Some(0.0)), [Some(0.0), boxed]);
        }
        // A decimal comma, when unambiguous: `3,5` against a single-number reference.
        let answer = match (&answer, DECIMAL_COMMA.captures(unwrap(&text))) {
            (Expr::List(_), Some(c)) if gold_form == Form::Number => {
                match parse_answer(&format!("{}.{}", &c[1], &c[2]), self.limits()) {
                    Ok(e) => e,
                    Err(_) => answer,
                }
            }
            _ => answer,
        };
        let digits = DECIMAL.captures(reference).map(|c| c[1].len() as u32);
        match Equiv::new(cfg, digits, MAX_EVAL_STEPS).equal(&gold, &answer) {
            Ok(same) => Scored::new(Ok(Some(indicator(same))), [Some(1.0), boxed]),
            Err(_) => Scored::quarantined(format!(
                "comparing the answer took over {MAX_EVAL_STEPS} evaluation steps"
            )),
        }
    }

    fn score_one(&self, sample: &Sample) -> Scored<2> {
        match sample.reference.as_deref() {
            None => Scored::not_applicable(),
            Some(reference) => self.score_pair(reference, &sample.response),
        }
    }

    /// 1.0, 0.0, `None` (no reference) or the quarantine reason, for one pair; for tests and
    /// tools that score outside a [`RewardSet`](crate::RewardSet).
    pub fn verdict(&self, reference: &str, response: &str) -> crate::SampleScore {
        self.score_pair(reference, response).score
    }
}

rule_reward!(MathAnswer, "math");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::{score_now, score_one_response};

    fn reward() -> MathAnswer {
        MathAnswer::new(MathConfig::default())
    }

    #[test]
    fn references_decide_applicability_and_quarantine_with_a_reason() {
        let r = reward();
        assert_eq!(score_one_response(&r, "3", None), Ok(None));
        let empty = score_one_response(&r, "3", Some(" $ $ ")).unwrap_err();
        assert_eq!(empty.reason, "the reference is empty");
        let giant = format!(r"\boxed{{{}}}", "1+".repeat(1000));
        let huge = score_one_response(&r, &giant, Some("3")).unwrap_err();
        assert!(huge.reason.contains("max_answer_chars"), "{}", huge.reason);
        // A long closing paragraph is prose, not a giant answer: scored, not quarantined.
        let paragraph = format!("{} so the answer is 3", "we reason ".repeat(200));
        assert_eq!(score_one_response(&r, &paragraph, Some("3")), Ok(Some(1.0)));
        let deep = format!("{}3{}", "(".repeat(100), ")".repeat(100));
        let deep = score_one_response(&r, &deep, Some("3")).unwrap_err();
        assert!(
            deep.reason.contains("too large to compare"),
            "{}",
            deep.reason
        );
        let numbers_only = MathAnswer::new(MathConfig {
            forms: vec![Form::Number],
            ..MathConfig::default()
        });
        let form = score_one_response(&numbers_only, "x", Some("x + 1")).unwrap_err();
        assert!(
            form.reason.contains("not one of `forms`"),
            "{}",
            form.reason
        );
    }

    #[test]
    fn components_report_parsed_and_boxed() {
        let r = reward();
        let mut boxed = Sample::new("", r"so \boxed{3}");
        boxed.reference = Some("3".into());
        let mut hedged = Sample::new("", r"\boxed{1}, \boxed{2}");
        hedged.reference = Some("2".into());
        let mut line = Sample::new("", "it is 4");
        line.reference = Some("3".into());
        let out = score_now(&r, &[boxed, hedged, line]);
        assert_eq!(
            out.scores,
            vec![Ok(Some(1.0)), Ok(Some(0.0)), Ok(Some(0.0))]
        );
        assert_eq!(
            out.components["parsed"],
            vec![Some(1.0), Some(0.0), Some(1.0)]
        );
        assert_eq!(
            out.components["boxed"],
            vec![Some(1.0), Some(1.0), Some(0.0)]
        );
    }

    #[test]
    fn the_step_budget_is_a_quarantine() {
        // 1000 terms at 12 points each exceed no budget; a tiny budget must.
        let config = MathConfig::default();
        let parse = |s: &str| parse_answer(s, Limits::default()).unwrap();
        let big = parse(&vec!["x"; 900].join("+"));
        let mut tight = Equiv::new(&config, None, 1000);
        assert!(tight.equal(&big, &parse("900x")).is_err());
        let mut enough = Equiv::new(&config, None, MAX_EVAL_STEPS);
        assert_eq!(enough.equal(&big, &parse("900x")), Ok(true));
    }
}
