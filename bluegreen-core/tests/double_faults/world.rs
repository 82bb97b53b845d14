//! The in-memory world the double-fault tests run in: an environment and a router wrapped in one
//! shared fault plan, a journal, and a deployer builder with short, test-sized timings.

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{Entry, InMemoryJournal, Journal, Record};
use bluegreen_core::machine::{Deployment, Kind, Previous};
use bluegreen_core::testing::{Faults, FaultyEnvironment, FaultyRouter, InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    AppName, BlueGreen, Deployer, DeployerBuilder, Endpoint, Event, EventKind, HealthPolicy, Phase, Release,
    Retirement, Routes, Slot, Strategy, Timestamp,
};
use tokio::sync::broadcast;

pub fn app() -> AppName {
    AppName::new("shop").unwrap()
}

pub fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

/// No rollback window and no drain: a deploy is its checks, its switch and its stop.
pub fn retirement() -> Retirement {
    Retirement::new()
        .rollback_window(Duration::ZERO)
        .drain(Duration::ZERO)
        .stop_grace(Duration::from_secs(1))
}

pub struct World {
    pub env: InMemoryEnvironment,
    pub router: InMemoryRouter,
    pub journal: InMemoryJournal,
    /// Shared by the environment and the router the deployer sees.
    pub faults: Faults,
}

impl World {
    pub fn new() -> Self {
        World {
            env: InMemoryEnvironment::new(),
            router: InMemoryRouter::new(),
            journal: InMemoryJournal::new(),
            faults: Faults::new(),
        }
    }

    /// A deployer over the faulty wrappers, journaled in [`World::journal`].
    pub fn builder(&self) -> DeployerBuilder {
        builder(
            FaultyEnvironment::new(self.env.clone(), self.faults.clone()),
            FaultyRouter::new(self.router.clone(), self.faults.clone()),
            &self.env,
        )
        .journal(Arc::new(self.journal.clone()))
    }

    pub fn deployer(&self) -> Deployer {
        self.builder().build().unwrap()
    }

    /// What the proxy serves, as a slot with all traffic.
    pub fn served_slot(&self) -> Option<Slot> {
        self.router.served().and_then(|r| r.split().sole())
    }

    /// The journal's records of deployment `id`.
    pub fn records(&self, id: &str) -> Vec<(Record, Phase)> {
        records(&self.journal.entries(), id)
    }
}

/// A deployer builder over `env` and `router`, probing the in-memory `health` environment.
pub fn builder(
    env: impl bluegreen_core::Environment,
    router: impl bluegreen_core::Router,
    health: &InMemoryEnvironment,
) -> DeployerBuilder {
    Deployer::builder(app())
        .environment(Arc::new(env))
        .router(Arc::new(router))
        .probe(health.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(5))
                .failure_threshold(3),
        )
        .retirement(retirement())
}

/// Each entry of deployment `id`: what it recorded, and the phase it left the deployment in.
pub fn records(entries: &[Entry], id: &str) -> Vec<(Record, Phase)> {
    entries
        .iter()
        .filter(|e| e.deployment.id() == id)
        .map(|e| (e.record.clone(), e.deployment.phase().clone()))
        .collect()
}

/// The state the outage left: v1 was live on blue, v2 went to green and got traffic, and the
/// deployer crashed while rolling back — after writing the router's configuration back to blue,
/// before the proxy reloaded it. Returns the deployment as the journal holds it.
pub async fn crashed_mid_rollback(
    env: &InMemoryEnvironment,
    router: &InMemoryRouter,
    journal: &dyn Journal,
) -> Deployment {
    use bluegreen_core::{Environment, Router};
    let (v1, v2) = (release("v1"), release("v2"));
    let blue = env.deploy(Slot::Blue, &v1).await.unwrap();
    router.apply(&Routes::only(Slot::Blue, blue.clone())).await.unwrap();
    let green = env.deploy(Slot::Green, &v2).await.unwrap();
    router.apply(&Routes::only(Slot::Green, green.clone())).await.unwrap();
    router.configure_without_serving(Routes::only(Slot::Blue, blue.clone()));

    let previous = Previous::new(Slot::Blue, v1, blue);
    let d = Deployment::new(app(), Kind::Deploy, v2, Slot::Green, Some(previous), retirement(), None);
    let d = edited(&d, serde_json::json!({ "strategy": BlueGreen::new().name() }));
    append(journal, 1, Record::Started, &d).await;
    let d = edited(
        &d,
        serde_json::json!({
            "endpoints": green,
            "routed": true,
            "weight": 100,
            "promoted": true,
            "cause": bluegreen_core::Cause::Health,
            "reason": "the post-promotion check failed",
            "phase": Phase::RollingBack,
        }),
    );
    let failed = Record::Failed {
        reason: "the post-promotion check failed".into(),
    };
    append(journal, 2, failed, &d).await;
    d
}

/// `d` with `fields` replaced, as a journal holding that state would read. A `Deployment` is
/// read-only (only the machine changes it); these tests fabricate what a crash left in a journal,
/// so they write it the way a journal stores it: as JSON.
pub fn edited(d: &Deployment, fields: serde_json::Value) -> Deployment {
    let mut value = serde_json::to_value(d).unwrap();
    for (key, field) in fields.as_object().expect("an object of fields") {
        assert!(
            value.get(key).is_some() || key == "cause",
            "a Deployment has no field {key}"
        );
        value[key] = field.clone();
    }
    serde_json::from_value(value).unwrap()
}

pub async fn append(journal: &dyn Journal, seq: u64, record: Record, d: &Deployment) {
    let entry = Entry::new(seq, Timestamp::now(), record, d.clone());
    journal.append(&entry).await.unwrap();
}

/// Every event received so far.
pub fn drain_events(events: &mut broadcast::Receiver<Event>) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    while let Ok(event) = events.try_recv() {
        kinds.push(event.kind);
    }
    kinds
}

/// No phase change leads from a phase to itself.
pub fn assert_no_self_transition(kinds: &[EventKind]) {
    for kind in kinds {
        if let EventKind::PhaseChanged { from, to, .. } = kind {
            assert_ne!(from, to, "a phase change from a phase to itself: {kinds:#?}");
        }
    }
}

/// An endpoint nothing runs at.
pub fn nowhere(port: u16) -> Endpoint {
    Endpoint::new("127.0.0.1", port).unwrap()
}
