//! The `remote` reward against an in-process tonic reward service on 127.0.0.1:0: scores,
//! not-applicable, per-sample errors, components, retries, timeouts, auth, message limits,
//! batch splitting and the concurrency bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use temper_proto::reward::v1::reward_service_server::RewardService;
use temper_proto::reward::v1::{
    HealthRequest, HealthResponse, NotApplicable, SampleResult, ScoreRequest, ScoreResponse,
    sample_result::Outcome,
};
use temper_proto::{MessageLimits, SharedToken, services};
use temper_rewards::{
    RemoteConfig, RemoteReward, Reward, RewardRegistry, RewardSet, RewardSetConfig, Sample,
    ScoredBatch,
};
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Code, Request, Response, Status};

const TOKEN: &str = "test-token";

/// How the fake service answers `Score`.
#[derive(Clone, Copy)]
enum Mode {
    /// score = response length; "na" → not applicable; "err" → error; component `len`.
    Echo,
    /// Fails the first `n` calls with `code`, then echoes.
    FailFirst(usize, Code),
    /// Sleeps this long, then echoes.
    Slow(Duration),
    /// Returns one result whatever the batch.
    WrongCount,
}

#[derive(Clone)]
struct Fake {
    mode: Mode,
    calls: Arc<AtomicUsize>,
    batch_sizes: Arc<Mutex<Vec<usize>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
}

impl Fake {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            calls: Arc::default(),
            batch_sizes: Arc::default(),
            in_flight: Arc::default(),
            max_in_flight: Arc::default(),
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn echo(request: &ScoreRequest) -> ScoreResponse {
    let results = request
        .samples
        .iter()
        .map(|s| {
            let outcome = match s.response.as_str() {
                "na" => Outcome::NotApplicable(NotApplicable {}),
                "err" => Outcome::Error("bad sample".into()),
                r => Outcome::Score(r.len() as f64),
            };
            SampleResult {
                outcome: Some(outcome),
                components: [("len".to_string(), s.response.len() as f64)].into(),
            }
        })
        .collect();
    ScoreResponse { results }
}

#[tonic::async_trait]
impl RewardService for Fake {
    async fn score(
        &self,
        request: Request<ScoreRequest>,
    ) -> Result<Response<ScoreResponse>, Status> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let request = request.into_inner();
        assert_eq!(request.reward, "echo", "the client names the served reward");
        self.batch_sizes.lock().unwrap().push(request.samples.len());
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        let answer = match self.mode {
            Mode::Echo => Ok(echo(&request)),
            Mode::FailFirst(n, code) if call < n => Err(Status::new(code, "not now")),
            Mode::FailFirst(..) => Ok(echo(&request)),
            Mode::Slow(pause) => {
                tokio::time::sleep(pause).await;
                Ok(echo(&request))
            }
            Mode::WrongCount => Ok(ScoreResponse {
                results: vec![SampleResult::default()],
            }),
        };
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        answer.map(Response::new)
    }

    async fn health(&self, _: Request<HealthRequest>) -> Result<Response<HealthResponse>, Status> {
        Ok(Response::new(HealthResponse {
            name: "fake".into(),
            version: "1".into(),
            rewards: vec!["echo".into()],
        }))
    }
}

/// Serves `fake` on 127.0.0.1:0 in a background runtime; returns its url.
fn serve(fake: Fake, max_message_bytes: usize) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            tx.send(incoming.local_addr().unwrap()).unwrap();
            let token = SharedToken::new(TOKEN).unwrap();
            let service =
                services::reward_server(fake, &token, MessageLimits::new(max_message_bytes));
            Server::builder()
                .add_service(service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        });
    });
    format!("http://{}", rx.recv().unwrap())
}

fn config(url: &str) -> RemoteConfig {
    RemoteConfig {
        call_timeout_s: 5.0,
        backoff_s: 0.01,
        ..RemoteConfig::new(url)
    }
}

