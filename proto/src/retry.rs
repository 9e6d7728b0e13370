//! Retries of failed gRPC calls. Exactly these codes are transient, i.e. worth another try
//! after a pause: `UNAVAILABLE` (service down or restarting), `DEADLINE_EXCEEDED` (slow this
//! time), `RESOURCE_EXHAUSTED` (overloaded) and `ABORTED` (concurrency conflict). Every other
//! code — `INVALID_ARGUMENT`, `UNAUTHENTICATED`, `PERMISSION_DENIED`, `UNIMPLEMENTED`,
//! `INTERNAL`, ... — would fail the same way again and is returned at once.
//!
//! Rule: attempt `k` (0-based) that fails transiently is followed, if `k < retries`, by a pause
//! of `min(backoff · 2^k, max_backoff)` and attempt `k + 1`.

use std::future::Future;
use std::time::Duration;

use tonic::Code;

/// Whether a failure with this code is worth retrying.
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
    /// The pause before the first retry; doubled for each further one.
    pub backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 2,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (0-based).
    pub fn pause(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    /// Runs `call` until it succeeds, fails with a non-transient code (as `code_of` tells), or
    /// has failed `retries + 1` times; returns the last result.
    pub async fn run<T, E, F, Fut>(&self, code_of: impl Fn(&E) -> Code, mut call: F) -> Result<T, E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            match call(attempt).await {
                Ok(value) => return Ok(value),
                Err(e) if attempt < self.retries && is_transient(code_of(&e)) => {
                    let pause = self.pause(attempt);
                    tracing::debug!(attempt, code = ?code_of(&e), ?pause, "transient failure, retrying");
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
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
    fn pauses_double_up_to_the_cap() {
        let policy = RetryPolicy {
            retries: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        let pauses: Vec<u128> = (0..5).map(|k| policy.pause(k).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        assert_eq!(policy.pause(40), Duration::from_millis(500));
    }

    fn run(policy: RetryPolicy, outcomes: &[Result<u8, Code>]) -> (Result<u8, Code>, u32) {
        let calls = Cell::new(0u32);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let result = rt.block_on(policy.run(
            |c: &Code| *c,
            |k| {
                calls.set(calls.get() + 1);
                let out = outcomes[k as usize];
                async move { out }
            },
        ));
        (result, calls.get())
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
