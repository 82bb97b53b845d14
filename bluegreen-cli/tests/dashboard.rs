//! The Grafana dashboard (`dashboards/bluegreen.json`) cannot rot: every PromQL expression in it
//! (panels, the `app` variable's query, the annotation) is run against a real Prometheus.
//!
//! 1. [`every_expression_parses_and_names_only_contract_metrics`]: with Grafana's variables
//!    substituted, Prometheus accepts each expression (`status: success`), and each metric it
//!    names is one the exporter or the demo app serves (the names of the metrics contract).
//! 2. [`every_expression_returns_data_after_a_deploy`]: Prometheus scrapes `bluegreen exporter`
//!    (reading the journal of real deployments) and the demo app's slots (real processes); after
//!    v1, a canary v2 parked at its gate with traffic on both slots, promoted, and v3, every
//!    expression returns at least one series. A build without `bluegreen exporter` or the demo
//!    app's `/metrics` reports them unavailable (a failure under `BLUEGREEN_REQUIRE_REAL=1`).
//! 3. [`the_dashboard_is_ready_for_provisioning`]: its uid, schema, data source variable, grid,
//!    and the provisioning files.

#[allow(dead_code)] // the e2e flows are not run here
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{BlueGreen, Canary, CanaryStep, DeployerBuilder, Release};
use bluegreen_testkit::processes::DemoEnvironment;
use bluegreen_testkit::prometheus::{http_get, PrometheusProcess, ScrapeTarget};
use bluegreen_testkit::real::{free_port, unavailable};
use common::local::{self, minimal_config, APP, CONFIG};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_bluegreen");
const SCRAPE: Duration = Duration::from_millis(500);

/// The metrics the dashboard may name: the exporter's and the demo app's (the contract).
const CONTRACT: &[&str] = &[
    "bluegreen_deployments_started_total",
    "bluegreen_deployments_finished_total",
    "bluegreen_phase_duration_seconds_bucket",
    "bluegreen_traffic_weight",
    "bluegreen_verdicts_total",
    "bluegreen_deployment_in_progress",
    "bluegreen_last_deployment_timestamp_seconds",
    "demo_http_requests_total",
    "demo_http_request_duration_seconds_bucket",
];

fn dashboard_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/bluegreen.json")
}

/// Every expression of the dashboard, as Grafana would send it: `(where, expr)`.
fn expressions() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dashboard_path()).expect("dashboards/bluegreen.json");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut found = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().expect("every target has an expr");
            found.push((format!("panel {:?}", panel["title"]), substitute(expr)));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().expect("annotations") {
        if let Some(expr) = annotation["expr"].as_str() {
            found.push((format!("annotation {:?}", annotation["name"]), substitute(expr)));
        }
    }
    for variable in dashboard["templating"]["list"].as_array().expect("templating") {
        if variable["type"] == "query" {
            let query = variable["query"]["query"]
                .as_str()
                .or(variable["query"].as_str())
                .expect("a query");
            found.push((format!("variable {:?}", variable["name"]), label_values(query)));
        }
    }
    assert!(found.len() >= 10, "only {} expressions in the dashboard", found.len());
    found
}

/// Grafana's variables, as Grafana fills them for a 10-minute range and one app.
fn substitute(expr: &str) -> String {
    let out = expr
        .replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "10m")
        .replace("${app}", APP)
        .replace("$app", APP);
    assert!(!out.contains('$'), "a Grafana variable the test does not know: {out}");
    out
}

/// `label_values(metric, label)` (Grafana's, not PromQL) as the series Grafana reads the
/// label from.
fn label_values(query: &str) -> String {
    let inner = query
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .unwrap_or_else(|| panic!("a variable query that is not label_values(...): {query}"));
    let (metric, label) = inner.split_once(',').expect("label_values(metric, label)");
    format!("count by ({}) ({})", label.trim(), metric.trim())
}

/// The metric names in `expr`: identifiers starting with `bluegreen_` or `demo_`.
fn metric_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &expr[i..];
        let at_word_start = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if at_word_start && (rest.starts_with("bluegreen_") || rest.starts_with("demo_")) {
            let len = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            names.push(rest[..len].to_string());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

fn prometheus(targets: &[ScrapeTarget]) -> Option<PrometheusProcess> {
    match PrometheusProcess::start(targets, SCRAPE) {
        Ok(p) => Some(p),
        Err(why) => {
            unavailable("prometheus", why);
            None
        }
    }
}

#[test]
fn every_expression_parses_and_names_only_contract_metrics() {
    let exprs = expressions();
    for (place, expr) in &exprs {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{place}: names no metric: {expr}");
        for name in names {
            assert!(
                CONTRACT.contains(&name.as_str()),
                "{place}: {name} is not a contract metric"
            );
        }
    }
    let Some(prometheus) = prometheus(&[]) else { return };
    // The check can fail: a broken expression is refused.
    assert!(prometheus.query("sum by (le (bluegreen_traffic_weight)").is_err());
    for (place, expr) in &exprs {
        if let Err(e) = prometheus.query(expr) {
            panic!("{place}: Prometheus refuses the expression: {e}");
        }
    }
    println!("{} expressions accepted by Prometheus", exprs.len());
}

#[test]
fn the_dashboard_is_ready_for_provisioning() {
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(dashboard_path()).unwrap()).unwrap();
    assert_eq!(
        dashboard["uid"], "bluegreen-deployments",
        "a fixed uid: links and provisioning keep working"
    );
    assert!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "Grafana 9 or later"
    );
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus data source variable"
    );
    let mut ids = std::collections::HashSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let title = &panel["title"];
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel id")),
            "panel id repeated: {title}"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(
            x + w <= 24 && w > 0 && grid["h"].as_u64().unwrap() > 0,
            "{title} outside the grid"
        );
        if panel["type"] != "row" {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title} uses the variable");
            for target in panel["targets"].as_array().unwrap() {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            }
        }
    }
    let provisioning = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards/provisioning");
    for (file, needle) in [
        ("dashboards/bluegreen.yaml", "type: file"),
        ("datasources/prometheus.yaml", "type: prometheus"),
    ] {
        let text = std::fs::read_to_string(provisioning.join(file)).unwrap();
        assert!(text.starts_with('#') || text.starts_with("apiVersion"), "{file}");
        assert!(text.contains("apiVersion: 1") && text.contains(needle), "{file}");
    }
}

