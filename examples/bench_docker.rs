//! Docker deploy benchmark: what a bluegreen deploy on the real Docker Engine spends its time on,
//! next to a minimal shell-style deploy of the same image in the same run.
//!
//! Three ways to deploy the demo app (a `FROM scratch` image, one tag per release), alternated so
//! they share the machine's noise:
//! 1. the engine (`Deployer`) with `DockerEnvironment`, probing `GET /health` (`HttpProbe`, every
//!    20 ms);
//! 2. the same with `DockerHealthProbe` (Docker's own `State.Health`, health check every 100 ms);
//! 3. a shell deploy as people write it: `docker rm -f` the stale colour, `docker run -d --init`,
//!    `docker port`, a `curl -f …/health` loop with `sleep 0.1`, the upstream file rewritten and
//!    `nginx -s reload`, `docker stop -t 2` the old colour.
//!
//! Each way switches traffic through its own real nginx (a local process in a temporary prefix):
//! the engine with `NginxRouter` (`nginx -t`, reload, confirmed by the new generation, drain
//! observed), the shell with a plain write and `nginx -s reload`, unconfirmed.
//!
//! Phases: *create* (from the deploy's start to the engine's `create` event: checking the image
//! and removing the stale container included), *start* (`create` → `start` event), *ready* (the
//! engine's `Verifying` phase; for the shell, `docker run` returning → the first 200), *app
//! listening → declared healthy* (the app's `listening on` log line, by Docker's timestamp → the
//! end of `Verifying`, or the shell loop's first 200), *switch* (`NginxRouter::apply`; the
//! shell's write + reload), *drain* (until nginx's old workers are gone, at most 2 s; the shell
//! does not wait), *stop old*. Engine phases come from `Deployer::subscribe`; container events from the
//! Engine's event stream.
//!
//! ```text
//! cargo run --release --example bench_docker
//! ```

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::common::docker_fixtures::{engine, DemoImages, TestApp, DEMO_PORT};
use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{
    Deployer, Endpoint, Event, EventKind, HealthPolicy, HealthProbe, Phase, Release, Retirement, Router, Routes, Slot,
};
use bluegreen_docker::DockerEnvironment;
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::stats::{ms, ratio, Samples, Table};
use bollard::query_parameters::{EventsOptions, LogsOptions};
use bollard::Docker;
use futures_util::StreamExt;

#[path = "common/mod.rs"]
mod common;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Measured deploys per way (after one warm-up deploy that makes a slot live).
const DEPLOYS: usize = 6;
const LABEL: &str = "bluegreen-bench";

/// The phases of one deploy; `None` where a way has no such phase.
#[derive(Debug, Default)]
struct Phases {
    create: Option<Duration>,
    start: Option<Duration>,
    ready: Option<Duration>,
    declared_healthy: Option<Duration>,
    switch: Option<Duration>,
    drain: Option<Duration>,
    stop: Option<Duration>,
    total: Option<Duration>,
}

const ROWS: [&str; 8] = [
    "create (incl. image check, stale removal)",
    "start",
    "ready (verifying)",
    "**app listening → declared healthy**",
    "switch (nginx)",
    "drain",
    "stop old",
    "total",
];

impl Phases {
    fn get(&self, row: usize) -> Option<Duration> {
        [
            self.create,
            self.start,
            self.ready,
            self.declared_healthy,
            self.switch,
            self.drain,
            self.stop,
            self.total,
        ][row]
    }
}

/// Container events (`create`, `start`, …) by container name, with the engine's times.
#[derive(Clone, Default)]
struct ContainerEvents(Arc<Mutex<Vec<(String, String, SystemTime)>>>);

impl ContainerEvents {
    fn watch(docker: &Docker) -> Self {
        let events = ContainerEvents::default();
        let options = EventsOptions {
            filters: Some(HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("label".to_string(), vec![format!("{LABEL}={}", std::process::id())]),
            ])),
            ..Default::default()
        };
        let mut stream = docker.events(Some(options));
        let sink = events.clone();
        tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                let name = event
                    .actor
                    .and_then(|a| a.attributes)
                    .and_then(|mut a| a.remove("name"))
                    .unwrap_or_default();
                let at = SystemTime::UNIX_EPOCH + Duration::from_nanos(event.time_nano.unwrap_or(0).max(0) as u64);
                sink.0
                    .lock()
                    .unwrap()
                    .push((name, event.action.unwrap_or_default(), at));
            }
        });
        events
    }

    /// When `action` happened to `name` at or after `since` (waits up to 2 s for the event).
    async fn when(&self, name: &str, action: &str, since: SystemTime) -> Option<SystemTime> {
        for _ in 0..200 {
            let found = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|(n, a, at)| n == name && a == action && *at >= since)
                .map(|(_, _, at)| *at);
            if found.is_some() {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        None
    }
}

fn between(from: SystemTime, to: SystemTime) -> Option<Duration> {
    to.duration_since(from).ok()
}

