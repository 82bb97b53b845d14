//! The router's file I/O, off the async runtime and serialised.
//!
//! Core's [`file`](bluegreen_core::file) helpers block (reads, fsynced writes, renames), so they
//! run on tokio's blocking pool. Every read and write of the router's file goes through one
//! [`FileGate`], whose lock is held *inside* the blocking task: a caller dropped while its write
//! is under way (an engine's timeout) cannot be overtaken by the next read or write, which waits
//! until that write has landed, whole.

use std::sync::Arc;

use bluegreen_core::{Error, Result};

/// Serialises the router's blocking file work and runs it off the runtime.
#[derive(Debug, Default)]
pub(crate) struct FileGate {
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl FileGate {
    /// Runs `work` on the blocking pool once every earlier `work` has finished.
    ///
    /// Cancel-safe in the sense that matters for files: once the lock is taken, `work` runs to
    /// completion even if the returned future is dropped, and holds the lock until it is done.
    ///
    /// # Errors
    /// What `work` returns, or [`Error::Backend`] (backend `"traefik"`) when the blocking task
    /// panicked or the runtime is shutting down.
    pub(crate) async fn run<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let held = Arc::clone(&self.lock).lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let _held = held;
            work()
        })
        .await
        .map_err(|e| Error::Backend {
            backend: "traefik".into(),
            message: "file I/O task did not finish".into(),
            temporary: false,
            source: Some(Box::new(e)),
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_caller_keeps_its_place_and_the_next_work_waits_for_it() {
        let gate = FileGate::default();
        let done = Arc::new(AtomicUsize::new(0));
        let first = {
            let done = Arc::clone(&done);
            gate.run(move || {
                std::thread::sleep(Duration::from_millis(100));
                done.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        };
        // The caller gives up while the work is running on the blocking pool.
        assert!(tokio::time::timeout(Duration::from_millis(20), first).await.is_err());
        let seen = {
            let done = Arc::clone(&done);
            gate.run(move || Ok(done.load(Ordering::SeqCst))).await.unwrap()
        };
        assert_eq!(seen, 1, "the second work ran before the dropped first one finished");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_runtime_keeps_running_timers_while_work_blocks() {
        let gate = FileGate::default();
        let work = gate.run(|| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
        let ticks = async {
            let mut n = 0;
            while n < 5 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                n += 1;
            }
            std::time::Instant::now()
        };
        let start = std::time::Instant::now();
        let (result, ticked_at) = tokio::join!(work, ticks);
        result.unwrap();
        assert!(
            ticked_at - start < Duration::from_millis(150),
            "timers waited for the blocking work: {:?}",
            ticked_at - start
        );
    }
}
