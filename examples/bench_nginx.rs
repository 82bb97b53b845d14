//! nginx router benchmark: switch latency and failed requests under load, against a real nginx,
//! with the raw tools doing the same work measured in the same run.
//!
//! Starts an nginx master of its own per way of switching (in temporary prefixes, on loopback, so
//! none finds another's file) and two demo apps (v1, v2), then prints markdown tables:
//! 1. switch latency over alternating switches, interleaved round by round so that the load of
//!    the machine weighs on every row alike. Two times per switch: the **first answer** of the new
//!    version through nginx (an observer polls from the start of the switch, on a new connection
//!    every millisecond), and when the switch **returns**. The raw baseline does the router's
//!    work by hand: write the file, `nginx -t`, SIGHUP to the master (as the router does with a
//!    pid file; a row with `nginx -s reload` shows what that command adds), then poll until only the new
//!    generation answers (the new version answers through nginx — the observer's poll — and none
//!    of the workers that accepted before the reload still accepts, read from `/proc` every
//!    millisecond) — the guarantee `NginxRouter::apply` gives when it returns;
//! 2. requests counted under load while switching, by client mode (with think time between
//!    requests, as real clients have: an idle keep-alive connection is what nginx closes on
//!    reload), router and raw reload.
//!
//! ```text
//! cargo run --release --example bench_nginx
//! cargo run --release --example bench_nginx -- --rounds 10 --load-switches 0   # a quick look
//! RUST_LOG=bluegreen_nginx=debug cargo run --release --example bench_nginx   # per-step timings
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::{Endpoint, Router, Routes, Slot, TrafficSplit};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::demo::DemoApp;
use bluegreen_testkit::load::{request_once, ClientMode, Load, LoadConfig, Outcome, Tally};
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};

/// Switches per latency row (`--rounds N`).
const ROUNDS: usize = 30;
/// Switches per load row (`--load-switches N`; 0 skips the load table).
const LOAD_SWITCHES: usize = 10;
const CLIENTS: usize = 24;
/// Pause between one client's requests in the realistic rows.
const THINK: Duration = Duration::from_millis(5);
const SETTLE: Duration = Duration::from_millis(150);

/// How a series switches.
enum Switcher {
    Router(NginxRouter),
    Raw(RawSwitch, Wait, Reload),
}

/// One way of switching, its own nginx, and what it measured.
struct Series {
    label: &'static str,
    nginx: NginxProcess,
    switcher: Switcher,
    /// The row whose times this one is compared with.
    baseline: Option<usize>,
    first_answer: Samples,
    returned: Samples,
}

impl Series {
    fn new(
        label: &'static str,
        baseline: Option<usize>,
        switcher: impl FnOnce(&NginxProcess) -> Result<Switcher, String>,
    ) -> Result<Self, String> {
        let nginx = NginxProcess::start("app")?;
        Ok(Series {
            label,
            switcher: switcher(&nginx)?,
            nginx,
            baseline,
            first_answer: Samples::new(),
            returned: Samples::new(),
        })
    }

    /// Switches to `routes`, where `version` serves; returns when the switch returned and when
    /// the first answer of `version` came through nginx.
    async fn switch(&self, routes: &Routes, version: &str) -> Result<(Duration, Duration), String> {
        let started = Instant::now();
        let seen = Arc::new(AtomicBool::new(false));
        let observer = tokio::spawn(first_answer(
            self.nginx.addr(),
            version.to_owned(),
            started,
            Arc::clone(&seen),
        ));
        match &self.switcher {
            Switcher::Router(router) => router.apply(routes).await.map_err(|e| e.to_string())?,
            Switcher::Raw(raw, wait, reload) => {
                let (raw, wait, reload, routes) = (raw.clone(), *wait, *reload, routes.clone());
                tokio::task::spawn_blocking(move || raw.switch(&routes, &seen, wait, reload))
                    .await
                    .map_err(|e| e.to_string())??;
            }
        }
        let returned = started.elapsed();
        let first = observer.await.map_err(|e| e.to_string())??;
        Ok((returned, first))
    }
}

