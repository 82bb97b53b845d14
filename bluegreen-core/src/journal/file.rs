//! A journal in a JSON-lines file per application.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;

use super::backwards::{Backwards, CHUNK};
use super::compact::{compact_locked, CompactionReport, Paths, Retention};
use super::handle::{Handle, State, Step};
use super::skipped::{classify, preview, Line};
use super::{Entry, Journal, SkippedLine};
use crate::error::{Error, Result};
use crate::model::AppName;

/// How a [`FileJournal`] compacts itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct JournalOptions {
    /// [`append`](Journal::append) compacts the journal once the file is larger than this (and
    /// than twice its size after this journal's previous compaction, so a journal whose kept
    /// entries alone exceed it is not compacted on every append). `None`: only
    /// [`compact`](FileJournal::compact) does. Default 8 MiB.
    pub max_bytes: Option<u64>,
    /// What an automatic compaction keeps.
    pub keep: Retention,
    /// How many rotated files (`<app>.journal.1.jsonl`, `.2`, …) keep what compactions dropped;
    /// 0 deletes it. Default 3.
    pub rotated_files: usize,
}

impl Default for JournalOptions {
    fn default() -> Self {
        JournalOptions {
            max_bytes: Some(8 * 1024 * 1024),
            keep: Retention::default(),
            rotated_files: 3,
        }
    }
}

impl JournalOptions {
    /// Sets the size past which [`append`](Journal::append) compacts (`None`: never on its own).
    pub fn max_bytes(mut self, max_bytes: Option<u64>) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// Sets what an automatic compaction keeps.
    pub fn keep(mut self, keep: Retention) -> Self {
        self.keep = keep;
        self
    }

    /// Sets how many rotated files keep what compactions dropped (0: none).
    pub fn rotated_files(mut self, rotated_files: usize) -> Self {
        self.rotated_files = rotated_files;
        self
    }
}

/// A journal kept in `<dir>/<app>.journal.jsonl`: one JSON [`Entry`] per line, append-only
/// between compactions.
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
/// [`torn_tail`](Journal::torn_tail) and a `tracing` warning. It is never an error. `open` also
/// removes what a compaction that crashed left behind.
///
/// # Lines that are not entries
/// [`tail`](Journal::tail) skips torn lines and foreign lines (complete JSON that is not an entry
/// of ours), warns once about each, and reports them through [`skipped`](Journal::skipped). A line
/// that looks like an entry but cannot be read is an error (see [`Journal`]).
///
/// # Compaction
/// [`compact`](FileJournal::compact) keeps the latest state, the history and every unfinished
/// deployment, and moves the rest to a rotated file (see [`Retention`] and
/// [`CompactionReport`]); [`append`](Journal::append) runs it when the file grows past
/// [`JournalOptions::max_bytes`].
///
/// It writes the compacted file and the dropped lines to temporary files in the same directory,
/// `fsync`s them, renames the dropped lines to `<app>.journal.1.jsonl` (shifting older rotated
/// files to `.2`, … up to [`JournalOptions::rotated_files`]), renames the compacted file over the
/// journal and `fsync`s the directory, all under the journal's `flock`. A crash at any point
/// leaves either the old journal or the new one, never a mix; at worst, dropped entries are both
/// in the journal and in `.1` (and the next compaction rotates them again).
///
/// # Sharing
/// Appends from one process are serialised by a mutex; appends, the repair in `open`, and
/// compaction also take an exclusive `flock` on the journal file, so several processes (or
/// several `FileJournal`s for one file) never interleave lines, and a process that opens the
/// journal while another writes never cuts off a line that is being written. Compaction renames a
/// new file over the journal: every append and tail first checks that its open file is still the
/// one at the path (after taking the `flock`, for appends) and reopens it if not, so no append
/// goes to the replaced file. Readers in other processes may see a line being written as an
/// unterminated last line: [`tail`](Journal::tail) skips it.
#[derive(Debug)]
pub struct FileJournal {
    paths: Paths,
    /// Shared with the blocking tasks that use it.
    handle: Arc<Handle>,
    options: JournalOptions,
    /// The size past which the next append compacts.
    threshold: Arc<AtomicU64>,
    torn: Option<String>,
}

