//! `metrics.jsonl`: one JSON object per training step or evaluation, each with `stage` and
//! `step`. Written line by line and flushed, so a killed run keeps every finished step; a resumed
//! run first cuts the file back to the lines its checkpoint accounts for.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// An append-only JSON-lines log.
pub struct MetricsLog {
    path: PathBuf,
    file: File,
    records: Vec<Map<String, Value>>,
}

impl MetricsLog {
    /// Opens `path`, keeping its first `keep` lines (0 = start a new file).
    pub fn open(path: &Path, keep: usize) -> std::io::Result<Self> {
        let mut records = Vec::new();
        if keep > 0 {
            let reader = BufReader::new(File::open(path)?);
            for line in reader.lines().take(keep) {
                let value: Value = serde_json::from_str(&line?)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                if let Value::Object(map) = value {
                    records.push(map);
                }
            }
            if records.len() < keep {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "{} has {} records but the checkpoint accounts for {keep}",
                        path.display(),
                        records.len()
                    ),
                ));
            }
        }
        // Rewrite the kept prefix: lines after it belong to steps the resumed run repeats.
        let mut file = File::create(path)?;
        for record in &records {
            writeln!(file, "{}", Value::Object(record.clone()))?;
        }
        file.flush()?;
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            records,
        })
    }

    /// Appends one record and flushes it.
    pub fn write(&mut self, record: Map<String, Value>) -> std::io::Result<()> {
        writeln!(self.file, "{}", Value::Object(record.clone()))?;
        self.file.flush()?;
        self.records.push(record);
        Ok(())
    }

    /// Records written so far (including those kept from before a resume).
    pub fn records(&self) -> &[Map<String, Value>] {
        &self.records
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
