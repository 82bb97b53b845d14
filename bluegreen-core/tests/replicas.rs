//! Slots of several instances through the deployer, on the in-memory backends: every instance is
//! proven before traffic moves, every instance is routed, one bad instance rolls the release back.
#![cfg(feature = "testing")]

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::environment::SlotStatus;
use bluegreen_core::journal::InMemoryJournal;
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    AppName, Canary, CanaryStep, Deployer, DeployerBuilder, Endpoint, Error, HealthPolicy, Release, Retirement, Slot,
};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

struct World {
    env: InMemoryEnvironment,
    router: InMemoryRouter,
}

impl World {
    fn with_replicas(n: usize) -> Self {
        World {
            env: InMemoryEnvironment::new().with_replicas(n),
            router: InMemoryRouter::new(),
        }
    }

    fn builder(&self) -> DeployerBuilder {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(self.env.clone()))
            .router(Arc::new(self.router.clone()))
            .probe(self.env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(5))
                    .failure_threshold(2),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(Duration::ZERO)
                    .drain(Duration::from_millis(10))
                    .stop_grace(Duration::from_secs(1)),
            )
            .journal(Arc::new(InMemoryJournal::new()))
    }
}

#[tokio::test(start_paused = true)]
async fn every_instance_is_routed_and_the_old_ones_all_stop() {
    let w = World::with_replicas(3);
    let d = w.builder().build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    let report = d.deploy(release("v2")).await.unwrap();
    let endpoints = report.deployment.endpoints().cloned().unwrap();
    assert_eq!(endpoints.len(), 3);
    let served = w.router.served().unwrap();
    assert_eq!(served.endpoints(Slot::Green), Some(&endpoints));
    assert_eq!(served.servers().len(), 3);
    assert!(matches!(w.env.status_now(Slot::Blue), SlotStatus::Stopped { .. }));
}

#[tokio::test(start_paused = true)]
async fn one_unhealthy_instance_of_three_rolls_the_release_back_naming_it() {
    let w = World::with_replicas(3);
    let d = w.builder().build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    let before = w.router.served();
    // Ports count up from 20000: v1 has 20000..=20002, v2 will get 20003..=20005.
    let bad = Endpoint::new("127.0.0.1", 20004).unwrap();
    w.env.mark_instance_unhealthy(&bad);
    let err = d.deploy(release("v2")).await.unwrap_err();
    let Error::RolledBack { reason, .. } = &err else {
        panic!("{err}")
    };
    assert!(reason.contains(&format!("instance {bad}")), "{reason}");
    assert!(!reason.contains("20003") && !reason.contains("20005"), "{reason}");
    assert_eq!(w.router.served(), before, "traffic never left v1's three instances");
    assert_eq!(w.router.history().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_canary_spreads_each_share_over_both_slots_instances() {
    let w = World::with_replicas(3);
    w.builder().build().unwrap().deploy(release("v1")).await.unwrap();
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Analyse(
            Analysis::new(w.env.health_probe())
                .count(2)
                .interval(Duration::from_secs(1)),
        ),
        CanaryStep::SetWeight(50),
    ])
    .unwrap();
    w.builder()
        .strategy(canary)
        .build()
        .unwrap()
        .deploy(release("v2"))
        .await
        .unwrap();
    let at_ten = w.router.history()[1].clone();
    assert_eq!(at_ten.split().weight(Slot::Green), 10);
    let servers = at_ten.servers();
    assert_eq!(servers.len(), 6);
    let share = |slot| -> u32 { servers.iter().filter(|s| s.0 == slot).map(|s| s.2).sum() };
    assert_eq!(share(Slot::Green) * 90, share(Slot::Blue) * 10);
}
