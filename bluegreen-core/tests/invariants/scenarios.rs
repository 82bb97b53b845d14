//! Specific scenarios, and the bugs found, as the smallest cases that show them.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use bluegreen_core::journal::Record;
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{EnvOp, Op, ScriptedProbe};
use bluegreen_core::{
    BlueGreen, Canary, CanaryStep, Error, EventKind, HealthPolicy, Phase, ProbeOutcome, Release, Retirement, Slot,
    SlotStatus,
};

use crate::case::{AnalysisSpec, Case, FaultSpec, Outcome, ReleaseSpec, StepSpec, StrategySpec};
use crate::checks::check_journal;
use crate::rig::{Ev, Rig, StrategyKind};
use crate::run_case;

pub(crate) fn v(name: &str) -> Release {
    Release::new(name).expect("valid")
}

pub(crate) fn quick_policy() -> HealthPolicy {
    HealthPolicy::default().interval(Duration::from_millis(100))
}

pub(crate) fn retirement(window_s: u64, drain_s: u64) -> Retirement {
    Retirement::new()
        .rollback_window(Duration::from_secs(window_s))
        .drain(Duration::from_secs(drain_s))
        .stop_grace(Duration::from_secs(1))
}

pub(crate) fn blue_green(strategy: BlueGreen) -> StrategyKind {
    StrategyKind::BlueGreen(strategy)
}

fn running(release: &str) -> impl Fn(&SlotStatus) -> bool + '_ {
    move |status| matches!(status, SlotStatus::Running { release: r, .. } if r.as_str() == release)
}

fn stopped(status: &SlotStatus) -> bool {
    matches!(status, SlotStatus::Stopped { .. })
}

fn stop_calls(rig: &Rig, slot: Slot) -> usize {
    let events = rig.log.events();
    events
        .iter()
        .filter(|(_, ev)| matches!(ev, Ev::StopCalled { slot: s } if *s == slot))
        .count()
}

/// When the last successful `apply` returned.
fn last_apply(rig: &Rig) -> Instant {
    let events = rig.log.events();
    let applied = events.iter().rev().find(|(_, ev)| matches!(ev, Ev::Applied { .. }));
    applied.expect("an apply").0
}

