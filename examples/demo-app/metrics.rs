//! `/metrics`: what the app served, in Prometheus's text format, and the `ERROR_RATE` knob.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `version` and `code` (`"200"`, `"500"`, …): the application's
/// own traffic (unknown paths' 404s included), not health checks, `/stats` or scrapes.
pub const REQUESTS: &str = "demo_http_requests_total";
/// Time to answer a request, by `version`, in seconds.
pub const DURATION: &str = "demo_http_request_duration_seconds";
/// The latency histogram's buckets, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// The process's metrics: records every answered request, renders them for a scrape.
#[derive(Debug, Clone)]
pub struct Metrics {
    version: String,
    handle: PrometheusHandle,
}

impl Metrics {
    /// Installs the process-wide recorder for `version`. Like most applications, it has no
    /// series of 500 answers until the first one: an error-rate query must say
    /// `(sum(rate(…5xx…)) or vector(0))` — the analysis tests hold it to that.
    ///
    /// # Errors
    /// When a recorder is installed already, or the buckets are refused, in words.
    pub fn install(version: &str) -> Result<Self, String> {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.to_string()), &BUCKETS)
            .and_then(|builder| builder.install_recorder())
            .map_err(|e| format!("cannot set up /metrics: {e}"))?;
        Ok(Metrics {
            version: version.to_string(),
            handle,
        })
    }

    /// Counts one answered request with status `code`, answered in `elapsed`.
    pub fn record(&self, code: u16, elapsed: Duration) {
        metrics::counter!(REQUESTS, "version" => self.version.clone(), "code" => code.to_string()).increment(1);
        metrics::histogram!(DURATION, "version" => self.version.clone()).record(elapsed.as_secs_f64());
    }

    /// Everything recorded so far, in Prometheus's text exposition format.
    pub fn render(&self) -> String {
        self.handle.run_upkeep();
        self.handle.render()
    }
}

/// Which application requests fail under `ERROR_RATE`: a deterministic spread, so a share of
/// 0.2 fails exactly every 5th request (the n-th fails when ⌊n·rate⌋ grows), and tests repeat.
#[derive(Debug)]
pub struct ErrorShare {
    rate: f64,
    seen: AtomicU64,
}

impl ErrorShare {
    /// Fails the share `rate` (0.0..=1.0) of requests.
    pub fn new(rate: f64) -> Self {
        ErrorShare {
            rate,
            seen: AtomicU64::new(0),
        }
    }

    /// Counts one request and says whether it must fail.
    pub fn next_fails(&self) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        ((n + 1.0) * self.rate).floor() > (n * self.rate).floor()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failures(rate: f64, requests: usize) -> Vec<usize> {
        let share = ErrorShare::new(rate);
        (1..=requests).filter(|_| share.next_fails()).collect()
    }

    #[test]
    fn the_share_is_exact_and_evenly_spread() {
        assert_eq!(failures(0.2, 20), [5, 10, 15, 20]);
        assert_eq!(failures(0.0, 100), Vec::<usize>::new());
        assert_eq!(failures(1.0, 4), [1, 2, 3, 4]);
        assert_eq!(failures(0.5, 6), [2, 4, 6]);
        assert_eq!(failures(0.05, 1000).len(), 50);
    }
}
