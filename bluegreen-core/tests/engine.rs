//! The deployer's behaviour end to end on the in-memory backends: promotion, abort, rollback,
//! canary steps, refusals, inconclusive checks, events, and the per-application lock.
#![cfg(feature = "testing")]

use std::sync::Arc;
use std::time::Duration;

use bluegreen_core::environment::SlotStatus;
use bluegreen_core::journal::{FileJournal, InMemoryJournal, Journal, Record};
use bluegreen_core::lock::{FileLock, InMemoryLock};
use bluegreen_core::probe::{Analysis, HealthProbe, ProbeTarget};
use bluegreen_core::testing::{EnvOp, InMemoryEnvironment, InMemoryRouter, ScriptedProbe};
use bluegreen_core::{
    AppName, BlueGreen, Canary, CanaryStep, Conflict, Deployer, DeployerBuilder, Error, EventKind, HealthPolicy, Phase,
    ProbeOutcome, Promotion, Release, Retirement, Slot, StopOutcome, TrafficSplit,
};

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

fn retirement() -> Retirement {
    Retirement::new()
        .rollback_window(Duration::from_millis(200))
        .drain(Duration::from_millis(10))
        .stop_grace(Duration::from_secs(1))
}

type Deploying = tokio::task::JoinHandle<bluegreen_core::Result<bluegreen_core::Report>>;
type Events = tokio::sync::broadcast::Receiver<bluegreen_core::Event>;

/// Starts `d.deploy(version)` on its own task.
fn spawn_deploy(
    d: &Deployer,
    version: &str,
) -> tokio::task::JoinHandle<bluegreen_core::Result<bluegreen_core::Report>> {
    let (d, release) = (d.clone(), release(version));
    tokio::spawn(async move { d.deploy(release).await })
}

/// Waits for the deployment to enter the phase named `phase`, and returns it.
async fn wait_until(events: &mut Events, phase: &str) -> Phase {
    loop {
        if let EventKind::PhaseChanged { to, .. } = events.recv().await.unwrap().kind {
            if to.name() == phase {
                return to;
            }
        }
    }
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

    fn builder(&self) -> DeployerBuilder {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(self.env.clone()))
            .router(Arc::new(self.router.clone()))
            .probe(self.env.health_probe())
            .policy(
                HealthPolicy::default()
                    .interval(Duration::from_millis(5))
                    .failure_threshold(3),
            )
            .retirement(retirement())
            .journal(Arc::new(self.journal.clone()))
    }

    fn deployer(&self) -> Deployer {
        self.builder().build().unwrap()
    }

    /// v1 live, then v2 deploying with manual promotion: the deployer, the deploy's task, and the
    /// deployer's events from before v2 started.
    async fn v2_awaiting_approval(&self) -> (Deployer, Deploying, Events) {
        self.deployer().deploy(release("v1")).await.unwrap();
        let d = self
            .builder()
            .strategy(BlueGreen::new().promotion(Promotion::Manual))
            .build()
            .unwrap();
        let events = d.subscribe();
        let running = spawn_deploy(&d, "v2");
        (d, running, events)
    }

    fn live(&self) -> Option<(Slot, Release)> {
        let routes = self.router.history().last().cloned()?;
        let slot = routes.split().sole()?;
        let release = self.env.status_now(slot).release().cloned()?;
        Some((slot, release))
    }
}

