//! Our temporary files: names that say whose they are, locked while written, removed when stale.
//!
//! Every temporary file written for a target `<name>` is called `.<name>.bluegreen.<random>.tmp`
//! (a rename probe: `.<name>.bluegreen-probe.<random>.tmp`): hidden, and ending in `.tmp`, so
//! neither nginx's `include *.conf` nor Traefik's file provider (which loads only `.toml`, `.yml`
//! and `.yaml`) ever loads one. A writer holds an exclusive `flock` on its temporary file until
//! the file is renamed or removed, so [`remove_stale_temps`] can tell a writer that was killed
//! from one still writing.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tempfile::NamedTempFile;

use crate::error::Result;

/// How long a temporary file must have been left unchanged (and unlocked) before
/// [`remove_stale_temps`] takes it for a leftover. A write takes milliseconds; the margin only
/// covers the instant between creating a file and locking it.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

const MARK: &str = "bluegreen";
const SUFFIX: &str = ".tmp";

/// The file name of `target`, as the temporary files' names embed it.
pub(super) fn target_name(target: &Path) -> String {
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A new temporary file for `target` in `dir`: unpredictable name (`O_EXCL`, so a symlink
/// planted in a shared directory is not followed), exclusively locked while it lives.
pub(super) fn create(dir: &Path, target: &Path) -> io::Result<NamedTempFile> {
    create_named(dir, &format!(".{}.{MARK}.", target_name(target)))
}

fn create_named(dir: &Path, prefix: &str) -> io::Result<NamedTempFile> {
    let temp = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(SUFFIX)
        .rand_bytes(10)
        .tempfile_in(dir)?;
    match temp.as_file().try_lock() {
        Ok(()) => Ok(temp),
        Err(fs::TryLockError::Error(e)) => Err(e),
        Err(fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("a fresh temporary file in {} is locked by someone else", dir.display()),
        )),
    }
}

/// Whether `file_name` is one of our temporary files for `target` (written or probe).
fn is_ours(file_name: &str, target: &Path) -> bool {
    let Some(rest) = file_name.strip_prefix(&format!(".{}.{MARK}", target_name(target))) else {
        return false;
    };
    let Some(random) = rest
        .strip_prefix('.')
        .or_else(|| rest.strip_prefix("-probe."))
        .and_then(|r| r.strip_suffix(SUFFIX))
    else {
        return false;
    };
    !random.is_empty() && random.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Checks that a file staged in `staging` can be renamed next to `target`, the way
/// [`write_atomic`](super::write_atomic) will do it: creates a probe file in `staging`, renames it
/// into `target`'s directory as `.<name>.bluegreen-probe.<random>.tmp`, and removes it.
///
/// This is the check that matters, not comparing device ids: two mounts of one filesystem (a bind
/// mount, as containers use) share a device id, yet `rename(2)` between them fails with `EXDEV`
/// ([`io::ErrorKind::CrossesDevices`]). The probe briefly appears in `target`'s directory, so a
/// watcher of it sees one event for a file it ignores.
///
/// # Errors
/// The I/O error of the step that failed; the probe file is removed in every case.
///
/// Blocking: call from `spawn_blocking`.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
pub fn check_rename(staging: &Path, target: &Path) -> io::Result<()> {
    let dir = super::parent(target);
    let probe = create_named(staging, &format!(".{}.{MARK}-probe.", target_name(target)))?;
    let name = probe.path().file_name().map(ToOwned::to_owned).unwrap_or_default();
    let landed = dir.join(name);
    match probe.persist_noclobber(&landed) {
        Ok(_file) => fs::remove_file(&landed),
        // The probe file is dropped with the error, which removes it from `staging`.
        Err(e) => Err(e.error),
    }
}

/// Removes, as a router starts, the temporary files that writes of `target` left in its own
/// directory and in `staging` (see [`remove_stale_temps`], with [`STALE_AFTER`]). Never fails:
/// leftovers are harmless to a proxy (their names end in `.tmp`), so a failure is logged, and the
/// next write reports any real I/O problem.
///
/// Blocking (lists directories): call from `spawn_blocking`.
pub fn clean_leftovers(target: &Path, staging: &[&Path]) {
    let own = super::parent(target);
    let mut dirs: Vec<&Path> = vec![&own];
    dirs.extend(staging.iter().copied().filter(|d| *d != own.as_path()));
    match remove_stale_temps(target, &dirs, STALE_AFTER) {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => tracing::debug!(?removed, "removed temporary files left by a killed writer"),
        Err(e) => tracing::warn!(error = %e, "cannot remove temporary files left by a killed writer"),
    }
}

/// Removes the temporary files that writes of `target` left in `dirs` when their writer was
/// killed, and returns their paths.
///
/// Only our own files for this one target are considered (`.<name>.bluegreen.<random>.tmp`
/// and `.<name>.bluegreen-probe.<random>.tmp`), only regular files (never a symlink's target),
/// and only those unchanged for `older_than` and not locked by a live writer. Any other file is
/// left alone. Idempotent; a file that vanishes meanwhile is fine.
///
/// # Errors
/// [`Error::Backend`](crate::Error::Backend) (backend `"file"`) naming the directory or file that could not be read
/// or removed. A directory that does not exist is not an error.
///
/// Blocking (lists directories): call from `spawn_blocking`.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
pub fn remove_stale_temps(target: &Path, dirs: &[&Path], older_than: Duration) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let now = SystemTime::now();
    for dir in dirs {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(super::io_error("list", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| super::io_error("list", dir, e))?;
            let path = entry.path();
            if !is_ours(&entry.file_name().to_string_lossy(), target) {
                continue;
            }
            match remove_if_stale(&path, now, older_than) {
                Ok(true) => removed.push(path),
                Ok(false) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(super::io_error("remove stale temporary file", &path, e)),
            }
        }
    }
    Ok(removed)
}

#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: callers run it on the blocking pool"
)]
fn remove_if_stale(path: &Path, now: SystemTime, older_than: Duration) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Ok(false);
    }
    let age = now.duration_since(meta.modified()?).unwrap_or(Duration::ZERO);
    if age < older_than {
        return Ok(false);
    }
    let file = fs::File::open(path)?;
    let opened = file.metadata()?;
    // Swapped for something else since we looked: not the file we judged.
    if (opened.dev(), opened.ino()) != (meta.dev(), meta.ino()) {
        return Ok(false);
    }
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Ok(false),
        Err(fs::TryLockError::Error(e)) => return Err(e),
    }
    fs::remove_file(path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_only_our_names_for_the_target() {
        let target = Path::new("/d/shop.conf");
        assert!(is_ours(".shop.conf.bluegreen.a1B2c3.tmp", target));
        assert!(is_ours(".shop.conf.bluegreen-probe.a1B2c3.tmp", target));
        for other in [
            "shop.conf",
            ".shop.conf.bluegreen..tmp",
            ".shop.conf.bluegreen.a1.tmp.x",
            ".shop.conf.XYZ123.tmp",
            ".other.conf.bluegreen.a1B2c3.tmp",
            ".shop.conf.bluegreen.a/b.tmp",
            ".shop.conf.old.bluegreen.a1.tmp",
        ] {
            assert!(!is_ours(other, target), "{other}");
        }
    }

    fn age(path: &Path, by: Duration) {
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - by).unwrap();
    }

    #[test]
    fn removes_stale_unlocked_temps_of_the_target_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shop.conf");
        let stale = dir.path().join(".shop.conf.bluegreen.Ab12Cd34Ef.tmp");
        let probe = dir.path().join(".shop.conf.bluegreen-probe.Zz9.tmp");
        let fresh = dir.path().join(".shop.conf.bluegreen.Fresh1.tmp");
        let other_app = dir.path().join(".cart.conf.bluegreen.Ab12Cd34Ef.tmp");
        let unrelated = dir.path().join("notes.tmp");
        for p in [&stale, &probe, &fresh, &other_app, &unrelated] {
            fs::write(p, "x").unwrap();
        }
        for p in [&stale, &probe, &other_app, &unrelated] {
            age(p, Duration::from_secs(60));
        }
        let link = dir.path().join(".shop.conf.bluegreen.Link1.tmp");
        std::os::unix::fs::symlink(&unrelated, &link).unwrap();

        let mut removed = remove_stale_temps(&target, &[dir.path()], STALE_AFTER).unwrap();
        removed.sort();
        let mut expected = vec![stale.clone(), probe.clone()];
        expected.sort();
        assert_eq!(removed, expected);
        for p in [&fresh, &other_app, &unrelated, &link] {
            assert!(fs::symlink_metadata(p).is_ok(), "{} was removed", p.display());
        }
        assert!(remove_stale_temps(&target, &[&dir.path().join("missing")], STALE_AFTER)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_live_writers_temp_file_is_left_alone_however_old() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shop.toml");
        let live = create(dir.path(), &target).unwrap();
        age(live.path(), Duration::from_secs(3600));
        assert!(remove_stale_temps(&target, &[dir.path()], STALE_AFTER)
            .unwrap()
            .is_empty());
        assert!(live.path().exists());
    }

    #[test]
    fn the_rename_probe_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (watched, staging) = (dir.path().join("watched"), dir.path().join("staging"));
        fs::create_dir_all(&watched).unwrap();
        fs::create_dir_all(&staging).unwrap();
        check_rename(&staging, &watched.join("app.toml")).unwrap();
        assert_eq!(fs::read_dir(&watched).unwrap().count(), 0);
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
        let err = check_rename(&staging, &dir.path().join("missing").join("app.toml")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(fs::read_dir(&staging).unwrap().count(), 0);
    }
}
