//! The split clients see through real Traefik: 90/10 over 1,000 requests, and a canary walk.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bluegreen_core::{Router, Routes, TrafficSplit};
use bluegreen_testkit::scenario::versions_seen;
use common::{Rig, HOST};

fn share(seen: &BTreeMap<String, usize>, version: &str, total: usize) -> f64 {
    100.0 * *seen.get(version).unwrap_or(&0) as f64 / total as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_ten_over_a_thousand_requests_is_within_three_points() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    let routes = Routes::new(
        TrafficSplit::new(90, 10).unwrap(),
        Some(blue.into()),
        Some(green.into()),
    )
    .unwrap();
    router.apply(&routes).await.unwrap();
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 1_000).await;
    eprintln!("90/10 over 1,000 requests: {seen:?}");
    assert_eq!(seen.get("failed"), None, "{seen:?}");
    let (v1, v2) = (share(&seen, "v1", 1_000), share(&seen, "v2", 1_000));
    assert!((v1 - 90.0).abs() <= 3.0 && (v2 - 10.0).abs() <= 3.0, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_walks_through_ten_fifty_and_a_hundred() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    router
        .apply(&Routes::only(bluegreen_core::Slot::Blue, blue.clone()))
        .await
        .unwrap();
    for green_weight in [10u8, 50, 100] {
        let split = TrafficSplit::new(100 - green_weight, green_weight).unwrap();
        let routes = Routes::new(split, Some(blue.clone().into()), Some(green.clone().into())).unwrap();
        router.apply(&routes).await.unwrap();
        assert_eq!(router.current().await.unwrap(), Some(routes));
        let seen = versions_seen(rig.traefik.web_addr(), HOST, 200).await;
        eprintln!("{split}: {seen:?}");
        assert_eq!(seen.get("failed"), None, "{split}: {seen:?}");
        let v2 = share(&seen, "v2", 200);
        assert!((v2 - f64::from(green_weight)).abs() <= 3.0, "{split}: {seen:?}");
    }
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 100).await;
    assert_eq!(seen.get("v2"), Some(&100), "all traffic on green at the end: {seen:?}");
}
