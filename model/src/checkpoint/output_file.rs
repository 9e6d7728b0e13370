//! An output file that is either written completely or not at all: bytes go to a temporary file
//! beside the target, which is renamed over it only once everything was written and synced.
//! An existing file is never truncated before the new one is complete, a failed run leaves it as
//! it was, and every error names the file the user asked for (never the temporary).
//!
//! Targets that are not regular files (`/dev/full`, a pipe, `/dev/stdout`) cannot be replaced by
//! a rename; they are written in place (appending), so their write errors are reported too.
//! New files get the usual `0666 & !umask` mode (the temporary files of `tempfile` are `0600`);
//! a replaced file keeps its permissions.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{ModelError, Result};

/// Distinguishes the temporary files of one process.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written; [`commit`](Self::commit) puts it in place. Dropping it uncommitted
/// removes the temporary file and leaves the target untouched.
pub struct OutputFile {
    /// The path as given, for messages.
    path: PathBuf,
    /// The file the rename replaces (symlinks resolved).
    target: PathBuf,
    /// The temporary file, or `None` when writing in place.
    temp: Option<PathBuf>,
    writer: BufWriter<File>,
}

impl OutputFile {
    /// Starts writing `path`. Fails (naming `path`) if it is a directory or its directory
    /// does not exist or is not writable.
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fail = |e: io::Error| ModelError::write(&path, e);
        let existing = match std::fs::metadata(&path) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(fail(e)),
        };
        if let Some(meta) = &existing {
            if meta.is_dir() {
                return Err(fail(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a directory; name a file",
                )));
            }
            if !meta.is_file() || in_place_only(&path) {
                let file = OpenOptions::new().append(true).open(&path).map_err(fail)?;
                return Ok(Self {
                    target: path.clone(),
                    path: path.clone(),
                    temp: None,
                    writer: BufWriter::new(file),
                });
            }
        }
        let target = match &existing {
            Some(_) => std::fs::canonicalize(&path).map_err(fail)?,
            None => path.clone(),
        };
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let temp = dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .map_err(fail)?;
        let out = Self {
            path: path.clone(),
            target,
            temp: Some(temp),
            writer: BufWriter::with_capacity(1 << 20, file),
        };
        if let (Some(meta), Some(temp)) = (&existing, &out.temp) {
            std::fs::set_permissions(temp, meta.permissions()).map_err(fail)?;
        }
        Ok(out)
    }

    /// The path as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the temporary file over the target.
    pub fn commit(mut self) -> Result<()> {
        let path = self.path.clone();
        let fail = |e: io::Error| ModelError::write(&path, e);
        self.writer.flush().map_err(fail)?;
        if let Some(temp) = self.temp.take() {
            let done = self
                .writer
                .get_ref()
                .sync_all()
                .and_then(|()| std::fs::rename(&temp, &self.target));
            if let Err(e) = done {
                let _ = std::fs::remove_file(&temp);
                return Err(fail(e));
            }
        }
        Ok(())
    }

    /// Converts an I/O error of a write into one naming the file.
    pub fn error(&self, source: io::Error) -> ModelError {
        ModelError::write(&self.path, source)
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}

/// `/dev/stdout` and `/proc/self/fd/N` can resolve to a regular file, but replacing that file
/// by a rename would take the output away from whoever holds the descriptor.
fn in_place_only(path: &Path) -> bool {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute.starts_with("/dev") || absolute.starts_with("/proc")
}

/// Writes `bytes` to `path` through an [`OutputFile`].
pub fn write_file(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let mut out = OutputFile::create(path)?;
    if let Err(e) = out.write_all(bytes) {
        return Err(out.error(e));
    }
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, b"old").unwrap();
        {
            let mut out = OutputFile::create(&path).unwrap();
            out.write_all(b"new, but never committed").unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), b"old", "not truncated");
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is removed");

        write_file(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn write_errors_name_the_file_asked_for() {
        let err = write_file("/nonexistent-dir/out.bin", b"x").unwrap_err();
        assert_eq!(
            err.to_string().split(':').next().unwrap(),
            "cannot write /nonexistent-dir/out.bin"
        );
        if Path::new("/dev/full").exists() {
            let err = write_file("/dev/full", b"x").unwrap_err();
            assert!(
                err.to_string().starts_with("cannot write /dev/full: "),
                "{err}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let err = write_file(dir.path(), b"x").unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
    }
}
