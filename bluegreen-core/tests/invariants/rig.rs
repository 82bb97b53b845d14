//! What happened, in order: recording wrappers around the faulty in-memory backends, and the
//! [`Rig`] that wires them into a [`Deployer`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use bluegreen_core::backend::DrainStatus;
use bluegreen_core::journal::{Entry, InMemoryJournal};
use bluegreen_core::lock::InMemoryLock;
use bluegreen_core::testing::{
    Faults, FaultyEnvironment, FaultyRouter, InMemoryEnvironment, InMemoryHealthProbe, InMemoryRouter,
};
use bluegreen_core::{
    AppName, BlueGreen, Canary, Deployer, Endpoint, Endpoints, Environment, EnvironmentCapabilities, HealthPolicy,
    HealthProbe, ProbeOutcome, ProbeTarget, Release, Result, Retirement, Router, RouterCapabilities, Routes, Slot,
    SlotStatus, StopOutcome,
};

/// One thing the engine did to a backend.
#[derive(Debug, Clone)]
pub(crate) enum Ev {
    /// The health policy's probe checked `endpoint` (analyses use their own probes, not logged here).
    Check { endpoint: Endpoint, outcome: ProbeOutcome },
    /// An `apply` succeeded; `called` is the log's length when it was called, `dead` the slots it
    /// gave traffic whose endpoint was not running at that moment.
    Applied {
        routes: Routes,
        called: usize,
        dead: Vec<Slot>,
    },
    /// `Environment::deploy` was called (logged at the call, before any fault or delay).
    DeployCalled { slot: Slot },
    /// `Environment::stop` was called (logged at the call, before any fault or delay).
    StopCalled { slot: Slot },
}

/// The shared, ordered log, each event with the paused clock's time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<(Instant, Ev)>>>);

impl Log {
    fn lock(&self) -> MutexGuard<'_, Vec<(Instant, Ev)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn push(&self, ev: Ev) {
        self.lock().push((Instant::now(), ev));
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    pub(crate) fn events(&self) -> Vec<(Instant, Ev)> {
        self.lock().clone()
    }
}

/// Delegates to a [`FaultyRouter`] and logs every successful `apply`.
#[derive(Debug)]
pub(crate) struct RecordingRouter {
    inner: FaultyRouter<InMemoryRouter>,
    env: InMemoryEnvironment,
    log: Log,
}

#[async_trait]
impl Router for RecordingRouter {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> RouterCapabilities {
        self.inner.capabilities()
    }

    async fn current(&self) -> Result<Option<Routes>> {
        self.inner.current().await
    }

    async fn apply(&self, routes: &Routes) -> Result<()> {
        let called = self.log.len();
        self.inner.apply(routes).await?;
        let dead = routes
            .weighted()
            .filter(|(slot, _, endpoints)| self.env.status_now(*slot).endpoints() != Some(endpoints))
            .map(|(slot, _, _)| slot)
            .collect();
        self.log.push(Ev::Applied {
            routes: routes.clone(),
            called,
            dead,
        });
        Ok(())
    }

    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        self.inner.wait_drained(timeout).await
    }
    async fn observe(&self) -> Result<bluegreen_core::Observation> {
        self.inner.observe().await
    }

    async fn adopt(&self) -> Result<bluegreen_core::Adoption> {
        self.inner.adopt().await
    }
}

/// Delegates to a [`FaultyEnvironment`] and logs when deploy and stop are called.
#[derive(Debug)]
pub(crate) struct RecordingEnvironment {
    inner: FaultyEnvironment<InMemoryEnvironment>,
    log: Log,
}

#[async_trait]
impl Environment for RecordingEnvironment {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        self.inner.capabilities()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        self.log.push(Ev::DeployCalled { slot });
        self.inner.deploy(slot, release).await
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        self.inner.status(slot).await
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        self.log.push(Ev::StopCalled { slot });
        self.inner.stop(slot, grace).await
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        self.inner.remove(slot).await
    }

    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        self.inner.logs(slot, lines).await
    }
}

