//! `bluegreen exporter` against real journals: deployments run through the library with a state
//! directory (in-memory backends, real `FileJournal`s), the built binary serves `/metrics`, and
//! the test scrapes it over HTTP — and has a real Prometheus scrape it and answers queries
//! through Prometheus's HTTP API.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{FileJournal, Retention};
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{AppName, Canary, CanaryStep, Deployer, HealthPolicy, Release, Retirement, Strategy};
use bluegreen_testkit::prometheus::{http_get, PrometheusProcess, ScrapeTarget};

const BIN: &str = env!("CARGO_BIN_EXE_bluegreen");

/// One application's in-memory systems; its journal and lock live in the state directory.
struct App {
    name: AppName,
    env: InMemoryEnvironment,
    router: InMemoryRouter,
}

impl App {
    fn new(name: &str) -> Self {
        App {
            name: AppName::new(name).unwrap(),
            env: InMemoryEnvironment::new(),
            router: InMemoryRouter::new(),
        }
    }

    fn deployer(&self, dir: &Path, strategy: impl Strategy) -> Deployer {
        Deployer::builder(self.name.clone())
            .environment(Arc::new(self.env.clone()))
            .router(Arc::new(self.router.clone()))
            .probe(self.env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(5))
                    .failure_threshold(2),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::ZERO)
                    .drain(Duration::ZERO)
                    .stop_grace(Duration::from_secs(1)),
            )
            .strategy(strategy)
            .state_dir(dir)
            .build()
            .unwrap()
    }

    fn canary(&self) -> Canary {
        Canary::new(vec![
            CanaryStep::SetWeight(25),
            CanaryStep::Analyse(
                Analysis::new(self.env.health_probe())
                    .count(2)
                    .interval(Duration::from_millis(1)),
            ),
        ])
        .unwrap()
    }

    /// Deploys `version`; whether it went live.
    async fn deploy(&self, dir: &Path, version: &str) -> bool {
        let d = self.deployer(dir, self.canary());
        d.deploy(Release::new(version).unwrap()).await.is_ok()
    }
}

/// The exporter binary, killed when dropped.
struct Exporter {
    child: Child,
    addr: SocketAddr,
}

