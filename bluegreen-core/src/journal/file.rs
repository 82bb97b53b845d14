//! A journal in a JSON-lines file per application.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::backwards::{Backwards, CHUNK};
use super::{Entry, Journal};
use crate::error::{Error, Result};
use crate::model::AppName;

/// How much of a discarded torn line [`FileJournal::torn_tail`] quotes.
const PREVIEW: usize = 40;

/// A journal kept in `<dir>/<app>.journal.jsonl`: one JSON [`Entry`] per line, append-only.
///
/// # Durability
/// [`append`](Journal::append) writes the whole line with one `write` in append mode and
/// `fsync`s it (`sync_data`) before it returns; the file's creation is made durable by `fsync`ing
/// the directory. An entry whose `append` returned `Ok` survives a crash or a power loss (as far
/// as the disk honours `fsync`).
///
/// # Crashes
/// A crash during `append` can leave a torn last line. [`open`](FileJournal::open) finds it, cuts
/// it off (that entry was never acknowledged), and reports it through
/// [`torn_tail`](Journal::torn_tail) and a `tracing` warning. It is never an error.
///
/// # Sharing
/// Appends from one process are serialised by a mutex; appends, and the repair in `open`, also
/// take an exclusive `flock` on the journal file, so several processes (or several `FileJournal`s
/// for one file) never interleave lines, and a process that opens the journal while another
/// writes never cuts off a line that is being written. Readers in other processes may see a line
/// being written as an unterminated last line: [`tail`](Journal::tail) skips it.
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
    /// Read + append; shared with the blocking tasks that use it.
    file: Arc<Mutex<File>>,
    torn: Option<String>,
}

impl FileJournal {
    /// Opens (creating if needed) the journal of `app` in `dir`, creating `dir` if needed, and
    /// repairs a torn last line (see [Crashes](FileJournal#crashes)).
    ///
    /// This does blocking file I/O (and waits for another process's append in progress); call it
    /// from `spawn_blocking` if that matters to you.
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error if the directory or file cannot be created, opened,
    /// read, or repaired.
    pub fn open(dir: impl AsRef<Path>, app: &AppName) -> Result<FileJournal> {
        let dir = dir.as_ref();
        let path = dir.join(format!("{app}.journal.jsonl"));
        let fail = |what: &str, e: io::Error| journal_error(&path, what, &e);

        std::fs::create_dir_all(dir).map_err(|e| fail("create directory", e))?;
        let mut options = OpenOptions::new();
        options.read(true).append(true);
        let file = match options.clone().create_new(true).open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options.open(&path).map_err(|e| fail("open", e))?,
            Err(e) => return Err(fail("create", e)),
        };
        // Make the file's name durable, so an fsync'd entry cannot be lost with it. On every open,
        // not only on creation: its creator may have crashed before doing so.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| fail("sync directory", e))?;

        file.lock().map_err(|e| fail("lock", e))?;
        let repaired = repair_tail(&file);
        let unlocked = file.unlock();
        let torn = repaired.map_err(|e| fail("repair torn tail", e))?;
        unlocked.map_err(|e| fail("unlock", e))?;
        if let Some(torn) = &torn {
            tracing::warn!(journal = %path.display(), "{torn}");
        }
        Ok(FileJournal {
            path,
            file: Arc::new(Mutex::new(file)),
            torn,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// [`tail`](Journal::tail) reading `chunk` bytes at a time; also says how many bytes it read.
    async fn tail_with(&self, n: usize, chunk: usize) -> Result<(Vec<Entry>, u64)> {
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        let read = tokio::task::spawn_blocking(move || {
            let file = file.lock().unwrap_or_else(PoisonError::into_inner);
            read_tail(&file, &path, n, chunk)
        });
        read.await.map_err(|e| self.join_error(&e))?
    }

    fn join_error(&self, e: &tokio::task::JoinError) -> Error {
        Error::Journal {
            path: self.path.display().to_string(),
            reason: format!("blocking task failed: {e}"),
        }
    }
}

#[async_trait]
impl Journal for FileJournal {
    /// Appends `entry` as one line and `fsync`s it.
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error. After a failed write or `fsync`, the partial line is
    /// cut off again (best effort), so an error means the entry is not in the journal.
    ///
    /// # Cancellation
    /// The write runs on the blocking pool and finishes even if this future is dropped: the entry
    /// may then be in the journal or not, and [`tail`](Journal::tail) says which.
    async fn append(&self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::Journal {
            path: self.path.display().to_string(),
            reason: format!("cannot serialise entry {}: {e}", entry.seq),
        })?;
        line.push(b'\n');
        let file = Arc::clone(&self.file);
        let path = self.path.clone();
        let write = tokio::task::spawn_blocking(move || {
            let file = file.lock().unwrap_or_else(PoisonError::into_inner);
            append_line(&file, &line).map_err(|(what, e)| journal_error(&path, what, &e))
        });
        write.await.map_err(|e| self.join_error(&e))?
    }

    /// The last `n` entries, oldest first, read backwards from the end 64 KiB at a time.
    ///
    /// A line that is not JSON (a write that failed and could not be cut off, or a line another
    /// process is still writing) is skipped with a warning.
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error, or if a complete JSON line is not an [`Entry`] this
    /// version can read (written by another version, or edited): acting on an older entry instead
    /// would be wrong, so it is not skipped.
    ///
    /// # Cancellation
    /// Harmless: it only reads (the read finishes on the blocking pool and is discarded).
    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        self.tail_with(n, CHUNK).await.map(|(entries, _)| entries)
    }

