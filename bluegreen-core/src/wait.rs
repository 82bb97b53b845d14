//! Waiting: sleeps that skip zero, and polling until a condition holds or a deadline passes.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, Result};

/// Sleeps for `duration`; returns at once when it is zero.
///
/// tokio's timer rounds every sleep up to its next 1 ms tick, so a zero rollback window, drain or
/// start delay would otherwise cost about a millisecond each.
pub(crate) async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

/// Calls `attempt` every `interval` until it returns `Ok(Some(_))`, an error, or `timeout` passes.
///
/// The first attempt runs at once; an attempt still running at the deadline is cancelled. On
/// timeout the error is [`Error::Timeout`] naming `operation`. Routers use this to confirm that a
/// proxy serves a change.
pub async fn poll<T, F, Fut>(operation: &str, timeout: Duration, interval: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    // A timeout too large for the clock (a config value of years) waits as if forever.
    let deadline = Instant::now().checked_add(timeout).unwrap_or_else(far_future);
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(remaining, attempt()).await {
            Ok(Ok(Some(value))) => return Ok(value),
            Ok(Err(e)) => return Err(e),
            Ok(Ok(None)) => {}
            Err(_) => break,
        }
        if Instant::now().checked_add(interval).is_none_or(|next| next > deadline) {
            break;
        }
        sleep(interval).await;
    }
    Err(Error::Timeout {
        operation: operation.to_owned(),
        after: timeout,
    })
}

/// An instant no deadline of ours reaches (about 30 years ahead).
fn far_future() -> Instant {
    let now = Instant::now();
    now.checked_add(Duration::from_secs(86_400 * 365 * 30)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_timeout_too_large_for_the_clock_does_not_panic() {
        let mut calls = 0;
        let got = poll("huge", Duration::MAX, Duration::MAX, || {
            calls += 1;
            let n = calls;
            async move { Ok((n == 1).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(got, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_until_ready_or_times_out() {
        let mut calls = 0;
        let got = poll("ready", Duration::from_secs(1), Duration::from_millis(10), || {
            calls += 1;
            let n = calls;
            async move { Ok((n == 3).then_some(n)) }
        })
        .await
        .unwrap();
        assert_eq!(got, 3);

        let err = poll(
            "never",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { Ok(None::<()>) },
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, Error::Timeout { ref operation, .. } if operation == "never"),
            "{err}"
        );

        let err = poll("fails", Duration::from_secs(1), Duration::from_millis(10), || async {
            Err::<Option<()>, _>(Error::backend("x", "boom", false))
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
    }
}
