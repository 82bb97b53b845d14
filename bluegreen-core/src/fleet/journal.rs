//! The fleet journal: one JSON line per fleet step, fsync'd, appended like a deployment journal.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::plan::FleetPlan;
use crate::error::{Error, Result};
use crate::model::{Release, Timestamp};

/// What a fleet journal entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FleetRecord {
    /// A fleet deployment started: the release, the hosts in their order, the plan.
    Started {
        /// What goes out.
        release: Release,
        /// The hosts, in the fleet's order.
        hosts: Vec<String>,
        /// Canary and batch size.
        plan: FleetPlan,
    },
    /// One host reached a step.
    Host {
        /// The host.
        host: String,
        /// The step.
        step: HostStep,
    },
    /// A host failed: from here on the fleet goes back to the previous release on every host.
    RollingBack {
        /// Which host failed, and why.
        reason: String,
    },
    /// The fleet deployment ended.
    Finished {
        /// How.
        outcome: FleetOutcome,
    },
    /// Something worth the audit log that is not a step (a resume).
    Note {
        /// The note.
        text: String,
    },
}

/// A step of one host of a fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HostStep {
    /// The release runs in the host's idle slot, healthy, waiting at its gate for its batch.
    Provisioned {
        /// The host's deployment.
        deployment: String,
    },
    /// Traffic is on the release; the old slot is still warm.
    Switched,
    /// The old slot is retired: the host is done.
    Completed,
    /// The release failed on the host (the host's own deployment rolled it back).
    Failed {
        /// Why.
        reason: String,
    },
    /// The host went back to the previous release because the fleet rolls back.
    RolledBack,
}

/// How a fleet deployment ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FleetOutcome {
    /// Every host serves the release.
    Completed,
    /// A host failed; every host serves the previous release.
    RolledBack {
        /// Which host failed, and why.
        reason: String,
    },
}

/// One line of the fleet journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FleetEntry {
    /// Position in the journal, from 1.
    pub seq: u64,
    /// When it was written.
    pub at: Timestamp,
    /// The fleet deployment it belongs to.
    pub fleet: String,
    /// What happened.
    pub record: FleetRecord,
}

/// Where a fleet's entries are kept: a file (durable: each entry written and fsync'd before
/// [`append`](Self::append) returns, a torn last line cut off before the next, as the
/// [`FileJournal`](crate::journal::FileJournal) does) or memory (tests).
///
/// One writer at a time: the [`Fleet`](super::Fleet) holds the fleet lock while it writes.
#[derive(Debug, Clone)]
pub struct FleetJournal {
    inner: Arc<Mutex<Store>>,
}

#[derive(Debug)]
enum Store {
    Memory(Vec<FleetEntry>),
    File { path: PathBuf, file: Arc<File>, seq: u64 },
}

impl FleetJournal {
    /// A journal in memory (not durable).
    pub fn in_memory() -> Self {
        FleetJournal {
            inner: Arc::new(Mutex::new(Store::Memory(Vec::new()))),
        }
    }

