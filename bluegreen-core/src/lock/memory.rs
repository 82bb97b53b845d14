//! A lock per application in memory, for tests and single-process programs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{DeployLock, LockGuard, LockHolder};
use crate::error::{Error, Result};
use crate::model::AppName;

/// Locks applications within one process. Clones share the same locks.
///
/// [`try_acquire`](DeployLock::try_acquire) never waits and never fails except with
/// [`Error::Locked`]; dropping the guard releases the lock. Nothing survives the process.
///
/// A holder cannot die here without dropping its guard, so [`abandon`](InMemoryLock::abandon)
/// simulates one that did (a `kill -9`), for tests of take-over and resume.
#[derive(Debug, Clone, Default)]
pub struct InMemoryLock {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    held: HashMap<AppName, Taken>,
    /// Tells a guard whether the entry it would remove is still its own.
    next_token: u64,
}

#[derive(Debug)]
struct Taken {
    holder: LockHolder,
    token: u64,
    abandoned: bool,
}

impl InMemoryLock {
    /// No application locked.
    pub fn new() -> Self {
        Self::default()
    }

    /// Who holds `app`'s lock, if anyone (an abandoned holder included).
    pub fn holder(&self, app: &AppName) -> Option<LockHolder> {
        self.state().held.get(app).map(|t| t.holder.clone())
    }

    /// Simulates the death of `app`'s holder without a release: the next
    /// [`try_acquire`](DeployLock::try_acquire) succeeds and reports it in
    /// [`LockGuard::took_over_from`], as [`FileLock`](super::FileLock) does for a dead process.
    /// The abandoned guard no longer releases anything when dropped. Returns the holder, if
    /// there was one.
    pub fn abandon(&self, app: &AppName) -> Option<LockHolder> {
        let mut state = self.state();
        let taken = state.held.get_mut(app)?;
        taken.abandoned = true;
        Some(taken.holder.clone())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update is a single map operation: a panic cannot leave it half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl DeployLock for InMemoryLock {
    async fn try_acquire(&self, app: &AppName, holder: &LockHolder) -> Result<LockGuard> {
        let mut state = self.state();
        let took_over_from = match state.held.get(app) {
            Some(taken) if !taken.abandoned => {
                return Err(Error::Locked {
                    app: app.to_string(),
                    holder: taken.holder.clone(),
                });
            }
            Some(taken) => Some(taken.holder.clone()),
            None => None,
        };
        if let Some(dead) = &took_over_from {
            tracing::warn!(%app, "taking over the lock of {dead}, which was abandoned");
        }
        let token = state.next_token;
        state.next_token += 1;
        state.held.insert(
            app.clone(),
            Taken {
                holder: holder.clone(),
                token,
                abandoned: false,
            },
        );
        let release = Release {
            lock: self.clone(),
            app: app.clone(),
            token,
        };
        Ok(LockGuard::new(release, took_over_from))
    }
}

/// Removes its entry when dropped, unless someone took it over since.
#[derive(Debug)]
struct Release {
    lock: InMemoryLock,
    app: AppName,
    token: u64,
}

impl Drop for Release {
    fn drop(&mut self) {
        let mut state = self.lock.state();
        if state.held.get(&self.app).is_some_and(|t| t.token == self.token) {
            state.held.remove(&self.app);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lock::test_support::{self, app, holder};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_of_ten_concurrent_acquires_wins() {
        test_support::one_of_ten_concurrent_acquires_wins(Arc::new(InMemoryLock::new())).await;
    }

    #[tokio::test]
    async fn release_lets_the_next_one_in() {
        let lock = InMemoryLock::new();
        test_support::release_lets_the_next_one_in(&lock).await;
        assert_eq!(lock.holder(&app("shop")), None);
    }

    #[tokio::test]
    async fn different_apps_do_not_conflict() {
        test_support::different_apps_do_not_conflict(&InMemoryLock::new()).await;
    }

    #[tokio::test]
    async fn acquire_waits_for_a_release_within_the_wait() {
        test_support::acquire_waits_for_a_release_within_the_wait(Arc::new(InMemoryLock::new())).await;
    }

    #[tokio::test]
    async fn acquire_gives_up_after_the_wait() {
        test_support::acquire_gives_up_after_the_wait(&InMemoryLock::new()).await;
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_with_a_wait_too_long_to_represent_waits_for_the_release() {
        let lock = InMemoryLock::new();
        let shop = app("shop");
        let first = lock.try_acquire(&shop, &holder("first")).await.unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(first);
        });
        let guard = crate::lock::acquire(&lock, &shop, &holder("second"), Some(Duration::MAX))
            .await
            .unwrap();
        assert!(guard.took_over_from.is_none());
        release.await.unwrap();
    }

    #[tokio::test]
    async fn an_abandoned_lock_is_taken_over_and_its_old_guard_releases_nothing() {
        let lock = InMemoryLock::new();
        let shop = app("shop");
        let first = lock.try_acquire(&shop, &holder("first")).await.unwrap();
        assert_eq!(lock.abandon(&shop).unwrap().who.as_deref(), Some("first"));

        let second = lock.try_acquire(&shop, &holder("second")).await.unwrap();
        let dead = second.took_over_from.clone().unwrap();
        assert_eq!(dead.who.as_deref(), Some("first"));

        drop(first);
        let err = lock.try_acquire(&shop, &holder("third")).await.unwrap_err();
        assert!(
            matches!(&err, Error::Locked { holder, .. } if holder.who.as_deref() == Some("second")),
            "{err:?}"
        );
        drop(second);
        assert_eq!(lock.holder(&shop), None);
        assert_eq!(lock.abandon(&shop), None);
    }
}
