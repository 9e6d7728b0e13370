//! [`HttpJudge`]: a judge behind an OpenAI-compatible `/v1/chat/completions` endpoint (what
//! vLLM and SGLang serve).
//!
//! Each prompt is one request `{model, messages, max_tokens, temperature}`; the reply is
//! `choices[0].message.content`. Requests of a batch run concurrently, at most
//! `max_concurrency` at a time (a semaphore shared by every batch of this judge). A request
//! that fails to connect or gets 429 or 5xx is retried up to `retries` times by the clients'
//! one retry rule ([`RetryPolicy`], full jitter under `backoff_s · 2^attempt`, at most
//! [`RetryPolicy::HTTP_API`]'s 30 s); other 4xx (the request itself is wrong) and timeouts
//! (the judge is overloaded; waiting again would double the stall) are not retried. The API key
//! is read from the environment variable named by `api_key_env` when the judge is built, and
//! sent as `Authorization: Bearer …`; the config never holds the key itself.
//!
//! Plain `http://` only: put a TLS-terminating proxy in front of a remote `https` endpoint.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use temper_proto::RetryPolicy;
use tokio::sync::Semaphore;

use super::backend::{ChatPrompt, JudgeBackend, JudgeError};
use crate::error::{Result, RewardError, non_negative, positive};
use crate::reward::BoxFuture;

/// Options of `backend = { type = "http", ... }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpJudgeConfig {
    /// The server's base URL (`http://host:8000`, `/v1/chat/completions` is appended) or the
    /// full endpoint URL ending in `/chat/completions`.
    pub url: String,
    /// The served model name sent in each request.
    pub model: String,
    /// The name of the environment variable holding the API key [none: no Authorization
    /// header].
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// `max_tokens` of each request [1024].
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Sampling temperature [0: greedy, so a cached reply is the reply].
    #[serde(default)]
    pub temperature: f64,
    /// How long one request may take, in seconds [120].
    #[serde(default = "default_request_timeout_s")]
    pub request_timeout_s: f64,
    /// Retries after a connect error, 429 or 5xx [3].
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The ceiling of the first wait before a retry, in seconds; doubled each retry [0.5]
    /// (the wait itself is drawn below it: full jitter).
    #[serde(default = "default_backoff_s")]
    pub backoff_s: f64,
    /// Requests in flight at most [8].
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_max_tokens() -> usize {
    1024
}
fn default_request_timeout_s() -> f64 {
    120.0
}
fn default_retries() -> u32 {
    RetryPolicy::HTTP_API.retries
}
fn default_backoff_s() -> f64 {
    RetryPolicy::HTTP_API.backoff.as_secs_f64()
}
fn default_max_concurrency() -> usize {
    8
}

impl HttpJudgeConfig {
    /// A config for this server and model with every other option at its default.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: model.into(),
            api_key_env: None,
            max_tokens: default_max_tokens(),
            temperature: 0.0,
            request_timeout_s: default_request_timeout_s(),
            retries: default_retries(),
            backoff_s: default_backoff_s(),
            max_concurrency: default_max_concurrency(),
        }
    }

    /// Rejects values outside their domain, naming the field (under `backend.`).
    pub fn validate(&self) -> Result<()> {
        if !self.url.starts_with("http://") || self.url.len() <= "http://".len() {
            return Err(RewardError::config(
                "backend.url",
                format!("{:?}", self.url),
                "must be an http:// URL (put a TLS-terminating proxy in front of an https endpoint)",
            ));
        }
        if self.model.trim().is_empty() {
            return Err(RewardError::config(
                "backend.model",
                "\"\"",
                "must name the served model",
            ));
        }
        if let Some(var) = &self.api_key_env
            && var.trim().is_empty()
        {
            return Err(RewardError::config(
                "backend.api_key_env",
                "\"\"",
                "must be the name of an environment variable holding the key (or left out)",
            ));
        }
        if self.max_tokens == 0 {
            return Err(RewardError::config("backend.max_tokens", 0, "must be >= 1"));
        }
        non_negative("backend.temperature", self.temperature)?;
        positive("backend.request_timeout_s", self.request_timeout_s)?;
        non_negative("backend.backoff_s", self.backoff_s)?;
        if self.max_concurrency == 0 {
            return Err(RewardError::config(
                "backend.max_concurrency",
                0,
                "must be >= 1",
            ));
        }
        Ok(())
    }

    /// The chat-completions endpoint.
    pub fn endpoint(&self) -> String {
        let url = self.url.trim_end_matches('/');
        if url.ends_with("/chat/completions") {
            url.to_string()
        } else if url.ends_with("/v1") {
            format!("{url}/chat/completions")
        } else {
            format!("{url}/v1/chat/completions")
        }
    }
}

