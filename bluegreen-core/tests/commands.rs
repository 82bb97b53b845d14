//! Commands from another deployer sharing the state directory (the socket path, not the
//! in-process channel), parked deployments, and `tick`, on persistent in-memory backends.
//! The same flows across real OS processes are in `commands_processes.rs`.
#![cfg(feature = "testing")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{FileJournal, Journal, Record};
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    Answer, AppName, BlueGreen, Canary, CanaryStep, Command, Conflict, Deployer, DeployerBuilder, Error, HealthPolicy,
    Phase, Promotion, Release, Retirement, Slot, TrafficSplit,
};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

fn app() -> AppName {
    AppName::new("shop").unwrap()
}

/// A deployer over `dir`, as a separate process would build it: fresh backends over the same files.
fn builder(dir: &Path) -> (DeployerBuilder, InMemoryEnvironment, InMemoryRouter) {
    let env = InMemoryEnvironment::persistent(dir.join("environment.json")).unwrap();
    let router = InMemoryRouter::persistent(dir.join("router.json")).unwrap();
    let builder = Deployer::builder(app())
        .environment(Arc::new(env.clone()))
        .router(Arc::new(router.clone()))
        .probe(env.health_probe())
        .policy(HealthPolicy::default().interval(Duration::from_millis(5)))
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_millis(300))
                .drain(Duration::from_millis(5))
                .stop_grace(Duration::from_secs(1)),
        )
        .state_dir(dir.join("state"));
    (builder, env, router)
}

fn canary() -> Canary {
    Canary::new(vec![
        CanaryStep::SetWeight(20),
        CanaryStep::PauseUntilApproved,
        CanaryStep::SetWeight(50),
    ])
    .unwrap()
}

async fn entries(dir: &Path) -> Vec<bluegreen_core::journal::Entry> {
    FileJournal::open(dir.join("state"), &app())
        .unwrap()
        .tail(1000)
        .await
        .unwrap()
}

#[tokio::test]
async fn promote_from_another_deployer_reaches_the_one_running_through_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, router) = builder(dir.path());
    let runner = b.strategy(canary()).who("ci").build().unwrap();
    runner.deploy(release("v1")).await.unwrap();
    let deploying = {
        let runner = runner.clone();
        tokio::spawn(async move { runner.deploy(release("v2")).await })
    };
    let (b, _, _) = builder(dir.path());
    let other = b.strategy(canary()).who("alice").build().unwrap();
    // Until the runner waits at the gate, a promote is refused (it is shifting or verifying) or
    // accepted; retry until accepted.
    let answer = loop {
        match other.promote().await {
            Ok(answer) => break answer,
            // Before the runner has started (nothing running yet), or while it is in a phase that
            // takes no approval.
            // (A promote is for the step its sender saw: one that arrives after the deployment moved
            // on to the next step is refused too.)
            Err(Error::Conflict(
                Conflict::Refused { .. } | Conflict::NothingRunning { .. } | Conflict::MovedOn { .. },
            )) => tokio::time::sleep(Duration::from_millis(5)).await,
            Err(e) => panic!("{e}"),
        }
    };
    let Answer::Accepted { by_pid, .. } = answer else {
        panic!("not accepted by the runner: {answer:?}")
    };
    assert_eq!(by_pid, std::process::id());
    let report = deploying.await.unwrap().unwrap();
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    assert_eq!(router.served().unwrap().split(), TrafficSplit::all(Slot::Green));
    let journal = entries(dir.path()).await;
    let commands: Vec<_> = journal
        .iter()
        .filter_map(|e| match &e.record {
            Record::Command {
                from,
                judgement,
                command,
                ..
            } => Some((from.clone(), judgement.clone(), command.clone())),
            _ => None,
        })
        .collect();
    let accepted: Vec<_> = commands
        .iter()
        .filter(|(_, j, _)| *j == bluegreen_core::command::Judgement::Accepted)
        .collect();
    assert_eq!(accepted.len(), 1, "{commands:?}");
    assert_eq!(accepted[0].0.who.as_deref(), Some("alice"));
    assert_eq!(accepted[0].2, Command::Promote);
}

