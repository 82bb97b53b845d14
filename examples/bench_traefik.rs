//! Traefik switch benchmark: `TraefikRouter` against the raw tool doing the same work, in the same run.
//!
//! Starts real Traefik (`providersThrottleDuration: 0s`) and two demo apps on loopback, then switches
//! traffic back and forth three ways, interleaved switch by switch (so that a busy machine slows all
//! three alike), each on its own router and file:
//! - **raw**: write a temp file outside the watched directory, rename it in, poll
//!   `/api/http/services/<name>@file` every 10 ms until the weights show (what a deploy script does);
//! - **raw + fsync**: the same with the durability `TraefikRouter` keeps (fsync the temp file before
//!   the rename, fsync the directory after);
//! - **TraefikRouter**: `apply` (checks the API answers, writes atomically with fsync, confirms the
//!   router, the weights and the servers through the API), polling every 10 ms too.
//!
//! It prints markdown tables:
//! 1. switch latency p50/p99 — apply → confirmed, apply → first request served by the new slot, and
//!    first served → confirmed (how late each notices) — with ratios to raw;
//! 2. where the time goes: the raw + fsync way's steps, and `TraefikRouter`'s own timings (its
//!    debug events: API check, write, confirmation);
//! 3. requests failed while the router switches under concurrent keep-alive clients.
//!
//! ```text
//! cargo run --release --example bench_traefik
//! ```

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bluegreen_core::{AppName, Endpoint, Router, Routes, Slot, TrafficSplit};
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::load::{request_once, ClientMode, LoadConfig, Outcome};
use bluegreen_testkit::scenario::switches_under_load;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};
use bluegreen_testkit::traefik::TraefikProcess;
use bluegreen_traefik::TraefikRouter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::Layer as _;

const SWITCHES: usize = 120;
const POLL: Duration = Duration::from_millis(10);
const LOAD_CLIENTS: usize = 24;
const LOAD_SWITCHES: usize = 20;

/// Apply → confirmed, apply → first request answered by the new slot, and the difference; in
/// switch order, so that switch `i` of two ways (run back to back) can be compared.
#[derive(Default)]
struct Latencies {
    confirmed: Vec<Duration>,
    first_served: Vec<Duration>,
    /// Confirmed − first served, per switch (zero when confirmed first): how late a way notices.
    lag: Vec<Duration>,
    /// The raw ways' steps, timed.
    steps: Steps,
}

/// Durations of named steps.
type Steps = BTreeMap<&'static str, Samples>;

/// Collects the `*_ms` fields of `bluegreen_traefik`'s debug events (the router's own timings).
#[derive(Clone, Default)]
struct RouterTimings(Arc<Mutex<Steps>>);

impl RouterTimings {
    fn take(&self) -> Steps {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RouterTimings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields<'a>(&'a mut Steps);
        impl tracing::field::Visit for Fields<'_> {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name().ends_with("_ms") {
                    let step = self.0.entry(field.name()).or_default();
                    step.push(Duration::from_secs_f64(value / 1000.0));
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        event.record(&mut Fields(&mut self.0.lock().expect("not poisoned")));
    }
}

/// Sends requests for `host` through `proxy` until one is answered by `version`; the time since
/// `start` when it was.
async fn first_served(proxy: SocketAddr, host: String, version: String, start: Instant) -> Duration {
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

/// A way of switching traffic, with its own Traefik router, service and file.
enum Way {
    Router(Box<TraefikRouter>),
    Raw { name: &'static str, durable: Durable },
}

/// How durably a raw way writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durable {
    /// No fsync at all (what most scripts do).
    No,
    /// fsync the temp file, rename, fsync the directory, then poll (what `TraefikRouter` does).
    Fsync,
}

/// What every way needs: Traefik, the two apps, an HTTP client for the raw polls.
struct Bench {
    traefik: TraefikProcess,
    blue: DemoApp,
    green: DemoApp,
    client: reqwest::Client,
}

impl Way {
    fn label(&self) -> &'static str {
        match self {
            Way::Router(_) => "TraefikRouter",
            Way::Raw {
                durable: Durable::No, ..
            } => "raw: write + rename + API poll",
            Way::Raw {
                durable: Durable::Fsync,
                ..
            } => "raw + fsync: write + fsync + rename + fsync dir + API poll",
        }
    }

    fn host(&self) -> String {
        match self {
            Way::Router(router) => format!("{}.localhost", router.config().app),
            Way::Raw { name, .. } => format!("{name}.localhost"),
        }
    }

    /// Switches all traffic to `slot`; the raw ways' steps, timed.
    async fn switch(&self, bench: &Bench, slot: Slot) -> Vec<(&'static str, Duration)> {
        let (blue, green) = (bench.blue.endpoint(), bench.green.endpoint());
        match self {
            Way::Router(router) => {
                let routes =
                    Routes::new(TrafficSplit::all(slot), Some(blue.into()), Some(green.into())).expect("valid routes");
                router.apply(&routes).await.expect("switch");
                Vec::new()
            }
            Way::Raw { name, durable } => {
                raw_switch(bench, name, *durable, &raw_file(name, &blue, &green, slot), slot).await
            }
        }
    }
}

