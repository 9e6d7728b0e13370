//! The bad-record log, `<run-dir>/data_errors.jsonl`: one `{"file", "line", "id", "error"}`
//! object per bad record, in file and line order. Written whole when the dataset is opened (a
//! resumed run opens the same files and writes the same log), so nothing is dropped silently.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::DataError;

/// One bad record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BadRecord {
    /// The dataset file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// The record's `id`, when it had one.
    pub id: Option<String>,
    /// Why it was skipped.
    pub error: String,
}

/// Writes `records` to `path` (replacing it).
pub fn write(path: &Path, records: &[BadRecord]) -> Result<(), DataError> {
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for record in records {
        let line = serde_json::to_string(record).expect("a bad-record entry serialises");
        writeln!(file, "{line}").map_err(io)?;
    }
    file.flush().map_err(io)
}
