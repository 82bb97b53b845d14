//! The core Router conformance suite, against real Traefik.

mod common;

use std::time::Duration;

use bluegreen_core::backend::router_conformance;
use bluegreen_core::{Endpoint, Endpoints, Router};
use bluegreen_testkit::scenario::versions_seen;
use common::{Rig, HOST};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_router_passes_the_core_conformance_suite() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    tokio::time::timeout(Duration::from_secs(60), router_conformance(&router, blue, green))
        .await
        .expect("the suite finished within 60 s");
    // The suite leaves all traffic on blue: clients see only v1.
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 50).await;
    assert_eq!(seen.get("v1"), Some(&50), "{seen:?}");
    assert_eq!(rig.watched_files(), ["shop.toml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_holds_with_the_yaml_format_and_a_health_check() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig
        .builder(Duration::ZERO)
        .format(bluegreen_traefik::FileFormat::Yaml)
        .health_check(bluegreen_traefik::HealthCheck::new("/health"))
        .build()
        .unwrap();
    let (blue, green) = rig.endpoints();
    tokio::time::timeout(Duration::from_secs(60), router_conformance(&router, blue, green))
        .await
        .expect("the suite finished within 60 s");
    assert_eq!(rig.watched_files(), ["shop.yaml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_holds_with_3_instances_per_slot() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    // Endpoints need not answer for the suite (no health check): Traefik shows every server UP.
    let at = |ports: [u16; 3]| Endpoints::new(ports.map(|p| Endpoint::new("127.0.0.1", p).unwrap())).unwrap();
    let (blue, green) = (at([18081, 18083, 18085]), at([18082, 18084, 18086]));
    tokio::time::timeout(
        Duration::from_secs(60),
        router_conformance(&router, blue.clone(), green.clone()),
    )
    .await
    .expect("the suite finished within 60 s");
    // The slots left routed list all three servers each.
    let text = std::fs::read_to_string(rig.traefik.watched_dir().join("shop.toml")).unwrap();
    let routes = router.current().await.unwrap().expect("routes");
    for (slot, _, endpoints) in routes.weighted() {
        assert_eq!(endpoints.len(), 3, "{slot}: {routes:?}");
        for endpoint in endpoints {
            assert!(
                text.contains(&format!("url = \"{}\"", endpoint.url(""))),
                "{endpoint}: {text}"
            );
        }
    }
}
