//! Which part of a response is its final answer.
//!
//! [`extract`] returns what the first source of the given order that is present holds, whole —
//! no digits are ever pulled out of the middle of an expression. The reward calls it one source
//! at a time (default order: box, answer tag, answer phrase, last line, math delimiters) and
//! takes the first whose content reads as math; a last line or answer phrase that is only prose
//! gives way to the next source.
//!
//! - **Boxed**: the last non-empty `\boxed{…}` / `\fbox{…}` (empty boxes are ignored). Two
//!   different boxes separated only by punctuation or `or`/`and` (`\boxed{1}, \boxed{2}`), or
//!   more than `max_distinct_boxes` different boxes, are a list of candidates: no answer.
//! - **Answer tag**: the last `<answer>…</answer>`; inside it, an answer phrase if there is one,
//!   else all of it.
//! - **Answer phrase**: after the last "the answer is", "final answer:", "answer:", "the
//!   correct option is" (any case): the first `$…$` on the rest of the line if it starts there,
//!   else the rest of the sentence; when the phrase ends its line, the next non-empty line.
//! - **Math delimiters**: the last `$…$`, `$$…$$`, `\(…\)` or `\[…\]` (`\$` is a dollar sign).
//! - **Last line**: the last non-empty line.

use std::sync::LazyLock;

use regex::Regex;

use super::config::Source;
use crate::text::{last_line, last_tag_content, strip_math_delimiters};

/// What extraction found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Extracted {
    /// The answer text and where it came from.
    Found(String, Source),
    /// The response lists candidates (several boxes): no answer.
    Hedged(String),
    /// No source is present.
    Nothing,
}

static PHRASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\b(?:final\s+)?answer\s*(?:is\s*[:：]?|[:：=])|\b(?:correct|right|best)\s+(?:option|choice|answer)\s+(?:is\s*[:：]?|[:：]))\s*(?:(?:option|choice)\b)?",
    )
    .unwrap()
});

/// Between two boxes: only separators, so the boxes are a list of candidates.
static BETWEEN_CANDIDATES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:[\s,;.$&/|]|\\[(),;!]|\\quad|\\qquad|\\text\{\s*(?:or|and)\s*\}|\bor\b|\band\b)*$")
        .unwrap()
});

/// Every box's content with its byte span. Braces are matched in one pass (a stack), so a
/// response full of unclosed boxes costs linear time, not quadratic.
fn boxes(text: &str) -> Vec<(usize, usize, &str)> {
    let Some(first) = ["\\boxed{", "\\fbox{"]
        .iter()
        .filter_map(|p| text.find(p))
        .min()
    else {
        return vec![];
    };
    // closing[i - first] = the index of the `}` that closes the `{` at i.
    let mut closing = vec![usize::MAX; text.len() - first];
    let mut stack = vec![];
    for (i, b) in text.bytes().enumerate().skip(first) {
        match b {
            b'{' => stack.push(i),
            b'}' => {
                if let Some(open) = stack.pop() {
                    closing[open - first] = i;
                }
            }
            _ => {}
        }
    }
    let mut out = vec![];
    for pat in ["\\boxed{", "\\fbox{"] {
        for (start, _) in text.match_indices(pat) {
            let open = start + pat.len() - 1;
            let end = closing[open - first];
            if end != usize::MAX {
                out.push((start, end + 1, &text[open + 1..end]));
            }
        }
    }
    out.sort_by_key(|b| b.0);
    // A box inside a box (`\boxed{\boxed{10}}`) is part of the outer one.
    let mut outer: Vec<(usize, usize, &str)> = vec![];
    for b in out {
        if outer.last().is_none_or(|o| b.0 >= o.1) {
            outer.push(b);
        }
    }
    outer
}

fn from_boxes(text: &str, max_distinct: usize) -> Option<Extracted> {
    let all: Vec<_> = boxes(text)
        .into_iter()
        .filter(|b| !b.2.trim().is_empty())
        .collect();
    let last = all.last()?;
    let norm = |s: &str| s.split_whitespace().collect::<String>();
    let mut distinct: Vec<String> = all.iter().map(|b| norm(b.2)).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > max_distinct {
        return Some(Extracted::Hedged(format!(
            "{} different boxed answers",
            distinct.len()
        )));
    }
    if all.len() >= 2 {
        let prev = all[all.len() - 2];
        if norm(prev.2) != norm(last.2) && BETWEEN_CANDIDATES.is_match(&text[prev.1..last.0]) {
            return Some(Extracted::Hedged("boxed candidates side by side".into()));
        }
    }
    Some(Extracted::Found(last.2.trim().to_string(), Source::Boxed))
}

