//! Traefik switch benchmark: `TraefikRouter` against a raw rename + API poll, in the same run.
//!
//! Starts real Traefik (`providersThrottleDuration: 0s`) and two demo apps on loopback, then prints
//! markdown tables:
//! 1. switch latency p50/p99 — apply → confirmed, and apply → first request served by the new
//!    slot — for the router and for the raw way (write a temp file outside the watched directory,
//!    rename it in, poll `/api/http/services/<name>@file` until the weights show), with ratios;
//! 2. requests failed while the router switches under concurrent keep-alive clients.
//!
//! ```text
//! cargo run --release --example bench_traefik
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bluegreen_core::{AppName, Endpoint, Router, Routes, Slot, TrafficSplit};
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::load::{request_once, ClientMode, LoadConfig, Outcome};
use bluegreen_testkit::scenario::switches_under_load;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};
use bluegreen_testkit::traefik::TraefikProcess;
use bluegreen_traefik::TraefikRouter;

const SWITCHES: usize = 40;
const POLL: Duration = Duration::from_millis(10);
const LOAD_CLIENTS: usize = 24;
const LOAD_SWITCHES: usize = 20;

/// Apply → confirmed, and apply → first request answered by the new slot.
#[derive(Default)]
struct Latencies {
    confirmed: Samples,
    first_served: Samples,
}

/// Sends requests for `host` through `proxy` until one is answered by `version`; the time since
/// `start` when it was.
async fn first_served(proxy: SocketAddr, host: &'static str, version: String, start: Instant) -> Duration {
    let load = LoadConfig::new(proxy, 1, ClientMode::NewConnection).host(host);
    loop {
        if let Outcome::Response {
            status: 200,
            version: v,
        } = request_once(&load).await
        {
            if v == version {
                return start.elapsed();
            }
        }
    }
}

async fn bench_router(traefik: &TraefikProcess, blue: &DemoApp, green: &DemoApp) -> Latencies {
    let router = TraefikRouter::builder(
        AppName::new("bench").expect("valid"),
        traefik.watched_dir(),
        "Host(`bench.localhost`)",
    )
    .staging_directory(traefik.staging_dir())
    .entry_point("web")
    .api_url(traefik.api_url())
    .providers_throttle(Duration::ZERO)
    .poll_interval(POLL)
    .build()
    .expect("valid router");
    let routes = |slot| {
        Routes::new(TrafficSplit::all(slot), Some(blue.endpoint()), Some(green.endpoint())).expect("valid routes")
    };
    router.apply(&routes(Slot::Blue)).await.expect("initial switch");
    let mut out = Latencies::default();
    for i in 0..SWITCHES {
        let (slot, app) = if i % 2 == 0 {
            (Slot::Green, green)
        } else {
            (Slot::Blue, blue)
        };
        let start = Instant::now();
        let watcher = tokio::spawn(first_served(
            traefik.web_addr(),
            "bench.localhost",
            app.version().to_owned(),
            start,
        ));
        router.apply(&routes(slot)).await.expect("switch");
        out.confirmed.push(start.elapsed());
        out.first_served.push(watcher.await.expect("watcher"));
    }
    out
}

fn raw_file(blue: &Endpoint, green: &Endpoint, slot: Slot) -> String {
    let (wb, wg) = if slot == Slot::Blue { (100, 0) } else { (0, 100) };
    format!(
        r#"[http.routers.raw]
entryPoints = ["web"]
rule = "Host(`raw.localhost`)"
service = "raw"

[[http.services.raw.weighted.services]]
name = "raw-blue"
weight = {wb}

[[http.services.raw.weighted.services]]
name = "raw-green"
weight = {wg}

[[http.services.raw-blue.loadBalancer.servers]]
url = "{}"

[[http.services.raw-green.loadBalancer.servers]]
url = "{}"
"#,
        blue.url(""),
        green.url("")
    )
}

/// The raw way: stage, rename in, poll the API until the weighted service shows the weights.
async fn raw_switch(client: &reqwest::Client, traefik: &TraefikProcess, contents: &str, weights: (u64, u64)) {
    let staged = traefik.staging_dir().join("raw.toml");
    std::fs::write(&staged, contents).expect("write");
    std::fs::rename(&staged, traefik.watched_dir().join("raw.toml")).expect("rename");
    let url = format!("{}/api/http/services/raw@file", traefik.api_url());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = client.get(&url).send().await {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&response.bytes().await.unwrap_or_default()) {
                let w = |i: usize| json["weighted"]["services"][i]["weight"].as_u64();
                if (w(0), w(1)) == (Some(weights.0), Some(weights.1)) {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "raw switch not live within 10 s");
        tokio::time::sleep(POLL).await;
    }
}