impl FileJournal {
    /// Opens (creating if needed) the journal of `app` in `dir`, creating `dir` if needed, with
    /// [`JournalOptions::default`]: see [`open_with`](FileJournal::open_with).
    ///
    /// # Errors
    /// As [`open_with`](FileJournal::open_with).
    pub fn open(dir: impl AsRef<Path>, app: &AppName) -> Result<FileJournal> {
        Self::open_with(dir, app, JournalOptions::default())
    }

    /// Opens (creating if needed) the journal of `app` in `dir`, creating `dir` if needed,
    /// removes the temporary files of a compaction that crashed, and repairs a torn last line
    /// (see [Crashes](FileJournal#crashes)).
    ///
    /// Blocking: this does file I/O (and waits for another process's append or compaction in
    /// progress). At a program's start that is harmless; on a busy runtime, call it from
    /// `spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error if the directory or file cannot be created, opened,
    /// read, or repaired.
    #[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
    pub fn open_with(dir: impl AsRef<Path>, app: &AppName, options: JournalOptions) -> Result<FileJournal> {
        let dir = dir.as_ref();
        let paths = Paths::new(dir, app.as_str());
        let path = paths.journal.clone();
        let fail = |(what, e): (&str, io::Error)| journal_error(&path, what, e);

        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .map_err(|e| fail(("create directory", e)))?;
        let handle = Handle::new(path.clone(), super::handle::open_at(&path).map_err(fail)?);
        let torn = handle
            .locked(|state| {
                for stale in paths.remove_stale_temps()? {
                    tracing::warn!(
                        journal = %path.display(),
                        "removed {} left by a compaction that did not finish",
                        stale.display()
                    );
                }
                repair_tail(&state.file).map_err(|e| ("repair torn tail", e))
            })
            .map_err(fail)?;
        if let Some(torn) = &torn {
            tracing::warn!(journal = %path.display(), "{torn}");
        }
        Ok(FileJournal {
            paths,
            handle: Arc::new(handle),
            options,
            threshold: Arc::new(AtomicU64::new(options.max_bytes.unwrap_or(u64::MAX))),
            torn,
        })
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.paths.journal
    }

    /// The `n`th rotated file, where compactions move what they drop (1 is the newest).
    pub fn rotated_path(&self, n: usize) -> PathBuf {
        self.paths.rotated(n)
    }

    /// Compacts the journal now, keeping `keep` (see [Compaction](FileJournal#compaction)) and
    /// [`JournalOptions::rotated_files`] rotated files. Does nothing (and reports nothing dropped)
    /// when everything is kept.
    ///
    /// It runs under the journal's `flock`: appends from other processes wait, then go to the
    /// compacted file.
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error, or if a line looks like an entry but cannot be read
    /// (nothing is changed then).
    ///
    /// # Cancellation
    /// The compaction runs on the blocking pool and finishes even if this future is dropped.
    pub async fn compact(&self, keep: Retention) -> Result<CompactionReport> {
        let handle = Arc::clone(&self.handle);
        let paths = self.paths.clone();
        let rotated_files = self.options.rotated_files;
        let run = tokio::task::spawn_blocking(move || {
            handle
                .locked(|state| Ok(compact_tail_repaired(state, &paths, keep, rotated_files)))
                .map_err(|(what, e)| journal_error(&paths.journal, what, e))?
        });
        run.await.map_err(|e| self.join_error(&e))?
    }