/// Events, reports and status write durations as the configs do: humantime text.
#[tokio::test(start_paused = true)]
async fn events_reports_and_status_write_durations_as_text() {
    let w = World::new();
    let d = w.deployer();
    let mut events = d.subscribe();
    let report = d.deploy(release("v1")).await.unwrap();
    let duration = |v: &serde_json::Value| -> Duration {
        let text = v.as_str().unwrap_or_else(|| panic!("not text: {v}"));
        humantime::parse_duration(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    };

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(duration(&json["took"]), report.took);
    assert!(!report.timeline.is_empty());
    for (i, step) in report.timeline.iter().enumerate() {
        assert_eq!(duration(&json["timeline"][i]["took"]), step.took);
        assert_eq!(duration(&json["timeline"][i]["at"]), step.at);
    }
    assert_eq!(json["deployment"]["retirement"]["rollback_window"], "200ms");

    let mut changes = 0;
    while let Ok(event) = events.try_recv() {
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(duration(&json["elapsed"]), event.elapsed);
        if let EventKind::PhaseChanged { took, .. } = &event.kind {
            assert_eq!(duration(&json["kind"]["took"]), *took, "{json}");
            changes += 1;
        }
    }
    assert!(changes > 3, "{changes} phase changes");

    let status = serde_json::to_value(d.status().await.unwrap()).unwrap();
    assert_eq!(status["last"]["retirement"]["drain"], "10ms");
}

#[tokio::test(start_paused = true)]
async fn deploys_alternate_slots_and_retire_the_old_one_after_the_window() {
    let w = World::new();
    let d = w.deployer();
    let first = d.deploy(release("v1")).await.unwrap();
    assert_eq!(first.deployment.target(), Slot::Blue);
    assert!(first.deployment.previous().is_none());
    let second = d.deploy(release("v2")).await.unwrap();
    assert_eq!(second.deployment.target(), Slot::Green);
    assert_eq!(second.deployment.previous().unwrap().release, release("v1"));
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
    assert!(matches!(w.env.status_now(Slot::Blue), SlotStatus::Stopped { .. }));
    let warm = second
        .timeline
        .iter()
        .find(|s| s.phase == "warm")
        .expect("a warm phase");
    assert!(warm.took >= retirement().rollback_window, "{warm:?}");

    let status = d.status().await.unwrap();
    assert_eq!(status.live_slot(), Some(Slot::Green));
    assert_eq!(status.live_release(), Some(&release("v2")));
    assert!(!status.in_progress());
    let history = d.history(10).await.unwrap();
    let releases: Vec<_> = history
        .iter()
        .map(|d| (d.release().as_str(), d.phase().name()))
        .collect();
    assert_eq!(releases, [("v2", "completed"), ("v1", "completed")]);
}

#[tokio::test(start_paused = true)]
async fn a_release_that_fails_health_is_rolled_back_with_its_logs() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    w.env.mark_unhealthy(&release("v2"));
    let err = d.deploy(release("v2")).await.unwrap_err();
    let Error::RolledBack {
        release: r,
        reason,
        logs,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(r, "v2");
    assert!(
        reason.contains("not healthy") && reason.contains("v2 is unhealthy"),
        "{reason}"
    );
    assert!(logs.iter().any(|l| l.contains("starting v2")), "{logs:?}");
    assert!(
        err.to_string().contains("starting v2"),
        "the message carries the logs: {err}"
    );
    // Traffic never left v1, and v2 was stopped.
    assert_eq!(w.router.history().len(), 1, "only v1's promotion was ever applied");
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert!(!matches!(w.env.status_now(Slot::Green), SlotStatus::Running { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_release_that_cannot_start_is_rolled_back_and_the_live_slot_untouched() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    w.env.fail_deploy(&release("v2"), "image not found");
    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("image not found")),
        "{err}"
    );
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    let stops_of_blue = w
        .env
        .operations()
        .into_iter()
        .filter(|op| matches!(op, EnvOp::Stop { slot: Slot::Blue, .. }));
    assert_eq!(stops_of_blue.count(), 0);
}

#[tokio::test(start_paused = true)]
async fn manual_promotion_waits_for_promote_and_traffic_stays_until_then() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let d = w
        .builder()
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .build()
        .unwrap();
    assert!(
        matches!(d.promote().await, Err(Error::Conflict { .. })),
        "nothing runs yet"
    );

    let mut events = d.subscribe();
    let running = spawn_deploy(&d, "v2");
    wait_until(&mut events, "paused").await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        w.live(),
        Some((Slot::Blue, release("v1"))),
        "no traffic before approval, however long"
    );
    d.promote().await.unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
}

#[tokio::test(start_paused = true)]
async fn abort_during_a_pause_rolls_back() {
    let w = World::new();
    let (d, running, _) = w.v2_awaiting_approval().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    d.abort("changed my mind").await.unwrap();
    let err = running.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("changed my mind")),
        "{err}"
    );
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
}

