//! The core `Environment` contract, against the real Docker Engine.

mod common;

use std::time::Duration;

use bluegreen_core::backend::{environment_conformance, environment_conformance_with_replicas};
use bluegreen_core::{Environment, Slot, SlotStatus};
use bluegreen_docker::{labels, DockerEnvironment, Expose, RestartPolicy};
use bollard::models::RestartPolicyNameEnum;
use bollard::query_parameters::InspectContainerOptions;
use common::{assert_serves, release, setup};

#[tokio::test]
async fn docker_environment_conforms() {
    let Some(fx) = setup("conformance", &["v1", "v2"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    environment_conformance(&env, release("v1"), release("v2"), Duration::from_secs(5)).await;
}

#[tokio::test]
async fn docker_environment_conforms_with_three_replicas() {
    let Some(fx) = setup("conformance-rep", &["v1", "v2"]).await else {
        return;
    };
    let env = fx.env(fx.config().replicas(3)).await;
    environment_conformance_with_replicas(&env, release("v1"), release("v2"), Duration::from_secs(5), 3).await;
}

#[tokio::test]
async fn containers_are_labelled_run_under_init_and_rediscovered_by_a_new_instance() {
    let Some(fx) = setup("discovery", &["v1", "v2"]).await else {
        return;
    };
    let config = fx
        .config()
        .memory_bytes(64 << 20)
        .cpus(0.5)
        .restart(RestartPolicy::OnFailure { max_retries: 2 })
        .label("team", "web");
    let env = fx.env(config).await;
    let blue = env.deploy(Slot::Blue, &release("v1")).await.unwrap();
    let green = env.deploy(Slot::Green, &release("v2")).await.unwrap();
    assert_eq!((blue.len(), green.len()), (1, 1), "one replica by default");
    assert_eq!(blue.first().host(), "127.0.0.1");
    assert_serves(blue.first(), "v1").await;
    assert_serves(green.first(), "v2").await;

    let name = env.config().container_name(Slot::Green);
    let info = fx
        .docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .unwrap();
    let config = info.config.unwrap();
    let l = config.labels.clone().unwrap();
    assert_eq!(l[labels::APP], fx.app.name().as_str());
    assert_eq!(l[labels::SLOT], "green");
    assert_eq!(l[labels::RELEASE], "v2");
    assert!(l[labels::DEPLOYED_AT].ends_with('Z'));
    assert_eq!(l["team"], "web");
    // One replica: labelled as before replicas existed.
    assert!(
        !l.contains_key(labels::REPLICA) && !l.contains_key(labels::REPLICAS),
        "{l:?}"
    );
    let host = info.host_config.unwrap();
    assert_eq!(host.init, Some(true));
    assert_eq!((host.memory, host.nano_cpus), (Some(64 << 20), Some(500_000_000)));
    let restart = host.restart_policy.unwrap();
    assert_eq!(
        (restart.name, restart.maximum_retry_count),
        (Some(RestartPolicyNameEnum::ON_FAILURE), Some(2))
    );
    let check = config.healthcheck.unwrap();
    assert_eq!(check.test.unwrap(), ["CMD", "/demo-app", "--health-check"]);
    assert_eq!(check.interval, Some(100_000_000));
    // docker-init is PID 1 and the app its child: signals reach the app through it.
    let top = fx.docker.top_processes(&name, None).await.unwrap();
    let commands: Vec<String> = top
        .processes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| p.last().cloned())
        .collect();
    assert!(commands.iter().any(|c| c.contains("docker-init")), "{commands:?}");
    assert!(commands.iter().any(|c| c.contains("/demo-app")), "{commands:?}");

    // A deployer restarted from nothing learns what runs from the engine.
    let fresh = DockerEnvironment::connect(fx.config()).await.unwrap();
    assert_eq!(
        fresh.status(Slot::Blue).await.unwrap(),
        SlotStatus::Running {
            release: release("v1"),
            endpoints: blue
        }
    );
    let found = fresh.containers().await.unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].labels.slot, Slot::Green, "newest first");
}

#[tokio::test]
async fn network_address_endpoints_serve_on_the_bridge() {
    let Some(fx) = setup("netaddr", &["v1", "v2"]).await else {
        return;
    };
    let env = fx.env(fx.config().expose(Expose::NetworkAddress)).await;
    let blue = env.deploy(Slot::Blue, &release("v1")).await.unwrap();
    let green = env.deploy(Slot::Green, &release("v2")).await.unwrap();
    let (b, g) = (blue.first(), green.first());
    assert_eq!((b.port(), g.port()), (8080, 8080));
    assert_ne!(b.host(), g.host());
    assert!(b.host().parse::<std::net::Ipv4Addr>().is_ok(), "{b}");
    assert_serves(b, "v1").await;
    assert_serves(g, "v2").await;
    assert_eq!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Running {
            release: release("v2"),
            endpoints: green
        }
    );
}

#[tokio::test]
async fn leftovers_of_dead_test_runs_are_removed() {
    use crate::common::fixtures::{self, remove_leftovers, OWNER_LABEL};
    use bollard::models::ContainerCreateBody;
    use bollard::query_parameters::CreateContainerOptions;

    let Some(fx) = setup("leftovers", &["v1"]).await else {
        return;
    };
    // A pid above Linux's pid_max: its owner cannot be running.
    let name = format!("{}-orphan", fx.app.name());
    let body = ContainerCreateBody {
        image: Some(format!("{}:v1", fx.images.repository())),
        labels: Some([(OWNER_LABEL.to_string(), "4194305".to_string())].into()),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    fx.docker.create_container(Some(options), body).await.unwrap();
    remove_leftovers(&fixtures::Connection {
        engine: fx.engine.clone(),
        docker: fx.docker.clone(),
    })
    .await;
    let gone = fx
        .docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await;
    assert!(gone.is_err(), "the orphan was removed");
}
