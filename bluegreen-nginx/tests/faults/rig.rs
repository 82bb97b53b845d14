//! A real nginx, its router, demo-app processes as the environment, and a deployer over them.

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{InMemoryJournal, Record};
use bluegreen_core::probe::HttpProbe;
use bluegreen_core::{
    AppName, Deployer, DeployerBuilder, Event, EventKind, HealthPolicy, Phase, Release, Retirement, Router,
};
use bluegreen_nginx::NginxRouter;
use bluegreen_testkit::nginx::NginxProcess;
use bluegreen_testkit::processes::DemoEnvironment;
use bluegreen_testkit::scenario::versions_seen;
use tokio::sync::broadcast;

use crate::common;

pub struct Rig {
    pub nginx: NginxProcess,
    pub router: Arc<NginxRouter>,
    pub env: DemoEnvironment,
    pub journal: Arc<InMemoryJournal>,
}

impl Rig {
    /// Starts nginx (`None`: unavailable, already reported); the slots start empty.
    pub fn start() -> Option<Rig> {
        let nginx = common::nginx()?;
        let router = Arc::new(common::router(&nginx));
        Some(Rig {
            nginx,
            router,
            env: DemoEnvironment::new(),
            journal: Arc::new(InMemoryJournal::new()),
        })
    }

    /// A deployer over this rig's router, with `rollback_window` as the warm window.
    pub fn builder(&self, rollback_window: Duration) -> DeployerBuilder {
        self.builder_with(self.router.clone(), rollback_window)
    }

    /// A deployer over `router` (sharing the rig's environment and journal).
    pub fn builder_with(&self, router: Arc<dyn Router>, rollback_window: Duration) -> DeployerBuilder {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(self.env.clone()))
            .router(router)
            .probe(Arc::new(HttpProbe::new("/health/ready").unwrap()))
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(20))
                    .failure_threshold(2),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(rollback_window)
                    .drain(Duration::from_secs(2))
                    .stop_grace(Duration::from_secs(2)),
            )
            .journal(self.journal.clone())
    }

    /// Asserts 20 requests through nginx all answer `version`.
    pub async fn assert_serves(&self, version: &str) {
        let seen = versions_seen(self.nginx.addr(), "localhost", 20).await;
        assert_eq!(seen.get(version), Some(&20), "nginx serves {version}: {seen:?}");
    }

    /// Waits (up to 5 s) until all of 20 requests through nginx answer `version`: after a raw
    /// reload, the old workers answer for a moment.
    pub async fn wait_serves(&self, version: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let seen = versions_seen(self.nginx.addr(), "localhost", 20).await;
            if seen.get(version) == Some(&20) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx never served only {version}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The journal's notes, in order.
    pub fn notes(&self) -> Vec<String> {
        self.journal
            .entries()
            .into_iter()
            .filter_map(|e| match e.record {
                Record::Note { text } => Some(text),
                _ => None,
            })
            .collect()
    }
}

pub fn release(name: &str) -> Release {
    Release::new(name).unwrap()
}

/// Starts deploying `name` in the background and returns once it is promoted and warm.
pub async fn deploy_until_warm(
    deployer: &Deployer,
    name: &str,
) -> tokio::task::JoinHandle<bluegreen_core::Result<bluegreen_core::Report>> {
    let mut events: broadcast::Receiver<Event> = deployer.subscribe();
    let deploying = {
        let deployer = deployer.clone();
        let release = release(name);
        tokio::spawn(async move { deployer.deploy(release).await })
    };
    loop {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(Event {
                kind: EventKind::PhaseChanged { to: Phase::Warm, .. },
                ..
            })) => return deploying,
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(e)) => panic!("events ended before {name} was warm: {e}"),
            Err(_) => panic!("{name} not warm within 30 s"),
        }
    }
}