async fn wait_for_phase(events: &mut tokio::sync::broadcast::Receiver<bluegreen_core::Event>, name: &str) {
    loop {
        if let EventKind::PhaseChanged { to, .. } = events.recv().await.expect("the deployer sends events").kind {
            if to.name() == name {
                return;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_router_failing_mid_canary_rolls_back_to_all_traffic_on_the_previous_slot() {
    let rig = Rig::new();
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Pause(Duration::from_secs(10)),
        CanaryStep::SetWeight(50),
        CanaryStep::Pause(Duration::from_secs(10)),
    ])
    .expect("valid");
    let deployer = rig.deployer(StrategyKind::Canary(canary), quick_policy(), retirement(30, 5));
    deployer.deploy(v("v1")).await.expect("v1 deploys");
    let only_blue = rig.served().expect("routed");

    // Applies: 1 put v1 on blue, 2 gives green 10 %, 3 (50 %) fails.
    rig.faults.fail(Op::Apply, 3);
    let err = deployer.deploy(v("v2")).await.expect_err("the router failed");
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("could not apply blue 50% / green 50%")),
        "{err}"
    );
    let history = rig.router.history();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(
        (
            history[1].split().weight(Slot::Blue),
            history[1].split().weight(Slot::Green)
        ),
        (90, 10)
    );
    assert_eq!(history[2], only_blue, "all traffic back on blue");
    assert!(running("v1")(&rig.env.status_now(Slot::Blue)));
    assert!(stopped(&rig.env.status_now(Slot::Green)), "the canary is retired");
    assert_eq!(stop_calls(&rig, Slot::Blue), 0);
    check_journal(&rig.entries()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_environment_deploy_rolls_back_leaves_the_old_slot_untouched_and_carries_its_logs() {
    let rig = Rig::new();
    let deployer = rig.deployer(blue_green(BlueGreen::new()), quick_policy(), retirement(30, 5));
    deployer.deploy(v("v1")).await.expect("v1 deploys");
    let (blue, generation, ops) = (
        rig.env.status_now(Slot::Blue),
        rig.router.generation(),
        rig.env.operations(),
    );

    rig.env.fail_deploy(&v("v2"), "image not found");
    let err = deployer.deploy(v("v2")).await.expect_err("v2 cannot start");
    let Error::RolledBack { reason, logs, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(reason.contains("image not found"), "{reason}");
    assert_eq!(
        logs.last().map(String::as_str),
        Some("failed to start v2 in green: image not found")
    );
    assert!(err.to_string().contains("failed to start v2 in green"), "{err}");
    assert_eq!(rig.env.status_now(Slot::Blue), blue, "blue untouched");
    assert_eq!(rig.router.generation(), generation, "no apply at all");
    let since = &rig.env.operations()[ops.len()..];
    assert!(
        since.iter().all(|op| !matches!(
            op,
            EnvOp::Deploy { slot: Slot::Blue, .. }
                | EnvOp::Stop { slot: Slot::Blue, .. }
                | EnvOp::Remove { slot: Slot::Blue }
        )),
        "{since:?}"
    );
    check_journal(&rig.entries()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_abort_during_the_rollback_window_reverts_at_once() {
    let rig = Rig::new();
    let deployer = rig.deployer(blue_green(BlueGreen::new()), quick_policy(), retirement(60, 5));
    deployer.deploy(v("v1")).await.expect("v1 deploys");
    let only_blue = rig.served();
    let mut events = deployer.subscribe();
    let deploying = tokio::spawn({
        let deployer = deployer.clone();
        async move { deployer.deploy(v("v2")).await }
    });
    wait_for_phase(&mut events, "warm").await;
    let promoted = last_apply(&rig);
    assert_eq!(rig.served().and_then(|r| r.split().sole()), Some(Slot::Green));

    tokio::time::sleep(Duration::from_secs(20)).await;
    let aborted = Instant::now();
    deployer.abort("error rate up").await.expect("accepted while warm");
    let err = deploying.await.expect("joined").expect_err("aborted");
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason == "aborted: error rate up"),
        "{err}"
    );
    assert_eq!(rig.served(), only_blue);
    assert_eq!(last_apply(&rig), aborted, "the revert takes no (paused) time");
    assert_eq!(aborted - promoted, Duration::from_secs(20));
    assert_eq!(stop_calls(&rig, Slot::Blue), 0, "blue was never stopped");
    assert!(running("v1")(&rig.env.status_now(Slot::Blue)));
    assert!(stopped(&rig.env.status_now(Slot::Green)));
    check_journal(&rig.entries()).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_failed_post_promotion_analysis_reverts_while_the_old_slot_is_warm() {
    let rig = Rig::new();
    // Blue (v1) passes its analysis; green (v2) fails its second check, 5 s after promotion.
    let probe = ScriptedProbe::per_slot(
        vec![ProbeOutcome::Healthy],
        vec![ProbeOutcome::Healthy, ProbeOutcome::Unhealthy("5xx rate 12%".into())],
    );
    let analysis = Analysis::new(probe).count(3).interval(Duration::from_secs(5));
    let strategy = BlueGreen::new().post_promotion(analysis);
    let deployer = rig.deployer(blue_green(strategy), quick_policy(), retirement(60, 5));
    deployer.deploy(v("v1")).await.expect("v1 deploys");
    let only_blue = rig.router.history();

    let err = deployer.deploy(v("v2")).await.expect_err("v2 fails its analysis");
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("5xx rate 12%")),
        "{err}"
    );
    let history = rig.router.history();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history[1].split().sole(), Some(Slot::Green), "v2 was promoted");
    assert_eq!(history[2], only_blue[0], "and reverted");
    let events = rig.log.events();
    let applies: Vec<Instant> = events
        .iter()
        .filter(|(_, ev)| matches!(ev, Ev::Applied { .. }))
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(
        applies[2] - applies[1],
        Duration::from_secs(5),
        "reverted on the failed check"
    );
    assert_eq!(stop_calls(&rig, Slot::Blue), 0, "blue stayed up");
    assert!(running("v1")(&rig.env.status_now(Slot::Blue)));
    assert!(stopped(&rig.env.status_now(Slot::Green)));
    check_journal(&rig.entries()).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Regressions: bugs this property found, as the smallest cases that showed them (now fixed).
// ---------------------------------------------------------------------------------------------

/// `machine::step` used to send every `Failed` deployment that was promoted and had a previous
/// release to `Stopping` on resume — also one that failed *moving traffic back* (after an abort or
/// a failed post-promotion check), stopping the old slot inside its rollback window. `Failed` now
/// records what to retry.
#[tokio::test(start_paused = true)]
async fn resume_of_a_failed_revert_retries_the_revert_and_keeps_the_old_slot() {
    let rig = Rig::new();
    let deployer = rig.deployer(blue_green(BlueGreen::new()), quick_policy(), retirement(60, 5));
    deployer.deploy(v("v1")).await.expect("v1 deploys");
    let only_blue = rig.served();
    let mut events = deployer.subscribe();
    let deploying = tokio::spawn({
        let deployer = deployer.clone();
        async move { deployer.deploy(v("v2")).await }
    });
    wait_for_phase(&mut events, "warm").await;
    rig.faults.fail(Op::Apply, rig.faults.calls(Op::Apply) + 1);
    deployer.abort("error rate up").await.expect("accepted while warm");
    let err = deploying.await.expect("joined").expect_err("the revert failed");
    assert!(matches!(err, Error::Interrupted { .. }), "{err}");
    assert!(running("v1")(&rig.env.status_now(Slot::Blue)), "blue is still warm");

    rig.faults.clear();
    let resumed = deployer.resume().await;
    assert!(
        matches!(&resumed, Ok(Some(report)) if *report.deployment.phase() == Phase::RolledBack),
        "resume() returned {resumed:?}"
    );
    assert_eq!(rig.served(), only_blue);
    assert!(running("v1")(&rig.env.status_now(Slot::Blue)));
}

/// The case proptest shrank to, verbatim: a canary whose post-promotion analysis fails, then the
/// revert's `apply` (call 4) fails; resuming used to stop blue at once (window 1 s) and complete v2.
#[test]
fn resume_of_a_failed_revert_minimal_case_from_proptest() {
    let case = Case {
        strategy: StrategySpec::Canary(vec![
            StepSpec {
                weight: 1,
                pause_s: None,
                analysis: None,
            },
            StepSpec {
                weight: 100,
                pause_s: None,
                analysis: Some(AnalysisSpec {
                    count: 1,
                    interval_s: 1,
                    failure_limit: 0,
                    inconclusive_limit: 0,
                    script: vec![Outcome::Down],
                }),
            },
        ]),
        policy: (1, 1, 1, 100),
        retirement: (1, 1, 1),
        releases: vec![ReleaseSpec::Healthy, ReleaseSpec::Healthy],
        faults: vec![FaultSpec::Fail(Op::Apply, 4)],
        command: None,
        kill: None,
        approvals: 0,
    };
    if let Err(why) = run_case(&case) {
        panic!("{why}");
    }
}

/// Deployment ids used to be `<app>-<wall-clock ms>-<pid>`: two deployments started in the same
/// millisecond shared one, and `history()`, which tells deployments apart by id, merged them (and
/// `rollback()`, which reads it, answered `NotFound`). Ids now end in a process-wide counter.
#[tokio::test(start_paused = true)]
async fn deployment_ids_are_unique_within_a_millisecond() {
    let rig = Rig::new();
    let deployer = rig.deployer(blue_green(BlueGreen::new()), quick_policy(), retirement(1, 1));
    for n in 1..=10 {
        deployer.deploy(v(&format!("v{n}"))).await.expect("deploys");
    }
    let entries = rig.entries();
    let ids: Vec<&str> = entries
        .iter()
        .filter(|e| e.record == Record::Started)
        .map(|e| e.deployment.id())
        .collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:#?}");
    assert_eq!(deployer.history(10).await.expect("history").len(), 10);
}