fn set_with(config: RemoteConfig, token: &str) -> RewardSet {
    let reward = RemoteReward::with_token(config, SharedToken::new(token).unwrap()).unwrap();
    let set_config: RewardSetConfig =
        serde_json::from_str(r#"{"rewards": [{"kind": "custom", "name": "remote"}]}"#).unwrap();
    RewardRegistry::new()
        .with("remote", Arc::new(reward))
        .unwrap()
        .build(&set_config)
        .unwrap()
}

fn score(set: &RewardSet, responses: &[&str]) -> ScoredBatch {
    let samples: Vec<Sample> = responses.iter().map(|r| Sample::new("p", *r)).collect();
    set.score_blocking(&samples).unwrap()
}

fn reason(batch: &ScoredBatch, i: usize) -> String {
    batch.totals[i].clone().unwrap_err().reason
}

#[test]
fn scores_not_applicable_errors_and_components() {
    let url = serve(Fake::new(Mode::Echo), 1 << 20);
    let set = set_with(config(&url), TOKEN);
    let batch = score(&set, &["abc", "na", "err", "hello"]);
    assert_eq!(batch.totals[0], Ok(Some(3.0)));
    assert_eq!(batch.totals[1], Ok(None));
    let err = reason(&batch, 2);
    assert!(err.contains("bad sample") && err.contains(&url), "{err}");
    assert_eq!(batch.totals[3], Ok(Some(5.0)));
    let components = &batch.reward("remote").unwrap().components["len"];
    assert_eq!(components, &[Some(3.0), Some(2.0), None, Some(5.0)]);
    assert_eq!(batch.metrics.quarantined, 1);
    // A second blocking call runs in a new runtime: the client reconnects there.
    assert_eq!(score(&set, &["xy"]).totals[0], Ok(Some(2.0)));
}

#[test]
fn retries_unavailable_then_succeeds() {
    let fake = Fake::new(Mode::FailFirst(2, Code::Unavailable));
    let set = set_with(config(&serve(fake.clone(), 1 << 20)), TOKEN);
    let batch = score(&set, &["abcd"]);
    assert_eq!(batch.totals[0], Ok(Some(4.0)));
    assert_eq!(fake.calls(), 3);
}

#[test]
fn gives_up_after_the_configured_retries() {
    let fake = Fake::new(Mode::FailFirst(100, Code::ResourceExhausted));
    let set = set_with(
        RemoteConfig {
            retries: 1,
            ..config(&serve(fake.clone(), 1 << 20))
        },
        TOKEN,
    );
    let err = reason(&score(&set, &["a"]), 0);
    assert!(err.contains("ResourceExhausted"), "{err}");
    assert_eq!(fake.calls(), 2);
}

#[test]
fn no_retry_on_invalid_argument() {
    let fake = Fake::new(Mode::FailFirst(100, Code::InvalidArgument));
    let set = set_with(config(&serve(fake.clone(), 1 << 20)), TOKEN);
    let batch = score(&set, &["a", "b"]);
    let err = reason(&batch, 1);
    assert!(
        err.contains("InvalidArgument") && err.contains("not now"),
        "{err}"
    );
    assert_eq!(fake.calls(), 1);
}

#[test]
fn slow_calls_time_out_and_are_retried() {
    let fake = Fake::new(Mode::Slow(Duration::from_secs(3)));
    let config = RemoteConfig {
        call_timeout_s: 0.3,
        retries: 1,
        ..config(&serve(fake.clone(), 1 << 20))
    };
    let started = std::time::Instant::now();
    let err = reason(&score(&set_with(config, TOKEN), &["a"]), 0);
    assert!(err.contains("did not answer within 300ms"), "{err}");
    assert_eq!(fake.calls(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn a_wrong_token_is_unauthenticated_with_a_clear_reason() {
    let fake = Fake::new(Mode::Echo);
    let url = serve(fake.clone(), 1 << 20);
    let set = set_with(config(&url), "not-the-token");
    let batch = score(&set, &["a", "b"]);
    for i in 0..2 {
        let err = reason(&batch, i);
        assert!(
            err.contains("UNAUTHENTICATED")
                && err.contains("refused the shared token")
                && err.contains(&url)
                && err.contains("$TEMPER_REWARD_TOKEN"),
            "{err}"
        );
    }
    assert_eq!(fake.calls(), 0);
}

#[test]
fn oversized_samples_are_refused() {
    let fake = Fake::new(Mode::Echo);
    let url = serve(fake.clone(), 4096);
    let big = "x".repeat(8000);
    // Over the client's own limit: quarantined without being sent; the rest is scored.
    let set = set_with(
        RemoteConfig {
            max_message_bytes: 4096,
            ..config(&url)
        },
        TOKEN,
    );
    let batch = score(&set, &["ab", &big]);
    assert_eq!(batch.totals[0], Ok(Some(2.0)));
    let err = reason(&batch, 1);
    assert!(
        err.contains("over the") && err.contains("max_message_bytes"),
        "{err}"
    );
    assert_eq!(*fake.batch_sizes.lock().unwrap(), [1]);
    // Within the client's limit but over the service's: the service refuses, not retried.
    let set = set_with(config(&url), TOKEN);
    let err = reason(&score(&set, &[&big]), 0);
    assert!(
        err.contains("OutOfRange") && err.contains("too large"),
        "{err}"
    );
    assert_eq!(fake.calls(), 1);
}

#[test]
fn large_batches_are_split_and_concurrency_is_bounded() {
    let fake = Fake::new(Mode::Slow(Duration::from_millis(100)));
    let config = RemoteConfig {
        max_batch: 2,
        max_concurrency: 2,
        ..config(&serve(fake.clone(), 1 << 20))
    };
    let responses = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff", "g"];
    let batch = score(&set_with(config, TOKEN), &responses);
    let totals: Vec<_> = batch.totals.iter().map(|t| t.clone().unwrap()).collect();
    let expected: Vec<_> = responses.iter().map(|r| Some(r.len() as f64)).collect();
    assert_eq!(totals, expected);
    let mut sizes = fake.batch_sizes.lock().unwrap().clone();
    sizes.sort();
    assert_eq!(sizes, [1, 2, 2, 2]);
    assert_eq!(fake.max_in_flight.load(Ordering::SeqCst), 2);
}

#[test]
fn a_wrong_number_of_results_quarantines_the_part() {
    let set = set_with(config(&serve(Fake::new(Mode::WrongCount), 1 << 20)), TOKEN);
    let batch = score(&set, &["a", "b", "c"]);
    for i in 0..3 {
        assert!(reason(&batch, i).contains("returned 1 results for 3 samples"));
    }
}

#[test]
fn failing_health_names_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let reward = RemoteReward::with_token(
        RemoteConfig {
            retries: 0,
            ..config(&url)
        },
        SharedToken::new(TOKEN).unwrap(),
    )
    .unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = runtime.block_on(reward.check()).unwrap_err().to_string();
    assert!(
        err.contains(&url) && err.contains("health check failed"),
        "{err}"
    );
    let out = runtime.block_on(reward.score(&[Sample::new("p", "r")]));
    assert!(out.is_err());

    // A service that does not serve the configured reward.
    let url = serve(Fake::new(Mode::Echo), 1 << 20);
    let reward = RemoteReward::with_token(
        RemoteConfig {
            reward: Some("other".into()),
            ..config(&url)
        },
        SharedToken::new(TOKEN).unwrap(),
    )
    .unwrap();
    let err = runtime.block_on(reward.check()).unwrap_err().to_string();
    assert!(err.contains(r#"it serves ["echo"], not `other`"#), "{err}");
    let health = runtime
        .block_on(set_reward_check(&url))
        .expect("the served reward passes");
    assert_eq!(health.name, "fake");
}

async fn set_reward_check(url: &str) -> Result<HealthResponse, temper_rewards::BoxError> {
    let config = RemoteConfig {
        reward: Some("echo".into()),
        ..config(url)
    };
    RemoteReward::with_token(config, SharedToken::new(TOKEN).unwrap())
        .unwrap()
        .check()
        .await
}

#[test]
fn config_from_toml_needs_the_token_variable() {
    let config: RewardSetConfig = toml::from_str(
        r#"
        [[rewards]]
        kind = "remote"
        url = "http://127.0.0.1:9"
        token_env = "TEMPER_TEST_REMOTE_TOKEN_NOT_SET"
        timeout_s = 5
        "#,
    )
    .unwrap();
    let err = RewardSet::from_config(&config).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid `rewards[0].token_env`")
            && err.contains("TEMPER_TEST_REMOTE_TOKEN_NOT_SET"),
        "{err}"
    );
    let bad: RewardSetConfig =
        toml::from_str("[[rewards]]\nkind = \"remote\"\nurl = \"localhost:1\"\n").unwrap();
    let err = bad.validate().unwrap_err().to_string();
    assert!(err.starts_with("invalid `rewards[0].url`"), "{err}");
}
