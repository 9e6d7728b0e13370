//! Temper's gRPC plug-in protocols and the code every Temper client and server of them shares.
//!
//! - [`reward::v1`]: `RewardService` — Temper sends batches of samples to a reward plug-in
//!   (`Score`) after asking who it is (`Health`). Generated from `temper/reward/v1/reward.proto`.
//! - [`tool::v1`]: `ToolService` — the actor runs a policy's tool calls on a tool plug-in
//!   (`Call`, `List`, `Health`). Generated from `temper/tool/v1/tool.proto`.
//! - [`auth`]: the shared token, sent as metadata `authorization: Bearer <token>`: a client
//!   interceptor and the server-side check.
//! - [`limits`]: message size limits, applied the same way on both sides.
//! - [`services`]: authenticated, size-limited servers and clients of both services — build
//!   every endpoint through these so none forgets the token or the limits.
//! - [`retry`]: which gRPC codes are transient and the retry-with-backoff loop.
//! - [`tool_client`]: [`ToolClient`], a connected, health-checked tool service client with a
//!   per-call timeout.
//!
//! The `.proto` files are compiled by `build.rs` with protox, so no system `protoc` is needed.
//! The Python plug-in package (`python/`) generates its stubs from the same files.

#![warn(missing_docs)]

pub mod auth;
pub mod error;
pub mod limits;
pub mod retry;
pub mod services;
pub mod tool_client;

/// The reward plug-in protocol.
pub mod reward {
    /// Version 1 of the reward protocol (`temper.reward.v1`).
    #[allow(missing_docs)]
    pub mod v1 {
        tonic::include_proto!("temper.reward.v1");
    }
}

/// The tool plug-in protocol.
pub mod tool {
    /// Version 1 of the tool protocol (`temper.tool.v1`).
    #[allow(missing_docs)]
    pub mod v1 {
        tonic::include_proto!("temper.tool.v1");
    }
}

pub use auth::{ClientAuth, ServerAuth, SharedToken};
pub use error::{AuthError, ClientError};
pub use limits::{DEFAULT_MAX_MESSAGE_BYTES, MessageLimits};
pub use retry::{RetryPolicy, is_transient};
pub use tool_client::{ToolClient, ToolClientOptions};
