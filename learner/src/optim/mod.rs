//! Optimisers. [`AdamW`] keeps its state by parameter path so that it survives a checkpoint.

pub mod adamw;

pub use adamw::{AdamW, AdamWConfig, parameter_paths};
