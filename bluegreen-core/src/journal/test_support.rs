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
    e.deployment = e.deployment.relabelled(id, phase);
    e
}

pub(crate) fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

/// Writes `bytes` at the end of the file at `path`, as another program would.
pub(crate) fn append_raw(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Every line of the file, parsed; panics on a torn or unterminated line.
pub(crate) fn read_all(path: &std::path::Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "unterminated file");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:.80}")))
        .collect()
}
