use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::journal::test_support::{app, append_raw, entry, entry_with_note, read_all, seqs};
use crate::journal::SkipReason;

#[tokio::test]
async fn appends_and_tails_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b");
    let journal = FileJournal::open(&nested, &app()).unwrap();
    assert_eq!(journal.path(), nested.join("shop.journal.jsonl"));
    assert_eq!(journal.location(), journal.path().display().to_string());
    assert_eq!(journal.torn_tail(), None);
    assert!(journal.tail(3).await.unwrap().is_empty());

    let written: Vec<Entry> = (1..=5).map(entry).collect();
    for e in &written {
        journal.append(e).await.unwrap();
    }
    assert_eq!(journal.tail(2).await.unwrap(), written[3..]);
    assert_eq!(journal.tail(5).await.unwrap(), written);
    assert_eq!(journal.tail(50).await.unwrap(), written);
    assert!(journal.tail(0).await.unwrap().is_empty());
    assert_eq!(read_all(journal.path()), written);
}

#[tokio::test]
async fn tails_across_chunk_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    // Entries smaller and larger than a chunk (64 KiB), including two larger than two chunks.
    let sizes = [0, 100, 70_000, 10, 200_000, 5, 140_000, 1];
    let written: Vec<Entry> = sizes
        .iter()
        .zip(1..)
        .map(|(&len, seq)| entry_with_note(seq, len))
        .collect();
    for e in &written {
        journal.append(e).await.unwrap();
    }
    for n in 0..=written.len() + 2 {
        let want = &written[written.len().saturating_sub(n)..];
        assert_eq!(journal.tail(n).await.unwrap(), want, "n={n}");
        for chunk in [1, 7, 1000, 65_536] {
            let (got, _) = journal.tail_with(n, chunk).await.unwrap();
            assert_eq!(seqs(&got), seqs(want), "n={n} chunk={chunk}");
        }
    }
}

#[tokio::test]
async fn reopening_keeps_entries() {
    let dir = tempfile::tempdir().unwrap();
    let written: Vec<Entry> = (1..=3).map(entry).collect();
    {
        let journal = FileJournal::open(dir.path(), &app()).unwrap();
        for e in &written {
            journal.append(e).await.unwrap();
        }
    }
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(journal.torn_tail(), None);
    assert_eq!(journal.tail(10).await.unwrap(), written);
    journal.append(&entry(4)).await.unwrap();
    assert_eq!(seqs(&read_all(journal.path())), [1, 2, 3, 4]);
}

#[tokio::test]
async fn torn_tail_is_cut_off_reported_and_appending_afterwards_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let journal = FileJournal::open(dir.path(), &app()).unwrap();
        for seq in 1..=3 {
            journal.append(&entry(seq)).await.unwrap();
        }
        journal.path().to_owned()
    };
    let good_len = std::fs::metadata(&path).unwrap().len();
    let torn = br#"{"seq":4,"at":"2026-01-01T00:00:00.000Z","record":{"kind":"sta"#;
    append_raw(&path, torn);

    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    let report = journal.torn_tail().expect("a torn tail is reported");
    assert!(
        report.starts_with(&format!(
            "discarded {} torn bytes at offset {good_len}: {{\"seq\":4,",
            torn.len()
        )),
        "{report}"
    );
    assert!(report.ends_with("..."), "{report}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(seqs(&journal.tail(10).await.unwrap()), [1, 2, 3]);

    journal.append(&entry(4)).await.unwrap();
    assert_eq!(seqs(&read_all(&path)), [1, 2, 3, 4]);
    // Repaired for good: the next open finds nothing to report.
    let again = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(again.torn_tail(), None);
}

#[tokio::test]
async fn a_terminated_line_that_is_not_json_is_torn_too() {
    // What a crash can leave on file systems that extend the file before writing its data.
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let journal = FileJournal::open(dir.path(), &app()).unwrap();
        journal.append(&entry(1)).await.unwrap();
        journal.path().to_owned()
    };
    let good_len = std::fs::metadata(&path).unwrap().len();
    append_raw(&path, b"\0\0\0\0\n");

    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(
        journal.torn_tail().as_deref(),
        Some(format!("discarded 5 torn bytes at offset {good_len}: \\u{{0}}\\u{{0}}\\u{{0}}\\u{{0}}").as_str())
    );
    assert_eq!(seqs(&read_all(&path)), [1]);
}

