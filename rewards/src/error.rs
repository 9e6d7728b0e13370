//! The rewards crate's error type: configuration and build errors that name the field they come
//! from (`rewards[2].weight`), so a bad run config fails up front and says where.
//!
//! Scoring failures are *not* errors of this type: a reward that fails, times out or returns a
//! non-finite score quarantines the samples it was scoring (see [`Quarantine`](crate::Quarantine)),
//! and the batch is still scored.

/// The error a [`Reward`](crate::Reward) implementation returns when it cannot score a batch at
/// all (a sandbox is unreachable, a judge returned garbage...). Any error type converts into it
/// with `?`; the [`RewardSet`](crate::RewardSet) turns it into a quarantine of the whole batch.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Errors from validating a reward config, building a [`RewardSet`](crate::RewardSet) or starting
/// the runtime that scores a batch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RewardError {
    /// A configuration value outside its domain, e.g. a NaN weight or a regex that does not compile.
    #[error("invalid `{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The field, e.g. `rewards[2].weight` (just `weight` before the set adds the index).
        field: String,
        /// The rejected value, as written.
        value: String,
        /// What the value must satisfy.
        reason: String,
    },
    /// `kind = "custom"` with a `name` that no one registered in the [`RewardRegistry`](crate::RewardRegistry).
    #[error("`{field}`: no custom reward named `{name}` is registered (registered: {registered})")]
    UnknownCustom {
        /// The field, `rewards[i].name`.
        field: String,
        /// The name the config asked for.
        name: String,
        /// The registered names, comma-separated, or `none`.
        registered: String,
    },
    /// A second custom reward registered under a name already taken.
    #[error("a custom reward named `{name}` is already registered")]
    DuplicateCustom {
        /// The name.
        name: String,
    },
    /// The async runtime for [`RewardSet::score_blocking`](crate::RewardSet::score_blocking)
    /// could not start, or was asked for inside another runtime.
    #[error("cannot score rewards: {0}")]
    Runtime(String),
}

impl RewardError {
    /// Shorthand for [`RewardError::InvalidConfig`].
    pub(crate) fn config(
        field: impl Into<String>,
        value: impl ToString,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidConfig {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// The same error with its field placed under `rewards[index]`: `weight` becomes
    /// `rewards[2].weight`.
    pub(crate) fn at(self, index: usize) -> Self {
        let prefix = |field: String| format!("rewards[{index}].{field}");
        match self {
            Self::InvalidConfig {
                field,
                value,
                reason,
            } => Self::InvalidConfig {
                field: prefix(field),
                value,
                reason,
            },
            Self::UnknownCustom {
                field,
                name,
                registered,
            } => Self::UnknownCustom {
                field: prefix(field),
                name,
                registered,
            },
            other => other,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = RewardError> = std::result::Result<T, E>;

/// Checks that `value` is finite and `>= 0`.
pub(crate) fn non_negative(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(RewardError::config(field, value, "must be finite and >= 0"))
    }
}

/// Checks that `value` is finite.
pub(crate) fn finite(field: &str, value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(RewardError::config(field, value, "must be finite"))
    }
}

/// Checks that `value` is finite and `> 0`.
pub(crate) fn positive(field: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(RewardError::config(field, value, "must be finite and > 0"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_prefixes_the_field_with_the_reward_index() {
        let err = RewardError::config("weight", f64::NAN, "must be finite").at(2);
        assert_eq!(
            err.to_string(),
            "invalid `rewards[2].weight` = NaN: must be finite"
        );
    }

    #[test]
    fn domain_checks_reject_what_they_say() {
        assert!(non_negative("w", 0.0).is_ok());
        assert!(non_negative("w", -1e-9).is_err());
        assert!(finite("w", -3.0).is_ok());
        assert!(finite("w", f64::INFINITY).is_err());
        assert!(positive("w", 0.0).is_err());
        assert!(positive("w", f64::NAN).is_err());
    }
}
