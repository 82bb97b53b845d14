//! What the webhooks did: counters behind [`WebhookStats`], the metric families, and warnings
//! that cannot flood a log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The metric family of delivery outcomes.
const DELIVERIES: &str = "bluegreen_webhook_deliveries_total";
/// The metric family of retries.
const RETRIES: &str = "bluegreen_webhook_retries_total";

/// What the webhooks did so far, over every URL. Each event queued for a URL ends as exactly one
/// of delivered, failed or dropped; an event dropped before it was queued (a full queue, a
/// reader that fell behind) counts as dropped. Events the reader missed are unknown, so they
/// count once for every URL, whether or not its filter would have wanted them: there, `dropped`
/// is an upper bound.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookStats {
    /// Answered with a `2xx`.
    pub delivered: u64,
    /// Given up on: retries exhausted, or a status that is not retried.
    pub failed: u64,
    /// Never attempted to the end: a full queue, events the reader missed, or still queued or in
    /// flight when [`close`](super::Webhooks::close)'s grace ran out.
    pub dropped: u64,
    /// Attempts after the first, over every delivery.
    pub retries: u64,
}

/// The shared counters: every change goes through here, so stats and metrics always agree.
#[derive(Debug, Default)]
pub(super) struct Counters {
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    retries: AtomicU64,
    /// Queued or in flight: what a close that runs out of grace drops.
    pending: AtomicU64,
}

impl Counters {
    pub(super) fn queued(&self) {
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn delivered(&self) {
        self.finish(&self.delivered, "delivered", 1);
    }

    pub(super) fn failed(&self) {
        self.finish(&self.failed, "failed", 1);
    }

    pub(super) fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(RETRIES).increment(1);
    }

    /// A queued event that did not fit its queue after all: dropped.
    pub(super) fn not_queued(&self) {
        self.finish(&self.dropped, "dropped", 1);
    }

    /// `count` events dropped before they were queued.
    pub(super) fn dropped(&self, count: u64) {
        self.dropped.fetch_add(count, Ordering::Relaxed);
        metrics::counter!(DELIVERIES, "outcome" => "dropped").increment(count);
    }

    /// Drops everything still pending (a close out of grace); returns how many.
    pub(super) fn drop_pending(&self) -> u64 {
        let pending = self.pending.swap(0, Ordering::Relaxed);
        self.dropped(pending);
        pending
    }

    fn finish(&self, counter: &AtomicU64, outcome: &'static str, count: u64) {
        // A delivery that finishes after a close dropped it is not counted twice.
        let was_pending = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| p.checked_sub(count))
            .is_ok();
        if was_pending {
            counter.fetch_add(count, Ordering::Relaxed);
            metrics::counter!(DELIVERIES, "outcome" => outcome).increment(count);
        }
    }

    pub(super) fn snapshot(&self) -> WebhookStats {
        WebhookStats {
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
        }
    }
}

/// A warning that is logged at most once per [`WARN_EVERY`], saying how many were held back.
#[derive(Debug, Default)]
pub(super) struct Warnings {
    last: Option<Instant>,
    held_back: u64,
}

/// The least time between two warnings of one kind for one URL.
pub(super) const WARN_EVERY: Duration = Duration::from_secs(10);

impl Warnings {
    /// Logs `message` (with how many were held back since the last one) unless one was logged
    /// less than [`WARN_EVERY`] ago.
    pub(super) fn warn(&mut self, origin: &str, message: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < WARN_EVERY) {
            self.held_back += 1;
            return;
        }
        let held_back = std::mem::take(&mut self.held_back);
        self.last = Some(now);
        tracing::warn!(webhook = origin, held_back, "{message}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_ends_once_even_after_a_close_dropped_it() {
        let counters = Counters::default();
        counters.queued();
        counters.queued();
        counters.delivered();
        assert_eq!(counters.drop_pending(), 1);
        counters.failed(); // the dropped one finishing late
        let stats = counters.snapshot();
        assert_eq!((stats.delivered, stats.failed, stats.dropped), (1, 0, 1));
    }

    #[test]
    fn warnings_are_held_back_within_the_period() {
        let mut warnings = Warnings::default();
        warnings.warn("http://x", format_args!("one"));
        warnings.warn("http://x", format_args!("two"));
        assert_eq!(warnings.held_back, 1);
    }
}
