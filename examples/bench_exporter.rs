//! Exporter benchmark (issue 13): what one scrape of `bluegreen exporter` costs with a journal of
//! 100, 1,000 and 10,000 entries. The exporter follows each journal forward, so after its first
//! scrape (which reads the whole file once) a scrape should cost what is new plus the number of
//! series — the same for every size. Prints one markdown table:
//!
//! - **first scrape**: the exporter's first `GET /metrics`, reading the whole journal;
//! - **scrape**: `GET /metrics` with nothing new (`--scrapes` of them);
//! - **after a deploy**: a deployment's entries (about ten) appended, then `GET /metrics`.
//!
//! The journals are real: ten canary deployments (every third rolled back) through the
//! in-memory backends with a state directory, then their lines repeated (each copy under new
//! deployment ids and sequence numbers) up to the size. The binary is the one built with this
//! example's profile (`cargo build --release -p bluegreen-cli` first, as `.ci/run` does), or
//! `--bin PATH`:
//!
//! ```text
//! cargo build --release -p bluegreen-cli
//! cargo run --release --example bench_exporter
//! ```

#[path = "common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{AppName, Canary, CanaryStep, Deployer, Error, HealthPolicy, Release, Result, Retirement};
use bluegreen_testkit::prometheus::http_get;
use bluegreen_testkit::stats::{ms, Samples, Table};
use serde_json::Value;

/// Scrapes with nothing new, per size (`--scrapes N`).
const SCRAPES: usize = 100;
/// Deployments appended, one scrape after each.
const DEPLOYS: usize = 20;
const SIZES: [usize; 3] = [100, 1_000, 10_000];
const APP: &str = "shop";

#[tokio::main]
async fn main() -> Result<()> {
    let (mut bin, mut scrapes) = (None, SCRAPES);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--bin" => bin = Some(PathBuf::from(value)),
            "--scrapes" => {
                scrapes = value
                    .parse()
                    .map_err(|_| Error::invalid("--scrapes", value, "a number"))?
            }
            other => return Err(Error::invalid("argument", other, "expected --bin PATH or --scrapes N")),
        }
    }
    let bin = common::binary::bluegreen(bin)?;
    let groups = seed_deployments().await?;
    let entries: usize = groups.iter().map(Vec::len).sum();
    println!(
        "seed: {} deployments, {entries} journal entries; {scrapes} scrapes per size",
        groups.len()
    );

    let mut table = Table::new(&[
        "journal entries",
        "journal KiB",
        "first scrape ms",
        "scrape p50 ms",
        "scrape p99 ms",
        "after a deploy p50 ms",
        "after a deploy p99 ms",
        "body bytes",
    ]);
    for size in SIZES {
        let dir = tempfile::tempdir().map_err(|e| Error::invalid("temp dir", "", e.to_string()))?;
        let mut journal = Repeater::new(&groups, dir.path().join(format!("{APP}.journal.jsonl")));
        while journal.written < size {
            journal.append_one(size - journal.written)?;
        }
        let kib = std::fs::metadata(&journal.path).map(|m| m.len() / 1024).unwrap_or(0);
        let exporter = Exporter::start(&bin, dir.path())?;
        let (first, body) = exporter.timed_scrape()?;
        let mut idle = Samples::new();
        for _ in 0..scrapes {
            idle.push(exporter.timed_scrape()?.0);
        }
        let mut after = Samples::new();
        for _ in 0..DEPLOYS {
            journal.append_one(usize::MAX)?;
            after.push(exporter.timed_scrape()?.0);
        }
        table.row(vec![
            size.to_string(),
            kib.to_string(),
            ms(first),
            ms(idle.p50()),
            ms(idle.p99()),
            ms(after.p50()),
            ms(after.p99()),
            body.len().to_string(),
        ]);
    }
    println!("\n{}", table.render());
    Ok(())
}

