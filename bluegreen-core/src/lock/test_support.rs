//! Checks every `DeployLock` in this crate must pass, shared by their tests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Barrier;

use super::{acquire, DeployLock, LockGuard, LockHolder};
use crate::error::{Error, Result};
use crate::model::AppName;

pub(crate) fn app(name: &str) -> AppName {
    AppName::new(name).unwrap()
}

/// This process, as `who`.
pub(crate) fn holder(who: &str) -> LockHolder {
    LockHolder::this_process(Some(who.to_owned()))
}

fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The holder a `Locked` error names; panics on anything else.
pub(crate) fn locked_by(result: Result<LockGuard>) -> LockHolder {
    match result {
        Err(Error::Locked { holder, .. }) => holder,
        other => panic!("expected Error::Locked, got {other:?}"),
    }
}

/// Ten tasks try at once: one guard, nine `Locked` errors naming the winner.
pub(crate) async fn one_of_ten_concurrent_acquires_wins(lock: Arc<dyn DeployLock>) {
    let barrier = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (lock, barrier) = (Arc::clone(&lock), Arc::clone(&barrier));
            tokio::spawn(async move {
                let who = format!("task-{i}");
                barrier.wait().await;
                (who.clone(), lock.try_acquire(&app("shop"), &holder(&who)).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (who, Ok(guard)) => winners.push((who, guard)),
            (_, Err(Error::Locked { app, holder })) => losers.push((app, holder)),
            (_, Err(e)) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one guard");
    assert_eq!(losers.len(), 9);
    let (winner, guard) = &winners[0];
    assert!(guard.took_over_from.is_none());
    for (app, holder) in &losers {
        assert_eq!(app, "shop");
        assert_eq!(holder.pid, std::process::id());
        assert_eq!(holder.host, this_host());
        assert_eq!(holder.who.as_ref(), Some(winner), "losers name the winner");
    }
    let message = Error::Locked {
        app: losers[0].0.clone(),
        holder: losers[0].1.clone(),
    }
    .to_string();
    assert!(
        message.contains(&format!("pid {} on {}", std::process::id(), this_host())),
        "{message}"
    );
}

/// After a release, the next `try_acquire` succeeds and reports no take-over.
pub(crate) async fn release_lets_the_next_one_in(lock: &dyn DeployLock) {
    let shop = app("shop");
    let first = lock.try_acquire(&shop, &holder("first")).await.unwrap();
    let busy = locked_by(lock.try_acquire(&shop, &holder("second")).await);
    assert_eq!(busy.who.as_deref(), Some("first"));
    drop(first);
    let second = lock.try_acquire(&shop, &holder("second")).await.unwrap();
    assert!(second.took_over_from.is_none(), "{second:?}");
    let busy = locked_by(lock.try_acquire(&shop, &holder("third")).await);
    assert_eq!(busy.who.as_deref(), Some("second"));
}

/// Two applications' locks are independent.
pub(crate) async fn different_apps_do_not_conflict(lock: &dyn DeployLock) {
    let _a = lock.try_acquire(&app("a"), &holder("a")).await.unwrap();
    let _b = lock.try_acquire(&app("b"), &holder("b")).await.unwrap();
    locked_by(lock.try_acquire(&app("a"), &holder("again")).await);
}

/// `acquire` with a wait gets the lock once the holder releases it within the wait.
pub(crate) async fn acquire_waits_for_a_release_within_the_wait(lock: Arc<dyn DeployLock>) {
    let shop = app("shop");
    let first = lock.try_acquire(&shop, &holder("first")).await.unwrap();
    let started = Instant::now();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(first);
    });
    let second = acquire(&*lock, &shop, &holder("second"), Some(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(second.took_over_from.is_none());
    release.await.unwrap();
}

/// `acquire` gives up with `Locked` once the wait is over, and tries once without a wait.
pub(crate) async fn acquire_gives_up_after_the_wait(lock: &dyn DeployLock) {
    let shop = app("shop");
    let _first = lock.try_acquire(&shop, &holder("first")).await.unwrap();
    let started = Instant::now();
    let busy = locked_by(acquire(lock, &shop, &holder("second"), Some(Duration::from_millis(300))).await);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(busy.who.as_deref(), Some("first"));
    let busy = locked_by(acquire(lock, &shop, &holder("second"), None).await);
    assert_eq!(busy.who.as_deref(), Some("first"));
}
