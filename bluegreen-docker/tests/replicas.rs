//! Several replicas per slot on a real Docker Engine: one container per instance, each at its own
//! endpoint; the slot runs only when every replica runs; stop and remove cover every replica; a
//! replica that cannot start takes the others down with it.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::time::{Duration, Instant};

use bluegreen_core::{
    Endpoint, Endpoints, Environment, HealthProbe, ProbeOutcome, ProbeTarget, Slot, SlotStatus, StopOutcome,
};
use bluegreen_docker::{labels, DockerEnvironment, Expose};
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{InspectContainerOptions, KillContainerOptions, ListContainersOptions};
use common::{assert_serves, release, setup, Fixture};

/// The engine's own view of container `name` (not the SDK's).
async fn inspect(fx: &Fixture, name: &str) -> ContainerInspectResponse {
    fx.docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("inspect {name}: {e}"))
}

fn running(info: &ContainerInspectResponse) -> bool {
    info.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

/// The names of every container of the app, as the engine lists them.
async fn container_names(fx: &Fixture) -> Vec<String> {
    let options = ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_string(),
            vec![format!("{}={}", labels::APP, fx.app.name())],
        )])),
        ..Default::default()
    };
    let mut names: Vec<String> = fx
        .docker
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    names.sort();
    names
}

