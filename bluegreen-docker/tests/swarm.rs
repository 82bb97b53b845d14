//! `SwarmEnvironment` against a real single-node Docker Swarm: the core conformance suite with
//! three replicas per slot, and blue-green deploys of the demo app through a real nginx under
//! load, with a rollback.
//!
//! The test joins the engine to a swarm (`docker swarm init --advertise-addr 127.0.0.1`) when it
//! is in none, and leaves it (`docker swarm leave --force`) at the end, even on failure: only if
//! it made it. Everything runs in one test function, so nothing else in this binary sees the
//! swarm come and go; no other test binary depends on swarm state.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::backend::environment_conformance_with_replicas;
use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{Deployer, Environment, Error, HealthPolicy, Retirement, Router, Slot, SlotStatus, StopOutcome};
use bluegreen_docker::{labels, HealthCheck, ImageSource, SwarmAddress, SwarmConfig, SwarmEnvironment};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::load::{ClientMode, Load, LoadConfig, Outcome};
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real;
use common::fixtures::{DEMO_PORT, OWNER_LABEL};
use common::{assert_serves, get, release, setup, Fixture};

const UPSTREAM: &str = "shop";
const REPLICAS: u32 = 3;

/// The engine's swarm for this test; leaves it on drop if the test made it.
struct Swarm {
    created: bool,
    /// Whether `swarm init` made the `docker_gwbridge` network (which `swarm leave` keeps).
    gwbridge: bool,
}

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker {args:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Swarm {
    /// The engine's swarm: the one it is in, or a new single-node one on loopback.
    ///
    /// The node of a swarm made here is labelled with this process's id ([`OWNER_LABEL`]): a
    /// swarm left behind by a killed run (its owner gone) is taken over and left at the end.
    fn join() -> Result<Swarm, String> {
        let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"])?;
        if state == "active" {
            let format = format!("{{{{index .Spec.Labels \"{OWNER_LABEL}\"}}}}");
            let owner = docker(&["node", "inspect", "self", "--format", &format]).unwrap_or_default();
            let orphaned = owner
                .parse::<u32>()
                .is_ok_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
            return Ok(Swarm {
                created: orphaned,
                gwbridge: false,
            });
        }
        let had_gwbridge = docker(&["network", "inspect", "docker_gwbridge"]).is_ok();
        docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"])?;
        let swarm = Swarm {
            created: true,
            gwbridge: !had_gwbridge,
        };
        let label = format!("{OWNER_LABEL}={}", std::process::id());
        let node = docker(&["info", "--format", "{{.Swarm.NodeID}}"])?;
        docker(&["node", "update", "--label-add", &label, &node])?;
        Ok(swarm)
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        if self.created {
            if let Err(e) = docker(&["swarm", "leave", "--force"]) {
                eprintln!("leaving the test's swarm: {e}");
            } else if self.gwbridge {
                let _ = docker(&["network", "rm", "docker_gwbridge"]);
            }
        }
    }
}

/// Removes the services of `app` on drop (before the swarm is left, when it was made here, and
/// in a swarm that was already there).
struct Services(String);

impl Drop for Services {
    fn drop(&mut self) {
        let filter = format!("label={}={}", labels::APP, self.0);
        if let Ok(ids) = docker(&["service", "ls", "-q", "--filter", &filter]) {
            for id in ids.split_whitespace() {
                let _ = docker(&["service", "rm", id]);
            }
        }
    }
}

fn config(fx: &Fixture) -> SwarmConfig {
    SwarmConfig::new(
        fx.app.name().clone(),
        ImageSource::tagged(fx.images.repository()),
        DEMO_PORT,
    )
    .replicas(REPLICAS)
    // Swarm reports a task running only once its container is healthy.
    .health_check(HealthCheck::exec(["/demo-app", "--health-check"]).interval(Duration::from_millis(100)))
    .stop_grace(Duration::from_secs(2))
    .start_timeout(Duration::from_secs(30))
    .label(OWNER_LABEL, std::process::id().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_services_conform_and_deploy_blue_green_through_nginx() {
    let Some(mut fx) = setup("swarm", &["v1", "v2"]).await else {
        return;
    };
    let engine = fx.engine.clone();
    fx.images
        .add(&engine, "stubborn", &[("IGNORE_SIGTERM", "true")])
        .await
        .expect("build the stubborn image");
    fx.images
        .add(&engine, "crash", &[("CRASH_AFTER_MS", "1")])
        .await
        .expect("build the crashing image");
    let outside = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]).is_ok_and(|s| s == "inactive");
    if outside {
        refuses_an_engine_outside_a_swarm_clearly(&fx).await;
    }
    let swarm = match Swarm::join() {
        Ok(swarm) => swarm,
        Err(why) => return real::unavailable("docker swarm", why),
    };
    let services = Services(fx.app.name().to_string());

    conformance(&fx).await;
    blue_green_through_nginx(&fx).await;
    stops_and_failures(&fx).await;
    global_at_node_addresses(&fx).await;

    drop(services);
    drop(swarm);
}

/// Checked only when the engine is in no swarm at the start (leaving one to check would
/// disturb its owner).
async fn refuses_an_engine_outside_a_swarm_clearly(fx: &Fixture) {
    let err = SwarmEnvironment::connect(config(fx)).await.unwrap_err();
    assert!(matches!(err, Error::Backend { temporary: false, .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("is not in an active swarm (its swarm state: inactive)") && text.contains("docker swarm init"),
        "{text}"
    );
}

async fn conformance(fx: &Fixture) {
    let env = SwarmEnvironment::connect(config(fx)).await.expect("connect");
    let suite = environment_conformance_with_replicas(
        &env,
        release("v1"),
        release("v2"),
        Duration::from_secs(2),
        REPLICAS as usize,
    );
    tokio::time::timeout(Duration::from_secs(120), suite)
        .await
        .expect("the conformance suite finishes within 2 minutes");
}

async fn blue_green_through_nginx(fx: &Fixture) {
    let env = SwarmEnvironment::connect(config(fx)).await.expect("connect");
    let nginx = match NginxProcess::start(UPSTREAM) {
        Ok(nginx) => nginx,
        Err(why) => return real::unavailable("nginx", why),
    };
    let router = Arc::new(
        NginxRouter::builder(nginx.router_file(), UPSTREAM)
            .nginx_binary(nginx.binary())
            .nginx_prefix(nginx.prefix())
            .nginx_conf(nginx.conf_path())
            .pid_file(nginx.pid_file())
            .status_listen(nginx.status_addr())
            .error_log(nginx.error_log())
            .confirm(Duration::from_secs(10), Duration::from_millis(5))
            .build()
            .expect("router"),
    );
    let deployer = Deployer::builder(fx.app.name().clone())
        .environment(Arc::new(env.clone()))
        .router(router.clone())
        .probe(Arc::new(HttpProbe::new("/health").unwrap()))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(50))
                .failure_threshold(20)
                .deadline(Duration::from_secs(15)),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::from_millis(300))
                .stop_grace(Duration::from_secs(2)),
        )
        .journal(Arc::new(InMemoryJournal::new()))
        .lock(Arc::new(InMemoryLock::new()))
        .build()
        .expect("deployer");

    let v1 = deployer.deploy(release("v1")).await.expect("deploy v1");
    let live = v1.deployment.target();
    let v1_endpoints = match env.status(live).await.unwrap() {
        SlotStatus::Running { endpoints, .. } => endpoints,
        other => panic!("v1's slot is not running: {other:?}"),
    };
    assert_eq!(v1_endpoints.len(), REPLICAS as usize, "{v1_endpoints}");
    for endpoint in v1_endpoints.iter() {
        assert_eq!(endpoint.host(), "127.0.0.1");
        assert_serves(endpoint, "v1").await;
    }
    // nginx routes to every task of the live slot.
    let routed = router.current().await.unwrap().unwrap();
    assert_eq!(routed.endpoints(live), Some(&v1_endpoints), "{routed:?}");

    let load = Load::start(LoadConfig::new(nginx.addr(), 8, ClientMode::NewConnection));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v2 = deployer.deploy(release("v2")).await.expect("deploy v2");
    assert_eq!(v2.deployment.target(), live.other());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rolled_back = deployer.rollback().await.expect("rollback").expect("a rollback report");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let tally = load.stop().await;
    eprintln!("through nginx across v1 → v2 → rollback to v1: {tally:?}");
    assert!(tally.total() > 100, "the load ran: {tally:?}");
    assert_eq!(tally.failures(), 0, "no request failed: {tally:?}");
    assert!(tally.served_by("v1") > 0 && tally.served_by("v2") > 0, "{tally:?}");
    assert_eq!(
        tally.total(),
        tally.served_by("v1") + tally.served_by("v2"),
        "every request answered by v1 or v2: {tally:?}"
    );

    // The rollback ran v1 again, in the slot it ran in, from the image it ran.
    assert_eq!(rolled_back.deployment.release(), &release("v1"));
    assert_eq!(rolled_back.deployment.target(), live);
    for _ in 0..20 {
        match get_through(&nginx).await {
            Outcome::Response { status: 200, version } => assert_eq!(version, "v1"),
            other => panic!("nginx after the rollback: {other:?}"),
        }
    }
    assert!(matches!(
        env.status(live.other()).await.unwrap(),
        SlotStatus::Stopped { .. }
    ));
    for slot in Slot::BOTH {
        env.remove(slot).await.unwrap();
    }
}