async fn bench_raw(traefik: &TraefikProcess, blue: &DemoApp, green: &DemoApp) -> Latencies {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let (b, g) = (blue.endpoint(), green.endpoint());
    raw_switch(&client, traefik, &raw_file(&b, &g, Slot::Blue), (100, 0)).await;
    let mut out = Latencies::default();
    for i in 0..SWITCHES {
        let (slot, app, weights) = if i % 2 == 0 {
            (Slot::Green, green, (0, 100))
        } else {
            (Slot::Blue, blue, (100, 0))
        };
        let start = Instant::now();
        let watcher = tokio::spawn(first_served(
            traefik.web_addr(),
            "raw.localhost",
            app.version().to_owned(),
            start,
        ));
        raw_switch(&client, traefik, &raw_file(&b, &g, slot), weights).await;
        out.confirmed.push(start.elapsed());
        out.first_served.push(watcher.await.expect("watcher"));
    }
    out
}

async fn failures_under_load(traefik: &TraefikProcess, blue: &DemoApp, green: &DemoApp) -> (u64, u64, Duration) {
    let router = TraefikRouter::builder(
        AppName::new("load").expect("valid"),
        traefik.watched_dir(),
        "Host(`load.localhost`)",
    )
    .staging_directory(traefik.staging_dir())
    .entry_point("web")
    .api_url(traefik.api_url())
    .providers_throttle(Duration::ZERO)
    .build()
    .expect("valid router");
    let start = Instant::now();
    let tally = switches_under_load(
        &router,
        traefik.web_addr(),
        "load.localhost",
        &blue.endpoint(),
        &green.endpoint(),
        LOAD_CLIENTS,
        ClientMode::KeepAlive,
        LOAD_SWITCHES,
        Duration::from_millis(100),
    )
    .await;
    (tally.total(), tally.failures(), start.elapsed())
}

fn check_prerequisites() -> Result<(TraefikProcess, DemoApp, DemoApp), String> {
    let traefik = TraefikProcess::start(Duration::ZERO)?;
    Ok((traefik, DemoApp::start("v1", &[])?, DemoApp::start("v2", &[])?))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (traefik, blue, green) = match check_prerequisites() {
        Ok(all) => all,
        Err(why) => {
            eprintln!("bench_traefik needs Traefik and the demo app: {why}");
            std::process::exit(2);
        }
    };
    let total = Instant::now();
    // Same Traefik, same apps, one after the other: the raw way first, then the router.
    let raw = bench_raw(&traefik, &blue, &green).await;
    let router = bench_router(&traefik, &blue, &green).await;
    let (requests, failed, load_time) = failures_under_load(&traefik, &blue, &green).await;

    println!(
        "## Traefik switch latency ({SWITCHES} switches each, providersThrottleDuration 0s, poll every {POLL:?})\n"
    );
    let mut table = Table::new(&[
        "measure",
        "TraefikRouter p50 ms",
        "TraefikRouter p99 ms",
        "raw rename + API poll p50 ms",
        "raw p99 ms",
        "ratio p50",
        "ratio p99",
    ]);
    for (name, ours, theirs) in [
        ("apply → confirmed", &router.confirmed, &raw.confirmed),
        (
            "apply → first request served by the new slot",
            &router.first_served,
            &raw.first_served,
        ),
    ] {
        table.row(vec![
            name.into(),
            ms(ours.p50()),
            ms(ours.p99()),
            ms(theirs.p50()),
            ms(theirs.p99()),
            ratio(ours.p50(), theirs.p50()),
            ratio(ours.p99(), theirs.p99()),
        ]);
    }
    println!("{}", table.render());

    println!("## Requests failed while switching ({LOAD_CLIENTS} keep-alive clients, {LOAD_SWITCHES} switches)\n");
    let mut table = Table::new(&["router", "requests", "failed", "duration s"]);
    table.row(vec![
        "TraefikRouter".into(),
        requests.to_string(),
        failed.to_string(),
        format!("{:.1}", load_time.as_secs_f64()),
    ]);
    println!("{}", table.render());
    println!("total run time: {:.1} s", total.elapsed().as_secs_f64());
}