/// The OpenAI-compatible HTTP judge.
pub struct HttpJudge {
    config: HttpJudgeConfig,
    endpoint: String,
    api_key: Option<String>,
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for HttpJudge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("HttpJudge")
            .field("endpoint", &self.endpoint)
            .field("model", &self.config.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

#[derive(Serialize)]
struct Request<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    max_tokens: usize,
    temperature: f64,
}

/// A judge message in the chat-completions body: role and text (the judge's prompts are text).
#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'a str,
    content: String,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: ReplyMessage,
}

#[derive(Deserialize)]
struct ReplyMessage {
    content: Option<String>,
}

impl HttpJudge {
    /// A judge for this config; reads the API key from the environment now, so a missing key
    /// fails the build of the reward set rather than every request.
    pub fn new(config: HttpJudgeConfig) -> Result<Self> {
        config.validate()?;
        let api_key = match &config.api_key_env {
            None => None,
            Some(var) => Some(std::env::var(var).map_err(|_| {
                RewardError::config(
                    "backend.api_key_env",
                    format!("{var:?}"),
                    format!("the environment variable `{var}` is not set (or not UTF-8); export the judge's API key in it"),
                )
            })?),
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.request_timeout_s))
            .build()
            .map_err(|e| {
                RewardError::config(
                    "backend",
                    "http",
                    format!("cannot build an HTTP client: {e}"),
                )
            })?;
        Ok(Self {
            endpoint: config.endpoint(),
            api_key,
            client,
            slots: Arc::new(Semaphore::new(config.max_concurrency)),
            retry: RetryPolicy {
                retries: config.retries,
                backoff: Duration::try_from_secs_f64(config.backoff_s).unwrap_or(Duration::MAX),
                ..RetryPolicy::HTTP_API
            },
            config,
        })
    }

    /// One request, with retries.
    async fn complete_one(&self, prompt: &ChatPrompt) -> std::result::Result<String, JudgeError> {
        let request = Request {
            model: &self.config.model,
            messages: prompt
                .messages
                .iter()
                .map(|m| WireMessage {
                    role: &m.role,
                    content: m.text(),
                })
                .collect(),
            max_tokens: self.config.max_tokens,
            temperature: self.config.temperature,
        };
        // A slot is held for the request only, not for the back-off wait.
        self.retry
            .run_if(retryable, |_| async {
                let _slot = self
                    .slots
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                self.send(&request).await
            })
            .await
    }

    async fn send(&self, request: &Request<'_>) -> std::result::Result<String, JudgeError> {
        let timeout = self.config.request_timeout_s;
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                JudgeError::Timeout(timeout)
            } else {
                JudgeError::Connect(e.to_string())
            }
        };
        let mut builder = self.client.post(&self.endpoint).json(request);
        if let Some(key) = &self.api_key {
            builder = builder.bearer_auth(key);
        }
        let response = builder.send().await.map_err(transport)?;
        let status = response.status();
        let body = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(JudgeError::Status {
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        let completion: Completion = serde_json::from_str(&body).map_err(|e| {
            JudgeError::BadReply(format!(
                "{e}: {}",
                body.chars().take(200).collect::<String>()
            ))
        })?;
        completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .ok_or_else(|| JudgeError::BadReply("no choices[0].message.content".into()))
    }
}

/// Connect errors, 429 and 5xx are worth another try; the rest would fail the same way.
fn retryable(error: &JudgeError) -> bool {
    match error {
        JudgeError::Connect(_) => true,
        JudgeError::Status { status, .. } => *status == 429 || *status >= 500,
        _ => false,
    }
}

impl JudgeBackend for HttpJudge {
    fn identity(&self) -> String {
        format!(
            "http|{}|{}|{}|{}",
            self.endpoint, self.config.model, self.config.max_tokens, self.config.temperature
        )
    }

    fn complete(
        &self,
        prompts: Vec<ChatPrompt>,
    ) -> BoxFuture<'_, Vec<std::result::Result<String, JudgeError>>> {
        Box::pin(async move { join_all(prompts.iter().map(|p| self.complete_one(p))).await })
    }
}
