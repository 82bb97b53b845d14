//! With Traefik's default 2 s providersThrottleDuration, quick switches still end confirmed.

mod common;

use std::time::{Duration, Instant};

use bluegreen_core::{Router, Routes, Slot, TrafficSplit};
use bluegreen_testkit::scenario::versions_seen;
use common::{Rig, HOST};

const DEFAULT_THROTTLE: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_switches_end_confirmed_at_the_second_split() {
    let Some(rig) = Rig::start(DEFAULT_THROTTLE) else {
        return;
    };
    let router = rig.builder(DEFAULT_THROTTLE).build().unwrap();
    let (blue, green) = rig.endpoints();
    let both = |split| Routes::new(split, Some(blue.clone().into()), Some(green.clone().into())).unwrap();
    router.apply(&both(TrafficSplit::all(Slot::Blue))).await.unwrap();

    let started = Instant::now();
    router.apply(&both(TrafficSplit::new(50, 50).unwrap())).await.unwrap();
    let first = started.elapsed();
    let second_routes = both(TrafficSplit::all(Slot::Green));
    router.apply(&second_routes).await.unwrap();
    let both_done = started.elapsed();
    eprintln!("first switch confirmed after {first:?}, second after {both_done:?} (throttle 2 s)");

    assert_eq!(router.current().await.unwrap(), Some(second_routes));
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 50).await;
    assert_eq!(seen.get("v2"), Some(&50), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_through_one_router_are_serialised_and_the_last_one_wins() {
    let Some(rig) = Rig::start(DEFAULT_THROTTLE) else {
        return;
    };
    let router = rig.builder(DEFAULT_THROTTLE).build().unwrap();
    let (blue, green) = rig.endpoints();
    let to_blue = Routes::new(
        TrafficSplit::all(Slot::Blue),
        Some(blue.clone().into()),
        Some(green.clone().into()),
    )
    .unwrap();
    let to_green = Routes::new(TrafficSplit::all(Slot::Green), Some(blue.into()), Some(green.into())).unwrap();
    let (a, b) = tokio::join!(router.apply(&to_blue), async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        router.apply(&to_green).await
    });
    a.unwrap();
    b.unwrap();
    assert_eq!(router.current().await.unwrap(), Some(to_green));
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 50).await;
    assert_eq!(seen.get("v2"), Some(&50), "{seen:?}");
}
