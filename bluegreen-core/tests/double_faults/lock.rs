//! A lock taken over from a holder that died is noted once in the journal, and the journal
//! records a deployment's start before anyone is told of it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bluegreen_core::journal::{Entry, InMemoryJournal, Journal, Record};
use bluegreen_core::lock::{FileLock, LockHolder};
use bluegreen_core::{Event, EventKind, Result, Timestamp};
use tokio::sync::broadcast;

use crate::world::*;

/// A pid above Linux's largest `pid_max` (2^22): no process has it.
const DEAD_PID: u32 = (1 << 22) + 1;

/// A journal that remembers, for each entry, how many events had been sent when it was appended.
#[derive(Debug)]
struct Witness {
    inner: InMemoryJournal,
    events: Mutex<Option<broadcast::Receiver<Event>>>,
    /// Each append: its record, and the events sent (and not yet read) at that moment.
    appended: Mutex<Vec<(Record, usize)>>,
}

#[async_trait]
impl Journal for Witness {
    async fn append(&self, entry: &Entry) -> Result<()> {
        let sent = self.events.lock().unwrap().as_ref().map_or(0, |rx| rx.len());
        self.appended.lock().unwrap().push((entry.record.clone(), sent));
        self.inner.append(entry).await
    }
    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        self.inner.tail(n).await
    }
    fn location(&self) -> String {
        "witness".into()
    }
}

#[tokio::test]
async fn a_dead_holders_lock_is_noted_once_on_a_first_deploy_after_the_started_entry() {
    let dir = tempfile::tempdir().unwrap();
    let lock = FileLock::new(dir.path()).unwrap();
    let dead = LockHolder::new(
        DEAD_PID,
        "old-host",
        Timestamp::now(),
        Some("a deployer that was killed".into()),
    );
    let mut record = serde_json::to_vec(&dead).unwrap();
    record.push(b'\n');
    std::fs::write(lock.path(&app()), record).unwrap();

    let w = World::new();
    let journal = Arc::new(Witness {
        inner: InMemoryJournal::new(),
        events: Mutex::new(None),
        appended: Mutex::new(Vec::new()),
    });
    let d = w
        .builder()
        .journal(journal.clone())
        .lock(Arc::new(lock))
        .build()
        .unwrap();
    *journal.events.lock().unwrap() = Some(d.subscribe());
    let report = d.deploy(release("v1")).await.unwrap();
    assert!(report.deployment.previous().is_none(), "a first deploy");

    let appended = journal.appended.lock().unwrap().clone();
    let mut rx = journal.events.lock().unwrap().take().unwrap();
    let kinds = drain_events(&mut rx);
    let started_event = kinds
        .iter()
        .position(|k| matches!(k, EventKind::Started { resumed: false, .. }))
        .expect("a started event");
    let (started_entry, sent) = appended
        .iter()
        .find(|(record, _)| matches!(record, Record::Started))
        .expect("a started entry");
    assert!(matches!(started_entry, Record::Started));
    assert!(
        *sent <= started_event,
        "the started event was sent before its journal entry"
    );

    let entries = journal.inner.entries();
    let takeovers: Vec<&String> = entries
        .iter()
        .filter_map(|e| match &e.record {
            Record::Note { text } if text.contains(&format!("pid {DEAD_PID}")) => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(takeovers.len(), 1, "noted once: {takeovers:?}");
    let first = &entries[0];
    assert!(matches!(first.record, Record::Started), "{first:?}");
}
