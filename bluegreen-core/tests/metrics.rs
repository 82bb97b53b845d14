//! The deployment metrics the engine emits through the `metrics` facade, captured by
//! `metrics-util`'s `DebuggingRecorder` installed as the global recorder of this test binary (a
//! deployment's futures cross await points, so a thread-local recorder would miss some). Each
//! test deploys an application of its own name and reads only that application's series; one
//! test at a time takes its snapshots, because a snapshot drains counters and histograms (it
//! returns what was counted since the previous one).
#![cfg(feature = "testing")]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bluegreen_core::metrics as m;
use bluegreen_core::probe::Analysis;
use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter, ScriptedProbe};
use bluegreen_core::{
    AppName, Canary, CanaryStep, Deployer, DeployerBuilder, Error, HealthPolicy, ProbeOutcome, Release, Retirement,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

/// The global recorder, installed once for the whole binary.
fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder.install().expect("no other recorder in this test binary");
        m::describe();
        snapshotter
    })
}

/// One test at a time snapshots (a snapshot drains counters and histograms).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One series: its labels other than `app`, and its value.
type Series = (BTreeMap<String, String>, DebugValue);

/// What the recorder holds for `app`, by metric name.
struct Captured(BTreeMap<String, Vec<Series>>);

impl Captured {
    fn of(app: &str) -> Self {
        let mut by_name: BTreeMap<String, Vec<Series>> = BTreeMap::new();
        for (key, _unit, _description, value) in snapshotter().snapshot().into_vec() {
            let key = key.key();
            let labels: BTreeMap<String, String> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            if labels.get("app").map(String::as_str) != Some(app) {
                continue;
            }
            let rest = labels.into_iter().filter(|(k, _)| k != "app").collect();
            by_name.entry(key.name().to_string()).or_default().push((rest, value));
        }
        Captured(by_name)
    }