    /// [`tail`](Journal::tail) reading `chunk` bytes at a time; also says how many bytes it read.
    async fn tail_with(&self, n: usize, chunk: usize) -> Result<(Vec<Entry>, u64)> {
        let handle = Arc::clone(&self.handle);
        let read = tokio::task::spawn_blocking(move || {
            let path = handle.path();
            let mut state = handle.current().map_err(|(what, e)| journal_error(path, what, e))?;
            read_tail(&mut state, path, n, chunk)
        });
        read.await.map_err(|e| self.join_error(&e))?
    }

    fn join_error(&self, e: &tokio::task::JoinError) -> Error {
        // A `JoinError` is not `Sync`: its text is the source.
        Error::journal(
            self.paths.journal.display().to_string(),
            "the blocking task failed",
            e.to_string(),
        )
    }
}

#[async_trait]
impl Journal for FileJournal {
    /// Appends `entry` as one line and `fsync`s it; then compacts the journal if it has grown past
    /// [`JournalOptions::max_bytes`].
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error. After a failed write or `fsync`, the partial line is
    /// cut off again (best effort), so an error means the entry is not in the journal. A failed
    /// compaction is not an error (the entry is in the journal): it is logged, and tried again
    /// once the file has doubled.
    ///
    /// # Cancellation
    /// The write runs on the blocking pool and finishes even if this future is dropped: the entry
    /// may then be in the journal or not, and [`tail`](Journal::tail) says which.
    async fn append(&self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(|e| {
            Error::journal(
                self.paths.journal.display().to_string(),
                format!("cannot serialise entry {}", entry.seq),
                e,
            )
        })?;
        line.push(b'\n');
        let handle = Arc::clone(&self.handle);
        let paths = self.paths.clone();
        let options = self.options;
        let threshold = Arc::clone(&self.threshold);
        let write = tokio::task::spawn_blocking(move || {
            handle
                .locked(|state| {
                    append_line(&state.file, &line)?;
                    if options.max_bytes.is_some() {
                        maybe_compact(state, &paths, options, &threshold);
                    }
                    Ok(())
                })
                .map_err(|(what, e)| journal_error(&paths.journal, what, e))
        });
        write.await.map_err(|e| self.join_error(&e))?
    }

    /// The last `n` entries, oldest first, read backwards from the end 64 KiB at a time.
    ///
    /// A line that is not an entry (a write that failed and could not be cut off, a line another
    /// process is still writing, or a foreign line) is skipped with a warning, and reported
    /// through [`skipped`](Journal::skipped) unless it is an unterminated last line (one being
    /// written).
    ///
    /// # Errors
    /// [`Error::Journal`] with the OS error, or, naming its offset and what is wrong with it, if a
    /// complete line looks like an entry (a JSON object with a `seq` or a `deployment` field) but
    /// is not one this version can read (written by another version, or edited): acting on an
    /// older entry instead would be wrong, so it is not skipped.
    ///
    /// # Cancellation
    /// Harmless: it only reads (the read finishes on the blocking pool and is discarded).
    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        self.tail_with(n, CHUNK).await.map(|(entries, _)| entries)
    }

    fn torn_tail(&self) -> Option<String> {
        self.torn.clone()
    }

    /// The torn and foreign lines [`tail`](Journal::tail) skipped in the current file (at most 64;
    /// forgotten when a compaction replaces the file, which moves them to the rotated file).
    ///
    /// Never blocks: while an append or a compaction holds the journal (possibly waiting for
    /// another process), it says nothing, and the lines are reported by a later call.
    fn skipped(&self) -> Vec<SkippedLine> {
        self.handle.skipped_now().unwrap_or_default()
    }

    fn location(&self) -> String {
        self.paths.journal.display().to_string()
    }
}

/// "cannot `what`", caused by `e`.
fn journal_error(path: &Path, what: &str, e: io::Error) -> Error {
    Error::journal(path.display().to_string(), format!("cannot {what}"), e)
}

