//! The engine driving a real nginx through `NginxRouter`: a canary, then a rollback. The slots run
//! in memory (the environment is not what is tested here); nginx, its validation, reloads and
//! confirmations are real.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::testing::InMemoryEnvironment;
use bluegreen_core::{AppName, Canary, CanaryStep, Deployer, Error, HealthPolicy, Release, Retirement, Router, Slot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployer_shifts_a_canary_through_nginx_and_rolls_back_a_bad_release() {
    let Some(nginx) = common::nginx() else { return };
    let router = Arc::new(common::router(&nginx));
    let env = InMemoryEnvironment::new();
    let canary = Canary::new(vec![CanaryStep::SetWeight(10), CanaryStep::SetWeight(50)]).unwrap();
    let deployer = Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(env.clone()))
        .router(router.clone())
        .probe(env.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(10))
                .failure_threshold(2),
        )
        .strategy(canary)
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::from_secs(5))
                .stop_grace(Duration::from_secs(1)),
        )
        .build()
        .unwrap();

    deployer.deploy(Release::new("v1").unwrap()).await.unwrap();
    deployer.deploy(Release::new("v2").unwrap()).await.unwrap();
    let live = router.current().await.unwrap().unwrap();
    assert_eq!(live.split().sole(), Some(Slot::Green), "{live:?}");

    let v3 = Release::new("v3").unwrap();
    env.mark_unhealthy(&v3);
    let err = deployer.deploy(v3).await.unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert_eq!(
        router.current().await.unwrap().unwrap().split().sole(),
        Some(Slot::Green)
    );
    let text = std::fs::read_to_string(nginx.router_file()).unwrap();
    assert!(
        text.contains(&router.live_generation().await.unwrap()),
        "disk is what is live:\n{text}"
    );
}
