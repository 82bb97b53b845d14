//! Engine benchmark: what the deployer itself costs, with zero-latency in-memory backends.
//!
//! Prints markdown tables:
//! 1. per-deploy time over 1,000 deploys, engine vs. the same backend calls made by hand (the ratio
//!    is the engine's overhead), with an in-memory and with an fsync'd file journal;
//! 2. 100 applications deploying concurrently;
//! 3. `status` and `history` time as the journal grows to 10,000 entries (should stay flat);
//! 4. what observability costs a deploy: the same deploys with no metrics recorder and no
//!    webhooks, with Prometheus's recorder installed, and with it plus two webhooks (one live
//!    receiver on loopback, one dead URL) — target: under 1 ms added per deploy;
//! 5. peak memory.
//!
//! ```text
//! cargo run --release --example bench_engine
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::journal::{FileJournal, InMemoryJournal, Journal};
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter, ScriptedProbe};
use bluegreen_core::webhook::{Webhook, Webhooks};
use bluegreen_core::{
    AppName, Deployer, Environment, HealthPolicy, HealthProbe, ProbeTarget, Release, Result, Retirement, Router,
    Routes, Slot,
};
use bluegreen_testkit::webhook::{dead_url, Answer, Receiver};

const DEPLOYS: usize = 1_000;

fn instant_retirement() -> Retirement {
    Retirement::new()
        .rollback_window(Duration::ZERO)
        .drain(Duration::ZERO)
        .stop_grace(Duration::ZERO)
}

fn deployer(app: &str, journal: Arc<dyn Journal>) -> Result<Deployer> {
    Deployer::builder(AppName::new(app)?)
        .environment(Arc::new(InMemoryEnvironment::new()))
        .router(Arc::new(InMemoryRouter::new()))
        .probe(ScriptedProbe::always_healthy())
        .policy(HealthPolicy::default().interval(Duration::from_millis(1)))
        .retirement(instant_retirement())
        .journal(journal)
        .lock(Arc::new(InMemoryLock::new()))
        .build()
}

fn releases() -> impl Iterator<Item = Release> {
    (0..).map(|i| Release::new(format!("v{i}")).expect("valid"))
}

