//! A custom Rust reward plugged into Temper.
//!
//! `Keywords` scores the share of required keywords (from the sample's metadata) that the
//! response mentions. It is registered on a `RewardRegistry` as `keywords`, a `RewardSet` is
//! built from TOML where `kind = "custom", name = "keywords"` picks it next to a built-in, and a
//! few samples are scored.
//!
//! Run it with `cargo run --example custom_reward`; `cargo test` runs its test.

use std::sync::Arc;

use temper_rewards::{
    BoxError, BoxFuture, Quarantine, Reward, RewardOutput, RewardRegistry, RewardSetConfig, Sample,
};

/// The share of `metadata.keywords` that appear in the response (case-insensitive); not
/// applicable without keywords; a `keywords` field that is not a list of strings quarantines
/// the sample (never a silent 0).
struct Keywords;

impl Keywords {
    fn score_one(sample: &Sample) -> Result<Option<f64>, Quarantine> {
        let Some(keywords) = sample.metadata.as_ref().and_then(|m| m.get("keywords")) else {
            return Ok(None);
        };
        let keywords: Vec<&str> = keywords
            .as_array()
            .and_then(|list| list.iter().map(|k| k.as_str()).collect())
            .ok_or_else(|| {
                Quarantine::new(format!(
                    "metadata `keywords` must be a list of strings, got {keywords}"
                ))
            })?;
        if keywords.is_empty() {
            return Ok(None);
        }
        let response = sample.response.to_lowercase();
        let found = keywords
            .iter()
            .filter(|k| response.contains(&k.to_lowercase()))
            .count();
        Ok(Some(found as f64 / keywords.len() as f64))
    }
}

impl Reward for Keywords {
    fn name(&self) -> &str {
        "keywords"
    }

    fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        // Cheap, CPU-only work: compute right away; slow work would `.await` or use spawn_blocking.
        let scores = samples.iter().map(Self::score_one).collect();
        Box::pin(async move { Ok(RewardOutput::new(scores)) })
    }
}

const CONFIG: &str = r#"
[[rewards]]
kind = "custom"
name = "keywords"
weight = 0.5

[[rewards]]
kind = "exact_match"
"#;

/// Builds the set and scores three samples; returns one line per sample.
fn run() -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut registry = RewardRegistry::new();
    registry.register("keywords", Arc::new(Keywords))?;
    let config: RewardSetConfig = toml::from_str(CONFIG)?;
    let set = registry.build(&config)?;
    let keywords = |k: &[&str]| serde_json::json!({ "keywords": k });
    let samples = [
        Sample::new(
            "Why is the sky blue?",
            "Rayleigh scattering of sunlight.\nRayleigh scattering",
        )
        .with_reference("Rayleigh scattering")
        .with_metadata(keywords(&["Rayleigh", "scattering", "wavelength"])),
        Sample::new("2 + 2?", "4").with_reference("4"),
        Sample::new("Name a prime.", "9").with_metadata(serde_json::json!({ "keywords": "prime" })),
    ];
    let batch = set.score_blocking(&samples)?;
    Ok(batch
        .totals
        .iter()
        .enumerate()
        .map(|(i, total)| match total {
            Ok(Some(t)) => format!("sample {i}: reward {t:.3}"),
            Ok(None) => format!("sample {i}: no reward applies"),
            Err(q) => format!("sample {i}: quarantined ({q})"),
        })
        .collect())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for line in run()? {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_custom_reward_is_scored_next_to_a_built_in() {
        let lines = super::run().unwrap();
        assert_eq!(
            lines,
            [
                // 0.5 · 2/3 keywords + 1.0 exact match
                "sample 0: reward 1.333",
                // no keywords: only exact_match applies
                "sample 1: reward 1.000",
                "sample 2: quarantined (reward `keywords`: metadata `keywords` must be a list of strings, got \"prime\")",
            ]
        );
    }
}
