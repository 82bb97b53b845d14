//! The markers of a deployment's picture: what happened at an instant (a check's verdict, an
//! operator's command, a hook, a note, parking, a failure), read from one journal entry.

use bluegreen::command::Judgement;
use bluegreen::hook::HookOutcome;
use bluegreen::journal::{Entry, Record};
use bluegreen::{Phase, Timestamp};
use serde::Serialize;

/// What a marker marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    /// A check (the health policy or an analysis) that passed.
    CheckPassed,
    /// A check that failed.
    CheckFailed,
    /// Checks that could not tell (held for a human).
    CheckInconclusive,
    /// An operator's command that was applied.
    CommandAccepted,
    /// An operator's command that was refused.
    CommandRefused,
    /// A hook that succeeded.
    HookSucceeded,
    /// A hook that failed.
    HookFailed,
    /// A note of the audit log.
    Note,
    /// The deployment was parked.
    Parked,
    /// A phase that failed (other than a check).
    Failure,
}

impl MarkerKind {
    /// The lane it is drawn in.
    pub fn lane(self) -> Lane {
        match self {
            MarkerKind::CheckPassed | MarkerKind::CheckFailed | MarkerKind::CheckInconclusive => Lane::Checks,
            MarkerKind::CommandAccepted | MarkerKind::CommandRefused => Lane::Commands,
            MarkerKind::HookSucceeded
            | MarkerKind::HookFailed
            | MarkerKind::Note
            | MarkerKind::Parked
            | MarkerKind::Failure => Lane::Events,
        }
    }

    /// Whether it marks something that went wrong.
    pub fn is_bad(self) -> bool {
        matches!(
            self,
            MarkerKind::CheckFailed | MarkerKind::CommandRefused | MarkerKind::HookFailed | MarkerKind::Failure
        )
    }
}

/// The rows of markers under the traffic chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lane {
    /// Health checks and analyses.
    Checks,
    /// Operators' commands.
    Commands,
    /// Hooks, notes, parking, failures.
    Events,
}

impl Lane {
    /// Every lane, top to bottom.
    pub const ALL: [Lane; 3] = [Lane::Checks, Lane::Commands, Lane::Events];

    /// Its label.
    pub fn label(self) -> &'static str {
        match self {
            Lane::Checks => "checks",
            Lane::Commands => "commands",
            Lane::Events => "hooks, notes",
        }
    }
}

/// Something that happened at an instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Marker {
    /// When.
    pub at: Timestamp,
    /// The entry's sequence number.
    pub seq: u64,
    /// What.
    pub kind: MarkerKind,
    /// One line saying what (user-controlled text included: escape it).
    pub text: String,
}

/// A command in words: its name, and an abort's reason.
pub fn command_words(command: &bluegreen::Command) -> String {
    match command {
        bluegreen::Command::Abort { reason } => format!("abort ({reason})"),
        other => other.name().to_string(),
    }
}

/// The marker of `entry`, given the phase the deployment was in before it (`None` for its first
/// entry).
pub fn marker(before: Option<&Phase>, entry: &Entry) -> Option<Marker> {
    let checked = before.and_then(|phase| match phase {
        Phase::Verifying => Some("health"),
        Phase::Analysing => Some("analysis"),
        _ => None,
    });
    let (kind, text) = match &entry.record {
        Record::Started => return None,
        Record::Completed { detail } => {
            let what = checked?;
            (MarkerKind::CheckPassed, format!("{what} passed: {detail}"))
        }
        Record::Failed { reason } => match checked {
            Some(what) if reason.starts_with("inconclusive") => {
                (MarkerKind::CheckInconclusive, format!("{what} {reason}"))
            }
            Some(what) => (MarkerKind::CheckFailed, format!("{what} failed: {reason}")),
            None => (
                MarkerKind::Failure,
                format!("{} failed: {reason}", before.map_or("start", Phase::name)),
            ),
        },
        Record::Note { text } => (MarkerKind::Note, format!("note: {text}")),
        Record::HookStarted { .. } => return None,
        Record::HookFinished { stage, hook, outcome } => match outcome {
            HookOutcome::Succeeded { .. } => (MarkerKind::HookSucceeded, format!("hook {stage} {hook}: succeeded")),
            HookOutcome::Failed { reason, .. } => {
                (MarkerKind::HookFailed, format!("hook {stage} {hook} failed: {reason}"))
            }
            _ => (MarkerKind::HookSucceeded, format!("hook {stage} {hook}")),
        },
        Record::Command {
            command,
            from,
            judgement,
            ..
        } => {
            let what = command_words(command);
            match judgement {
                Judgement::Accepted => (MarkerKind::CommandAccepted, format!("{what} from {from}: accepted")),
                Judgement::Refused { reason } => (
                    MarkerKind::CommandRefused,
                    format!("{what} from {from}: refused, {reason}"),
                ),
                _ => (MarkerKind::CommandRefused, format!("{what} from {from}")),
            }
        }
        Record::Parked { until } => (
            MarkerKind::Parked,
            match until {
                Some(until) => format!("parked until {until}"),
                None => "parked until a command".to_string(),
            },
        ),
        _ => return None,
    };
    Some(Marker {
        at: entry.at,
        seq: entry.seq,
        kind,
        text,
    })
}
