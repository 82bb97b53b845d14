//! The router alone: a broken user config, nginx not running, a generation that never answers,
//! unsafe values. The previous routes keep serving and stay on disk.

use std::time::Duration;

use bluegreen_core::{Endpoint, Error, Restore, Router, Routes, Scheme, Slot, TrafficSplit};
use bluegreen_nginx::{NginxConfig, NginxRouter, ReloadCommand};
use bluegreen_testkit::real::free_port;
use bluegreen_testkit::scenario::versions_seen;

use crate::common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_user_config_restores_the_file_and_keeps_serving_the_old_slot() {
    let Some(nginx) = common::nginx() else { return };
    let Some((v1, v2)) = common::demo_apps() else { return };
    let router = common::router(&nginx);
    let blue = Routes::only(Slot::Blue, v1.endpoint());
    router.apply(&blue).await.unwrap();
    let before = std::fs::read(nginx.router_file()).unwrap();

    nginx.break_config().unwrap();
    let err = router
        .apply(&Routes::only(Slot::Green, v2.endpoint()))
        .await
        .unwrap_err();
    let text = err.chain().to_string();
    println!("{text}");
    assert!(
        matches!(&err, Error::NotApplied { restore: Restore::Restored, source }
            if matches!(**source, Error::Backend { temporary: false, .. })),
        "{err:?}"
    );
    assert!(
        text.contains("unknown directive \"bluegreen_test_unknown_directive\""),
        "nginx's message: {text}"
    );
    assert_eq!(
        std::fs::read(nginx.router_file()).unwrap(),
        before,
        "the previous file, byte for byte"
    );
    assert_eq!(router.current().await.unwrap(), Some(blue.clone()));
    let seen = versions_seen(nginx.addr(), "localhost", 20).await;
    assert_eq!(seen.get("v1"), Some(&20), "still serving the old slot: {seen:?}");
    let leftovers: Vec<_> = std::fs::read_dir(nginx.router_file().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp file left: {leftovers:?}");

    nginx.repair_config().unwrap();
    router.apply(&Routes::only(Slot::Green, v2.endpoint())).await.unwrap();
    let seen = versions_seen(nginx.addr(), "localhost", 20).await;
    assert_eq!(seen.get("v2"), Some(&20), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_not_running_is_a_clear_error_and_disk_keeps_what_was_live() {
    let Some(mut nginx) = common::nginx() else { return };
    let blue = Routes::only(Slot::Blue, Endpoint::new("127.0.0.1", 18081).unwrap());
    let green = Routes::only(Slot::Green, Endpoint::new("127.0.0.1", 18082).unwrap());
    let by_nginx = common::router(&nginx);
    let by_signal = common::builder(&nginx).reload(ReloadCommand::Signal).build().unwrap();
    by_nginx.apply(&blue).await.unwrap();
    let before = std::fs::read(nginx.router_file()).unwrap();
    nginx.stop();

    for router in [&by_nginx, &by_signal] {
        let err = router.apply(&green).await.unwrap_err();
        let text = err.chain().to_string();
        println!("{text}");
        assert!(
            matches!(&err, Error::NotApplied { restore: Restore::Restored, source }
                if matches!(**source, Error::Backend { temporary: true, .. })),
            "{err:?}"
        );
        assert!(err.is_temporary());
        assert!(text.contains("reload failed") && text.contains("nginx.pid"), "{text}");
        assert_eq!(std::fs::read(nginx.router_file()).unwrap(), before);
        assert_eq!(router.current().await.unwrap(), Some(blue.clone()));
    }

    // Started again, nginx loads what the file says, and the router carries on.
    nginx.restart().unwrap();
    by_signal.apply(&green).await.unwrap();
    assert_eq!(by_nginx.current().await.unwrap(), Some(green));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_that_never_answers_times_out_and_restores() {
    let Some(nginx) = common::nginx() else { return };
    let blue = Routes::only(Slot::Blue, Endpoint::new("127.0.0.1", 18081).unwrap());
    common::router(&nginx).apply(&blue).await.unwrap();
    let before = std::fs::read(nginx.router_file()).unwrap();
    // Confirms against a port where nothing answers.
    let router = common::builder(&nginx)
        .confirm_url(format!("http://127.0.0.1:{}/__bluegreen", free_port().unwrap()))
        .confirm(Duration::from_millis(300), Duration::from_millis(10))
        .build()
        .unwrap();
    let err = router
        .apply(&Routes::only(Slot::Green, Endpoint::new("127.0.0.1", 18082).unwrap()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotApplied { restore: Restore::Restored, source }
            if matches!(**source, Error::Timeout { .. })),
        "{err:?}"
    );
    assert_eq!(std::fs::read(nginx.router_file()).unwrap(), before);
    assert_eq!(router.current().await.unwrap(), Some(blue));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsafe_values_are_refused_and_nothing_is_written() {
    let Some(nginx) = common::nginx() else { return };
    let file = nginx.router_file();

    // Values that would inject config, in the builder and in a config file.
    let bad_names = ["app;", "app }", "app\n server evil:1;", "a\"b", "", "a b"];
    for name in bad_names {
        let err = NginxRouter::builder(&file, name).build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    what: "nginx upstream name",
                    ..
                }
            ),
            "{name:?}: {err}"
        );
        let json = serde_json::json!({ "upstream_file": file, "upstream_name": name });
        let config: NginxConfig = serde_json::from_value(json).unwrap();
        assert!(NginxRouter::from_config(config).is_err(), "{name:?}");
    }
    for path in ["/a;b", "/a { }", "no-slash", "/x\"y"] {
        let err = common::builder(&nginx).status_path(path).build().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Invalid {
                    what: "nginx status path",
                    ..
                }
            ),
            "{path:?}: {err}"
        );
    }
    let err = common::builder(&nginx)
        .confirm_url("file:///etc/passwd")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "nginx confirm_url",
                ..
            }
        ),
        "{err}"
    );
    // Endpoints are validated by core on construction and on deserialisation.
    for host in ["a;b", "a}", "a\nb", "1.2.3.4 down"] {
        assert!(
            matches!(Endpoint::new(host, 80), Err(Error::Invalid { .. })),
            "{host:?}"
        );
    }
    // Routes one upstream cannot serve are refused by the router before anything is written.
    let router = common::router(&nginx);
    let mixed = Routes::new(
        TrafficSplit::new(50, 50).unwrap(),
        Some(Endpoint::new("127.0.0.1", 1).unwrap().into()),
        Some(Endpoint::new("127.0.0.1", 2).unwrap().with_scheme(Scheme::Https).into()),
    )
    .unwrap();
    let err = router.apply(&mixed).await.unwrap_err();
    assert!(matches!(err, Error::Invalid { what: "routes", .. }), "{err}");
    assert!(!file.exists(), "nothing written");
    assert_eq!(router.current().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_edited_file_is_reported_by_current_and_replaced_by_apply() {
    let Some(nginx) = common::nginx() else { return };
    let router = common::router(&nginx);
    std::fs::write(nginx.router_file(), "upstream app { server 127.0.0.1:18083; }\n").unwrap();
    let err = router.current().await.unwrap_err().to_string();
    assert!(err.contains("upstream.conf") && err.contains("edited"), "{err}");
    let blue = Routes::only(Slot::Blue, Endpoint::new("127.0.0.1", 18081).unwrap());
    router.apply(&blue).await.unwrap();
    assert_eq!(router.current().await.unwrap(), Some(blue));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_the_master_refuses_is_undone_and_explained() {
    let Some(nginx) = common::nginx() else { return };
    let Some((v1, v2)) = common::demo_apps() else { return };
    let blue = Routes::only(Slot::Blue, v1.endpoint());
    common::router(&nginx).apply(&blue).await.unwrap();
    let before = std::fs::read(nginx.router_file()).unwrap();

    // `nginx -t` does not bind, so it passes; the master then cannot bind the status port, logs
    // it, and keeps the old configuration. Only the confirmation can tell.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let router = common::builder(&nginx)
        .status_listen(taken.local_addr().unwrap())
        .confirm(Duration::from_secs(1), Duration::from_millis(10))
        .build()
        .unwrap();
    let err = router
        .apply(&Routes::only(Slot::Green, v2.endpoint()))
        .await
        .unwrap_err();
    let text = err.chain().to_string();
    println!("{text}");
    assert!(
        matches!(&err, Error::NotApplied { restore: Restore::Restored, source }
            if matches!(**source, Error::Timeout { .. })),
        "{err:?}"
    );
    assert!(text.contains("Address already in use"), "nginx's own message: {text}");
    assert_eq!(std::fs::read(nginx.router_file()).unwrap(), before);
    let seen = versions_seen(nginx.addr(), "localhost", 20).await;
    assert_eq!(seen.get("v1"), Some(&20), "still serving the old slot: {seen:?}");
}
