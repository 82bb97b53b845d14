//! Reading a journal file forward, incrementally: each read returns only what was appended since
//! the last one, so a reader that polls (an exporter, a dashboard) costs what is new, not what is
//! kept.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::compact::Paths;
use super::skipped::{classify, preview, Line};
use super::{Entry, SkippedLine};
use crate::error::{Error, Result};
use crate::model::AppName;

/// The suffix of a journal file: `<app>.journal.jsonl`.
const SUFFIX: &str = ".journal.jsonl";

/// Follows one application's journal file (see [`FileJournal`](super::FileJournal)) forward.
///
/// # Contract
/// - [`read_new`](JournalFollower::read_new) returns the entries of the complete lines appended
///   since the previous call, oldest first, and reads only those bytes: its cost does not grow
///   with the journal's history.
/// - A line still being written (no `\n` yet) is left for a later call.
/// - When the file at the path is another file than the one read before (a compaction renamed a
///   new file over it: another inode), is shorter than what was read, or no longer ends a line
///   where the follower left off (cut back and grown again on the same inode), it starts over
///   from its first byte and says so ([`Followed::restarted`]): whatever the caller derived from
///   earlier entries must be rebuilt from these.
/// - A missing file is an empty journal (not yet created, or removed; removed counts as a restart).
/// - Lines that are not entries (torn, foreign) are skipped and reported
///   ([`Followed::skipped`]). A line that looks like an entry but cannot be read is an error (as
///   for [`Journal::tail`](super::Journal::tail)), returned by the call that reaches it first
///   after the entries before it were returned; the follower stays before it.
/// - It is blocking file I/O: call it from `spawn_blocking` in async code.
#[derive(Debug)]
pub struct JournalFollower {
    path: PathBuf,
    /// `(device, inode)` of the file read so far; `None` before the first read of an existing file.
    identity: Option<(u64, u64)>,
    /// Where the next line starts.
    offset: u64,
}

/// What one [`read_new`](JournalFollower::read_new) found.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Followed {
    /// The file was replaced or shrank: `entries` start from its beginning.
    pub restarted: bool,
    /// The entries appended since the previous read, oldest first.
    pub entries: Vec<Entry>,
    /// The lines skipped because they are not entries.
    pub skipped: Vec<SkippedLine>,
}

impl JournalFollower {
    /// A follower of the journal file at `path`, from its beginning.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        JournalFollower {
            path: path.into(),
            identity: None,
            offset: 0,
        }
    }

    /// A follower of the journal of `app` in the state directory `dir`, from its beginning.
    pub fn of(dir: &Path, app: &AppName) -> Self {
        JournalFollower::new(Paths::new(dir, app.as_str()).journal)
    }

    /// The file it follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How many bytes of the current file have been read.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The entries appended since the previous call (see the [contract](JournalFollower)).
    ///
    /// # Errors
    /// [`Error::Journal`] naming the file when it cannot be read, or when a line looks like an
    /// entry but cannot be read (its [`source`](std::error::Error::source) names the field).
    #[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
    pub fn read_new(&mut self) -> Result<Followed> {
        let location = || self.path.display().to_string();
        let mut followed = Followed::default();
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                followed.restarted = self.identity.take().is_some();
                self.offset = 0;
                return Ok(followed);
            }
            Err(e) => return Err(Error::journal(location(), "opening it to follow", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| Error::journal(location(), "reading its metadata", e))?;
        let identity = (meta.dev(), meta.ino());
        if self.identity.is_some_and(|known| known != identity)
            || meta.len() < self.offset
            || !self
                .ends_a_line(&mut file)
                .map_err(|e| Error::journal(location(), "checking where it left off", e))?
        {
            followed.restarted = true;
            self.offset = 0;
        }
        self.identity = Some(identity);
        if meta.len() == self.offset {
            return Ok(followed);
        }
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(self.offset))
            .and_then(|_| file.read_to_end(&mut bytes))
            .map_err(|e| Error::journal(location(), format!("reading from offset {}", self.offset), e))?;
        let mut start = 0;
        while let Some(end) = bytes[start..].iter().position(|b| *b == b'\n').map(|n| start + n) {
            let line = &bytes[start..end];
            let at = self.offset;
            match classify(line) {
                Line::Entry(entry) => followed.entries.push(*entry),
                Line::Skip(reason) => followed.skipped.push(SkippedLine::new(at, reason, preview(line))),
                Line::Unreadable(e) if followed.entries.is_empty() && followed.skipped.is_empty() => {
                    return Err(Error::journal(
                        location(),
                        format!("the line at offset {at} looks like an entry but cannot be read"),
                        e,
                    ));
                }
                // Return what came before; the next call starts at this line and fails.
                Line::Unreadable(_) => return Ok(followed),
            }
            self.offset += (end + 1 - start) as u64;
            start = end + 1;
        }
        Ok(followed)
    }
}

impl JournalFollower {
    /// Whether the byte before the offset is still the end of a line: a file cut back and grown
    /// again on the same inode (a torn line repaired, then appended to) would otherwise be read
    /// from the middle of a line. True at offset 0.
    #[allow(clippy::disallowed_methods, reason = "blocking by contract (see read_new)")]
    fn ends_a_line(&self, file: &mut File) -> io::Result<bool> {
        if self.offset == 0 {
            return Ok(true);
        }
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(self.offset - 1))?;
        match file.read_exact(&mut last) {
            Ok(()) => Ok(last[0] == b'\n'),
            // Shorter than the offset: the caller starts over anyway.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(e) => Err(e),
        }
    }
}

/// The applications whose journal (`<app>.journal.jsonl`) is in the state directory `dir`, sorted
/// by name; none if `dir` does not exist. Rotated files and temporary files are not journals.
///
/// Blocking: call it from `spawn_blocking` in async code.
///
/// # Errors
/// [`Error::Journal`] naming `dir` when it cannot be listed.
#[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
pub fn journal_apps(dir: &Path) -> Result<Vec<AppName>> {
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::journal(dir.display().to_string(), "listing its journals", e)),
    };
    let mut apps = Vec::new();
    for item in listing {
        let item = item.map_err(|e| Error::journal(dir.display().to_string(), "listing its journals", e))?;
        let name = item.file_name();
        let app = name
            .to_str()
            .and_then(|n| n.strip_suffix(SUFFIX))
            .and_then(|n| AppName::new(n).ok());
        apps.extend(app);
    }
    apps.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(apps)
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