/// Per-deploy durations, sorted.
async fn engine_deploys(deployer: &Deployer, n: usize) -> Result<Vec<Duration>> {
    let mut times = Vec::with_capacity(n);
    for release in releases().take(n) {
        let t = Instant::now();
        deployer.deploy(release).await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

/// The same backend calls a blue-green deploy makes, by hand, without the engine.
async fn raw_deploys(n: usize) -> Result<Vec<Duration>> {
    let env = InMemoryEnvironment::new();
    let router = InMemoryRouter::new();
    let probe = ScriptedProbe::always_healthy();
    let mut live = Slot::Green;
    let mut times = Vec::with_capacity(n);
    for release in releases().take(n) {
        let t = Instant::now();
        let target = live.other();
        let endpoints = env.deploy(target, &release).await?;
        let _ = probe.check(&ProbeTarget::new(target, endpoints.first().clone())).await;
        router.apply(&Routes::only(target, endpoints)).await?;
        env.stop(live, Duration::ZERO).await?;
        live = target;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn mean(sorted: &[Duration]) -> Duration {
    sorted.iter().sum::<Duration>() / sorted.len() as u32
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile_dir();
    println!("## bluegreen engine benchmark ({DEPLOYS} sequential deploys, zero-latency in-memory backends)\n");

    let raw = raw_deploys(DEPLOYS).await?;
    let memory = engine_deploys(&deployer("bench-mem", Arc::new(InMemoryJournal::new()))?, DEPLOYS).await?;
    let file_journal = Arc::new(FileJournal::open(&dir, &AppName::new("bench-file")?)?);
    let file = engine_deploys(&deployer("bench-file", file_journal)?, DEPLOYS / 10).await?;

    println!("| per deploy | mean µs | p50 µs | p99 µs | mean vs raw |");
    println!("|---|---:|---:|---:|---:|");
    let raw_mean = us(mean(&raw));
    for (name, t) in [
        ("raw backend calls (no engine)", &raw),
        ("engine, in-memory journal", &memory),
        ("engine, file journal (fsync/entry)", &file),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1}x |",
            us(mean(t)),
            us(pct(t, 0.5)),
            us(pct(t, 0.99)),
            us(mean(t)) / raw_mean
        );
    }
    println!(
        "\nengine overhead per deploy (in-memory journal): {:.1} µs mean ({} journal entries per deploy)\n",
        us(mean(&memory)) - raw_mean,
        entries_per_deploy(&dir).await?
    );

    // 100 applications at once.
    let apps = 100;
    let per_app = 10;
    let deployers: Vec<Deployer> = (0..apps)
        .map(|i| deployer(&format!("app{i}"), Arc::new(InMemoryJournal::new())))
        .collect::<Result<_>>()?;
    let t = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for d in deployers {
        tasks.spawn(async move { engine_deploys(&d, per_app).await.map(|v| v.len()) });
    }
    let mut done = 0;
    while let Some(result) = tasks.join_next().await {
        done += result.expect("task")?;
    }
    let wall = t.elapsed();
    println!("| concurrency | apps | deploys | wall ms | deploys/s |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| {apps} apps at once, {per_app} deploys each | {apps} | {done} | {:.1} | {:.0} |\n",
        wall.as_secs_f64() * 1e3,
        done as f64 / wall.as_secs_f64()
    );

    // status / history as the journal grows.
    println!("| journal entries | status µs (median of 200) | history(10) µs (median of 200) |");
    println!("|---:|---:|---:|");
    let app = AppName::new("bench-history")?;
    let journal = Arc::new(FileJournal::open(&dir, &app)?);
    let d = deployer("bench-history", journal.clone())?;
    let mut entries = 0;
    let mut releases = releases();
    for target in [100usize, 1_000, 10_000] {
        while entries < target {
            d.deploy(releases.next().expect("endless")).await?;
            entries = journal.tail(1).await?.first().map_or(0, |e| e.seq as usize);
        }
        let status = median_of(200, || async { d.status().await.map(|_| ()) }).await?;
        let history = median_of(200, || async { d.history(10).await.map(|_| ()) }).await?;
        println!("| {entries} | {:.1} | {:.1} |", us(status), us(history));
    }

    observability_overhead().await?;

    if let Some(kib) = peak_rss_kib() {
        println!("\npeak memory (VmHWM) after all runs: {:.1} MiB", kib as f64 / 1024.0);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn entries_per_deploy(dir: &std::path::Path) -> Result<usize> {
    let journal = FileJournal::open(dir, &AppName::new("bench-file")?)?;
    let last = journal.tail(1).await?;
    Ok(last.first().map_or(0, |e| e.seq as usize) / (DEPLOYS / 10))
}

async fn median_of<F, Fut>(n: usize, mut f: F) -> Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(pct(&times, 0.5))
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("bluegreen-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Per-deploy time without a metrics recorder or webhooks, then (the recorder is global and stays
/// once installed) with Prometheus's recorder, then with it and two webhooks: a live receiver on
/// loopback and a dead URL (connection refused, retried, its queue overflowing into drops).
async fn observability_overhead() -> Result<()> {
    let off = engine_deploys(&deployer("bench-obs-off", Arc::new(InMemoryJournal::new()))?, DEPLOYS).await?;
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| bluegreen_core::Error::invalid("metrics recorder", "prometheus", e.to_string()))?;
    let metrics = engine_deploys(
        &deployer("bench-obs-metrics", Arc::new(InMemoryJournal::new()))?,
        DEPLOYS,
    )
    .await?;

    let receiver = Receiver::start(Answer::Status(200)).await;
    let hooks = vec![
        Webhook::new(&receiver.url("/live"))?.secret("bench")?,
        Webhook::new(&dead_url("/dead"))?,
    ];
    let d = deployer("bench-obs-hooks", Arc::new(InMemoryJournal::new()))?;
    let webhooks = Webhooks::spawn(d.subscribe(), hooks, Webhooks::DEFAULT_CAPACITY)?;
    let hooked = engine_deploys(&d, DEPLOYS).await?;
    let stats = webhooks.close(Duration::from_secs(2)).await;

    println!("\n| per deploy ({DEPLOYS} deploys each) | mean µs | p50 µs | p99 µs | added vs off, mean µs |");
    println!("|---|---:|---:|---:|---:|");
    let base = us(mean(&off));
    for (name, t) in [
        ("no recorder, no webhooks", &off),
        ("Prometheus recorder", &metrics),
        ("recorder + webhooks (1 live, 1 dead)", &hooked),
    ] {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:+.1} |",
            us(mean(t)),
            us(pct(t, 0.5)),
            us(pct(t, 0.99)),
            us(mean(t)) - base
        );
    }
    println!(
        "\nwebhooks: {} delivered, {} failed, {} dropped, {} retries; the live receiver got {} requests",
        stats.delivered,
        stats.failed,
        stats.dropped,
        stats.retries,
        receiver.received().len()
    );
    let rendered = prometheus.render();
    for line in rendered.lines().filter(|l| l.starts_with("bluegreen_webhook")) {
        println!("    {line}");
    }
    Ok(())
}
