//! Deployment metrics, emitted through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! Like `log`, the library only emits: the embedder installs a recorder of its choice
//! (`metrics-exporter-prometheus`, an OpenTelemetry bridge, a test's `DebuggingRecorder`) and
//! decides where the numbers go. Without a recorder every call is a no-op costing an atomic load.
//! No registry type appears in this crate's API.
//!
//! The families (their names are a contract: dashboards and alerts use them):
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`DEPLOYMENTS_STARTED`] | counter | `app`, `strategy` (a resume does not count again) |
//! | [`DEPLOYMENTS_FINISHED`] | counter | `app`, `strategy`, `outcome` = `completed` \| `rolled_back` \| `failed` |
//! | [`PHASE_DURATION`] | histogram, seconds | `app`, `phase` ([`Phase::name`]) |
//! | [`TRAFFIC_WEIGHT`] | gauge, percent | `app`, `slot` (`blue` \| `green`), as applied to the router |
//! | [`CHECKS`] | counter | `app`, `kind` = `health` \| `analysis`, `outcome` = `healthy` \| `unhealthy` \| `provider_error` |
//! | [`VERDICTS`] | counter | `app`, `kind`, `verdict` = `passed` \| `failed` \| `inconclusive` |
//! | [`SWITCH_DURATION`] | histogram, seconds | `app`, `router` (one [`Router::apply`](crate::Router::apply), failed ones included) |
//! | [`LOCK_WAIT`] | histogram, seconds | `app` (time to acquire the deployment lock) |
//!
//! Histograms are observations; a Prometheus recorder needs buckets to render them as histograms
//! ([`SECONDS_BUCKETS`] is the set dashboards assume). Call [`describe`] once after installing a
//! recorder to give it the families' descriptions and units.

use std::time::Duration;

use ::metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};

use crate::machine::{Deployment, Phase};
use crate::model::{AppName, Slot, TrafficSplit};
use crate::probe::{ProbeOutcome, Verdict};

/// Deployments started (a resume does not count again). Counter; labels `app`, `strategy`.
pub const DEPLOYMENTS_STARTED: &str = "bluegreen_deployments_started_total";
/// Deployments that reached a terminal phase. Counter; labels `app`, `strategy`, `outcome`.
pub const DEPLOYMENTS_FINISHED: &str = "bluegreen_deployments_finished_total";
/// How long each phase took. Histogram in seconds; labels `app`, `phase`.
pub const PHASE_DURATION: &str = "bluegreen_phase_duration_seconds";
/// The share of traffic each slot receives, in percent, as applied to the router. Gauge; labels
/// `app`, `slot`.
pub const TRAFFIC_WEIGHT: &str = "bluegreen_traffic_weight";
/// Health and analysis checks. Counter; labels `app`, `kind`, `outcome`.
pub const CHECKS: &str = "bluegreen_checks_total";
/// Verdicts of health policies and analyses. Counter; labels `app`, `kind`, `verdict`.
pub const VERDICTS: &str = "bluegreen_verdicts_total";
/// How long one router apply (a switch, confirmed) took. Histogram in seconds; labels `app`,
/// `router`.
pub const SWITCH_DURATION: &str = "bluegreen_switch_duration_seconds";
/// How long acquiring the deployment lock took. Histogram in seconds; label `app`.
pub const LOCK_WAIT: &str = "bluegreen_lock_wait_seconds";

/// The histogram buckets (upper bounds, seconds) every seconds histogram of bluegreen is meant to
/// have, from a millisecond to ten minutes.
pub const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The seconds histograms, for a recorder that sets buckets per metric.
pub const SECONDS_HISTOGRAMS: &[&str] = &[PHASE_DURATION, SWITCH_DURATION, LOCK_WAIT];

/// Gives the installed recorder each family's description and unit. Call it once after
/// installing a recorder (a recorder installed later does not see earlier descriptions).
pub fn describe() {
    for name in [DEPLOYMENTS_STARTED, DEPLOYMENTS_FINISHED, CHECKS, VERDICTS] {
        describe_counter!(name, Unit::Count, help(name));
    }
    for name in SECONDS_HISTOGRAMS {
        describe_histogram!(*name, Unit::Seconds, help(name));
    }
    describe_gauge!(TRAFFIC_WEIGHT, Unit::Percent, help(TRAFFIC_WEIGHT));
}

