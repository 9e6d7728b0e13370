//! [`DatasetTask`]: the [`Task`] over a JSONL train file and an eval file.
//!
//! Opening validates every line once, in line order: JSON, `messages`, every image and video
//! frame readable, the prompt at most `max_prompt_tokens` tokens after the chat template, every
//! listed tool registered. Bad lines are written to the bad-record log and left out; the usable
//! records keep their file order. A file with no usable record is an error.
//!
//! Train index `i` reads the usable record at position `i mod n` of epoch `⌊i / n⌋`'s order
//! ([`order`](super::order)); eval index `i` reads the eval file's `i`-th usable record (no
//! shuffle; an index past the end is an error — the trainer checks `eval.examples` against
//! [`Task::len`] before any work).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use temper_model::processor::Processor;

use super::errors::{self, BadRecord};
use super::order::{epoch_order, locate};
use super::record::{Record, RecordError};
use super::{DataError, jsonl, resolve};
use crate::tasks::task::{Split, Task, TaskError, TaskPrompt};

/// Tool names a record may list: the actor's built-in tools.
pub const REGISTERED_TOOLS: [&str; 2] = ["calculator", "image_zoom"];

/// What a dataset is opened with.
#[derive(Debug, Clone)]
pub struct DatasetOptions<'a> {
    /// The training file.
    pub train: &'a Path,
    /// The held-out file.
    pub eval: Option<&'a Path>,
    /// A new seeded order every epoch (otherwise file order).
    pub shuffle: bool,
    /// Longest prompt kept, in tokens after the chat template (text and vision).
    pub max_prompt_tokens: usize,
    /// Where bad records are logged.
    pub error_log: &'a Path,
}

/// The usable records of one file.
#[derive(Debug)]
struct Records {
    file: PathBuf,
    /// The file's folder, which relative paths resolve against.
    base: PathBuf,
    /// `(line, record)` in file order.
    records: Vec<(usize, Record)>,
}

/// A user dataset as a [`Task`].
#[derive(Debug)]
pub struct DatasetTask {
    train: Records,
    eval: Option<Records>,
    shuffle: bool,
    skipped: u64,
    /// The last epoch order computed, `(seed, epoch, order)`.
    order: Mutex<Option<(u64, u64, Vec<usize>)>>,
}

impl DatasetTask {
    /// Opens and validates the files, writing the bad-record log (see the module doc).
    pub fn open(options: &DatasetOptions<'_>, processor: &Processor) -> Result<Self, DataError> {
        let mut bad = Vec::new();
        let train = validate(options.train, options, processor, &mut bad)?;
        let eval = match options.eval {
            Some(path) => Some(validate(path, options, processor, &mut bad)?),
            None => None,
        };
        errors::write(options.error_log, &bad)?;
        for records in std::iter::once(&train).chain(&eval) {
            if records.records.is_empty() {
                return Err(DataError::NoUsableRecords {
                    file: records.file.clone(),
                    bad: bad.iter().filter(|b| b.file == records.file).count(),
                    log: options.error_log.to_path_buf(),
                });
            }
        }
        if !bad.is_empty() {
            tracing::warn!(
                skipped = bad.len(),
                log = %options.error_log.display(),
                "bad dataset records skipped"
            );
        }
        Ok(Self {
            train,
            eval,
            shuffle: options.shuffle,
            skipped: bad.len() as u64,
            order: Mutex::new(None),
        })
    }

    /// `(epoch, position)` train index `index` reads.
    pub fn locate(&self, index: u64) -> (u64, usize) {
        locate(index, self.train.records.len())
    }

    fn train_record(&self, seed: u64, index: u64) -> usize {
        let n = self.train.records.len();
        let (epoch, position) = locate(index, n);
        let mut cache = self.order.lock().unwrap_or_else(|e| e.into_inner());
        match cache.as_ref() {
            Some((s, e, order)) if *s == seed && *e == epoch => order[position],
            _ => {
                let order = epoch_order(n, seed, epoch, self.shuffle);
                let record = order[position];
                *cache = Some((seed, epoch, order));
                record
            }
        }
    }
}

/// The usable records of `path`; bad lines appended to `bad`.
fn validate(
    path: &Path,
    options: &DatasetOptions<'_>,
    processor: &Processor,
    bad: &mut Vec<BadRecord>,
) -> Result<Records, DataError> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut records = Vec::new();
    for (line, parsed) in jsonl::read(path)? {
        let id = parsed.as_ref().ok().and_then(|r| r.id.clone());
        let checked = parsed.and_then(|record| {
            check(&record, &base, line, options.max_prompt_tokens, processor)?;
            Ok(record)
        });
        match checked {
            Ok(record) => records.push((line, record)),
            Err(error) => bad.push(BadRecord {
                file: path.to_path_buf(),
                line,
                id,
                error: error.to_string(),
            }),
        }
    }
    Ok(Records {
        file: path.to_path_buf(),
        base,
        records,
    })
}

/// A record's tools registered, files readable and prompt short enough.
fn check(
    record: &Record,
    base: &Path,
    line: usize,
    max_prompt_tokens: usize,
    processor: &Processor,
) -> Result<(), RecordError> {
    if let Some(name) = record
        .tools
        .iter()
        .find(|t| !REGISTERED_TOOLS.contains(&t.as_str()))
    {
        return Err(RecordError::UnknownTool {
            name: name.clone(),
            registered: REGISTERED_TOOLS.join(", "),
        });
    }
    let prompt = resolve::load(record, base, line)?;
    let prepared = processor
        .prepare(&prompt.messages, &prompt.images, &prompt.videos)
        .map_err(|e| RecordError::Prepare(e.to_string()))?;
    let tokens = prepared.input_ids.len();
    if tokens > max_prompt_tokens {
        return Err(RecordError::TooLong {
            tokens,
            max: max_prompt_tokens,
        });
    }
    Ok(())
}

impl Task for DatasetTask {
    fn prompt(&self, seed: u64, split: Split, index: u64) -> Result<TaskPrompt, TaskError> {
        let fail = |source: Box<dyn std::error::Error + Send + Sync>| TaskError {
            split,
            index,
            source,
        };
        let (records, position) = match split {
            Split::Train => (&self.train, self.train_record(seed, index)),
            Split::Eval => {
                let eval = self
                    .eval
                    .as_ref()
                    .ok_or_else(|| fail("the dataset has no eval file".into()))?;
                let position = usize::try_from(index)
                    .ok()
                    .filter(|&i| i < eval.records.len())
                    .ok_or_else(|| {
                        fail(
                            format!("the eval file has {} usable records", eval.records.len())
                                .into(),
                        )
                    })?;
                (eval, position)
            }
        };
        let (line, record) = &records.records[position];
        resolve::load(record, &records.base, *line).map_err(|source| {
            fail(Box::new(DataError::Record {
                file: records.file.clone(),
                line: *line,
                source,
            }))
        })
    }

    fn len(&self, split: Split) -> Option<u64> {
        Some(match split {
            Split::Train => self.train.records.len() as u64,
            Split::Eval => self.eval.as_ref().map_or(0, |e| e.records.len() as u64),
        })
    }

    fn skipped(&self) -> Option<u64> {
        Some(self.skipped)
    }
}
