//! Text helpers the rule-based rewards share: which part of a response is "the answer"
//! ([`Extract`]), `<tag>…</tag>` and `\boxed{…}` extraction, and answer normalisation.
//!
//! Every extractor takes the *last* occurrence: a model that writes several answers is judged
//! by its final one, so listing candidates never earns more than one try.

use serde::{Deserialize, Serialize};

/// Which part of the response a reward compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extract {
    /// The content of the last `<answer>…</answer>` if there is one, else the last non-empty
    /// line of the response.
    AnswerTagOrLastLine,
    /// The content of the last `<answer>…</answer>` if there is one, else the whole response.
    AnswerTagOrFull,
    /// Only the content of the last `<answer>…</answer>`; no tag means no answer.
    AnswerTag,
    /// The last non-empty line of the response.
    LastLine,
    /// The whole response.
    Full,
}

impl Extract {
    /// The extracted text, trimmed; `None` when the mode needs an answer tag and there is none.
    pub fn apply<'a>(&self, response: &'a str) -> Option<&'a str> {
        let tag = || last_tag_content(response, "answer");
        let text = match self {
            Self::AnswerTagOrLastLine => tag().or_else(|| Some(last_line(response)))?,
            Self::AnswerTagOrFull => tag().unwrap_or(response),
            Self::AnswerTag => tag()?,
            Self::LastLine => last_line(response),
            Self::Full => response,
        };
        Some(text.trim())
    }
}

/// The last non-empty line (the whole text when it has one line; `""` when it is blank).
pub fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
}

/// The content of the last closed `<tag>…</tag>` pair, untrimmed; `None` when there is none.
pub fn last_tag_content<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let end = text.rfind(&close)?;
    let start = text[..end].rfind(&open)? + open.len();
    Some(&text[start..end])
}

/// The content of the last `\boxed{…}` (or `\fbox{…}`), braces balanced; `None` when there is
/// none or its braces never close.
pub fn last_boxed(text: &str) -> Option<&str> {
    let start = ["\\boxed{", "\\fbox{"]
        .iter()
        .filter_map(|pat| text.rfind(pat).map(|i| i + pat.len()))
        .max()?;
    let end = closing_brace(text, start)?;
    Some(&text[start..end])
}

/// Byte index of the `}` that closes a group whose content starts at `start`.
pub(crate) fn closing_brace(text: &str, start: usize) -> Option<usize> {
    let mut depth = 1usize;
    for (i, c) in text[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(start + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `s` without a surrounding `\boxed{…}` covering all of it (after trimming); otherwise `s`.
pub fn strip_boxed(s: &str) -> &str {
    let t = s.trim();
    for pat in ["\\boxed{", "\\fbox{"] {
        if let Some(rest) = t.strip_prefix(pat) {
            let start = t.len() - rest.len();
            if closing_brace(t, start) == Some(t.len() - 1) {
                return &t[start..t.len() - 1];
            }
        }
    }
    t
}

/// `s` without surrounding math delimiters: `$…$`, `$$…$$`, `\(…\)`, `\[…\]`.
pub fn strip_math_delimiters(s: &str) -> &str {
    let t = s.trim();
    for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
        if t.len() >= open.len() + close.len()
            && let Some(inner) = t.strip_prefix(open).and_then(|r| r.strip_suffix(close))
        {
            return inner.trim();
        }
    }
    t
}

/// Normalises an answer for string comparison: trims, strips math delimiters, a surrounding
/// `\boxed{}` and one trailing period (repeatedly, so `$\boxed{3}$.` becomes `3`), then
/// collapses runs of whitespace to one space and lowercases.
///
/// Inner text is never dropped: `3 4` stays `3 4`, and `the answer is 3` stays as it is.
pub fn normalize(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let before = t;
        t = t.strip_suffix('.').unwrap_or(t).trim();
        t = strip_math_delimiters(t);
        t = strip_boxed(t).trim();
        if t == before {
            break;
        }
    }
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_tag_takes_the_last_closed_pair() {
        let r = "<answer>1</answer> wait <answer> 2 </answer>";
        assert_eq!(last_tag_content(r, "answer"), Some(" 2 "));
        assert_eq!(last_tag_content("<answer>3", "answer"), None);
        assert_eq!(last_tag_content("3</answer>", "answer"), None);
        assert_eq!(last_tag_content("no tags", "answer"), None);
    }

    #[test]
    fn boxed_balances_braces_and_takes_the_last() {
        assert_eq!(last_boxed(r"so \boxed{\frac{3}{4}}."), Some(r"\frac{3}{4}"));
        assert_eq!(last_boxed(r"\boxed{1} then \boxed{2}"), Some("2"));
        assert_eq!(last_boxed(r"\fbox{7}"), Some("7"));
        assert_eq!(last_boxed(r"\boxed{unclosed"), None);
        assert_eq!(last_boxed("none"), None);
    }

    #[test]
    fn strip_boxed_only_when_the_box_covers_everything() {
        assert_eq!(strip_boxed(r" \boxed{3} "), "3");
        assert_eq!(
            strip_boxed(r"\boxed{3} and \boxed{4}"),
            r"\boxed{3} and \boxed{4}"
        );
        assert_eq!(strip_boxed(r"\boxed{\frac{1}{2}}"), r"\frac{1}{2}");
    }

    #[test]
    fn normalize_strips_wrappers_but_keeps_content() {
        assert_eq!(normalize(" 3."), "3");
        assert_eq!(normalize(r"$\boxed{3}$."), "3");
        assert_eq!(normalize("  Paris \n  France "), "paris france");
        assert_eq!(normalize("3 4"), "3 4");
        assert_eq!(normalize("The answer is 3"), "the answer is 3");
        assert_eq!(normalize("$"), "$");
        assert_eq!(normalize(""), "");
    }

    #[test]
    fn extract_modes() {
        let r = "thinking...\n\nThe answer:\n 3 \n";
        assert_eq!(Extract::AnswerTagOrLastLine.apply(r), Some("3"));
        assert_eq!(Extract::AnswerTagOrFull.apply(r), Some(r.trim()));
        assert_eq!(Extract::AnswerTag.apply(r), None);
        assert_eq!(Extract::LastLine.apply(r), Some("3"));
        let tagged = "<answer> 4 </answer>\n5";
        assert_eq!(Extract::AnswerTagOrLastLine.apply(tagged), Some("4"));
        assert_eq!(Extract::AnswerTag.apply(tagged), Some("4"));
        assert_eq!(Extract::Full.apply(tagged), Some(tagged.trim()));
        assert_eq!(Extract::LastLine.apply(""), Some(""));
    }
}
