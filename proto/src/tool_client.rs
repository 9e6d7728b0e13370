//! [`ToolClient`]: a connected, health-checked client of a tool service. Each call runs under
//! a timeout and is retried on transient failures (see [`crate::retry`]); the token and the
//! message limits are applied by [`crate::services`].

use std::time::Duration;

use tonic::Request;

use crate::auth::SharedToken;
use crate::error::ClientError;
use crate::limits::MessageLimits;
use crate::retry::RetryPolicy;
use crate::services::{self, AuthChannel};
use crate::tool::v1::tool_service_client::ToolServiceClient;
use crate::tool::v1::{HealthRequest, HealthResponse, ListRequest, ToolCall, ToolResult, ToolSpec};

/// How a [`ToolClient`] talks to its service.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ToolClientOptions {
    /// The limit on one call (and on connecting), each attempt.
    pub timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
    /// Message size limits.
    pub limits: MessageLimits,
}

impl Default for ToolClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            limits: MessageLimits::default(),
        }
    }
}

/// A client of one tool service.
#[derive(Debug, Clone)]
pub struct ToolClient {
    url: String,
    client: ToolServiceClient<AuthChannel>,
    options: ToolClientOptions,
    health: HealthResponse,
}

impl ToolClient {
    /// Connects to the service at `url` and checks its health; fails naming the url when it
    /// is not there, refuses the token or does not answer in time.
    pub async fn connect(
        url: &str,
        token: &SharedToken,
        options: ToolClientOptions,
    ) -> Result<Self, ClientError> {
        let channel = services::connect(url, options.timeout).await?;
        let mut client = Self {
            url: url.to_string(),
            client: services::tool_client(channel, token, options.limits),
            options,
            health: HealthResponse::default(),
        };
        client.health = client
            .unary(
                HealthRequest {},
                |mut c, r| async move { c.health(r).await },
            )
            .await?;
        tracing::info!(url, name = %client.health.name, version = %client.health.version,
            tools = ?client.health.tools, "connected to tool service");
        Ok(client)
    }

    /// The service's url.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What the service said about itself when connecting.
    pub fn health(&self) -> &HealthResponse {
        &self.health
    }

    /// The tools the service offers.
    pub async fn list(&self) -> Result<Vec<ToolSpec>, ClientError> {
        let list = self
            .unary(ListRequest {}, |mut c, r| async move { c.list(r).await })
            .await?;
        Ok(list.tools)
    }

    /// Runs tool `name` with `arguments_json` (a JSON object) on `images` (PNG). A tool that
    /// fails is an `Ok` result with `error` set; `Err` is for the service and the transport.
    pub async fn call(
        &self,
        name: &str,
        arguments_json: &str,
        images: Vec<Vec<u8>>,
    ) -> Result<ToolResult, ClientError> {
        let call = ToolCall {
            name: name.to_string(),
            arguments_json: arguments_json.to_string(),
            images,
        };
        self.unary(call, |mut c, r| async move { c.call(r).await })
            .await
    }

    /// One unary call with the timeout and the retries. The timeout is enforced here, not
    /// sent as `grpc-timeout`: dropping the call resets the stream, which stops the service's
    /// handler, and the caller always gets `Timeout` rather than the server's `Cancelled`.
    async fn unary<Req, Resp, F, Fut>(&self, message: Req, send: F) -> Result<Resp, ClientError>
    where
        Req: Clone,
        F: Fn(ToolServiceClient<AuthChannel>, Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let timeout = self.options.timeout;
        self.options
            .retry
            .run(ClientError::code, |_| {
                let request = Request::new(message.clone());
                let call = send(self.client.clone(), request);
                ClientError::timed(&self.url, timeout, call)
            })
            .await
    }
}
