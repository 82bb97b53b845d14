//! `Deployer::releases` and `Deployer::rollback_to` on the in-memory backends: the retained
//! releases with their snapshots, a rollback to the release before the previous one through the
//! health gate, pinned to the artifact it ran, and the refusals.
#![cfg(feature = "testing")]

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::journal::{InMemoryJournal, Journal, Record};
use bluegreen_core::machine::Kind;
use bluegreen_core::testing::{EnvOp, InMemoryEnvironment, InMemoryRouter};
use bluegreen_core::{
    AppName, Cause, Deployer, Environment, Error, EventKind, HealthPolicy, Phase, Release, RetainedRelease, Retirement,
    Snapshot,
};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

struct World {
    env: InMemoryEnvironment,
    router: InMemoryRouter,
    journal: InMemoryJournal,
}

impl World {
    fn new() -> Self {
        World {
            env: InMemoryEnvironment::new(),
            router: InMemoryRouter::new(),
            journal: InMemoryJournal::new(),
        }
    }

    fn deployer_with(&self, window: Duration) -> Deployer {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(self.env.clone()))
            .router(Arc::new(self.router.clone()))
            .probe(self.env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(5))
                    .failure_threshold(3),
            )
            .retirement(
                Retirement::new()
                    .rollback_window(window)
                    .drain(Duration::ZERO)
                    .stop_grace(Duration::from_secs(1)),
            )
            .journal(Arc::new(self.journal.clone()))
            .who("alice")
            .build()
            .unwrap()
    }

    fn deployer(&self) -> Deployer {
        self.deployer_with(Duration::ZERO)
    }

    /// A deployer on which v1, v2 and v3 went live, in that order.
    async fn three_releases(&self) -> Deployer {
        let d = self.deployer();
        for v in ["v1", "v2", "v3"] {
            d.deploy(release(v)).await.unwrap();
        }
        d
    }

    async fn entries(&self) -> usize {
        self.journal.tail(100_000).await.unwrap().len()
    }

    async fn live(&self, d: &Deployer) -> (Option<Release>, Option<Snapshot>) {
        let status = d.status().await.unwrap();
        let slot = status.live_slot().unwrap();
        let snapshot = self.env.snapshot(slot).await.unwrap();
        (status.live_release().cloned(), snapshot)
    }
}

fn names(releases: &[RetainedRelease]) -> Vec<&str> {
    releases.iter().map(|r| r.release.as_str()).collect()
}

fn artifact(r: &RetainedRelease) -> Option<&str> {
    r.snapshot.as_ref().and_then(Snapshot::artifact)
}

#[tokio::test]
async fn releases_lists_what_went_live_newest_first_with_its_snapshot() {
    let w = World::new();
    let d = w.three_releases().await;
    // A release that never went live is not retained.
    w.env.mark_unhealthy(&release("v4"));
    assert!(matches!(d.deploy(release("v4")).await, Err(Error::RolledBack { .. })));

    let releases = d.releases().await.unwrap();
    assert_eq!(names(&releases), ["v3", "v2", "v1"]);
    let serving: Vec<bool> = releases.iter().map(|r| r.serving).collect();
    assert_eq!(serving, [true, false, false]);
    for r in &releases {
        assert_eq!(artifact(r), Some(format!("memory:{}#1", r.release).as_str()));
        assert_eq!(r.who.as_deref(), Some("alice"));
        assert_eq!(r.kind, Kind::Deploy);
    }
    assert!(releases[0].live_since >= releases[1].live_since);
    assert!(releases[1].live_since >= releases[2].live_since);
    // The snapshot is the one the journal holds for the deployment that made it live.
    let history = d.history(10).await.unwrap();
    let v2 = history.iter().find(|h| h.id() == releases[1].deployment).unwrap();
    assert_eq!(v2.snapshot(), releases[1].snapshot.as_ref());
    assert_eq!(v2.pin(), None, "a plain deploy pins nothing");
}

