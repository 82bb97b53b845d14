//! Hybrid mode for real: Traefik's own Docker provider discovers each slot's container by its
//! labels, and `TraefikRouter`'s file-provider service weights them — one Traefik process, both
//! providers, real containers of the demo app, the engine driving it all under load.
//!
//! The containers (from `DockerEnvironment`) carry `traefik.enable=true` and
//! `traefik.http.services.<app>-{slot}.loadbalancer.server.port=8080`; Traefik runs with
//! `providers.docker` (`exposedByDefault = false`, `useBindPortIP = true`, a constraint on
//! `bluegreen.app` so parallel tests' containers stay apart) and `providers.file`. The router
//! (`discovered_provider("docker")`) writes only the router and a weighted service over
//! `<app>-blue@docker` / `<app>-green@docker`.
//!
//! Under load from three kinds of client for the whole run, through the public API:
//! 1. v1 then v2, blue-green;
//! 2. v3 as a canary: 25 %, approval, 60 %, approval, promoted;
//! 3. v4 as a canary that never becomes healthy: rolled back, never served;
//! 4. v5 as a canary aborted at 25 %: traffic goes back to v3.
//!
//! After each step it checks what Traefik serves (by `X-Version`, on new connections), what its
//! API shows (the weighted service's children, the Docker services' servers at the published
//! `127.0.0.1` ports), what the deployer's `status` says (live release, confirmed, no drift), and
//! at the end that no request failed and nothing is left behind.
//!
//! About a minute once the demo app's static build exists. `--nocapture` prints the counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::FileJournal;
use bluegreen_core::lock::FileLock;
use bluegreen_core::probe::{AllOf, HttpProbe};
use bluegreen_core::{
    Canary, CanaryStep, Deployer, DeployerBuilder, Environment, Error, Event, EventKind, HealthPolicy, Phase, Release,
    Retirement, Serving, Slot, SlotStatus,
};
/// bluegreen-docker's test fixtures (demo images, unique apps, cleanup), shared by path.
#[path = "../../bluegreen-docker/tests/common/fixtures.rs"]
#[allow(dead_code)]
mod docker;

use bluegreen_docker::{labels, DockerEnvironment};
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig, Tally};
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::scenario::versions_seen;
use bluegreen_testkit::stats::Table;
use bluegreen_testkit::traefik::{self as traefik_fixture, DockerProvider, TraefikProcess};
use bluegreen_traefik::TraefikRouter;
use docker::{DemoImages, TestApp, DEMO_PORT};
use tokio::sync::broadcast;

const HOST: &str = "labels.localhost";

/// Clients of each kind running through Traefik from v1 to the end.
const CLIENTS: usize = 4;

