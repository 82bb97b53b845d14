//! Waiting, without paying for waits of zero.

use std::time::Duration;

/// Sleeps for `duration`; returns at once when it is zero.
///
/// tokio's timer rounds every sleep up to its next 1 ms tick, so a zero rollback window, drain or
/// start delay would otherwise cost about a millisecond each.
pub(crate) async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}
