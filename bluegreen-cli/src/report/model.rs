//! From one deployment's journal entries to what the picture shows: phases as intervals, the
//! traffic weight of each slot over time, [markers](super::marker) (checks, commands, hooks,
//! notes, parking, failures) and the outcome. Pure: no I/O, no layout.

use std::time::Duration;

use bluegreen::command::Judgement;
use bluegreen::journal::{Entry, Record};
use bluegreen::{Deployment, Phase, Slot, Timestamp};
use serde::Serialize;

use super::marker::{marker, Marker};

/// One deployment, read from its journal entries (oldest first).
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// The deployment as its last entry left it.
    pub deployment: Deployment,
    /// When it started (its first entry, or the deployment's own start if earlier).
    pub start: Timestamp,
    /// Its last entry.
    pub end: Timestamp,
    /// The phases it went through, in order; the last one ends at `end`.
    pub phases: Vec<Interval>,
    /// The weight of each slot, each time it changed (the first at `start`).
    pub weights: Vec<Weights>,
    /// What happened at an instant.
    pub markers: Vec<Marker>,
    /// How it ended (or where it stands).
    pub outcome: Outcome,
    /// Every entry, oldest first.
    pub entries: Vec<Entry>,
}

/// A phase the deployment was in, from `from` to `to`.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// The phase.
    pub phase: Phase,
    /// When it began.
    pub from: Timestamp,
    /// When the next phase began (or the last entry, for the last one).
    pub to: Timestamp,
    /// Whether the deployment was parked (no process running it) during it.
    pub parked: bool,
    /// What ended it: the detail or reason of the entry that moved on, if any.
    pub ended_by: Option<String>,
}

impl Interval {
    /// How long it lasted.
    pub fn took(&self) -> Duration {
        between(self.from, self.to)
    }
}

/// The share of traffic of each slot, in percent, from `at` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Weights {
    /// Since when.
    pub at: Timestamp,
    /// The blue slot's share.
    pub blue: u8,
    /// The green slot's share.
    pub green: u8,
}

/// How the deployment ended, or where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The release serves all traffic; the old slot is stopped.
    Completed,
    /// The previous release serves again.
    RolledBack {
        /// Why.
        reason: String,
    },
    /// Stopped in a state that needs `resume`.
    Failed {
        /// Why.
        reason: String,
    },
    /// Parked (at a gate, or warm in its rollback window).
    Parked {
        /// The phase it waits in.
        phase: String,
    },
    /// Still running, or interrupted.
    InProgress {
        /// The phase it was last in.
        phase: String,
    },
}

impl Outcome {
    /// A short word for it.
    pub fn word(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::RolledBack { .. } => "rolled back",
            Outcome::Failed { .. } => "failed",
            Outcome::Parked { .. } => "parked",
            Outcome::InProgress { .. } => "in progress",
        }
    }

    /// The sentence shown under the title.
    pub fn sentence(&self, d: &Deployment) -> String {
        match self {
            Outcome::Completed => format!("{} serves all traffic in {}", d.release(), d.target()),
            Outcome::RolledBack { reason } => format!("rolled back: {reason}"),
            Outcome::Failed { reason } => format!("failed: {reason} (run `bluegreen resume`)"),
            Outcome::Parked { phase } => format!("parked at {phase}"),
            Outcome::InProgress { phase } => format!("in progress at {phase} (or interrupted: `bluegreen resume`)"),
        }
    }
}

/// The time from `from` to `to` (zero if `to` is earlier).
pub fn between(from: Timestamp, to: Timestamp) -> Duration {
    to.system_time().duration_since(from.system_time()).unwrap_or_default()
}

impl Timeline {
    /// The timeline of the deployment whose entries these are (oldest first).
    ///
    /// Returns `None` when `entries` is empty.
    pub fn new(entries: Vec<Entry>) -> Option<Timeline> {
        let first = entries.first()?;
        let last = entries.last()?;
        let deployment = last.deployment.clone();
        let start = first.at.min(first.deployment.started());
        let end = last.at.max(start);
        let mut timeline = Timeline {
            outcome: outcome(&deployment),
            deployment,
            start,
            end,
            phases: Vec::new(),
            weights: Vec::new(),
            markers: Vec::new(),
            entries: Vec::new(),
        };
        let mut before: Option<&Entry> = None;
        for entry in &entries {
            timeline.phase(before, entry);
            timeline.weight(entry);
            if let Some(marker) = marker(before.map(|b| b.deployment.phase()), entry) {
                timeline.markers.push(marker);
            }
            before = Some(entry);
        }
        if let Some(last) = timeline.phases.last_mut() {
            last.to = end;
        }
        timeline.entries = entries;
        Some(timeline)
    }

    /// How long it took, from its start to its last entry.
    pub fn took(&self) -> Duration {
        between(self.start, self.end)
    }

    /// Opens or extends the phase interval `entry` leaves the deployment in.
    fn phase(&mut self, before: Option<&Entry>, entry: &Entry) {
        let phase = entry.deployment.phase();
        let parked = entry.deployment.parked().is_some();
        if let Some(open) = self.phases.last_mut() {
            if open.phase == *phase && open.parked == parked {
                return;
            }
            open.to = entry.at;
            open.ended_by = ended_by(&entry.record);
        }
        let from = if before.is_none() { self.start } else { entry.at };
        self.phases.push(Interval {
            phase: phase.clone(),
            from,
            to: entry.at,
            parked,
            ended_by: None,
        });
    }

    /// Records the weights `entry` leaves, when they changed.
    fn weight(&mut self, entry: &Entry) {
        let (blue, green) = weights(&entry.deployment);
        match self.weights.last() {
            Some(last) if (last.blue, last.green) == (blue, green) => {}
            None => self.weights.push(Weights {
                at: self.start,
                blue,
                green,
            }),
            Some(_) => self.weights.push(Weights {
                at: entry.at,
                blue,
                green,
            }),
        }
    }
}

/// The share of each slot `(blue, green)` as a deployment records it: the target's weight, and
/// the rest on the previous slot (none if nothing served before). Once a rollback has moved
/// traffic back (retiring, rolled back), the target has none, whatever weight it last had.
pub fn weights(d: &Deployment) -> (u8, u8) {
    let restored = matches!(d.phase(), Phase::Retiring | Phase::RolledBack);
    let target = if restored { 0 } else { d.weight().min(100) };
    let other = match d.previous() {
        Some(previous) if previous.slot != d.target() => 100 - target,
        _ => 0,
    };
    match d.target() {
        Slot::Blue => (target, other),
        Slot::Green => (other, target),
    }
}

fn outcome(d: &Deployment) -> Outcome {
    match d.phase() {
        Phase::Completed => Outcome::Completed,
        Phase::RolledBack => Outcome::RolledBack {
            reason: d.reason().unwrap_or("no reason journaled").to_string(),
        },
        Phase::Failed { reason, .. } => Outcome::Failed { reason: reason.clone() },
        phase if d.parked().is_some() => Outcome::Parked {
            phase: phase.to_string(),
        },
        phase => Outcome::InProgress {
            phase: phase.to_string(),
        },
    }
}

/// The words of a record that ends a phase.
fn ended_by(record: &Record) -> Option<String> {
    match record {
        Record::Completed { detail } => Some(detail.clone()),
        Record::Failed { reason } => Some(reason.clone()),
        Record::Command {
            command,
            judgement: Judgement::Accepted,
            ..
        } => Some(format!("{} accepted", command.name())),
        _ => None,
    }
}
