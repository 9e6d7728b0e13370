//! Built-in tasks with verifiable answers, for the embedded default run.

pub mod shapes;
