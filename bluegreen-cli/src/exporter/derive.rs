//! What the exporter derives from one application's journal entries, read once each, in order.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use bluegreen::journal::{Entry, Record};
use bluegreen::metrics as m;
use bluegreen::{Deployment, Phase, Slot};

use super::text::{Exposition, Histogram};

/// Whether a deployment is running or parked (1) or over (0). Gauge; label `app`.
pub const IN_PROGRESS: &str = "bluegreen_deployment_in_progress";
/// When the latest deployment started, in seconds since the Unix epoch. Gauge; label `app`.
pub const LAST_TIMESTAMP: &str = "bluegreen_last_deployment_timestamp_seconds";

/// Declares, in `x`, every family the exporter serves.
pub fn declare(x: &mut Exposition) {
    x.family(m::DEPLOYMENTS_STARTED, "counter", m::help(m::DEPLOYMENTS_STARTED));
    x.family(m::DEPLOYMENTS_FINISHED, "counter", m::help(m::DEPLOYMENTS_FINISHED));
    x.family(m::PHASE_DURATION, "histogram", m::help(m::PHASE_DURATION));
    x.family(m::TRAFFIC_WEIGHT, "gauge", m::help(m::TRAFFIC_WEIGHT));
    x.family(m::VERDICTS, "counter", m::help(m::VERDICTS));
    x.family(
        IN_PROGRESS,
        "gauge",
        "Whether a deployment is running or parked (1) or over (0).",
    );
    x.family(
        LAST_TIMESTAMP,
        "gauge",
        "When the latest deployment started, in seconds since the Unix epoch.",
    );
}

/// The latest state of the deployment the journal is at.
#[derive(Debug, Clone)]
struct Current {
    deployment: Deployment,
    /// When its phase was entered (the entry that entered it), in seconds since the epoch.
    phase_since: f64,
}

/// The metrics of one application, as derived from the entries seen so far.
#[derive(Debug, Default, Clone)]
pub struct AppMetrics {
    started: BTreeMap<String, u64>,
    finished: BTreeMap<(String, &'static str), u64>,
    phases: BTreeMap<&'static str, Histogram>,
    verdicts: BTreeMap<(&'static str, &'static str), u64>,
    current: Option<Current>,
    /// The sequence number of the last entry taken in.
    last_seq: u64,
}

impl AppMetrics {
    /// Takes in the next entry of the journal.
    ///
    /// - A deployment id other than the current one is a deployment started.
    /// - Entering a terminal phase is a deployment finished (its outcome the phase's name); a
    ///   deployment first seen terminal (compaction kept only its last entry) counts as started
    ///   and finished.
    /// - A phase change observes the time since the entry that entered the phase left.
    /// - The completed or failed record of a `verifying` or `analysing` phase is a verdict.
    /// - An entry at or before the last one taken in (a compacted journal read again) is skipped:
    ///   it is counted already.
    pub fn apply(&mut self, entry: &Entry) {
        if entry.seq <= self.last_seq {
            return;
        }
        self.last_seq = entry.seq;
        let d = &entry.deployment;
        let at = seconds(entry);
        let previous = self.current.take().filter(|c| c.deployment.id() == d.id());
        let strategy = strategy(d);
        match &previous {
            None => *self.started.entry(strategy.clone()).or_default() += 1,
            Some(before) if before.deployment.phase() != d.phase() => {
                let left = before.deployment.phase();
                self.phases
                    .entry(left.name())
                    .or_insert_with(|| Histogram::new(m::SECONDS_BUCKETS))
                    .observe((at - before.phase_since).max(0.0));
                if let Some(verdict) = verdict(left, &entry.record) {
                    *self.verdicts.entry(verdict).or_default() += 1;
                }
            }
            Some(_) => {}
        }
        let was_terminal = previous.as_ref().is_some_and(|p| p.deployment.phase().is_terminal());
        if let (Some(outcome), false) = (m::outcome_label(d.phase()), was_terminal) {
            *self.finished.entry((strategy, outcome)).or_default() += 1;
        }
        let phase_since = match previous {
            Some(p) if p.deployment.phase() == d.phase() => p.phase_since,
            _ => at,
        };
        self.current = Some(Current {
            deployment: d.clone(),
            phase_since,
        });
    }

    /// The sequence number of the last entry taken in (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Writes this application's samples into `x` (declared by [`declare`]).
    pub fn write(&self, app: &str, x: &mut Exposition) {
        for (strategy, n) in &self.started {
            x.sample(
                m::DEPLOYMENTS_STARTED,
                &[("app", app), ("strategy", strategy)],
                *n as f64,
            );
        }
        for ((strategy, outcome), n) in &self.finished {
            let labels = [("app", app), ("strategy", strategy.as_str()), ("outcome", outcome)];
            x.sample(m::DEPLOYMENTS_FINISHED, &labels, *n as f64);
        }
        for (phase, h) in &self.phases {
            x.histogram(m::PHASE_DURATION, &[("app", app), ("phase", phase)], h);
        }
        for ((kind, verdict), n) in &self.verdicts {
            let labels = [("app", app), ("kind", kind), ("verdict", verdict)];
            x.sample(m::VERDICTS, &labels, *n as f64);
        }
        let Some(current) = &self.current else {
            return;
        };
        let d = &current.deployment;
        for (slot, weight) in weights(d) {
            x.sample(
                m::TRAFFIC_WEIGHT,
                &[("app", app), ("slot", slot.as_str())],
                f64::from(weight),
            );
        }
        let running = if d.phase().is_terminal() { 0.0 } else { 1.0 };
        x.sample(IN_PROGRESS, &[("app", app)], running);
        let started = d.started().system_time().duration_since(UNIX_EPOCH).unwrap_or_default();
        x.sample(LAST_TIMESTAMP, &[("app", app)], started.as_secs_f64());
    }
}

fn seconds(entry: &Entry) -> f64 {
    entry
        .at
        .system_time()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The `strategy` label (`unknown` for journals written before strategies were recorded).
fn strategy(d: &Deployment) -> String {
    match d.strategy() {
        "" => "unknown".to_string(),
        name => name.to_string(),
    }
}

/// The verdict label pair (`kind`, `verdict`) of the record that ended phase `left`, if it ended
/// a health policy or an analysis. An abort is not a verdict.
fn verdict(left: &Phase, record: &Record) -> Option<(&'static str, &'static str)> {
    let kind = match left {
        Phase::Verifying => "health",
        Phase::Analysing => "analysis",
        _ => return None,
    };
    let verdict = match record {
        Record::Completed { .. } => "passed",
        Record::Failed { reason } if reason.starts_with("aborted: ") => return None,
        Record::Failed { reason } if reason.starts_with("inconclusive: ") => "inconclusive",
        Record::Failed { .. } => "failed",
        _ => return None,
    };
    Some((kind, verdict))
}

/// Each slot's share of traffic as the deployment last left the router: the previous slot has all
/// of it once a rollback restored it; otherwise the new slot has the deployment's weight and the
/// previous slot (if any) the rest.
fn weights(d: &Deployment) -> [(Slot, u8); 2] {
    let target = d.target();
    let (new, old) = match (d.phase(), d.previous()) {
        (Phase::Retiring | Phase::RolledBack, Some(_)) => (0, 100),
        (_, Some(_)) => (d.weight(), 100 - d.weight().min(100)),
        (_, None) => (d.weight(), 0),
    };
    [(target, new), (target.other(), old)]
}
