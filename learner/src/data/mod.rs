//! User datasets: JSONL prompt files in the Qwen-VL message layout, validated once when opened
//! (bad records logged to `data_errors.jsonl` and skipped), read in a seeded per-epoch order.
//!
//! - [`record`]: the serde types of one line;
//! - [`jsonl`]: reading a file into records, line by line;
//! - [`resolve`]: a record's files (images, video frames) loaded into a [`TaskPrompt`];
//! - [`errors`]: the bad-record log;
//! - [`order`]: which record a cursor index reads;
//! - [`dataset`]: [`DatasetTask`](dataset::DatasetTask), the [`Task`] over a train and an eval file.
//!
//! [`TaskPrompt`]: crate::tasks::task::TaskPrompt
//! [`Task`]: crate::tasks::task::Task

pub mod dataset;
pub mod errors;
pub mod jsonl;
pub mod order;
pub mod record;
pub mod resolve;

use std::path::PathBuf;

/// Errors opening or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A dataset file (or the error log) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every record of a file was bad.
    #[error("{file}: no usable record ({bad} bad line(s), each logged with its reason in {log})")]
    NoUsableRecords {
        /// The dataset file.
        file: PathBuf,
        /// Bad lines.
        bad: usize,
        /// The bad-record log.
        log: PathBuf,
    },
    /// A record that was valid when the dataset was opened no longer loads.
    #[error("{file} line {line}: {source}")]
    Record {
        /// The dataset file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        #[source]
        source: record::RecordError,
    },
}
