//! [`Observer`]: how a run reports progress to whoever shows it (the CLI draws progress bars;
//! tests and benchmarks use [`Silent`]).

use super::records::StepRecord;

/// One unit of progress of the current phase.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A step finished: the record that went to `metrics.jsonl`.
    Step(&'a StepRecord),
    /// An evaluation decoded another batch.
    Eval {
        /// Held-out prompts decoded so far.
        done: usize,
        /// Accuracy over them.
        accuracy: f64,
    },
}

/// Receives the run's progress; every method has a do-nothing default.
pub trait Observer {
    /// A phase (`"eval initial"`, `"sft"`, `"rl"`, ...) starts with `done` of `total` units done.
    fn begin(&mut self, _phase: &str, _total: usize, _done: usize) {}
    /// One unit of the current phase finished.
    fn advance(&mut self, _progress: Progress<'_>) {}
    /// The current phase ended.
    fn end(&mut self, _phase: &str) {}
    /// A line worth showing (checkpoint written, interrupt received, ...).
    fn note(&mut self, _text: &str) {}
}

/// Shows nothing.
pub struct Silent;

impl Observer for Silent {}