    fn torn_tail(&self) -> Option<String> {
        self.torn.clone()
    }

    fn location(&self) -> String {
        self.path.display().to_string()
    }
}

fn journal_error(path: &Path, what: &str, e: &io::Error) -> Error {
    Error::Journal {
        path: path.display().to_string(),
        reason: format!("{what}: {e}"),
    }
}

/// Writes `line` at the end and `fsync`s it, under the file's `flock`. On failure, cuts the file
/// back to where it was.
fn append_line(file: &File, line: &[u8]) -> std::result::Result<(), (&'static str, io::Error)> {
    file.lock().map_err(|e| ("lock", e))?;
    let result = (|| {
        // Another process may have died mid-write since this journal was opened: cut its torn
        // line off first, or this entry would be glued to it and lost.
        if !ends_with_newline(file).map_err(|e| ("read", e))? {
            if let Some(torn) = repair_tail(file).map_err(|e| ("repair torn tail", e))? {
                tracing::warn!("journal: before appending, {torn}");
            }
        }
        let before = file.metadata().map_err(|e| ("stat", e))?.len();
        let written = {
            let mut w = file;
            w.write_all(line).map_err(|e| ("write", e))
        }
        .and_then(|()| file.sync_data().map_err(|e| ("fsync", e)));
        if written.is_err() {
            if let Err(e) = file.set_len(before).and_then(|()| file.sync_data()) {
                tracing::warn!("journal: cannot cut off a failed append at offset {before}: {e}");
            }
        }
        written
    })();
    // Closing the file would release the lock too; an unlock error only delays other writers.
    if let Err(e) = file.unlock() {
        tracing::warn!("journal: unlock failed: {e}");
    }
    result
}

/// Whether the file is empty or ends with a newline.
fn ends_with_newline(file: &File) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.read_exact_at(&mut last, len - 1)?;
    Ok(last[0] == b'\n')
}

/// Cuts off a torn last line; returns what it discarded. The caller holds the `flock`.
///
/// Torn means: no trailing `\n`, or not JSON at all. A prefix of a JSON object is never a JSON
/// object, so this finds every torn write, while a complete line that is JSON but not an `Entry`
/// this version reads (one written by a newer version) is kept: it is not torn, and cutting it off
/// would lose an acknowledged entry.
fn repair_tail(file: &File) -> io::Result<Option<String>> {
    let len = file.metadata()?.len();
    let mut lines = Backwards::new(file, len, CHUNK);
    let Some(last) = lines.next_line()? else {
        return Ok(None);
    };
    if last.terminated && serde_json::from_slice::<serde_json::Value>(&last.bytes).is_ok() {
        return Ok(None);
    }
    let discarded = len - last.offset;
    file.set_len(last.offset)?;
    file.sync_data()?;
    Ok(Some(format!(
        "discarded {discarded} torn bytes at offset {}: {}",
        last.offset,
        preview(&last.bytes)
    )))
}

/// The start of a line, readable in a log line.
fn preview(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(PREVIEW) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(PREVIEW).is_some() {
        out.push_str("...");
    }
    out
}

/// Reads the last `n` entries going backwards; also returns how many bytes that read.
fn read_tail(file: &File, path: &Path, n: usize, chunk: usize) -> Result<(Vec<Entry>, u64)> {
    let fail = |e: io::Error| journal_error(path, "read", &e);
    let len = file.metadata().map_err(fail)?.len();
    let mut lines = Backwards::new(file, len, chunk);
    let mut entries = Vec::with_capacity(n.min(1024));
    while entries.len() < n {
        let Some(line) = lines.next_line().map_err(fail)? else {
            break;
        };
        if !line.terminated {
            tracing::warn!(
                journal = %path.display(),
                "skipping an unterminated last line at offset {} (being written?): {}",
                line.offset,
                preview(&line.bytes)
            );
            continue;
        }
        match serde_json::from_slice::<Entry>(&line.bytes) {
            Ok(entry) => entries.push(entry),
            Err(e) if serde_json::from_slice::<serde_json::Value>(&line.bytes).is_ok() => {
                return Err(Error::Journal {
                    path: path.display().to_string(),
                    reason: format!("unreadable entry at offset {}: {e}", line.offset),
                });
            }
            Err(_) => tracing::warn!(
                journal = %path.display(),
                "skipping a torn line at offset {}: {}",
                line.offset,
                preview(&line.bytes)
            ),
        }
    }
    entries.reverse();
    Ok((entries, lines.bytes_read()))
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
