//! The state directory: journal, lock and command socket of an application, owner-only.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tracing::warn;

use crate::error::{Error, Result};
use crate::journal::{FileJournal, Journal};
use crate::lock::{DeployLock, FileLock};
use crate::model::AppName;
use crate::outcome::Conflict;

/// What a state directory holds for one application.
pub(super) struct State {
    pub(super) journal: Arc<dyn Journal>,
    pub(super) lock: Arc<dyn DeployLock>,
    pub(super) socket: PathBuf,
}

/// Creates `dir` owner-only if missing and opens `app`'s journal and lock in it. Blocking.
///
/// A directory this user may not use (another user's, owner-only) is
/// [`Conflict::NotPermitted`]: whoever may not deploy may not steer either.
#[allow(clippy::disallowed_methods, reason = "blocking by contract (DeployerBuilder::build)")]
pub(super) fn open(dir: &Path, app: &AppName) -> Result<State> {
    let socket = dir.join(format!("{app}.sock"));
    if socket.as_os_str().len() > super::socket::MAX_PATH {
        return Err(Error::invalid(
            "state directory",
            dir.display().to_string(),
            format!(
                "the command socket {} would be longer than a Unix socket path may be ({} bytes)",
                socket.display(),
                super::socket::MAX_PATH
            ),
        ));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::backend_caused_by("state directory", format!("cannot create {}", dir.display()), false, e))
        .map_err(|e| not_permitted(dir, e))?;
    if let Ok(meta) = std::fs::metadata(dir) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            warn!(
                dir = %dir.display(),
                "the state directory is open to other users (mode {mode:o}); only its owner should steer deployments"
            );
        }
    }
    Ok(State {
        journal: Arc::new(FileJournal::open(dir, app).map_err(|e| not_permitted(dir, e))?),
        lock: Arc::new(FileLock::new(dir).map_err(|e| not_permitted(dir, e))?),
        socket,
    })
}

/// `e`, or [`Conflict::NotPermitted`] if the OS refused this user access to `dir`.
fn not_permitted(dir: &Path, e: Error) -> Error {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
        {
            return Error::Conflict(Conflict::NotPermitted {
                uid: rustix::process::geteuid().as_raw(),
                reason: format!("cannot use the state directory {}: {}", dir.display(), e.chain()),
            });
        }
        source = cause.source();
    }
    e
}
