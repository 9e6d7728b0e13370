//! The one retry rule of Temper's clients — the gRPC clients (reward plug-ins, remote tools)
//! and the judge's HTTP client alike: attempt `k` (0-based) that fails with a transient error is
//! followed, if `k < retries`, by a pause drawn uniformly from `[0, min(backoff · 2^k,
//! max_backoff)]` ("full jitter": many clients retrying together spread out instead of
//! hammering a restarting service in lockstep) and attempt `k + 1`. Named presets hold the
//! defaults: [`RetryPolicy::GRPC`], [`RetryPolicy::HTTP_API`].
//!
//! What is transient is the caller's call ([`RetryPolicy::run_if`]); for gRPC it is exactly
//! these codes ([`is_transient`], used by [`RetryPolicy::run`]): `UNAVAILABLE` (service down or
//! restarting), `DEADLINE_EXCEEDED` (slow this time), `RESOURCE_EXHAUSTED` (overloaded) and
//! `ABORTED` (concurrency conflict). Every other code — `INVALID_ARGUMENT`, `UNAUTHENTICATED`,
//! `PERMISSION_DENIED`, `UNIMPLEMENTED`, `INTERNAL`, ... — would fail the same way again and is
//! returned at once.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tonic::Code;

/// Whether a gRPC failure with this code is worth retrying.
pub fn is_transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted | Code::Aborted
    )
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Further attempts after the first one.
    pub retries: u32,
    /// The ceiling of the pause before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// The largest ceiling.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// gRPC calls to a plug-in or tool service: 2 retries from 200 ms, pauses at most 10 s.
    pub const GRPC: Self = Self {
        retries: 2,
        backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(10),
    };

    /// An HTTP inference API (the judge's OpenAI-compatible endpoint): 3 retries from 500 ms,
    /// pauses at most 30 s (a 429 wants a longer wait than a restarting gRPC service).
    pub const HTTP_API: Self = Self {
        retries: 3,
        backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(30),
    };
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::GRPC
    }
}

impl RetryPolicy {
    /// The longest pause after failed attempt `attempt` (0-based): `min(backoff · 2^attempt,
    /// max_backoff)`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// The pause after failed attempt `attempt`: uniform in `[0, ceiling(attempt)]`.
    pub fn pause(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
    }

    /// Runs `call` until it succeeds, fails with an error `retryable` rejects, or has failed
    /// `retries + 1` times; returns the last result. `call` gets the attempt number.
    pub async fn run_if<T, E, F, Fut>(
        &self,
        retryable: impl Fn(&E) -> bool,
        mut call: F,
    ) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            match call(attempt).await {
                Ok(value) => return Ok(value),
                Err(e) if attempt < self.retries && retryable(&e) => {
                    let pause = self.pause(attempt);
                    tracing::warn!(attempt, ?pause, error = %e, "transient failure, retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`run_if`](Self::run_if) for gRPC: retries the [transient](is_transient) codes, as
    /// `code_of` reads them from the error.
    pub async fn run<T, E, F, Fut>(&self, code_of: impl Fn(&E) -> Code, call: F) -> Result<T, E>
    where
        E: std::fmt::Display,
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run_if(|e| is_transient(code_of(e)), call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn only_the_four_transient_codes_are_retried() {
        let transient: Vec<Code> = (0..17)
            .map(Code::from)
            .filter(|c| is_transient(*c))
            .collect();
        assert_eq!(
            transient,
            [
                Code::DeadlineExceeded,
                Code::ResourceExhausted,
                Code::Aborted,
                Code::Unavailable
            ]
        );
    }

    #[test]
    fn ceilings_double_up_to_the_cap_and_pauses_are_jittered_below_them() {
        let policy = RetryPolicy {
            retries: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let ceilings: Vec<u128> = (0..5).map(|k| policy.ceiling(k).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 500, 500]);
        assert_eq!(policy.ceiling(40), Duration::from_millis(500));
        // Full jitter: every pause within [0, ceiling], and not all the same.
        let pauses: Vec<Duration> = (0..200).map(|_| policy.pause(2)).collect();
        assert!(pauses.iter().all(|p| *p <= Duration::from_millis(400)));
        let (lo, hi) = (pauses.iter().min().unwrap(), pauses.iter().max().unwrap());
        assert!(*hi - *lo > Duration::from_millis(200), "{lo:?}..{hi:?}");
    }

    #[test]
    fn the_caller_decides_what_is_transient() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let calls = Cell::new(0u32);
        let result: Result<u8, String> = rt.block_on(RetryPolicy::HTTP_API.run_if(
            |e: &String| e.starts_with("503"),
            |k| {
                calls.set(calls.get() + 1);
                async move {
                    if k < 2 {
                        Err("503".to_string())
                    } else {
                        Err("400".into())
                    }
                }
            },
        ));
        assert_eq!((result, calls.get()), (Err("400".into()), 3));
    }

    /// A gRPC code as an error that displays.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct Failed(Code);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    fn run(policy: RetryPolicy, outcomes: &[Result<u8, Code>]) -> (Result<u8, Code>, u32) {
        let calls = Cell::new(0u32);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let result = rt.block_on(policy.run(
            |f: &Failed| f.0,
            |k| {
                calls.set(calls.get() + 1);
                let out = outcomes[k as usize].map_err(Failed);
                async move { out }
            },
        ));
        (result.map_err(|f| f.0), calls.get())
    }

    #[test]
    fn retries_transient_failures_then_succeeds_or_gives_up() {
        let policy = RetryPolicy::default();
        let ok_third = [Err(Code::Unavailable), Err(Code::Aborted), Ok(7)];
        assert_eq!(run(policy, &ok_third), (Ok(7), 3));
        let always = [Err(Code::Unavailable); 3];
        assert_eq!(run(policy, &always), (Err(Code::Unavailable), 3));
        let fatal = [Err(Code::InvalidArgument), Ok(1)];
        assert_eq!(run(policy, &fatal), (Err(Code::InvalidArgument), 1));
        let unauth = [Err(Code::Unauthenticated), Ok(1)];
        assert_eq!(run(policy, &unauth), (Err(Code::Unauthenticated), 1));
    }
}