/// Polls the Docker health probe at `endpoint` until it says healthy (the health check runs every
/// 100 ms), or panics with the last outcome after 10 s.
async fn until_healthy(env: &DockerEnvironment, slot: Slot, endpoint: &Endpoint) {
    let probe = env.health_probe();
    let target = ProbeTarget::new(slot, endpoint.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = probe.check(&target).await;
        if outcome == ProbeOutcome::Healthy {
            return;
        }
        assert!(Instant::now() < deadline, "{endpoint} never healthy: {outcome:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn three_replicas_are_named_labelled_serve_apart_and_are_found_again() {
    let Some(fx) = setup("rep-three", &["v1"]).await else {
        return;
    };
    let env = fx.env(fx.config().replicas(3)).await;
    let endpoints = env.deploy(Slot::Blue, &release("v1")).await.unwrap();
    assert_eq!(endpoints.len(), 3, "{endpoints}");

    let app = fx.app.name();
    for (i, endpoint) in endpoints.iter().enumerate() {
        let name = format!("{app}-blue-{}", i + 1);
        assert_eq!(env.config().replica_name(Slot::Blue, i as u32 + 1), name);
        let info = inspect(&fx, &name).await;
        assert!(running(&info), "{name} runs");
        let l = info.config.unwrap().labels.unwrap();
        assert_eq!(l[labels::SLOT], "blue");
        assert_eq!(l[labels::RELEASE], "v1");
        assert_eq!(l[labels::REPLICA], (i + 1).to_string());
        assert_eq!(l[labels::REPLICAS], "3");
        assert_serves(endpoint, "v1").await;
        until_healthy(&env, Slot::Blue, endpoint).await;
    }
    assert_eq!(
        container_names(&fx).await,
        [1, 2, 3].map(|i| format!("{app}-blue-{i}")),
        "one container per replica, nothing else"
    );

    // A deployer restarted from nothing finds the same three.
    let fresh = DockerEnvironment::connect(fx.config().replicas(3)).await.unwrap();
    assert_eq!(
        fresh.status(Slot::Blue).await.unwrap(),
        SlotStatus::Running {
            release: release("v1"),
            endpoints: endpoints.clone()
        }
    );
    // Every replica's output, each line under its container's name.
    let logs = fresh.logs(Slot::Blue, 5).await.unwrap();
    for i in 1..=3 {
        let prefix = format!("{app}-blue-{i} | listening on");
        assert!(logs.iter().any(|l| l.starts_with(&prefix)), "{prefix} in {logs:#?}");
    }
    // One image for the slot.
    let snapshot = fresh.snapshot(Slot::Blue).await.unwrap().expect("blue has containers");
    let image = inspect(&fx, &format!("{app}-blue-2")).await.image;
    assert_eq!(snapshot.artifact(), image.as_deref());
}

#[tokio::test]
async fn one_exited_replica_makes_the_slot_not_running_and_stop_covers_the_rest() {
    let Some(fx) = setup("rep-exit", &["v1"]).await else {
        return;
    };
    let env = fx.env(fx.config().replicas(3)).await;
    let endpoints = env.deploy(Slot::Green, &release("v1")).await.unwrap();
    for endpoint in &endpoints {
        until_healthy(&env, Slot::Green, endpoint).await;
    }

    // Replica 2 dies behind our back. Endpoints are in canonical (port) order, not replica
    // order: find replica 2's by the host port its container publishes.
    let second = format!("{}-green-2", fx.app.name());
    let published: u16 = inspect(&fx, &second)
        .await
        .network_settings
        .and_then(|n| n.ports)
        .into_iter()
        .flatten()
        .filter_map(|(_, bindings)| bindings?.into_iter().find_map(|b| b.host_port?.parse().ok()))
        .next()
        .expect("replica 2 publishes a host port");
    let index = endpoints
        .iter()
        .position(|e| e.port() == published)
        .expect("replica 2's endpoint");
    let kill = KillContainerOptions {
        signal: "SIGKILL".to_string(),
    };
    fx.docker.kill_container(&second, Some(kill)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running(&inspect(&fx, &second).await) {
        assert!(Instant::now() < deadline, "{second} still runs after SIGKILL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    assert_eq!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped {
            release: release("v1"),
            exit_code: Some(137)
        },
        "two of three running is not running"
    );
    let probe = env.health_probe();
    match probe
        .check(&ProbeTarget::new(Slot::Green, endpoints.as_slice()[index].clone()))
        .await
    {
        ProbeOutcome::Unhealthy(why) => assert!(why.contains(&format!("container {second} is exited")), "{why}"),
        other => panic!("replica 2's endpoint: expected unhealthy, got {other:?}"),
    }
    for (i, endpoint) in endpoints.iter().enumerate().filter(|(i, _)| *i != index) {
        let outcome = probe.check(&ProbeTarget::new(Slot::Green, endpoint.clone())).await;
        assert_eq!(
            outcome,
            ProbeOutcome::Healthy,
            "instance {i} ({endpoint}) is judged on its own"
        );
    }

    // Stop reaches the two still running; afterwards none runs.
    let outcome = env.stop(Slot::Green, Duration::from_secs(5)).await.unwrap();
    assert_eq!(outcome, StopOutcome::Graceful { exit_code: Some(0) });
    for i in 1..=3 {
        let name = format!("{}-green-{i}", fx.app.name());
        assert!(!running(&inspect(&fx, &name).await), "{name} stopped");
    }
    assert!(matches!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped { .. }
    ));
    assert_eq!(
        env.stop(Slot::Green, Duration::from_secs(1)).await.unwrap(),
        StopOutcome::NotRunning
    );
    env.remove(Slot::Green).await.unwrap();
    assert_eq!(container_names(&fx).await, Vec::<String>::new());
    assert_eq!(env.status(Slot::Green).await.unwrap(), SlotStatus::Absent);
}

#[tokio::test]
async fn stop_kills_every_stubborn_replica_at_once_after_the_grace_period() {
    let Some(mut fx) = setup("rep-kill", &[]).await else {
        return;
    };
    fx.images
        .add(&fx.engine, "stubborn", &[("IGNORE_SIGTERM", "1")])
        .await
        .unwrap();
    let env = fx.env(fx.config().replicas(3)).await;
    let endpoints = env.deploy(Slot::Blue, &release("stubborn")).await.unwrap();
    for endpoint in &endpoints {
        assert_serves(endpoint, "stubborn").await;
    }

    let grace = Duration::from_secs(1);
    let started = Instant::now();
    let outcome = env.stop(Slot::Blue, grace).await.unwrap();
    let took = started.elapsed();
    assert_eq!(outcome, StopOutcome::Killed);
    assert!(took >= grace, "killed before the grace period: {took:?}");
    // One after the other would take three grace periods.
    assert!(
        took < grace * 2 + Duration::from_millis(500),
        "not concurrent: {took:?}"
    );
    for i in 1..=3 {
        let name = format!("{}-blue-{i}", fx.app.name());
        let info = inspect(&fx, &name).await;
        assert!(!running(&info), "{name} stopped");
        assert_eq!(info.state.and_then(|s| s.exit_code), Some(137), "{name} was killed");
    }
}

/// A base port whose next port is held by the returned listener (base and base + 2 were free).
fn ports_with_the_second_taken() -> (u16, TcpListener) {
    for _ in 0..50 {
        let probe = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = probe.local_addr().unwrap().port();
        drop(probe);
        if base > 65000 {
            continue;
        }
        let Ok(taken) = TcpListener::bind(("127.0.0.1", base + 1)) else {
            continue;
        };
        let free = |port| TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free(base) && free(base + 2) {
            return (base, taken);
        }
    }
    panic!("no three consecutive free ports on 127.0.0.1");
}

#[tokio::test]
async fn a_replica_that_cannot_start_takes_the_others_down_and_the_slot_is_empty() {
    let Some(fx) = setup("rep-port", &["v1"]).await else {
        return;
    };
    let (base, _taken) = ports_with_the_second_taken();
    let config = fx.config().replicas(3).expose(Expose::Published {
        host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        blue_port: base,
        green_port: 0,
    });
    let env = fx.env(config).await;
    let err = env.deploy(Slot::Blue, &release("v1")).await.unwrap_err();
    let text = err.to_string();
    let second = format!("{}-blue-2", fx.app.name());
    assert!(
        text.contains(&second) && text.contains(&format!("host port {} for the blue slot is already in use", base + 1)),
        "{text}"
    );
    assert_eq!(env.status(Slot::Blue).await.unwrap(), SlotStatus::Absent);
    assert_eq!(
        container_names(&fx).await,
        Vec::<String>::new(),
        "replicas 1 and 3 were removed"
    );

    // Fixed ports, once free: replica i at base + i - 1.
    drop(_taken);
    let endpoints = env.deploy(Slot::Blue, &release("v1")).await.unwrap();
    let expected = Endpoints::new((0..3).map(|i| Endpoint::new("127.0.0.1", base + i).unwrap())).unwrap();
    assert_eq!(endpoints, expected);
    assert_serves(&endpoints.as_slice()[2], "v1").await;
}

#[tokio::test]
async fn changing_the_replica_count_replaces_every_container_and_status_follows_the_labels() {
    let Some(fx) = setup("rep-change", &["v1", "v2"]).await else {
        return;
    };
    let three = fx.env(fx.config().replicas(3)).await;
    let one = fx.env(fx.config()).await;
    let app = fx.app.name();

    three.deploy(Slot::Blue, &release("v1")).await.unwrap();
    // The slot was deployed with three: a config that now says one still sees the three.
    assert_eq!(
        one.status(Slot::Blue).await.unwrap().endpoints().map(Endpoints::len),
        Some(3)
    );

    // Deploying with one replica removes all three (stale extras included).
    let single = one.deploy(Slot::Blue, &release("v2")).await.unwrap();
    assert_eq!(container_names(&fx).await, [format!("{app}-blue")]);
    assert_eq!(
        three.status(Slot::Blue).await.unwrap(),
        SlotStatus::Running {
            release: release("v2"),
            endpoints: single
        }
    );
    // And back to three.
    three.deploy(Slot::Blue, &release("v1")).await.unwrap();
    assert_eq!(container_names(&fx).await, [1, 2, 3].map(|i| format!("{app}-blue-{i}")));
    three.remove(Slot::Blue).await.unwrap();
    assert_eq!(container_names(&fx).await, Vec::<String>::new());
}
