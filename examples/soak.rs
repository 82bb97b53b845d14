//! Soak: many consecutive deploys through real nginx and real Docker under load, watching what a
//! long-running deployer leaves behind.
//!
//! The demo app runs in `FROM scratch` containers (v1 and v2 healthy, v3 built with
//! `FAIL_HEALTH=1`), nginx runs as a local process, and the deployer keeps a `FileJournal` and a
//! `FileLock` in a temporary directory. Deploys alternate v1 and v2; every 10th deploy is v3 and
//! must be rolled back for failed health; every 25th (that is not a v3) is `deployer.rollback()`.
//! Three kinds of client run throughout: a new connection per request, keep-alive retrying
//! idempotent requests, and keep-alive without retries (nginx 1.22 resets idle keep-alive
//! connections on reload, so those failures are reported, not fatal).
//!
//! Every 100 deploys (and after the warm-up) it prints a markdown table row: failed requests per
//! client kind, this process's RSS and open file descriptors, the journal's size, the
//! application's containers, and stray files next to nginx's router file.
//!
//! # Verdict
//! Exits non-zero when:
//! - a new-connection or retrying client saw a failed request;
//! - more containers than the two slots exist at any sample, or stray files grew past the
//!   warm-up sample (a leaked temp file per switch);
//! - RSS or file descriptors grew without bound. The baseline is the sample after the first
//!   10 deploys, once the allocator, the runtime's threads, the Docker client's connection pool
//!   and the load clients have reached their steady state. The last sample must stay within
//!   `2 × baseline RSS + 16 MiB` and `baseline fds + 32`: the slack absorbs allocator noise and
//!   the load clients' sockets (which open and close all the time), while a leak of one
//!   descriptor per deploy passes it within 32 deploys and a leak of 100 KiB per deploy doubles
//!   a ~10 MiB deployer over a 1,000-deploy run.
//!
//! The journal grows with every deploy by design (it is the audit log): its size is reported, not
//! judged.
//!
//! ```text
//! cargo run --release --example soak                      # 100 deploys
//! cargo run --release --example soak -- --deploys 1000    # or BLUEGREEN_SOAK_DEPLOYS=1000
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::journal::FileJournal;
use bluegreen_core::lock::FileLock;
use bluegreen_core::{Cause, Deployer, Error, HealthPolicy, Phase, Release, Result, Retirement};
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig, Tally};

#[path = "common/mod.rs"]
mod common;

use common::docker::DockerDemo;
use common::footprint::Footprint;

const UPSTREAM: &str = "shop";
/// Every this many deploys, v3 (which never becomes healthy) is deployed and must roll back.
const FAIL_EVERY: usize = 10;
/// Every this many deploys (unless it is a v3), the deployer rolls back to the previous release.
const ROLLBACK_EVERY: usize = 25;
/// The sample after this many deploys is the baseline of the growth rules.
const WARM_UP: usize = 10;
const CLIENTS_PER_KIND: usize = 4;
/// Each client's pause between requests: idle keep-alive connections are what nginx resets.
const CLIENT_PAUSE: Duration = Duration::from_millis(10);
const MODES: [ClientMode; 3] = [
    ClientMode::NewConnection,
    ClientMode::KeepAliveRetrying,
    ClientMode::KeepAlive,
];

/// How many deploys, and how often to print a row.
struct Args {
    deploys: usize,
    every: usize,
}

fn args() -> Result<Args> {
    let number = |what: &'static str, value: Option<String>| -> Result<usize> {
        let value = value.ok_or_else(|| Error::invalid(what, "", "a number must follow"))?;
        match value.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::invalid(what, value, "must be a number above zero")),
        }
    };
    let mut args = Args {
        deploys: match std::env::var("BLUEGREEN_SOAK_DEPLOYS") {
            Ok(n) => number("BLUEGREEN_SOAK_DEPLOYS", Some(n))?,
            Err(_) => 100,
        },
        every: 100,
    };
    let mut given = std::env::args().skip(1);
    while let Some(arg) = given.next() {
        match arg.as_str() {
            "--deploys" => args.deploys = number("--deploys", given.next())?,
            "--every" => args.every = number("--every", given.next())?,
            other => return Err(Error::invalid("argument", other, "expected --deploys N or --every N")),
        }
    }
    Ok(args)
}

/// What deploy number `n` does.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Deploys the healthy release that is not live.
    Healthy,
    /// Deploys v3, which must be rolled back.
    Failing,
    /// `deployer.rollback()` to the previous release.
    Rollback,
}

fn step(n: usize) -> Step {
    if n.is_multiple_of(FAIL_EVERY) {
        Step::Failing
    } else if n.is_multiple_of(ROLLBACK_EVERY) {
        Step::Rollback
    } else {
        Step::Healthy
    }
}

/// Runs deploy number `n`; returns the release live afterwards. Any outcome other than the
/// planned one is an error.
async fn run_step(deployer: &Deployer, n: usize, live: &Release) -> Result<Release> {
    let unexpected = |why: String| Error::invalid("soak step", n.to_string(), why);
    match step(n) {
        Step::Healthy => {
            let next = Release::new(if live.as_str() == "v1" { "v2" } else { "v1" })?;
            let report = deployer.deploy(next).await?;
            Ok(report.deployment.release().clone())
        }
        Step::Failing => match deployer.deploy(Release::new("v3")?).await {
            Err(Error::RolledBack {
                cause: Cause::Health, ..
            }) => Ok(live.clone()),
            Err(other) => Err(other),
            Ok(_) => Err(unexpected("v3 completed but must fail health".into())),
        },
        Step::Rollback => match deployer.rollback().await? {
            Some(report) if *report.deployment.phase() == Phase::Completed => Ok(report.deployment.release().clone()),
            other => Err(unexpected(format!("rollback ended as {other:?}"))),
        },
    }
}