/// The health policy's probe: the environment's own probe, except that a release with a script
/// answers from it first (flaky while starting); logs every check.
#[derive(Debug)]
pub(crate) struct RecordingProbe {
    env: InMemoryEnvironment,
    inner: Arc<InMemoryHealthProbe>,
    scripts: Mutex<HashMap<Release, VecDeque<ProbeOutcome>>>,
    log: Log,
}

#[async_trait]
impl HealthProbe for RecordingProbe {
    fn describe(&self) -> String {
        "recording in-memory probe".into()
    }

    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let scripted = match self.env.status_now(target.slot) {
            SlotStatus::Running { release, endpoints } if endpoints.contains(&target.endpoint) => self
                .scripts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_mut(&release)
                .and_then(VecDeque::pop_front),
            _ => None,
        };
        let outcome = match scripted {
            Some(outcome) => outcome,
            None => self.inner.check(target).await,
        };
        self.log.push(Ev::Check {
            endpoint: target.endpoint.clone(),
            outcome: outcome.clone(),
        });
        outcome
    }
}

/// The in-memory backends behind the recording wrappers, with handles to inspect them.
pub(crate) struct Rig {
    pub(crate) env: InMemoryEnvironment,
    pub(crate) router: InMemoryRouter,
    pub(crate) faults: Faults,
    pub(crate) log: Log,
    pub(crate) journal: InMemoryJournal,
    /// Shared by every deployer, as a file lock is by every process: a killed deployer's append
    /// still in flight (it holds the lock until it lands) is waited for by the next one.
    lock: InMemoryLock,
    probe: Arc<RecordingProbe>,
}

impl Rig {
    pub(crate) fn new() -> Self {
        let env = InMemoryEnvironment::new();
        let log = Log::default();
        Rig {
            probe: Arc::new(RecordingProbe {
                env: env.clone(),
                inner: env.health_probe(),
                scripts: Mutex::default(),
                log: log.clone(),
            }),
            env,
            router: InMemoryRouter::new(),
            faults: Faults::new(),
            log,
            journal: InMemoryJournal::new(),
            lock: InMemoryLock::new(),
        }
    }

    /// A deployer over the recording wrappers, on the rig's journal and lock.
    pub(crate) fn deployer(&self, strategy: StrategyKind, policy: HealthPolicy, retirement: Retirement) -> Deployer {
        let router = RecordingRouter {
            inner: FaultyRouter::new(self.router.clone(), self.faults.clone()),
            env: self.env.clone(),
            log: self.log.clone(),
        };
        let environment = RecordingEnvironment {
            inner: FaultyEnvironment::new(self.env.clone(), self.faults.clone()),
            log: self.log.clone(),
        };
        let builder = Deployer::builder(AppName::new("shop").expect("valid"))
            .environment(Arc::new(environment))
            .router(Arc::new(router))
            .probe(self.probe.clone())
            .policy(policy)
            .retirement(retirement)
            .journal(Arc::new(self.journal.clone()))
            .lock(Arc::new(self.lock.clone()))
            .lock_wait(Duration::from_secs(5));
        match strategy {
            StrategyKind::BlueGreen(s) => builder.strategy(s),
            StrategyKind::Canary(s) => builder.strategy(s),
        }
        .build()
        .expect("a valid deployer")
    }

    /// `release` answers these outcomes to its first health checks, then its real health.
    pub(crate) fn script(&self, release: &Release, outcomes: Vec<ProbeOutcome>) {
        let mut scripts = self.probe.scripts.lock().unwrap_or_else(PoisonError::into_inner);
        scripts.insert(release.clone(), outcomes.into());
    }

    /// The routes served, read past the faults.
    pub(crate) fn served(&self) -> Option<Routes> {
        self.router.history().last().cloned()
    }

    pub(crate) fn entries(&self) -> Vec<Entry> {
        self.journal.entries()
    }
}

/// Either strategy, for [`Rig::deployer`].
pub(crate) enum StrategyKind {
    BlueGreen(BlueGreen),
    Canary(Canary),
}
