//! The learner crate's error type: every failure names the field or input it came from.

/// Errors from configuring and running the learner's objectives and advantage estimators.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LearnerError {
    /// A configuration value outside its domain, e.g. a negative clip range.
    #[error("invalid `{section}.{field}` = {value}: {reason}")]
    InvalidConfig {
        /// The config section: the objective's `kind` (`gspo`, `sapo`, ...) or the estimator's.
        section: &'static str,
        /// The field, e.g. `eps_low`.
        field: &'static str,
        /// The rejected value, as written.
        value: String,
        /// What the value must satisfy.
        reason: &'static str,
    },
    /// An input tensor or slice with the wrong shape.
    #[error("input `{name}` has shape {actual:?}, expected {expected:?}")]
    Shape {
        /// Name of the input (`logprobs`, `advantages`, ...).
        name: &'static str,
        /// Shape that was passed.
        actual: Vec<usize>,
        /// Shape the other inputs imply.
        expected: Vec<usize>,
    },
    /// An input that is invalid for another reason than its shape.
    #[error("invalid input `{name}`: {message}")]
    Input {
        /// Name of the input.
        name: &'static str,
        /// What is wrong and, where there is one, the fix.
        message: String,
    },
}

impl LearnerError {
    /// Shorthand for [`LearnerError::InvalidConfig`].
    pub(crate) fn config(
        section: &'static str,
        field: &'static str,
        value: impl ToString,
        reason: &'static str,
    ) -> Self {
        Self::InvalidConfig {
            section,
            field,
            value: value.to_string(),
            reason,
        }
    }

    /// Shorthand for [`LearnerError::Input`].
    pub(crate) fn input(name: &'static str, message: impl Into<String>) -> Self {
        Self::Input {
            name,
            message: message.into(),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = LearnerError> = std::result::Result<T, E>;

/// Checks that `value` is finite and `>= 0`.
pub(crate) fn non_negative(section: &'static str, field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(LearnerError::config(
            section,
            field,
            value,
            "must be finite and >= 0",
        ))
    }
}

/// Checks that `value` is finite and `> 0`.
pub(crate) fn positive(section: &'static str, field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(LearnerError::config(
            section,
            field,
            value,
            "must be finite and > 0",
        ))
    }
}
