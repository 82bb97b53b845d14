use std::sync::Arc;

use super::*;
use crate::journal::test_support::{app, append_raw, entry_of, read_all, seqs};
use crate::machine::Phase;

/// Only explicit compactions; `rotated` rotated files.
fn manual(rotated: usize) -> JournalOptions {
    JournalOptions {
        max_bytes: None,
        rotated_files: rotated,
        ..JournalOptions::default()
    }
}

fn last_line(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let body = &bytes[..bytes.len() - 1];
    let start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    bytes[start..].to_vec()
}

/// Writes: `u` left unfinished (seq 1, 2), then `d1`..`d5`, three entries each, finished.
async fn history(journal: &FileJournal) -> Vec<Entry> {
    let mut written = vec![
        entry_of(1, "u", Phase::Provisioning),
        entry_of(2, "u", Phase::Verifying),
    ];
    let mut seq = 2;
    for d in 1..=5 {
        for phase in [Phase::Provisioning, Phase::Warm, Phase::Completed] {
            seq += 1;
            written.push(entry_of(seq, &format!("d{d}"), phase));
        }
    }
    for e in &written {
        journal.append(e).await.unwrap();
    }
    written
}

#[tokio::test]
async fn compaction_keeps_the_last_entry_history_and_unfinished_deployments() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual(3)).unwrap();
    let written = history(&journal).await;
    // A foreign line among them goes to the rotated file too.
    append_raw(journal.path(), b"{\"hello\":\"world\"}\n");
    let last_entry = entry_of(18, "d5", Phase::Completed);
    journal.append(&last_entry).await.unwrap();
    let last = last_line(journal.path());
    let before = std::fs::read(journal.path()).unwrap();

    let keep = Retention {
        deployments: 3,
        detailed: 1,
    };
    let report = journal.compact(keep).await.unwrap();

    // u's latest (unfinished), the latest of d3 and d4, every entry of d5 (the most recent).
    let kept = read_all(journal.path());
    assert_eq!(seqs(&kept), [2, 11, 14, 15, 16, 17, 18]);
    assert_eq!(last_line(journal.path()), last, "the last entry is kept byte for byte");
    assert!(kept.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(report.kept, 7);
    assert_eq!(report.dropped, 11);
    assert_eq!(report.skipped, 1);
    assert_eq!(report.bytes_before, before.len() as u64);
    assert_eq!(report.bytes_after, std::fs::metadata(journal.path()).unwrap().len());
    assert_eq!(report.rotated_to.as_deref(), Some(journal.rotated_path(1).as_path()));

    // The rotated file holds exactly the dropped lines, in order, byte for byte.
    let rotated = std::fs::read(journal.rotated_path(1)).unwrap();
    let compacted = std::fs::read(journal.path()).unwrap();
    let mut lines_before: Vec<&[u8]> = before.split_inclusive(|&b| b == b'\n').collect();
    let lines_kept: Vec<&[u8]> = compacted.split_inclusive(|&b| b == b'\n').collect();
    lines_before.retain(|l| !lines_kept.contains(l));
    assert_eq!(rotated, lines_before.concat());
    assert!(String::from_utf8_lossy(&rotated).contains("{\"hello\":\"world\"}\n"));

    // Status, tail and resume read what they read before.
    assert_eq!(journal.tail(1).await.unwrap(), [last_entry]);
    assert_eq!(journal.tail(100).await.unwrap().first(), Some(&written[1]));
    // Appending goes on from the same seq.
    journal.append(&entry_of(19, "d6", Phase::Completed)).await.unwrap();
    assert_eq!(seqs(&journal.tail(2).await.unwrap()), [18, 19]);

    // Compacting again with the same retention: d6 is now the most recent, so d5's first
    // entries go, and d3 falls out of the history; the rotated file shifts to `.2`.
    let again = journal.compact(keep).await.unwrap();
    assert_eq!(again.dropped, 4);
    assert_eq!(std::fs::read(journal.rotated_path(2)).unwrap(), rotated);
    assert_eq!(seqs(&read_all(&journal.rotated_path(1))), [11, 15, 16, 17]);
    assert_eq!(seqs(&read_all(journal.path())), [2, 14, 18, 19]);
}

#[tokio::test]
async fn compaction_with_nothing_to_drop_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual(1)).unwrap();
    history(&journal).await;
    let before = std::fs::read(journal.path()).unwrap();
    let report = journal.compact(Retention::default()).await.unwrap();
    assert_eq!((report.kept, report.dropped, report.rotated_to), (17, 0, None));
    assert_eq!(std::fs::read(journal.path()).unwrap(), before);
    assert!(!journal.rotated_path(1).exists());
}

#[tokio::test]
async fn compaction_without_rotated_files_keeps_only_what_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual(0)).unwrap();
    history(&journal).await;
    let keep = Retention {
        deployments: 0,
        detailed: 0,
    };
    let report = journal.compact(keep).await.unwrap();
    // The unfinished deployment's latest entry, and the last entry.
    assert_eq!(seqs(&read_all(journal.path())), [2, 17]);
    assert_eq!(report.rotated_to, None);
    assert!(!journal.rotated_path(1).exists());
}

#[tokio::test]
async fn an_unreadable_entry_stops_compaction_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open_with(dir.path(), &app(), manual(1)).unwrap();
    history(&journal).await;
    append_raw(journal.path(), b"{\"seq\":99,\"deployment\":7}\n");
    let before = std::fs::read(journal.path()).unwrap();
    match journal.compact(Retention::default()).await {
        Err(Error::Journal { reason, .. }) => assert!(reason.contains("unreadable entry at offset"), "{reason}"),
        other => panic!("expected a journal error, got {other:?}"),
    }
    assert_eq!(std::fs::read(journal.path()).unwrap(), before);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["shop.journal.jsonl"]);
}