    /// The value of the series of `name` whose labels (other than `app`) are exactly `labels`.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<&DebugValue> {
        let want: BTreeMap<String, String> = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        self.0.get(name)?.iter().find(|(l, _)| *l == want).map(|(_, v)| v)
    }

    fn counter(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        match self.get(name, labels) {
            Some(DebugValue::Counter(n)) => *n,
            None => 0,
            Some(other) => panic!("{name}{labels:?} is not a counter: {other:?}"),
        }
    }

    fn gauge(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        match self.get(name, labels) {
            Some(DebugValue::Gauge(v)) => v.into_inner(),
            other => panic!("{name}{labels:?} is not a gauge: {other:?}"),
        }
    }

    /// How many observations the histogram `name` with `labels` holds.
    fn observations(&self, name: &str, labels: &[(&str, &str)]) -> usize {
        match self.get(name, labels) {
            Some(DebugValue::Histogram(values)) => values.len(),
            None => 0,
            Some(other) => panic!("{name}{labels:?} is not a histogram: {other:?}"),
        }
    }

    /// The label values of `label` over the series of `name`.
    fn label_values(&self, name: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .0
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|(l, _)| l.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

fn release(v: &str) -> Release {
    Release::new(v).unwrap()
}

/// A deployer of `app` on `env` and `router` (share them between deployers of one app).
fn builder(app: &str, env: &InMemoryEnvironment, router: &InMemoryRouter) -> DeployerBuilder {
    Deployer::builder(AppName::new(app).unwrap())
        .environment(Arc::new(env.clone()))
        .router(Arc::new(router.clone()))
        .probe(env.health_probe())
        .policy(
            HealthPolicy::default()
                .interval(Duration::from_millis(5))
                .failure_threshold(3),
        )
        .retirement(
            Retirement::new()
                .rollback_window(Duration::ZERO)
                .drain(Duration::ZERO)
                .stop_grace(Duration::from_secs(1)),
        )
}

#[tokio::test]
async fn a_completed_canary_counts_its_start_end_phases_weights_checks_and_verdicts() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let app = "metrics-canary";
    let (env, router) = (InMemoryEnvironment::new(), InMemoryRouter::new());
    let canary = Canary::new(vec![
        CanaryStep::SetWeight(10),
        CanaryStep::Analyse(
            Analysis::new(env.health_probe())
                .count(3)
                .interval(Duration::from_millis(1)),
        ),
        CanaryStep::SetWeight(40),
    ])
    .unwrap();
    let d = builder(app, &env, &router).strategy(canary).build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    d.deploy(release("v2")).await.unwrap();

    let c = Captured::of(app);
    let canary = [("strategy", "canary")];
    assert_eq!(c.counter(m::DEPLOYMENTS_STARTED, &canary), 2);
    assert_eq!(
        c.counter(
            m::DEPLOYMENTS_FINISHED,
            &[("strategy", "canary"), ("outcome", "completed")]
        ),
        2
    );
    assert_eq!(c.label_values(m::DEPLOYMENTS_FINISHED, "outcome"), ["completed"]);
    // Every phase a completed canary with a predecessor walks, each observed at least once.
    for phase in [
        "provisioning",
        "verifying",
        "deciding",
        "shifting",
        "analysing",
        "warm",
        "draining",
        "stopping",
    ] {
        assert!(
            c.observations(m::PHASE_DURATION, &[("phase", phase)]) > 0,
            "no duration for {phase}"
        );
    }
    // v2 went to green and ended with all traffic: 10%, 40%, 100% applied.
    assert_eq!(c.gauge(m::TRAFFIC_WEIGHT, &[("slot", "green")]), 100.0);
    assert_eq!(c.gauge(m::TRAFFIC_WEIGHT, &[("slot", "blue")]), 0.0);
    // v1: one apply (all to blue); v2: three.
    assert_eq!(c.observations(m::SWITCH_DURATION, &[("router", "memory")]), 4);
    assert_eq!(c.observations(m::LOCK_WAIT, &[]), 2);
    assert!(c.counter(m::CHECKS, &[("kind", "health"), ("outcome", "healthy")]) >= 2);
    assert_eq!(c.counter(m::CHECKS, &[("kind", "analysis"), ("outcome", "healthy")]), 3);
    assert_eq!(c.counter(m::VERDICTS, &[("kind", "health"), ("verdict", "passed")]), 2);
    assert_eq!(
        c.counter(m::VERDICTS, &[("kind", "analysis"), ("verdict", "passed")]),
        1
    );
}

#[tokio::test]
async fn a_rolled_back_canary_counts_its_failed_checks_and_puts_the_weights_back() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let app = "metrics-rollback";
    let (env, router) = (InMemoryEnvironment::new(), InMemoryRouter::new());
    let failing = Analysis::new(ScriptedProbe::always(ProbeOutcome::Unhealthy("5xx".into())))
        .count(5)
        .interval(Duration::from_millis(1))
        .failure_limit(1);
    let canary = Canary::new(vec![CanaryStep::SetWeight(20), CanaryStep::Analyse(failing)]).unwrap();
    let first = builder(app, &env, &router).build().unwrap();
    first.deploy(release("v1")).await.unwrap();
    let d = builder(app, &env, &router).strategy(canary).build().unwrap();
    let err = d.deploy(release("v2")).await.unwrap_err();
    assert!(matches!(err, Error::RolledBack { .. }), "{err}");

    let c = Captured::of(app);
    assert_eq!(c.counter(m::DEPLOYMENTS_STARTED, &[("strategy", "canary")]), 1);
    assert_eq!(
        c.counter(
            m::DEPLOYMENTS_FINISHED,
            &[("strategy", "canary"), ("outcome", "rolled_back")]
        ),
        1
    );
    assert_eq!(
        c.counter(m::CHECKS, &[("kind", "analysis"), ("outcome", "unhealthy")]),
        2
    );
    assert_eq!(
        c.counter(m::VERDICTS, &[("kind", "analysis"), ("verdict", "failed")]),
        1
    );
    assert!(c.observations(m::PHASE_DURATION, &[("phase", "rolling_back")]) > 0);
    // Rolling back restored all traffic to blue, the live slot before.
    assert_eq!(c.gauge(m::TRAFFIC_WEIGHT, &[("slot", "blue")]), 100.0);
    assert_eq!(c.gauge(m::TRAFFIC_WEIGHT, &[("slot", "green")]), 0.0);
}