/// When container `name` logged `listening on` (Docker's timestamp of the line).
async fn listening_at(docker: &Docker, name: &str) -> Option<SystemTime> {
    let options = LogsOptions {
        stdout: true,
        timestamps: true,
        tail: "50".into(),
        ..Default::default()
    };
    let mut logs = docker.logs(name, Some(options));
    while let Some(Ok(chunk)) = logs.next().await {
        let text = String::from_utf8_lossy(chunk.as_ref()).into_owned();
        for line in text.lines() {
            if let Some((ts, rest)) = line.split_once(' ') {
                if rest.starts_with("listening on") {
                    return humantime::parse_rfc3339_weak(ts).ok();
                }
            }
        }
    }
    None
}

/// A deployer over `env`; the router is where the nginx (or Traefik) switch plugs in.
fn deployer(
    app: &TestApp,
    env: &DockerEnvironment,
    router: Arc<dyn Router>,
    probe: Arc<dyn HealthProbe>,
    interval: Duration,
) -> Deployer {
    Deployer::builder(app.name().clone())
        .environment(Arc::new(env.clone()))
        .router(router)
        .probe(probe)
        .policy(
            HealthPolicy::default()
                .interval(interval)
                .deadline(Duration::from_secs(30)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::from_secs(2))
                .stop_grace(Duration::from_secs(2)),
        )
        .journal(Arc::new(InMemoryJournal::new()))
        .lock(Arc::new(InMemoryLock::new()))
        .build()
        .expect("a valid deployer")
}

async fn engine_deploy(
    deployer: &Deployer,
    env: &DockerEnvironment,
    docker: &Docker,
    events: &ContainerEvents,
    release: Release,
) -> Result<Phases, BoxError> {
    let mut rx = deployer.subscribe();
    let t0 = SystemTime::now();
    let report = deployer.deploy(release).await?;
    let mut seen: Vec<Event> = Vec::new();
    while let Ok(event) = rx.try_recv() {
        seen.push(event);
    }
    let took = |phase: &str| {
        seen.iter().find_map(|e| match &e.kind {
            EventKind::PhaseChanged { from, took, .. } if from.name() == phase => Some(*took),
            _ => None,
        })
    };
    let verified_at = seen.iter().find_map(|e| match &e.kind {
        EventKind::PhaseChanged {
            from: Phase::Verifying, ..
        } => Some(e.at.system_time()),
        _ => None,
    });
    let name = env.config().container_name(report.deployment.target());
    let created = events.when(&name, "create", t0).await;
    let started = events.when(&name, "start", t0).await;
    let ready = listening_at(docker, &name).await;
    Ok(Phases {
        create: created.and_then(|c| between(t0, c)),
        start: created.zip(started).and_then(|(c, s)| between(c, s)),
        ready: took("verifying"),
        declared_healthy: ready.zip(verified_at).and_then(|(r, v)| between(r, v)),
        switch: took("shifting"),
        drain: took("draining"),
        stop: took("stopping"),
        total: Some(report.took),
    })
}

