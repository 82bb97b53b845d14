//! Faults, each with a clear error and the live slot untouched.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::testing::InMemoryRouter;
use bluegreen_core::{
    Deployer, Endpoint, Environment, Error, EventKind, HealthProbe, Phase, ProbeOutcome, ProbeTarget, Router, Routes,
    Slot, SlotStatus, StopOutcome,
};
use bluegreen_docker::bollard::query_parameters::RemoveContainerOptions;
use bluegreen_docker::{DockerEnvironment, Expose};
use common::{assert_serves, release, setup, Fixture};

/// Deploys v1 through `deployer` (blue goes live) and returns its endpoint.
async fn v1_live(deployer: &Deployer, router: &InMemoryRouter) -> Endpoint {
    deployer.deploy(release("v1")).await.expect("first deploy");
    let routes = router.current().await.unwrap().expect("routes");
    let endpoint = routes
        .endpoint(Slot::Blue)
        .expect("the first deploy goes to blue")
        .clone();
    assert_eq!(routes, Routes::only(Slot::Blue, endpoint.clone()));
    assert_serves(&endpoint, "v1").await;
    endpoint
}

/// Blue still runs v1, still serves, still has all the traffic.
async fn live_untouched(env: &DockerEnvironment, router: &InMemoryRouter, blue: &Endpoint) {
    assert_eq!(
        router.current().await.unwrap(),
        Some(Routes::only(Slot::Blue, blue.clone())),
        "traffic stayed on blue"
    );
    assert_eq!(
        env.status(Slot::Blue).await.unwrap(),
        SlotStatus::Running {
            release: release("v1"),
            endpoint: blue.clone()
        }
    );
    assert_serves(blue, "v1").await;
}

async fn fixture_with(prefix: &str, bad: &[(&str, &[(&str, &str)])]) -> Option<Fixture> {
    let mut fx = setup(prefix, &["v1"]).await?;
    for (version, env) in bad {
        fx.images.add(&fx.docker, version, env).await.unwrap();
    }
    Some(fx)
}

