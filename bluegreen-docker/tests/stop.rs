//! Graceful stop: SIGTERM reaches the app (through the init process), in-flight requests finish;
//! an app that ignores SIGTERM is killed after the grace period, not before, not much after.

mod common;

use std::time::{Duration, Instant};

use bluegreen_core::{Environment, Slot, SlotStatus, StopOutcome};
use bluegreen_testkit::load::Outcome;
use common::{get, release, setup};

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_the_app_exits_0() {
    let Some(fx) = setup("graceful", &["v1"]).await else {
        return;
    };
    let env = fx.env(fx.config()).await;
    let endpoint = env.deploy(Slot::Blue, &release("v1")).await.unwrap().first().clone();
    common::assert_serves(&endpoint, "v1").await;

    let slow = tokio::spawn({
        let endpoint = endpoint.clone();
        async move { get(&endpoint, "/sleep?ms=1500").await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await; // the request is in flight
    let started = Instant::now();
    let outcome = env.stop(Slot::Blue, Duration::from_secs(10)).await.unwrap();
    let took = started.elapsed();

    assert_eq!(outcome, StopOutcome::Graceful { exit_code: Some(0) });
    assert_eq!(
        slow.await.unwrap(),
        Outcome::Response {
            status: 200,
            version: "v1".into()
        },
        "the in-flight request finished"
    );
    assert!(
        took < Duration::from_secs(4),
        "exited soon after the request, took {took:?}"
    );
    assert_eq!(
        env.status(Slot::Blue).await.unwrap(),
        SlotStatus::Stopped {
            release: release("v1"),
            exit_code: Some(0)
        }
    );
    let logs = env.logs(Slot::Blue, 5).await.unwrap();
    assert!(logs.iter().any(|l| l == "drained, exiting"), "{logs:?}");
}

#[tokio::test]
async fn an_app_ignoring_sigterm_is_killed_after_the_grace_period() {
    let Some(mut fx) = setup("sigkill", &[]).await else {
        return;
    };
    fx.images
        .add(&fx.engine, "stubborn", &[("IGNORE_SIGTERM", "1")])
        .await
        .unwrap();
    let env = fx.env(fx.config()).await;
    let endpoint = env
        .deploy(Slot::Green, &release("stubborn"))
        .await
        .unwrap()
        .first()
        .clone();
    common::assert_serves(&endpoint, "stubborn").await;

    let grace = Duration::from_secs(2);
    let started = Instant::now();
    let outcome = env.stop(Slot::Green, grace).await.unwrap();
    let took = started.elapsed();

    assert_eq!(outcome, StopOutcome::Killed);
    assert!(took >= grace, "killed before the grace period: {took:?}");
    assert!(
        took < grace + Duration::from_millis(1500),
        "killed long after the grace period: {took:?}"
    );
    let logs = env.logs(Slot::Green, 5).await.unwrap();
    assert!(
        logs.iter().any(|l| l.contains("ignoring it")),
        "SIGTERM reached the app: {logs:?}"
    );
    assert_eq!(env.stop(Slot::Green, grace).await.unwrap(), StopOutcome::NotRunning);
}
