//! What a deployment tells its watchers while it runs, and the report it ends with.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::machine::{Deployment, Phase};
use crate::model::{AppName, Release, Slot, Timestamp};
use crate::probe::CheckRecord;

/// Something that happened during a deployment. Subscribe with
/// [`Deployer::subscribe`](crate::Deployer::subscribe).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Event {
    /// The deployment id.
    pub deployment: String,
    /// The application.
    pub app: AppName,
    /// When.
    pub at: Timestamp,
    /// Time since the deployment started (or resumed).
    #[serde(serialize_with = "crate::model::field::serialize_duration")]
    pub elapsed: Duration,
    /// What.
    pub kind: EventKind,
}

impl Event {
    /// An event of deployment `id` of `app`, now, for a run that started at `started`.
    pub(crate) fn new(id: &str, app: &AppName, started: tokio::time::Instant, kind: EventKind) -> Self {
        Event {
            deployment: id.to_string(),
            app: app.clone(),
            at: Timestamp::now(),
            elapsed: started.elapsed(),
            kind,
        }
    }
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A deployment started (or resumed).
    Started {
        /// The release.
        release: Release,
        /// Its slot.
        target: Slot,
        /// The release it replaces.
        previous: Option<Release>,
        /// Whether this is a resume after a crash.
        resumed: bool,
    },
    /// The deployment moved from one phase to the next.
    PhaseChanged {
        /// The phase left.
        from: Phase,
        /// The phase entered.
        to: Phase,
        /// How long `from` took.
        #[serde(serialize_with = "crate::model::field::serialize_duration")]
        took: Duration,
        /// What `from` found.
        detail: String,
    },
    /// A health check or analysis check ran.
    Check(CheckRecord),
    /// Worth knowing, not a step (a lock taken over from a dead holder, a torn journal tail).
    /// In JSON: `{"event": "note", "text": "…"}` (an internally tagged string needs a field).
    #[serde(serialize_with = "note_text")]
    Note(String),
    /// A [hook](crate::hook) finished.
    Hook(crate::hook::HookRun),
    /// The deployment was parked (see [`Parking`](crate::Parking)): this process stops running it.
    Parked {
        /// The phase it waits in.
        phase: Phase,
        /// When what is due happens (`None`: it waits for a command).
        until: Option<Timestamp>,
    },
}

impl EventKind {
    /// Every event's [`name`](Self::name), in declaration order.
    pub const NAMES: &'static [&'static str] = &["started", "phase_changed", "check", "note", "hook", "parked"];

    /// The event's name: its JSON `"event"` field, and a webhook's `X-Bluegreen-Event` header.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Started { .. } => "started",
            EventKind::PhaseChanged { .. } => "phase_changed",
            EventKind::Check(_) => "check",
            EventKind::Note(_) => "note",
            EventKind::Hook(_) => "hook",
            EventKind::Parked { .. } => "parked",
        }
    }
}

/// A note's text as a `text` field (serde cannot tag a bare string).
fn note_text<S: serde::Serializer>(text: &str, serializer: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeStruct;
    let mut note = serializer.serialize_struct("Note", 1)?;
    note.serialize_field("text", text)?;
    note.end()
}

/// One phase of a finished deployment, for a timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct TimelineStep {
    /// The phase, as displayed (`"shifting to 100%"`).
    pub phase: String,
    /// When it started, after the deployment started.
    #[serde(serialize_with = "crate::model::field::serialize_duration")]
    pub at: Duration,
    /// How long it took.
    #[serde(serialize_with = "crate::model::field::serialize_duration")]
    pub took: Duration,
    /// What it found.
    pub detail: String,
}

/// How a completed deployment went.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The deployment's final state.
    pub deployment: Deployment,
    /// Every phase, in order.
    pub timeline: Vec<TimelineStep>,
    /// From start (or resume) to the end.
    #[serde(serialize_with = "crate::model::field::serialize_duration")]
    pub took: Duration,
    /// Every [hook](crate::hook) this run ran, in order, failures included (a failure after
    /// promotion, completion or a rollback is reported here and does not undo the step).
    pub hooks: Vec<crate::hook::HookRun>,
}

impl fmt::Display for Report {
    /// A table: one line per phase with its start offset and duration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for step in &self.timeline {
            writeln!(
                f,
                "  {:>9.1} ms  {:<26} {:>9.1} ms  {}",
                ms(step.at),
                step.phase,
                ms(step.took),
                step.detail
            )?;
        }
        Ok(())
    }
}

/// Milliseconds, with a fraction, for tables.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_serializes_with_its_name_as_the_tag() {
        let note = serde_json::to_value(EventKind::Note("lock taken over".into())).unwrap();
        assert_eq!(note, serde_json::json!({"event": "note", "text": "lock taken over"}));
        let parked = EventKind::Parked {
            phase: Phase::Completed,
            until: None,
        };
        assert_eq!(serde_json::to_value(&parked).unwrap()["event"], parked.name());
        assert!(EventKind::NAMES.contains(&parked.name()));
    }
}