/// Math segments `$…$`, `$$…$$`, `\(…\)`, `\[…\]`, with the end of each.
fn math_segments(text: &str) -> Vec<(usize, &str)> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    // Delimiters with no closer after some point have none after any later point either:
    // skipping them keeps a response full of unclosed `\(` linear.
    let mut unclosed: Vec<&str> = vec![];
    while i < b.len() {
        let (open, close) = match b[i] {
            b'\\' if i + 1 < b.len() && b[i + 1] == b'$' => {
                i += 2;
                continue;
            }
            b'\\' if i + 1 < b.len() && b[i + 1] == b'(' => ("\\(", "\\)"),
            b'\\' if i + 1 < b.len() && b[i + 1] == b'[' => ("\\[", "\\]"),
            b'$' if i + 1 < b.len() && b[i + 1] == b'$' => ("$$", "$$"),
            b'$' => ("$", "$"),
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i + open.len();
        if unclosed.contains(&open) {
            i = start;
            continue;
        }
        let mut j = start;
        let mut found = None;
        while j + close.len() <= b.len() {
            if close == "$" && b[j] == b'\\' && j + 1 < b.len() {
                j += 2;
                continue;
            }
            if &text.as_bytes()[j..j + close.len()] == close.as_bytes() {
                found = Some(j);
                break;
            }
            j += 1;
        }
        match found {
            Some(end) => {
                if text.is_char_boundary(start) && text.is_char_boundary(end) {
                    out.push((end + close.len(), &text[start..end]));
                }
                i = end + close.len();
            }
            None => {
                unclosed.push(open);
                i = start;
            }
        }
    }
    out
}

/// The answer after the last answer phrase, if there is one.
fn after_phrase(text: &str) -> Option<String> {
    let m = PHRASE.find_iter(text).last()?;
    let rest = &text[m.end()..];
    let line = rest.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        let next = rest.lines().map(str::trim).find(|l| !l.is_empty())?;
        return Some(clean_sentence(next));
    }
    if let Some(&(_, first)) = math_segments(line).first()
        && (line.starts_with('$') || line.starts_with("\\(") || line.starts_with("\\["))
    {
        return Some(first.trim().to_string());
    }
    Some(clean_sentence(line))
}

/// A sentence up to its end: `. ` followed by more text ends it; a trailing period goes.
fn clean_sentence(s: &str) -> String {
    let s = s.trim();
    let cut = s
        .char_indices()
        .find(|&(i, c)| c == '.' && s[i + 1..].starts_with(' '))
        .map_or(s, |(i, _)| &s[..i]);
    let cut = cut.trim().trim_end_matches('.').trim();
    strip_math_delimiters(cut).to_string()
}

/// The final answer of `response` under `order`.
pub fn extract(response: &str, order: &[Source], max_distinct_boxes: usize) -> Extracted {
    for source in order {
        let found = match source {
            Source::Boxed => {
                if let Some(e) = from_boxes(response, max_distinct_boxes) {
                    return e;
                }
                None
            }
            Source::AnswerTag => last_tag_content(response, "answer")
                .map(|t| after_phrase(t).unwrap_or_else(|| clean_sentence(t))),
            Source::AnswerPhrase => after_phrase(response),
            Source::MathDelimiters => math_segments(response)
                .into_iter()
                .max_by_key(|s| s.0)
                .map(|s| s.1.trim().to_string()),
            Source::LastLine => {
                let line = last_line(response).trim();
                (!line.is_empty()).then(|| clean_sentence(line))
            }
        };
        if let Some(text) = found {
            return Extracted::Found(text, *source);
        }
    }
    Extracted::Nothing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builtin::math::config::DEFAULT_ORDER;

    fn ex(s: &str) -> Extracted {
        extract(s, &DEFAULT_ORDER, 3)
    }

    fn found(s: &str) -> String {
        match ex(s) {
            Extracted::Found(t, _) => t,
            other => panic!("`{s}`: {other:?}"),
        }
    }

    #[test]
    fn sources_in_order() {
        assert_eq!(found("so \\boxed{\\frac{1}{2}}."), "\\frac{1}{2}");
        assert_eq!(found("\\boxed{4} no wait, \\boxed{3}"), "3");
        assert_eq!(found("\\boxed{} and the answer is 5"), "5");
        assert_eq!(found("<answer>The answer is 7</answer>"), "7");
        assert_eq!(found("Thus the answer is $x = 3$ since it works."), "x = 3");
        assert_eq!(found("The final answer: 12. Done"), "12");
        let math = extract(
            "we get $a$ and then $\\frac{3}{4}$ here",
            &[Source::MathDelimiters],
            3,
        );
        assert_eq!(
            math,
            Extracted::Found("\\frac{3}{4}".into(), Source::MathDelimiters)
        );
        assert_eq!(found("It costs \\$5.\n42"), "42");
        assert_eq!(found("reasoning\nthe answer is\n(B)"), "(B)");
        assert_eq!(found("The correct option is (B)."), "(B)");
    }

    #[test]
    fn unclosed_delimiters_cost_linear_time() {
        // 200 000 unclosed openers: quadratic scanning would take minutes.
        let boxes = "\\boxed{".repeat(25_000) + "\\boxed{7}";
        assert_eq!(found(&boxes), "7");
        let parens = "\\( ".repeat(50_000) + "$8$";
        assert_eq!(
            extract(&parens, &[Source::MathDelimiters], 3),
            Extracted::Found("8".into(), Source::MathDelimiters)
        );
    }

    #[test]
    fn candidate_boxes_are_hedging() {
        assert!(matches!(ex("\\boxed{1}, \\boxed{2}"), Extracted::Hedged(_)));
        assert!(matches!(
            ex("\\boxed{1} or \\boxed{2}"),
            Extracted::Hedged(_)
        ));
        assert!(matches!(
            ex("\\boxed{1} a \\boxed{2} b \\boxed{3} c \\boxed{4}"),
            Extracted::Hedged(_)
        ));
        assert_eq!(found("\\boxed{3}, \\boxed{3}"), "3");
        assert_eq!(found("\\boxed{\\boxed{10}}"), "\\boxed{10}");
    }
}
