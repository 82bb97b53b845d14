//! A journal in memory, for tests and for programs that need no history.

use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use super::{Entry, Journal};
use crate::error::Result;

/// A journal kept in memory: nothing survives the process.
///
/// Clones share the same entries, so a test can keep one clone to inspect what a deployer wrote
/// through another. [`append`](Journal::append) and [`tail`](Journal::tail) never fail and are
/// not cancelled half-way (they do not await).
#[derive(Debug, Clone, Default)]
pub struct InMemoryJournal {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl InMemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry so far, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock cannot leave the Vec half-updated (push and clone only).
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Journal for InMemoryJournal {
    async fn append(&self, entry: &Entry) -> Result<()> {
        self.lock().push(entry.clone());
        Ok(())
    }

    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        let entries = self.lock();
        Ok(entries[entries.len().saturating_sub(n)..].to_vec())
    }

    fn location(&self) -> String {
        "memory".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::test_support::entry;

    #[tokio::test]
    async fn clones_share_entries_and_tail_is_oldest_first() {
        let journal = InMemoryJournal::new();
        let other = journal.clone();
        for seq in 1..=5 {
            journal.append(&entry(seq)).await.unwrap();
        }
        assert_eq!(other.entries().len(), 5);
        let seqs = |es: Vec<Entry>| es.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(other.tail(2).await.unwrap()), [4, 5]);
        assert_eq!(seqs(other.tail(0).await.unwrap()), Vec::<u64>::new());
        assert_eq!(seqs(other.tail(99).await.unwrap()), [1, 2, 3, 4, 5]);
        assert_eq!(other.location(), "memory");
        assert_eq!(other.torn_tail(), None);
    }
}
