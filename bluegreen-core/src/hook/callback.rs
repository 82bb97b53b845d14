//! [`CallbackHook`]: an async Rust closure as a hook.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{Hook, HookContext, HookOutcome};

type Callback = dyn Fn(HookContext) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> + Send + Sync;

/// An async closure as a [`Hook`], for embedders: `Ok(output)` is a success, `Err(reason)` a
/// failure. It gets its own copy of the [`HookContext`]. A run past the timeout (5 minutes by
/// default) is dropped and counts as a failure.
///
/// ```
/// use std::time::Duration;
/// use bluegreen_core::hook::CallbackHook;
///
/// let hook = CallbackHook::new("notify chat", |ctx| async move {
///     Ok(format!("{} is live in {}", ctx.release, ctx.slot))
/// })
/// .timeout(Duration::from_secs(10));
/// ```
#[derive(Clone)]
pub struct CallbackHook {
    name: String,
    timeout: Duration,
    callback: Arc<Callback>,
}

impl fmt::Debug for CallbackHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackHook")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl CallbackHook {
    /// A hook named `name` (for the journal) that calls `callback`.
    pub fn new<F, Fut>(name: impl Into<String>, callback: F) -> Self
    where
        F: Fn(HookContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        CallbackHook {
            name: name.into(),
            timeout: Duration::from_secs(300),
            callback: Arc::new(move |ctx| Box::pin(callback(ctx))),
        }
    }

    /// Sets the bound on one run (default 5 minutes).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl Hook for CallbackHook {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    /// Calls the closure, bounded by the timeout. Cancellation drops the closure's future.
    async fn run(&self, context: &HookContext) -> HookOutcome {
        match tokio::time::timeout(self.timeout, (self.callback)(context.clone())).await {
            Ok(Ok(output)) => HookOutcome::succeeded(output),
            Ok(Err(reason)) => HookOutcome::failed(reason, ""),
            Err(_) => HookOutcome::failed(
                format!("timed out after {}", humantime::format_duration(self.timeout)),
                "",
            ),
        }
    }
}
