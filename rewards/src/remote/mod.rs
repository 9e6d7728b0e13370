//! `remote`: a reward computed by a plug-in service over gRPC (`temper.reward.v1`), e.g. one
//! written in Python with the `temper_plugins` package.
//!
//! How a batch is scored:
//!
//! 1. **Connect and check health** on the first call in each async runtime (a channel lives in
//!    the runtime that made it): `Health` must answer, and must list the configured `reward`
//!    (or exactly one reward when none is configured). A failure fails the whole batch with an
//!    error naming the url; the next batch tries again. [`RemoteReward::check`] runs the same
//!    check up front, for callers that want to fail at start-up.
//! 2. **Split** the batch into RPCs of at most `max_batch` samples whose encoded size fits in
//!    `max_message_bytes`. A sample that alone exceeds the limit is quarantined, not sent.
//! 3. **Call** `Score` for each part, at most `max_concurrency` RPCs in flight, each attempt
//!    under `call_timeout_s`, retried with doubling backoff on `UNAVAILABLE`,
//!    `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED` and `ABORTED` only.
//! 4. **Map** each result: `score` → the score, `not_applicable` → `None`, `error` → quarantine
//!    with the service's reason. A part whose call failed, or that came back with the wrong
//!    number of results, is quarantined whole with the reason. NaN/±inf scores are quarantined
//!    by the [`RewardSet`](crate::RewardSet) like any reward's. Components are reported per
//!    sample (`None` where the service did not send one).

pub mod config;
mod convert;

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::join_all;
use prost::Message as _;
use temper_proto::reward::v1::reward_service_client::RewardServiceClient;
use temper_proto::reward::v1::{HealthRequest, HealthResponse, ScoreRequest, ScoreResponse};
use temper_proto::services::{self, AuthChannel};
use temper_proto::{ClientError, MessageLimits, SharedToken};
use tokio::sync::{Mutex, Semaphore};
use tonic::Request;

pub use self::config::RemoteConfig;
use self::convert::{result_from_proto, sample_to_proto};
use crate::error::{BoxError, Result, RewardError};
use crate::reward::{BoxFuture, Quarantine, Reward, RewardOutput, SampleScore};
use crate::sample::Sample;

/// Bytes reserved in each request for everything but the samples (the reward name, framing).
const REQUEST_OVERHEAD: usize = 256;

/// A connected, health-checked client, valid in the runtime that made it.
#[derive(Clone)]
struct Connection {
    runtime: tokio::runtime::Id,
    client: RewardServiceClient<AuthChannel>,
    /// What `ScoreRequest.reward` says.
    reward: String,
}

/// The `remote` reward: a client of a `RewardService`. See the module doc.
pub struct RemoteReward {
    config: RemoteConfig,
    token: SharedToken,
    permits: Arc<Semaphore>,
    /// Held across connecting so that concurrent first calls connect once.
    connection: Mutex<Option<Connection>>,
}

