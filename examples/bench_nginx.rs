//! nginx router benchmark: switch latency and failures under load, against a real nginx.
//!
//! Starts its own nginx (in a temporary prefix, on loopback) and two demo apps (v1, v2), then
//! prints markdown tables:
//! 1. switch latency, from the start of the switch to the first request answered by the new
//!    version through nginx, p50/p99 over alternating switches: `NginxRouter::apply` (render,
//!    atomic write, `nginx -t`, reload, confirm) against a raw write + `nginx -s reload` + poll,
//!    measured in the same run; the ratio is the cost of validation and confirmation;
//! 2. requests counted under load while switching, by client mode, router and raw reload.
//!
//! ```text
//! cargo run --release --example bench_nginx
//! RUST_LOG=bluegreen_nginx=debug cargo run --release --example bench_nginx   # per-step timings
//! ```

use std::time::{Duration, Instant};

use bluegreen_core::{Endpoint, Router, Routes, Slot};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::load::{request_once, ClientMode, LoadConfig, Outcome};
use bluegreen_testkit::nginx::{NginxProcess, RawReload};
use bluegreen_testkit::scenario::switches_under_load;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};

const SWITCHES: usize = 30;
const LOAD_SWITCHES: usize = 10;
const CLIENTS: usize = 24;
const SETTLE: Duration = Duration::from_millis(150);

/// Polls through nginx, a new connection each time, until `version` answers.
async fn first_answer_from(proxy: &LoadConfig, version: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Outcome::Response {
            status: 200,
            version: v,
        } = request_once(proxy).await
        {
            if v == version {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(format!("{version} never answered through nginx"))
}

async fn switch_latencies<F, Fut>(
    proxy: &LoadConfig,
    apps: &[(Endpoint, &str); 2],
    mut switch: F,
) -> Result<Samples, String>
where
    F: FnMut(Routes) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut samples = Samples::new();
    for i in 0..=SWITCHES {
        let (slot, (endpoint, version)) = if i % 2 == 0 {
            (Slot::Blue, &apps[0])
        } else {
            (Slot::Green, &apps[1])
        };
        let routes = Routes::only(slot, endpoint.clone());
        let started = Instant::now();
        switch(routes).await?;
        first_answer_from(proxy, version).await?;
        // The first switch only sets the starting point.
        if i > 0 {
            samples.push(started.elapsed());
        }
        tokio::time::sleep(SETTLE).await;
    }
    Ok(samples)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    // `RUST_LOG=bluegreen_nginx=debug` shows where each switch spends its time.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let started = Instant::now();
    let nginx = NginxProcess::start("app")?;
    let (v1, v2) = (DemoApp::start("v1", &[])?, DemoApp::start("v2", &[])?);
    let router = NginxRouter::builder(nginx.router_file(), "app")
        .nginx_binary(nginx.binary())
        .nginx_prefix(nginx.prefix())
        .nginx_conf(nginx.conf_path())
        .pid_file(nginx.pid_file())
        .status_listen(nginx.status_addr())
        .build()
        .map_err(|e| e.to_string())?;
    // Without the pid file, confirmation stops at the first answer of the new generation.
    let token_only = NginxRouter::from_config({
        let mut config = router.config().clone();
        config.pid_file = None;
        config
    })
    .map_err(|e| e.to_string())?;
    let raw: RawReload = nginx.raw_reload();
    let proxy = LoadConfig::new(nginx.addr(), 1, ClientMode::NewConnection);
    let apps = [(v1.endpoint(), "v1"), (v2.endpoint(), "v2")];

    let ours = switch_latencies(&proxy, &apps, |routes| {
        let router = &router;
        async move { router.apply(&routes).await.map_err(|e| e.to_string()) }
    })
    .await?;
    let token = switch_latencies(&proxy, &apps, |routes| {
        let router = &token_only;
        async move { router.apply(&routes).await.map_err(|e| e.to_string()) }
    })
    .await?;
    let theirs = switch_latencies(&proxy, &apps, |routes| {
        let raw = &raw;
        async move { raw.write_and_reload(&routes) }
    })
    .await?;

    let check = nginx_t_samples(&nginx)?;

    println!("## nginx switch latency ({SWITCHES} switches each, start of switch → first request answered by the new version)\n");
    println!("nginx: {}\n", nginx_version(&nginx));
    let mut table = Table::new(&["switch", "p50 ms", "p99 ms", "mean ms", "p50 vs raw", "p99 vs raw"]);
    table.row(vec![
        "NginxRouter::apply (write, nginx -t, reload, confirm)".into(),
        ms(ours.p50()),
        ms(ours.p99()),
        ms(ours.mean()),
        ratio(ours.p50(), theirs.p50()),
        ratio(ours.p99(), theirs.p99()),
    ]);
    table.row(vec![
        "NginxRouter::apply without pid_file (confirm = first answer of the new generation)".into(),
        ms(token.p50()),
        ms(token.p99()),
        ms(token.mean()),
        ratio(token.p50(), theirs.p50()),
        ratio(token.p99(), theirs.p99()),
    ]);
    table.row(vec![
        "raw: write + nginx -s reload + poll".into(),
        ms(theirs.p50()),
        ms(theirs.p99()),
        ms(theirs.mean()),
        "1.00".into(),
        "1.00".into(),
    ]);
    table.row(vec![
        "`nginx -t` alone (one step of the router's switch)".into(),
        ms(check.p50()),
        ms(check.p99()),
        ms(check.mean()),
        "-".into(),
        "-".into(),
    ]);
    println!("{}", table.render());
    println!(
        "With the pid file, the router's `apply` returns once no pre-reload worker accepts connections \
         (nginx retires them ~100 ms after the new ones start); the raw poll stops at the first answer \
         from the new version, while old workers may still answer. The router also fsyncs the file and runs `nginx -t` before the reload.\n"
    );

    println!(
        "## Requests under load ({CLIENTS} clients, {LOAD_SWITCHES} switches, {} ms between)\n",
        SETTLE.as_millis()
    );
    let mut table = Table::new(&[
        "switching with",
        "client mode",
        "requests",
        "failed",
        "retried attempts",
    ]);
    let both = [(&router as &dyn Router), (&raw as &dyn Router)];
    for mode in [
        ClientMode::NewConnection,
        ClientMode::KeepAliveRetrying,
        ClientMode::KeepAlive,
    ] {
        for switcher in both {
            let tally = switches_under_load(
                switcher,
                nginx.addr(),
                "localhost",
                &v1.endpoint(),
                &v2.endpoint(),
                CLIENTS,
                mode,
                LOAD_SWITCHES,
                SETTLE,
            )
            .await;
            table.row(vec![
                switcher.name().into(),
                mode.to_string(),
                tally.total().to_string(),
                tally.failures().to_string(),
                tally.retried.to_string(),
            ]);
        }
    }
    println!("{}", table.render());
    println!("(whole run: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// How long `nginx -t` takes on this config, `SWITCHES` times.
fn nginx_t_samples(nginx: &NginxProcess) -> Result<Samples, String> {
    let mut samples = Samples::new();
    for _ in 0..SWITCHES {
        let started = Instant::now();
        let status = std::process::Command::new(nginx.binary())
            .arg("-p")
            .arg(nginx.prefix())
            .arg("-c")
            .arg(nginx.conf_path())
            .args(["-t", "-q"])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("nginx -t failed: {status}"));
        }
        samples.push(started.elapsed());
    }
    Ok(samples)
}

fn nginx_version(nginx: &NginxProcess) -> String {
    std::process::Command::new(nginx.binary())
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_else(|e| e.to_string())
}
