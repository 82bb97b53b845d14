//! A `Deployer` over real Traefik and demo-app processes: Traefik down during a rollback.

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::machine::Retry;
use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{
    AppName, Cause, Deployer, Error, Event, EventKind, HealthPolicy, Phase, Release, Retirement, Router,
};
use bluegreen_testkit::processes::DemoEnvironment;
use bluegreen_testkit::scenario::versions_seen;
use tokio::sync::broadcast;

use crate::common::{Rig, HOST};

fn release(name: &str) -> Release {
    Release::new(name).unwrap()
}

async fn assert_serves(rig: &Rig, version: &str) {
    let seen = versions_seen(rig.traefik.web_addr(), HOST, 20).await;
    assert_eq!(seen.get(version), Some(&20), "Traefik serves {version}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traefik_down_during_a_rollback_is_interrupted_and_a_resume_converges() {
    let Some(mut rig) = Rig::start(Duration::ZERO) else {
        return;
    };
    let router = Arc::new(rig.router());
    let deployer = Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(DemoEnvironment::new()))
        .router(router.clone())
        .probe(Arc::new(HttpProbe::new("/health/ready").unwrap()))
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(20))
                .failure_threshold(2),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_secs(60))
                .drain(Duration::from_secs(1))
                .stop_grace(Duration::from_secs(2)),
        )
        .build()
        .unwrap();
    deployer.deploy(release("v1")).await.unwrap();
    let blue = router.current().await.unwrap().unwrap();

    // v2 goes live and stays warm; then Traefik dies and the operator aborts.
    let mut events: broadcast::Receiver<Event> = deployer.subscribe();
    let deploying = {
        let deployer = deployer.clone();
        tokio::spawn(async move { deployer.deploy(release("v2")).await })
    };
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("v2 warm within 30 s");
        if let Ok(Event {
            kind: EventKind::PhaseChanged { to: Phase::Warm, .. },
            ..
        }) = event
        {
            break;
        }
    }
    assert_serves(&rig, "v2").await;
    rig.traefik.stop();
    deployer.abort("the post-release check failed").await.unwrap();
    let err = deploying.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                retry: Retry::RollBack,
                ..
            }
        ),
        "{err:?}"
    );
    let status = deployer.status().await.unwrap();
    assert!(status.in_progress(), "{:?}", status.last);
    assert_eq!(status.live_slot(), None, "Traefik cannot be seen serving anything");

    // Traefik is back, serving the file it finds (v2); the resume moves traffic back to v1.
    rig.traefik.restart().unwrap();
    let report = deployer.resume().await.unwrap().expect("the rollback to retry");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Aborted));
    assert_serves(&rig, "v1").await;
    let status = deployer.status().await.unwrap();
    assert_eq!(status.routes.as_ref(), Some(&blue));
    assert_eq!(status.live_release(), Some(&release("v1")));
    assert_eq!(status.drift, []);
    assert!(!status.in_progress());
}
