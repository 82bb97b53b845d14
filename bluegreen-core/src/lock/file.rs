//! A lock per application as an `flock`ed file.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

use super::{liveness, DeployLock, LockGuard, LockHolder};
use crate::error::{Error, Result};
use crate::model::{AppName, Timestamp};

/// How often, and how long apart, a loser re-reads a holder record that is not written yet.
const READ_ATTEMPTS: u32 = 50;
const READ_PAUSE: Duration = Duration::from_millis(10);

/// Locks applications with `flock` on `<dir>/<app>.lock`, across processes and within one.
///
/// # How it works
/// [`try_acquire`](DeployLock::try_acquire) opens (or creates) the lock file and takes an
/// exclusive, non-blocking `flock` on it (`File::try_lock`). The winner writes its [`LockHolder`]
/// into the file as JSON and `fsync`s it; a loser reads that record and returns
/// [`Error::Locked`] naming the holder. `flock` belongs to an open file, so two opens in one
/// process conflict too: concurrent tasks are excluded like processes are.
///
/// # Crashes
/// The kernel releases an `flock` when its process dies, however it dies (`kill -9` included), so
/// a dead holder never keeps the lock. A clean release empties the file; a record still in the
/// file when the lock is acquired was therefore left by a holder that died, and is reported in
/// [`LockGuard::took_over_from`] and by a `tracing` warning.
///
/// # Caveats
/// - Never delete lock files while deployments may run: a new file would be a new lock.
///   Releasing empties the file and keeps it for this reason.
/// - `flock` is local to a machine: it does not exclude a process on another host sharing the
///   directory over NFS.
/// - In the instant between a new holder taking the `flock` and writing its record, the file
///   still holds the previous (dead) holder's record, or nothing. A loser then re-reads, for up to
///   half a second, until the record names a live process: a record whose holder is on this host
///   and whose pid names no process, a zombie, or a process started after the record's `since`
///   (a reused pid) is never reported as the holder. If the record never changes, the holder is
///   reported as unknown (pid 0 on `"unknown"`) rather than as the dead process.
/// - Liveness can only be judged on this host: a record from another host (a shared directory)
///   is taken at its word. A pid reused by a process that started within about two seconds of
///   the dead holder taking the lock passes for the holder (`/proc`'s boot time is in whole
///   seconds), and a loser may then name the dead holder, as before this check.
/// - A power loss while the lock is released may leave the last holder's record (the emptying is
///   not `fsync`ed): the next holder then reports a take-over that was not one.
#[derive(Debug, Clone)]
pub struct FileLock {
    dir: PathBuf,
}

impl FileLock {
    /// Keeps lock files in `dir`, creating it if needed.
    ///
    /// Blocking (creates the directory): harmless at a program's start; on a busy runtime, call it
    /// from `spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::Backend`] (`"file lock"`) with the OS error if `dir` cannot be created.
    #[allow(clippy::disallowed_methods, reason = "blocking by contract (see above)")]
    pub fn new(dir: impl AsRef<Path>) -> Result<FileLock> {
        let dir = dir.as_ref().to_owned();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io_error(&dir, "create directory", e))?;
        Ok(FileLock { dir })
    }

    /// The directory the lock files are in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lock file of `app`.
    pub fn path(&self, app: &AppName) -> PathBuf {
        self.dir.join(format!("{app}.lock"))
    }
}

#[async_trait]
impl DeployLock for FileLock {
    /// Takes `app`'s lock as `holder`, or names who holds it.
    ///
    /// Runs on the blocking pool. It does not wait for the lock, only (rarely, up to 0.5 s) for a
    /// brand-new holder's record to appear or to replace a dead holder's.
    ///
    /// # Errors
    /// [`Error::Locked`] if another open file (any process, this one included) holds it; the
    /// holder is read from the file, or is pid 0 on host `"unknown"` if the record is unreadable
    /// or keeps naming a process on this host that is dead.
    /// [`Error::Backend`] (`"file lock"`) with the OS error if the file cannot be opened, locked
    /// or written.
    ///
    /// # Cancellation
    /// Dropping the future never leaks the lock: if it was taken, the guard is dropped with the
    /// finished task and releases it.
    async fn try_acquire(&self, app: &AppName, holder: &LockHolder) -> Result<LockGuard> {
        let path = self.path(app);
        let (app, holder) = (app.clone(), holder.clone());
        let task = tokio::task::spawn_blocking(move || acquire_blocking(path, &app, &holder));
        task.await.map_err(|e| {
            // A `JoinError` is not `Sync`: its text is the source.
            Error::backend_caused_by(
                "file lock",
                format!("the blocking task for {} failed", self.dir.display()),
                false,
                e.to_string(),
            )
        })?
    }
}