#[tokio::test(start_paused = true)]
async fn rollback_during_the_window_is_instant_and_keeps_the_old_slot() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let d = w
        .builder()
        .retirement(retirement().rollback_window(Duration::from_secs(600)))
        .build()
        .unwrap();
    let running = spawn_deploy(&d, "v2");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))), "promoted, old slot warm");
    let applies_before = w.router.history().len();
    assert_eq!(
        d.rollback().await.unwrap().map(|r| r.deployment.id().to_owned()),
        None,
        "aborts the in-flight deploy"
    );
    let err = running.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert_eq!(w.router.history().len(), applies_before + 1, "one switch back");
    let v1_stops = w
        .env
        .operations()
        .into_iter()
        .filter(|op| matches!(op, EnvOp::Stop { slot: Slot::Blue, .. }));
    assert_eq!(
        v1_stops.count(),
        0,
        "v1 was never stopped: the rollback needed no restart"
    );
}

#[tokio::test(start_paused = true)]
async fn rollback_after_completion_redeploys_the_previous_release_through_the_health_gate() {
    let w = World::new();
    let d = w.deployer();
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    let report = d.rollback().await.unwrap().expect("a rollback deployment");
    assert_eq!(*report.deployment.release(), release("v1"));
    assert_eq!(report.deployment.kind(), bluegreen_core::machine::Kind::Rollback);
    assert!(report.timeline.iter().any(|s| s.phase == "verifying"), "health-gated");
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert!(matches!(
        Deployer::builder(AppName::new("empty").unwrap())
            .environment(Arc::new(InMemoryEnvironment::new()))
            .router(Arc::new(InMemoryRouter::new()))
            .probe(ScriptedProbe::always_healthy())
            .build()
            .unwrap()
            .rollback()
            .await,
        Err(Error::NotFound { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_canary_walks_its_weights_and_completes() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Pause(Duration::from_secs(30)),
        CanaryStep::Analyse(
            Analysis::new(w.env.health_probe())
                .count(3)
                .interval(Duration::from_secs(1)),
        ),
        CanaryStep::SetWeight(50),
    ])
    .unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    d.deploy(release("v2")).await.unwrap();
    let splits: Vec<TrafficSplit> = w.router.history().iter().map(|r| r.split()).collect();
    let green: Vec<u8> = splits.iter().map(|s| s.weight(Slot::Green)).collect();
    assert_eq!(green, [0, 10, 50, 100]);
}

/// Keeps the target of every check, and answers healthy.
#[derive(Debug, Default)]
struct RecordingProbe(std::sync::Mutex<Vec<ProbeTarget>>);

#[async_trait::async_trait]
impl HealthProbe for RecordingProbe {
    fn describe(&self) -> String {
        "recording".to_string()
    }
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        self.0.lock().unwrap().push(target.clone());
        ProbeOutcome::Healthy
    }
}

#[tokio::test(start_paused = true)]
async fn every_probe_gets_the_deployment_context_and_analysis_sees_when_traffic_started() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let probe = Arc::new(RecordingProbe::default());
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Analyse(Analysis::new(probe.clone()).count(1)),
    ])
    .unwrap();
    let d = w.builder().probe(probe.clone()).strategy(canary).build().unwrap();
    let report = d.deploy(release("v2")).await.unwrap();
    let targets = probe.0.lock().unwrap().clone();
    let (verify, analyse) = (targets.first().unwrap(), targets.last().unwrap());
    for target in [verify, analyse] {
        assert_eq!(target.slot, Slot::Green);
        assert_eq!(target.context.deployment.as_deref(), Some(report.deployment.id()));
        assert_eq!(target.context.app.as_ref().map(|a| a.as_str()), Some("shop"));
        assert_eq!(target.context.release, Some(release("v2")));
    }
    assert_eq!((verify.context.weight, verify.context.traffic_since), (0, None));
    assert_eq!(analyse.context.weight, 10);
    assert!(analyse.context.traffic_since.is_some());
    assert_eq!(analyse.context.traffic_since, report.deployment.traffic_since());
}

#[tokio::test(start_paused = true)]
async fn a_canary_whose_analysis_fails_goes_back_to_the_previous_release() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let analysis = Analysis::new(ScriptedProbe::always(ProbeOutcome::Unhealthy("5xx".into()))).count(5);
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(20),
        CanaryStep::Analyse(analysis.failure_limit(1)),
    ])
    .unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("2 of 2 checks failed")),
        "{err}"
    );
    let green: Vec<u8> = w
        .router
        .history()
        .iter()
        .map(|r| r.split().weight(Slot::Green))
        .collect();
    assert_eq!(green, [0, 20, 0]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_post_promotion_check_reverts_traffic_while_the_old_slot_is_warm() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let post = Analysis::new(ScriptedProbe::always(ProbeOutcome::Unhealthy("errors".into())));
    let d = w
        .builder()
        .strategy(BlueGreen::new().post_promotion(post))
        .build()
        .unwrap();
    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");
    let green: Vec<u8> = w
        .router
        .history()
        .iter()
        .map(|r| r.split().weight(Slot::Green))
        .collect();
    assert_eq!(green, [0, 100, 0], "promoted, then reverted");
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
}

