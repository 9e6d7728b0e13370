//! Scripts and languages: which writing system a letter belongs to ([`Family`], from its
//! Unicode `Script` property) and which family an ISO 639-1 language is written in
//! ([`language_family`]).
//!
//! Han and kana form one family, [`Family::Cjk`], because Japanese mixes them in every
//! sentence: a run of Han is Japanese, Chinese or Korean hanja depending on its neighbours and
//! on the expected language, which the reward decides (see the parent module).

use unicode_script::{Script, UnicodeScript};

/// A writing system, as far as code-switching is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// Latin letters (English, German, Vietnamese...).
    Latin,
    /// Han ideographs and Japanese kana (Hiragana, Katakana).
    Cjk,
    /// Korean Hangul.
    Hangul,
    /// Cyrillic.
    Cyrillic,
    /// Arabic (Arabic, Persian, Urdu).
    Arabic,
    /// Devanagari (Hindi, Marathi, Nepali).
    Devanagari,
    /// Greek.
    Greek,
    /// Hebrew.
    Hebrew,
    /// Thai.
    Thai,
    /// Any other script with letters (Bengali, Tamil, Georgian, ...), by its Unicode name.
    Other(Script),
}

impl Family {
    /// The names `allow` accepts, and their families.
    pub const NAMED: [(&'static str, Family); 9] = [
        ("latin", Family::Latin),
        ("cjk", Family::Cjk),
        ("hangul", Family::Hangul),
        ("cyrillic", Family::Cyrillic),
        ("arabic", Family::Arabic),
        ("devanagari", Family::Devanagari),
        ("greek", Family::Greek),
        ("hebrew", Family::Hebrew),
        ("thai", Family::Thai),
    ];

    /// The family of a script name as written in `allow` (`latin`, `hangul`, `cjk`, ...).
    pub fn from_name(name: &str) -> Option<Family> {
        Self::NAMED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, family)| family)
    }
}

/// A letter's family and whether it is kana; `None` for non-letters (digits, punctuation,
/// spaces, emoji) and letters of no particular script (`Common`, `Inherited`).
pub fn classify(c: char) -> Option<(Family, bool)> {
    if !c.is_alphabetic() {
        return None;
    }
    let family = match c.script() {
        Script::Latin => Family::Latin,
        Script::Han => Family::Cjk,
        Script::Hiragana | Script::Katakana => return Some((Family::Cjk, true)),
        Script::Hangul => Family::Hangul,
        Script::Cyrillic => Family::Cyrillic,
        Script::Arabic => Family::Arabic,
        Script::Devanagari => Family::Devanagari,
        Script::Greek => Family::Greek,
        Script::Hebrew => Family::Hebrew,
        Script::Thai => Family::Thai,
        Script::Common | Script::Inherited | Script::Unknown => return None,
        other => Family::Other(other),
    };
    Some((family, false))
}

/// The ISO 639-1 languages the reward knows and their family (Latin-script languages
/// outside [`latin::IDENTIFIED`](super::latin::IDENTIFIED) get the script check only).
const LANGUAGES: &[(&str, Family)] = &[
    ("en", Family::Latin),
    ("de", Family::Latin),
    ("fr", Family::Latin),
    ("es", Family::Latin),
    ("it", Family::Latin),
    ("pt", Family::Latin),
    ("nl", Family::Latin),
    ("pl", Family::Latin),
    ("sv", Family::Latin),
    ("da", Family::Latin),
    ("nb", Family::Latin),
    ("fi", Family::Latin),
    ("tr", Family::Latin),
    ("cs", Family::Latin),
    ("sk", Family::Latin),
    ("ro", Family::Latin),
    ("hu", Family::Latin),
    ("hr", Family::Latin),
    ("sl", Family::Latin),
    ("lt", Family::Latin),
    ("lv", Family::Latin),
    ("et", Family::Latin),
    ("id", Family::Latin),
    ("vi", Family::Latin),
    ("tl", Family::Latin),
    ("zh", Family::Cjk),
    ("ja", Family::Cjk),
    ("ko", Family::Hangul),
    ("ru", Family::Cyrillic),
    ("uk", Family::Cyrillic),
    ("bg", Family::Cyrillic),
    ("be", Family::Cyrillic),
    ("kk", Family::Cyrillic),
    ("mn", Family::Cyrillic),
    ("ar", Family::Arabic),
    ("fa", Family::Arabic),
    ("ur", Family::Arabic),
    ("hi", Family::Devanagari),
    ("mr", Family::Devanagari),
    ("ne", Family::Devanagari),
    ("el", Family::Greek),
    ("he", Family::Hebrew),
    ("yi", Family::Hebrew),
    ("th", Family::Thai),
];

/// The family an ISO 639-1 language is written in; `None` for codes the reward does not know.
pub fn language_family(code: &str) -> Option<Family> {
    LANGUAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|&(_, family)| family)
}

/// The ISO 639-1 codes the reward knows, comma-separated (for error messages).
pub fn known_languages() -> String {
    LANGUAGES
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_get_their_family_and_the_rest_none() {
        assert_eq!(classify('a'), Some((Family::Latin, false)));
        assert_eq!(classify('ß'), Some((Family::Latin, false)));
        assert_eq!(classify('한'), Some((Family::Hangul, false)));
        assert_eq!(classify('字'), Some((Family::Cjk, false)));
        assert_eq!(classify('か'), Some((Family::Cjk, true)));
        assert_eq!(classify('カ'), Some((Family::Cjk, true)));
        assert_eq!(classify('ж'), Some((Family::Cyrillic, false)));
        assert_eq!(classify('λ'), Some((Family::Greek, false)));
        assert_eq!(classify('ক'), Some((Family::Other(Script::Bengali), false)));
        for c in ['3', ' ', '.', '😀', '。', '-'] {
            assert_eq!(classify(c), None, "{c:?}");
        }
    }

    #[test]
    fn known_languages_have_a_family() {
        for (code, family) in LANGUAGES {
            assert_eq!(language_family(code), Some(*family));
        }
        assert_eq!(language_family("xx"), None);
        assert!(known_languages().starts_with("en, de"));
    }
}
