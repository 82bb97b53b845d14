//! Every cause the engine gives for turning a deployment back (or for failing it) is produced by
//! some scenario and reported as that variant. (`Timeout`, `Health` and `Aborted` have their own
//! scenarios in `bounded.rs`, `outage.rs` and `stops.rs`.)

use std::time::Duration;

use bluegreen_core::backend::Progress;
use bluegreen_core::machine::{Deployment, Kind, Previous, Retry};
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{Op, ScriptedProbe};
use bluegreen_core::{
    BlueGreen, Canary, CanaryStep, Cause, Decision, Error, Phase, ProbeOutcome, Promotion, Slot, Strategy,
};

use crate::world::*;

/// The cause of the rolled-back deploy of v2 on top of a live v1, with `setup` applied first.
async fn rolled_back_cause(w: &World, d: bluegreen_core::Deployer) -> Cause {
    w.deployer().deploy(release("v1")).await.unwrap();
    match d.deploy(release("v2")).await.unwrap_err() {
        Error::RolledBack { cause, .. } => {
            assert_eq!(w.served_slot(), Some(Slot::Blue), "traffic back on v1");
            cause
        }
        other => panic!("expected a rollback, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_release_that_cannot_start_is_a_provision_failure() {
    let w = World::new();
    w.env.fail_deploy(&release("v2"), "image not found");
    assert_eq!(rolled_back_cause(&w, w.deployer()).await, Cause::Provision);
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_release_is_a_health_failure() {
    let w = World::new();
    w.env.mark_unhealthy(&release("v2"));
    assert_eq!(rolled_back_cause(&w, w.deployer()).await, Cause::Health);
}

#[tokio::test(start_paused = true)]
async fn a_failed_canary_analysis_is_an_analysis_failure() {
    let w = World::new();
    let analysis = Analysis::new(ScriptedProbe::always(ProbeOutcome::Unhealthy("5xx".into())))
        .count(2)
        .failure_limit(1);
    let canary = Canary::new(vec![CanaryStep::SetWeight(20), CanaryStep::Analyse(analysis)]).unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    assert_eq!(rolled_back_cause(&w, d).await, Cause::Analysis);
}

#[tokio::test(start_paused = true)]
async fn a_failed_switch_is_a_router_failure() {
    let w = World::new();
    w.faults.fail(Op::Apply, 2);
    assert_eq!(rolled_back_cause(&w, w.deployer()).await, Cause::Router);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_gate_is_no_approval() {
    let w = World::new();
    let d = w
        .builder()
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .approval_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    assert_eq!(rolled_back_cause(&w, d).await, Cause::NoApproval);
}

#[tokio::test(start_paused = true)]
async fn an_operator_abort_is_aborted() {
    let w = World::new();
    let d = w
        .builder()
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .build()
        .unwrap();
    w.deployer().deploy(release("v1")).await.unwrap();
    let mut events = d.subscribe();
    let deploying = {
        let d = d.clone();
        tokio::spawn(async move { d.deploy(release("v2")).await })
    };
    loop {
        if let bluegreen_core::EventKind::PhaseChanged {
            to: Phase::Paused { .. },
            ..
        } = events.recv().await.unwrap().kind
        {
            break;
        }
    }
    d.abort("changed my mind").await.unwrap();
    let err = deploying.await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::RolledBack {
                cause: Cause::Aborted,
                ..
            }
        ),
        "{err:?}"
    );
}

/// A strategy that declares the rollout complete without moving any traffic.
#[derive(Debug)]
struct GivesUp;

impl Strategy for GivesUp {
    fn name(&self) -> &str {
        "gives-up"
    }
    fn needs_weighted_split(&self) -> bool {
        false
    }
    fn decide(&self, _: &Progress) -> Decision {
        Decision::Complete
    }
}

#[tokio::test(start_paused = true)]
async fn a_strategy_that_completes_early_is_a_strategy_failure() {
    let w = World::new();
    let d = w.builder().strategy(GivesUp).build().unwrap();
    assert_eq!(rolled_back_cause(&w, d).await, Cause::Strategy);
}

#[tokio::test(start_paused = true)]
async fn a_deployer_that_died_before_promotion_is_rolled_back_as_interrupted() {
    let w = World::new();
    let d = w.deployer();
    let v1 = d.deploy(release("v1")).await.unwrap().deployment;
    let previous = Previous::new(Slot::Blue, release("v1"), v1.endpoints().cloned().unwrap());
    let crashed = Deployment::new(
        app(),
        Kind::Deploy,
        release("v2"),
        Slot::Green,
        Some(previous),
        retirement(),
        None,
    );
    let crashed = edited(
        &crashed,
        serde_json::json!({ "strategy": v1.strategy(), "phase": Phase::Verifying }),
    );
    let seq = w.journal.entries().len() as u64;
    append(&w.journal, seq + 1, bluegreen_core::journal::Record::Started, &crashed).await;

    let report = d.resume().await.unwrap().unwrap();
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Interrupted));
    assert_eq!(w.served_slot(), Some(Slot::Blue));
}

#[tokio::test(start_paused = true)]
async fn an_old_slot_that_cannot_be_stopped_is_a_stop_failure() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    w.faults.fail(Op::Stop, 1);
    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                retry: Retry::StopOld,
                ..
            }
        ),
        "{err:?}"
    );
    let last = d.status().await.unwrap().last.unwrap();
    assert_eq!(last.cause(), Some(Cause::Stop));
    assert_eq!(*d.resume().await.unwrap().unwrap().deployment.phase(), Phase::Completed);
}
