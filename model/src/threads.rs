//! The CPU thread pool: how many threads the CPU backend's kernels (burn-flex's matmul through
//! `gemm`, its element-wise and reduction ops) run on.
//!
//! burn-flex parallelises on rayon's *global* pool, so the count is a process-wide choice the
//! binary makes once, before the first tensor op: [`configure`] with `--threads`, else the
//! `TEMPER_THREADS` environment variable, else every core the process may use. [`in_use`] is the
//! number really used — what benchmarks report, rather than the machine's core count.
//!
//! Results do not depend on the thread count beyond float reassociation (a matmul split across
//! threads sums its blocks in another order); `tests/threads.rs` holds the logits of a 1- and a
//! 2-thread forward within 1e-5 of each other.

use std::num::NonZeroUsize;

/// The environment variable read when no explicit count is given.
pub const ENV: &str = "TEMPER_THREADS";

/// Why the pool could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ThreadsError {
    #[error(
        "{ENV}={value:?} is not a thread count; set a whole number ≥ 1 (or unset it for all cores)"
    )]
    BadEnv { value: String },
    #[error(
        "the CPU thread pool was already started with {running} threads, so {requested} cannot be \
         set; choose the count before any tensor work"
    )]
    AlreadyStarted { requested: usize, running: usize },
}

/// Sets the CPU thread count for the rest of the process and returns it: `requested`, else
/// `TEMPER_THREADS`, else all available cores.
pub fn configure(requested: Option<NonZeroUsize>) -> Result<usize, ThreadsError> {
    let requested = match requested {
        Some(n) => Some(n.get()),
        None => from_env()?,
    };
    let mut builder = rayon::ThreadPoolBuilder::new().thread_name(|i| format!("temper-cpu-{i}"));
    if let Some(n) = requested {
        builder = builder.num_threads(n);
    }
    match builder.build_global() {
        Ok(()) => Ok(in_use()),
        // Started already (a library call ran a parallel op first): fine if it has the count asked
        // for, or if none was asked for.
        Err(_) => match requested {
            Some(n) if n != in_use() => Err(ThreadsError::AlreadyStarted {
                requested: n,
                running: in_use(),
            }),
            _ => Ok(in_use()),
        },
    }
}

/// Threads of the pool the CPU kernels run on (inside [`rayon::ThreadPool::install`], that pool's).
pub fn in_use() -> usize {
    rayon::current_num_threads()
}

fn from_env() -> Result<Option<usize>, ThreadsError> {
    match std::env::var(ENV) {
        Err(_) => Ok(None),
        Ok(value) if value.trim().is_empty() => Ok(None),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(ThreadsError::BadEnv { value }),
        },
    }
}
