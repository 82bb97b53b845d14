//! Analysis benchmark: how long after a bad release takes traffic a `PrometheusAnalysis` fails it.
//!
//! A real nginx, a real Prometheus (scraping every second) and demo-app slots, under load. v1 is
//! live; then, several times, a canary of a release answering 20 % 500s (`ERROR_RATE=0.2`) takes
//! 10 % of traffic and the error-rate analysis (one check a second) rolls it back. Each run's
//! detection time is read from the journal: from the entry where the router confirmed its weight
//! (the deployment's `traffic_since`) to the entry that started rolling back.
//!
//! Prints a markdown table: scrape interval, analysis interval, runs, min/median/max detection,
//! and the target (two scrape intervals, so `rate()` has two samples with errors, plus one
//! analysis interval, the next check) with whether every run met it. Exits non-zero when a run
//! was not rolled back by the analysis. Takes under a minute.
//!
//! ```text
//! cargo run --release --example bench_analysis
//! ```

#[path = "common/prometheus_canary.rs"]
mod rig;

use std::process::ExitCode;
use std::time::Duration;

use bluegreen_core::{Cause, Error};
use bluegreen_testkit::stats::{Samples, Table};
use rig::{release, Judged, Pace, Rig};

const RUNS: usize = 4;

const PACE: Pace = Pace {
    scrape: Duration::from_secs(1),
    analysis: Duration::from_secs(1),
    checks: 8,
};

fn seconds(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(rig) = Rig::start(PACE) else {
        return ExitCode::SUCCESS;
    };
    rig.deploy_first("v1").await;
    let load = rig.load();
    let deployer = rig.builder().strategy(rig.canary()).build().expect("a valid deployer");
    let mut detections = Samples::new();
    for run in 1..=RUNS {
        let bad = release(&format!("v3-{run}"));
        rig.env.with_vars(&bad, &[("ERROR_RATE", "0.2")]);
        match deployer.deploy(bad.clone()).await {
            Err(Error::RolledBack {
                deployment,
                cause: Cause::Analysis,
                ..
            }) => {
                let judged = Judged::of(&rig.entries(&deployment));
                let Some(detection) = judged.detection() else {
                    eprintln!("run {run}: no traffic or rollback journaled: {judged:?}");
                    return ExitCode::FAILURE;
                };
                println!("run {run}: {bad} failed {} after it took traffic", seconds(detection));
                detections.push(detection);
            }
            other => {
                eprintln!("run {run}: {bad} was not rolled back by the analysis: {other:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let tally = load.stop().await;
    println!("load through nginx during the runs: {tally}\n");

    let target = PACE.target();
    let max = detections.percentile(100.0);
    let mut table = Table::new(&[
        "scrape interval",
        "analysis interval",
        "runs",
        "min",
        "median",
        "max",
        "target (2 × scrape + analysis)",
        "met",
    ]);
    table.row(vec![
        seconds(PACE.scrape),
        seconds(PACE.analysis),
        detections.len().to_string(),
        seconds(detections.percentile(0.0)),
        seconds(detections.p50()),
        seconds(max),
        seconds(target),
        if max <= target { "yes" } else { "no" }.to_string(),
    ]);
    println!("time from the bad release taking traffic (weight > 0 confirmed) to the analysis failing it\n");
    print!("{}", table.render());
    ExitCode::SUCCESS
}
