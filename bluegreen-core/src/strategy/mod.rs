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
#[serde(tag = "until", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Pause {
    /// A fixed time (which [`Deployer::promote`](crate::Deployer::promote) may cut short).
    Elapsed {
        /// How long.
        #[serde(
            serialize_with = "crate::model::field::serialize_duration",
            deserialize_with = "field_de::pause"
        )]
        duration: Duration,
    },
    /// Until someone calls [`Deployer::promote`](crate::Deployer::promote).
    #[serde(deserialize_with = "crate::model::field::no_fields")]
    Approved,
}

/// What happens to the old slot once the rollout is complete: the same for every strategy, so it
/// is the [`Deployer`](crate::Deployer)'s setting, recorded in each deployment's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Retirement {
    /// How long the old slot stays up, warm, after promotion: a rollback within it is instant.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::rollback_window"
    )]
    pub rollback_window: Duration,
    /// How long to let in-flight requests to the old slot finish (or the most to wait, where the
    /// router can observe draining).
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::drain"
    )]
    pub drain: Duration,
    /// How long the old slot has to exit after SIGTERM before it is killed.
    #[serde(
        serialize_with = "crate::model::field::serialize_duration",
        deserialize_with = "field_de::stop_grace"
    )]
    pub stop_grace: Duration,
}

/// One deserializer per duration key, so that an error names the key and the value.
mod field_de {
    crate::keyed_deserializers! {
        pause -> std::time::Duration = duration("pause duration");
        rollback_window -> std::time::Duration = duration("retirement rollback_window");
        drain -> std::time::Duration = duration("retirement drain");
        stop_grace -> std::time::Duration = duration("retirement stop_grace");
    }
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

/// The strategy's decisions from the first to completion, as if each succeeded, in words
/// (`"shift 10% → approval → shift 100% → complete"`): journaled when a deployment starts, so a
/// resume with a strategy whose steps differ (a gate added or skipped) is refused.
pub(crate) fn steps(strategy: &dyn Strategy, has_previous: bool) -> String {
    let mut parts = Vec::new();
    let mut weight = 0u8;
    for step in 0..1000 {
        match strategy.decide(&Progress::new(step, weight, has_previous)) {
            Decision::Shift(w) => {
                weight = if has_previous { w.min(100) } else { 100 };
                parts.push(format!("shift {weight}%"));
            }
            Decision::Pause(Pause::Approved) => parts.push("approval".to_string()),
            Decision::Pause(Pause::Elapsed { duration }) => {
                parts.push(format!("pause {}", humantime::format_duration(duration)));
            }
            Decision::Analyse(a) => parts.push(format!("analyse {} x{}", a.probe().describe(), a.count)),
            Decision::Complete => {
                parts.push("complete".to_string());
                break;
            }
        }
    }
    parts.join(" → ")
}

/// A fingerprint of [`steps`] (`"sha256:…"`), what a deployment journals: a long canary's steps
/// would otherwise be repeated in every journal entry.
pub(crate) fn steps_fingerprint(steps: &str) -> String {
    crate::model::Snapshot::fingerprint_of(&steps).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_and_retirements_read_and_write_human_durations() {
        let pause = Pause::Elapsed {
            duration: Duration::from_millis(1500),
        };
        let json = serde_json::to_string(&pause).unwrap();
        assert_eq!(json, r#"{"until":"elapsed","duration":"1s 500ms"}"#);
        assert_eq!(serde_json::from_str::<Pause>(&json).unwrap(), pause);
        let json = serde_json::to_value(Retirement::default()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"rollback_window": "30s", "drain": "5s", "stop_grace": "10s"})
        );
        assert_eq!(
            serde_json::from_value::<Retirement>(json).unwrap(),
            Retirement::default()
        );
    }

    #[test]
    fn a_pause_refuses_unknown_keys_naming_them() {
        for (json, key) in [
            (r#"{"until":"elapsed","duration":"5s","ms":5000}"#, "ms"),
            (r#"{"until":"approved","duration":"5s"}"#, "duration"),
        ] {
            let err = serde_json::from_str::<Pause>(json).unwrap_err();
            assert!(
                err.to_string().contains(&format!("unknown field `{key}`")),
                "{json}: {err}"
            );
        }
        let err = serde_json::from_str::<Pause>(r#"{"until":"elapsed","duration":250}"#).unwrap_err();
        assert!(err.to_string().contains("pause duration as a duration"), "{err}");
    }
}
