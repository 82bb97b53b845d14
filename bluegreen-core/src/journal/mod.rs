//! The journal: an append-only record of every step of every deployment of one application.
//!
//! It is the audit log, the history, and what [`resume`](crate::Deployer::resume) reads after a
//! crash. Every entry carries a full snapshot of its deployment, so the latest state is always the
//! last entry: status and resume read one line, however long the history.

mod backwards;
mod compact;
mod file;
mod follow;
mod handle;
mod memory;
mod skipped;
#[cfg(test)]
mod test_support;

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::machine::Deployment;
use crate::model::Timestamp;

pub use compact::{CompactionReport, Retention};
/// The fleet journal appends its lines the same way (torn tail cut off first, fsync, cut back on failure).
pub(crate) use file::append_line;
pub use file::{FileJournal, JournalOptions};
pub use follow::{journal_apps, Followed, JournalFollower};
pub use memory::InMemoryJournal;
pub use skipped::{SkipReason, SkippedLine};

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// A phase's work started.
    Started,
    /// A phase's work completed; `detail` says what it found.
    Completed {
        /// What happened.
        detail: String,
    },
    /// A phase's work failed.
    Failed {
        /// Why.
        reason: String,
    },
    /// Something worth the audit log that is not a step (a lock taken over, a torn tail, a resume).
    Note {
        /// The note.
        text: String,
    },
    /// A [hook](crate::hook) started (journaled before it runs, so a crash mid-hook is visible).
    HookStarted {
        /// The stage.
        stage: crate::hook::Stage,
        /// The hook's description.
        hook: String,
    },
    /// A [hook](crate::hook) finished: how, with its bounded output. A resume does not run again a
    /// hook of a deployment whose result is journaled.
    HookFinished {
        /// The stage.
        stage: crate::hook::Stage,
        /// The hook's description.
        hook: String,
        /// How it ended.
        outcome: crate::hook::HookOutcome,
    },
    /// An operator's [command](crate::command), who sent it, and how it was judged. An accepted
    /// command's entry holds the deployment after its transition: the command and its effect are
    /// one entry, so a command is applied at most once and an applied one is never lost.
    Command {
        /// The command's id (unique; its sender finds it here if the deployer dies before it
        /// answers).
        id: String,
        /// What it asked.
        command: crate::command::Command,
        /// Who sent it.
        from: crate::command::Issuer,
        /// Accepted, or refused and why.
        judgement: crate::command::Judgement,
    },
    /// The deployment was parked (see [`Parking`](crate::machine::Parking)): the lock is released
    /// and no process runs it until a command, or `until`.
    Parked {
        /// When what is due happens.
        until: Option<crate::model::Timestamp>,
    },
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Entry {
    /// Position in this application's journal, from 1, without gaps.
    pub seq: u64,
    /// When it was written.
    pub at: Timestamp,
    /// What happened.
    pub record: Record,
    /// The deployment, as it stood after this entry (its phase included).
    pub deployment: Deployment,
}

impl Entry {
    /// Entry `seq`, written `at`: `record` of `deployment` (as it stood after it).
    pub fn new(seq: u64, at: Timestamp, record: Record, deployment: Deployment) -> Self {
        Entry {
            seq,
            at,
            record,
            deployment,
        }
    }
}

/// Where entries are kept.
///
/// # Contract
/// - [`append`](Journal::append) returns once the entry is durable (for files: written and
///   fsync'd). Entries are never rewritten.
/// - [`tail`](Journal::tail) returns the last `n` entries, oldest first, in time that depends on
///   `n`, not on the journal's length.
/// - A torn last entry (a crash mid-write) is skipped and reported through
///   [`torn_tail`](Journal::torn_tail), never an error.
/// - A line that is not an entry at all (a torn line in the middle, or a complete JSON line that
///   is foreign: not an object with a `seq` or a `deployment` field) is skipped by
///   [`tail`](Journal::tail), with a warning, and reported through
///   [`skipped`](Journal::skipped), never an error.
/// - A line that looks like an entry (an object with a `seq` or a `deployment` field) but that
///   this version cannot read (written by a newer version, by one before 0.1 — whose durations
///   were `*_ms` integers — or edited) is an error whose [`source`](std::error::Error::source)
///   names the field: acting on an older entry instead would be wrong.
#[async_trait]
pub trait Journal: Send + Sync + Debug + 'static {
    /// Appends one entry, durably.
    async fn append(&self, entry: &Entry) -> Result<()>;

    /// The last `n` entries, oldest first.
    async fn tail(&self, n: usize) -> Result<Vec<Entry>>;

    /// A description of a torn last entry found when the journal was opened, if there was one.
    fn torn_tail(&self) -> Option<String> {
        None
    }

    /// The lines that [`tail`](Journal::tail) has skipped so far because they are not entries
    /// (see [`SkippedLine`]), oldest first, each once, at most a bounded number of them.
    ///
    /// Journals that cannot hold such lines (the default, and [`InMemoryJournal`]) return none.
    fn skipped(&self) -> Vec<SkippedLine> {
        Vec::new()
    }

    /// Where the journal lives, for messages.
    fn location(&self) -> String;
}

fn _object_safe(_: &dyn Journal) {}
