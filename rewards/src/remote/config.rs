//! Options of `kind = "remote"`: where the reward service is and how patiently to call it.
//!
//! ```toml
//! [[rewards]]
//! kind = "remote"
//! name = "length_py"
//! url = "http://127.0.0.1:50051"
//! token_env = "TEMPER_REWARD_TOKEN"   # the variable holding the shared token, never the token
//! call_timeout_s = 30                 # each RPC attempt
//! retries = 2                         # on UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED
//! timeout_s = 120                     # the whole batch, retries included (a field every reward has)
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use temper_proto::{DEFAULT_MAX_MESSAGE_BYTES, RetryPolicy};

use crate::error::{Result, RewardError, positive};

/// The smallest `max_message_bytes` accepted: below it not even a short sample fits.
pub const MIN_MESSAGE_BYTES: usize = 1024;

/// Options of `kind = "remote"`. The entry's shared `timeout_s` bounds the whole batch;
/// `call_timeout_s` bounds each RPC attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// The service, `http://host:port` (required).
    pub url: String,
    /// The environment variable that holds the shared token [`TEMPER_REWARD_TOKEN`].
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Which of the service's rewards to run; may be left out when it serves exactly one.
    #[serde(default)]
    pub reward: Option<String>,
    /// The limit on each RPC attempt (and on connecting), in seconds [30].
    #[serde(default = "default_call_timeout_s")]
    pub call_timeout_s: f64,
    /// Further attempts after a transient failure [2].
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The pause before the first retry, doubled for each further one (at most 10 s) [0.2].
    #[serde(default = "default_backoff_s")]
    pub backoff_s: f64,
    /// How many RPCs may be in flight at once [4].
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// The most samples in one RPC; larger batches are split [64].
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// The largest encoded message either way, in bytes [16 MiB]. Batches are split to fit; a
    /// single sample over it is quarantined without being sent.
    #[serde(default = "default_max_message_bytes")]
    pub max_message_bytes: usize,
}

fn default_token_env() -> String {
    "TEMPER_REWARD_TOKEN".into()
}
fn default_call_timeout_s() -> f64 {
    30.0
}
fn default_retries() -> u32 {
    2
}
fn default_backoff_s() -> f64 {
    0.2
}
fn default_max_concurrency() -> usize {
    4
}
fn default_max_batch() -> usize {
    64
}
fn default_max_message_bytes() -> usize {
    DEFAULT_MAX_MESSAGE_BYTES
}

impl RemoteConfig {
    /// Options with these values and the defaults for the rest.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            token_env: default_token_env(),
            reward: None,
            call_timeout_s: default_call_timeout_s(),
            retries: default_retries(),
            backoff_s: default_backoff_s(),
            max_concurrency: default_max_concurrency(),
            max_batch: default_max_batch(),
            max_message_bytes: default_max_message_bytes(),
        }
    }

    /// Rejects values outside their domain, naming the field. Does not read the token (that
    /// happens when the reward is built) nor contact the service.
    pub fn validate(&self) -> Result<()> {
        temper_proto::services::endpoint(&self.url, Duration::from_secs(1))
            .map_err(|e| RewardError::config("url", format!("{:?}", self.url), e.to_string()))?;
        if self.token_env.is_empty() {
            return Err(RewardError::config(
                "token_env",
                "\"\"",
                "must name the environment variable that holds the shared token",
            ));
        }
        if self.reward.as_deref() == Some("") {
            return Err(RewardError::config(
                "reward",
                "\"\"",
                "leave it out, or name one of the rewards the service serves",
            ));
        }
        positive("call_timeout_s", self.call_timeout_s)?;
        if !(self.backoff_s.is_finite() && self.backoff_s >= 0.0) {
            return Err(RewardError::config(
                "backoff_s",
                self.backoff_s,
                "must be finite and >= 0",
            ));
        }
        for (field, value) in [
            ("max_concurrency", self.max_concurrency),
            ("max_batch", self.max_batch),
        ] {
            if value == 0 {
                return Err(RewardError::config(field, 0, "must be >= 1"));
            }
        }
        if self.max_message_bytes < MIN_MESSAGE_BYTES {
            return Err(RewardError::config(
                "max_message_bytes",
                self.max_message_bytes,
                format!("must be >= {MIN_MESSAGE_BYTES}"),
            ));
        }
        Ok(())
    }

    /// The per-attempt timeout.
    pub fn call_timeout(&self) -> Duration {
        Duration::try_from_secs_f64(self.call_timeout_s).unwrap_or(Duration::MAX)
    }

    /// The retry policy these options describe.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries,
            backoff: Duration::try_from_secs_f64(self.backoff_s).unwrap_or(Duration::MAX),
            ..RetryPolicy::GRPC
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c: RemoteConfig = serde_json::from_str(r#"{"url": "http://127.0.0.1:1"}"#).unwrap();
        assert_eq!(c, RemoteConfig::new("http://127.0.0.1:1"));
        c.validate().unwrap();
        assert_eq!(c.retry_policy().retries, 2);
        assert_eq!(c.call_timeout(), Duration::from_secs(30));
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (r#""url": "127.0.0.1:1""#, "url"),
            (r#""url": "http://h""#, "url"),
            (r#""token_env": """#, "token_env"),
            (r#""reward": """#, "reward"),
            (r#""call_timeout_s": 0"#, "call_timeout_s"),
            (r#""backoff_s": -1"#, "backoff_s"),
            (r#""max_concurrency": 0"#, "max_concurrency"),
            (r#""max_batch": 0"#, "max_batch"),
            (r#""max_message_bytes": 10"#, "max_message_bytes"),
        ];
        for (field_json, field) in cases {
            let mut table: serde_json::Value =
                serde_json::from_str(&format!("{{{field_json}}}")).unwrap();
            table
                .as_object_mut()
                .unwrap()
                .entry("url")
                .or_insert("http://127.0.0.1:1".into());
            let c: RemoteConfig = serde_json::from_value(table).unwrap();
            let err = c.validate().unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid `{field}`")), "{err}");
        }
        let err = serde_json::from_str::<RemoteConfig>(r#"{"url": "http://h:1", "token": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `token`"), "{err}");
    }
}
