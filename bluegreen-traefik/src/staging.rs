//! Where the router stages its temporary files, decided once when it is built.
//!
//! The file provider should see one change per switch, so the dynamic file is staged outside the
//! watched directory and renamed in. That needs the staging directory on the *same mount* as the
//! watched one: a bind-mounted watched directory (as with Traefik in a container) shares the
//! device id of its parent, yet `rename(2)` across the mount point fails with `EXDEV`. So the
//! router compares mount ids ([`same_mount`], exactly the condition of `EXDEV`), or, on a kernel
//! that does not report them, renames a probe file ([`check_rename`]).
//!
//! When the default staging directory (the parent) is on another mount, the router stages in
//! `<directory>/.bluegreen-staging/`: on the watched directory's own mount, so the rename works,
//! and in a subdirectory, so Traefik's watcher (which watches the directory itself, not its
//! subdirectories) sees only the rename. Measured with Traefik 3.7.15 and its default 2 s
//! throttle: every event in the watched directory, even for a file it does not load, makes the
//! file provider send a configuration, and the second within 2 s waits for the throttle; a
//! temporary file staged in the directory itself would so delay every switch by up to 2 s.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use bluegreen_core::backend::file::{check_rename, clean_leftovers, same_mount};
use bluegreen_core::{Error, Result};

use crate::config::TraefikConfig;

/// The subdirectory of the watched directory used when nothing outside it is on its mount.
pub(crate) const INNER_STAGING: &str = ".bluegreen-staging";

/// Where temporary files are staged.
///
/// - A configured `staging_directory` must be on the watched directory's mount, or this is
///   [`Error::Invalid`] (`"traefik staging_directory"`) naming both directories and the cause.
/// - The default (the watched directory's parent) is used when it is on the same mount, and
///   otherwise `<directory>/.bluegreen-staging/` (created, mode 0700), with the reason logged
///   at debug level.
pub(crate) fn resolve(config: &TraefikConfig) -> Result<PathBuf> {
    let staging = config.staging_dir();
    match (rename_works(&staging, config), &config.staging_directory) {
        (Ok(()), _) => Ok(staging),
        (Err(e), Some(_)) => Err(Error::invalid(
            "traefik staging_directory",
            staging.display().to_string(),
            format!(
                "a file staged there cannot be renamed into {} ({e}); set staging_directory to a \
                 directory on the same mount, or unset it to let the router stage in {}",
                config.directory.display(),
                config.directory.join(INNER_STAGING).display(),
            ),
        )),
        (Err(e), None) => {
            tracing::debug!(
                staging = %staging.display(),
                directory = %config.directory.display(),
                error = %e,
                "cannot rename from the watched directory's parent; staging in {INNER_STAGING}/"
            );
            inner(config)
        }
    }
}

/// Whether a file staged in `staging` can be renamed into the watched directory.
fn rename_works(staging: &Path, config: &TraefikConfig) -> io::Result<()> {
    match same_mount(staging, &config.directory)? {
        Some(true) => Ok(()),
        Some(false) => Err(io::Error::new(
            io::ErrorKind::CrossesDevices,
            "they are different mounts, even if of one filesystem: a rename between them fails with EXDEV",
        )),
        None => check_rename(staging, &config.file_path()),
    }
}

/// `<directory>/.bluegreen-staging`, created if missing; it must be a real directory.
#[allow(
    clippy::disallowed_methods,
    reason = "blocking by contract: the router's constructor decides where to stage, once"
)]
fn inner(config: &TraefikConfig) -> Result<PathBuf> {
    let dir = config.directory.join(INNER_STAGING);
    let refuse = |reason: String| Error::invalid("traefik directory", dir.display().to_string(), reason);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refuse(format!("cannot create the staging subdirectory: {e}"))),
    }
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| refuse(e.to_string()))?;
    if !meta.is_dir() {
        return Err(refuse(
            "must be a directory (not a symlink) for staging temporary files".into(),
        ));
    }
    Ok(dir)
}

/// Removes what a killed writer left of this router's file: stale temporary files for
/// `<app>.<ext>` in the staging directories and the watched directory (see
/// [`clean_leftovers`]; nothing else is touched). A failure is logged, not returned: the
/// leftovers are harmless to Traefik, and the next apply reports any real I/O problem.
pub(crate) fn remove_leftovers(config: &TraefikConfig) {
    let inner = config.directory.join(INNER_STAGING);
    clean_leftovers(&config.file_path(), &[&config.staging_dir(), &inner]);
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use bluegreen_core::AppName;

    use crate::TraefikRouter;

    fn age(path: &std::path::Path) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(60)).unwrap();
    }

    #[test]
    fn building_removes_the_leftovers_of_this_routers_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let watched = dir.path().join("dynamic");
        std::fs::create_dir(&watched).unwrap();
        let stale_staged = dir.path().join(".shop.toml.bluegreen.Xy12Ab34Cd.tmp");
        let stale_probe = watched.join(".shop.toml.bluegreen-probe.Q1w2E3r4T5.tmp");
        let kept = [
            dir.path().join(".cart.toml.bluegreen.Xy12Ab34Cd.tmp"),
            dir.path().join("notes.txt"),
            watched.join("other.toml"),
            watched.join(".shop.toml.swp"),
        ];
        for path in kept.iter().chain([&stale_staged, &stale_probe]) {
            std::fs::write(path, "x").unwrap();
            age(path);
        }
        let router = TraefikRouter::builder(AppName::new("shop").unwrap(), &watched, "PathPrefix(`/`)")
            .build()
            .unwrap();
        assert_eq!(
            router.staging_directory(),
            dir.path(),
            "the parent is on the same mount"
        );
        assert!(!stale_staged.exists() && !stale_probe.exists());
        for path in &kept {
            assert!(path.exists(), "{} was removed", path.display());
        }
    }
}
