//! The built `bluegreen` binary sends the `[[webhook]]`s of its file: a `deploy` through a real
//! Docker Engine and a real nginx POSTs its events, signed with the secret named by
//! `secret_env`, to a receiver on loopback, while a second webhook to a dead URL fails without
//! holding the deploy up (reported on stderr); a `validate` without the secret's variable is
//! refused naming it.
//!
//! Skips with a printed reason when Docker or nginx is missing; fails under
//! `BLUEGREEN_REQUIRE_REAL=1`.

#[allow(dead_code)] // the flows are the other end-to-end tests'
mod common;

use std::time::{Duration, Instant};

use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::real::unavailable;
use bluegreen_testkit::webhook::{dead_url, signature_valid, Answer, Receiver};
use common::fixtures::{self, DemoImages, TestApp};
use common::{config, stderr, Cli};

const SECRET_ENV: &str = "BLUEGREEN_TEST_WEBHOOK_SECRET";
const SECRET: &str = "webhook-e2e-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_from_the_file_posts_signed_events_and_a_dead_webhook_does_not_hold_it_up() {
    let connection = match fixtures::engine().await {
        Ok(connection) => connection,
        Err(why) => return unavailable("docker", why),
    };
    let app = TestApp::new("hooks");
    let upstream = format!("{}_up", app.name().as_str().replace('-', "_"));
    let nginx = match NginxProcess::start(&upstream) {
        Ok(nginx) => nginx,
        Err(why) => return unavailable("nginx", why),
    };
    let images = DemoImages::build(&connection.engine, &["v1"])
        .await
        .expect("demo image");
    let receiver = Receiver::start(Answer::Status(200)).await;

    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut text = config::config(
        app.name().as_str(),
        images.repository(),
        &state,
        &config::nginx_router(&nginx, &upstream),
        "blue_green = { promotion = \"auto\" }",
    );
    text.push_str(&format!(
        r#"
[[webhook]]
url = "{live}"
secret_env = "{SECRET_ENV}"
events = ["started", "phase_changed"]
timeout = "2s"

[[webhook]]
url = "{dead}"
retries = 0
"#,
        live = receiver.url("/deploys"),
        dead = dead_url("/gone"),
    ));
    std::fs::write(dir.path().join("bluegreen.toml"), text).unwrap();
    let cli = Cli {
        dir: dir.path().to_owned(),
    };

    let out = cli
        .command("bluegreen.toml", &["validate"])
        .env_remove(SECRET_ENV)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(SECRET_ENV), "{}", stderr(&out));

    let started = Instant::now();
    let out = cli
        .command("bluegreen.toml", &["deploy", "v1"])
        .env(SECRET_ENV, SECRET)
        .output()
        .unwrap();
    let took = started.elapsed();
    println!(
        "deploy took {took:?}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("webhooks:") && stderr(&out).contains("failed"),
        "the dead webhook's failures are reported: {}",
        stderr(&out)
    );

    // The process flushed before exiting: everything is in already.
    let received = receiver.received();
    let events: Vec<String> = received
        .iter()
        .map(|r| r.header("x-bluegreen-event").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(events.first().map(String::as_str), Some("started"), "{events:?}");
    assert!(events.iter().skip(1).all(|e| e == "phase_changed"), "{events:?}");
    // Live: completed (a first deploy has no old slot), or warm (the CLI parks the old slot).
    let last = received.last().unwrap().json();
    let phase = &last["data"]["kind"]["to"]["name"];
    assert!(phase == "completed" || phase == "warm", "{last}");
    for r in &received {
        let signature = r.header("x-bluegreen-signature-256").expect("signed");
        assert!(signature_valid(SECRET.as_bytes(), &r.body, signature), "{signature}");
        assert_eq!(r.json()["data"]["app"], app.name().as_str());
    }
    assert!(took < Duration::from_secs(60), "{took:?}");
    drop(images);
}
