//! A journal in memory, for tests and for programs that need no history.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{Entry, Journal};
use crate::error::Result;
use crate::machine::{step, Signal};

/// A journal kept in memory: nothing survives the process.
///
/// Clones share the same entries, so a test can keep one clone to inspect what a deployer wrote
/// through another. [`append`](Journal::append) and [`tail`](Journal::tail) never fail and are
/// not cancelled half-way (they do not await).
///
/// # Capacity
/// It keeps the newest [`capacity`](InMemoryJournal::capacity) entries (10,000 by default) and
/// drops older ones as new ones come. Every entry carries a full snapshot of its deployment, so
/// the newest entries always hold the latest state. One exception keeps what
/// [`resume`](crate::Deployer::resume) could need: an entry about to be dropped that is the latest
/// of an unfinished deployment (one that [`Signal::Resumed`] applies to) is kept — beyond the
/// capacity, before the others, in order — until an entry of the same deployment supersedes it.
/// So [`entries`](InMemoryJournal::entries) holds at most `capacity` entries plus one per such
/// deployment (in practice none: the engine finishes or resumes one deployment before the next).
#[derive(Debug, Clone)]
pub struct InMemoryJournal {
    inner: Arc<Mutex<Retained>>,
}

/// What the journal holds: the kept-back entries, then the newest ones.
#[derive(Debug)]
struct Retained {
    capacity: usize,
    /// Latest entries of unfinished deployments that fell out of `recent`, oldest first; all
    /// older than anything in `recent`.
    kept_back: Vec<Entry>,
    /// The newest entries, oldest first, at most `capacity`.
    recent: VecDeque<Entry>,
    /// How many entries of each deployment `recent` holds.
    counts: HashMap<String, usize>,
}

impl InMemoryJournal {
    /// How many entries [`new`](InMemoryJournal::new) keeps.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// An empty journal that keeps the newest [`DEFAULT_CAPACITY`](Self::DEFAULT_CAPACITY)
    /// entries.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }

    /// An empty journal that keeps the newest `capacity` entries (at least 1; see
    /// [Capacity](InMemoryJournal#capacity)).
    pub fn with_capacity(capacity: usize) -> Self {
        InMemoryJournal {
            inner: Arc::new(Mutex::new(Retained {
                capacity: capacity.max(1),
                kept_back: Vec::new(),
                recent: VecDeque::new(),
                counts: HashMap::new(),
            })),
        }
    }

    /// How many of the newest entries it keeps.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Every entry it holds, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        let retained = self.lock();
        retained.kept_back.iter().chain(&retained.recent).cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Retained> {
        // A panic while holding the lock cannot leave it inconsistent: nothing in `push` panics
        // between its updates (no indexing, no user code).
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for InMemoryJournal {
    fn default() -> Self {
        Self::new()
    }
}

impl Retained {
    fn push(&mut self, entry: Entry) {
        let id = entry.deployment.id();
        self.kept_back.retain(|e| e.deployment.id() != id);
        *self.counts.entry(id.to_string()).or_insert(0) += 1;
        self.recent.push_back(entry);
        while self.recent.len() > self.capacity {
            let Some(oldest) = self.recent.pop_front() else {
                break;
            };
            let id = oldest.deployment.id();
            let left = self.counts.get(id).map_or(0, |n| n.saturating_sub(1));
            if left > 0 {
                self.counts.insert(id.to_string(), left);
            } else {
                self.counts.remove(id);
                if step(oldest.deployment.clone(), Signal::Resumed).is_ok() {
                    self.kept_back.push(oldest);
                }
            }
        }
    }

    /// The last `n` entries, oldest first, copying only those.
    fn tail(&self, n: usize) -> Vec<Entry> {
        let from_recent = n.min(self.recent.len());
        let from_kept = (n - from_recent).min(self.kept_back.len());
        let kept = &self.kept_back[self.kept_back.len() - from_kept..];
        let recent = self.recent.iter().skip(self.recent.len() - from_recent);
        kept.iter().chain(recent).cloned().collect()
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn append(&self, entry: &Entry) -> Result<()> {
        self.lock().push(entry.clone());
        Ok(())
    }

    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        Ok(self.lock().tail(n))
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::test_support::{entry, entry_of};
    use crate::machine::Phase;

    fn seqs(es: &[Entry]) -> Vec<u64> {
        es.iter().map(|e| e.seq).collect()
    }

    #[tokio::test]
    async fn clones_share_entries_and_tail_is_oldest_first() {
        let journal = InMemoryJournal::new();
        assert_eq!(journal.capacity(), InMemoryJournal::DEFAULT_CAPACITY);
        let other = journal.clone();
        for seq in 1..=5 {
            journal.append(&entry(seq)).await.unwrap();
        }
        assert_eq!(other.entries().len(), 5);
        assert_eq!(seqs(&other.tail(2).await.unwrap()), [4, 5]);
        assert_eq!(seqs(&other.tail(0).await.unwrap()), Vec::<u64>::new());
        assert_eq!(seqs(&other.tail(99).await.unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(other.location(), "memory");
        assert_eq!(other.torn_tail(), None);
        assert!(other.skipped().is_empty());
    }

    #[tokio::test]
    async fn keeps_the_newest_entries_up_to_its_capacity() {
        let journal = InMemoryJournal::with_capacity(3);
        for seq in 1..=10 {
            // Finished deployments, one entry each: nothing is kept back.
            journal
                .append(&entry_of(seq, &format!("d{seq}"), Phase::Completed))
                .await
                .unwrap();
        }
        assert_eq!(seqs(&journal.entries()), [8, 9, 10]);
        assert_eq!(seqs(&journal.tail(2).await.unwrap()), [9, 10]);
        assert_eq!(seqs(&journal.tail(99).await.unwrap()), [8, 9, 10]);
        assert_eq!(InMemoryJournal::with_capacity(0).capacity(), 1);
    }

    #[tokio::test]
    async fn keeps_back_the_latest_entry_of_an_unfinished_deployment_until_superseded() {
        let journal = InMemoryJournal::with_capacity(2);
        let append = |seq, id: &str, phase| {
            let journal = journal.clone();
            let e = entry_of(seq, id, phase);
            async move { journal.append(&e).await.unwrap() }
        };
        append(1, "a", Phase::Provisioning).await;
        append(2, "a", Phase::Verifying).await; // a's latest: unfinished
        append(3, "b", Phase::Provisioning).await;
        append(4, "b", Phase::Completed).await;
        append(5, "c", Phase::Completed).await;
        // 1 was superseded by 2; 2 fell out of the window but is a's latest and unfinished; 3
        // was superseded by 4.
        assert_eq!(seqs(&journal.entries()), [2, 4, 5]);
        assert_eq!(seqs(&journal.tail(3).await.unwrap()), [2, 4, 5]);
        assert_eq!(seqs(&journal.tail(2).await.unwrap()), [4, 5]);
        // A later entry of `a` supersedes the kept-back one.
        append(6, "a", Phase::RolledBack).await;
        assert_eq!(seqs(&journal.entries()), [5, 6]);
        for seq in 7..=9 {
            append(seq, "d", Phase::Completed).await;
        }
        assert_eq!(seqs(&journal.entries()), [8, 9]);
    }
}
