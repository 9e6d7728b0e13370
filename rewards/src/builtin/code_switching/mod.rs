//! `code_switching`: a penalty for answering in another language or script than the prompt's.
//!
//! # Rule
//!
//! ```text
//! expected = config `language`, else sample.metadata["language"], else detected from the
//!            prompt (the last user message, else `prompt`)
//! text     = the response with code, math, quoted spans and URLs blanked (strip.rs)
//! letters  = the alphabetic characters of `text` (digits, punctuation, emoji do not count)
//! score    = −mixed_share,  mixed_share = letters judged foreign / letters
//! ```
//!
//! The entry's `weight` scales the penalty, so a set adds `−weight × mixed_share`; a clean
//! response scores 0, and a response with no letters left after stripping (empty, all digits,
//! all emoji, all code) is not applicable (`None`).
//!
//! # What counts as foreign
//!
//! The text is cut into sentences (at `. ! ? ; 。 ！ ？ ；` followed by a space or the end, and
//! at line breaks), and each sentence into *runs*: maximal stretches of letters of one script
//! family ([`Family`]; Han and kana are one family, and the characters between letters —
//! spaces, digits, punctuation — join the run around them). Per run:
//!
//! - **Latin** runs with fewer than `min_segment_chars` letters are neutral (counted as clean):
//!   an acronym, a variable name or a unit in a Korean answer is not a switch, and language
//!   identification of two words is noise. Longer runs are foreign when the expected language
//!   is not Latin-script; when it is, their language is identified ([`latin`], restricted to the
//!   candidate languages) and they are foreign when it differs from the expected one (an
//!   undecided run is clean). So identification is per sentence, not per word: a German loan
//!   word inside an English sentence is not a switch, a German sentence is.
//! - **CJK** runs are Japanese when they hold any kana, else Han-only. For `ja` both are
//!   clean (Japanese mixes Han and kana; a Han-only sentence is still Japanese); for `zh` a run
//!   with kana is foreign, all its letters (the kanji too); for `ko` a Han-only run of at most
//!   [`MAX_HANJA_RUN`] letters is hanja (clean), anything longer or with kana is foreign.
//! - Runs of any other family are clean when it is the expected language's family, else
//!   foreign.
//!
//! `allow` lists extra scripts (`latin`, `cjk`, `hangul`, `cyrillic`, `arabic`,
//! `devanagari`, `greek`, `hebrew`, `thai`) and languages (ISO 639-1) that are never foreign:
//! `allow = ["en"]` accepts English sentences in a Korean answer, `allow = ["latin"]` any Latin
//! text.
//!
//! When no expected language is configured or given, it is detected from the prompt: the family
//! with the most letters; for Latin the language of all its Latin text (undecided leaves only
//! the script check), for CJK `ja` when it has kana else `zh`. A prompt with no letters gives
//! nothing to compare with: not applicable.
//!
//! # Gaming and trade-offs
//!
//! Code, math and quotations are never judged, so a policy could hide a foreign-language
//! passage in a code block or quotes and not be penalised. That is intended: code identifiers,
//! formulas and quoted source text are legitimately in other scripts, and penalising them would
//! teach the policy to mangle code. Other rewards (format, judge) see those spans. Padding a
//! response with clean text dilutes the share; pair with `length` if that matters.

mod latin;
mod script;
mod strip;

use std::collections::{BTreeSet, HashSet};

use serde::{Deserialize, Serialize};

pub use latin::{IDENTIFIED, LatinId};
pub use script::{Family, classify, language_family};
pub use strip::strip_unjudged;

use super::{Scored, rule_reward};
use crate::error::{Result, RewardError};
use crate::sample::Sample;

/// The longest Han-only run that counts as hanja (clean) in a Korean response.
pub const MAX_HANJA_RUN: usize = 4;

/// Options of `kind = "code_switching"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodeSwitchingConfig {
    /// A fixed expected language (ISO 639-1, e.g. `"ko"`), overriding the metadata and the
    /// prompt [none].
    pub language: Option<String>,
    /// Latin runs shorter than this many letters are neutral [8].
    pub min_segment_chars: usize,
    /// Extra scripts and languages never counted as foreign [none].
    pub allow: Vec<String>,
    /// The Latin-script languages language identification chooses among, besides the expected
    /// one and those in `allow` [en, de, fr, es, it, pt, nl].
    pub latin_candidates: Vec<String>,
}

