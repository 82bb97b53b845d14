//! The core Router conformance suite, against real Traefik.

mod common;

use std::time::Duration;

use bluegreen_core::backend::router_conformance;
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
