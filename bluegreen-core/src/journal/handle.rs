//! The open journal file, shared by a [`FileJournal`](super::FileJournal)'s blocking tasks, that
//! follows the journal's path when compaction replaces the file.
//!
//! Compaction (by this process or another) renames a new file over the journal's path. A file
//! descriptor opened before then still refers to the old, unlinked file: an append through it
//! would be lost. So every use first compares the descriptor's `(dev, ino)` with `stat(path)`
//! and reopens the path if they differ. Writers do this *after* taking the `flock`: a compaction
//! holds the lock on the old file until it has renamed the new one into place, so a writer that
//! holds the lock on the file that is at `path` knows no compaction is under way.
//!
//! Blocking: everything here runs on the blocking pool, in a `FileJournal`'s `spawn_blocking`
//! tasks (or in `FileJournal::open_with`, documented as blocking).
#![allow(clippy::disallowed_methods, reason = "blocking pool only (see the module docs)")]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::SkippedLine;

/// How many skipped lines a journal remembers (a file full of foreign lines must not fill memory).
const MAX_SKIPPED: usize = 64;

/// What an I/O step was, for the error message: `("lock", e)` reads "lock: <os error>".
pub(crate) type Step<T> = std::result::Result<T, (&'static str, io::Error)>;

/// The journal's path and its open file.
#[derive(Debug)]
pub(crate) struct Handle {
    path: PathBuf,
    state: Mutex<State>,
}

/// What the mutex guards.
#[derive(Debug)]
pub(crate) struct State {
    /// Read + append, on the file that was at `path` when last checked.
    pub(crate) file: File,
    /// Lines [`tail`](super::Journal::tail) skipped in this file, oldest first, each once.
    pub(crate) skipped: Vec<SkippedLine>,
}

impl State {
    /// Remembers a skipped line; returns whether it is new (so it is warned about once).
    pub(crate) fn note_skipped(&mut self, line: SkippedLine) -> bool {
        if self.skipped.iter().any(|s| s.offset == line.offset) {
            return false;
        }
        if self.skipped.len() < MAX_SKIPPED {
            self.skipped.push(line);
        }
        true
    }

    /// Replaces the file (after compaction renamed a new one over the path). Offsets change, so
    /// the skipped lines found in the old file are forgotten.
    pub(crate) fn replace(&mut self, file: File) {
        self.file = file;
        self.skipped.clear();
    }
}

impl Handle {
    /// Wraps `file`, just opened at `path`.
    pub(crate) fn new(path: PathBuf, file: File) -> Self {
        Handle {
            path,
            state: Mutex::new(State {
                file,
                skipped: Vec::new(),
            }),
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The state, with the file reopened first if it is no longer the one at `path`. No `flock`:
    /// for readers, to whom an old file is only a slightly older view.
    pub(crate) fn current(&self) -> Step<MutexGuard<'_, State>> {
        let mut state = self.lock_state();
        if !is_at(&state.file, &self.path)? {
            let file = open_at(&self.path)?;
            state.replace(file);
        }
        Ok(state)
    }

    /// Runs `f` holding the `flock` of the file that is at `path` (reopening it as needed), then
    /// unlocks it. `f` may [`replace`](State::replace) the file; the lock is then released when
    /// the old one is closed.
    pub(crate) fn locked<T>(&self, f: impl FnOnce(&mut State) -> Step<T>) -> Step<T> {
        let mut state = self.lock_state();
        lock_current(&mut state, &self.path)?;
        let result = f(&mut state);
        // Closing the file would release the lock too; an unlock error only delays other writers.
        if let Err(e) = state.file.unlock() {
            tracing::warn!(journal = %self.path.display(), "unlock failed: {e}");
        }
        result
    }

    /// The skipped lines, without waiting: `None` while another call holds the state (it may be
    /// waiting for another process's `flock`, which must not block an async caller).
    pub(crate) fn skipped_now(&self) -> Option<Vec<SkippedLine>> {
        match self.state.try_lock() {
            Ok(state) => Some(state.skipped.clone()),
            Err(std::sync::TryLockError::Poisoned(state)) => Some(state.into_inner().skipped.clone()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn lock_state(&self) -> MutexGuard<'_, State> {
        // The state is a file handle and a list: a panic cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Takes the `flock` of `state.file`, reopening `path` until the locked file is the one there.
pub(crate) fn lock_current(state: &mut State, path: &Path) -> Step<()> {
    loop {
        state.file.lock().map_err(|e| ("lock", e))?;
        if is_at(&state.file, path)? {
            return Ok(());
        }
        // Compacted meanwhile: the lock we hold is on the old file.
        let file = open_at(path)?;
        state.replace(file);
    }
}

/// Whether `file` is the file at `path` (same device and inode).
fn is_at(file: &File, path: &Path) -> Step<bool> {
    let open = file.metadata().map_err(|e| ("stat", e))?;
    match std::fs::metadata(path) {
        Ok(there) => Ok(open.dev() == there.dev() && open.ino() == there.ino()),
        // Removed by hand: reopening creates it again, rather than writing to a file no one sees.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(("stat", e)),
    }
}

/// Opens (creating if needed) the journal at `path` for reading and appending, and makes its name
/// durable by `fsync`ing the directory.
pub(crate) fn open_at(path: &Path) -> Step<File> {
    let mut options = OpenOptions::new();
    // Owner-only: the journal says who deployed what, and only its owner may deploy.
    options.read(true).append(true).mode(0o600);
    let file = match options.clone().create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options.open(path).map_err(|e| ("open", e))?,
        Err(e) => return Err(("create", e)),
    };
    // On every open, not only on creation: its creator may have crashed before doing so.
    sync_dir(path)?;
    Ok(file)
}

/// `fsync`s the directory holding `path`, so a creation or a rename there is durable.
pub(crate) fn sync_dir(path: &Path) -> Step<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ("sync directory", e))
}
