//! CLI benchmark (issue 12): what running the `bluegreen` binary costs against the same operation
//! through the library in-process, on the same application, state directory, Docker Engine and
//! nginx. Prints two markdown tables:
//! 1. **status**: `bluegreen status` (the built binary, run `--status-runs` times, wall time from
//!    spawn to exit: process start, config parse, Docker connect, journal tail, both slots
//!    inspected, the router's file read) against `Deployer::status` on one deployer built once,
//!    with a journal of 10,000 entries. The target (issue 12) is p50 ≤ 50 ms for the binary;
//! 2. **deploy**: `bluegreen deploy vN` against `Deployer::deploy` of the same release with the
//!    same settings (blue-green, auto promotion, Docker health and `GET /health`, the old slot
//!    left warm as the CLI leaves it), alternated round by round (`--rounds`, v1 and v2 in turn).
//!
//! The ratio column compares each row's p50 with the library's row of its kind.
//!
//! Why Docker and nginx: the CLI reaches only the backends a config file can name, so the
//! in-memory backends are out of its reach; both sides here use the real ones. The journal is
//! filled to 10,000 entries after the deploy rounds by blue-green deploys through the in-memory
//! backends under the same application and state directory (about 1,250 deploys of 8 entries,
//! a few seconds; a real deploy takes a second or more). Its last deployment is therefore one the
//! containers do not run: `status` reports that drift, doing the same work it always does.
//!
//! The binary is the one built with this example's profile, next to it in the target directory
//! (`target/release/bluegreen` for `--release`): build it first, as `.ci/run` does, or pass
//! `--bin PATH`:
//!
//! ```text
//! cargo build --release -p bluegreen-cli
//! cargo run --release --example bench_cli
//! cargo run --release --example bench_cli -- --status-runs 20 --rounds 1   # a quick look
//! ```

/// The CLI end-to-end tests' `bluegreen.toml`, shared by path: the same file they deploy with.
#[allow(dead_code)]
#[path = "../bluegreen-cli/tests/common/config.rs"]
mod cli_config;
#[path = "common/mod.rs"]
mod common;
/// What `cli_config` names as `super::fixtures`.
use common::docker_fixtures as fixtures;
/// The `Host` the router serves (`cli_config` names it `super::HOST`).
const HOST: &str = "shop.local";

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::journal::{FileJournal, Journal};
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter, ScriptedProbe};
use bluegreen_core::{AppName, BlueGreen, Deployer, Error, HealthPolicy, Release, Result, Retirement};
use bluegreen_docker::DockerEnvironment;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};
use common::docker::DockerDemo;

/// Runs of `status` per row (`--status-runs N`).
const STATUS_RUNS: usize = 50;
/// Deploys per row (`--rounds N`): each round deploys once through the binary, once in-process.
const ROUNDS: usize = 3;
/// The journal `status` reads.
const JOURNAL_ENTRIES: u64 = 10_000;
/// Issue 12's target for `bluegreen status`.
const TARGET_STATUS_P50: Duration = Duration::from_millis(50);
/// How long one run of the binary may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// What the command line asked for.
struct Args {
    bin: Option<PathBuf>,
    status_runs: usize,
    rounds: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        bin: None,
        status_runs: STATUS_RUNS,
        rounds: ROUNDS,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| Error::invalid("arguments", name, "needs a value"))
        };
        let count = |name: &'static str, v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| Error::invalid(name, v, "expected a positive number"))
        };
        match arg.as_str() {
            "--bin" => args.bin = Some(value("--bin")?.into()),
            "--status-runs" => args.status_runs = count("--status-runs", value("--status-runs")?)?,
            "--rounds" => args.rounds = count("--rounds", value("--rounds")?)?,
            other => {
                return Err(Error::invalid(
                    "arguments",
                    other,
                    "expected --bin PATH, --status-runs N or --rounds N",
                ))
            }
        }
    }
    Ok(args)
}

/// Runs the binary with `args` on `config`; its wall time, or an error with what it printed when
/// it does not exit 0.
async fn run_cli(bin: &Path, config: &Path, args: &[&str]) -> Result<Duration> {
    let start = Instant::now();
    let child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BLUEGREEN_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, child)
        .await
        .map_err(|_| Error::backend("bluegreen", format!("{args:?} ran past {RUN_TIMEOUT:?}"), false))?
        .map_err(|e| Error::backend("bluegreen", format!("cannot run {}: {e}", bin.display()), false))?;
    let took = start.elapsed();
    if !out.status.success() {
        return Err(Error::backend(
            "bluegreen",
            format!(
                "`bluegreen {}` exited with {}:\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            false,
        ));
    }
    Ok(took)
}