#[tokio::test]
async fn a_parked_canary_is_promoted_later_by_another_deployer_and_carried_on_there() {
    let dir = tempfile::tempdir().unwrap();
    let (b, env, router) = builder(dir.path());
    let first = b.strategy(canary()).park_at_gates(true).build().unwrap();
    first.deploy(release("v1")).await.unwrap();
    let parked = first.deploy(release("v2")).await.unwrap();
    assert!(parked.deployment.parked().is_some(), "{:?}", parked.deployment);
    assert_eq!(parked.deployment.phase().name(), "paused");
    assert_eq!(router.served().unwrap().split().weight(Slot::Green), 20);
    assert!(env.status_now(Slot::Green).release().is_some());
    // Status says so; a new deploy is refused while it waits.
    let status = first.status().await.unwrap();
    assert!(status.last.as_ref().unwrap().parked().is_some());
    match first.deploy(release("v3")).await {
        Err(Error::Conflict(Conflict::Parked { .. })) => {}
        other => panic!("{other:?}"),
    }
    drop(first);
    let (b, _, _) = builder(dir.path());
    let later = b.strategy(canary()).park_at_gates(true).build().unwrap();
    let answer = later.promote().await.unwrap();
    let report = answer.report().expect("carried on here");
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    let (_, env, router) = builder(dir.path());
    assert_eq!(router.served().unwrap().split(), TrafficSplit::all(Slot::Green));
    assert!(!matches!(
        env.status_now(Slot::Blue),
        bluegreen_core::SlotStatus::Running { .. }
    ));
}

#[tokio::test]
async fn a_warm_parked_deployment_rolls_back_instantly_from_another_deployer() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, router) = builder(dir.path());
    let first = b
        .strategy(BlueGreen::new().promotion(Promotion::Auto))
        .park_warm(true)
        .build()
        .unwrap();
    first.deploy(release("v1")).await.unwrap();
    let warm = first.deploy(release("v2")).await.unwrap();
    assert_eq!(*warm.deployment.phase(), Phase::Warm);
    assert!(warm.deployment.parked().unwrap().until.is_some());
    assert_eq!(router.served().unwrap().split(), TrafficSplit::all(Slot::Green));
    let (b, _, _) = builder(dir.path());
    let other = b.park_warm(true).build().unwrap();
    let report = other.rollback().await.unwrap().expect("rolled back here");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    let (_, env, router) = builder(dir.path());
    assert_eq!(router.served().unwrap().split(), TrafficSplit::all(Slot::Blue));
    assert_eq!(env.status_now(Slot::Blue).release(), Some(&release("v1")));
}

#[tokio::test]
async fn tick_retires_the_old_slot_once_the_window_is_over() {
    let dir = tempfile::tempdir().unwrap();
    let (b, env, _) = builder(dir.path());
    let d = b.park_warm(true).build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    assert!(d.tick().await.unwrap().is_none(), "not due yet");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let report = d.tick().await.unwrap().expect("due");
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    assert!(!matches!(
        env.status_now(Slot::Blue),
        bluegreen_core::SlotStatus::Running { .. }
    ));
    let _ = Command::Rollback;
}

#[tokio::test]
async fn a_parked_gate_past_its_approval_timeout_is_rolled_back_by_the_next_tick() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, _) = builder(dir.path());
    let d = b
        .strategy(canary())
        .park_at_gates(true)
        .approval_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    d.deploy(release("v1")).await.unwrap();
    let parked = d.deploy(release("v2")).await.unwrap();
    let until = parked.deployment.parked().unwrap().until.expect("the approval timeout");
    assert!(d.tick().await.unwrap().is_none());
    assert!(d.status().await.unwrap().parked().is_some());
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert!(d.status().await.unwrap().parked().unwrap().is_due());
    let (b, env, router) = builder(dir.path());
    let report = b
        .strategy(canary())
        .build()
        .unwrap()
        .tick()
        .await
        .unwrap()
        .expect("due");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(bluegreen_core::Cause::NoApproval));
    assert!(report.deployment.reason().unwrap().contains(&until.to_string()));
    assert_eq!(router.served().unwrap().split(), TrafficSplit::all(Slot::Blue));
    assert!(!matches!(
        env.status_now(Slot::Green),
        bluegreen_core::SlotStatus::Running { .. }
    ));
}

