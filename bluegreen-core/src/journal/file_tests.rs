use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use super::*;
use crate::journal::test_support::{app, entry, entry_with_note};

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

fn append_raw(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(bytes).unwrap();
}

/// Every line of the file, parsed; panics on a torn or unterminated line.
fn read_all(path: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'), "unterminated file");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:.80}")))
        .collect()
}

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
    append_raw(&path, b"{\"seq\":2,\"from_the_future\":true}\n");
    let len = std::fs::metadata(&path).unwrap().len();

    let journal = FileJournal::open(dir.path(), &app()).unwrap();
    assert_eq!(journal.torn_tail(), None);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    match journal.tail(1).await {
        Err(Error::Journal { reason, .. }) => {
            assert!(reason.contains("unreadable entry"), "{reason}")
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
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
        Err(Error::Journal { path, reason }) => {
            assert!(path.ends_with("shop.journal.jsonl"), "{path}");
            assert!(reason.starts_with("create directory: "), "{reason}");
            assert!(reason.contains("os error"), "{reason}");
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
}

#[test]
fn preview_escapes_control_characters_and_is_short() {
    assert_eq!(preview(b"ab\tc"), "ab\\tc");
    assert_eq!(preview(&[b'x'; 40]), "x".repeat(40));
    assert_eq!(preview(&[b'x'; 41]), format!("{}...", "x".repeat(40)));
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
