//! How slots stop is reported as a type: a forced kill, a stop that fails while retiring a refused
//! release, and the builder refusing a router that cannot confirm.

use async_trait::async_trait;
use bluegreen_core::journal::Record;
use bluegreen_core::machine::Retry;
use bluegreen_core::testing::{InMemoryRouter, Op};
use bluegreen_core::{
    Cause, Error, EventKind, Phase, Result, Router, RouterCapabilities, Routes, Serving, StopOutcome,
};

use crate::world::*;

#[tokio::test(start_paused = true)]
async fn an_old_release_killed_after_its_grace_period_is_reported_as_killed() {
    let w = World::new();
    w.env.ignore_sigterm(&release("v1"));
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    let mut events = d.subscribe();
    let report = d.deploy(release("v2")).await.unwrap();

    assert_eq!(report.deployment.old_stopped(), Some(StopOutcome::Killed));
    let killed = StopOutcome::Killed.to_string();
    let stopped = w
        .records(report.deployment.id())
        .into_iter()
        .find_map(|(record, phase)| match (record, phase) {
            (Record::Completed { detail }, Phase::Completed) => Some(detail),
            _ => None,
        })
        .expect("the stopping phase's completed entry");
    assert_eq!(stopped, killed);
    let detail = drain_events(&mut events)
        .into_iter()
        .find_map(|kind| match kind {
            EventKind::PhaseChanged {
                from: Phase::Stopping,
                detail,
                ..
            } => Some(detail),
            _ => None,
        })
        .expect("a phase change out of stopping");
    assert_eq!(detail, killed);
}

#[tokio::test(start_paused = true)]
async fn a_refused_release_that_cannot_be_stopped_is_not_a_clean_rollback_until_resumed() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    w.env.mark_unhealthy(&release("v2"));
    // v1's deploy stopped nothing: the first stop is the retirement of v2.
    w.faults.fail(Op::Stop, 1);

    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Interrupted {
                retry: Retry::Retire,
                ..
            }
        ),
        "{err:?}"
    );
    let status = d.status().await.unwrap();
    assert!(status.in_progress());
    assert_eq!(status.live_release(), Some(&release("v1")), "traffic is back on v1");

    let report = d.resume().await.unwrap().expect("the retirement to retry");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert_eq!(report.deployment.cause(), Some(Cause::Health));
    assert!(matches!(
        report.deployment.retired(),
        Some(StopOutcome::Graceful { .. })
    ));
    assert!(!d.status().await.unwrap().in_progress());
}

/// A router that serves what it is told but cannot see what the proxy serves.
#[derive(Debug, Clone, Default)]
struct Unconfirming(InMemoryRouter);

#[async_trait]
impl Router for Unconfirming {
    fn name(&self) -> &str {
        "unconfirming"
    }
    fn capabilities(&self) -> RouterCapabilities {
        self.0.capabilities().with_confirms(false)
    }
    async fn current(&self) -> Result<Option<Routes>> {
        self.0.current().await
    }
    async fn apply(&self, routes: &Routes) -> Result<()> {
        self.0.apply(routes).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_router_that_cannot_confirm_is_refused_unless_allowed() {
    let w = World::new();
    let err = builder(w.env.clone(), Unconfirming::default(), &w.env)
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");

    let d = builder(w.env.clone(), Unconfirming::default(), &w.env)
        .allow_unconfirmed_router(true)
        .build()
        .unwrap();
    d.deploy(release("v1")).await.unwrap();
    let status = d.status().await.unwrap();
    assert_eq!(status.serving, Serving::Unobservable);
    assert_eq!(status.live_release(), Some(&release("v1")));
}