fn raw_file(name: &str, blue: &Endpoint, green: &Endpoint, slot: Slot) -> String {
    let (wb, wg) = if slot == Slot::Blue { (100, 0) } else { (0, 100) };
    format!(
        r#"[http.routers.{name}]
entryPoints = ["web"]
rule = "Host(`{name}.localhost`)"
service = "{name}"

[[http.services.{name}.weighted.services]]
name = "{name}-blue"
weight = {wb}

[[http.services.{name}.weighted.services]]
name = "{name}-green"
weight = {wg}

[[http.services.{name}-blue.loadBalancer.servers]]
url = "{}"

[[http.services.{name}-green.loadBalancer.servers]]
url = "{}"
"#,
        blue.url(""),
        green.url("")
    )
}

/// Writes `contents` to `staged` (fsynced unless [`Durable::No`]) and renames it to `target`
/// (then fsyncs the directory for [`Durable::Fsync`]); each step timed.
fn write_and_rename(staged: &Path, target: &Path, contents: &str, durable: Durable) -> Vec<(&'static str, Duration)> {
    let mut steps = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name| {
        steps.push((name, clock.elapsed()));
        clock = Instant::now();
    };
    let mut file = std::fs::File::create(staged).expect("create");
    file.write_all(contents.as_bytes()).expect("write");
    lap("write");
    if durable != Durable::No {
        file.sync_all().expect("fsync");
        lap("fsync");
    }
    drop(file);
    std::fs::rename(staged, target).expect("rename");
    lap("rename");
    if durable == Durable::Fsync {
        sync_dir(target);
        lap("fsync dir");
    }
    steps
}

fn sync_dir(file: &Path) {
    let dir = file.parent().expect("a directory");
    std::fs::File::open(dir).and_then(|d| d.sync_all()).expect("fsync dir");
}

/// The raw way: stage, rename in, poll the API until the weighted service shows the weights.
async fn raw_switch(
    bench: &Bench,
    name: &str,
    durable: Durable,
    contents: &str,
    slot: Slot,
) -> Vec<(&'static str, Duration)> {
    let traefik = &bench.traefik;
    let file = format!("{name}.toml");
    let polling = Instant::now();
    let target = traefik.watched_dir().join(&file);
    let mut steps = write_and_rename(&traefik.staging_dir().join(&file), &target, contents, durable);
    let weights = if slot == Slot::Blue { (100, 0) } else { (0, 100) };
    let url = format!("{}/api/http/services/{name}@file", traefik.api_url());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = bench.client.get(&url).send().await {
            if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&response.bytes().await.unwrap_or_default()) {
                let w = |i: usize| json["weighted"]["services"][i]["weight"].as_u64();
                if (w(0), w(1)) == (Some(weights.0), Some(weights.1)) {
                    let written: Duration = steps.iter().map(|(_, d)| *d).sum();
                    steps.push(("API poll", polling.elapsed().saturating_sub(written)));
                    return steps;
                }
            }
        }
        assert!(Instant::now() < deadline, "raw switch not live within 10 s");
        tokio::time::sleep(POLL).await;
    }
}

/// One switch of `way` to `slot`, timed.
async fn measure(bench: &Bench, way: &Way, slot: Slot, out: &mut Latencies) {
    let app = if slot == Slot::Blue { &bench.blue } else { &bench.green };
    let start = Instant::now();
    let watcher = tokio::spawn(first_served(
        bench.traefik.web_addr(),
        way.host(),
        app.version().to_owned(),
        start,
    ));
    let steps = way.switch(bench, slot).await;
    let confirmed = start.elapsed();
    for (name, took) in steps {
        out.steps.entry(name).or_default().push(took);
    }
    let served = watcher.await.expect("watcher");
    out.confirmed.push(confirmed);
    out.first_served.push(served);
    out.lag.push(confirmed.saturating_sub(served));
}

/// Every way switches [`SWITCHES`] times, interleaved: switch `i` of each way runs back to back,
/// in an order that rotates, so neither the machine's load nor Traefik's state favours one.
async fn bench_ways(bench: &Bench, ways: &[Way], timings: &RouterTimings) -> Vec<Latencies> {
    for way in ways {
        way.switch(bench, Slot::Blue).await;
    }
    timings.take();
    let mut out: Vec<Latencies> = ways.iter().map(|_| Latencies::default()).collect();
    for i in 0..SWITCHES {
        let slot = if i % 2 == 0 { Slot::Green } else { Slot::Blue };
        for k in 0..ways.len() {
            let w = (i + k) % ways.len();
            measure(bench, &ways[w], slot, &mut out[w]).await;
        }
    }
    for (way, latencies) in ways.iter().zip(&mut out) {
        if let Way::Router(_) = way {
            latencies.steps = timings.take();
        }
    }
    out
}

