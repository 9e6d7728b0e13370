//! [`RewardRegistry`]: where user code plugs its own Rust rewards in.
//!
//! A binary registers each custom reward under a name, then builds the run's [`RewardSet`]
//! through the registry; a `[[rewards]]` entry with `kind = "custom", name = "…"` picks the
//! registered reward. The registry is an explicit value passed to the builder — no global
//! registration — so the wiring stays visible where the program starts.
//!
//! ```
//! use std::sync::Arc;
//! use temper_rewards::{BoxError, BoxFuture, Reward, RewardOutput, RewardRegistry, Sample};
//!
//! struct NonEmpty;
//! impl Reward for NonEmpty {
//!     fn name(&self) -> &str {
//!         "non_empty"
//!     }
//!     fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
//!         let scores = samples.iter().map(|s| Some(if s.response.trim().is_empty() { 0.0 } else { 1.0 }));
//!         let out = RewardOutput::from_options(scores);
//!         Box::pin(async move { Ok(out) })
//!     }
//! }
//!
//! let mut registry = RewardRegistry::new();
//! registry.register("non_empty", Arc::new(NonEmpty)).unwrap();
//! let config = serde_json::from_str(
//!     r#"{"rewards": [{"kind": "custom", "name": "non_empty"}, {"kind": "exact_match"}]}"#,
//! ).unwrap();
//! let set = registry.build(&config).unwrap();
//! let batch = set.score_blocking(&[Sample::new("", "3").with_reference("3")]).unwrap();
//! assert_eq!(batch.totals[0], Ok(Some(2.0)));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{RewardConfig, RewardSetConfig, is_valid_name};
use crate::error::{Result, RewardError};
use crate::reward::Reward;
use crate::set::{Member, RewardSet};

/// Custom rewards by name, and the builder of [`RewardSet`]s that may use them.
#[derive(Clone, Default)]
pub struct RewardRegistry {
    custom: BTreeMap<String, Arc<dyn Reward>>,
}

impl fmt::Debug for RewardRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewardRegistry")
            .field("custom", &self.custom.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl RewardRegistry {
    /// An empty registry: only built-in kinds.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `reward` under `name` (letters, digits, `_`, `-`, `.`); a name can be
    /// registered once.
    pub fn register(&mut self, name: impl Into<String>, reward: Arc<dyn Reward>) -> Result<()> {
        let name = name.into();
        if !is_valid_name(&name) {
            return Err(RewardError::config(
                "name",
                format!("{name:?}"),
                "must be non-empty letters, digits, `_`, `-` or `.`",
            ));
        }
        if self.custom.contains_key(&name) {
            return Err(RewardError::DuplicateCustom { name });
        }
        self.custom.insert(name, reward);
        Ok(())
    }

    /// [`register`](Self::register) in builder style.
    pub fn with(mut self, name: impl Into<String>, reward: Arc<dyn Reward>) -> Result<Self> {
        self.register(name, reward)?;
        Ok(self)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.custom.keys().map(String::as_str)
    }

    /// Validates the config and builds its set: built-in kinds from their options, custom
    /// kinds from this registry. Errors name the field (`rewards[i]...`).
    pub fn build(&self, config: &RewardSetConfig) -> Result<RewardSet> {
        config.validate()?;
        let mut members = Vec::with_capacity(config.rewards.len());
        for (i, entry) in config.rewards.iter().enumerate() {
            let name = entry.metric_name().to_string();
            let reward = match &entry.reward {
                RewardConfig::Custom(_) => self.custom.get(&name).cloned().ok_or_else(|| {
                    let registered = self.names().collect::<Vec<_>>().join(", ");
                    RewardError::UnknownCustom {
                        field: "name".into(),
                        name: name.clone(),
                        registered: if registered.is_empty() {
                            "none".into()
                        } else {
                            registered
                        },
                    }
                    .at(i)
                })?,
                builtin => builtin.build().map_err(|e| e.at(i))?,
            };
            members.push(Member {
                name,
                weight: entry.weight,
                timeout: Duration::try_from_secs_f64(entry.timeout_s).unwrap_or(Duration::MAX),
                gate: entry.gate,
                reward,
            });
        }
        Ok(RewardSet::from_members(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RewardEntry;
    use crate::error::BoxError;
    use crate::reward::{BoxFuture, RewardOutput};
    use crate::sample::Sample;

    struct Zero;

    impl Reward for Zero {
        fn name(&self) -> &str {
            "zero"
        }
        fn score<'a>(&'a self, s: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
            let out = RewardOutput::from_options(s.iter().map(|_| Some(0.0)));
            Box::pin(async move { Ok(out) })
        }
    }

    fn custom(name: &str) -> RewardSetConfig {
        RewardSetConfig {
            rewards: vec![
                RewardEntry::new(RewardConfig::Custom(Default::default())).with_name(name),
            ],
        }
    }

    #[test]
    fn names_are_checked_and_registered_once() {
        let mut registry = RewardRegistry::new();
        registry.register("zero", Arc::new(Zero)).unwrap();
        assert_eq!(
            registry.register("zero", Arc::new(Zero)),
            Err(RewardError::DuplicateCustom {
                name: "zero".into()
            })
        );
        assert!(registry.register("has space", Arc::new(Zero)).is_err());
        assert_eq!(registry.names().collect::<Vec<_>>(), ["zero"]);
    }

    #[test]
    fn unknown_custom_names_list_what_is_registered() {
        let err = RewardRegistry::new().build(&custom("mine")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`rewards[0].name`: no custom reward named `mine` is registered (registered: none)"
        );
        let registry = RewardRegistry::new().with("zero", Arc::new(Zero)).unwrap();
        let err = registry.build(&custom("mine")).unwrap_err().to_string();
        assert!(err.ends_with("(registered: zero)"), "{err}");
        assert_eq!(registry.build(&custom("zero")).unwrap().names(), ["zero"]);
    }
}
