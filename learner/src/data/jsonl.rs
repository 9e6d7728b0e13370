//! Reading a JSONL file: one [`Record`] per non-blank line, each parsed on its own so that one
//! bad line costs only itself. Line numbers are 1-based, as an editor shows them.

use std::path::Path;

use super::DataError;
use super::record::{Record, RecordError};

/// One non-blank line: its 1-based number and its parse result.
pub type Line = (usize, Result<Record, RecordError>);

/// Every non-blank line of `path` with its 1-based number and its parse result.
pub fn read(path: &Path) -> Result<Vec<Line>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, serde_json::from_str(line).map_err(RecordError::from)))
        .collect())
}