async fn get_through(nginx: &NginxProcess) -> Outcome {
    let endpoint = bluegreen_core::Endpoint::new("127.0.0.1", nginx.addr().port()).unwrap();
    get(&endpoint, "/").await
}

async fn stops_and_failures(fx: &Fixture) {
    let env = SwarmEnvironment::connect(config(fx).replicas(2))
        .await
        .expect("connect");

    // SIGTERM, and the demo app exits by itself within Swarm's grace.
    env.deploy(Slot::Blue, &release("v1")).await.unwrap();
    let outcome = env.stop(Slot::Blue, Duration::from_secs(2)).await.unwrap();
    assert_eq!(outcome, StopOutcome::Graceful { exit_code: Some(0) });
    // One that ignores SIGTERM is killed once Swarm's grace (2 s) has passed, and said so.
    env.deploy(Slot::Blue, &release("stubborn")).await.unwrap();
    let started = std::time::Instant::now();
    let outcome = env.stop(Slot::Blue, Duration::from_secs(2)).await.unwrap();
    let took = started.elapsed();
    assert_eq!(outcome, StopOutcome::Killed, "after {took:?}");
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(matches!(
        env.status(Slot::Blue).await.unwrap(),
        SlotStatus::Stopped {
            exit_code: Some(137),
            ..
        }
    ));

    // A task that fails fails the deploy with what Swarm said and the task's output.
    let err = env.deploy(Slot::Green, &release("crash")).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Backend { temporary: false, .. }), "{err:?}");
    let service = format!("{}-green.", fx.app.name());
    assert!(text.contains(&service) && text.contains("failed"), "{text}");

    // A release whose image is missing is refused before anything is created.
    let err = env.deploy(Slot::Blue, &release("v9")).await.unwrap_err();
    match &err {
        Error::NotFound { what: "image", name } => {
            assert_eq!(name, &format!("{}:v9", fx.images.repository()))
        }
        other => panic!("a missing image: {other:?}"),
    }
    for slot in Slot::BOTH {
        env.remove(slot).await.unwrap();
        assert_eq!(env.status(slot).await.unwrap(), SlotStatus::Absent);
    }
}