#[test]
fn a_canary_on_a_router_without_weighted_split_is_refused_up_front() {
    let err = Deployer::builder(AppName::new("shop").unwrap())
        .environment(Arc::new(InMemoryEnvironment::new()))
        .router(Arc::new(InMemoryRouter::without_weighted_split()))
        .probe(ScriptedProbe::always_healthy())
        .strategy(Canary::new(vec![CanaryStep::SetWeight(10)]).unwrap())
        .build()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Unsupported {
                capability: "weighted split",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "memory does not support weighted split");
}

#[test]
fn missing_parts_are_named() {
    let err = Deployer::builder(AppName::new("shop").unwrap()).build().unwrap_err();
    assert!(err.to_string().contains("environment"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn inconclusive_health_holds_for_a_human_and_approval_rechecks() {
    let w = World::new();
    let probe = ScriptedProbe::new(vec![
        ProbeOutcome::ProviderError("metrics down".into()),
        ProbeOutcome::ProviderError("metrics down".into()),
        ProbeOutcome::Healthy,
    ]);
    let d = w
        .builder()
        .probe(probe)
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(5))
                .error_threshold(2),
        )
        .build()
        .unwrap();
    let mut events = d.subscribe();
    let running = spawn_deploy(&d, "v1");
    let Phase::Held { reason, .. } = wait_until(&mut events, "held").await else {
        unreachable!()
    };
    assert!(reason.contains("provider errors"), "{reason}");
    assert!(w.router.history().is_empty(), "held: no traffic");
    d.promote().await.unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
}

#[tokio::test(start_paused = true)]
async fn an_old_release_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let w = World::new();
    let d = w.deployer();
    w.env.ignore_sigterm(&release("v1"));
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();
    let stop = w.env.operations().into_iter().find_map(|op| match op {
        EnvOp::Stop {
            slot: Slot::Blue,
            grace,
            outcome,
        } => Some((grace, outcome)),
        _ => None,
    });
    assert_eq!(stop, Some((retirement().stop_grace, StopOutcome::Killed)));
}

#[tokio::test(start_paused = true)]
async fn events_report_every_phase_and_check() {
    let w = World::new();
    let d = w.deployer();
    let mut events = d.subscribe();
    d.deploy(release("v1")).await.unwrap();
    let mut phases = Vec::new();
    let mut checks = 0;
    while let Ok(e) = events.try_recv() {
        match e.kind {
            EventKind::PhaseChanged { to, .. } => phases.push(to.name()),
            EventKind::Check(_) => checks += 1,
            _ => {}
        }
    }
    assert_eq!(phases, ["verifying", "deciding", "shifting", "deciding", "completed"]);
    assert!(checks >= 1);
}

#[tokio::test(start_paused = true)]
async fn the_journal_records_every_step_with_who_and_the_outcome() {
    let w = World::new();
    let d = w.builder().who("alice").build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    let entries = w.journal.entries();
    assert!(matches!(entries[0].record, Record::Started));
    assert!(entries.iter().all(|e| e.deployment.who() == Some("alice")));
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=entries.len() as u64).collect::<Vec<_>>());
    assert_eq!(*entries.last().unwrap().deployment.phase(), Phase::Completed);
}

#[tokio::test(start_paused = true)]
async fn traffic_split_without_a_journal_to_explain_it_is_a_conflict() {
    use bluegreen_core::{Endpoint, Router, Routes};
    let w = World::new();
    let e = |p| Some(Endpoint::new("127.0.0.1", p).unwrap().into());
    w.router
        .apply(&Routes::new(TrafficSplit::new(50, 50).unwrap(), e(1), e(2)).unwrap())
        .await
        .unwrap();
    let err = w.deployer().deploy(release("v1")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(Conflict::SplitWithoutDeployment { .. })),
        "{err}"
    );
}