/// Compacts after cutting off a torn tail; the caller holds the `flock`.
fn compact_tail_repaired(
    state: &mut State,
    paths: &Paths,
    keep: Retention,
    rotated_files: usize,
) -> Result<CompactionReport> {
    if let Some(torn) = repair_tail(&state.file).map_err(|e| journal_error(&paths.journal, "repair torn tail", e))? {
        tracing::warn!(journal = %paths.journal.display(), "before compacting, {torn}");
    }
    let report = compact_locked(state, paths, keep, rotated_files)?;
    tracing::info!(
        journal = %paths.journal.display(),
        kept = report.kept,
        dropped = report.dropped,
        skipped = report.skipped,
        "compacted from {} to {} bytes",
        report.bytes_before,
        report.bytes_after
    );
    Ok(report)
}

/// After an append, compacts if the file has grown past the threshold; a failure is logged only
/// (the entry is in). The next threshold is twice what is left, and at least `max_bytes`.
fn maybe_compact(state: &mut State, paths: &Paths, options: JournalOptions, threshold: &AtomicU64) {
    let max_bytes = options.max_bytes.unwrap_or(u64::MAX);
    let len = match state.file.metadata() {
        Ok(meta) => meta.len(),
        Err(e) => {
            tracing::warn!(journal = %paths.journal.display(), "stat after append: {e}");
            return;
        }
    };
    if len <= threshold.load(Ordering::Relaxed) {
        return;
    }
    let left = match compact_tail_repaired(state, paths, options.keep, options.rotated_files) {
        Ok(report) => report.bytes_after,
        Err(e) => {
            tracing::warn!("automatic compaction failed (retried once the journal doubles): {e}");
            len
        }
    };
    threshold.store(left.saturating_mul(2).max(max_bytes), Ordering::Relaxed);
}

/// Writes `line` at the end and `fsync`s it; the caller holds the file's `flock`. On failure,
/// cuts the file back to where it was.
#[allow(
    clippy::disallowed_methods,
    reason = "runs on the blocking pool (FileJournal's spawn_blocking tasks)"
)]
pub(crate) fn append_line(file: &File, line: &[u8]) -> Step<()> {
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
/// this version reads (one written by a newer version, or a foreign line) is kept: it is not
/// torn, and cutting it off could lose an acknowledged entry.
#[allow(
    clippy::disallowed_methods,
    reason = "runs on the blocking pool (FileJournal's spawn_blocking tasks)"
)]
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

/// Reads the last `n` entries going backwards; also returns how many bytes that read. Skipped
/// lines are noted in `state` (and warned about the first time).
fn read_tail(state: &mut State, path: &Path, n: usize, chunk: usize) -> Result<(Vec<Entry>, u64)> {
    let mut skipped = Vec::new();
    let read = read_entries(&state.file, path, n, chunk, &mut skipped);
    for line in skipped {
        let text = line.to_string();
        if state.note_skipped(line) {
            tracing::warn!(journal = %path.display(), "{text}");
        } else {
            tracing::debug!(journal = %path.display(), "{text}");
        }
    }
    read
}

/// [`read_tail`]'s reading: the entries, and the lines skipped into `skipped`.
fn read_entries(
    file: &File,
    path: &Path,
    n: usize,
    chunk: usize,
    skipped: &mut Vec<SkippedLine>,
) -> Result<(Vec<Entry>, u64)> {
    let fail = |e: io::Error| journal_error(path, "read", e);
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
        match classify(&line.bytes) {
            Line::Entry(entry) => entries.push(*entry),
            Line::Skip(reason) => skipped.push(SkippedLine {
                offset: line.offset,
                reason,
                preview: preview(&line.bytes),
            }),
            Line::Unreadable(e) => {
                return Err(Error::journal(
                    path.display().to_string(),
                    format!(
                        "unreadable entry at offset {} (written by another version of bluegreen, or edited?)",
                        line.offset
                    ),
                    e,
                ));
            }
        }
    }
    entries.reverse();
    Ok((entries, lines.bytes_read()))
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "compact_tests.rs"]
mod compact_tests;
