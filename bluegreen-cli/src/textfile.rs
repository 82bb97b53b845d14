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
                .map_err(|e| {
                    eprintln!("warning: --metrics-textfile: buckets of {name}: {e}; no metrics file is written")
                })
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
    use bluegreen_core::{AppName, Deployer, Release, Retirement};

    use super::*;

    /// Whether `text` is a whole exposition: every line a comment or `series value`, ending in a
    /// newline, with the family `must` in it.
    fn whole(text: &str, must: &str) -> Result<(), String> {
        if !text.ends_with('\n') || !text.contains(must) {
            return Err(format!("cut short or without {must}: {text:?}"));
        }
        for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').ok_or_else(|| format!("no value: {line:?}"))?;
            value.parse::<f64>().map_err(|e| format!("{line:?}: {e}"))?;
        }
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_write_is_whole_and_holds_the_deployment_metrics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bluegreen.prom");
        let textfile = Textfile::install(path.clone()).expect("the first recorder of this test binary");
        let env = InMemoryEnvironment::new();
        let deployer = Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(env.clone()))
            .router(Arc::new(InMemoryRouter::new()))
            .probe(env.health_probe())
            .retirement(Retirement::new().rollback_window(Duration::ZERO).drain(Duration::ZERO))
            .build()
            .unwrap();
        deployer.deploy(Release::new("v1").unwrap()).await.unwrap();
        textfile.write();

        // A reader that never sees a partial file while the file is rewritten, bigger each time.
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (done, path) = (done.clone(), path.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let text = std::fs::read_to_string(&path).unwrap();
                    whole(&text, m::DEPLOYMENTS_FINISHED).unwrap();
                    reads += 1;
                }
                reads
            })
        };
        for i in 0..300 {
            metrics::counter!("bluegreen_test_filler_total", "i" => i.to_string()).increment(1);
            textfile.write();
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().expect("every read was a whole file");
        assert!(reads > 0);

        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(
                r#"bluegreen_deployments_finished_total{app="shop",strategy="blue-green",outcome="completed"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("# TYPE bluegreen_phase_duration_seconds histogram"),
            "{text}"
        );
        assert!(text.contains(r#"le="600""#), "the library's buckets: {text}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            leftovers,
            [std::ffi::OsString::from("bluegreen.prom")],
            "no temporary file left"
        );
    }
}