    /// Opens (or creates) the journal file at `path`.
    ///
    /// Blocking: call it at a program's start, or from `spawn_blocking`.
    ///
    /// # Errors
    /// [`Error::Journal`] when the file cannot be opened or read.
    #[allow(clippy::disallowed_methods, reason = "blocking by contract, documented")]
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::journal(path.display().to_string(), "cannot open", e))?;
        let seq = read_file(&file, &path)?.last().map_or(0, |e| e.seq);
        Ok(FleetJournal {
            inner: Arc::new(Mutex::new(Store::File {
                path,
                file: Arc::new(file),
                seq,
            })),
        })
    }

    /// Where it lives, for messages.
    pub fn location(&self) -> String {
        match &*self.inner.lock().unwrap_or_else(PoisonError::into_inner) {
            Store::Memory(_) => "memory".to_string(),
            Store::File { path, .. } => path.display().to_string(),
        }
    }

    /// Appends `record` of fleet deployment `fleet`, durably.
    ///
    /// # Errors
    /// [`Error::Journal`] when it cannot be written (the file is cut back to where it was).
    pub async fn append(&self, fleet: &str, record: FleetRecord) -> Result<FleetEntry> {
        let (file, path, entry) = {
            let mut store = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut *store {
                Store::Memory(entries) => {
                    let entry = FleetEntry {
                        seq: entries.len() as u64 + 1,
                        at: Timestamp::now(),
                        fleet: fleet.to_string(),
                        record,
                    };
                    entries.push(entry.clone());
                    return Ok(entry);
                }
                Store::File { path, file, seq } => {
                    *seq += 1;
                    let entry = FleetEntry {
                        seq: *seq,
                        at: Timestamp::now(),
                        fleet: fleet.to_string(),
                        record,
                    };
                    (Arc::clone(file), path.clone(), entry)
                }
            }
        };
        let mut line = serde_json::to_vec(&entry)
            .map_err(|e| Error::journal(path.display().to_string(), "cannot serialize an entry", e))?;
        line.push(b'\n');
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || crate::journal::append_line(&file, &line))
            .await
            .map_err(|e| Error::journal(shown.clone(), "append task failed", e))?
            .map_err(|(what, e)| Error::journal(shown, format!("cannot {what}"), e))?;
        Ok(entry)
    }

    /// Every entry, oldest first (a torn or foreign line is skipped).
    ///
    /// # Errors
    /// [`Error::Journal`] when the file cannot be read.
    pub async fn entries(&self) -> Result<Vec<FleetEntry>> {
        let (file, path) = {
            let store = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            match &*store {
                Store::Memory(entries) => return Ok(entries.clone()),
                Store::File { path, file, .. } => (Arc::clone(file), path.clone()),
            }
        };
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || read_file(&file, &path))
            .await
            .map_err(|e| Error::journal(shown, "read task failed", e))?
    }

    /// The entries of the latest fleet deployment, oldest first (empty when there is none).
    ///
    /// # Errors
    /// As [`entries`](Self::entries).
    pub async fn latest(&self) -> Result<Vec<FleetEntry>> {
        let entries = self.entries().await?;
        let Some(start) = entries
            .iter()
            .rposition(|e| matches!(e.record, FleetRecord::Started { .. }))
        else {
            return Ok(Vec::new());
        };
        let id = entries[start].fleet.clone();
        Ok(entries.into_iter().skip(start).filter(|e| e.fleet == id).collect())
    }
}

/// Reads every entry of the file; skips lines that are not entries (a torn last line).
#[allow(clippy::disallowed_methods, reason = "runs on the blocking pool or at open")]
fn read_file(file: &File, path: &Path) -> Result<Vec<FleetEntry>> {
    let mut reader = BufReader::new(
        file.try_clone()
            .map_err(|e| Error::journal(path.display().to_string(), "cannot read", e))?,
    );
    use std::io::Seek;
    reader
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| Error::journal(path.display().to_string(), "cannot read", e))?;
    let mut entries = Vec::new();
    for line in reader.lines() {
        let line = line.map_err(|e| Error::journal(path.display().to_string(), "cannot read", e))?;
        match serde_json::from_str::<FleetEntry>(&line) {
            Ok(entry) => entries.push(entry),
            Err(e) => {
                tracing::warn!(journal = %path.display(), "fleet journal: skipped a line that is not an entry: {e}")
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> FleetRecord {
        FleetRecord::Started {
            release: Release::new("v2").unwrap(),
            hosts: vec!["a".into(), "b".into()],
            plan: FleetPlan::new(1).unwrap(),
        }
    }

    #[tokio::test]
    async fn a_file_journal_survives_reopening_and_a_torn_last_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shop.fleet.jsonl");
        let journal = FleetJournal::open(&path).unwrap();
        journal.append("f1", started()).await.unwrap();
        journal
            .append(
                "f1",
                FleetRecord::Host {
                    host: "a".into(),
                    step: HostStep::Switched,
                },
            )
            .await
            .unwrap();
        // A crash mid-write leaves a torn line: skipped on reading, cut off before the next append.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"seq\":3,\"at\""))
            .unwrap();
        let reopened = FleetJournal::open(&path).unwrap();
        assert_eq!(reopened.entries().await.unwrap().len(), 2);
        let entry = reopened
            .append(
                "f1",
                FleetRecord::Finished {
                    outcome: FleetOutcome::Completed,
                },
            )
            .await
            .unwrap();
        assert_eq!(entry.seq, 3);
        let latest = FleetJournal::open(&path).unwrap().latest().await.unwrap();
        assert_eq!(latest.len(), 3);
        assert_eq!(latest[0].record, started());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .all(|l| l.ends_with('}')));
    }

    #[tokio::test]
    async fn latest_is_the_last_started_fleet_deployment() {
        let journal = FleetJournal::in_memory();
        journal.append("f1", started()).await.unwrap();
        journal.append("f2", started()).await.unwrap();
        journal
            .append("f2", FleetRecord::Note { text: "x".into() })
            .await
            .unwrap();
        let latest = journal.latest().await.unwrap();
        assert_eq!(latest.len(), 2);
        assert!(latest.iter().all(|e| e.fleet == "f2"));
    }
}
