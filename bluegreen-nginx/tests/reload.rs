//! With its pid file known, the router reloads nginx by signalling the master itself (what
//! `nginx -s reload` does, without parsing the config once more); without it, by
//! `nginx -s reload`.

mod common;

use bluegreen_core::{Endpoint, Router, Routes, Serving, Slot};
use bluegreen_nginx::CommandSpec;

#[tokio::test]
async fn a_known_master_is_signalled_directly() {
    let Some(nginx) = common::nginx() else { return };
    // `nginx -t` through the real binary; any other use of `nginx_binary` would fail.
    let test = CommandSpec::new(
        nginx.binary(),
        [
            "-p".to_owned(),
            nginx.prefix().display().to_string(),
            "-c".to_owned(),
            nginx.conf_path().display().to_string(),
            "-t".to_owned(),
            "-q".to_owned(),
        ],
    );
    let router = common::builder(&nginx)
        .nginx_binary("/nonexistent/nginx")
        .test_command(test)
        .build()
        .unwrap();
    let blue = Endpoint::new("127.0.0.1", 18081).unwrap();
    router.apply(&Routes::only(Slot::Blue, blue)).await.unwrap();
    let observed = router.observe().await.unwrap();
    assert!(matches!(observed.serving, Serving::Confirmed), "{observed:?}");

    // Without the pid file, the reload is `nginx -s reload` with the (missing) binary: refused.
    let mut config = common::builder(&nginx)
        .nginx_binary("/nonexistent/nginx")
        .test_command(CommandSpec::new("true", Vec::<String>::new()))
        .config()
        .clone();
    config.pid_file = None;
    let router = bluegreen_nginx::NginxRouter::from_config(config).unwrap();
    let green = Endpoint::new("127.0.0.1", 18082).unwrap();
    let err = router.apply(&Routes::only(Slot::Green, green)).await.unwrap_err();
    // The failure is the source of `NotApplied`; the command in its message, the OS error below.
    let reload = std::error::Error::source(&err).expect("why the routes were not applied");
    assert!(reload.to_string().contains("`/nonexistent/nginx -p"), "{reload}");
    assert!(reload.to_string().ends_with("cannot start"), "{reload}");
    let os = reload.source().and_then(|e| e.downcast_ref::<std::io::Error>());
    assert_eq!(
        os.map(std::io::Error::kind),
        Some(std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(err.chain().to_string().ends_with("(os error 2)"), "{}", err.chain());
}
