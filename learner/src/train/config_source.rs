//! Where a config key came from: the user's file and line, or the `--set` override that set it,
//! and typed-parse errors in words. The typed parse reads the merged TOML tree (file plus
//! overrides), which has no positions; the full key path of an error is recovered from the
//! TOML library's error, then looked up in the user's own text.

use serde::Deserialize;
use temper_rewards::RewardEntry;
use toml::de::{DeTable, DeValue};

use super::config::ConfigError;

/// The text a config was read from, with the overrides applied on top of it.
pub(crate) struct Source<'a> {
    pub text: &'a str,
    pub origin: &'a str,
    pub overrides: &'a [String],
}

impl Source<'_> {
    /// A typed-parse error of the merged `tree`: full key, where it was set, message in words.
    pub fn type_error(&self, tree: &toml::Table, error: &toml::de::Error) -> ConfigError {
        let mut key = error_keys(error);
        let mut message = error.message().to_string();
        // `[[rewards]]` entries are read by their own deserialiser, behind the array index:
        // find the failing entry and its field.
        if key.first().map(String::as_str) == Some("rewards")
            && let Some(toml::Value::Array(entries)) = tree.get("rewards")
        {
            key.truncate(1);
            for (i, entry) in entries.iter().enumerate() {
                if let Err(e) = RewardEntry::deserialize(entry.clone()) {
                    key.push(i.to_string());
                    message = e.message().to_string();
                    if let Some(field) = quoted_after(&message, "field `") {
                        key.push(field);
                    }
                    break;
                }
            }
        }
        for marker in ["unknown field `", "missing field `"] {
            if let Some(field) = quoted_after(&message, marker)
                && key.last() != Some(&field)
            {
                key.push(field);
            }
        }
        if message.starts_with("unknown variant `")
            && key.last().map(String::as_str) != Some("kind")
        {
            key.push("kind".to_string());
        }
        let at = self.place_of(&key);
        ConfigError::Type {
            key: key.join("."),
            at,
            message: in_words(&message),
        }
    }

    /// Adds where the key of a validation error was set.
    pub fn place(&self, error: ConfigError) -> ConfigError {
        match error {
            ConfigError::Invalid {
                key,
                value,
                at: None,
                message,
            } => {
                // A composite key ("rl.prompts_per_step × rl.group_size") is placed by its first.
                let first = key.split_whitespace().next().unwrap_or(&key);
                let path: Vec<String> = first.split('.').map(String::from).collect();
                ConfigError::Invalid {
                    at: Some(self.place_of(&path)),
                    key,
                    value,
                    message,
                }
            }
            other => other,
        }
    }

    /// `--set KEY=VALUE` when an override set `path` (or a table around it, or a key inside
    /// it), else `FILE line N` of the deepest part of `path` the file holds, else the file.
    fn place_of(&self, path: &[String]) -> String {
        for raw in self.overrides.iter().rev() {
            let Some((key, _)) = raw.split_once('=') else {
                continue;
            };
            let set: Vec<&str> = key.trim().split('.').collect();
            let shared = set
                .iter()
                .zip(path)
                .take_while(|(a, b)| **a == b.as_str())
                .count();
            if shared == set.len().min(path.len()) && shared > 0 {
                return format!("--set {raw}");
            }
        }
        match line_of(self.text, path) {
            Some(line) => format!("{} line {line}", self.origin),
            None => self.origin.to_string(),
        }
    }
}

/// The key path the TOML library attached to an error (`in `a.b`` in its message).
fn error_keys(error: &toml::de::Error) -> Vec<String> {
    error
        .to_string()
        .lines()
        .find_map(|line| {
            line.strip_prefix("in `")?
                .strip_suffix('`')
                .map(String::from)
        })
        .map(|keys| keys.split('.').map(String::from).collect())
        .unwrap_or_default()
}

/// The text between `marker` and the next backtick.
fn quoted_after(message: &str, marker: &str) -> Option<String> {
    let rest = &message[message.find(marker)? + marker.len()..];
    Some(rest[..rest.find('`')?].to_string())
}

/// 1-based line of the deepest part of `path` (numeric segments index arrays) in `text`.
pub(crate) fn line_of(text: &str, path: &[String]) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut offset = None;
    let mut table: Option<&DeTable> = Some(root.get_ref());
    let mut array: Option<&[toml::Spanned<DeValue>]> = None;
    for segment in path {
        let value = if let Some(t) = table {
            let Some((k, v)) = t.iter().find(|(k, _)| k.get_ref() == segment) else {
                break;
            };
            offset = Some(k.span().start);
            v
        } else if let Some(items) = array {
            let Some(v) = segment.parse::<usize>().ok().and_then(|i| items.get(i)) else {
                break;
            };
            offset = Some(v.span().start);
            v
        } else {
            break;
        };
        (table, array) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), None),
            DeValue::Array(a) => (None, Some(&a[..])),
            _ => (None, None),
        };
    }
    let offset = offset?;
    Some(1 + text[..offset.min(text.len())].matches('\n').count())
}

/// serde's Rust type names in words a config author reads.
fn in_words(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, words) in [
        ("expected usize", "expected a whole number ≥ 0"),
        ("expected u64", "expected a whole number ≥ 0"),
        ("expected u32", "expected a whole number ≥ 0"),
        ("expected u16", "expected a whole number ≥ 0"),
        ("expected u8", "expected a whole number ≥ 0"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("floating point", "the number"),
        ("integer", "the whole number"),
    ] {
        out = out.replace(rust, words);
    }
    for (prefix, words) in [
        (
            "expected internally tagged enum ",
            "expected a table with a `kind` key",
        ),
        ("expected struct ", "expected a table"),
        ("expected enum ", "expected one of the documented names"),
    ] {
        while let Some(at) = out.find(prefix) {
            let rest = &out[at + prefix.len()..];
            let name_len = rest
                .find(|c: char| !c.is_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            out = format!("{}{words}{}", &out[..at], &rest[name_len..]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            in_words("invalid type: string \"ten\", expected usize"),
            "invalid type: string \"ten\", expected a whole number ≥ 0"
        );
        assert_eq!(
            in_words("invalid type: integer `3`, expected internally tagged enum PolicyLoss"),
            "invalid type: the whole number `3`, expected a table with a `kind` key"
        );
    }

    #[test]
    fn lines_are_found_through_tables_and_arrays_of_tables() {
        let text = "seed = 0\n[sft]\nsteps = 3\n[rl]\nsteps = 4\n[[rewards]]\nkind = \"a\"\n\
                    [[rewards]]\nkind = \"b\"\nweight = 2\n";
        let path = |s: &str| s.split('.').map(String::from).collect::<Vec<_>>();
        assert_eq!(line_of(text, &path("sft.steps")), Some(3));
        assert_eq!(line_of(text, &path("rl.steps")), Some(5));
        assert_eq!(line_of(text, &path("rewards.1.weight")), Some(10));
        // A key the file lacks: its table.
        assert_eq!(line_of(text, &path("rl.group_size")), Some(4));
    }
}