/// The router for `nginx`, with its pid file (confirmation waits out the old workers) or without.
fn router(nginx: &NginxProcess, pid_file: bool) -> Result<NginxRouter, String> {
    let builder = NginxRouter::builder(nginx.router_file(), "app")
        .nginx_binary(nginx.binary())
        .nginx_prefix(nginx.prefix())
        .nginx_conf(nginx.conf_path())
        .status_listen(nginx.status_addr());
    let builder = if pid_file {
        builder.pid_file(nginx.pid_file())
    } else {
        builder
    };
    builder.build().map_err(|e| e.to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), String> {
    // `RUST_LOG=bluegreen_nginx=debug` shows where each switch spends its time.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let started = Instant::now();
    let rounds = arg("--rounds", ROUNDS)?;
    let load_switches = arg("--load-switches", LOAD_SWITCHES)?;
    let (v1, v2) = (DemoApp::start("v1", &[])?, DemoApp::start("v2", &[])?);
    let apps = [(v1.endpoint(), "v1"), (v2.endpoint(), "v2")];
    let raw = |wait, reload| move |nginx: &NginxProcess| Ok(Switcher::Raw(RawSwitch::new(nginx), wait, reload));
    let mut series = [
        Series::new(
            "NginxRouter::apply (write + fsync, nginx -t, SIGHUP to the master, confirm: new generation only)",
            Some(1),
            |nginx| Ok(Switcher::Router(router(nginx, true)?)),
        )?,
        Series::new(
            "raw: write + nginx -t + SIGHUP to the master (`kill -HUP $(cat nginx.pid)`) + poll until only the new generation answers",
            Some(1),
            raw(Wait::OnlyNewGeneration, Reload::Sighup),
        )?,
        Series::new(
            "NginxRouter::apply without pid_file (nginx -s reload; confirm: the new generation answers)",
            Some(3),
            |nginx| Ok(Switcher::Router(router(nginx, false)?)),
        )?,
        Series::new(
            "raw: write + nginx -t + nginx -s reload + poll until the new version answers",
            Some(3),
            raw(Wait::NewVersion, Reload::Command),
        )?,
        Series::new(
            "raw, durable write: temp file + fsync + rename + fsync dir, then as row 2",
            None,
            raw(Wait::OnlyNewGenerationDurable, Reload::Sighup),
        )?,
        Series::new(
            "raw: as row 2 with `nginx -s reload` (which parses the whole config again) for the SIGHUP",
            None,
            raw(Wait::OnlyNewGeneration, Reload::Command),
        )?,
    ];
    for round in 0..=rounds {
        let (slot, (endpoint, version)) = if round % 2 == 0 {
            (Slot::Blue, &apps[0])
        } else {
            (Slot::Green, &apps[1])
        };
        let routes = Routes::only(slot, endpoint.clone());
        for series in series.iter_mut() {
            let (returned, first) = series.switch(&routes, version).await?;
            // The first round only sets the starting point.
            if round > 0 {
                series.returned.push(returned);
                series.first_answer.push(first);
            }
            tokio::time::sleep(SETTLE).await;
        }
    }
    let check = nginx_t_samples(&series[0].nginx, rounds)?;

    println!("## nginx switch latency ({rounds} switches each, interleaved; ms from the start of the switch)\n");
    println!("nginx: {}\n", nginx_version(&series[0].nginx));
    let mut table = Table::new(&[
        "switch",
        "first answer p50",
        "first answer p99",
        "returns p50",
        "returns p99",
        "first answer vs raw (p50)",
        "returns vs raw (p50)",
    ]);
    for s in &series {
        let vs = |of: fn(&Series) -> &Samples| match s.baseline {
            Some(b) => ratio(of(s).p50(), of(&series[b]).p50()),
            None => "-".into(),
        };
        table.row(vec![
            s.label.into(),
            ms(s.first_answer.p50()),
            ms(s.first_answer.p99()),
            ms(s.returned.p50()),
            ms(s.returned.p99()),
            vs(|s| &s.first_answer),
            vs(|s| &s.returned),
        ]);
    }
    table.row(vec![
        "`nginx -t` alone (one step of every switch above)".into(),
        "-".into(),
        "-".into(),
        ms(check.p50()),
        ms(check.p99()),
        "-".into(),
        "-".into(),
    ]);
    println!("{}", table.render());
    println!(
        "NginxRouter::apply against the durable raw write (row 5), p50: first answer {}, returns {}; \
         against the raw switch reloading with `nginx -s reload` (row 6): first answer {}, returns {}.\n",
        ratio(series[0].first_answer.p50(), series[4].first_answer.p50()),
        ratio(series[0].returned.p50(), series[4].returned.p50()),
        ratio(series[0].first_answer.p50(), series[5].first_answer.p50()),
        ratio(series[0].returned.p50(), series[5].returned.p50()),
    );
    println!(
        "Rows 1, 2 and 5 give the same guarantee when they return: every new connection reaches the new \
         routes (nginx lets the old workers accept for ~100 ms after the new ones start). Rows 3–4 \
         return at the first answer of the new generation, while old workers may still answer. \
         The router also fsyncs the file and its directory (row 5 does that by hand: the cost of \
         durability on this disk) and restores the file on any failure.\n"
    );

    if load_switches > 0 {
        println!(
            "## Requests under load ({CLIENTS} clients, {load_switches} switches, {} ms between)\n",
            SETTLE.as_millis()
        );
        let mut table = Table::new(&[
            "switching with",
            "client mode",
            "think time",
            "requests",
            "failed",
            "failed per switch",
            "retried attempts",
        ]);
        let Switcher::Router(router) = &series[0].switcher else {
            return Err("the first series is the router's".into());
        };
        let plain = series[1].nginx.raw_reload();
        let both = [
            (router as &dyn Router, &series[0].nginx),
            (&plain as &dyn Router, &series[1].nginx),
        ];
        for (mode, think) in [
            (ClientMode::NewConnection, THINK),
            (ClientMode::KeepAliveRetrying, THINK),
            (ClientMode::KeepAlive, THINK),
            (ClientMode::KeepAlive, Duration::ZERO),
        ] {
            for (switcher, nginx) in both {
                let load = LoadConfig::new(nginx.addr(), CLIENTS, mode).pause(think);
                let tally = switches_under_load(load_switches, switcher, load, &v1.endpoint(), &v2.endpoint()).await?;
                table.row(vec![
                    switcher.name().into(),
                    mode.to_string(),
                    if think.is_zero() {
                        "none (busy connections)".into()
                    } else {
                        format!("{} ms", think.as_millis())
                    },
                    tally.total().to_string(),
                    tally.failures().to_string(),
                    format!("{:.1}", tally.failures() as f64 / load_switches as f64),
                    tally.retried.to_string(),
                ]);
            }
        }
        println!("{}", table.render());
        println!(
            "nginx 1.22 closes idle keep-alive connections when it retires the old workers (~100 ms \
             after a reload). These clients, like hyper's, curl's or Go's connection pools, notice a \
             connection closed while idle and reconnect, so a request fails only when it races the \
             close; retrying clients lose none. The rows with think time hold idle connections \
             between requests, as real clients do; the row without keeps its connections busy.\n"
        );
    }
    println!("(whole run: {:.1} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Polls `proxy`, on a new connection every millisecond, until `version` answers; returns when
/// that happened, from `started`, and sets `seen`.
///
/// It is the only client of `proxy` during a switch, and it is the raw switches' own poll (they
/// read `seen`): nginx hands a new connection to an idle worker of the old generation first for
/// as long as those accept, so a second client polling alongside would make the new generation
/// answer earlier (a busy old worker lets a new one accept) and favour whichever row has one.
async fn first_answer(
    proxy: SocketAddr,
    version: String,
    started: Instant,
    seen: Arc<AtomicBool>,
) -> Result<Duration, String> {
    let load = LoadConfig::new(proxy, 1, ClientMode::NewConnection);
    while started.elapsed() < Duration::from_secs(10) {
        if let Outcome::Response {
            status: 200,
            version: v,
        } = request_once(&load).await
        {
            if v == version {
                seen.store(true, Ordering::SeqCst);
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Err(format!("{version} never answered through nginx"))
}

/// Switches between the two apps `switches` times through `router` while `load` runs, with
/// `SETTLE` between switches; every request is counted.
async fn switches_under_load(
    switches: usize,
    router: &dyn Router,
    load: LoadConfig,
    blue: &Endpoint,
    green: &Endpoint,
) -> Result<Tally, String> {
    let both = |slot| {
        Routes::new(
            TrafficSplit::all(slot),
            Some(blue.clone().into()),
            Some(green.clone().into()),
        )
    };
    let apply = |slot| async move {
        let routes = both(slot).map_err(|e| e.to_string())?;
        router
            .apply(&routes)
            .await
            .map_err(|e| format!("switch to {slot} failed: {e}"))
    };
    apply(Slot::Blue).await?;
    let load = Load::start(load);
    tokio::time::sleep(SETTLE).await;
    for i in 0..switches {
        apply(if i % 2 == 0 { Slot::Green } else { Slot::Blue }).await?;
        tokio::time::sleep(SETTLE).await;
    }
    Ok(load.stop().await)
}

/// How a raw switch writes, and when it stops waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// The new version answers and no pre-reload worker still accepts.
    OnlyNewGeneration,
    /// The same, the file written durably as the router writes it.
    OnlyNewGenerationDurable,
    /// The new version answers.
    NewVersion,
}

/// How a raw switch tells nginx to reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reload {
    /// `nginx -s reload`: nginx parses its whole configuration to find the pid file, then signals.
    Command,
    /// SIGHUP to the master named by the pid file (what `nginx -s reload` ends in, and what the
    /// router does when it has the pid file).
    Sighup,
}

/// The raw tools, by hand, on blocking calls (run it on a blocking thread): what an operator's
/// script does, with nothing in between.
#[derive(Debug, Clone)]
struct RawSwitch {
    binary: PathBuf,
    prefix: PathBuf,
    conf: PathBuf,
    file: PathBuf,
    pid_file: PathBuf,
}

impl RawSwitch {
    fn new(nginx: &NginxProcess) -> Self {
        RawSwitch {
            binary: nginx.binary().to_owned(),
            prefix: nginx.prefix().to_owned(),
            conf: nginx.conf_path(),
            file: nginx.router_file(),
            pid_file: nginx.pid_file(),
        }
    }

    /// Writes `routes`, tests, reloads, then waits for the first answer of the new version
    /// through nginx (`seen`, set by the switch's observer) and, as `wait` says, for the old
    /// workers to stop accepting.
    fn switch(&self, routes: &Routes, seen: &AtomicBool, wait: Wait, reload: Reload) -> Result<(), String> {
        let mut text = String::from("upstream app {\n");
        for (_, endpoint, weight) in routes.servers() {
            text.push_str(&format!("    server {} weight={weight};\n", endpoint.authority()));
        }
        text.push_str("    keepalive 32;\n}\n");
        if wait == Wait::OnlyNewGenerationDurable {
            write_durably(&self.file, &text)?;
        } else {
            std::fs::write(&self.file, text).map_err(|e| e.to_string())?;
        }
        self.nginx(&["-t", "-q"])?;
        let master: i32 = std::fs::read_to_string(&self.pid_file)
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e| format!("pid file: {e}"))?;
        let old = match wait {
            Wait::OnlyNewGeneration | Wait::OnlyNewGenerationDurable => accepting_workers(master),
            Wait::NewVersion => Vec::new(),
        };
        match reload {
            Reload::Command => self.nginx(&["-s", "reload"])?,
            Reload::Sighup => {
                let pid = rustix::process::Pid::from_raw(master).ok_or("pid file: not a pid")?;
                rustix::process::kill_process(pid, rustix::process::Signal::HUP).map_err(|e| e.to_string())?;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if seen.load(Ordering::SeqCst) && old.iter().all(|&pid| !accepting(master, pid)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Err("raw switch: not served within 10 s".into())
    }

    fn nginx(&self, args: &[&str]) -> Result<(), String> {
        let status = Command::new(&self.binary)
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .status()
            .map_err(|e| e.to_string())?;
        status
            .success()
            .then_some(())
            .ok_or(format!("nginx {args:?}: {status}"))
    }
}

/// A temporary file in `path`'s directory, written and fsynced, renamed over `path`, and the
/// directory fsynced: what `NginxRouter` does, by hand.
fn write_durably(path: &std::path::Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let dir = path.parent().ok_or("no parent directory")?;
    let temp = dir.join(".raw-bench.tmp");
    let mut file = std::fs::File::create(&temp).map_err(|e| e.to_string())?;
    file.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    std::fs::rename(&temp, path).map_err(|e| e.to_string())?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| e.to_string())
}

/// The master's workers accepting connections, from its `/proc` children list.
fn accepting_workers(master: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{master}/task/{master}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .filter(|&pid| accepting(master, pid))
        .collect()
}

/// Whether `pid` is a worker of `master` that accepts connections (not shutting down).
fn accepting(master: i32, pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let parent = stat
        .rfind(')')
        .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
        .and_then(|p| p.parse::<i32>().ok());
    let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let title = String::from_utf8_lossy(&title);
    parent == Some(master) && title.contains("worker process") && !title.contains("shutting down")
}

/// The value after `name` on the command line, `default` without one.
fn arg(name: &str, default: usize) -> Result<usize, String> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("{name} takes a number")),
    }
}

/// How long `nginx -t` takes on this config, `rounds` times.
fn nginx_t_samples(nginx: &NginxProcess, rounds: usize) -> Result<Samples, String> {
    let mut samples = Samples::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let status = Command::new(nginx.binary())
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
    Command::new(nginx.binary())
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().to_owned())
        .unwrap_or_else(|e| e.to_string())
}
