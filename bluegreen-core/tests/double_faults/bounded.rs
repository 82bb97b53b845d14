//! Every backend call is bounded: a hang becomes a typed outcome and the lock is released, also
//! when the hang is the second fault (the router down while rolling back).

use std::time::Duration;

use bluegreen_core::machine::Retry;
use bluegreen_core::testing::Op;
use bluegreen_core::{Call, Cause, Deployer, Error, Phase, Slot, StopOutcome, Timeouts};

use crate::world::*;

const BOUND: Duration = Duration::from_secs(5);

fn bounded(w: &World) -> Deployer {
    w.builder().timeouts(Timeouts::all(BOUND)).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_hung_switch_rolls_back_as_a_timeout_and_releases_the_lock() {
    let w = World::new();
    let d = bounded(&w);
    d.deploy(release("v1")).await.unwrap();
    w.faults.hang(Op::Apply, 2);

    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RolledBack {
                cause: Cause::Timeout(Call::Apply),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(w.served_slot(), Some(Slot::Blue));
    assert_eq!(d.status().await.unwrap().live_release(), Some(&release("v1")));
    d.deploy(release("v3")).await.expect("the lock was released");
    assert_eq!(d.status().await.unwrap().live_release(), Some(&release("v3")));
}

#[tokio::test(start_paused = true)]
async fn a_hung_provision_rolls_back_as_a_timeout() {
    let w = World::new();
    let d = bounded(&w);
    d.deploy(release("v1")).await.unwrap();
    w.faults.hang(Op::Deploy, 2);

    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RolledBack {
                cause: Cause::Timeout(Call::Provision),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(d.status().await.unwrap().live_release(), Some(&release("v1")));
}

#[tokio::test(start_paused = true)]
async fn a_hung_stop_of_the_old_slot_is_interrupted_and_a_resume_finishes_it() {
    let w = World::new();
    let d = bounded(&w);
    d.deploy(release("v1")).await.unwrap();
    w.faults.hang(Op::Stop, 1);

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
    let status = d.status().await.unwrap();
    assert!(status.in_progress());
    assert_eq!(status.last.as_ref().unwrap().cause(), Some(Cause::Timeout(Call::Stop)));
    assert_eq!(status.live_release(), Some(&release("v2")));

    let mut events = d.subscribe();
    let report = d.resume().await.unwrap().expect("the stop to retry");
    assert_eq!(*report.deployment.phase(), Phase::Completed);
    assert!(matches!(
        report.deployment.old_stopped(),
        Some(StopOutcome::Graceful { .. })
    ));
    assert_no_self_transition(&drain_events(&mut events));
    assert!(!d.status().await.unwrap().in_progress());
}

#[tokio::test(start_paused = true)]
async fn a_hung_observe_while_rolling_back_still_rolls_back() {
    let w = World::new();
    let d = bounded(&w);
    d.deploy(release("v1")).await.unwrap();
    w.env.mark_unhealthy(&release("v2"));
    // Observe calls: v1's discovery, v2's discovery, then the rollback's.
    w.faults.hang(Op::Observe, 3);

    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::RolledBack {
                cause: Cause::Health,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(w.faults.calls(Op::Observe), 3);
    assert_eq!(w.faults.calls(Op::Apply), 2, "the previous routes applied anyway");
    assert_eq!(w.served_slot(), Some(Slot::Blue));
}

#[tokio::test(start_paused = true)]
async fn the_router_down_while_rolling_back_is_interrupted_and_a_resume_converges() {
    let w = World::new();
    let warm = retirement().rollback_window(Duration::from_secs(60));
    let d = w
        .builder()
        .timeouts(Timeouts::all(BOUND))
        .retirement(warm)
        .build()
        .unwrap();
    d.deploy(release("v1")).await.unwrap();
    let v1 = d.status().await.unwrap();
    // The router goes down once v2 is live: the rollback's observe fails, its apply hangs.
    let observed = w.faults.calls(Op::Observe);
    w.faults.fail(Op::Observe, observed + 2).hang(Op::Apply, 3);

    let mut events = d.subscribe();
    let deploying = {
        let d = d.clone();
        tokio::spawn(async move { d.deploy(release("v2")).await })
    };
    loop {
        if let bluegreen_core::EventKind::PhaseChanged { to: Phase::Warm, .. } = events.recv().await.unwrap().kind {
            break;
        }
    }
    assert_eq!(w.served_slot(), Some(Slot::Green));
    d.abort("the post-release check failed").await.unwrap();

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
    assert_eq!(
        w.served_slot(),
        Some(Slot::Green),
        "the rollback never reached the proxy"
    );
    let status = d.status().await.unwrap();
    assert!(status.in_progress());
    assert_eq!(status.last.as_ref().unwrap().cause(), Some(Cause::Aborted));

    // The router is back.
    w.faults.clear();
    let report = d.resume().await.unwrap().expect("the rollback to retry");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Aborted));
    assert_eq!(w.served_slot(), Some(Slot::Blue));
    let status = d.status().await.unwrap();
    assert_eq!(status.live_release(), Some(&release("v1")));
    assert_eq!(status.routes, v1.routes);
    assert_eq!(status.drift, []);
}
