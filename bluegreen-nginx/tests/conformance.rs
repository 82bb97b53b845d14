//! The core Router contract, against a real nginx.

mod common;

use std::time::Duration;

use bluegreen_core::backend::router_conformance;
use bluegreen_core::backend::DrainStatus;
use bluegreen_core::{Endpoint, Endpoints, Router, Routes, Slot, TrafficSplit};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_router_passes_the_router_conformance_suite() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    assert!(router.capabilities().weighted && router.capabilities().confirms);
    assert!(router.capabilities().observes_drain, "the pid file is known");
    let blue = Endpoint::new("127.0.0.1", 18081).unwrap();
    let green = Endpoint::new("127.0.0.1", 18082).unwrap();
    tokio::time::timeout(Duration::from_secs(60), router_conformance(&router, blue, green))
        .await
        .expect("the suite finished within 60 s");
    // The file is what nginx serves: the live generation is the one on disk.
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    let live = router.live_generation().await.expect("the status server answers");
    assert!(
        text.contains(&live),
        "live {live} is not the file's generation:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_router_passes_the_router_conformance_suite_with_3_instances_per_slot() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    let at = |ports: [u16; 3]| Endpoints::new(ports.map(|p| Endpoint::new("127.0.0.1", p).unwrap())).unwrap();
    let (blue, green) = (at([18081, 18083, 18085]), at([18082, 18084, 18086]));
    tokio::time::timeout(
        Duration::from_secs(60),
        router_conformance(&router, blue.clone(), green.clone()),
    )
    .await
    .expect("the suite finished within 60 s");
    // The live generation is the file's, and the file routes every instance of the slots it routes.
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    let live = router.live_generation().await.expect("the status server answers");
    assert!(
        text.contains(&live),
        "live {live} is not the file's generation:\n{text}"
    );
    let routes = router.current().await.unwrap().expect("routes");
    for (slot, _, endpoints) in routes.weighted() {
        assert_eq!(endpoints.len(), 3, "{slot}: {text}");
        for e in endpoints {
            assert!(text.contains(&format!("server {} ", e.authority())), "{e}: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_the_instance_set_alone_is_applied_and_confirmed() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    let at = |ports: &[u16]| Endpoints::new(ports.iter().map(|p| Endpoint::new("127.0.0.1", *p).unwrap())).unwrap();
    let three = Routes::only(Slot::Blue, at(&[18081, 18083, 18085]));
    router.apply(&three).await.unwrap();
    let before = router.live_generation().await.unwrap();
    // Same slot, same split, one instance replaced: a new generation, confirmed live.
    let replaced = Routes::only(Slot::Blue, at(&[18081, 18083, 18087]));
    router.apply(&replaced).await.unwrap();
    let after = router.live_generation().await.unwrap();
    assert_ne!(before, after, "the instance set changed: nginx must reload");
    let seen = router.observe().await.unwrap();
    assert!(seen.serves(&replaced), "{seen:?}");
    // The same instances listed in another order are the same routes: served already, no reload.
    let reordered = Routes::only(Slot::Blue, at(&[18087, 18081, 18083]));
    assert_eq!(reordered, replaced);
    router.apply(&reordered).await.unwrap();
    assert_eq!(router.current().await.unwrap(), Some(replaced));
    assert_eq!(router.live_generation().await.unwrap(), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_is_observed_and_reapplying_does_not_reload() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    let blue = Endpoint::new("127.0.0.1", 18081).unwrap();
    let green = Endpoint::new("127.0.0.1", 18082).unwrap();
    let routes = Routes::new(
        TrafficSplit::new(75, 25).unwrap(),
        Some(blue.into()),
        Some(green.into()),
    )
    .unwrap();
    router.apply(&routes).await.unwrap();
    assert_eq!(
        router.wait_drained(Duration::from_secs(10)).await.unwrap(),
        DrainStatus::Drained
    );
    let before = router.live_generation().await.unwrap();
    router.apply(&routes).await.unwrap();
    assert_eq!(
        router.live_generation().await.unwrap(),
        before,
        "idempotent: no new generation"
    );
    assert_eq!(router.current().await.unwrap(), Some(routes));
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    assert!(text.contains("weight=3;") && text.contains("weight=1;"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_apply_never_lands_later_and_disk_matches_what_is_live() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    let e = |port| Endpoint::new("127.0.0.1", port).unwrap();
    router.apply(&Routes::only(Slot::Blue, e(18081))).await.unwrap();
    // Cancel applies at increasing points: before the write, during `nginx -t`, during the
    // confirmation. Each time, once things settle, the live generation is the file's.
    for (i, after_ms) in [0u64, 1, 3, 8, 15, 25, 40, 70, 120].into_iter().enumerate() {
        let target = Routes::only(if i % 2 == 0 { Slot::Green } else { Slot::Blue }, e(18082 + i as u16));
        let _ = tokio::time::timeout(Duration::from_millis(after_ms), router.apply(&target)).await;
        // Whatever was in flight finishes (it holds the router's lock): a later apply waits for it.
        let settled = Routes::only(Slot::Blue, e(18081));
        let on_disk = router.current().await.unwrap().unwrap();
        assert!(on_disk == target || on_disk == settled, "{on_disk:?}");
        router.apply(&settled).await.unwrap();
        assert_eq!(router.current().await.unwrap(), Some(settled.clone()));
        let text = std::fs::read_to_string(nginx.router_file()).unwrap();
        let live = router.live_generation().await.unwrap();
        assert!(
            text.contains(&live),
            "cancelled after {after_ms} ms: live {live}, file:\n{text}"
        );
    }
    // Nothing lands afterwards.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    assert!(text.contains(&router.live_generation().await.unwrap()));
    assert_eq!(
        router.current().await.unwrap(),
        Some(Routes::only(Slot::Blue, e(18081)))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_applications_on_one_nginx_each_confirm_their_own_generation() {
    let Some(nginx) = common::nginx() else { return };
    let Some((v1, v2)) = common::demo_apps() else { return };
    let shop = common::router(&nginx);
    // A second application: its own file and upstream, the same token server address.
    let other_file = nginx.router_file().with_file_name("cart.conf");
    let cart = bluegreen_nginx::NginxRouter::builder(&other_file, "cart")
        .nginx_binary(nginx.binary())
        .nginx_prefix(nginx.prefix())
        .nginx_conf(nginx.conf_path())
        .pid_file(nginx.pid_file())
        .status_listen(nginx.status_addr())
        .confirm(Duration::from_secs(10), Duration::from_millis(5))
        .build()
        .expect("valid config");
    for _ in 0..2 {
        shop.apply(&Routes::only(Slot::Blue, v1.endpoint()))
            .await
            .expect("shop confirms");
        cart.apply(&Routes::only(Slot::Green, v2.endpoint()))
            .await
            .expect("cart confirms");
        shop.apply(&Routes::only(Slot::Green, v2.endpoint()))
            .await
            .expect("shop confirms again");
        cart.apply(&Routes::only(Slot::Blue, v1.endpoint()))
            .await
            .expect("cart confirms again");
    }
}