/// Requests sent to see a weighted split (new connection each).
const SAMPLE: usize = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_provider_labels_weighted_by_the_file_provider_under_load() {
    let docker::Connection { engine, docker } = match docker::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    if let Err(why) = traefik_fixture::binary() {
        return unavailable("traefik", why);
    }
    // Declared in this order so that they drop in reverse: containers before their images.
    let mut images = DemoImages::build(&engine, &["v1", "v2", "v3", "v5"]).await.unwrap();
    images.add(&engine, "v4", &[("FAIL_HEALTH", "1")]).await.unwrap();
    let app = TestApp::new("labels");
    let name = app.name().clone();

    // Each slot's container carries its own Traefik service; `{slot}` becomes blue / green.
    let config = images.config(&name).label("traefik.enable", "true").label(
        format!(
            "traefik.http.services.{name}-{}.loadbalancer.server.port",
            labels::SLOT_PLACEHOLDER
        ),
        DEMO_PORT.to_string(),
    );
    let traefik = TraefikProcess::start_with_docker(
        Duration::ZERO,
        &DockerProvider {
            endpoint: format!("unix://{}", config.socket_path().display()),
            constraints: format!("Label(`{}`, `{name}`)", labels::APP),
        },
    )
    .unwrap();
    let environment = DockerEnvironment::with_engine(engine.clone(), config);
    let router = TraefikRouter::builder(name.clone(), traefik.watched_dir(), format!("Host(`{HOST}`)"))
        .staging_directory(traefik.staging_dir())
        .entry_point("web")
        .api_url(traefik.api_url())
        .providers_throttle(Duration::ZERO)
        .discovered_provider("docker")
        .build()
        .unwrap();
    let router = Arc::new(router);
    let state = tempfile::tempdir().unwrap();
    let journal = Arc::new(FileJournal::open(state.path(), &name).unwrap());
    let lock = Arc::new(FileLock::new(state.path()).unwrap());
    let builder = || {
        builder(&name, &environment, Arc::clone(&router))
            .journal(journal.clone())
            .lock(lock.clone())
    };
    let blue_green = builder().build().unwrap();
    let canary = builder()
        .strategy(
            Canary::new(vec![
                CanaryStep::SetWeight(25),
                CanaryStep::PauseUntilApproved,
                CanaryStep::SetWeight(60),
                CanaryStep::PauseUntilApproved,
            ])
            .unwrap(),
        )
        .build()
        .unwrap();
    let api = Api::new(traefik.api_url());
    let proxy = traefik.web_addr();

    // 1. Blue-green: v1, then v2 under load.
    blue_green.deploy(Release::new("v1").unwrap()).await.unwrap();
    assert_serves_only(proxy, "v1").await;
    assert_status(&blue_green, "v1").await;
    api.assert_weighted(&name, &[(Slot::Blue, 100)]).await;
    api.assert_docker_server(&name, Slot::Blue, &environment).await;

    let modes = [
        ClientMode::NewConnection,
        ClientMode::KeepAliveRetrying,
        ClientMode::KeepAlive,
    ];
    let loads: Vec<_> = modes
        .iter()
        .map(|&mode| (mode, Load::start(LoadConfig::new(proxy, CLIENTS, mode).host(HOST))))
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let report = blue_green.deploy(Release::new("v2").unwrap()).await.unwrap();
    println!("v2:\n{report}");
    assert_serves_only(proxy, "v2").await;
    assert_status(&blue_green, "v2").await;
    api.assert_weighted(&name, &[(Slot::Green, 100)]).await;
    api.assert_docker_server(&name, Slot::Green, &environment).await;
    api.assert_no_docker_service(&name, Slot::Blue).await;

    // 2. A canary in weighted steps, each approved, then promoted.
    let mut events = canary.subscribe();
    let run = spawn_deploy(&canary, "v3");
    wait_for_pause(&mut events).await;
    assert_split(proxy, "v2", "v3", 25).await;
    api.assert_weighted(&name, &[(Slot::Blue, 25), (Slot::Green, 75)]).await;
    let file = traefik.watched_dir().join(format!("{name}.toml"));
    println!("{}:\n{}", file.display(), std::fs::read_to_string(&file).unwrap());
    api.assert_docker_server(&name, Slot::Blue, &environment).await;
    canary.promote().await.unwrap();
    wait_for_pause(&mut events).await;
    assert_split(proxy, "v2", "v3", 60).await;
    api.assert_weighted(&name, &[(Slot::Blue, 60), (Slot::Green, 40)]).await;
    canary.promote().await.unwrap();
    println!("v3:\n{}", run.await.unwrap().unwrap());
    assert_serves_only(proxy, "v3").await;
    assert_status(&canary, "v3").await;
    api.assert_weighted(&name, &[(Slot::Blue, 100)]).await;
    api.assert_no_docker_service(&name, Slot::Green).await;

    // 3. A canary whose release never becomes healthy: Docker's health check fails, so Traefik
    //    never discovers its container, and the engine never moves traffic to it.
    match canary.deploy(Release::new("v4").unwrap()).await {
        Err(Error::RolledBack { reason, .. }) => println!("v4 rolled back: {reason}"),
        other => panic!("v4 must be rolled back, got {other:?}"),
    }
    assert_serves_only(proxy, "v3").await;
    assert_status(&canary, "v3").await;
    api.assert_weighted(&name, &[(Slot::Blue, 100)]).await;

    // 4. A canary aborted while it has a share of the traffic: the share goes back to v3.
    let mut events = canary.subscribe();
    let run = spawn_deploy(&canary, "v5");
    wait_for_pause(&mut events).await;
    assert_split(proxy, "v3", "v5", 25).await;
    api.assert_weighted(&name, &[(Slot::Blue, 75), (Slot::Green, 25)]).await;
    canary.abort("the test aborts the v5 canary").await.unwrap();
    match run.await.unwrap() {
        Err(Error::RolledBack { .. }) => {}
        other => panic!("v5 must be rolled back, got {other:?}"),
    }
    assert_serves_only(proxy, "v3").await;
    assert_status(&blue_green, "v3").await;
    api.assert_weighted(&name, &[(Slot::Blue, 100)]).await;
    assert!(
        !matches!(
            environment.status(Slot::Green).await.unwrap(),
            SlotStatus::Running { .. }
        ),
        "v5's container still runs after its rollback"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut tallies = Vec::new();
    for (mode, load) in loads {
        tallies.push((mode, load.stop().await));
    }
    print_tallies(&tallies);

    // Clean up, and check that nothing is left.
    let (app_name, repository) = (name.to_string(), images.repository().to_owned());
    drop((blue_green, canary, environment));
    drop(app);
    drop(images);
    docker::assert_nothing_left(&docker, &app_name.to_string(), &repository).await;
    drop(traefik);

    for (mode, tally) in &tallies {
        assert_eq!(tally.failures(), 0, "{mode}: requests failed: {tally}");
        for version in ["v1", "v2", "v3", "v5"] {
            assert!(tally.served_by(version) > 0, "{mode}: {version} never served: {tally}");
        }
        assert_eq!(tally.served_by("v4"), 0, "{mode}: the unhealthy v4 was served: {tally}");
    }
}

/// A deployer for the application over `environment` and `router`: healthy means Docker's own
/// health check and `GET /health` through the published port both pass.
fn builder(
    name: &bluegreen_core::AppName,
    environment: &DockerEnvironment,
    router: Arc<TraefikRouter>,
) -> DeployerBuilder {
    let probe = AllOf::new(vec![
        Arc::new(environment.health_probe()),
        Arc::new(HttpProbe::new("/health").unwrap()),
    ])
    .unwrap();
    Deployer::builder(name.clone())
        .environment(Arc::new(environment.clone()))
        .router(router)
        .probe(Arc::new(probe))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(100))
                .success_threshold(2)
                .failure_threshold(15)
                .deadline(Duration::from_secs(20)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_millis(500))
                .drain(Duration::from_millis(500))
                .stop_grace(Duration::from_secs(5)),
        )
        .who("traefik_docker_labels")
}