impl std::fmt::Debug for RemoteReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteReward")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RemoteReward {
    /// Validates the options and reads the token from `token_env`; does not contact the
    /// service (the first [`score`](Reward::score) or [`check`](Self::check) does).
    pub fn new(config: RemoteConfig) -> Result<Self> {
        config.validate()?;
        let token = SharedToken::from_env(&config.token_env).map_err(|e| {
            RewardError::config(
                "token_env",
                format!("{:?}", config.token_env),
                e.to_string(),
            )
        })?;
        Self::with_token(config, token)
    }

    /// Like [`new`](Self::new) with the token given rather than read from `token_env` (for
    /// programs that hold it already, and tests).
    pub fn with_token(config: RemoteConfig, token: SharedToken) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
            config,
            token,
            connection: Mutex::new(None),
        })
    }

    /// The options.
    pub fn config(&self) -> &RemoteConfig {
        &self.config
    }

    /// Connects and checks the service's health now (see the module doc, step 1); returns
    /// what the service said about itself. Errors name the url.
    pub async fn check(&self) -> Result<HealthResponse, BoxError> {
        let (_, health) = self.connect().await?;
        Ok(health)
    }

    fn limits(&self) -> MessageLimits {
        MessageLimits::new(self.config.max_message_bytes)
    }

    /// "remote reward at <url>", for messages.
    fn source(&self) -> String {
        format!("remote reward service at {}", self.config.url)
    }

    /// The connection of the current runtime, made (and health-checked) if needed.
    async fn connection(&self) -> Result<Connection, BoxError> {
        let runtime = tokio::runtime::Handle::current().id();
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref().filter(|c| c.runtime == runtime) {
            return Ok(conn.clone());
        }
        let (conn, _) = self.connect().await?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn connect(&self) -> Result<(Connection, HealthResponse), BoxError> {
        let url = &self.config.url;
        let timeout = self.config.call_timeout();
        let fail = |e: &dyn std::fmt::Display| -> BoxError {
            format!("{}: health check failed: {e}", self.source()).into()
        };
        let channel = self
            .config
            .retry_policy()
            .run(ClientError::code, |_| services::connect(url, timeout))
            .await
            .map_err(|e| fail(&e))?;
        let client = services::reward_client(channel, &self.token, self.limits());
        let health = self
            .config
            .retry_policy()
            .run(ClientError::code, |_| {
                let mut client = client.clone();
                async move {
                    let request = Request::new(HealthRequest {});
                    ClientError::timed(url, timeout, client.health(request)).await
                }
            })
            .await
            .map_err(|e| fail(&self.with_token_hint(e)))?;
        let reward = match (&self.config.reward, health.rewards.as_slice()) {
            (Some(wanted), served) if !served.is_empty() && !served.contains(wanted) => {
                return Err(fail(&format!(
                    "it serves {served:?}, not `{wanted}`; set `reward` to one of them"
                )));
            }
            (Some(wanted), _) => wanted.clone(),
            (None, [only]) => only.clone(),
            (None, []) => String::new(),
            (None, served) => {
                return Err(fail(&format!(
                    "it serves several rewards {served:?}; choose one with `reward = \"...\"`"
                )));
            }
        };
        tracing::info!(url = %url, service = %health.name, version = %health.version,
            rewards = ?health.rewards, reward = %reward, "remote reward service is healthy");
        let runtime = tokio::runtime::Handle::current().id();
        Ok((
            Connection {
                runtime,
                client,
                reward,
            },
            health,
        ))
    }

    /// Adds where the token came from to an UNAUTHENTICATED error.
    fn with_token_hint(&self, e: ClientError) -> String {
        match e {
            ClientError::Unauthenticated { .. } => {
                format!(
                    "{e} (this run's token is from `${}`)",
                    self.config.token_env
                )
            }
            other => other.to_string(),
        }
    }

    /// The parts of the batch: lists of sample indices, each fitting one request; samples
    /// too large to send alone are quarantined in `scores`.
    fn split(&self, encoded: &[usize], scores: &mut [SampleScore]) -> Vec<Vec<usize>> {
        let budget = self
            .config
            .max_message_bytes
            .saturating_sub(REQUEST_OVERHEAD);
        let mut parts = Vec::new();
        let mut part: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for (i, &size) in encoded.iter().enumerate() {
            if size > budget {
                scores[i] = Err(Quarantine::new(format!(
                    "sample is {size} bytes encoded, over the {} `max_message_bytes` = {} \
                     (less {REQUEST_OVERHEAD} for the request); raise it on both sides",
                    self.source(),
                    self.config.max_message_bytes
                )));
                continue;
            }
            if !part.is_empty() && (part.len() == self.config.max_batch || bytes + size > budget) {
                parts.push(std::mem::take(&mut part));
                bytes = 0;
            }
            part.push(i);
            bytes += size;
        }
        if !part.is_empty() {
            parts.push(part);
        }
        parts
    }

    /// One `Score` RPC with retries; each attempt holds a concurrency permit.
    async fn call(
        &self,
        conn: &Connection,
        samples: Vec<temper_proto::reward::v1::Sample>,
    ) -> Result<ScoreResponse, String> {
        let url = &self.config.url;
        let timeout = self.config.call_timeout();
        let request = ScoreRequest {
            reward: conn.reward.clone(),
            samples,
        };
        self.config
            .retry_policy()
            .run(ClientError::code, |_| {
                let mut client = conn.client.clone();
                let request = request.clone();
                async move {
                    let _permit = self
                        .permits
                        .acquire()
                        .await
                        .expect("the semaphore is never closed");
                    let request = Request::new(request);
                    ClientError::timed(url, timeout, client.score(request)).await
                }
            })
            .await
            .map_err(|e| self.with_token_hint(e))
    }

    async fn score_batch(&self, samples: &[Sample]) -> Result<RewardOutput, BoxError> {
        let conn = self.connection().await?;
        let messages: Vec<_> = samples.iter().map(sample_to_proto).collect();
        // The size a sample adds to a request: its bytes plus field tag and length prefix.
        let encoded: Vec<usize> = messages
            .iter()
            .map(|m| {
                let len = m.encoded_len();
                len + 1 + prost::encoding::encoded_len_varint(len as u64)
            })
            .collect();
        let n = samples.len();
        let mut scores: Vec<SampleScore> = vec![Ok(None); n];
        let parts = self.split(&encoded, &mut scores);
        let calls = parts.iter().map(|part| {
            let batch = part.iter().map(|&i| messages[i].clone()).collect();
            self.call(&conn, batch)
        });
        let responses = join_all(calls).await;

        let mut components: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
        let source = self.source();
        for (part, response) in parts.iter().zip(responses) {
            let results = match response {
                Ok(response) if response.results.len() == part.len() => response.results,
                Ok(response) => {
                    let reason = format!(
                        "{source} returned {} results for {} samples",
                        response.results.len(),
                        part.len()
                    );
                    tracing::warn!(url = %self.config.url, %reason, "remote reward quarantines a part");
                    for &i in part {
                        scores[i] = Err(Quarantine::new(reason.clone()));
                    }
                    continue;
                }
                Err(reason) => {
                    tracing::warn!(url = %self.config.url, %reason, "remote reward call failed");
                    for &i in part {
                        scores[i] = Err(Quarantine::new(reason.clone()));
                    }
                    continue;
                }
            };
            for (&i, result) in part.iter().zip(results) {
                let (score, values) = result_from_proto(result, &source);
                if score.is_ok() {
                    for (name, value) in values {
                        components.entry(name).or_insert_with(|| vec![None; n])[i] = Some(value);
                    }
                }
                scores[i] = score;
            }
        }
        Ok(RewardOutput { scores, components })
    }
}

impl Reward for RemoteReward {
    fn name(&self) -> &str {
        "remote"
    }

    fn score<'a>(&'a self, samples: &'a [Sample]) -> BoxFuture<'a, Result<RewardOutput, BoxError>> {
        Box::pin(self.score_batch(samples))
    }
}
