//! What `observe` and `current` report for files nginx does not serve or bluegreen did not write.

use bluegreen_core::{Error, Router, Routes, Serving, Slot, TrafficSplit};

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_written_but_never_reloaded_is_stale_and_not_live() {
    let Some(nginx) = common::nginx() else { return };
    let Some((v1, v2)) = common::demo_apps() else { return };
    let router = common::router(&nginx);
    let green = Routes::only(Slot::Green, v2.endpoint());
    router.apply(&green).await.unwrap();
    let green_file = std::fs::read(nginx.router_file()).unwrap();
    router.apply(&Routes::only(Slot::Blue, v1.endpoint())).await.unwrap();

    // The file the router wrote for green, put back without a reload: a crash between the write
    // and the reload.
    std::fs::write(nginx.router_file(), &green_file).unwrap();
    let seen = router.observe().await.unwrap();
    assert!(matches!(seen.serving, Serving::Stale(_)), "{seen:?}");
    assert_eq!(seen.configured, Some(green.clone()));
    assert_eq!(seen.live(), None, "a stale file is not what is live");
    assert_eq!(
        router.current().await.unwrap(),
        Some(green.clone()),
        "current reads the file"
    );

    // The next apply of the same routes cannot be skipped: it reloads, and nginx confirms it.
    router.apply(&green).await.unwrap();
    assert_eq!(router.observe().await.unwrap().live(), Some(&green));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weight_past_u32_is_a_backend_error_not_a_panic_and_foreign() {
    let Some(nginx) = common::nginx() else { return };
    let Some((v1, v2)) = common::demo_apps() else { return };
    let router = common::router(&nginx);
    let split = TrafficSplit::new(90, 10).unwrap();
    router
        .apply(&Routes::new(split, Some(v1.endpoint().into()), Some(v2.endpoint().into())).unwrap())
        .await
        .unwrap();
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    assert!(text.contains(" weight=9;"), "{text}");
    std::fs::write(nginx.router_file(), text.replace(" weight=9;", " weight=99999999999;")).unwrap();

    let err = router.current().await.unwrap_err();
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    let seen = router.observe().await.unwrap();
    assert!(matches!(seen.serving, Serving::Foreign(_)), "{seen:?}");
    assert_eq!(seen.live(), None);
}
