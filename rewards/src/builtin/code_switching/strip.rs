//! What the code-switching check does not judge: code, math, quotations and URLs.
//!
//! [`strip_unjudged`] blanks, in this order, fenced code blocks (```` ``` ````, an unclosed fence
//! runs to the end), inline code (`` `…` ``), display math (`$$…$$`, `\[…\]`), inline math
//! (`\(…\)`, and `$…$` when the content neither starts nor ends with a space, so prices like
//! "$5 and $10" survive), quoted spans (`"…"`, `“…”`, `«…»`, `「…」`, `『…』`, each within a
//! line except the CJK brackets), URLs (`http(s)://…`, `ftp://…`, `www.…`) and markup tags
//! (`<think>`, `</answer>`; their content stays). A block becomes a
//! line break and an inline span a space, so the words on either side do not run together.

use std::sync::LazyLock;

use regex::Regex;

/// The patterns, in the order they are blanked; `true` marks block spans (replaced by `\n`).
static PATTERNS: LazyLock<Vec<(Regex, bool)>> = LazyLock::new(|| {
    [
        (r"(?s)```.*?(?:```|\z)", true),
        (r"`[^`\n]+`", false),
        (r"(?s)\$\$.+?\$\$", true),
        (r"(?s)\\\[.*?\\\]", true),
        (r"(?s)\\\(.*?\\\)", false),
        (r"\$[^\s$](?:[^$\n]*[^\s$])?\$", false),
        (r#""[^"\n]*""#, false),
        (r"“[^”\n]*”", false),
        (r"«[^»\n]*»", false),
        (r"「[^」]*」", false),
        (r"『[^』]*』", false),
        (r#"(?i)\b(?:https?|ftp)://[^\s<>"')\]]+"#, false),
        (r#"(?i)\bwww\.[^\s<>"')\]]+"#, false),
        // Markup tags (`<think>`, `</answer>`, `<br/>`), not their content.
        (r"</?[A-Za-z][A-Za-z0-9_-]*(?:\s[^<>]*)?/?>", false),
    ]
    .into_iter()
    .map(|(pattern, block)| (Regex::new(pattern).expect("valid pattern"), block))
    .collect()
});

/// `text` with code, math, quoted spans and URLs blanked out (see the module doc).
pub fn strip_unjudged(text: &str) -> String {
    let mut out = text.to_string();
    for (pattern, block) in PATTERNS.iter() {
        let replacement = if *block { "\n" } else { " " };
        if pattern.is_match(&out) {
            out = pattern.replace_all(&out, replacement).into_owned();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        strip_unjudged(s)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn code_blocks_and_inline_code_are_blanked() {
        assert_eq!(
            words("Run this:\n```python\nprint('hallo welt')\n```\nthen `ls -la` now"),
            ["Run", "this:", "then", "now"]
        );
        // An unclosed fence runs to the end.
        assert_eq!(words("see\n```\nopen code"), ["see"]);
    }

    #[test]
    fn math_in_every_delimiter_is_blanked() {
        assert_eq!(
            words("so $x+y$ and $$\\sum_i a_i$$ end"),
            ["so", "and", "end"]
        );
        assert_eq!(words(r"a \(x\) b \[y\] c"), ["a", "b", "c"]);
        // Prices are not math.
        assert_eq!(words("costs $5 and $10"), ["costs", "$5", "and", "$10"]);
    }

    #[test]
    fn quotes_and_urls_are_blanked() {
        assert_eq!(
            words("He said \"Guten Tag\" and «bonjour» and “hola” and 「こんにちは」."),
            ["He", "said", "and", "and", "and", "."]
        );
        assert_eq!(
            words("See https://example.com/a?b=c and www.test.org/x."),
            ["See", "and"]
        );
        assert_eq!(
            words("<think>denke nach</think><answer>3</answer><br/>"),
            ["denke", "nach", "3"]
        );
    }
}
