//! The router alone: not running, API unreachable, unsafe values, a refused file, a dropped
//! apply, and hybrid mode with a missing discovered service.

use std::time::Duration;

use crate::common::{Rig, HOST};
use bluegreen_core::{Error, Restore, Router, Routes, Slot, TrafficSplit};
use bluegreen_testkit::scenario::versions_seen;

fn file_bytes(rig: &Rig, name: &str) -> Option<Vec<u8>> {
    std::fs::read(rig.traefik.watched_dir().join(name)).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_not_running_is_a_clear_error_and_nothing_is_written() {
    let Some(mut rig) = Rig::start(Duration::ZERO) else {
        return;
    };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    let all_blue = Routes::only(Slot::Blue, blue.clone());
    router.apply(&all_blue).await.unwrap();
    let before = file_bytes(&rig, "shop.toml").unwrap();

    rig.traefik.stop();
    let err = router.apply(&Routes::only(Slot::Green, green)).await.unwrap_err();
    let text = err.chain().to_string();
    assert!(err.is_temporary(), "{err:?}");
    assert!(
        matches!(err, Error::Backend { .. }) && text.contains("unreachable") && text.contains("nothing was written"),
        "{text}"
    );
    assert_eq!(
        file_bytes(&rig, "shop.toml").unwrap(),
        before,
        "the file still says what was live"
    );
    assert_eq!(
        router.current().await.unwrap(),
        Some(all_blue),
        "current reads the file without the API"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_api_writes_nothing() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let router = rig
        .builder(Duration::ZERO)
        .api_url(format!("http://{closed_port}"))
        .build()
        .unwrap();
    let err = router
        .apply(&Routes::only(Slot::Blue, rig.blue.endpoint()))
        .await
        .unwrap_err();
    assert!(
        err.chain().to_string().contains(&closed_port.to_string()),
        "{}",
        err.chain()
    );
    assert!(rig.watched_files().is_empty(), "{:?}", rig.watched_files());
    assert_eq!(router.current().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_values_are_refused_and_nothing_is_written() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let cases = [
        (
            "traefik rule",
            rig.builder(Duration::ZERO).api_url(rig.traefik.api_url()),
        ),
        (
            "traefik router name",
            rig.builder(Duration::ZERO).router_name("shop@file"),
        ),
        (
            "traefik service name",
            rig.builder(Duration::ZERO).service_name("shop\"]\n[x"),
        ),
        ("traefik entrypoint", rig.builder(Duration::ZERO).entry_point("web; rm")),
        (
            "traefik provider",
            rig.builder(Duration::ZERO).discovered_provider("docker}"),
        ),
        ("traefik api url", rig.builder(Duration::ZERO).api_url("not a url")),
    ];
    for (i, (what, builder)) in cases.into_iter().enumerate() {
        let builder = if i == 0 {
            bluegreen_traefik::TraefikRouter::builder(
                bluegreen_core::AppName::new("shop").unwrap(),
                rig.traefik.watched_dir(),
                "Host(`a`)\n[http.routers.evil]",
            )
            .staging_directory(rig.traefik.staging_dir())
        } else {
            builder
        };
        match builder.build() {
            Err(Error::Invalid { what: got, value, .. }) => assert_eq!(got, what, "{value}"),
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    assert!(rig.watched_files().is_empty(), "{:?}", rig.watched_files());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_traefik_refuses_is_reported_and_the_previous_file_restored() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let good = rig.router();
    let (blue, green) = rig.endpoints();
    good.apply(&Routes::only(Slot::Blue, blue.clone())).await.unwrap();
    let before = file_bytes(&rig, "shop.toml").unwrap();

    // Same application, but an entrypoint Traefik does not have: Traefik disables the router.
    let bad = rig.builder(Duration::ZERO).entry_point("missing").build().unwrap();
    let both = Routes::new(TrafficSplit::all(Slot::Green), Some(blue.into()), Some(green.into())).unwrap();
    let err = bad.apply(&both).await.unwrap_err();
    let text = err.chain().to_string();
    assert!(
        matches!(
            &err,
            Error::NotApplied {
                restore: Restore::Restored,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(text.contains("refused") && text.contains("missing"), "{text}");
    assert_eq!(file_bytes(&rig, "shop.toml").unwrap(), before);
    // Traefik goes back to the restored file: v1 serves again, and the good router confirms it.
    good.apply(&Routes::only(Slot::Blue, rig.blue.endpoint()))
        .await
        .unwrap();
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
    assert_eq!(seen.get("v1"), Some(&20), "{seen:?}");

    // A refused first file is removed again.
    let mut cfg = rig.builder(Duration::ZERO).entry_point("missing").config().clone();
    cfg.app = bluegreen_core::AppName::new("other").unwrap();
    (cfg.router, cfg.service) = (Some("other".into()), Some("other".into()));
    let other = bluegreen_traefik::TraefikRouter::new(cfg).unwrap();
    assert!(other
        .apply(&Routes::only(Slot::Blue, rig.blue.endpoint()))
        .await
        .is_err());
    assert_eq!(rig.watched_files(), ["shop.toml"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_apply_leaves_old_or_new_whole_and_current_says_which() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let router = rig.router();
    let (blue, green) = rig.endpoints();
    let both = |slot| {
        Routes::new(
            TrafficSplit::all(slot),
            Some(blue.clone().into()),
            Some(green.clone().into()),
        )
        .unwrap()
    };
    router.apply(&both(Slot::Blue)).await.unwrap();
    let mut outcomes = Vec::new();
    for (i, micros) in [0u64, 200, 500, 1_000, 2_000, 5_000, 20_000].into_iter().enumerate() {
        let target = if i % 2 == 0 { Slot::Green } else { Slot::Blue };
        let dropped = tokio::time::timeout(Duration::from_micros(micros), router.apply(&both(target))).await;
        let current = router.current().await.unwrap().unwrap();
        let on = current.split().sole().unwrap();
        outcomes.push((micros, dropped.is_ok(), on));
        // Whatever current says is what Traefik ends up serving: confirm it, then look.
        router.apply(&current).await.unwrap();
        let version = if on == Slot::Blue { "v1" } else { "v2" };
        let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
        assert_eq!(seen.get(version), Some(&20), "after a drop at {micros}µs: {seen:?}");
        // Settle on the target, so that the next iteration's target is a change.
        router.apply(&both(target)).await.unwrap();
    }
    eprintln!("(drop after µs, finished, slot on disk): {outcomes:?}");

    // An apply dropped while waiting behind another never lands, not even after the other ends.
    router.apply(&both(Slot::Blue)).await.unwrap();
    let (to_green, to_blue) = (both(Slot::Green), both(Slot::Blue));
    let (first, dropped) = tokio::join!(
        router.apply(&to_green),
        tokio::time::timeout(Duration::from_millis(5), router.apply(&to_blue))
    );
    first.unwrap();
    assert!(
        dropped.is_err(),
        "the second apply waited behind the first and was dropped"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(router.current().await.unwrap(), Some(both(Slot::Green)));
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
    assert_eq!(seen.get("v2"), Some(&20), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hybrid_mode_weights_discovered_services_and_refuses_a_missing_one() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    // Another provider's services, as containers' labels would declare them. Here the file
    // provider itself plays that role (`shop-blue@file`), so no Docker is needed.
    let services = |slots: &[(&str, std::net::SocketAddr)]| {
        let mut out = String::new();
        for (slot, addr) in slots {
            out.push_str(&format!(
                "[[http.services.shop-{slot}.loadBalancer.servers]]\nurl = \"http://{addr}\"\n"
            ));
        }
        out
    };
    let services_file = rig.traefik.watched_dir().join("discovered.toml");
    std::fs::write(&services_file, services(&[("blue", rig.blue.addr())])).unwrap();
    // A missing service is waited for until the confirmation deadline, then refused.
    let router = rig
        .builder(Duration::ZERO)
        .confirm_timeout(Duration::from_secs(1))
        .discovered_provider("file")
        .build()
        .unwrap();
    let (blue, green) = rig.endpoints();
    let routes = |slot| {
        Routes::new(
            TrafficSplit::all(slot),
            Some(blue.clone().into()),
            Some(green.clone().into()),
        )
        .unwrap()
    };

    // The file provider has to load discovered.toml first.
    bluegreen_core::backend::wait::poll(
        "blue discovered",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async { Ok(router.apply(&routes(Slot::Blue)).await.ok()) },
    )
    .await
    .unwrap();
    assert_eq!(router.current().await.unwrap(), Some(routes(Slot::Blue)));
    let before = file_bytes(&rig, "shop.toml").unwrap();

    let err = router.apply(&routes(Slot::Green)).await.unwrap_err();
    assert!(
        matches!(&err, Error::NotFound { name, .. }
            if name.contains("shop-green@file") && name.contains("within 1s; nothing was written")),
        "{err}"
    );
    assert_eq!(file_bytes(&rig, "shop.toml").unwrap(), before);

    std::fs::write(
        &services_file,
        services(&[("blue", rig.blue.addr()), ("green", rig.green.addr())]),
    )
    .unwrap();
    let green_live = bluegreen_core::backend::wait::poll(
        "green discovered",
        Duration::from_secs(5),
        Duration::from_millis(20),
        || async { Ok(router.apply(&routes(Slot::Green)).await.ok()) },
    )
    .await;
    green_live.unwrap();
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
    assert_eq!(seen.get("v2"), Some(&20), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_traefik_reports_down_times_out_and_the_previous_file_is_restored() {
    let Some(rig) = Rig::start(Duration::ZERO) else { return };
    let sick = match bluegreen_testkit::demo::DemoApp::start("v3", &[("FAIL_HEALTH", "1")]) {
        Ok(app) => app,
        Err(why) => return bluegreen_testkit::real::unavailable("demo-app", why),
    };
    let mut check = bluegreen_traefik::HealthCheck::new("/health");
    check.interval = Duration::from_millis(100);
    let router = rig
        .builder(Duration::ZERO)
        .health_check(check)
        .confirm_timeout(Duration::from_millis(1500))
        .build()
        .unwrap();
    let blue = rig.blue.endpoint();
    router.apply(&Routes::only(Slot::Blue, blue.clone())).await.unwrap();
    let before = file_bytes(&rig, "shop.toml").unwrap();

    let to_sick = Routes::new(
        TrafficSplit::all(Slot::Green),
        Some(blue.into()),
        Some(sick.endpoint().into()),
    )
    .unwrap();
    let err = router.apply(&to_sick).await.unwrap_err();
    let text = err.chain().to_string();
    assert!(
        matches!(&err, Error::NotApplied { restore: Restore::Restored, source }
            if matches!(**source, Error::Timeout { .. })),
        "{err:?}"
    );
    assert!(text.contains("not UP"), "{text}");
    assert_eq!(file_bytes(&rig, "shop.toml").unwrap(), before);
    router
        .apply(&Routes::only(Slot::Blue, rig.blue.endpoint()))
        .await
        .unwrap();
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
    assert_eq!(seen.get("v1"), Some(&20), "{seen:?}");
}