#[tokio::test]
async fn rollback_to_the_release_before_the_previous_starts_the_artifact_it_ran() {
    let w = World::new();
    let d = w.three_releases().await;
    // v1's name now resolves to another build (a retagged image): the rollback must not use it.
    assert_eq!(w.env.rebuild(&release("v1")), "memory:v1#2");
    let ops_before = w.env.operations().len();

    let report = d.rollback_to(release("v1")).await.unwrap();
    let done = &report.deployment;
    assert_eq!((done.kind(), done.phase()), (Kind::Rollback, &Phase::Completed));
    assert_eq!(done.pin().and_then(Snapshot::artifact), Some("memory:v1#1"));
    assert_eq!(done.snapshot().and_then(Snapshot::artifact), Some("memory:v1#1"));
    // Through the health gate: Provisioning, then Verifying, before any traffic moved.
    let phases: Vec<&str> = report.timeline.iter().map(|s| s.phase.as_str()).collect();
    assert_eq!(&phases[..3], ["provisioning", "verifying", "deciding"], "{phases:?}");

    let (live, snapshot) = w.live(&d).await;
    assert_eq!(live, Some(release("v1")));
    assert_eq!(snapshot.as_ref().and_then(Snapshot::artifact), Some("memory:v1#1"));
    let started: Vec<_> = w.env.operations()[ops_before..]
        .iter()
        .filter_map(|op| match op {
            EnvOp::DeploySnapshot { release, artifact, .. } => Some((release.clone(), artifact.clone())),
            EnvOp::Deploy { release, .. } => Some((release.clone(), None)),
            _ => None,
        })
        .collect();
    assert_eq!(started, [(release("v1"), Some("memory:v1#1".to_string()))]);

    let releases = d.releases().await.unwrap();
    assert_eq!(names(&releases), ["v1", "v3", "v2"]);
    assert!(releases[0].serving && !releases[1].serving);
    assert_eq!(releases[0].kind, Kind::Rollback);
    assert_eq!(artifact(&releases[0]), Some("memory:v1#1"));
}

#[tokio::test]
async fn a_rollback_to_a_release_that_fails_its_health_check_rolls_back_to_the_current() {
    let w = World::new();
    let d = w.three_releases().await;
    w.env.mark_unhealthy(&release("v1"));
    let applied = w.router.generation();

    let err = d.rollback_to(release("v1")).await.unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { release, cause: Cause::Health, .. } if release == "v1"),
        "{err:?}"
    );
    assert_eq!(w.live(&d).await.0, Some(release("v3")));
    assert_eq!(w.router.generation(), applied, "traffic never moved");
    let releases = d.releases().await.unwrap();
    assert_eq!(names(&releases), ["v3", "v2", "v1"]);
    assert!(releases[0].serving);
}