fn docker_cli(args: &[&str]) -> Result<String, BoxError> {
    let out = Command::new("docker").args(args).output()?;
    if !out.status.success() {
        return Err(format!("docker {args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A deploy as a shell script does it, with the docker CLI and curl.
async fn shell_deploy(
    docker: &Docker,
    events: &ContainerEvents,
    nginx: &NginxProcess,
    prefix: &str,
    image: &str,
    colour: &str,
    old: Option<&str>,
) -> Result<Phases, BoxError> {
    let name = format!("{prefix}-{colour}");
    let t0 = SystemTime::now();
    let clock = Instant::now();
    docker_cli(&["rm", "-f", &name])?;
    let label = format!("{LABEL}={}", std::process::id());
    docker_cli(&[
        "run",
        "-d",
        "--init",
        "--name",
        &name,
        "--label",
        &label,
        "-p",
        &format!("127.0.0.1::{DEMO_PORT}"),
        image,
    ])?;
    let run_returned = Instant::now();
    let addr = docker_cli(&["port", &name, &DEMO_PORT.to_string()])?;
    let url = format!("http://{}/health", addr.lines().next().unwrap_or_default());
    loop {
        let ok = Command::new("curl")
            .args(["-fs", "-o", "/dev/null", &url])
            .status()?
            .success();
        if ok {
            break;
        }
        if clock.elapsed() > Duration::from_secs(30) {
            return Err(format!("{url} never answered").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let healthy = SystemTime::now();
    let verify = run_returned.elapsed();
    let switch = {
        let t = Instant::now();
        let (host, port) = addr
            .lines()
            .next()
            .unwrap_or_default()
            .rsplit_once(':')
            .ok_or("docker port")?;
        let slot = if colour == "blue" { Slot::Blue } else { Slot::Green };
        let routes = Routes::only(slot, Endpoint::new(host, port.parse()?)?);
        nginx.raw_reload().write_and_reload(&routes)?;
        t.elapsed()
    };
    let stop = match old {
        Some(old) => {
            let t = Instant::now();
            docker_cli(&["stop", "-t", "2", &format!("{prefix}-{old}")])?;
            Some(t.elapsed())
        }
        None => None,
    };
    let total = clock.elapsed();
    let created = events.when(&name, "create", t0).await;
    let started = events.when(&name, "start", t0).await;
    let ready = listening_at(docker, &name).await;
    Ok(Phases {
        create: created.and_then(|c| between(t0, c)),
        start: created.zip(started).and_then(|(c, s)| between(c, s)),
        ready: Some(verify),
        declared_healthy: ready.and_then(|r| between(r, healthy)),
        switch: Some(switch),
        drain: None,
        stop,
        total: Some(total),
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let connection = engine().await?;
    let docker = connection.docker;
    let versions: Vec<String> = (0..=DEPLOYS).map(|i| format!("v{i}")).collect();
    let names: Vec<&str> = versions.iter().map(String::as_str).collect();
    println!("building the demo app (static) and {} images…", names.len());
    let images = DemoImages::build(&connection.engine, &names).await?;
    let events = ContainerEvents::watch(&docker);
    let pid = std::process::id().to_string();

    // Each way has its own nginx, so their reloads do not mix.
    let nginx: Vec<NginxProcess> = ["http", "dockerhealth", "shell"]
        .iter()
        .map(|upstream| common::nginx::start(upstream))
        .collect::<Result<_, _>>()?;
    let http_app = TestApp::new("bench-http");
    let http_env = DockerEnvironment::connect(images.config(http_app.name()).label(LABEL, &pid)).await?;
    let http_probe: Arc<dyn HealthProbe> = Arc::new(HttpProbe::new("/health")?);
    let http = deployer(
        &http_app,
        &http_env,
        Arc::new(common::nginx::router(&nginx[0], "http")?),
        http_probe,
        Duration::from_millis(20),
    );

    let dh_app = TestApp::new("bench-dockerhealth");
    let dh_env = DockerEnvironment::connect(images.config(dh_app.name()).label(LABEL, &pid)).await?;
    let dh = deployer(
        &dh_app,
        &dh_env,
        Arc::new(common::nginx::router(&nginx[1], "dockerhealth")?),
        Arc::new(dh_env.health_probe()),
        Duration::from_millis(20),
    );

    let shell_app = TestApp::new("bench-shell");
    let shell_prefix = shell_app.name().to_string();

    let mut results: [Vec<Phases>; 3] = Default::default();
    let colours = ["blue", "green"];
    for (i, version) in versions.iter().enumerate() {
        let release = Release::new(version.as_str())?;
        let image = format!("{}:{version}", images.repository());
        let warm_up = i == 0;
        let a = engine_deploy(&http, &http_env, &docker, &events, release.clone()).await?;
        let b = engine_deploy(&dh, &dh_env, &docker, &events, release).await?;
        let old = (!warm_up).then(|| colours[(i + 1) % 2]);
        let c = shell_deploy(&docker, &events, &nginx[2], &shell_prefix, &image, colours[i % 2], old).await?;
        if !warm_up {
            results[0].push(a);
            results[1].push(b);
            results[2].push(c);
        }
    }
    // The shell containers carry no bluegreen labels: remove them by name.
    for colour in colours {
        let _ = docker_cli(&["rm", "-f", &format!("{shell_prefix}-{colour}")]);
    }

    let p50 = |runs: &[Phases], row: usize| -> Option<Duration> {
        let mut samples = Samples::new();
        for run in runs {
            samples.push(run.get(row)?);
        }
        (!samples.is_empty()).then(|| samples.p50())
    };
    let cell = |d: Option<Duration>| d.map_or("—".to_string(), ms);
    let mut table = Table::new(&[
        "phase (p50 ms)",
        "engine + HttpProbe",
        "engine + DockerHealthProbe",
        "shell: docker run + curl loop + nginx -s reload + docker stop",
        "engine+Http / shell",
        "engine+DockerHealth / shell",
    ]);
    for (row, label) in ROWS.iter().enumerate() {
        let [a, b, c] = [0, 1, 2].map(|w| p50(&results[w], row));
        let r = |x: Option<Duration>| match (x, c) {
            (Some(x), Some(c)) => ratio(x, c),
            _ => "—".to_string(),
        };
        table.row(vec![label.to_string(), cell(a), cell(b), cell(c), r(a), r(b)]);
    }
    println!(
        "\n## bluegreen on Docker: one blue-green deploy of the demo app ({DEPLOYS} deploys per way, p50; \
         Docker {}; 2 cores)\n",
        docker.version().await?.version.unwrap_or_default()
    );
    print!("{}", table.render());
    println!(
        "\nEngine: HealthPolicy every 20 ms; DockerHealthProbe reads State.Health, set by `/demo-app \
         --health-check` every 100 ms. Shell: curl every 100 ms, no drain. Engine drain: until nginx's old workers exit (at most 2 s); stop grace 2 s. The shell's switch ends when \
         `nginx -s reload` returns, unconfirmed: nginx's old workers go on answering for ~100 ms; the \
         engine's ends once the new generation is confirmed."
    );
    Ok(())
}
