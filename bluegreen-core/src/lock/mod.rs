//! One deployment per application at a time.

mod file;
mod liveness;
mod memory;
#[cfg(test)]
mod test_support;

use std::any::Any;
use std::fmt::{self, Debug};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{AppName, Timestamp};

pub use file::FileLock;
pub use memory::InMemoryLock;

/// Who holds (or wants) an application's lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When the lock was taken.
    pub since: Timestamp,
    /// Who asked for the deployment (a user, a CI job), if known.
    pub who: Option<String>,
}

impl LockHolder {
    /// Process `pid` on `host`, holding since `since`, for `who` (for lock implementations that
    /// record holders of other processes; [`this_process`](Self::this_process) is this one).
    pub fn new(pid: u32, host: impl Into<String>, since: Timestamp, who: Option<String>) -> Self {
        LockHolder {
            pid,
            host: host.into(),
            since,
            who,
        }
    }

    /// This process, now.
    pub fn this_process(who: Option<String>) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            since: Timestamp::now(),
            who,
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} on {}", self.pid, self.host)?;
        if let Some(who) = &self.who {
            write!(f, " ({who})")?;
        }
        write!(f, " since {} ({}s ago)", self.since, self.since.elapsed().as_secs())
    }
}

/// Held while a deployment runs; dropping it releases the lock.
pub struct LockGuard {
    _held: Box<dyn Any + Send + Sync>,
    /// The holder whose lock this guard took over because it had died, if any.
    pub took_over_from: Option<LockHolder>,
}

impl LockGuard {
    /// Wraps whatever keeps the lock held (a locked file, a map entry's remover).
    pub fn new(held: impl Any + Send + Sync, took_over_from: Option<LockHolder>) -> Self {
        LockGuard {
            _held: Box::new(held),
            took_over_from,
        }
    }
}

impl Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("took_over_from", &self.took_over_from)
            .finish_non_exhaustive()
    }
}

/// A lock per application.
///
/// # Contract
/// - [`try_acquire`](DeployLock::try_acquire) either returns a guard (the caller is now the only
///   holder for `app`) or [`Error::Locked`] naming the current holder. It does not wait.
/// - A holder that died (its process is gone) does not keep the lock: the next `try_acquire`
///   succeeds and reports the dead holder in [`LockGuard::took_over_from`].
/// - Dropping the guard releases the lock.
#[async_trait]
pub trait DeployLock: Send + Sync + Debug + 'static {
    /// Takes the lock for `app` as `holder`, or says who holds it.
    async fn try_acquire(&self, app: &AppName, holder: &LockHolder) -> Result<LockGuard>;
}

fn _object_safe(_: &dyn DeployLock) {}

/// Takes the lock, waiting up to `wait` (polling every 50 ms) for a live holder to finish.
/// With `wait` of `None` or zero it tries once; a wait too long to represent (`Duration::MAX`)
/// waits as long as it takes.
pub async fn acquire(
    lock: &dyn DeployLock,
    app: &AppName,
    holder: &LockHolder,
    wait: Option<Duration>,
) -> Result<LockGuard> {
    let now = tokio::time::Instant::now();
    // `None`: no deadline. (`Instant + Duration` panics on overflow.)
    let deadline = now.checked_add(wait.unwrap_or_default());
    loop {
        match lock.try_acquire(app, holder).await {
            Err(Error::Locked { .. }) if deadline.is_none_or(|d| tokio::time::Instant::now() < d) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => return other,
        }
    }
}
