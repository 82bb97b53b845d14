//! Real Prometheus as a test fixture: its own config, data directory and port on loopback.
//!
//! ```no_run
//! use std::time::Duration;
//! use bluegreen_testkit::prometheus::{PrometheusProcess, ScrapeTarget};
//!
//! let app: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
//! let prometheus = match PrometheusProcess::start(&[ScrapeTarget::new("demo", app)], Duration::from_secs(1)) {
//!     Ok(p) => p,
//!     Err(why) => return bluegreen_testkit::real::unavailable("prometheus", why),
//! };
//! let up = prometheus.wait_for("up{job=\"demo\"} == 1", Duration::from_secs(10)).unwrap();
//! assert_eq!(up.len(), 1);
//! ```

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::real::{find_executable, free_port, retry_on_port_clash};

/// The variable that points at a Prometheus binary.
pub const PROMETHEUS_VAR: &str = "BLUEGREEN_PROMETHEUS";

/// The Prometheus binary: `$BLUEGREEN_PROMETHEUS`, `prometheus` on `PATH`, or Debian's
/// `/usr/bin/prometheus` (`apt-get install prometheus`, 2.42).
pub fn binary() -> Result<PathBuf, String> {
    find_executable(PROMETHEUS_VAR, &["prometheus", "/usr/bin/prometheus"])
}

/// One scrape job: `job` scrapes `GET http://<addr><path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeTarget {
    /// The job's name (the `job` label of its series).
    pub job: String,
    /// Where it is scraped.
    pub addr: SocketAddr,
    /// The metrics path (`/metrics` by default).
    pub path: String,
}

impl ScrapeTarget {
    /// Job `job` scraping `http://<addr>/metrics`.
    pub fn new(job: impl Into<String>, addr: SocketAddr) -> Self {
        ScrapeTarget {
            job: job.into(),
            addr,
            path: "/metrics".to_string(),
        }
    }
}

/// One series of an instant query's result: its labels and value (`NaN` as Prometheus says).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The series' labels (`__name__` included when the query keeps it).
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A running Prometheus on loopback scraping the given targets.
///
/// The temporary directory holds `prometheus.yml`, `data/` (the TSDB) and `prometheus.log`.
/// Dropping it kills the process and removes the directory.
#[derive(Debug)]
pub struct PrometheusProcess {
    child: Option<Child>,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    interval: Duration,
}