/// A `bluegreen` process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_http(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match http_get(addr, path) {
            Ok((200, body)) => return Ok(body),
            Ok((status, _)) if Instant::now() >= deadline => return Err(format!("GET {path}: HTTP {status}")),
            Err(e) if Instant::now() >= deadline => return Err(format!("GET {path}: {e}")),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Some traffic to a slot, errors and all.
fn requests(addr: SocketAddr, n: usize) {
    for _ in 0..n {
        let _ = http_get(addr, "/");
    }
}

/// A deployer whose slots run the demo app as real processes, health-checked over HTTP.
fn builder(dir: &Path, env: &DemoEnvironment, who: &str) -> DeployerBuilder {
    local::deployer(
        dir,
        Arc::new(env.clone()),
        Arc::new(HttpProbe::new("/health").unwrap()),
        who,
    )
}

fn canary() -> Canary {
    Canary::new(vec![CanaryStep::SetWeight(10), CanaryStep::PauseUntilApproved]).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_expression_returns_data_after_a_deploy() {
    let help = Command::new(BIN)
        .args(["exporter", "--help"])
        .output()
        .expect("run bluegreen");
    if !help.status.success() {
        return unavailable(
            "bluegreen exporter",
            "this build has no `exporter` command yet (it comes with the metrics branch of issue 13)",
        );
    }
    if let Err(why) = bluegreen_testkit::prometheus::binary() {
        return unavailable("prometheus", why);
    }
    let dir = tempfile::tempdir().unwrap();
    let env = DemoEnvironment::new();
    builder(dir.path(), &env, "ci")
        .strategy(BlueGreen::new())
        .build()
        .unwrap()
        .deploy(Release::new("v1").unwrap())
        .await
        .unwrap();
    let ci = builder(dir.path(), &env, "ci").strategy(canary()).build().unwrap();
    let parked = ci.deploy(Release::new("v2").unwrap()).await.unwrap();
    assert!(
        parked.deployment.parked().is_some(),
        "v2 waits at its gate with 10% of traffic"
    );
    let slot = |endpoint: &bluegreen_core::Endpoint| -> SocketAddr {
        format!("{}:{}", endpoint.host(), endpoint.port()).parse().unwrap()
    };
    let v1 = slot(parked.deployment.previous().expect("v1 served").endpoints.first());
    let v2 = slot(parked.deployment.endpoints().expect("v2 provisioned").first());
    if !matches!(http_get(v1, "/metrics"), Ok((200, _))) {
        return unavailable(
            "demo app /metrics",
            "this build's demo app serves no /metrics yet (it comes with the analysis branch of issue 13)",
        );
    }

    let cli = minimal_config(dir.path());
    let exporter_addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let _exporter = Running(
        cli.command(CONFIG, &["exporter", "--listen", &exporter_addr.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .expect("start bluegreen exporter"),
    );
    wait_http(exporter_addr, "/metrics", Duration::from_secs(20)).expect("the exporter serves /metrics");
    let Some(prometheus) = prometheus(&[
        ScrapeTarget::new("bluegreen", exporter_addr),
        ScrapeTarget::new("demo-v1", v1),
        ScrapeTarget::new("demo-v2", v2),
    ]) else {
        return;
    };
    prometheus
        .wait_for("count(up == 1) == 3", Duration::from_secs(30))
        .expect("all three targets scraped");
    requests(v1, 90);
    requests(v2, 10);
    tokio::time::sleep(SCRAPE * 3).await;

    // Promoted by alice: v2 completes and v1 stops; then v3 goes out.
    let alice = builder(dir.path(), &env, "alice").strategy(canary()).build().unwrap();
    let answer = alice.promote().await.unwrap();
    assert!(answer
        .report()
        .is_some_and(|r| r.deployment.phase().name() == "completed"));
    requests(v2, 50);
    builder(dir.path(), &env, "ci")
        .strategy(BlueGreen::new())
        .build()
        .unwrap()
        .deploy(Release::new("v3").unwrap())
        .await
        .unwrap();
    prometheus
        .wait_for(
            &format!("sum(bluegreen_deployments_finished_total{{app=\"{APP}\"}}) >= 3"),
            Duration::from_secs(30),
        )
        .expect("the exporter counts the three deployments");

    let mut empty = Vec::new();
    for (place, expr) in expressions() {
        match prometheus.wait_for(&expr, Duration::from_secs(10)) {
            Ok(series) => println!("{place}: {} series, e.g. {:?}", series.len(), series.first()),
            Err(e) => empty.push(format!("{place}: {expr}: {e}")),
        }
    }
    assert!(empty.is_empty(), "expressions without data:\n{}", empty.join("\n"));
}