#[tokio::test]
async fn a_deploy_ends_a_warm_window_early_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, router) = builder(dir.path());
    let d = b
        .retirement(
            Retirement::new()
                .rollback_window(Duration::from_secs(3600))
                .drain(Duration::ZERO),
        )
        .park_warm(true)
        .build()
        .unwrap();
    d.deploy(release("v1")).await.unwrap();
    assert_eq!(*d.deploy(release("v2")).await.unwrap().deployment.phase(), Phase::Warm);
    let v3 = d.deploy(release("v3")).await.unwrap();
    assert_eq!(*v3.deployment.phase(), Phase::Warm);
    assert_eq!(v3.deployment.previous().unwrap().release, release("v2"));
    assert_eq!(router.served().unwrap().split(), TrafficSplit::all(Slot::Blue));
    let history = d.history(3).await.unwrap();
    assert_eq!(
        *history[1].phase(),
        Phase::Completed,
        "v2's window was ended: {:?}",
        history[1]
    );
    let notes: Vec<String> = entries(dir.path())
        .await
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Note { text } => Some(text),
            _ => None,
        })
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("ends the rollback window early")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn a_refused_command_is_journaled_with_its_sender_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, _) = builder(dir.path());
    let d = b.park_warm(true).build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    let (b, _, _) = builder(dir.path());
    let other = b.park_warm(true).who("bob").build().unwrap();
    match other.promote().await {
        Err(Error::Conflict(Conflict::Refused { phase, signal })) => {
            assert_eq!((phase.as_str(), signal.as_str()), ("warm", "promote"));
        }
        other => panic!("{other:?}"),
    }
    let last = entries(dir.path()).await.pop().unwrap();
    let Record::Command { from, judgement, .. } = last.record else {
        panic!("{last:?}")
    };
    assert_eq!(from.who.as_deref(), Some("bob"));
    assert_eq!(from.pid, std::process::id());
    assert!(
        matches!(&judgement, bluegreen_core::command::Judgement::Refused { reason } if reason.contains("warm")),
        "{judgement:?}"
    );
    // Still parked: the refusal changed nothing.
    assert!(last.deployment.parked().is_some());
}

#[tokio::test]
async fn carrying_on_with_a_strategy_whose_steps_changed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, _) = builder(dir.path());
    let d = b.strategy(canary()).park_at_gates(true).build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    // Same name ("canary"), one gate fewer: carrying on would skip what the operator approved.
    let (b, _, _) = builder(dir.path());
    let other = b
        .strategy(Canary::new(vec![CanaryStep::SetWeight(20), CanaryStep::SetWeight(50)]).unwrap())
        .build()
        .unwrap();
    match other.promote().await {
        Err(Error::Conflict(Conflict::StrategyMismatch { was, is, .. })) => {
            assert!(
                was.contains("steps sha256:") && !is.contains("approval"),
                "{was} / {is}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The deployment is untouched: the right strategy still carries it on.
    let answer = d.promote().await.unwrap();
    assert_eq!(*answer.report().unwrap().deployment.phase(), Phase::Completed);
}

#[tokio::test]
async fn two_promotes_of_one_parked_gate_approve_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let two_gates = || {
        Canary::new(vec![
            CanaryStep::SetWeight(20),
            CanaryStep::PauseUntilApproved,
            CanaryStep::SetWeight(50),
            CanaryStep::PauseUntilApproved,
        ])
        .unwrap()
    };
    let (b, _, _) = builder(dir.path());
    let d = b.strategy(two_gates()).park_at_gates(true).build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    let (b1, _, _) = builder(dir.path());
    let (b2, _, _) = builder(dir.path());
    let alice = b1.strategy(two_gates()).who("alice").build().unwrap();
    let bob = b2.strategy(two_gates()).who("bob").build().unwrap();
    let (a, b) = tokio::join!(alice.promote(), bob.promote());
    let outcomes = [a, b];
    let passed: Vec<_> = outcomes.iter().filter(|o| o.is_ok()).collect();
    assert_eq!(passed.len(), 1, "{outcomes:?}");
    let refused = outcomes.iter().find(|o| o.is_err()).unwrap();
    assert!(
        matches!(
            refused,
            Err(Error::Conflict(Conflict::MovedOn { .. } | Conflict::Refused { .. }))
        ),
        "{refused:?}"
    );
    // Parked again at the second gate (the deployment parks at gates, whoever carries it on).
    let last = entries(dir.path()).await.pop().unwrap();
    assert!(last.deployment.parked().is_some(), "{last:?}");
    assert_eq!(last.deployment.weight(), 50);
}

#[tokio::test]
async fn a_rollback_of_a_timed_out_parked_gate_rolls_it_back_once_and_keeps_the_live_release() {
    let dir = tempfile::tempdir().unwrap();
    let (b, _, _) = builder(dir.path());
    let d = b
        .strategy(canary())
        .park_at_gates(true)
        .approval_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    d.deploy(release("v0")).await.unwrap();
    // v1 goes live through its gate; v2 parks at its gate and times out.
    d.deploy(release("v1")).await.unwrap();
    d.promote().await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = d.rollback().await.unwrap().expect("rolled back here");
    assert_eq!(report.deployment.release(), &release("v2"));
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    // v1 serves: the rollback did not also go back past it to v0.
    assert_eq!(d.status().await.unwrap().live_release(), Some(&release("v1")));
}