/// A global service: one task per ready node (this swarm has one), at the node's address (the
/// test's swarm advertises 127.0.0.1); stopped by a constraint no node meets, started again by
/// the next deploy.
async fn global_at_node_addresses(fx: &Fixture) {
    let env = SwarmEnvironment::connect(config(fx).global().address(SwarmAddress::NodeAddress))
        .await
        .expect("connect");
    let endpoints = env.deploy(Slot::Green, &release("v1")).await.unwrap();
    assert_eq!(endpoints.len(), 1, "{endpoints}");
    let endpoint = endpoints.first();
    if env.manager_node_id().is_empty()
        || docker(&["node", "inspect", "self", "--format", "{{.Status.Addr}}"]).as_deref() != Ok("127.0.0.1")
    {
        eprintln!("the swarm does not advertise 127.0.0.1: not requesting {endpoint}");
    } else {
        assert_serves(endpoint, "v1").await;
    }
    assert_eq!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Running {
            release: release("v1"),
            endpoints: endpoints.clone()
        }
    );
    assert!(matches!(
        env.stop(Slot::Green, Duration::from_secs(2)).await.unwrap(),
        StopOutcome::Graceful { .. }
    ));
    assert!(matches!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped { .. }
    ));
    assert_eq!(
        env.stop(Slot::Green, Duration::from_secs(2)).await.unwrap(),
        StopOutcome::NotRunning
    );
    let again = env.deploy(Slot::Green, &release("v2")).await.unwrap();
    assert_eq!(again.len(), 1);
    env.remove(Slot::Green).await.unwrap();
    assert_eq!(env.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
}