/// Blue-green deploys through the in-memory backends (always healthy, no rollback window, drain
/// or stop grace) under `app`, appending to the journal in `state`, until it holds `entries`
/// entries; returns how many it holds.
async fn fill_journal(app: &AppName, state: &Path, entries: u64) -> Result<u64> {
    let journal = Arc::new(FileJournal::open(state, app)?);
    let deployer = Deployer::builder(app.clone())
        .environment(Arc::new(InMemoryEnvironment::new()))
        .router(Arc::new(InMemoryRouter::new()))
        .probe(ScriptedProbe::always_healthy())
        .policy(HealthPolicy::default().interval(Duration::from_millis(1)))
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::ZERO)
                .stop_grace(Duration::ZERO),
        )
        .journal(journal.clone())
        .lock(Arc::new(InMemoryLock::new()))
        .who("bench-fill")
        .build()?;
    for n in 1.. {
        let held = journal.tail(1).await?.first().map_or(0, |e| e.seq);
        if held >= entries {
            return Ok(held);
        }
        deployer.deploy(Release::new(format!("fill-{n}"))?).await?;
    }
    unreachable!("an endless range")
}

fn row(table: &mut Table, what: &str, samples: &Samples, base: &Samples) {
    table.row(vec![
        what.to_owned(),
        samples.len().to_string(),
        ms(samples.p50()),
        ms(samples.percentile(90.0)),
        ms(samples.p99()),
        ratio(samples.p50(), base.p50()),
    ]);
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let bin = common::binary::bluegreen(args.bin)?;
    let demo = DockerDemo::start("bench-cli").await?;
    let app = demo.app.name().clone();
    let upstream = format!("{}_up", app.as_str().replace('-', "_"));
    let nginx = common::nginx::start(&upstream)?;
    let dir = tempfile::tempdir().map_err(|e| Error::backend("temp dir", e.to_string(), false))?;
    let state = dir.path().join("state");
    let config_path = dir.path().join("bluegreen.toml");
    let router = cli_config::nginx_router(&nginx, &upstream);
    let strategy = "blue_green = { promotion = \"auto\" }";
    let text = cli_config::config(app.as_str(), demo.images.repository(), &state, &router, strategy);
    std::fs::write(&config_path, text).map_err(|e| Error::backend("bluegreen.toml", e.to_string(), false))?;

    // The library's deployer: what bluegreen-cli's build.rs builds from the same file.
    let docker = common::docker::config(&app, demo.images.repository(), std::process::id())
        .env("DEMO_SECRET", cli_config::SECRET);
    let environment = DockerEnvironment::with_engine(demo.environment.engine().clone(), docker);
    let router = Arc::new(common::nginx::router(&nginx, &upstream)?);
    let deployer = common::docker::builder(&app, &environment, router)?
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(100))
                .success_threshold(2)
                .failure_threshold(15)
                .error_threshold(50)
                .deadline(Duration::from_secs(20)),
        )
        .strategy(BlueGreen::new())
        .approval_timeout(Duration::from_secs(600))
        .state_dir(&state)
        .park_at_gates(true)
        .park_warm(true)
        .who("bench-library")
        .build()?;

    // Deploys, alternated: the binary, then the library, v1 and v2 in turn.
    println!(
        "deploying {} round(s) through the binary and the library ...",
        args.rounds
    );
    let (mut cli_deploys, mut lib_deploys) = (Samples::new(), Samples::new());
    let mut version = 0usize;
    let mut next = || {
        version += 1;
        if version % 2 == 1 {
            "v1"
        } else {
            "v2"
        }
    };
    for _ in 0..args.rounds {
        cli_deploys.push(run_cli(&bin, &config_path, &["deploy", next()]).await?);
        let release = Release::new(next())?;
        let start = Instant::now();
        deployer.deploy(release).await?;
        lib_deploys.push(start.elapsed());
    }
    // Let the rollback window pass, and retire the warm slot, so the journal ends settled.
    tokio::time::sleep(Duration::from_millis(600)).await;
    deployer.tick().await?;

    println!("filling the journal to {JOURNAL_ENTRIES} entries (in-memory backends, same app and state directory) ...");
    let entries = fill_journal(&app, &state, JOURNAL_ENTRIES).await?;

    // status, interleaved: one run of the binary, one call in-process.
    let (mut cli_status, mut lib_status) = (Samples::new(), Samples::new());
    for _ in 0..args.status_runs {
        cli_status.push(run_cli(&bin, &config_path, &["status"]).await?);
        let start = Instant::now();
        deployer.status().await?;
        lib_status.push(start.elapsed());
    }

    println!("\n### status, journal of {entries} entries (Docker + nginx)\n");
    let mut table = Table::new(&["status", "runs", "p50 ms", "p90 ms", "p99 ms", "ratio (p50)"]);
    row(&mut table, "library: `Deployer::status`", &lib_status, &lib_status);
    row(&mut table, "binary: `bluegreen status`", &cli_status, &lib_status);
    println!("{}", table.render());
    let verdict = if cli_status.p50() <= TARGET_STATUS_P50 {
        "met"
    } else {
        "missed"
    };
    println!(
        "target: `bluegreen status` p50 ≤ {} ms: {verdict} ({} ms)",
        TARGET_STATUS_P50.as_millis(),
        ms(cli_status.p50())
    );

    println!("\n### deploy, blue-green (Docker + nginx)\n");
    let mut table = Table::new(&["deploy", "deploys", "p50 ms", "p90 ms", "p99 ms", "ratio (p50)"]);
    row(&mut table, "library: `Deployer::deploy`", &lib_deploys, &lib_deploys);
    row(&mut table, "binary: `bluegreen deploy`", &cli_deploys, &lib_deploys);
    println!("{}", table.render());
    drop(nginx);
    Ok(())
}