/// Ten deployers of one application start at once, across tasks, sharing a file lock: exactly
/// one proceeds, the nine others fail at once, naming the holder. (Across processes, the file
/// lock's own tests kill a holder and take its lock over.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_deploys_of_one_app_let_exactly_one_through() {
    let dir = tempfile::tempdir().unwrap();
    let w = World::new();
    w.router.set_apply_latency(Duration::from_millis(300));
    let lock = Arc::new(FileLock::new(dir.path()).unwrap());
    let journal = Arc::new(FileJournal::open(dir.path(), &AppName::new("shop").unwrap()).unwrap());
    let start = Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let d = w
            .builder()
            .lock(lock.clone())
            .journal(journal.clone())
            .who(format!("deployer-{i}"))
            .build()
            .unwrap();
        let start = start.clone();
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let t = std::time::Instant::now();
            let result = d.deploy(release(&format!("v{i}"))).await;
            (result, t.elapsed())
        }));
    }
    let mut winners = 0;
    let mut holders = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (Ok(_), _) => winners += 1,
            (Err(Error::Locked { app, holder }), took) => {
                assert_eq!(app, "shop");
                assert_eq!(holder.pid, std::process::id());
                assert!(!holder.host.is_empty());
                assert!(took < Duration::from_millis(250), "the loser failed fast ({took:?})");
                holders.push(holder.who.clone().expect("the holder says who it is"));
            }
            (Err(other), _) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(holders.len(), 9);
    assert!(
        holders.windows(2).all(|w| w[0] == w[1]),
        "all name the same holder: {holders:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_waiting_deployer_goes_after_the_holder_finishes() {
    // Two deployers of one application share a lock; the second waits instead of failing.
    let w = World::new();
    w.router.set_apply_latency(Duration::from_millis(100));
    let lock = Arc::new(InMemoryLock::new());
    let first = w.builder().lock(lock.clone()).build().unwrap();
    let second = w
        .builder()
        .lock(lock)
        .lock_wait(Duration::from_secs(30))
        .build()
        .unwrap();
    let a = tokio::spawn(async move { first.deploy(release("v1")).await });
    tokio::time::sleep(Duration::from_millis(1)).await;
    second.deploy(release("v2")).await.unwrap();
    a.await.unwrap().unwrap();
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
}

/// Dropping a deploy mid-way is like a crash: the next deploy refuses, resume converges.
#[tokio::test(start_paused = true)]
async fn a_cancelled_deploy_is_resumed_and_rolled_back_before_promotion() {
    let w = World::new();
    let (d, running, _) = w.v2_awaiting_approval().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.abort();
    let _ = running.await;
    let err = d.deploy(release("v3")).await.unwrap_err();
    assert!(matches!(&err, Error::Conflict(Conflict::Unfinished { .. })), "{err}");
    assert!(d.status().await.unwrap().in_progress());

    let report = d.resume().await.unwrap().expect("something to resume");
    assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    assert!(report.deployment.reason().unwrap().contains("before promotion"));
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
    assert!(d.resume().await.unwrap().is_none(), "nothing left to resume");
    w.deployer().deploy(release("v3")).await.unwrap();
}

/// A journal whose last line was torn by a crash is repaired, noted once, and deploys go on.
#[tokio::test(start_paused = true)]
async fn a_torn_journal_tail_is_noted_once_and_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let app = AppName::new("shop").unwrap();
    let w = World::new();
    let journal = Arc::new(FileJournal::open(dir.path(), &app).unwrap());
    w.builder()
        .journal(journal.clone())
        .build()
        .unwrap()
        .deploy(release("v1"))
        .await
        .unwrap();
    let path = journal.path().to_path_buf();
    drop(journal);
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, br#"{"seq":99,"at":"2026-"#).unwrap();

    let journal = Arc::new(FileJournal::open(dir.path(), &app).unwrap());
    assert!(journal.torn_tail().is_some());
    let d = w.builder().journal(journal).build().unwrap();
    d.deploy(release("v2")).await.unwrap();
    d.deploy(release("v3")).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("torn last entry").count(), 1, "{text}");
    assert!(text.ends_with('\n'));
}