/// The description of the family `name` (one of this module's names), for `# HELP` lines; empty
/// for another name.
pub fn help(name: &str) -> &'static str {
    match name {
        DEPLOYMENTS_STARTED => "Deployments started (a resume does not count again).",
        DEPLOYMENTS_FINISHED => {
            "Deployments that reached a terminal phase, by outcome (completed, rolled_back, failed)."
        }
        PHASE_DURATION => "How long each phase of a deployment took.",
        TRAFFIC_WEIGHT => "Percent of traffic each slot receives, as applied to the router.",
        CHECKS => "Health and analysis checks of the new slot, by outcome.",
        VERDICTS => "Verdicts of health policies and analyses.",
        SWITCH_DURATION => "How long one router apply (a switch, confirmed) took.",
        LOCK_WAIT => "How long acquiring the deployment lock took (acquired or given up).",
        _ => "",
    }
}

/// The `outcome` label of a deployment that ended in `phase`: its name when terminal
/// (`completed`, `rolled_back`, `failed`), `None` otherwise.
pub fn outcome_label(phase: &Phase) -> Option<&'static str> {
    phase.is_terminal().then(|| phase.name())
}

/// The `verdict` label of `verdict`.
pub fn verdict_label(verdict: &Verdict) -> &'static str {
    match verdict {
        Verdict::Passed => "passed",
        Verdict::Failed(_) => "failed",
        Verdict::Inconclusive(_) => "inconclusive",
    }
}

/// The `outcome` label of one check.
pub fn check_label(outcome: &ProbeOutcome) -> &'static str {
    match outcome {
        ProbeOutcome::Healthy => "healthy",
        ProbeOutcome::Unhealthy(_) => "unhealthy",
        ProbeOutcome::ProviderError(_) => "provider_error",
    }
}

/// What a check or verdict was for: the `kind` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckKind {
    /// The health policy of the new slot (phase `verifying`).
    Health,
    /// An analysis between canary steps (phase `analysing`).
    Analysis,
}

impl CheckKind {
    fn label(self) -> &'static str {
        match self {
            CheckKind::Health => "health",
            CheckKind::Analysis => "analysis",
        }
    }
}

fn app_label(app: &AppName) -> String {
    app.to_string()
}

/// A new deployment started (not a resume).
pub(crate) fn deployment_started(d: &Deployment) {
    counter!(DEPLOYMENTS_STARTED, "app" => app_label(d.app()), "strategy" => d.strategy().to_string()).increment(1);
}

/// `d` left phase `from` after `took`; counts it finished if it is now terminal.
pub(crate) fn phase_left(d: &Deployment, from: &Phase, took: Duration) {
    histogram!(PHASE_DURATION, "app" => app_label(d.app()), "phase" => from.name()).record(took.as_secs_f64());
    if let Some(outcome) = outcome_label(d.phase()) {
        counter!(
            DEPLOYMENTS_FINISHED,
            "app" => app_label(d.app()),
            "strategy" => d.strategy().to_string(),
            "outcome" => outcome
        )
        .increment(1);
    }
}

/// The router of `app` serves `split` now.
pub(crate) fn traffic(app: &AppName, split: TrafficSplit) {
    for slot in Slot::BOTH {
        gauge!(TRAFFIC_WEIGHT, "app" => app_label(app), "slot" => slot.to_string()).set(f64::from(split.weight(slot)));
    }
}

/// One apply of `router` for `app` took `took` (whether it succeeded or not).
pub(crate) fn switched(app: &AppName, router: &str, took: Duration) {
    histogram!(SWITCH_DURATION, "app" => app_label(app), "router" => router.to_string()).record(took.as_secs_f64());
}

/// One check of `kind` found `outcome`.
pub(crate) fn checked(app: &AppName, kind: CheckKind, outcome: &ProbeOutcome) {
    counter!(CHECKS, "app" => app_label(app), "kind" => kind.label(), "outcome" => check_label(outcome)).increment(1);
}

/// A health policy or analysis concluded `verdict`.
pub(crate) fn judged(app: &AppName, kind: CheckKind, verdict: &Verdict) {
    counter!(VERDICTS, "app" => app_label(app), "kind" => kind.label(), "verdict" => verdict_label(verdict))
        .increment(1);
}

/// Waiting for the lock of `app` took `took` (acquired or given up).
pub(crate) fn lock_waited(app: &AppName, took: Duration) {
    histogram!(LOCK_WAIT, "app" => app_label(app)).record(took.as_secs_f64());
}
