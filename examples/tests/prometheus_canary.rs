//! Canaries judged by a real Prometheus (Debian's, started on loopback with its own config and
//! data directory) scraping the demo-app slots, under load through a real nginx:
//! - a clean release is promoted;
//! - a release answering 20 % 500s is rolled back by the analysis before it reaches 50 %;
//! - with Prometheus stopped mid-analysis the deployment is held (inconclusive), then rolled back
//!   when no approval comes: never promoted.
//!
//! The three run one at a time (each starts its own nginx, Prometheus and slots): on two cores,
//! three Prometheus servers and loads at once would measure the machine, not the analysis.

#[path = "../common/prometheus_canary.rs"]
mod rig;

use std::time::Duration;

use bluegreen_core::{Cause, Error, EventKind, Phase, ProbeOutcome};
use bluegreen_testkit::load::{Outcome, Tally};
use rig::{release, Judged, Pace, Rig};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const PACE: Pace = Pace {
    scrape: Duration::from_secs(1),
    analysis: Duration::from_secs(1),
    checks: 5,
};

/// Every request got an answer (no connection failure), and every error came from `failing`.
fn assert_every_request_answered(tally: &Tally, failing: Option<&str>) {
    assert!(tally.total() > 100, "too little load to judge: {tally}");
    for (outcome, n) in &tally.outcomes {
        match outcome {
            Outcome::Response { status: 200, .. } => {}
            Outcome::Response { status: 500, version } if Some(version.as_str()) == failing => {}
            other => panic!("{n} requests ended {other:?}: {tally}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_release_is_promoted_by_the_prometheus_analysis() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(rig) = Rig::start(PACE) else { return };
    rig.deploy_first("v1").await;
    let load = rig.load();
    let deployer = rig.builder().strategy(rig.canary()).build().unwrap();
    let events = deployer.subscribe();
    let report = deployer.deploy(release("v2")).await;
    let tally = load.stop().await;
    let report =
        report.unwrap_or_else(|e| panic!("v2 should go live: {e}\nprometheus log:\n{}", rig.prometheus().log()));

    let judged = Judged::of(&rig.entries(report.deployment.id()));
    assert_eq!(judged.last, Phase::Completed, "{judged:?}");
    assert_eq!(judged.max_weight, 100);
    assert!(judged.phases.contains(&"analysing"), "{judged:?}");
    assert_every_request_answered(&tally, None);
    assert!(tally.served_by("v2") > 0, "{tally}");
    let checks = analysis_checks(events);
    assert!(checks.iter().filter(|c| c.is_healthy()).count() >= 2, "{checks:?}");
    assert!(
        !checks.iter().any(|c| matches!(c, ProbeOutcome::Unhealthy(_))),
        "a clean release never fails a check: {checks:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answering_20_percent_errors_is_rolled_back_before_50_percent() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(rig) = Rig::start(PACE) else { return };
    rig.deploy_first("v1").await;
    rig.env.with_vars(&release("v3"), &[("ERROR_RATE", "0.2")]);
    let load = rig.load();
    let deployer = rig.builder().strategy(rig.canary()).build().unwrap();
    let outcome = deployer.deploy(release("v3")).await;
    let tally = load.stop().await;

    let Err(Error::RolledBack {
        deployment,
        cause,
        reason,
        ..
    }) = outcome
    else {
        panic!("v3 must be rolled back, got {outcome:?}");
    };
    assert_eq!(cause, Cause::Analysis, "{reason}");
    assert!(
        reason.contains("> 0.05"),
        "the reason names the value past the threshold: {reason}"
    );
    let judged = Judged::of(&rig.entries(&deployment));
    assert_eq!(judged.last, Phase::RolledBack, "{judged:?}");
    assert_eq!(judged.max_weight, 10, "never reached 50 %: {judged:?}");
    assert!(!judged.promoted);
    assert_every_request_answered(&tally, Some("v3"));
    assert!(tally.served_by("v1") > 0 && tally.served_by("v3") > 0, "{tally}");
    let detection = judged.detection().expect("traffic and rollback are journaled");
    println!(
        "v3 failed {detection:?} after it took traffic (target {:?})",
        PACE.target()
    );
    // Not a timing assertion (the benchmark measures that): a bound that proves the analysis
    // acted on the first analysis step, not after its last check.
    assert!(
        detection < PACE.analysis * PACE.checks + 2 * PACE.scrape,
        "{detection:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prometheus_stopped_mid_analysis_the_canary_is_held_then_rolled_back_never_promoted() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let Some(rig) = Rig::start(Pace { checks: 10, ..PACE }) else {
        return;
    };
    rig.deploy_first("v1").await;
    let load = rig.load();
    let deployer = rig
        .builder()
        .strategy(rig.canary())
        .approval_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let mut events = deployer.subscribe();
    let deploying = tokio::spawn({
        let deployer = deployer.clone();
        async move { deployer.deploy(release("v4")).await }
    });
    // The first analysis check has run: Prometheus goes away mid-analysis.
    loop {
        let event = next_event(&mut events).await.expect("events until the deployment ends");
        if let EventKind::Check(record) = event.kind {
            if record.probe.starts_with("prometheus") {
                break;
            }
        }
    }
    rig.prometheus().stop();
    let mut held = None;
    while let Some(event) = next_event(&mut events).await {
        if let EventKind::PhaseChanged {
            to: Phase::Held { reason, .. },
            ..
        } = event.kind
        {
            held = Some(reason);
            break;
        }
    }
    let outcome = deploying.await.unwrap();
    let tally = load.stop().await;

    let held = held.expect("inconclusive checks hold the deployment for a human");
    assert!(held.contains("provider error"), "{held}");
    assert!(held.contains("connection refused"), "the hold says why: {held}");
    let Err(Error::RolledBack { deployment, cause, .. }) = outcome else {
        panic!("no approval within the timeout rolls back, got {outcome:?}");
    };
    assert_eq!(cause, Cause::NoApproval);
    let judged = Judged::of(&rig.entries(&deployment));
    assert!(judged.phases.contains(&"held"), "{judged:?}");
    assert_eq!(
        judged.max_weight, 10,
        "traffic stayed at the canary's first step: {judged:?}"
    );
    assert!(!judged.promoted, "{judged:?}");
    assert_eq!(judged.last, Phase::RolledBack);
    assert_every_request_answered(&tally, None);
}

type Events = tokio::sync::broadcast::Receiver<bluegreen_core::Event>;

/// The next event (skipping over any the receiver lagged behind), or `None` once the deployer
/// is gone.
async fn next_event(events: &mut Events) -> Option<bluegreen_core::Event> {
    loop {
        match events.recv().await {
            Ok(event) => return Some(event),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// The outcomes of the Prometheus checks among the events received so far.
fn analysis_checks(mut events: Events) -> Vec<ProbeOutcome> {
    use tokio::sync::broadcast::error::TryRecvError;
    let mut checks = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => {
                if let EventKind::Check(record) = event.kind {
                    if record.probe.starts_with("prometheus") {
                        checks.push(record.outcome);
                    }
                }
            }
            Err(TryRecvError::Lagged(_)) => continue,
            Err(_) => return checks,
        }
    }
}