impl PrometheusProcess {
    /// Starts Prometheus scraping `targets` every `interval` (also its evaluation interval) and
    /// waits until it is ready.
    pub fn start(targets: &[ScrapeTarget], interval: Duration) -> Result<PrometheusProcess, String> {
        binary()?;
        let dir = tempfile::Builder::new()
            .prefix("bluegreen-prometheus-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        std::fs::write(dir.path().join("prometheus.yml"), config(targets, interval))
            .map_err(|e| format!("cannot write prometheus.yml: {e}"))?;
        let mut prometheus = PrometheusProcess {
            child: None,
            dir,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            interval,
        };
        retry_on_port_clash(|| {
            prometheus.addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            prometheus.spawn()
        })?;
        Ok(prometheus)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let binary = binary()?;
        let log = std::fs::File::create(self.log_path()).map_err(|e| format!("cannot create the log: {e}"))?;
        let child = Command::new(&binary)
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={}", self.addr))
            .arg("--web.enable-lifecycle")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(30))
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if http_get(self.addr, "/-/ready").is_ok_and(|(status, _)| status == 200) {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = self.log();
                if log.contains("address already in use") {
                    return Err(format!("prometheus exited with {status}: address already in use"));
                }
                return Err(format!("prometheus exited with {status}; log:\n{log}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("prometheus not ready within {timeout:?}; log:\n{}", self.log()));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The HTTP API's base URL (`http://127.0.0.1:PORT`), for a `PrometheusAnalysis`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Runs the instant query `expr` now (`GET /api/v1/query`): the vector's series, or a scalar
    /// as one unlabelled sample. Fails when Prometheus is unreachable or rejects the expression
    /// (the error names it).
    pub fn query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let path = format!("/api/v1/query?query={}", encode(expr));
        let (status, body) = http_get(self.addr, &path).map_err(|e| format!("querying {expr:?}: {e}"))?;
        let json: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("querying {expr:?}: HTTP {status}, not JSON ({e}): {body}"))?;
        if json["status"] != "success" {
            return Err(format!("querying {expr:?}: HTTP {status}: {body}"));
        }
        let data = &json["data"];
        let value = |pair: &serde_json::Value| -> Result<f64, String> {
            let text = pair[1].as_str().ok_or_else(|| format!("no value in {pair}"))?;
            text.parse::<f64>().map_err(|e| format!("value {text:?}: {e}"))
        };
        match data["resultType"].as_str() {
            Some("vector") => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|series| {
                    let labels = series["metric"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect();
                    Ok(Sample {
                        labels,
                        value: value(&series["value"])?,
                    })
                })
                .collect(),
            Some("scalar") => Ok(vec![Sample {
                labels: BTreeMap::new(),
                value: value(&data["result"])?,
            }]),
            other => Err(format!(
                "querying {expr:?}: result type {other:?} is not a vector or scalar"
            )),
        }
    }

    /// Scrapes `targets` from now on, instead of what it scraped: rewrites `prometheus.yml` and
    /// asks Prometheus to reload it (`POST /-/reload`; it runs with `--web.enable-lifecycle`).
    /// For targets whose address is known only once they run (a slot's port).
    ///
    /// Fails when the file cannot be written or Prometheus refuses the reload (the error says
    /// why).
    pub fn set_targets(&self, targets: &[ScrapeTarget]) -> Result<(), String> {
        std::fs::write(self.dir.path().join("prometheus.yml"), config(targets, self.interval))
            .map_err(|e| format!("cannot write prometheus.yml: {e}"))?;
        let (status, body) =
            http_request(self.addr, "POST", "/-/reload").map_err(|e| format!("reloading prometheus: {e}"))?;
        if status != 200 {
            return Err(format!("prometheus refused the reload: HTTP {status}: {body}"));
        }
        Ok(())
    }

    /// Runs `expr` until it returns at least one series, for at most `timeout`: the series.
    pub fn wait_for(&self, expr: &str, timeout: Duration) -> Result<Vec<Sample>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(expr);
            if let Ok(samples) = &last {
                if !samples.is_empty() {
                    return last;
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{expr:?} returned no series within {timeout:?} (last: {last:?})"
                ));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Prometheus's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    /// What Prometheus has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Kills Prometheus (SIGKILL) and waits for it: its API stops answering at once. The
    /// directory stays until drop.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Prometheus again after [`stop`](Self::stop), on the same directory and address.
    /// Does nothing if it runs.
    pub fn restart(&mut self) -> Result<(), String> {
        if self.child.is_some() {
            return Ok(());
        }
        self.spawn()
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(targets: &[ScrapeTarget], interval: Duration) -> String {
    let interval = format!("{}ms", interval.as_millis().max(1));
    let mut out =
        format!("global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\nscrape_configs:\n");
    if targets.is_empty() {
        out.push_str("  []\n");
    }
    for t in targets {
        out.push_str(&format!(
            "  - job_name: \"{job}\"\n    scrape_interval: {interval}\n    scrape_timeout: {interval}\n    metrics_path: \"{path}\"\n    static_configs:\n      - targets: [\"{addr}\"]\n",
            job = t.job,
            path = t.path,
            addr = t.addr,
        ));
    }
    out
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters stay).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `GET path` over HTTP/1.0 (so the answer is never chunked): the status and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    http_request(addr, "GET", path)
}

/// `method path`, with no body, over HTTP/1.0: the status and the body.
fn http_request(addr: SocketAddr, method: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    )?;
    let mut out = String::new();
    stream.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {out:.80}")))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_promql() {
        assert_eq!(encode("up{job=\"a\"} == 1"), "up%7Bjob%3D%22a%22%7D%20%3D%3D%201");
    }

    /// Prometheus scrapes itself; the query comes back through its API; a bad expression is an
    /// error naming it; after `stop` the API does not answer, after `restart` it does.
    #[test]
    fn scrapes_and_answers_queries() {
        let port = match free_port() {
            Ok(p) => p,
            Err(why) => panic!("{why}"),
        };
        // Its own address is only known after start: scrape a target that is down, then itself.
        let down = ScrapeTarget::new("down", SocketAddr::from(([127, 0, 0, 1], port)));
        let mut prometheus = match PrometheusProcess::start(&[down], Duration::from_millis(500)) {
            Ok(p) => p,
            Err(why) => return crate::real::unavailable("prometheus", why),
        };
        let up = prometheus
            .wait_for("up{job=\"down\"}", Duration::from_secs(15))
            .unwrap();
        assert_eq!(up[0].value, 0.0, "{up:?}");
        assert_eq!(up[0].labels["job"], "down");
        let scalar = prometheus.query("scalar(vector(2))").unwrap();
        assert_eq!(scalar[0].value, 2.0);
        let err = prometheus.query("sum(").unwrap_err();
        assert!(err.contains("sum("), "{err}");
        // A target known later: Prometheus scrapes itself once told to.
        prometheus
            .set_targets(&[ScrapeTarget::new("itself", prometheus.addr())])
            .unwrap();
        let itself = prometheus
            .wait_for("up{job=\"itself\"} == 1", Duration::from_secs(15))
            .unwrap();
        assert_eq!(itself[0].labels["instance"], prometheus.addr().to_string());
        prometheus.stop();
        assert!(prometheus.query("up").is_err());
        prometheus.restart().unwrap();
        assert!(prometheus.query("up").is_ok());
    }
}
