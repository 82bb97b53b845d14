//! Strategies: pure decisions about how a rollout proceeds.
//!
//! A [`Strategy`] looks at how far a deployment has come ([`Progress`]) and names the next
//! [`Decision`]: move traffic, pause, analyse, or complete. It performs no I/O and keeps no state,
//! so asking twice gives the same answer and every path can be unit-tested. The engine performs the
//! decisions; the [state machine](crate::machine) makes sure none of them breaks an invariant.

mod blue_green;
mod canary;

use std::fmt::Debug;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::probe::Analysis;

pub use blue_green::{BlueGreen, Promotion};
pub use canary::{Canary, CanaryStep};

/// How far a deployment has come; what a strategy decides from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// How many decisions have been carried out (0 before the first).
    pub step: usize,
    /// The new slot's current share of traffic, in percent.
    pub weight: u8,
    /// Whether there is a previous release to share traffic with (false on a first deploy).
    pub has_previous: bool,
}

impl Progress {
    /// Progress at `step` with `weight` percent on the new slot.
    pub fn new(step: usize, weight: u8, has_previous: bool) -> Self {
        Progress {
            step,
            weight,
            has_previous,
        }
    }
}

/// How long a pause lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "until", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Pause {
    /// A fixed time (which [`Deployer::promote`](crate::Deployer::promote) may cut short).
    Elapsed {
        /// How long.
        #[serde(rename = "ms", with = "crate::model::millis")]
        duration: Duration,
    },
    /// Until someone calls [`Deployer::promote`](crate::Deployer::promote).
    Approved,
}

/// What happens to the old slot once the rollout is complete: the same for every strategy, so it
/// is the [`Deployer`](crate::Deployer)'s setting, recorded in each deployment's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Retirement {
    /// How long the old slot stays up, warm, after promotion: a rollback within it is instant.
    #[serde(rename = "rollback_window_ms", with = "crate::model::millis")]
    pub rollback_window: Duration,
    /// How long to let in-flight requests to the old slot finish (or the most to wait, where the
    /// router can observe draining).
    #[serde(rename = "drain_ms", with = "crate::model::millis")]
    pub drain: Duration,
    /// How long the old slot has to exit after SIGTERM before it is killed.
    #[serde(rename = "stop_grace_ms", with = "crate::model::millis")]
    pub stop_grace: Duration,
}

impl Default for Retirement {
    /// 30 s rollback window, 5 s drain, 10 s stop grace.
    fn default() -> Self {
        Retirement {
            rollback_window: Duration::from_secs(30),
            drain: Duration::from_secs(5),
            stop_grace: Duration::from_secs(10),
        }
    }
}

impl Retirement {
    /// The defaults (see [`Default`]); change them with the setters:
    ///
    /// ```
    /// use std::time::Duration;
    /// use bluegreen_core::Retirement;
    ///
    /// let retirement = Retirement::new()
    ///     .rollback_window(Duration::from_secs(300))
    ///     .drain(Duration::from_secs(10))
    ///     .stop_grace(Duration::from_secs(20));
    /// assert_eq!(retirement.rollback_window, Duration::from_secs(300));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how long the old slot stays up, warm, after promotion.
    pub fn rollback_window(mut self, rollback_window: Duration) -> Self {
        self.rollback_window = rollback_window;
        self
    }

    /// Sets how long in-flight requests to the old slot may take to finish.
    pub fn drain(mut self, drain: Duration) -> Self {
        self.drain = drain;
        self
    }

    /// Sets how long the old slot has to exit after SIGTERM before it is killed.
    pub fn stop_grace(mut self, stop_grace: Duration) -> Self {
        self.stop_grace = stop_grace;
        self
    }
}

/// The next thing to do.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Decision {
    /// Give the new slot this share of traffic (100 promotes it).
    Shift(u8),
    /// Wait.
    Pause(Pause),
    /// Check the new slot (and roll back if it fails).
    Analyse(Analysis),
    /// The rollout is done: the old slot can be retired (per the deployer's [`Retirement`]).
    Complete,
}

/// How a rollout proceeds. Pure: no I/O, no interior state.
///
/// # Contract
/// - [`decide`](Strategy::decide) is deterministic in its input.
/// - It returns [`Decision::Complete`] only once the new slot has all traffic (the state machine
///   rolls back a strategy that completes early).
/// - With no previous release (`has_previous == false`) there is nothing to share traffic with,
///   so a strategy should shift straight to 100.
pub trait Strategy: Send + Sync + Debug + 'static {
    /// A short name (`"blue-green"`, `"canary"`).
    fn name(&self) -> &str;

    /// Whether this strategy needs a router that serves weighted splits.
    fn needs_weighted_split(&self) -> bool;

    /// The next decision at `progress`.
    fn decide(&self, progress: &Progress) -> Decision;
}

fn _object_safe(_: &dyn Strategy) {}