fn rolled_back(result: bluegreen_core::Result<bluegreen_core::Report>) -> (String, Vec<String>) {
    match result {
        Err(err @ Error::RolledBack { .. }) => {
            eprintln!("as the caller sees it: {err}");
            let Error::RolledBack { reason, logs, .. } = err else {
                unreachable!()
            };
            (reason, logs)
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_image_is_refused_before_anything_changes() {
    let Some(fx) = setup("noimage", &["v1"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let blue = v1_live(&deployer, &router).await;

    let direct = env.deploy(Slot::Green, &release("v9")).await.unwrap_err();
    let image = format!("{}:v9", fx.images.repository());
    match &direct {
        Error::NotFound { what: "image", name } => assert_eq!(name, &image),
        other => panic!("expected NotFound image, got {other:?}"),
    }
    let (reason, _) = rolled_back(deployer.deploy(release("v9")).await);
    assert!(reason.contains(&image), "{reason}");
    assert_eq!(env.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn a_container_that_exits_at_once_fails_with_its_logs() {
    let Some(fx) = fixture_with("crash", &[("crash", &[("CRASH_AFTER_MS", "1")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let blue = v1_live(&deployer, &router).await;

    let (reason, logs) = rolled_back(deployer.deploy(release("crash")).await);
    let all = format!("{reason}\n{}", logs.join("\n"));
    assert!(all.contains("CRASH_AFTER_MS=1 elapsed, exiting with code 1"), "{all}");
    assert!(all.contains("exit") && all.contains('1'), "{all}");
    assert!(matches!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped { exit_code: Some(1), .. }
    ));
    live_untouched(&env, &router, &blue).await;

    // Called directly, deploy says so itself when the exit is already visible; either way the
    // error carries the app's last words.
    match env.deploy(Slot::Green, &release("crash")).await {
        Err(e) => {
            let text = e.to_string();
            assert!(text.contains("exited at once with code 1"), "{text}");
            assert!(text.contains("CRASH_AFTER_MS=1 elapsed"), "{text}");
        }
        Ok(_) => {
            let probe = env.health_probe();
            let outcome = probe
                .check(&ProbeTarget {
                    slot: Slot::Green,
                    endpoint: blue.clone(),
                })
                .await;
            assert!(matches!(outcome, ProbeOutcome::Unhealthy(_)), "{outcome:?}");
        }
    }
}

#[tokio::test]
async fn a_container_that_never_becomes_healthy_fails_at_the_deadline_with_its_logs() {
    let Some(fx) = fixture_with("sick", &[("sick", &[("FAIL_HEALTH", "1")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    // A failure threshold it cannot reach, so the deadline decides.
    let deployer = bluegreen_core::Deployer::builder(fx.app.name().clone())
        .environment(Arc::new(env.clone()))
        .router(router.clone())
        .probe(Arc::new(env.health_probe()))
        .policy(
            bluegreen_core::HealthPolicy::default()
                .interval(Duration::from_millis(100))
                .failure_threshold(1000)
                .deadline(Duration::from_secs(2)),
        )
        .journal(Arc::new(bluegreen_core::journal::InMemoryJournal::new()))
        .lock(Arc::new(bluegreen_core::lock::InMemoryLock::new()))
        .build()
        .unwrap();
    let blue = v1_live(&deployer, &router).await;

    let started = std::time::Instant::now();
    let (reason, logs) = rolled_back(deployer.deploy(release("sick")).await);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(reason.contains("no verdict within 2s"), "{reason}");
    assert!(reason.contains("unhealthy") || reason.contains("starting"), "{reason}");
    assert!(logs.iter().any(|l| l.contains("fail_health=true")), "{logs:?}");
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn a_host_port_already_taken_is_named_and_nothing_is_left_behind() {
    let Some(fx) = setup("porttaken", &["v1", "v2"]).await else {
        return;
    };
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let config = fx.config().expose(Expose::Published {
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        blue_port: 0,
        green_port: port,
    });
    let env = fx.env(config).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = fx.deployer(&env, router.clone());
    let blue = v1_live(&deployer, &router).await;

    let err = env.deploy(Slot::Green, &release("v2")).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("host port {port}")) && text.contains("already in use"),
        "{text}"
    );
    assert!(!err.is_temporary());
    assert_eq!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Absent,
        "the failed container was removed"
    );
    let (reason, _) = rolled_back(deployer.deploy(release("v2")).await);
    assert!(reason.contains("already in use"), "{reason}");
    live_untouched(&env, &router, &blue).await;
}

#[tokio::test]
async fn an_unreachable_daemon_is_a_temporary_error_naming_the_socket() {
    let Some(fx) = setup("nodaemon", &[]).await else { return };
    let bad = fx.config().socket("/nonexistent/docker.sock");
    let err = DockerEnvironment::connect(bad).await.unwrap_err();
    assert!(err.is_temporary(), "{err:?}");
    assert!(err.to_string().contains("unix:///nonexistent/docker.sock"), "{err}");

    // A client whose daemon went away (a socket file nobody listens on): every call is a
    // temporary backend error, not a panic.
    let dir = std::env::temp_dir().join(format!("bluegreen-docker-dead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dead = dir.join("docker.sock");
    let _ = std::fs::remove_file(&dead);
    drop(std::os::unix::net::UnixListener::bind(&dead).unwrap());
    let client = bluegreen_docker::bollard::Docker::connect_with_socket(
        dead.to_str().unwrap(),
        5,
        bluegreen_docker::bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    let env = DockerEnvironment::with_client(client, fx.config());
    for err in [
        env.status(Slot::Blue).await.unwrap_err(),
        env.deploy(Slot::Blue, &release("v1")).await.unwrap_err(),
        env.stop(Slot::Blue, Duration::from_secs(1)).await.unwrap_err(),
    ] {
        assert!(matches!(err, Error::Backend { temporary: true, .. }), "{err:?}");
    }
    let outcome = env
        .health_probe()
        .check(&ProbeTarget {
            slot: Slot::Blue,
            endpoint: Endpoint::new("127.0.0.1", 1).unwrap(),
        })
        .await;
    assert!(matches!(outcome, ProbeOutcome::ProviderError(_)), "{outcome:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_container_removed_behind_our_back_is_noticed() {
    let Some(fx) = fixture_with("vanish", &[("slow", &[("SLOW_START_MS", "3000")])]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let router = Arc::new(InMemoryRouter::new());
    let deployer = Arc::new(fx.deployer(&env, router.clone()));
    let blue = v1_live(&deployer, &router).await;
    let remove = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };

    // Between steps of a deployment: green vanishes while it is being verified.
    let mut events = deployer.subscribe();
    let deploy = tokio::spawn({
        let deployer = deployer.clone();
        async move { deployer.deploy(release("slow")).await }
    });
    loop {
        let event = events.recv().await.expect("events");
        if let EventKind::PhaseChanged {
            to: Phase::Verifying, ..
        } = event.kind
        {
            break;
        }
    }
    let green = env.config().container_name(Slot::Green);
    fx.docker.remove_container(&green, Some(remove.clone())).await.unwrap();
    let (reason, _) = rolled_back(deploy.await.unwrap());
    assert!(
        reason.contains(&format!("container {green} does not exist")),
        "{reason}"
    );
    live_untouched(&env, &router, &blue).await;

    // Between direct calls: every method copes with the container being gone.
    env.deploy(Slot::Green, &release("v1")).await.unwrap();
    fx.docker.remove_container(&green, Some(remove)).await.unwrap();
    assert_eq!(env.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
    assert_eq!(
        env.stop(Slot::Green, Duration::from_secs(1)).await.unwrap(),
        StopOutcome::NotRunning
    );
    assert_eq!(env.logs(Slot::Green, 5).await.unwrap(), Vec::<String>::new());
    env.remove(Slot::Green).await.unwrap();
    let again = env.deploy(Slot::Green, &release("v1")).await.unwrap();
    assert_serves(&again, "v1").await;
    live_untouched(&env, &router, &blue).await;
}