/// One row of the table.
struct Row {
    deploys: usize,
    failed: [u64; 3],
    footprint: Footprint,
    elapsed: Duration,
}

impl Row {
    fn header() -> &'static str {
        "| deploys | failed: new conn | failed: keep-alive retrying | failed: keep-alive no retry | RSS MiB | fds | journal KiB | containers | stray files | elapsed s |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    }

    fn print(&self) {
        let f = &self.footprint;
        println!(
            "| {} | {} | {} | {} | {:.1} | {} | {:.1} | {} | {} | {:.0} |",
            self.deploys,
            self.failed[0],
            self.failed[1],
            self.failed[2],
            f.rss_kib as f64 / 1024.0,
            f.fds,
            f.journal_bytes as f64 / 1024.0,
            f.containers,
            f.stray_files,
            self.elapsed.as_secs_f64()
        );
    }
}

/// What is wrong with the run, judged by the rules in the crate docs; empty when nothing is.
fn verdict(rows: &[Row]) -> Vec<String> {
    let mut wrong = Vec::new();
    let baseline = rows.iter().find(|r| r.deploys >= WARM_UP).or(rows.first());
    let (Some(baseline), Some(last)) = (baseline, rows.last()) else {
        return vec!["no sample was taken".into()];
    };
    for (i, kind) in ["new-connection", "retrying keep-alive"].iter().enumerate() {
        if last.failed[i] > 0 {
            wrong.push(format!("{kind} clients saw {} failed requests", last.failed[i]));
        }
    }
    for row in rows {
        if row.footprint.containers > 2 {
            wrong.push(format!(
                "{} containers after {} deploys",
                row.footprint.containers, row.deploys
            ));
        }
    }
    let (base, end) = (&baseline.footprint, &last.footprint);
    if end.stray_files > base.stray_files {
        wrong.push(format!(
            "stray files grew from {} to {}",
            base.stray_files, end.stray_files
        ));
    }
    if end.rss_kib > 2 * base.rss_kib + 16 * 1024 {
        wrong.push(format!("RSS grew from {} KiB to {} KiB", base.rss_kib, end.rss_kib));
    }
    if end.fds > base.fds + 32 {
        wrong.push(format!("open fds grew from {} to {}", base.fds, end.fds));
    }
    wrong
}

#[tokio::main]
async fn main() -> Result<ExitCode> {
    let args = args()?;
    let demo = DockerDemo::start("soak").await?;
    let docker = common::docker_fixtures::engine()
        .await
        .map_err(|why| Error::backend("docker", why, false))?
        .docker;
    let nginx = common::nginx::start(UPSTREAM)?;
    let router = common::nginx::router(&nginx, UPSTREAM)?;
    let state = tempfile::tempdir().map_err(|e| Error::backend("soak", e.to_string(), false))?;
    let journal = FileJournal::open(state.path(), demo.app.name())?;
    let journal_path = journal.path().to_owned();
    let deployer = demo
        .builder(Arc::new(router))?
        .journal(Arc::new(journal))
        .lock(Arc::new(FileLock::new(state.path())?))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(50))
                .success_threshold(2)
                .failure_threshold(20)
                .deadline(Duration::from_secs(20)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::from_millis(200))
                .stop_grace(Duration::from_secs(5)),
        )
        .build()?;
    let router_file = nginx.router_file();
    let sample = || Footprint::sample(&docker, demo.app.name(), &journal_path, &router_file);

    println!("soak: {} deploys through nginx at {}", args.deploys, nginx.addr());
    let mut live = deployer.deploy(Release::new("v1")?).await?.deployment.release().clone();
    let loads: Vec<Load> = MODES
        .iter()
        .map(|&mode| {
            let config = LoadConfig::new(nginx.addr(), CLIENTS_PER_KIND, mode).pause(CLIENT_PAUSE);
            Load::start(config)
        })
        .collect();
    let failed = |loads: &[Load]| -> [u64; 3] { std::array::from_fn(|i| loads[i].tally().failures()) };

    let started = Instant::now();
    let mut rows = Vec::new();
    println!("\n{}", Row::header());
    let mut failure = None;
    for n in 1..=args.deploys {
        match run_step(&deployer, n, &live).await {
            Ok(now_live) => live = now_live,
            Err(e) => {
                failure = Some(format!("deploy {n} ({:?}): {}", step(n), e.chain()));
                break;
            }
        }
        if n == WARM_UP || n.is_multiple_of(args.every) || n == args.deploys {
            let row = Row {
                deploys: n,
                failed: failed(&loads),
                footprint: sample().await?,
                elapsed: started.elapsed(),
            };
            row.print();
            rows.push(row);
        }
    }
    let took = started.elapsed();
    let mut tallies: Vec<Tally> = Vec::new();
    for load in loads {
        tallies.push(load.stop().await);
    }

    println!();
    for (mode, tally) in MODES.iter().zip(&tallies) {
        println!(
            "{mode}: {} requests, {} failed ({tally})",
            tally.total(),
            tally.failures()
        );
    }
    let deploys = rows.last().map_or(0, |r| r.deploys);
    println!(
        "{deploys} deploys in {:.0} s ({:.2} s per deploy); live: {live}",
        took.as_secs_f64(),
        took.as_secs_f64() / deploys.max(1) as f64
    );
    let mut wrong = verdict(&rows);
    wrong.extend(failure);
    if wrong.is_empty() {
        println!("verdict: ok");
        return Ok(ExitCode::SUCCESS);
    }
    for why in &wrong {
        println!("verdict: FAILED: {why}");
    }
    Ok(ExitCode::FAILURE)
}