fn spawn_deploy(
    deployer: &Deployer,
    version: &str,
) -> tokio::task::JoinHandle<bluegreen_core::Result<bluegreen_core::Report>> {
    let (deployer, release) = (deployer.clone(), Release::new(version).unwrap());
    tokio::spawn(async move { deployer.deploy(release).await })
}

/// Waits until the deployment pauses for approval (its weight is confirmed by then).
async fn wait_for_pause(events: &mut broadcast::Receiver<Event>) {
    let paused = async {
        loop {
            match events.recv().await {
                Ok(Event {
                    kind:
                        EventKind::PhaseChanged {
                            to: Phase::Paused { .. },
                            ..
                        },
                    ..
                }) => return,
                Ok(Event {
                    kind:
                        EventKind::PhaseChanged {
                            from,
                            to: to @ (Phase::RollingBack | Phase::Failed { .. }),
                            detail,
                            ..
                        },
                    ..
                }) => panic!("the canary went from {from:?} to {to:?} instead of pausing: {detail}"),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the deployer is gone"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), paused)
        .await
        .expect("no pause within 60 s");
}

async fn assert_serves_only(proxy: std::net::SocketAddr, version: &str) {
    let seen = versions_seen(proxy, HOST, 40).await;
    assert_eq!(
        seen,
        BTreeMap::from([(version.to_owned(), 40)]),
        "Traefik serves {seen:?}"
    );
}

/// What the deployer reports agrees: `version` is live, Traefik confirmed serving it (the router's
/// `observe` in hybrid mode), no drift, nothing in progress.
async fn assert_status(deployer: &Deployer, version: &str) {
    let status = deployer.status().await.unwrap();
    assert_eq!(status.serving, Serving::Confirmed, "{status:#?}");
    assert!(status.drift.is_empty(), "drift: {:#?}", status.drift);
    assert_eq!(status.live_release().map(Release::as_str), Some(version), "{status:#?}");
    assert!(!status.in_progress(), "{status:#?}");
}

/// `new` gets about `percent` % of requests and `old` the rest (weighted round robin, shared
/// with the load: ±15 points).
async fn assert_split(proxy: std::net::SocketAddr, old: &str, new: &str, percent: usize) {
    let seen = versions_seen(proxy, HOST, SAMPLE).await;
    let count = |v: &str| seen.get(v).copied().unwrap_or(0);
    assert_eq!(count(old) + count(new), SAMPLE, "Traefik serves {seen:?}");
    let share = count(new) * 100 / SAMPLE;
    assert!(
        share.abs_diff(percent) <= 15,
        "{new} got {share} % (expected about {percent} %): {seen:?}"
    );
    println!("at {percent} %: {seen:?}");
}

/// Traefik's API, read independently of the router.
struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    fn new(base: String) -> Api {
        Api {
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            base,
        }
    }

    async fn get(&self, path: &str) -> Option<serde_json::Value> {
        let response = self.client.get(format!("{}{path}", self.base)).send().await.unwrap();
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        let body = response.error_for_status().unwrap().bytes().await.unwrap();
        Some(serde_json::from_slice(&body).unwrap())
    }

    /// The file provider's weighted service refers to exactly these Docker services.
    async fn assert_weighted(&self, name: &bluegreen_core::AppName, expected: &[(Slot, u64)]) {
        let service = self.get(&format!("/api/http/services/{name}@file")).await.unwrap();
        assert_eq!(service["status"], "enabled", "{service}");
        let mut children: Vec<(String, u64)> = service["weighted"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["name"].as_str().unwrap().to_owned(), c["weight"].as_u64().unwrap()))
            .collect();
        children.sort();
        let expected: Vec<(String, u64)> = expected
            .iter()
            .map(|(s, w)| (format!("{name}-{s}@docker"), *w))
            .collect();
        assert_eq!(children, expected, "{service}");
    }

    /// The slot's Docker service exists, with the container's port published on 127.0.0.1 as
    /// its one server, up (`useBindPortIP`).
    async fn assert_docker_server(&self, name: &bluegreen_core::AppName, slot: Slot, environment: &DockerEnvironment) {
        let endpoint = match environment.status(slot).await.unwrap() {
            SlotStatus::Running { endpoints, .. } => endpoints.first().clone(),
            other => panic!("{slot} is not running: {other:?}"),
        };
        let url = format!("http://{}:{}", endpoint.host(), endpoint.port());
        let service = self.get(&format!("/api/http/services/{name}-{slot}@docker")).await;
        let service = service.unwrap_or_else(|| panic!("Traefik has no service {name}-{slot}@docker"));
        assert_eq!(service["status"], "enabled", "{service}");
        assert_eq!(service["loadBalancer"]["servers"][0]["url"], url.as_str(), "{service}");
        assert_eq!(
            service["loadBalancer"]["servers"].as_array().unwrap().len(),
            1,
            "{service}"
        );
        assert_eq!(service["serverStatus"][url.as_str()], "UP", "{service}");
    }

    /// A stopped slot's container is no longer a Docker service: Traefik's Docker provider drops
    /// it moments after the container dies (the same lag as when it appears), so this waits up
    /// to 10 s.
    async fn assert_no_docker_service(&self, name: &bluegreen_core::AppName, slot: Slot) {
        let path = format!("/api/http/services/{name}-{slot}@docker");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let service = self.get(&path).await;
            if service.is_none() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{slot}'s service is still there after 10 s: {service:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn print_tallies(tallies: &[(ClientMode, Tally)]) {
    let mut table = Table::new(&["clients", "requests", "failed", "v1", "v2", "v3", "v4", "v5"]);
    for (mode, tally) in tallies {
        let mut row = vec![
            mode.to_string(),
            tally.total().to_string(),
            tally.failures().to_string(),
        ];
        row.extend(["v1", "v2", "v3", "v4", "v5"].map(|v| tally.served_by(v).to_string()));
        table.row(row);
    }
    println!(
        "\nrequests through Traefik (Docker provider + file provider):\n\n{}",
        table.render()
    );
}