#[tokio::test]
async fn a_failed_health_policy_counts_a_failed_health_verdict() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let app = "metrics-unhealthy";
    let (env, router) = (InMemoryEnvironment::new(), InMemoryRouter::new());
    env.mark_unhealthy(&release("v2"));
    let d = builder(app, &env, &router).build().unwrap();
    d.deploy(release("v1")).await.unwrap();
    assert!(d.deploy(release("v2")).await.is_err());

    let c = Captured::of(app);
    assert_eq!(c.counter(m::VERDICTS, &[("kind", "health"), ("verdict", "failed")]), 1);
    assert_eq!(c.counter(m::CHECKS, &[("kind", "health"), ("outcome", "unhealthy")]), 3);
    assert_eq!(
        c.counter(
            m::DEPLOYMENTS_FINISHED,
            &[("strategy", "blue-green"), ("outcome", "rolled_back")]
        ),
        1
    );
    assert_eq!(c.label_values(m::VERDICTS, "kind"), ["health"]);
}

#[test]
fn the_label_helpers_name_terminal_phases_and_verdicts() {
    use bluegreen_core::{Phase, Verdict};
    assert_eq!(m::outcome_label(&Phase::Completed), Some("completed"));
    assert_eq!(m::outcome_label(&Phase::RolledBack), Some("rolled_back"));
    assert_eq!(m::outcome_label(&Phase::Warm), None);
    assert_eq!(m::verdict_label(&Verdict::Inconclusive("x".into())), "inconclusive");
    assert_eq!(
        m::check_label(&ProbeOutcome::ProviderError("x".into())),
        "provider_error"
    );
    for name in [
        m::DEPLOYMENTS_STARTED,
        m::DEPLOYMENTS_FINISHED,
        m::PHASE_DURATION,
        m::TRAFFIC_WEIGHT,
        m::CHECKS,
        m::VERDICTS,
        m::SWITCH_DURATION,
        m::LOCK_WAIT,
    ] {
        assert!(!m::help(name).is_empty(), "{name} has no help");
    }
    let mut buckets = m::SECONDS_BUCKETS.to_vec();
    buckets.sort_by(f64::total_cmp);
    assert_eq!(buckets, m::SECONDS_BUCKETS, "buckets ascend");
}

#[tokio::test]
async fn a_parked_deployment_carried_on_by_promote_is_not_started_again() {
    let _serial = SERIAL.lock().await;
    snapshotter();
    let app = "metrics-parked";
    let (env, router) = (InMemoryEnvironment::new(), InMemoryRouter::new());
    let dir = tempfile::tempdir().unwrap();
    let canary = || Canary::new(vec![CanaryStep::SetWeight(20), CanaryStep::PauseUntilApproved]).unwrap();
    let d = builder(app, &env, &router)
        .strategy(canary())
        .park_at_gates(true)
        .state_dir(dir.path())
        .build()
        .unwrap();
    d.deploy(release("v1")).await.unwrap();
    let parked = d.deploy(release("v2")).await.unwrap();
    assert!(parked.deployment.parked().is_some());
    let c = Captured::of(app);
    assert_eq!(c.counter(m::DEPLOYMENTS_STARTED, &[("strategy", "canary")]), 2);
    assert_eq!(c.gauge(m::TRAFFIC_WEIGHT, &[("slot", "green")]), 20.0, "parked at 20%");

    d.promote().await.unwrap();
    // Counted since the previous snapshot (a snapshot drains counters).
    let c = Captured::of(app);
    let started = c.counter(m::DEPLOYMENTS_STARTED, &[("strategy", "canary")]);
    assert_eq!(started, 0, "no new start");
    let completed = [("strategy", "canary"), ("outcome", "completed")];
    assert_eq!(c.counter(m::DEPLOYMENTS_FINISHED, &completed), 1);
    assert_eq!(c.gauge(m::TRAFFIC_WEIGHT, &[("slot", "green")]), 100.0);
}