/// A second `promote()` sent while traffic moves (a retry, a double click) is refused: it must
/// not open the next gate, which nobody has looked at yet.
#[tokio::test(start_paused = true)]
async fn a_stale_approval_does_not_open_a_later_gate() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    w.router.set_apply_latency(Duration::from_secs(2));
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::PauseUntilApproved,
        CanaryStep::SetWeight(50),
        CanaryStep::PauseUntilApproved,
    ])
    .unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    let mut events = d.subscribe();
    let running = spawn_deploy(&d, "v2");
    wait_until(&mut events, "paused").await;
    d.promote().await.unwrap();
    wait_until(&mut events, "shifting").await;
    let stale = d.promote().await;
    assert!(matches!(&stale, Err(Error::Conflict { .. })), "{stale:?}");
    wait_until(&mut events, "paused").await;
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        w.router.history().last().unwrap().split().weight(Slot::Green),
        50,
        "still at the second gate"
    );
    d.promote().await.unwrap();
    running.await.unwrap().unwrap();
    assert_eq!(w.live(), Some((Slot::Green, release("v2"))));
}

/// An abort sent while a slow shift runs takes effect right after it: no further step moves more
/// traffic to the release being aborted.
#[tokio::test(start_paused = true)]
async fn an_abort_during_a_shift_stops_further_traffic_moves() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    w.router.set_apply_latency(Duration::from_secs(2));
    let canary = Canary::new(vec![CanaryStep::SetWeight(10), CanaryStep::SetWeight(50)]).unwrap();
    let d = w.builder().strategy(canary).build().unwrap();
    let mut events = d.subscribe();
    let running = spawn_deploy(&d, "v2");
    wait_until(&mut events, "shifting").await;
    d.abort("pager went off").await.unwrap();
    let err = running.await.unwrap().unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("pager went off")),
        "{err}"
    );
    let green: Vec<u8> = w
        .router
        .history()
        .iter()
        .map(|r| r.split().weight(Slot::Green))
        .collect();
    assert_eq!(green, [0, 10, 0], "never 50");
}

/// A slot that took traffic is drained before it is stopped on the way back; one that never did
/// is stopped at once.
#[tokio::test(start_paused = true)]
async fn retiring_drains_a_slot_that_took_traffic() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let failing = Analysis::new(ScriptedProbe::always(ProbeOutcome::Unhealthy("5xx".into())));
    let d = w
        .builder()
        .strategy(BlueGreen::new().post_promotion(failing))
        .build()
        .unwrap();
    let mut events = d.subscribe();
    assert!(d.deploy(release("v2")).await.is_err());
    let mut retiring = None;
    while let Ok(e) = events.try_recv() {
        if let EventKind::PhaseChanged {
            from: Phase::Retiring,
            took,
            ..
        } = e.kind
        {
            retiring = Some(took);
        }
    }
    assert!(retiring.unwrap() >= retirement().drain, "{retiring:?}");

    w.env.mark_unhealthy(&release("v3"));
    let d = w.deployer();
    let mut events = d.subscribe();
    assert!(d.deploy(release("v3")).await.is_err());
    while let Ok(e) = events.try_recv() {
        if let EventKind::PhaseChanged {
            from: Phase::Retiring,
            took,
            ..
        } = e.kind
        {
            assert!(took < retirement().drain, "never routed, no drain: {took:?}");
        }
    }
}

/// The journal records the strategy; resuming with another one is refused, not guessed at.
#[tokio::test(start_paused = true)]
async fn resume_with_another_strategy_is_refused() {
    let w = World::new();
    let (manual, running, _) = w.v2_awaiting_approval().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.abort();
    let _ = running.await;
    let canary = w
        .builder()
        .strategy(Canary::new(vec![CanaryStep::SetWeight(10)]).unwrap())
        .build()
        .unwrap();
    let err = canary.resume().await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(Conflict::StrategyMismatch { was, .. }) if was == "blue-green"),
        "{err}"
    );
    assert_eq!(
        *manual.resume().await.unwrap().unwrap().deployment.phase(),
        Phase::RolledBack
    );
}

/// A gate nobody answers rolls back after the approval timeout instead of waiting forever.
#[tokio::test(start_paused = true)]
async fn an_unanswered_gate_rolls_back_after_the_approval_timeout() {
    let w = World::new();
    w.deployer().deploy(release("v1")).await.unwrap();
    let d = w
        .builder()
        .strategy(BlueGreen::new().promotion(Promotion::Manual))
        .approval_timeout(Duration::from_secs(600))
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(
        matches!(&err, Error::RolledBack { reason, .. } if reason.contains("no approval within 10m")),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(600));
    assert_eq!(w.live(), Some((Slot::Blue, release("v1"))));
}