impl Exporter {
    fn start(dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["exporter", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bluegreen exporter");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .parse()
            .unwrap();
        Exporter { child, addr }
    }

    /// The body of `GET /metrics`.
    fn scrape(&self) -> String {
        let (status, body) = http_get(self.addr, "/metrics").unwrap();
        assert_eq!(status, 200, "{body}");
        body
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of the sample `series` (name and labels exactly as rendered) in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exporter_serves_every_app_of_the_state_directory_from_its_journal() {
    let dir = tempfile::tempdir().unwrap();
    let shop = App::new("shop");
    assert!(shop.deploy(dir.path(), "v1").await);
    assert!(shop.deploy(dir.path(), "v2").await);
    shop.env.mark_unhealthy(&Release::new("v3").unwrap());
    assert!(!shop.deploy(dir.path(), "v3").await, "v3 is rolled back");

    let exporter = Exporter::start(dir.path());
    let text = exporter.scrape();
    let started = r#"bluegreen_deployments_started_total{app="shop",strategy="canary"}"#;
    assert_eq!(value(&text, started), Some(3.0), "{text}");
    let completed = r#"bluegreen_deployments_finished_total{app="shop",strategy="canary",outcome="completed"}"#;
    let rolled_back = r#"bluegreen_deployments_finished_total{app="shop",strategy="canary",outcome="rolled_back"}"#;
    assert_eq!(value(&text, completed), Some(2.0), "{text}");
    assert_eq!(value(&text, rolled_back), Some(1.0), "{text}");
    // v2 went live on green; v3's rollback left all traffic there.
    assert_eq!(
        value(&text, r#"bluegreen_traffic_weight{app="shop",slot="green"}"#),
        Some(100.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"bluegreen_traffic_weight{app="shop",slot="blue"}"#),
        Some(0.0),
        "{text}"
    );
    let verdict = |kind: &str, verdict: &str| {
        value(
            &text,
            &format!(r#"bluegreen_verdicts_total{{app="shop",kind="{kind}",verdict="{verdict}"}}"#),
        )
    };
    assert_eq!(verdict("health", "passed"), Some(2.0), "{text}");
    assert_eq!(verdict("health", "failed"), Some(1.0), "{text}");
    assert_eq!(verdict("analysis", "passed"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, r#"bluegreen_deployment_in_progress{app="shop"}"#),
        Some(0.0)
    );
    assert!(value(&text, r#"bluegreen_last_deployment_timestamp_seconds{app="shop"}"#).is_some_and(|t| t > 1.6e9));
    assert!(
        text.contains("# TYPE bluegreen_phase_duration_seconds histogram"),
        "{text}"
    );
    let verifying = r#"bluegreen_phase_duration_seconds_count{app="shop",phase="verifying"}"#;
    assert_eq!(value(&text, verifying), Some(3.0), "{text}");
    assert!(text.contains(r#"bluegreen_phase_duration_seconds_bucket{app="shop",phase="verifying",le="+Inf"} 3"#));

    // Read incrementally: a later deployment and a new application are picked up.
    assert!(shop.deploy(dir.path(), "v4").await);
    let cart = App::new("cart");
    assert!(cart.deploy(dir.path(), "c1").await);
    let text = exporter.scrape();
    assert_eq!(value(&text, started), Some(4.0), "{text}");
    assert_eq!(value(&text, completed), Some(3.0), "{text}");
    assert_eq!(
        value(
            &text,
            r#"bluegreen_deployments_started_total{app="cart",strategy="canary"}"#
        ),
        Some(1.0),
        "{text}"
    );
    // The families are declared once for both applications.
    assert_eq!(
        text.matches("# TYPE bluegreen_deployments_started_total counter")
            .count(),
        1
    );

    // A compaction rewrites the journal (keeping two deployments): the counters do not go down
    // (Prometheus would read a reset and count deployments that never happened), and what
    // follows it is counted once.
    let journal = FileJournal::open(dir.path(), &shop.name).unwrap();
    journal
        .compact(Retention::default().deployments(2).detailed(1))
        .await
        .unwrap();
    let text = exporter.scrape();
    assert_eq!(
        value(&text, started),
        Some(4.0),
        "nothing counted twice or lost: {text}"
    );
    assert_eq!(value(&text, completed), Some(3.0), "{text}");
    assert_eq!(
        value(&text, r#"bluegreen_traffic_weight{app="shop",slot="blue"}"#),
        Some(100.0),
        "{text}"
    );
    drop(journal);
    assert!(shop.deploy(dir.path(), "v5").await);
    let text = exporter.scrape();
    assert_eq!(value(&text, started), Some(5.0), "after the compaction: {text}");
    assert_eq!(value(&text, completed), Some(4.0), "{text}");
}

#[test]
fn an_address_in_use_is_refused_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["exporter", "--listen", &addr, "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_exporter_and_answers_for_its_series() {
    let dir = tempfile::tempdir().unwrap();
    let shop = App::new("shop");
    assert!(shop.deploy(dir.path(), "v1").await);
    assert!(shop.deploy(dir.path(), "v2").await);
    let exporter = Exporter::start(dir.path());
    let prometheus = match PrometheusProcess::start(
        &[ScrapeTarget::new("bluegreen", exporter.addr)],
        Duration::from_millis(500),
    ) {
        Ok(p) => p,
        Err(why) => return bluegreen_testkit::real::unavailable("prometheus", why),
    };
    let finished = prometheus
        .wait_for("bluegreen_deployments_finished_total", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", prometheus.log()));
    assert_eq!(finished.len(), 1, "{finished:?}");
    let series = &finished[0];
    assert_eq!(series.labels["app"], "shop");
    assert_eq!(series.labels["outcome"], "completed");
    assert_eq!(series.labels["strategy"], "canary");
    assert_eq!(series.labels["job"], "bluegreen");
    assert_eq!(series.value, 2.0);
    // Histograms arrive as histograms: a quantile over the phase durations is computable.
    let quantile = prometheus
        .wait_for(
            "histogram_quantile(0.5, sum by (le) (bluegreen_phase_duration_seconds_bucket{phase=\"verifying\"}))",
            Duration::from_secs(10),
        )
        .unwrap();
    // A number within the buckets (NaN if the buckets were missing or empty).
    let q = quantile[0].value;
    assert!((0.0..=600.0).contains(&q), "{quantile:?}");
    let weight = prometheus
        .wait_for("bluegreen_traffic_weight{slot=\"green\"}", Duration::from_secs(10))
        .unwrap();
    assert_eq!(weight[0].value, 100.0);
}