/// Ten canary deployments' journal lines, grouped by deployment, oldest first.
async fn seed_deployments() -> Result<Vec<Vec<Value>>> {
    let dir = tempfile::tempdir().map_err(|e| Error::invalid("temp dir", "", e.to_string()))?;
    let (env, router) = (InMemoryEnvironment::new(), InMemoryRouter::new());
    for n in 1..=10 {
        let release = Release::new(format!("v{n}"))?;
        if n % 3 == 0 {
            env.mark_unhealthy(&release);
        }
        let canary = Canary::new(vec![
            CanaryStep::SetWeight(20),
            CanaryStep::Analyse(
                Analysis::new(env.health_probe())
                    .count(2)
                    .interval(Duration::from_millis(1)),
            ),
        ])?;
        let deployer = Deployer::builder(AppName::new(APP)?)
            .environment(Arc::new(env.clone()))
            .router(Arc::new(router.clone()))
            .probe(env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(1))
                    .failure_threshold(2),
            )
            .retirement(Retirement::new().rollback_window(Duration::ZERO).drain(Duration::ZERO))
            .strategy(canary)
            .state_dir(dir.path())
            .build()?;
        let _ = deployer.deploy(release).await;
    }
    let text = std::fs::read_to_string(dir.path().join(format!("{APP}.journal.jsonl")))
        .map_err(|e| Error::invalid("seed journal", "", e.to_string()))?;
    let mut groups: Vec<Vec<Value>> = Vec::new();
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line).map_err(|e| Error::invalid("seed line", line, e.to_string()))?;
        let id = entry["deployment"]["id"].clone();
        match groups.last_mut() {
            Some(group) if group[0]["deployment"]["id"] == id => group.push(entry),
            _ => groups.push(vec![entry]),
        }
    }
    Ok(groups)
}

/// Appends the seed's deployments over and over, each copy under new ids and sequence numbers.
struct Repeater<'a> {
    groups: &'a [Vec<Value>],
    path: PathBuf,
    next: usize,
    written: usize,
}

impl<'a> Repeater<'a> {
    fn new(groups: &'a [Vec<Value>], path: PathBuf) -> Self {
        Repeater {
            groups,
            path,
            next: 0,
            written: 0,
        }
    }

    /// Appends the next deployment's entries, at most `limit` of them.
    fn append_one(&mut self, limit: usize) -> Result<()> {
        let group = &self.groups[self.next % self.groups.len()];
        let mut text = String::new();
        for entry in group.iter().take(limit) {
            let mut entry = entry.clone();
            self.written += 1;
            entry["seq"] = Value::from(self.written);
            let id = format!("{}-{}", entry["deployment"]["id"].as_str().unwrap_or("d"), self.next);
            entry["deployment"]["id"] = Value::from(id);
            text.push_str(&entry.to_string());
            text.push('\n');
        }
        self.next += 1;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|e| Error::invalid("journal", self.path.display().to_string(), e.to_string()))
    }
}

/// A running `bluegreen exporter`, killed when dropped.
struct Exporter {
    child: Child,
    addr: SocketAddr,
}

impl Exporter {
    fn start(bin: &Path, dir: &Path) -> Result<Self> {
        let failed = |e: String| Error::invalid("bluegreen exporter", bin.display().to_string(), e);
        let mut child = Command::new(bin)
            .args(["exporter", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or_else(|| failed("no stdout".into()))?;
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| failed(e.to_string()))?;
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| failed(format!("no address in {line:?}")))?;
        Ok(Exporter { child, addr })
    }

    /// One `GET /metrics`: its wall time and body.
    fn timed_scrape(&self) -> Result<(Duration, String)> {
        let started = Instant::now();
        let (status, body) = http_get(self.addr, "/metrics")
            .map_err(|e| Error::invalid("scrape", self.addr.to_string(), e.to_string()))?;
        let took = started.elapsed();
        if status != 200 {
            return Err(Error::invalid(
                "scrape",
                self.addr.to_string(),
                format!("HTTP {status}: {body}"),
            ));
        }
        Ok((took, body))
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
