//! [`Observer`]: how a run reports progress to whoever shows it (the CLI draws progress bars;
//! tests and benchmarks use [`Silent`]).

use serde_json::{Map, Value};

/// Receives the run's progress; every method has a do-nothing default.
pub trait Observer {
    /// A phase (`"eval initial"`, `"sft"`, `"rl"`, ...) starts with `done` of `total` units done.
    fn begin(&mut self, _phase: &str, _total: usize, _done: usize) {}
    /// One unit of the current phase finished; `record` is what went to `metrics.jsonl` (for
    /// steps) or a progress note (for evaluation batches).
    fn advance(&mut self, _record: &Map<String, Value>) {}
    /// The current phase ended.
    fn end(&mut self, _phase: &str) {}
    /// A line worth showing (checkpoint written, interrupt received, ...).
    fn note(&mut self, _text: &str) {}
}

/// Shows nothing.
pub struct Silent;

impl Observer for Silent {}