#[tokio::test]
async fn an_entry_this_version_cannot_read_is_kept_and_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let journal = FileJournal::open(dir.path(), &app()).unwrap();
        journal.append(&entry(1)).await.unwrap();
        journal.path().to_owned()
    };
    // One field of ours is enough to count as an entry: `deployment` missing here.
    let offset = std::fs::metadata(&path).unwrap().len();
    append_raw(&path, b"{\"seq\":2,\"from_the_future\":true}\n");
    let len = std::fs::metadata(&path).unwrap().len();

    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(journal.torn_tail(), None);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    match journal.tail(1).await {
        Err(Error::Journal { reason, .. }) => {
            assert!(
                reason.starts_with(&format!("unreadable entry at offset {offset} ")),
                "{reason}"
            );
            let cause = source_text(&journal.tail(1).await.unwrap_err());
            assert!(cause.contains("missing field"), "{cause}");
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
    assert!(journal.skipped().is_empty());
}

#[tokio::test]
async fn an_entry_with_seq_and_deployment_that_does_not_parse_is_an_error_naming_offset_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    let offset = std::fs::metadata(journal.path()).unwrap().len();
    append_raw(
        journal.path(),
        b"{\"seq\":2,\"deployment\":{\"id\":\"x\",\"phase\":\"teleporting\"}}\n",
    );
    journal.append(&entry(3)).await.unwrap();

    // Entries after it are readable; reaching it is an error.
    assert_eq!(seqs(&journal.tail(1).await.unwrap()), [3]);
    match journal.tail(2).await {
        Err(Error::Journal { reason, .. }) => {
            assert!(
                reason.starts_with(&format!("unreadable entry at offset {offset} ")),
                "{reason}"
            );
            let cause = source_text(&journal.tail(2).await.unwrap_err());
            assert!(cause.contains("at line 1 column"), "the serde error: {cause}");
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_foreign_line_in_the_middle_is_skipped_and_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    let foreign_at = std::fs::metadata(journal.path()).unwrap().len();
    append_raw(journal.path(), b"{\"hello\":\"world\"}\n");
    journal.append(&entry(2)).await.unwrap();
    let number_at = std::fs::metadata(journal.path()).unwrap().len();
    append_raw(journal.path(), b"42\n");
    journal.append(&entry(3)).await.unwrap();

    assert_eq!(seqs(&journal.tail(5).await.unwrap()), [1, 2, 3]);
    assert_eq!(seqs(&journal.tail(2).await.unwrap()), [2, 3]);
    let want = vec![
        SkippedLine {
            offset: number_at,
            reason: SkipReason::Foreign,
            preview: "42".into(),
        },
        SkippedLine {
            offset: foreign_at,
            reason: SkipReason::Foreign,
            preview: "{\"hello\":\"world\"}".into(),
        },
    ];
    assert_eq!(journal.skipped(), want);
    // Reading again does not report them again.
    journal.tail(5).await.unwrap();
    assert_eq!(journal.skipped(), want);
    // Another instance has read nothing yet.
    let other = FileJournal::open(dir.path(), &app()).unwrap();
    assert!(other.skipped().is_empty());
}

#[tokio::test]
async fn a_foreign_last_line_is_not_cut_off_and_tail_reads_past_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = {
        let journal = FileJournal::open(dir.path(), &app()).unwrap();
        journal.append(&entry(1)).await.unwrap();
        journal.path().to_owned()
    };
    append_raw(&path, b"{\"hello\":\"world\"}\n");
    let len = std::fs::metadata(&path).unwrap().len();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(journal.torn_tail(), None);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    assert_eq!(seqs(&journal.tail(1).await.unwrap()), [1]);
    assert_eq!(journal.skipped().len(), 1);
}

#[tokio::test]
async fn torn_lines_in_the_middle_and_an_unterminated_last_line_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    append_raw(journal.path(), b"{\"seq\":2,\"at\n");
    journal.append(&entry(2)).await.unwrap();
    // Another process's append in progress, as a reader may see it.
    append_raw(journal.path(), b"{\"seq\":3,");
    assert_eq!(seqs(&journal.tail(5).await.unwrap()), [1, 2]);
    assert_eq!(seqs(&journal.tail(1).await.unwrap()), [2]);
    // The torn line in the middle is reported; the line being written is not.
    let skipped = journal.skipped();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].reason, SkipReason::Torn);
    assert_eq!(skipped[0].preview, "{\"seq\":2,\"at");
}