impl Default for CodeSwitchingConfig {
    fn default() -> Self {
        Self {
            language: None,
            min_segment_chars: 8,
            allow: Vec::new(),
            latin_candidates: ["en", "de", "fr", "es", "it", "pt", "nl"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl CodeSwitchingConfig {
    /// Rejects unknown language codes and script names, naming the field.
    pub fn validate(&self) -> Result<()> {
        let unknown = |field: &str, code: &str| {
            RewardError::config(
                field,
                format!("{code:?}"),
                format!(
                    "is not a language this reward knows (ISO 639-1: {})",
                    script::known_languages()
                ),
            )
        };
        if let Some(code) = &self.language
            && language_family(code).is_none()
        {
            return Err(unknown("language", code));
        }
        for code in &self.latin_candidates {
            if !latin::is_identified(code) {
                return Err(RewardError::config(
                    "latin_candidates",
                    format!("{code:?}"),
                    "must be ISO 639-1 codes the language identifier knows: en, de, fr, es, it, pt, nl",
                ));
            }
        }
        for entry in &self.allow {
            if Family::from_name(entry).is_none() && language_family(entry).is_none() {
                let scripts: Vec<&str> = Family::NAMED.iter().map(|(n, _)| *n).collect();
                return Err(RewardError::config(
                    "allow",
                    format!("{entry:?}"),
                    format!(
                        "must be a script ({}) or an ISO 639-1 language code",
                        scripts.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The language a response should be in: its script family and, when known, the language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The script family.
    pub family: Family,
    /// The ISO 639-1 code; `None` when only the script is known (a prompt in an undecided
    /// Latin language, in Cyrillic...).
    pub language: Option<String>,
}

impl Expected {
    /// The expectation for an ISO 639-1 code the reward knows.
    pub fn language(code: &str) -> Option<Self> {
        Some(Self {
            family: language_family(code)?,
            language: Some(code.to_string()),
        })
    }
}

/// One run: letters of one family within a sentence.
#[derive(Debug)]
struct Run {
    family: Family,
    letters: usize,
    has_kana: bool,
    text: String,
}

/// Cuts `text` into sentences and those into runs (see the module doc).
fn runs(text: &str) -> Vec<Run> {
    let mut out = Vec::new();
    for sentence in sentences(text) {
        let start = out.len();
        let mut pending = String::new(); // non-letters before the first letter of the sentence
        for c in sentence.chars() {
            match classify(c) {
                Some((family, kana)) => {
                    let same =
                        out.len() > start && out.last().is_some_and(|r: &Run| r.family == family);
                    if !same {
                        out.push(Run {
                            family,
                            letters: 0,
                            has_kana: false,
                            text: std::mem::take(&mut pending),
                        });
                    }
                    let run = out.last_mut().expect("pushed above");
                    run.letters += 1;
                    run.has_kana |= kana;
                    run.text.push(c);
                }
                None if out.len() > start => out.last_mut().expect("non-empty").text.push(c),
                None => pending.push(c),
            }
        }
    }
    out
}

/// Splits at line breaks and at sentence punctuation followed by whitespace or the end (so
/// `3.5` and `e.g.x` stay whole); CJK full stops always split.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, n)| n.is_whitespace());
        let split = match c {
            '\n' | '。' | '！' | '？' | '；' => true,
            '.' | '!' | '?' | ';' => next_is_space,
            _ => false,
        };
        if split {
            let end = i + c.len_utf8();
            out.push(&text[start..end]);
            start = end;
        }
    }
    out.push(&text[start..]);
    out.retain(|s| !s.trim().is_empty());
    out
}

/// The `code_switching` reward.
pub struct CodeSwitching {
    config: CodeSwitchingConfig,
    allowed_families: HashSet<Family>,
    allowed_languages: BTreeSet<String>,
}

impl std::fmt::Debug for CodeSwitching {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeSwitching")
            .field("config", &self.config)
            .finish()
    }
}

impl CodeSwitching {
    /// Component names: `mixed_share` (the share of letters judged foreign).
    pub const COMPONENTS: [&'static str; 1] = ["mixed_share"];

    /// The reward with these options (validated first).
    pub fn new(config: CodeSwitchingConfig) -> Result<Self> {
        config.validate()?;
        let allowed_families = config
            .allow
            .iter()
            .filter_map(|a| Family::from_name(a))
            .collect();
        let allowed_languages = config
            .allow
            .iter()
            .filter(|a| Family::from_name(a).is_none())
            .cloned()
            .collect();
        Ok(Self {
            config,
            allowed_families,
            allowed_languages,
        })
    }

    /// The expected language of a sample, or why it cannot be known. `Ok(None)`: the prompt
    /// has no letters to detect it from.
    pub fn expected(&self, sample: &Sample) -> std::result::Result<Option<Expected>, String> {
        if let Some(code) = &self.config.language {
            return Ok(Expected::language(code));
        }
        if let Some(value) = sample.metadata.as_ref().and_then(|m| m.get("language")) {
            let code = value
                .as_str()
                .ok_or_else(|| format!("metadata `language` must be a string, got {value}"))?;
            let code = code.trim().to_ascii_lowercase();
            return Expected::language(&code).map(Some).ok_or_else(|| {
                format!(
                    "metadata `language` = {code:?} is not a language this reward knows (ISO 639-1: {})",
                    script::known_languages()
                )
            });
        }
        let user = sample
            .messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.text());
        Ok(self.detect(user.as_deref().unwrap_or(&sample.prompt)))
    }

    /// The expected language detected from a prompt (see the module doc).
    pub fn detect(&self, prompt: &str) -> Option<Expected> {
        let runs = runs(&strip_unjudged(prompt));
        let mut counts: Vec<(Family, usize)> = Vec::new();
        for run in &runs {
            match counts.iter_mut().find(|(f, _)| *f == run.family) {
                Some((_, n)) => *n += run.letters,
                None => counts.push((run.family, run.letters)),
            }
        }
        let (family, _) = counts.into_iter().max_by_key(|&(_, n)| n)?;
        let language = match family {
            Family::Cjk => Some(
                if runs.iter().any(|r| r.has_kana) {
                    "ja"
                } else {
                    "zh"
                }
                .into(),
            ),
            Family::Hangul => Some("ko".into()),
            Family::Latin => {
                let text: Vec<&str> = runs
                    .iter()
                    .filter(|r| r.family == Family::Latin)
                    .map(|r| r.text.as_str())
                    .collect();
                self.latin_id(None)
                    .detect(&text.join(" "))
                    .map(String::from)
            }
            _ => None,
        };
        Some(Expected { family, language })
    }

    /// The identifier over the candidate languages, the expected one and the allowed ones.
    fn latin_id(&self, expected: Option<&str>) -> LatinId {
        let codes = self
            .config
            .latin_candidates
            .iter()
            .map(String::as_str)
            .chain(expected)
            .chain(self.allowed_languages.iter().map(String::as_str));
        LatinId::new(codes)
    }

    /// The share of `response`'s letters judged foreign; `None` when it has no letters after
    /// stripping.
    pub fn mixed_share(&self, expected: &Expected, response: &str) -> Option<f64> {
        let runs = runs(&strip_unjudged(response));
        let total: usize = runs.iter().map(|r| r.letters).sum();
        if total == 0 {
            return None;
        }
        let expected_lang = expected.language.as_deref();
        let needs_latin_id = runs
            .iter()
            .any(|r| r.family == Family::Latin && r.letters >= self.config.min_segment_chars);
        let latin = needs_latin_id
            .then(|| self.latin_id(expected_lang.filter(|_| expected.family == Family::Latin)));
        let foreign: usize = runs
            .iter()
            .filter(|run| self.is_foreign(run, expected, latin.as_ref()))
            .map(|run| run.letters)
            .sum();
        Some(foreign as f64 / total as f64)
    }

    fn is_foreign(&self, run: &Run, expected: &Expected, latin: Option<&LatinId>) -> bool {
        if self.allowed_families.contains(&run.family) {
            return false;
        }
        let expected_lang = expected.language.as_deref();
        match run.family {
            Family::Latin => {
                if run.letters < self.config.min_segment_chars {
                    return false;
                }
                let detected = latin.and_then(|id| id.detect(&run.text));
                if let Some(lang) = detected
                    && self.allowed_languages.contains(lang)
                {
                    return false;
                }
                if expected.family != Family::Latin {
                    return true;
                }
                // An expected language the identifier does not know gets the script check only.
                match (expected_lang.filter(|l| latin::is_identified(l)), detected) {
                    (Some(want), Some(got)) => want != got,
                    _ => false,
                }
            }
            Family::Cjk => {
                let allowed = |code: &str| self.allowed_languages.contains(code);
                if run.has_kana {
                    return !(expected_lang == Some("ja") || allowed("ja"));
                }
                match expected_lang {
                    Some("ja" | "zh") => false,
                    Some("ko") if run.letters <= MAX_HANJA_RUN => false,
                    _ => !(allowed("zh") || allowed("ja")),
                }
            }
            family => {
                family != expected.family
                    && !self
                        .allowed_languages
                        .iter()
                        .any(|code| language_family(code) == Some(family))
            }
        }
    }

    fn score_one(&self, sample: &Sample) -> Scored<1> {
        let expected = match self.expected(sample) {
            Err(reason) => return Scored::quarantined(reason),
            Ok(None) => return Scored::not_applicable(),
            Ok(Some(expected)) => expected,
        };
        match self.mixed_share(&expected, &sample.response) {
            None => Scored::not_applicable(),
            // `0.0 - share` rather than `-share`: a clean response scores +0, not −0.
            Some(share) => Scored::new(Ok(Some(0.0 - share)), [Some(share)]),
        }
    }
}

rule_reward!(CodeSwitching, "code_switching");

#[cfg(test)]
mod tests;
