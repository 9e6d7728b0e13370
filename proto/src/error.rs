//! The errors of this crate: a bad shared token, and a client call that failed.

use std::time::Duration;

/// A shared token that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The environment variable that should hold the token is not set (or not UTF-8).
    #[error(
        "environment variable `{var}` is not set: export the shared token the plug-in service was started with"
    )]
    MissingEnv {
        /// The variable's name.
        var: String,
    },
    /// The token is empty or has characters that cannot travel in gRPC metadata.
    #[error(
        "invalid shared token{source_hint}: {reason}; use a non-empty string of visible ASCII characters (no spaces)"
    )]
    Invalid {
        /// Where it came from, e.g. " from `$TEMPER_REWARD_TOKEN`" (empty when passed directly).
        source_hint: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A call to a plug-in service that failed; every variant names the service's url.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The url does not parse as `http://host:port`.
    #[error("invalid service url `{url}`: {reason}")]
    InvalidUrl {
        /// The url as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// No connection could be made.
    #[error(
        "cannot connect to the plug-in service at {url}: {source}; is it running and listening there?"
    )]
    Connect {
        /// The service's url.
        url: String,
        /// The transport's error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The call did not finish within its timeout.
    #[error("the plug-in service at {url} did not answer within {after:?}")]
    Timeout {
        /// The service's url.
        url: String,
        /// The timeout.
        after: Duration,
    },
    /// The service refused the shared token.
    #[error(
        "the plug-in service at {url} refused the shared token (UNAUTHENTICATED: {message}); start the service and this run with the same token"
    )]
    Unauthenticated {
        /// The service's url.
        url: String,
        /// The service's message.
        message: String,
    },
    /// Any other gRPC error.
    #[error("the plug-in service at {url} answered {code:?}: {message}")]
    Status {
        /// The service's url.
        url: String,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

impl ClientError {
    /// Runs one gRPC call under `timeout` and maps its outcome: the message, the service's status
    /// (see [`ClientError::from_status`]) or [`ClientError::Timeout`]. Every Temper client makes
    /// its calls through this, so a timeout means the same thing everywhere.
    pub async fn timed<T>(
        url: &str,
        timeout: std::time::Duration,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, Self> {
        match tokio::time::timeout(timeout, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Self::from_status(url, &status)),
            Err(_) => Err(Self::Timeout {
                url: url.to_string(),
                after: timeout,
            }),
        }
    }

    /// The error for a failed call to the service at `url`.
    pub fn from_status(url: &str, status: &tonic::Status) -> Self {
        match status.code() {
            tonic::Code::Unauthenticated => Self::Unauthenticated {
                url: url.to_string(),
                message: status.message().to_string(),
            },
            code => Self::Status {
                url: url.to_string(),
                code,
                message: status.message().to_string(),
            },
        }
    }

    /// The gRPC code this error stands for (`DeadlineExceeded` for timeouts, `Unavailable` for
    /// connection failures), so that retry decisions treat all errors alike.
    pub fn code(&self) -> tonic::Code {
        match self {
            Self::InvalidUrl { .. } => tonic::Code::InvalidArgument,
            Self::Connect { .. } => tonic::Code::Unavailable,
            Self::Timeout { .. } => tonic::Code::DeadlineExceeded,
            Self::Unauthenticated { .. } => tonic::Code::Unauthenticated,
            Self::Status { code, .. } => *code,
        }
    }
}
