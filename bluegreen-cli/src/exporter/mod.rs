//! The exporter behind `bluegreen exporter`: the metrics of every application whose journal is in
//! a state directory, derived from the journals and served as Prometheus text.
//!
//! Each journal is followed forward ([`JournalFollower`]): a refresh reads only the bytes appended
//! since the previous one, so a scrape costs what is new plus the number of series, never the
//! history. A journal replaced by a compaction is read again from its start: its entries keep
//! their sequence numbers, so those already counted are skipped and the counters never go down
//! (a drop would read as a reset, and `increase()` would count deployments that never happened).
//! A journal that starts over (deleted and made anew: its sequence numbers fall behind what was
//! read) is a new history, and its application's numbers are rebuilt. An application whose
//! journal appears later is picked up at the next refresh.

mod derive;
mod serve;
mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;

use bluegreen::journal::{journal_apps, JournalFollower};
use bluegreen::AppName;

pub use serve::bind;

use derive::AppMetrics;
use text::Exposition;

/// One application's journal and what was derived from it.
#[derive(Debug)]
struct Tracked {
    follower: JournalFollower,
    metrics: AppMetrics,
}

/// The metrics of the applications of one state directory.
#[derive(Debug)]
pub struct Exporter {
    dir: PathBuf,
    apps: BTreeMap<AppName, Tracked>,
}

impl Exporter {
    /// An exporter of the journals in `dir` (read at the first [`refresh`](Self::refresh)).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Exporter {
            dir: dir.into(),
            apps: BTreeMap::new(),
        }
    }

    /// Reads what the journals gained since the last refresh (and the journals of new
    /// applications). Blocking file I/O. Returns what went wrong, one message each (an
    /// application whose journal cannot be read keeps the numbers it had).
    pub fn refresh(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        match journal_apps(&self.dir) {
            Ok(apps) => {
                for app in apps {
                    let follower = JournalFollower::of(&self.dir, &app);
                    self.apps.entry(app).or_insert_with(|| Tracked {
                        follower,
                        metrics: AppMetrics::default(),
                    });
                }
            }
            Err(e) => problems.push(e.chain().to_string()),
        }
        for (app, tracked) in &mut self.apps {
            match tracked.follower.read_new() {
                Ok(followed) => {
                    let behind = followed
                        .entries
                        .last()
                        .is_some_and(|e| e.seq < tracked.metrics.last_seq());
                    if followed.restarted && behind {
                        tracked.metrics = AppMetrics::default();
                    }
                    for entry in &followed.entries {
                        tracked.metrics.apply(entry);
                    }
                }
                Err(e) => problems.push(format!("{app}: {}", e.chain())),
            }
        }
        problems
    }

    /// The metrics as Prometheus text (exposition format 0.0.4), as of the last refresh.
    pub fn render(&self) -> String {
        let mut x = Exposition::default();
        derive::declare(&mut x);
        for (app, tracked) in &self.apps {
            tracked.metrics.write(app.as_str(), &mut x);
        }
        x.finish()
    }
}
