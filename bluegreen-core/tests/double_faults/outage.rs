//! The outage: a crash mid-rollback left the router's configuration on the previous slot and the
//! proxy still serving the refused one. A resume must apply the previous routes again, not trust
//! the file.

use bluegreen_core::journal::{FileJournal, Journal};
use bluegreen_core::machine::{Deployment, Kind, Phase};
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{Cause, Deployer, Environment, Router, Routes, Slot, SlotStatus, StopOutcome};

use crate::world::*;

/// What a converged resume of the outage must show, whatever the backends' storage.
async fn assert_rolled_back_to_v1(
    d: &Deployer,
    env: &InMemoryEnvironment,
    router: &InMemoryRouter,
    crashed: &Deployment,
) {
    let blue = crashed.previous().unwrap().endpoints.clone();
    assert_eq!(router.served(), Some(Routes::only(Slot::Blue, blue)));
    assert!(matches!(
        env.status(Slot::Green).await.unwrap(),
        SlotStatus::Stopped { .. }
    ));
    let status = d.status().await.unwrap();
    assert_eq!(status.live_slot(), Some(Slot::Blue));
    assert_eq!(status.live_release(), Some(&release("v1")));
    assert_eq!(status.drift, []);
    assert!(!status.in_progress());
}

#[tokio::test(start_paused = true)]
async fn a_resumed_rollback_applies_the_previous_routes_when_the_proxy_never_reloaded_them() {
    let w = World::new();
    let crashed = crashed_mid_rollback(&w.env, &w.router, &w.journal).await;
    assert_eq!(
        w.served_slot(),
        Some(Slot::Green),
        "the outage: the proxy serves the refused release"
    );
    let generation = w.router.generation();

    let d = w.deployer();
    let mut events = d.subscribe();
    let report = d.resume().await.unwrap().expect("an unfinished deployment to resume");

    assert_eq!(report.deployment.id(), crashed.id());
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Health));
    assert!(matches!(
        report.deployment.retired(),
        Some(StopOutcome::Graceful { .. })
    ));
    assert_eq!(
        w.router.generation(),
        generation + 1,
        "the previous routes applied again"
    );
    assert_rolled_back_to_v1(&d, &w.env, &w.router, &crashed).await;
    assert_no_self_transition(&drain_events(&mut events));
}

#[tokio::test(start_paused = true)]
async fn the_outage_converges_across_process_restarts_with_a_file_journal() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        (
            InMemoryEnvironment::persistent(dir.path().join("env.json")).unwrap(),
            InMemoryRouter::persistent(dir.path().join("router.json")).unwrap(),
            FileJournal::open(dir.path(), &app()).unwrap(),
        )
    };

    // The process that crashed.
    let crashed = {
        let (env, router, journal) = open();
        crashed_mid_rollback(&env, &router, &journal).await
    };

    // A new process resumes.
    {
        let (env, router, journal) = open();
        assert_eq!(router.served().and_then(|r| r.split().sole()), Some(Slot::Green));
        let d = builder(env.clone(), router.clone(), &env)
            .journal(std::sync::Arc::new(journal))
            .build()
            .unwrap();
        let report = d.resume().await.unwrap().expect("an unfinished deployment to resume");
        assert_eq!(*report.deployment.phase(), Phase::RolledBack);
        assert_eq!(report.deployment.cause(), Some(Cause::Health));
    }

    // Another process finds it converged: the same status, and nothing left to resume.
    let (env, router, journal) = open();
    let last = journal.tail(1).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.deployment.id(), last.deployment.phase()),
        (crashed.id(), &Phase::RolledBack)
    );
    let d = builder(env.clone(), router.clone(), &env)
        .journal(std::sync::Arc::new(journal))
        .build()
        .unwrap();
    assert_rolled_back_to_v1(&d, &env, &router, &crashed).await;
    assert!(d.resume().await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_resume_emits_no_phase_change_from_a_phase_to_itself() {
    // A deployment that crashed while warm: promoted, its phase kept by the resume.
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    let v1 = w.journal.entries().last().unwrap().deployment.clone();
    let blue = v1.endpoints().cloned().unwrap();
    let green = w.env.deploy(Slot::Green, &release("v2")).await.unwrap();
    w.router.apply(&Routes::only(Slot::Green, green.clone())).await.unwrap();
    let previous = bluegreen_core::machine::Previous::new(Slot::Blue, release("v1"), blue);
    let warm = Deployment::new(
        app(),
        Kind::Deploy,
        release("v2"),
        Slot::Green,
        Some(previous),
        retirement(),
        None,
    );
    let warm = edited(
        &warm,
        serde_json::json!({
            "strategy": v1.strategy(),
            "endpoints": green,
            "routed": true,
            "promoted": true,
            "weight": 100,
            "step": 1,
            "phase": Phase::Warm,
        }),
    );
    let seq = w.journal.entries().len() as u64;
    append(&w.journal, seq + 1, bluegreen_core::journal::Record::Started, &warm).await;

    let mut events = d.subscribe();
    let report = d.resume().await.unwrap().unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    let kinds = drain_events(&mut events);
    assert_no_self_transition(&kinds);
    let phases: Vec<&str> = kinds
        .iter()
        .filter_map(|k| match k {
            bluegreen_core::EventKind::PhaseChanged { to, .. } => Some(to.name()),
            _ => None,
        })
        .collect();
    assert_eq!(phases, ["draining", "stopping", "completed"]);
}
