//! Entries for the journal's tests.

use super::{Entry, Record};
use crate::machine::{Deployment, Kind};
use crate::model::{AppName, Release, Slot, Timestamp};

pub(crate) fn app() -> AppName {
    AppName::new("shop").unwrap()
}

/// An entry with a note of `note_len` bytes, as it reads back from JSON (timestamps are kept to
/// the millisecond, so a fresh `Timestamp::now()` would not compare equal after a round trip).
pub(crate) fn entry_with_note(seq: u64, note_len: usize) -> Entry {
    let deployment = Deployment::new(
        app(),
        Kind::Deploy,
        Release::new(format!("shop:{seq}")).unwrap(),
        Slot::Green,
        None,
        crate::strategy::Retirement::default(),
        Some("ci".into()),
    );
    let entry = Entry {
        seq,
        at: Timestamp::now(),
        record: Record::Note {
            text: "n".repeat(note_len),
        },
        deployment,
    };
    serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap()
}

/// A small entry.
pub(crate) fn entry(seq: u64) -> Entry {
    let mut e = entry_with_note(seq, 0);
    e.record = Record::Completed {
        detail: format!("step {seq}"),
    };
    e
}

/// A small entry of deployment `id`, in `phase`.
pub(crate) fn entry_of(seq: u64, id: &str, phase: crate::machine::Phase) -> Entry {
    let mut e = entry(seq);
    e.deployment.id = id.to_owned();
    e.deployment.phase = phase;
    e
}
