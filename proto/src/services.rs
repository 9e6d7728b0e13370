//! Authenticated, size-limited servers and clients of the plug-in services. Build every
//! endpoint through these functions so none forgets the token check or the message limits.
//!
//! ```no_run
//! # async fn demo(service: impl temper_proto::reward::v1::reward_service_server::RewardService) -> Result<(), Box<dyn std::error::Error>> {
//! use temper_proto::{MessageLimits, SharedToken, services};
//!
//! let token = SharedToken::from_env("TEMPER_REWARD_TOKEN")?;
//! tonic::transport::Server::builder()
//!     .add_service(services::reward_server(service, &token, MessageLimits::default()))
//!     .serve("127.0.0.1:50051".parse()?)
//!     .await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

use crate::auth::{ClientAuth, ServerAuth, SharedToken};
use crate::error::ClientError;
use crate::limits::MessageLimits;
use crate::reward::v1::reward_service_client::RewardServiceClient;
use crate::reward::v1::reward_service_server::{RewardService, RewardServiceServer};
use crate::tool::v1::tool_service_client::ToolServiceClient;
use crate::tool::v1::tool_service_server::{ToolService, ToolServiceServer};

/// A channel whose requests carry the shared token.
pub type AuthChannel = InterceptedService<Channel, ClientAuth>;

/// A reward service behind the token check and the message limits.
pub fn reward_server<S: RewardService>(
    service: S,
    token: &SharedToken,
    limits: MessageLimits,
) -> InterceptedService<RewardServiceServer<S>, ServerAuth> {
    let server = RewardServiceServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    InterceptedService::new(server, ServerAuth::new(token))
}

/// A tool service behind the token check and the message limits.
pub fn tool_server<S: ToolService>(
    service: S,
    token: &SharedToken,
    limits: MessageLimits,
) -> InterceptedService<ToolServiceServer<S>, ServerAuth> {
    let server = ToolServiceServer::new(service)
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes);
    InterceptedService::new(server, ServerAuth::new(token))
}

/// The endpoint of `url` (`http://host:port`), connecting within `connect_timeout`.
pub fn endpoint(url: &str, connect_timeout: Duration) -> Result<Endpoint, ClientError> {
    let invalid = |reason: String| ClientError::InvalidUrl {
        url: url.to_string(),
        reason,
    };
    if !url.starts_with("http://") {
        return Err(invalid(
            "must start with `http://` (plug-in services speak plaintext gRPC; put TLS in a proxy)"
                .into(),
        ));
    }
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| invalid(e.to_string()))?;
    if endpoint.uri().port_u16().is_none() {
        return Err(invalid(
            "must name the port, e.g. `http://127.0.0.1:50051`".into(),
        ));
    }
    Ok(endpoint.connect_timeout(connect_timeout).tcp_nodelay(true))
}

/// Connects to `url` (eagerly, so a service that is not there fails here, naming the url).
pub async fn connect(url: &str, connect_timeout: Duration) -> Result<Channel, ClientError> {
    endpoint(url, connect_timeout)?
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            url: url.to_string(),
            source,
        })
}

/// A reward client on `channel` that sends the token and applies the limits.
pub fn reward_client(
    channel: Channel,
    token: &SharedToken,
    limits: MessageLimits,
) -> RewardServiceClient<AuthChannel> {
    RewardServiceClient::with_interceptor(channel, ClientAuth::new(token))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes)
}

/// A tool client on `channel` that sends the token and applies the limits.
pub fn tool_client(
    channel: Channel,
    token: &SharedToken,
    limits: MessageLimits,
) -> ToolServiceClient<AuthChannel> {
    ToolServiceClient::with_interceptor(channel, ClientAuth::new(token))
        .max_decoding_message_size(limits.max_message_bytes)
        .max_encoding_message_size(limits.max_message_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_http_with_a_port() {
        let t = Duration::from_secs(1);
        assert!(endpoint("http://127.0.0.1:5000", t).is_ok());
        for (url, hint) in [
            ("127.0.0.1:5000", "http://"),
            ("https://h:1", "http://"),
            ("http://host", "port"),
            ("http://bad host:1", "invalid service url"),
        ] {
            let err = endpoint(url, t).unwrap_err().to_string();
            assert!(err.contains(hint) && err.contains(url), "{url}: {err}");
        }
    }
}
