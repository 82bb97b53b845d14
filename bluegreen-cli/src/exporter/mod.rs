//! The exporter behind `bluegreen exporter`: the metrics of every application whose journal is in
//! a state directory, derived from the journals and served as Prometheus text.
//!
//! Each journal is followed forward ([`JournalFollower`]): a refresh reads only the bytes appended
//! since the previous one, so a scrape costs what is new plus the number of series, never the
//! history. A journal replaced by a compaction is read again from its start and that
//! application's numbers rebuilt (its counters may then go down: Prometheus reads that as a
//! reset). An application whose journal appears later is picked up at the next refresh.

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
                    if followed.restarted {
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
