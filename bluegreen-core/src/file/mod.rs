//! Config files that are never seen half-written: atomic replace and restore.
//!
//! Routers that drive a proxy through files (nginx upstream files, Traefik's file provider) share
//! these, so every one of them writes the same way: a temporary file in a chosen directory on the
//! same filesystem, written and fsynced, renamed over the target, and the directory fsynced.
//! Temporary files have recognisable names, and leftovers of a killed writer can be removed
//! ([`remove_stale_temps`]); see [`temp`] for the naming.
//!
//! # Blocking
//! Every function here does blocking file I/O (and `fsync`s): call it from
//! [`spawn_blocking`](tokio::task::spawn_blocking) (or a thread of your own), never directly on
//! the async runtime.

mod mount;
pub mod temp;

pub use mount::same_mount;
pub use temp::{check_rename, clean_leftovers, remove_stale_temps, STALE_AFTER};

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Reads `path`; `None` when it does not exist (a fresh install, not an error).
///
/// Blocking: call from `spawn_blocking`.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, e)),
    }
}

/// Keeps `contents` (what `path` held) as a backup at [`backup_path`], written atomically;
/// returns where.
///
/// # Errors
/// As [`backup_path`] and [`write_atomic`].
///
/// Blocking: call from `spawn_blocking`.
pub fn back_up(path: &Path, contents: &[u8], dir: Option<&Path>) -> Result<PathBuf> {
    let backup = backup_path(path, dir)?;
    write_atomic(&backup, contents, None)?;
    Ok(backup)
}

/// Where to keep a backup of `path` before a router takes it over: the hidden file
/// `.<name>.bluegreen-backup-<unix nanoseconds>` in `dir` (the file's own directory when `None`).
/// Hidden, so an `include dir/*` or a watched directory never loads it; a name no earlier backup
/// has, so none is overwritten.
///
/// # Errors
/// [`Error::Invalid`] when `path` has no file name.
///
/// Blocking (it checks which names exist): call from `spawn_blocking`.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
pub fn backup_path(path: &Path, dir: Option<&Path>) -> Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("file", path.display().to_string(), "has no file name"))?;
    let dir = dir.map_or_else(|| parent(path), Path::to_path_buf);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    for n in 0u32.. {
        let candidate = dir.join(format!(
            ".{}.bluegreen-backup-{nanos}{}",
            name.to_string_lossy(),
            suffix(n)
        ));
        if !candidate.exists() {
            return Ok(candidate);
        }
    }
    Err(Error::invalid(
        "file",
        path.display().to_string(),
        "no free backup name",
    ))
}

fn suffix(n: u32) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("-{n}")
    }
}

/// Replaces `path` with `contents` atomically: readers see the old file or the new one, whole.
///
/// The temporary file (`.<name>.bluegreen.<random>.tmp`, locked while written) is created in
/// `staging` (the target's own directory when `None`). Pass a directory outside a watched
/// directory when a watcher should not see the temporary file (Traefik's file provider); check it
/// first with [`same_mount`] or [`check_rename`]. Should the rename from `staging` fail because it crosses a mount
/// (`EXDEV`: a different filesystem, or another mount of the same one, such as a bind mount),
/// the write is redone staged in the target's own directory, so it still happens atomically.
///
/// # Errors
/// [`Error::Backend`] (backend `"file"`) naming `path` and the I/O error; no temporary file is
/// left behind, and `path` is unchanged.
///
/// Blocking (writes and `fsync`s): call from `spawn_blocking`.
pub fn write_atomic(path: &Path, contents: &[u8], staging: Option<&Path>) -> Result<()> {
    let dir = parent(path);
    let result = match staging {
        Some(staging) => match write_via(staging, path, contents) {
            Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
                tracing::debug!(
                    staging = %staging.display(),
                    file = %path.display(),
                    "renaming from the staging directory crosses a mount; staging next to the file"
                );
                write_via(&dir, path, contents)
            }
            other => other,
        },
        None => write_via(&dir, path, contents),
    };
    result
        .and_then(|()| sync_dir(&dir))
        .map_err(|e| io_error("write", path, e))
}

/// Writes `contents` to a temporary file in `staging`, fsyncs it and renames it over `path`.
/// On failure the temporary file is removed (it is dropped with the error).
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
fn write_via(staging: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut temp = temp::create(staging, path)?;
    temp.write_all(contents)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map(drop).map_err(|e| e.error)
}

/// Removes `path` durably; a missing file is fine.
///
/// Blocking: call from `spawn_blocking`.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
pub fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(&parent(path)).map_err(|e| io_error("remove", path, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("remove", path, e)),
    }
}

/// What a file held before a change, so that a failed change can be undone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    path: PathBuf,
    previous: Option<Vec<u8>>,
}

impl Snapshot {
    /// Records what `path` holds now (possibly nothing).
    ///
    /// Blocking: call from `spawn_blocking`.
    pub fn take(path: &Path) -> Result<Self> {
        Ok(Snapshot {
            path: path.to_owned(),
            previous: read_optional(path)?,
        })
    }

    /// What the file held, `None` if it did not exist.
    pub fn previous(&self) -> Option<&[u8]> {
        self.previous.as_deref()
    }

    /// Puts the recorded contents back (or removes the file if there was none), atomically.
    ///
    /// Blocking: call from `spawn_blocking`.
    pub fn restore(&self, staging: Option<&Path>) -> Result<()> {
        match &self.previous {
            Some(bytes) => write_atomic(&self.path, bytes, staging),
            None => remove(&self.path),
        }
    }
}

pub(crate) fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn io_error(action: &str, path: &Path, e: io::Error) -> Error {
    let temporary = matches!(e.kind(), io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock);
    Error::Backend {
        backend: "file".into(),
        message: format!("cannot {action} {}", path.display()),
        temporary,
        source: Some(Box::new(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_and_restore() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("upstream.conf");
        let fresh = Snapshot::take(&path).unwrap();
        assert_eq!(fresh.previous(), None);
        write_atomic(&path, b"one", None).unwrap();
        let one = Snapshot::take(&path).unwrap();
        write_atomic(&path, b"two", None).unwrap();
        assert_eq!(read_optional(&path).unwrap().unwrap(), b"two");
        one.restore(None).unwrap();
        assert_eq!(read_optional(&path).unwrap().unwrap(), b"one");
        fresh.restore(None).unwrap();
        assert_eq!(read_optional(&path).unwrap(), None);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn stages_outside_the_target_directory_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let (watched, staging) = (dir.path().join("watched"), dir.path().join("staging"));
        fs::create_dir_all(&watched).unwrap();
        fs::create_dir_all(&staging).unwrap();
        let path = watched.join("app.yml");
        write_atomic(&path, b"x: 1", Some(&staging)).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"x: 1");
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
    }

    #[test]
    fn a_failed_write_names_the_path_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("f");
        let err = write_atomic(&path, b"x", Some(dir.path())).unwrap_err().to_string();
        assert!(err.contains("missing-dir"), "{err}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