fn bench_router(bench: &Bench, app: &str) -> TraefikRouter {
    let traefik = &bench.traefik;
    TraefikRouter::builder(
        AppName::new(app).expect("valid"),
        traefik.watched_dir(),
        format!("Host(`{app}.localhost`)"),
    )
    .staging_directory(traefik.staging_dir())
    .entry_point("web")
    .api_url(traefik.api_url())
    .providers_throttle(Duration::ZERO)
    .poll_interval(POLL)
    .build()
    .expect("valid router")
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

fn samples(values: &[Duration]) -> Samples {
    let mut samples = Samples::new();
    for value in values {
        samples.push(*value);
    }
    samples
}

/// The median of `ours[i] − raw[i]` (switch `i` of each way ran back to back), in ms with a sign:
/// less sensitive than a ratio of medians to the load drifting during the run.
fn paired_diff(ours: &[Duration], raw: &[Duration]) -> String {
    let mut diffs: Vec<f64> = ours
        .iter()
        .zip(raw)
        .map(|(a, b)| (a.as_secs_f64() - b.as_secs_f64()) * 1000.0)
        .collect();
    if diffs.is_empty() {
        return "-".into();
    }
    diffs.sort_by(f64::total_cmp);
    format!("{:+.2}", diffs[diffs.len() / 2])
}

fn check_prerequisites() -> Result<Bench, String> {
    let traefik = TraefikProcess::start(Duration::ZERO)?;
    let (blue, green) = (DemoApp::start("v1", &[])?, DemoApp::start("v2", &[])?);
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())?;
    Ok(Bench {
        traefik,
        blue,
        green,
        client,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let bench = match check_prerequisites() {
        Ok(bench) => bench,
        Err(why) => {
            eprintln!("bench_traefik needs Traefik and the demo app: {why}");
            std::process::exit(2);
        }
    };
    let timings = RouterTimings::default();
    let only_router_debug =
        tracing_subscriber::filter::Targets::new().with_target("bluegreen_traefik", tracing::Level::DEBUG);
    tracing::subscriber::set_global_default(
        tracing_subscriber::registry().with(timings.clone().with_filter(only_router_debug)),
    )
    .expect("first subscriber");
    let total = Instant::now();
    let ways = [
        Way::Raw {
            name: "raw",
            durable: Durable::No,
        },
        Way::Raw {
            name: "rawsync",
            durable: Durable::Fsync,
        },
        Way::Router(Box::new(bench_router(&bench, "bench"))),
    ];
    let measured = bench_ways(&bench, &ways, &timings).await;
    let (requests, failed, load_time) = failures_under_load(&bench.traefik, &bench.blue, &bench.green).await;

    println!(
        "## Traefik switch latency ({SWITCHES} switches each, interleaved; providersThrottleDuration 0s, poll every {POLL:?})\n"
    );
    let raw = &measured[0];
    let mut table = Table::new(&[
        "measure",
        "way",
        "p50 ms",
        "p99 ms",
        "ratio p50 to raw",
        "ratio p99 to raw",
        "median paired diff to raw ms",
    ]);
    type Pick = fn(&Latencies) -> &[Duration];
    let measures: [(&str, Pick); 3] = [
        ("apply → confirmed", |l| &l.confirmed),
        ("apply → first request served by the new slot", |l| &l.first_served),
        ("first served → confirmed (lag)", |l| &l.lag),
    ];
    for (name, pick) in measures {
        for (way, latencies) in ways.iter().zip(&measured) {
            let (ours, theirs) = (samples(pick(latencies)), samples(pick(raw)));
            table.row(vec![
                name.into(),
                way.label().into(),
                ms(ours.p50()),
                ms(ours.p99()),
                ratio(ours.p50(), theirs.p50()),
                ratio(ours.p99(), theirs.p99()),
                paired_diff(pick(latencies), pick(raw)),
            ]);
        }
    }
    println!("{}", table.render());

    println!("## Where the time goes (raw + fsync's steps; TraefikRouter's own debug timings)\n");
    let mut table = Table::new(&["way", "step", "p50 ms", "p99 ms"]);
    for (way, latencies) in ways.iter().zip(&measured) {
        for (step, samples) in &latencies.steps {
            table.row(vec![
                way.label().into(),
                (*step).into(),
                ms(samples.p50()),
                ms(samples.p99()),
            ]);
        }
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
