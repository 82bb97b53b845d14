//! Weighted splits as clients see them through a real nginx.

mod common;

use bluegreen_core::{Router, Routes, Slot, TrafficSplit};
use bluegreen_testkit::scenario::versions_seen;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_90_10_split_lands_within_3_points_over_1000_requests() {
    let Some(nginx) = common::nginx() else { return };
    let Some((v1, v2)) = common::demo_apps() else { return };
    let router = common::router(&nginx);
    let (blue, green) = (Some(v1.endpoint().into()), Some(v2.endpoint().into()));

    router
        .apply(&Routes::new(TrafficSplit::new(90, 10).unwrap(), blue.clone(), green.clone()).unwrap())
        .await
        .unwrap();
    let seen = versions_seen(nginx.addr(), "localhost", 1000).await;
    println!("90/10: {seen:?}");
    assert_eq!(seen.get("failed"), None, "{seen:?}");
    let v1_share = seen.get("v1").copied().unwrap_or(0) as f64 / 10.0;
    assert!(
        (87.0..=93.0).contains(&v1_share),
        "v1 got {v1_share}% of 1000: {seen:?}"
    );

    // A slot at 0 % gets nothing, even though its endpoint is known (and it runs).
    router
        .apply(&Routes::new(TrafficSplit::all(Slot::Green), blue, green).unwrap())
        .await
        .unwrap();
    let seen = versions_seen(nginx.addr(), "localhost", 200).await;
    assert_eq!(seen.get("v2"), Some(&200), "{seen:?}");
}
