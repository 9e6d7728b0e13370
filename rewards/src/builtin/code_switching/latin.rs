//! Language identification of Latin-script text, for telling an English sentence from a German
//! one (scripts alone cannot).
//!
//! # Choice of identifier
//!
//! Two maintained crates were measured on `langid_set.tsv` (next to this file): 60 short
//! clauses (2–11 words) in en, de, fr, es, it, pt, nl, written for Temper; both restricted to
//! those seven languages, release build, one core of the (busy, 2-core) development machine,
//! each clause detected 20 times:
//!
//! | crate | accuracy | time per call | first call | cost |
//! |---|---|---|---|---|
//! | `whatlang` 0.18 (allowlist) | 55/60 = 91.7 % | ~30 µs | 0.1 ms | small |
//! | `lingua` 1.8 (7 language features) | 60/60 = 100 % | ~315 µs | 18 ms (loads its n-gram models) | ~5 MB of binary per language, ~36 MB RSS |
//!
//! whatlang's misses were es→pt (twice), it→fr, pt→es and a two-word en→es: each one would
//! have penalised a clean response in full. **lingua** is used: a wrong language costs the
//! policy a whole sentence's penalty, while 0.3 ms per sentence is small next to generating it.
//! The seven languages are those compiled in ([`IDENTIFIED`]); a Latin-script expected language
//! outside them gets the script check only.
//!
//! Detection is restricted to the candidate languages (the expected one, the config's
//! `latin_candidates` and the Latin languages of `allow`): fewer look-alikes, fewer errors.

use lingua::{Language, LanguageDetector, LanguageDetectorBuilder};

/// The languages the identifier can tell apart, by ISO 639-1 code.
pub const IDENTIFIED: [(&str, Language); 7] = [
    ("en", Language::English),
    ("de", Language::German),
    ("fr", Language::French),
    ("es", Language::Spanish),
    ("it", Language::Italian),
    ("pt", Language::Portuguese),
    ("nl", Language::Dutch),
];

/// Whether `code` is one of the [`IDENTIFIED`] languages.
pub fn is_identified(code: &str) -> bool {
    IDENTIFIED.iter().any(|(c, _)| *c == code)
}

/// A language identifier restricted to a set of Latin-script languages.
pub struct LatinId {
    detector: Option<LanguageDetector>,
}

impl LatinId {
    /// An identifier choosing among these ISO 639-1 codes; codes outside [`IDENTIFIED`] are
    /// skipped (with none left, [`detect`](Self::detect) is always undecided).
    pub fn new<'a>(codes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut langs: Vec<Language> = codes
            .into_iter()
            .filter_map(|code| IDENTIFIED.iter().find(|(c, _)| *c == code).map(|&(_, l)| l))
            .collect();
        langs.sort();
        langs.dedup();
        let detector =
            (!langs.is_empty()).then(|| LanguageDetectorBuilder::from_languages(&langs).build());
        Self { detector }
    }

    /// The ISO 639-1 code of the most likely language of `text`; `None` when undecided.
    pub fn detect(&self, text: &str) -> Option<&'static str> {
        let language = self.detector.as_ref()?.detect_language_of(text)?;
        IDENTIFIED
            .iter()
            .find(|(_, l)| *l == language)
            .map(|&(code, _)| code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The labelled set the identifier was chosen on.
    fn labelled_set() -> Vec<(&'static str, &'static str)> {
        include_str!("langid_set.tsv")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| l.split_once('\t').expect("language<TAB>text"))
            .collect()
    }

    #[test]
    fn accuracy_on_the_labelled_set_stays_at_the_measured_level() {
        let set = labelled_set();
        assert!(set.len() >= 40);
        let id = LatinId::new(IDENTIFIED.map(|(c, _)| c));
        let misses: Vec<_> = set
            .iter()
            .filter(|(lang, text)| id.detect(text) != Some(*lang))
            .collect();
        let accuracy = 1.0 - misses.len() as f64 / set.len() as f64;
        // Measured 100 % (60/60); the margin allows a crate update to shift a clause or two.
        assert!(
            accuracy >= 0.95,
            "accuracy {accuracy:.3}, misses {misses:?}"
        );
    }

    #[test]
    fn restricts_detection_to_the_candidates() {
        let id = LatinId::new(["en", "de", "xx"]);
        assert_eq!(
            id.detect("Die Antwort ist drei, weil zwei plus eins drei ergibt."),
            Some("de")
        );
        assert_eq!(
            id.detect("The answer is three because two and one make three."),
            Some("en")
        );
        // French text can only be labelled one of the candidates, never French.
        assert_ne!(id.detect("La réponse est trois."), Some("fr"));
        assert_eq!(LatinId::new(["pl"]).detect("Odpowiedź to trzy."), None);
        assert!(is_identified("nl") && !is_identified("pl"));
    }
}
