use super::*;
use crate::journal::test_support::{app, append_raw, entry, entry_of, seqs};
use crate::journal::{FileJournal, Journal, JournalOptions, Retention, SkipReason};
use crate::machine::Phase;

fn manual() -> JournalOptions {
    JournalOptions::default().max_bytes(None)
}

#[tokio::test]
async fn each_read_returns_only_what_was_appended_since_the_last() {
    let dir = tempfile::tempdir().unwrap();
    let mut follower = JournalFollower::of(dir.path(), &app());
    let first = follower.read_new().unwrap();
    assert!(first.entries.is_empty() && !first.restarted, "no file yet: empty");

    let journal = FileJournal::open_with(dir.path(), &app(), manual()).unwrap();
    for seq in 1..=3 {
        journal.append(&entry(seq)).await.unwrap();
    }
    assert_eq!(seqs(&follower.read_new().unwrap().entries), [1, 2, 3]);
    assert!(follower.read_new().unwrap().entries.is_empty());
    let read = follower.offset();

    journal.append(&entry(4)).await.unwrap();
    let next = follower.read_new().unwrap();
    assert_eq!((seqs(&next.entries), next.restarted), (vec![4], false));
    assert!(follower.offset() > read);
}

#[tokio::test]
async fn a_line_being_written_waits_and_foreign_lines_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    append_raw(journal.path(), b"{\"hello\":1}\n");
    let line = serde_json::to_vec(&entry(2)).unwrap();
    let (head, rest) = line.split_at(20);
    append_raw(journal.path(), head);

    let mut follower = JournalFollower::new(journal.path());
    let read = follower.read_new().unwrap();
    assert_eq!(seqs(&read.entries), [1]);
    assert_eq!(read.skipped.len(), 1);
    assert_eq!(read.skipped[0].reason, SkipReason::Foreign);

    append_raw(journal.path(), rest);
    append_raw(journal.path(), b"\n");
    assert_eq!(seqs(&follower.read_new().unwrap().entries), [2]);
}

#[tokio::test]
async fn a_compacted_journal_is_read_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual()).unwrap();
    for (seq, id) in [(1, "a"), (2, "a"), (3, "b"), (4, "b")] {
        journal.append(&entry_of(seq, id, Phase::Completed)).await.unwrap();
    }
    let mut follower = JournalFollower::new(journal.path());
    assert_eq!(follower.read_new().unwrap().entries.len(), 4);

    journal
        .compact(Retention::default().deployments(1).detailed(0))
        .await
        .unwrap();
    let again = follower.read_new().unwrap();
    assert!(again.restarted, "a new file at the path");
    assert_eq!(seqs(&again.entries), [4], "only what compaction kept");
}

/// A file cut back and grown again on the same inode (a line read before is gone, as when a torn
/// tail is repaired) is read again from its start, never from the middle of a line.
#[tokio::test]
async fn a_file_cut_back_and_regrown_is_read_again_from_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    let one = std::fs::metadata(journal.path()).unwrap().len();
    journal.append(&entry(2)).await.unwrap();
    let mut follower = JournalFollower::new(journal.path());
    assert_eq!(seqs(&follower.read_new().unwrap().entries), [1, 2]);

    // Cut back to entry 1, then a longer line: the old offset now falls inside it.
    let file = std::fs::OpenOptions::new().write(true).open(journal.path()).unwrap();
    file.set_len(one).unwrap();
    drop(file);
    let mut longer = entry(2);
    longer.record = crate::journal::Record::Note { text: "x".repeat(400) };
    append_raw(
        journal.path(),
        &[serde_json::to_vec(&longer).unwrap(), b"\n".to_vec()].concat(),
    );
    let again = follower.read_new().unwrap();
    assert!(again.restarted, "the offset no longer ends a line");
    assert_eq!(seqs(&again.entries), [1, 2]);
    assert!(again.skipped.is_empty(), "{:?}", again.skipped);
}

#[tokio::test]
async fn an_unreadable_entry_is_an_error_after_the_entries_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    append_raw(journal.path(), b"{\"seq\":\"two\"}\n");
    let mut follower = JournalFollower::new(journal.path());
    assert_eq!(seqs(&follower.read_new().unwrap().entries), [1]);
    let err = follower.read_new().unwrap_err();
    assert!(err.to_string().contains("looks like an entry"), "{err}");
    assert!(follower.read_new().is_err(), "stays before it");
}

#[test]
fn the_apps_of_a_state_directory_are_its_journals() {
    let dir = tempfile::tempdir().unwrap();
    for name in [
        "shop.journal.jsonl",
        "my.app.journal.jsonl",
        "shop.journal.1.jsonl",
        "shop.lock",
        "x.journal.jsonl.compact.tmp",
    ] {
        std::fs::write(dir.path().join(name), b"").unwrap();
    }
    let apps: Vec<String> = journal_apps(dir.path())
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(apps, ["my.app", "shop"]);
    assert!(journal_apps(&dir.path().join("absent")).unwrap().is_empty());
}
