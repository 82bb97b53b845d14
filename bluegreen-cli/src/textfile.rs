//! `deploy --metrics-textfile PATH`: the library's metrics of this process, in node_exporter's
//! textfile format (the Prometheus text format, no timestamps), written atomically at each phase
//! and at the end, for batch jobs that a scraper cannot reach.

use std::path::PathBuf;

use bluegreen::metrics as m;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// A recorder installed for this process, and where its text goes.
pub struct Textfile {
    path: PathBuf,
    handle: PrometheusHandle,
}

impl Textfile {
    /// Installs a Prometheus recorder (seconds histograms with [`m::SECONDS_BUCKETS`]) as this
    /// process's global recorder and describes the families; `None`, with a warning, if another
    /// recorder is installed already.
    pub fn install(path: PathBuf) -> Option<Textfile> {
        let mut builder = PrometheusBuilder::new();
        for name in m::SECONDS_HISTOGRAMS {
            builder = builder
                .set_buckets_for_metric(Matcher::Full((*name).to_string()), m::SECONDS_BUCKETS)
                .ok()?;
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            eprintln!("warning: --metrics-textfile: {e}; no metrics file is written");
            return None;
        }
        m::describe();
        Some(Textfile { path, handle })
    }

    /// Writes the metrics now, with the library's atomic write (a temporary file beside the
    /// path, synced, renamed over it): a reader sees the old file or the new one, never a part.
    /// A failure is a warning: metrics never fail a deployment. Blocking (a write and an fsync).
    pub fn write(&self) {
        let text = self.handle.render();
        if let Err(e) = bluegreen::backend::file::write_atomic(&self.path, text.as_bytes(), None) {
            eprintln!("warning: the metrics file: {}", e.chain());
        }
    }
}
