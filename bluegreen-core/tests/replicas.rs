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

#[tokio::test(start_paused = true)]
async fn a_live_slot_with_a_dead_instance_is_still_the_previous_release() {
    let w = World::with_replicas(3);
    w.builder().build().unwrap().deploy(release("v1")).await.unwrap();
    let live = w.router.served().unwrap();
    w.env.crash_an_instance(Slot::Blue);
    let canary = Canary::new(vec![CanaryStep::SetWeight(10), CanaryStep::SetWeight(50)]).unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    let report = d.deploy(release("v2")).await.unwrap();
    let previous = report.deployment.previous().expect("v1 is the previous release");
    assert_eq!(Some(&previous.endpoints), live.endpoints(Slot::Blue));
    let green: Vec<u8> = w
        .router
        .history()
        .iter()
        .map(|r| r.split().weight(Slot::Green))
        .collect();
    assert_eq!(green, [0, 10, 50, 100], "the canary's steps, not a jump to 100 %");
}

/// Counts its checks; answers healthy. About the whole slot, like a metrics query.
#[derive(Debug, Default)]
struct SlotWide(std::sync::atomic::AtomicUsize);

#[async_trait::async_trait]
impl bluegreen_core::HealthProbe for SlotWide {
    fn describe(&self) -> String {
        "slot-wide".into()
    }
    async fn check(&self, _: &bluegreen_core::ProbeTarget) -> bluegreen_core::ProbeOutcome {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        bluegreen_core::ProbeOutcome::Healthy
    }
    fn scope(&self) -> bluegreen_core::ProbeScope {
        bluegreen_core::ProbeScope::Slot
    }
}

#[tokio::test(start_paused = true)]
async fn a_probe_about_the_whole_slot_runs_once_per_check_not_once_per_instance() {
    let w = World::with_replicas(3);
    w.builder().build().unwrap().deploy(release("v1")).await.unwrap();
    let probe = Arc::new(SlotWide::default());
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Analyse(Analysis::new(probe.clone()).count(4).interval(Duration::from_secs(1))),
    ])
    .unwrap();
    w.builder()
        .strategy(canary)
        .build()
        .unwrap()
        .deploy(release("v2"))
        .await
        .unwrap();
    assert_eq!(probe.0.load(std::sync::atomic::Ordering::SeqCst), 4);
}

#[tokio::test(start_paused = true)]
async fn one_failing_instance_ends_the_analysis_at_once() {
    let w = World::with_replicas(3);
    w.builder().build().unwrap().deploy(release("v1")).await.unwrap();
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Analyse(
            Analysis::new(w.env.health_probe())
                .count(100)
                .interval(Duration::from_secs(60)),
        ),
    ])
    .unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    let mut events = d.subscribe();
    let deploying = tokio::spawn(async move { d.deploy(release("v2")).await });
    // Once v2 has 10 %, one of its instances goes bad.
    loop {
        if let bluegreen_core::EventKind::PhaseChanged { to, .. } = events.recv().await.unwrap().kind {
            if to.name() == "analysing" {
                break;
            }
        }
    }
    w.env
        .mark_instance_unhealthy(&Endpoint::new("127.0.0.1", 20004).unwrap());
    let started = tokio::time::Instant::now();
    let err = deploying.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(100 * 60),
        "judged without waiting for the healthy instances' 100 checks: {:?}",
        started.elapsed()
    );
}

#[test]
fn journals_written_with_one_endpoint_per_slot_still_read() {
    let e = r#"{"host":"127.0.0.1","port":8080}"#;
    let status: SlotStatus =
        serde_json::from_str(&format!(r#"{{"state":"running","release":"v1","endpoint":{e}}}"#)).unwrap();
    assert_eq!(status.endpoints().map(|e| e.len()), Some(1));
    let previous: bluegreen_core::machine::Previous =
        serde_json::from_str(&format!(r#"{{"slot":"blue","release":"v1","endpoint":{e}}}"#)).unwrap();
    assert_eq!(previous.endpoints.first().port(), 8080);
}
