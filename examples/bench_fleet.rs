//! Fleet benchmark (issue 14): how long `Fleet::deploy` takes for N = 1, 3 and 6 simulated hosts
//! in batches of 3, against one host's plain deploy, on the real components. Each host is its own
//! nginx (a local process) and its own containers (its own application name on the one Docker
//! Engine). Prints a markdown table: median of `--rounds` runs per row, its ratio to the single
//! deploy, and the target (6 hosts ≤ 2.2× one deploy).
//!
//! The single deploy is blue-green with automatic promotion, no rollback window (it completes),
//! the same health policy (Docker's check and `GET /health`, 100 ms, 2 successes), drain and stop
//! grace. The fleet's hosts differ only in what a fleet needs: a manual gate, parking, and a long
//! rollback window that the fleet ends itself once every host is switched. So a row's time is:
//! every host provisioned and health-checked at once, the canary switched, the batches switched,
//! every old slot drained and stopped at once.
//!
//! ```text
//! cargo run --release --example bench_fleet
//! cargo run --release --example bench_fleet -- --rounds 1     # a quick look
//! ```

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::fleet::{Fleet, FleetOutcome, FleetPlan};
use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::{AppName, BlueGreen, Deployer, Error, Promotion, Release, Result, Retirement};
use bluegreen_docker::DockerEnvironment;
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};
use common::docker_fixtures::{self as fixtures, DemoImages, TestApp};

/// Runs per row (`--rounds N`).
const ROUNDS: usize = 3;
/// The most hosts a row deploys to.
const HOSTS: usize = 6;
/// Hosts switched together after the canary.
const BATCH: usize = 3;
/// The target: a fleet of 6 in batches of 3 at most this many times one deploy.
const TARGET: f64 = 2.2;

/// One simulated host: two deployers over the same environment, router, journal and lock — a
/// plain one (the single deploy) and a fleet host.
struct Host {
    _app: TestApp,
    _nginx: NginxProcess,
    single: Deployer,
    fleet: Deployer,
}

async fn host(images: &DemoImages, i: usize) -> Result<Host> {
    let app = TestApp::new(&format!("bench-fleet-{i}"));
    let upstream = format!("fleet{i}");
    let nginx = common::nginx::start(&upstream)?;
    let environment = DockerEnvironment::connect(images.config(app.name())).await?;
    let router = Arc::new(common::nginx::router(&nginx, &upstream)?);
    let journal = Arc::new(InMemoryJournal::new());
    let lock = Arc::new(InMemoryLock::new());
    let retirement = |window| {
        Retirement::new()
            .rollback_window(window)
            .drain(Duration::from_millis(200))
            .stop_grace(Duration::from_secs(5))
    };
    let single = common::docker::builder(app.name(), &environment, router.clone())?
        .journal(journal.clone())
        .lock(lock.clone())
        .retirement(retirement(Duration::ZERO))
        .build()?;
    let fleet = common::docker::builder(app.name(), &environment, router)?
        .journal(journal)
        .lock(lock)
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .park_at_gates(true)
        .park_warm(true)
        .retirement(retirement(Duration::from_secs(600)))
        .build()?;
    Ok(Host {
        _app: app,
        _nginx: nginx,
        single,
        fleet,
    })
}

fn rounds() -> Result<usize> {
    let mut args = std::env::args().skip(1);
    let mut rounds = ROUNDS;
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--rounds", Some(n)) => {
                rounds = n
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| Error::invalid("--rounds", n.clone(), "a count of at least 1"))?;
            }
            _ => return Err(Error::invalid("argument", arg, "usage: bench_fleet [--rounds N]")),
        }
    }
    Ok(rounds)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let rounds = rounds()?;
    let connection = fixtures::engine()
        .await
        .map_err(|why| Error::backend("docker", why, false))?;
    println!("building the demo app (static) and FROM scratch images v1, v2 ...");
    let images = DemoImages::build(&connection.engine, &["v1", "v2"])
        .await
        .map_err(|why| Error::backend("docker", why, false))?;
    let mut hosts = Vec::with_capacity(HOSTS);
    for i in 0..HOSTS {
        hosts.push(host(&images, i).await?);
    }
    let fleet_of = |n: usize| -> Result<Fleet> {
        let named = hosts[..n]
            .iter()
            .enumerate()
            .map(|(i, h)| (format!("h{i}"), h.fleet.clone()))
            .collect();
        Fleet::new(AppName::new(format!("bench-{n}"))?, named, FleetPlan::new(BATCH)?)
    };
    // Every host on v1 first (not timed).
    fleet_of(HOSTS)?.deploy(Release::new("v1")?).await?;

    let sizes = [1, 3, HOSTS];
    let mut single = Samples::new();
    let mut fleets: Vec<Samples> = sizes.iter().map(|_| Samples::new()).collect();
    let mut n = 0usize;
    let mut next = || {
        n += 1;
        Release::new(if n % 2 == 1 { "v2" } else { "v1" })
    };
    for round in 0..rounds {
        let started = Instant::now();
        hosts[0].single.deploy(next()?).await?;
        single.push(started.elapsed());
        for (size, samples) in sizes.iter().zip(&mut fleets) {
            let fleet = fleet_of(*size)?;
            let started = Instant::now();
            let report = fleet.deploy(next()?).await?;
            samples.push(started.elapsed());
            if report.outcome != FleetOutcome::Completed {
                return Err(Error::backend(
                    "bench",
                    format!("fleet of {size}: {:?}", report.outcome),
                    false,
                ));
            }
        }
        println!("round {}/{rounds} done", round + 1);
    }

    let one = single.p50();
    let mut table = Table::new(&["deploy", "hosts", "runs", "median", "× one deploy", "target"]);
    table.row(vec![
        "single host (Deployer::deploy)".into(),
        "1".into(),
        single.len().to_string(),
        ms(one),
        "1.00".into(),
        String::new(),
    ]);
    for (size, samples) in sizes.iter().zip(&fleets) {
        let target = if *size == HOSTS {
            let ok = samples.p50().as_secs_f64() <= TARGET * one.as_secs_f64();
            format!("≤ {TARGET}× {}", if ok { "met" } else { "MISSED" })
        } else {
            String::new()
        };
        table.row(vec![
            format!("fleet, batches of {BATCH}"),
            size.to_string(),
            samples.len().to_string(),
            ms(samples.p50()),
            ratio(samples.p50(), one),
            target,
        ]);
    }
    println!("\n{}", table.render());
    Ok(())
}