#[tokio::test]
async fn a_crash_before_the_rename_leaves_the_journal_intact_and_open_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let (path, written) = {
        let journal = FileJournal::open_with(dir.path(), &app(), manual(1)).unwrap();
        (journal.path().to_owned(), history(&journal).await)
    };
    // What a compaction that died after writing its temporary files leaves.
    let compact_tmp = dir.path().join("shop.journal.jsonl.compact.tmp");
    let rotate_tmp = dir.path().join("shop.journal.1.jsonl.tmp");
    std::fs::write(&compact_tmp, b"{\"seq\":17,\"half").unwrap();
    std::fs::write(&rotate_tmp, b"whatever\n").unwrap();

    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert!(!compact_tmp.exists() && !rotate_tmp.exists());
    assert_eq!(journal.torn_tail(), None);
    assert_eq!(read_all(&path), written);
    assert_eq!(journal.tail(100).await.unwrap(), written);
    // And a compaction now works.
    assert_eq!(
        journal
            .compact(Retention {
                deployments: 1,
                detailed: 1
            })
            .await
            .unwrap()
            .dropped,
        13
    );
}

#[tokio::test]
async fn another_journal_on_the_same_file_appends_to_the_compacted_file() {
    let dir = tempfile::tempdir().unwrap();
    let compacting = FileJournal::open_with(dir.path(), &app(), manual(1)).unwrap();
    let other = FileJournal::open_with(dir.path(), &app(), manual(1)).unwrap();
    history(&compacting).await;
    // `other` has read the file before: its descriptor is on the file compaction replaces.
    assert_eq!(seqs(&other.tail(1).await.unwrap()), [17]);
    compacting
        .compact(Retention {
            deployments: 1,
            detailed: 0,
        })
        .await
        .unwrap();
    assert_eq!(seqs(&other.tail(5).await.unwrap()), [2, 17]);

    other.append(&entry_of(18, "d6", Phase::Completed)).await.unwrap();
    assert_eq!(seqs(&read_all(compacting.path())), [2, 17, 18]);
    assert_eq!(seqs(&compacting.tail(1).await.unwrap()), [18]);
    compacting.append(&entry_of(19, "d6", Phase::Completed)).await.unwrap();
    assert_eq!(seqs(&other.tail(5).await.unwrap()), [2, 17, 18, 19]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn appends_racing_compactions_are_never_lost() {
    let dir = tempfile::tempdir().unwrap();
    let compacting = Arc::new(FileJournal::open_with(dir.path(), &app(), manual(1000)).unwrap());
    let appending = Arc::new(FileJournal::open_with(dir.path(), &app(), manual(1000)).unwrap());
    let writer = {
        let appending = Arc::clone(&appending);
        tokio::spawn(async move {
            for seq in 1..=60 {
                let e = entry_of(seq, &format!("d{seq}"), Phase::Completed);
                appending.append(&e).await.unwrap();
            }
        })
    };
    let keep = Retention {
        deployments: 2,
        detailed: 0,
    };
    let mut compactions = 0;
    while !writer.is_finished() {
        compactions += usize::from(compacting.compact(keep).await.unwrap().dropped > 0);
    }
    writer.await.unwrap();
    compacting.compact(keep).await.unwrap();

    let mut all = seqs(&read_all(compacting.path()));
    assert_eq!(all, [59, 60]);
    for n in 1..=1000 {
        let rotated = compacting.rotated_path(n);
        if rotated.exists() {
            all.extend(seqs(&read_all(&rotated)));
        }
    }
    all.sort_unstable();
    assert_eq!(all, (1..=60).collect::<Vec<_>>(), "after {compactions} compactions");
    assert_eq!(seqs(&appending.tail(1).await.unwrap()), [60]);
}

#[tokio::test]
async fn append_compacts_once_the_file_is_larger_than_max_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let one = serde_json::to_vec(&entry_of(1, "d1", Phase::Completed)).unwrap().len() as u64 + 1;
    let options = JournalOptions {
        max_bytes: Some(10 * one),
        keep: Retention {
            deployments: 3,
            detailed: 1,
        },
        rotated_files: 2,
    };
    let journal = FileJournal::open_with(dir.path(), &app(), options).unwrap();
    for seq in 1..=100 {
        journal
            .append(&entry_of(seq, &format!("d{seq}"), Phase::Completed))
            .await
            .unwrap();
        let len = std::fs::metadata(journal.path()).unwrap().len();
        assert!(len <= 11 * one, "seq {seq}: {len} bytes");
    }
    let kept = seqs(&read_all(journal.path()));
    assert!(kept.len() < 12 && kept.ends_with(&[98, 99, 100]), "{kept:?}");
    assert!(journal.rotated_path(1).exists() && journal.rotated_path(2).exists());
    assert!(!journal.rotated_path(3).exists());
    // The two rotated files hold what the last two compactions dropped: with the journal, an
    // unbroken run of entries up to the last.
    let mut recent = seqs(&read_all(&journal.rotated_path(2)));
    recent.extend(seqs(&read_all(&journal.rotated_path(1))));
    recent.extend(&kept);
    let first = recent[0];
    assert_eq!(recent, (first..=100).collect::<Vec<_>>());
}
