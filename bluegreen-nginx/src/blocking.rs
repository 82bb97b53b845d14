//! Running blocking work (file and `/proc` I/O, core's `file` helpers) off the async runtime.

/// Runs `work` on tokio's blocking pool and returns what it returned.
///
/// The error is the reason the blocking thread gave no answer (it panicked — a bug — or the
/// runtime is shutting down); the work itself reports its own errors inside `T`.
pub(crate) async fn run<T, F>(work: F) -> Result<T, String>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("a blocking task of bluegreen-nginx failed: {e}"))
}

/// [`run`] for work returning core's `Result`, the failure to answer mapped to a backend error.
pub(crate) async fn run_core<T, F>(work: F) -> bluegreen_core::Result<T>
where
    F: FnOnce() -> bluegreen_core::Result<T> + Send + 'static,
    T: Send + 'static,
{
    run(work)
        .await
        .map_err(|e| bluegreen_core::Error::backend("nginx", e, false))?
}