#[tokio::test]
async fn ten_thousand_entries_tail_reads_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shop.journal.jsonl");
    // Written directly: 10,000 fsync'd appends would take minutes on a slow disk.
    let mut text = Vec::new();
    let mut last = None;
    for seq in 1..=10_000 {
        let e = entry(seq);
        serde_json::to_writer(&mut text, &e).unwrap();
        text.push(b'\n');
        last = Some(e);
    }
    std::fs::write(&path, &text).unwrap();

    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(journal.torn_tail(), None);
    let started = Instant::now();
    let (tail, bytes_read) = journal.tail_with(1, CHUNK).await.unwrap();
    let took = started.elapsed();
    assert_eq!(tail, [last.unwrap()]);
    assert!(
        bytes_read <= CHUNK as u64,
        "tail(1) read {bytes_read} of {} bytes",
        text.len()
    );
    eprintln!(
        "tail(1) of a {}-byte, 10,000-entry journal: {took:?}, {bytes_read} bytes read",
        text.len()
    );

    journal.append(&entry(10_001)).await.unwrap();
    assert_eq!(seqs(&journal.tail(2).await.unwrap()), [10_000, 10_001]);
    assert_eq!(journal.tail(20_000).await.unwrap().len(), 10_001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_do_not_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Arc::new(FileJournal::open(dir.path(), &app()).unwrap());
    // A second handle on the same file, as another process would have.
    let other = Arc::new(FileJournal::open(dir.path(), &app()).unwrap());
    let mut tasks = Vec::new();
    for seq in 1..=24 {
        let j = Arc::clone(if seq % 3 == 0 { &other } else { &journal });
        // 100 KiB lines: many pages, so an unserialised write could interleave.
        tasks.push(tokio::spawn(
            async move { j.append(&entry_with_note(seq, 100_000)).await },
        ));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut got = seqs(&read_all(journal.path()));
    got.sort_unstable();
    assert_eq!(got, (1..=24).collect::<Vec<_>>());
}

#[test]
fn open_reports_the_os_error() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    match FileJournal::open(&not_a_dir, &app()) {
        Err(err @ Error::Journal { .. }) => {
            let Error::Journal { path, reason, .. } = &err else {
                unreachable!()
            };
            assert!(path.ends_with("shop.journal.jsonl"), "{path}");
            assert_eq!(reason, "cannot create directory");
            let os = std::error::Error::source(&err)
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .expect("the OS error is the source");
            assert!(os.raw_os_error().is_some(), "{os:?}");
            assert!(!err.to_string().contains(&os.to_string()), "repeated: {err}");
            assert!(err.chain().to_string().ends_with(&format!(": {os}")), "{}", err.chain());
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
}

/// Another process that dies mid-write while this journal is open leaves a torn line that the
/// next append must cut off, not glue its entry to.
#[tokio::test]
async fn a_torn_line_written_while_open_is_cut_off_before_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    journal.append(&entry(1)).await.unwrap();
    append_raw(journal.path(), br#"{"seq":2,"at":"2026-01-01T00:"#);
    journal.append(&entry(2)).await.unwrap();
    assert_eq!(seqs(&read_all(journal.path())), [1, 2]);
    assert_eq!(seqs(&journal.tail(5).await.unwrap()), [1, 2]);
}

/// The text of an error's source (its cause), which its own message leaves out.
fn source_text(err: &Error) -> String {
    let source = std::error::Error::source(err).unwrap_or_else(|| panic!("no source: {err:?}"));
    assert!(
        !err.to_string().contains(&source.to_string()),
        "message repeats its source: {err}"
    );
    source.to_string()
}

/// An append that cannot be written (the journal's file replaced by a read-only one under it is
/// not portable; a full device is): its error says what failed and keeps the OS error as its
/// source, without repeating it.
#[tokio::test]
async fn a_failed_append_keeps_the_os_error_as_its_source() {
    let full = std::path::Path::new("/dev/full");
    if !full.exists() {
        panic!("/dev/full is needed for this test");
    }
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    let path = journal.path().to_owned();
    drop(journal);
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(full, &path).unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    let err = journal.append(&entry(1)).await.unwrap_err();
    let Error::Journal { reason, .. } = &err else {
        panic!("expected a journal error, got {err:?}")
    };
    assert!(reason.starts_with("cannot "), "{reason}");
    let os = std::error::Error::source(&err)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .unwrap_or_else(|| panic!("no OS error as source: {err:?}"));
    assert_eq!(os.raw_os_error(), Some(28), "ENOSPC: {os}");
    assert!(!err.to_string().contains(&os.to_string()), "repeated: {err}");
    assert_eq!(err.chain().to_string(), format!("{err}: {os}"));
}

/// A journal written before durations became text (`"rollback_window_ms": 30000`) is refused
/// with an error naming the old key, not read with a default in its place.
#[tokio::test]
async fn an_entry_in_the_format_before_0_1_is_refused_naming_the_old_key() {
    let dir = tempfile::tempdir().unwrap();
    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    let mut old = serde_json::to_value(entry(1)).unwrap();
    old["deployment"]["retirement"] =
        serde_json::json!({"rollback_window_ms": 30000, "drain_ms": 5000, "stop_grace_ms": 10000});
    let mut line = serde_json::to_vec(&old).unwrap();
    line.push(b'\n');
    append_raw(journal.path(), &line);
    let err = journal.tail(1).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("unreadable entry at offset 0 (written by another version"),
        "{err}"
    );
    let cause = source_text(&err);
    assert!(
        ["rollback_window_ms", "drain_ms", "stop_grace_ms"]
            .iter()
            .any(|old| cause.contains(&format!("unknown field `{old}`, expected one of `rollback_window`"))),
        "{cause}"
    );
}