#[tokio::test]
async fn a_gone_artifact_is_refused_by_name_and_nothing_changes() {
    let w = World::new();
    let d = w.three_releases().await;
    w.env.remove_artifact("memory:v1#1");
    let (entries, ops, applied) = (w.entries().await, w.env.operations().len(), w.router.generation());

    let err = d.rollback_to(release("v1")).await.unwrap_err();
    assert!(
        matches!(&err, Error::ArtifactGone { release, artifact } if release == "v1" && artifact == "memory:v1#1"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "release v1 cannot be started as it ran: its artifact memory:v1#1 is gone"
    );
    assert_eq!(w.entries().await, entries, "nothing journaled");
    assert_eq!(w.env.operations().len(), ops, "nothing started or stopped");
    assert_eq!(w.router.generation(), applied, "nothing switched");
    assert_eq!(w.live(&d).await.0, Some(release("v3")));
}

#[tokio::test]
async fn a_release_the_journal_does_not_retain_live_is_not_found() {
    let w = World::new();
    let d = w.three_releases().await;
    w.env.mark_unhealthy(&release("v4"));
    let _ = d.deploy(release("v4")).await.unwrap_err();
    for never_live in ["v4", "v9"] {
        let err = d.rollback_to(release(never_live)).await.unwrap_err();
        assert!(
            matches!(&err, Error::NotFound { what: "retained release", name } if name.starts_with(never_live)),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_changed_configuration_is_noted_and_the_rollback_proceeds() {
    let w = World::new();
    let d = w.three_releases().await;
    let then = d.releases().await.unwrap()[2].snapshot.clone().unwrap();
    w.env.set_config("PORT=9090");

    let report = d.rollback_to(release("v1")).await.unwrap();
    let now = report.deployment.snapshot().unwrap();
    assert_eq!(now.artifact(), then.artifact());
    assert_ne!(now.fingerprint(), then.fingerprint());
    let notes = config_notes(&w, &report).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("the configuration changed since v1 last went live")
            && notes[0].contains(then.fingerprint())
            && notes[0].contains(now.fingerprint()),
        "{notes:?}"
    );
    assert_eq!(w.live(&d).await.0, Some(release("v1")));

    // v3 ran under the old configuration too: noted. v1's latest run is under today's: not.
    assert_eq!(
        config_notes(&w, &d.rollback_to(release("v3")).await.unwrap())
            .await
            .len(),
        1
    );
    assert!(config_notes(&w, &d.rollback_to(release("v1")).await.unwrap())
        .await
        .is_empty());
}

/// The notes journaled for the deployment of `report`.
async fn config_notes(w: &World, report: &bluegreen_core::Report) -> Vec<String> {
    w.journal
        .tail(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.deployment.id() == report.deployment.id())
        .filter_map(|e| match e.record {
            Record::Note { text } => Some(text),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_resumed_rollback_to_keeps_its_pin() {
    let w = World::new();
    w.three_releases().await;
    w.env.rebuild(&release("v1"));
    // Interrupted while warm (after promotion), as a crash would: the future is dropped. (The
    // rollback window is journaled with the deployment: the resume waits it again.)
    let d = w.deployer_with(Duration::from_millis(500));
    let mut events = d.subscribe();
    let running = tokio::spawn({
        let d = d.clone();
        async move { d.rollback_to(release("v1")).await }
    });
    loop {
        if let EventKind::PhaseChanged { to: Phase::Warm, .. } = events.recv().await.unwrap().kind {
            break;
        }
    }
    running.abort();
    let _ = running.await;
    let last = d.history(1).await.unwrap().remove(0);
    assert_eq!(last.phase(), &Phase::Warm);
    assert_eq!(last.pin().and_then(Snapshot::artifact), Some("memory:v1#1"));

    // A new process resumes it from the journal: it finishes with the pin it journaled.
    let report = w.deployer().resume().await.unwrap().unwrap();
    let done = &report.deployment;
    assert_eq!((done.id(), done.phase()), (last.id(), &Phase::Completed));
    assert_eq!(done.pin(), last.pin());
    assert_eq!(done.snapshot().and_then(Snapshot::artifact), Some("memory:v1#1"));
    let (live, snapshot) = w.live(&w.deployer()).await;
    assert_eq!(live, Some(release("v1")));
    assert_eq!(snapshot.as_ref().and_then(Snapshot::artifact), Some("memory:v1#1"));
}

#[tokio::test]
async fn an_entry_written_before_snapshots_reads_back() {
    // An entry as written before snapshots were recorded: no `snapshot` or `pin` field.
    let w = World::new();
    let d = w.three_releases().await;
    let entry = w.journal.tail(1).await.unwrap().remove(0);
    let mut json = serde_json::to_value(&entry).unwrap();
    let fields = json["deployment"].as_object_mut().unwrap();
    assert!(fields.remove("snapshot").is_some());
    assert!(!fields.contains_key("pin"));
    let old: bluegreen_core::journal::Entry = serde_json::from_value(json).unwrap();
    assert_eq!(old.deployment.snapshot(), None);
    assert_eq!(d.releases().await.unwrap().len(), 3);
}