/// The open, locked file; dropping it empties the file, then unlocks it.
#[derive(Debug)]
struct Held {
    file: File,
    path: PathBuf,
}

impl Drop for Held {
    #[allow(
        clippy::disallowed_methods,
        reason = "truncating a small open file is one metadata-only syscall; releasing on the blocking \
                  pool instead would let a re-acquire right after the drop find the lock still held"
    )]
    fn drop(&mut self) {
        // Empty first: once unlocked, the next holder must not take our record for a dead holder's.
        if let Err(e) = self.file.set_len(0) {
            tracing::warn!(
                lock = %self.path.display(),
                "cannot empty the lock file on release ({e}); the next holder will report a take-over"
            );
        }
        // Closing the file (right after this) releases the lock anyway.
        if let Err(e) = self.file.unlock() {
            tracing::debug!(lock = %self.path.display(), "unlock failed: {e}");
        }
    }
}

/// Blocking: runs in [`FileLock::try_acquire`]'s `spawn_blocking` task.
#[allow(
    clippy::disallowed_methods,
    reason = "runs on the blocking pool (try_acquire's spawn_blocking)"
)]
fn acquire_blocking(path: PathBuf, app: &AppName, holder: &LockHolder) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| io_error(&path, "open", e))?;

    let this_host = gethostname::gethostname().to_string_lossy().into_owned();
    let mut attempts = 0;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                attempts += 1;
                let found = match read_record(&file) {
                    Some(Ok(holder)) if !liveness::certainly_dead(&holder, &this_host) => Some(holder),
                    // A dead process's record: the new holder has taken the lock but not yet
                    // written its own. Empty or half-written: a new holder is writing its record,
                    // or the holder just released (then the next try_lock succeeds).
                    _ if attempts < READ_ATTEMPTS => None,
                    Some(Ok(dead)) => {
                        tracing::warn!(
                            %app,
                            lock = %path.display(),
                            "the lock is held, but its record still names {dead}, which is dead; \
                             the holder is unknown"
                        );
                        Some(unknown_holder(&file))
                    }
                    _ => Some(unknown_holder(&file)),
                };
                if let Some(holder) = found {
                    return Err(Error::Locked {
                        app: app.to_string(),
                        holder,
                    });
                }
                std::thread::sleep(READ_PAUSE);
            }
            Err(TryLockError::Error(e)) => return Err(io_error(&path, "lock", e)),
        }
    }

    // From here on, dropping `held` (an error included) releases the lock.
    let mut held = Held { file, path };
    let took_over_from = match read_record(&held.file) {
        None => None,
        Some(Ok(dead)) => Some(dead),
        Some(Err(())) => Some(unknown_holder(&held.file)),
    };
    if let Some(dead) = &took_over_from {
        tracing::warn!(
            %app,
            lock = %held.path.display(),
            "taking over the lock of {dead}, which died without releasing it"
        );
    }
    write_record(&mut held.file, holder).map_err(|e| io_error(&held.path, "write the holder to", e))?;
    Ok(LockGuard::new(held, took_over_from))
}

/// The holder record in the file: `None` if empty, `Err` if unreadable.
fn read_record(mut file: &File) -> Option<Result<LockHolder, ()>> {
    let mut bytes = Vec::new();
    if file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .is_err()
    {
        return Some(Err(()));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    Some(serde_json::from_slice(&bytes).map_err(|_| ()))
}

#[allow(
    clippy::disallowed_methods,
    reason = "runs on the blocking pool (try_acquire's spawn_blocking)"
)]
fn write_record(file: &mut File, holder: &LockHolder) -> io::Result<()> {
    let mut json = serde_json::to_vec(holder).map_err(io::Error::other)?;
    json.push(b'\n');
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    file.write_all(&json)?;
    file.sync_data()
}

/// A holder whose record cannot be read; `since` is when the file last changed.
fn unknown_holder(file: &File) -> LockHolder {
    LockHolder {
        pid: 0,
        host: "unknown".to_owned(),
        since: file
            .metadata()
            .and_then(|m| m.modified())
            .map_or_else(|_| Timestamp::now(), Timestamp::from),
        who: None,
    }
}

/// "cannot `what` `path`", caused by `e` (its source, not repeated in the message).
fn io_error(path: &Path, what: &str, e: io::Error) -> Error {
    let temporary = matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock);
    Error::backend_caused_by("file lock", format!("cannot {what} {}", path.display()), temporary, e)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
