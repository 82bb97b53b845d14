//! Simulating `kill -9`: a [`Tripwire`] counts the side effects and journal entries that
//! [`TrippingEnvironment`], [`TrippingRouter`] and [`TrippingJournal`] report once they succeeded,
//! and freezes the caller for good at the chosen one.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::environment::{Environment, EnvironmentCapabilities, ReleaseCheck, SlotStatus, StopOutcome};
use crate::error::Result;
use crate::journal::{Entry, Journal, Record, SkippedLine};
use crate::model::{Endpoints, Release, Slot, Snapshot};
use crate::router::{Adoption, DrainStatus, Observation, Router, RouterCapabilities, Routes};

/// What a [`Tripwire`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Counts {
    /// Side effects that returned `Ok`: deploys, stops, removes and applies.
    Effects,
    /// Journal entries that are durable: appends that returned `Ok`.
    Entries,
    /// Both, in one count.
    Both,
}

/// A change made through a backend, as a [`Tripwire`] reports it.
///
/// Displayed as `deploy v2 to green`, `stop blue`, `remove blue`, `apply <split>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect<'a> {
    /// [`Environment::deploy`] (or [`Environment::deploy_snapshot`]).
    Deploy {
        /// The slot deployed to.
        slot: Slot,
        /// The release deployed.
        release: &'a Release,
    },
    /// [`Environment::stop`].
    Stop {
        /// The slot stopped.
        slot: Slot,
    },
    /// [`Environment::remove`].
    Remove {
        /// The slot removed.
        slot: Slot,
    },
    /// [`Router::apply`].
    Apply {
        /// The routes applied.
        routes: &'a Routes,
    },
}

impl fmt::Display for Effect<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Deploy { slot, release } => write!(f, "deploy {release} to {slot}"),
            Effect::Stop { slot } => write!(f, "stop {slot}"),
            Effect::Remove { slot } => write!(f, "remove {slot}"),
            Effect::Apply { routes } => write!(f, "apply {}", routes.split()),
        }
    }
}

/// What a tripping wrapper reports to its [`Tripwire`].
///
/// Displayed as `starting <effect>`, `<effect>`, or `#<seq> <record> → <phase>` for an entry.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Event<'a> {
    /// A side effect is about to be attempted. Never counted: to land a kill inside a slow call,
    /// kill a while after this.
    Starting(Effect<'a>),
    /// A side effect returned `Ok`.
    Effect(Effect<'a>),
    /// A journal entry is durable.
    Entry(&'a Entry),
}

impl Event<'_> {
    fn counted_by(&self, counts: Counts) -> bool {
        match self {
            Event::Starting(_) => false,
            Event::Effect(_) => matches!(counts, Counts::Effects | Counts::Both),
            Event::Entry(_) => matches!(counts, Counts::Entries | Counts::Both),
        }
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Starting(effect) => write!(f, "starting {effect}"),
            Event::Effect(effect) => effect.fmt(f),
            Event::Entry(entry) => {
                let record = match &entry.record {
                    Record::Started => "started",
                    Record::Completed { .. } => "completed",
                    Record::Failed { .. } => "failed",
                    Record::Note { .. } => "note",
                    Record::HookStarted { .. } => "hook started",
                    Record::HookFinished { .. } => "hook finished",
                    Record::Command { .. } => "command",
                    Record::Parked { .. } => "parked",
                };
                write!(f, "#{} {record} → {}", entry.seq, entry.deployment.phase())
            }
        }
    }
}

/// One event, as a [`Tripwire`]'s callback sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Crossing<'a> {
    /// What happened.
    pub event: Event<'a>,
    /// Its number among the counted events, from 1; `None` if the tripwire does not count it.
    pub n: Option<usize>,
    /// It is the trip point: the call that reported it freezes once the callback returns.
    pub trips: bool,
}

type Callback = dyn Fn(&Crossing<'_>) + Send + Sync;

/// Counts the durable events of the code under test and freezes it for good at the chosen one,
/// as if it were killed with `kill -9` right there.
///
/// Wrap the backends in [`TrippingEnvironment`], [`TrippingRouter`] and [`TrippingJournal`] with
/// clones of one tripwire. Each wrapper forwards every method to the backend it wraps, and
/// reports to the tripwire:
///
/// - before each side effect (deploy, stop, remove, apply): [`Event::Starting`], never counted;
/// - after each side effect that returned `Ok`: [`Event::Effect`];
/// - after each journal append that returned `Ok` (the entry is durable): [`Event::Entry`].
///
/// Failed calls report nothing after them; reads (`status`, `current`, `observe`, `tail`, …) and
/// `adopt` report nothing at all. The events the tripwire [`Counts`] are numbered from 1 across
/// all its wrappers. Every event goes to the [`on`](Self::on) callback, with its number if counted;
/// then, at the [`freeze_at`](Self::freeze_at) event, the call never returns: the side effect is
/// done (or the entry durable), and nothing after it happens. Kill the process there, or drop
/// the frozen future, and start afresh over the same persistent backends to test recovery.
///
/// Between two durable events the code under test holds its state only in memory, so freezing
/// right after each one in turn walks every point a kill can land on (for backends whose changes
/// are atomic).
///
/// The [`Deployer`](crate::Deployer) bounds each backend call (see [`Timeouts`](crate::Timeouts)):
/// a call frozen after its side effect lasts until that bound, and then the engine sees a
/// timeout. Kill the process or drop the frozen future well before that. Journal appends are not
/// bounded.
///
/// Clones share the count and the callback; configure the tripwire before cloning it.
///
/// ```
/// # use bluegreen_core::testing::{Counts, Tripwire};
/// // Freeze right after the third durable journal entry, printing each entry as it is written.
/// let tripwire = Tripwire::new(Counts::Entries)
///     .freeze_at(3)
///     .on(|c| if let Some(n) = c.n { println!("entry {n}: {}", c.event) });
/// ```
#[derive(Clone)]
pub struct Tripwire {
    counts: Counts,
    at: Option<usize>,
    passed: Arc<AtomicUsize>,
    on: Arc<Callback>,
}

impl fmt::Debug for Tripwire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tripwire")
            .field("counts", &self.counts)
            .field("at", &self.at)
            .field("passed", &self.passed())
            .finish_non_exhaustive()
    }
}

impl Tripwire {
    /// A tripwire counting `counts`, that never freezes and has no callback.
    pub fn new(counts: Counts) -> Self {
        Tripwire {
            counts,
            at: None,
            passed: Arc::default(),
            on: Arc::new(|_: &Crossing<'_>| {}),
        }
    }

    /// Freezes at the `nth` counted event (1-based).
    ///
    /// # Panics
    /// If `nth` is 0.
    pub fn freeze_at(self, nth: usize) -> Self {
        assert!(nth >= 1, "tripwire events are numbered from 1, got {nth}");
        Tripwire { at: Some(nth), ..self }
    }

    /// Calls `callback` with every event, counted or not, before any freeze.
    pub fn on(self, callback: impl Fn(&Crossing<'_>) + Send + Sync + 'static) -> Self {
        Tripwire {
            on: Arc::new(callback),
            ..self
        }
    }

    /// How many counted events have passed so far.
    pub fn passed(&self) -> usize {
        self.passed.load(Ordering::SeqCst)
    }

    /// Reports `event`: counts it if it is counted, calls the callback, and never returns if it
    /// is the trip point.
    ///
    /// The wrappers here call it; call it from wrappers of your own traits to count their events.
    pub async fn cross(&self, event: Event<'_>) {
        let n = event
            .counted_by(self.counts)
            .then(|| self.passed.fetch_add(1, Ordering::SeqCst) + 1);
        let trips = n.is_some() && n == self.at;
        (self.on)(&Crossing { event, n, trips });
        if trips {
            tracing::debug!(%event, n, "tripwire: freezing for good");
            std::future::pending::<()>().await;
        }
    }

    /// Runs `call`, the side effect `effect`, reporting it before and, if it returns `Ok`, after.
    pub async fn around<T>(&self, effect: Effect<'_>, call: impl Future<Output = Result<T>>) -> Result<T> {
        self.cross(Event::Starting(effect)).await;
        let out = call.await?;
        self.cross(Event::Effect(effect)).await;
        Ok(out)
    }
}

/// An [`Environment`] that reports its deploys, stops and removes to a [`Tripwire`] (see there).
///
/// Forwards every method to `E`; name and capabilities are `E`'s.
#[derive(Debug, Clone)]
pub struct TrippingEnvironment<E> {
    inner: E,
    tripwire: Tripwire,
}

impl<E: Environment> TrippingEnvironment<E> {
    /// Wraps `inner`, reporting to `tripwire`.
    pub fn new(inner: E, tripwire: Tripwire) -> Self {
        TrippingEnvironment { inner, tripwire }
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }
}

#[async_trait]
impl<E: Environment> Environment for TrippingEnvironment<E> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        self.inner.capabilities()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        let effect = Effect::Deploy { slot, release };
        self.tripwire.around(effect, self.inner.deploy(slot, release)).await
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        self.inner.status(slot).await
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let effect = Effect::Stop { slot };
        self.tripwire.around(effect, self.inner.stop(slot, grace)).await
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        let effect = Effect::Remove { slot };
        self.tripwire.around(effect, self.inner.remove(slot)).await
    }

    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        self.inner.logs(slot, lines).await
    }

    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        self.inner.check_release(release).await
    }
    /// Forwarded without a fault or effect of its own (a read).
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        self.inner.snapshot(slot).await
    }

    /// A deploy: reported as [`Effect::Deploy`].
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        let effect = Effect::Deploy { slot, release };
        self.tripwire
            .around(effect, self.inner.deploy_snapshot(slot, release, snapshot))
            .await
    }

    /// Forwarded without a fault or effect of its own (a read).
    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        self.inner.check_snapshot(release, snapshot).await
    }
}

/// A [`Router`] that reports its applies to a [`Tripwire`] (see there).
///
/// Forwards every method to `R`; name and capabilities are `R`'s.
#[derive(Debug, Clone)]
pub struct TrippingRouter<R> {
    inner: R,
    tripwire: Tripwire,
}

impl<R: Router> TrippingRouter<R> {
    /// Wraps `inner`, reporting to `tripwire`.
    pub fn new(inner: R, tripwire: Tripwire) -> Self {
        TrippingRouter { inner, tripwire }
    }

    /// The wrapped router.
    pub fn inner(&self) -> &R {
        &self.inner
    }
}

#[async_trait]
impl<R: Router> Router for TrippingRouter<R> {
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
        let effect = Effect::Apply { routes };
        self.tripwire.around(effect, self.inner.apply(routes)).await
    }

    async fn observe(&self) -> Result<Observation> {
        self.inner.observe().await
    }

    async fn adopt(&self) -> Result<Adoption> {
        self.inner.adopt().await
    }

    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        self.inner.wait_drained(timeout).await
    }
}

/// A [`Journal`] that reports each durable entry to a [`Tripwire`] (see there).
///
/// Forwards every method to `J`.
#[derive(Debug, Clone)]
pub struct TrippingJournal<J> {
    inner: J,
    tripwire: Tripwire,
}

impl<J: Journal> TrippingJournal<J> {
    /// Wraps `inner`, reporting to `tripwire`.
    pub fn new(inner: J, tripwire: Tripwire) -> Self {
        TrippingJournal { inner, tripwire }
    }

    /// The wrapped journal.
    pub fn inner(&self) -> &J {
        &self.inner
    }
}

#[async_trait]
impl<J: Journal> Journal for TrippingJournal<J> {
    async fn append(&self, entry: &Entry) -> Result<()> {
        self.inner.append(entry).await?;
        self.tripwire.cross(Event::Entry(entry)).await;
        Ok(())
    }

    async fn tail(&self, n: usize) -> Result<Vec<Entry>> {
        self.inner.tail(n).await
    }

    fn torn_tail(&self) -> Option<String> {
        self.inner.torn_tail()
    }

    fn skipped(&self) -> Vec<SkippedLine> {
        self.inner.skipped()
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Mutex, PoisonError};

    use super::*;
    use crate::journal::InMemoryJournal;
    use crate::lock::InMemoryLock;
    use crate::testing::{Faults, FaultyRouter, InMemoryEnvironment, InMemoryRouter, Op};
    use crate::{AppName, Deployer, HealthPolicy, Phase, Retirement};

    /// A tripwire that records what its callback was told, one line per event.
    fn recording(tripwire: Tripwire) -> (Tripwire, Arc<Mutex<Vec<String>>>) {
        let said = Arc::new(Mutex::new(Vec::new()));
        let out = said.clone();
        let tripwire = tripwire.on(move |c| {
            let n = c.n.map_or_else(|| "-".to_string(), |n| n.to_string());
            let trips = if c.trips { " (trips)" } else { "" };
            let line = format!("{n} {}{trips}", c.event);
            out.lock().unwrap_or_else(PoisonError::into_inner).push(line);
        });
        (tripwire, said)
    }

    fn deployer(
        env: &InMemoryEnvironment,
        router: &InMemoryRouter,
        journal: &InMemoryJournal,
        t: &Tripwire,
    ) -> Deployer {
        Deployer::builder(AppName::new("shop").unwrap())
            .environment(Arc::new(TrippingEnvironment::new(env.clone(), t.clone())))
            .router(Arc::new(TrippingRouter::new(router.clone(), t.clone())))
            .journal(Arc::new(TrippingJournal::new(journal.clone(), t.clone())))
            .probe(env.health_probe())
            .policy(HealthPolicy::default().interval(Duration::from_millis(1)))
            .retirement(Retirement {
                rollback_window: Duration::ZERO,
                drain: Duration::ZERO,
                stop_grace: Duration::from_secs(1),
            })
            .lock(Arc::new(InMemoryLock::new()))
            .build()
            .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn freezes_right_after_the_nth_counted_effect_and_reports_every_event() {
        let (env, router, journal) = (
            InMemoryEnvironment::new(),
            InMemoryRouter::new(),
            InMemoryJournal::new(),
        );
        let (tripwire, said) = recording(Tripwire::new(Counts::Effects).freeze_at(2));
        let deployer = deployer(&env, &router, &journal, &tripwire);
        let deploy = deployer.deploy(Release::new("v1").unwrap());
        // Well within the engine's bound on an apply, which would cancel the frozen call.
        let frozen = tokio::time::timeout(Duration::from_secs(10), deploy).await;
        assert!(frozen.is_err(), "the deploy returned {frozen:?}");
        assert_eq!(tripwire.passed(), 2);
        // The apply is done: the routes serve the new slot, but the journal never heard of it.
        let served = router.current().await.unwrap().unwrap();
        let slot = served.split().sole().expect("one slot serves");
        let split = served.split();
        let said = said.lock().unwrap().clone();
        assert_eq!(
            said,
            [
                "- #1 started → provisioning".to_string(),
                format!("- starting deploy v1 to {slot}"),
                format!("1 deploy v1 to {slot}"),
                "- #2 completed → verifying".to_string(),
                "- #3 completed → deciding".to_string(),
                "- #4 completed → shifting to 100%".to_string(),
                format!("- starting apply {split}"),
                format!("2 apply {split} (trips)"),
            ],
            "every event is reported, only the effects are counted"
        );
        let last = journal.entries().last().unwrap().deployment.phase().clone();
        assert!(!last.is_terminal(), "{last}");
    }

    #[tokio::test(start_paused = true)]
    async fn freezes_right_after_the_nth_durable_entry_and_a_fresh_deployer_resumes() {
        let (env, router, journal) = (
            InMemoryEnvironment::new(),
            InMemoryRouter::new(),
            InMemoryJournal::new(),
        );
        let (tripwire, said) = recording(Tripwire::new(Counts::Entries).freeze_at(1));
        let first = deployer(&env, &router, &journal, &tripwire);
        let deploy = first.deploy(Release::new("v1").unwrap());
        assert!(tokio::time::timeout(Duration::from_secs(3600), deploy).await.is_err());
        assert_eq!(journal.entries().len(), 1);
        assert_eq!(said.lock().unwrap().as_slice(), ["1 #1 started → provisioning (trips)"]);
        assert_eq!(
            router.current().await.unwrap(),
            None,
            "nothing after the entry happened"
        );

        // Restarted: the same backends, a tripwire that never trips.
        let fresh = deployer(&env, &router, &journal, &Tripwire::new(Counts::Both));
        let report = fresh.resume().await.unwrap().expect("an unfinished deployment");
        assert_eq!(*report.deployment.phase(), Phase::RolledBack);
    }

    #[tokio::test]
    async fn both_counts_effects_and_entries_and_failed_calls_are_not_counted() {
        let journal = InMemoryJournal::new();
        let (tripwire, said) = recording(Tripwire::new(Counts::Both));
        let faults = Faults::new().fail(Op::Apply, 1);
        let router = TrippingRouter::new(FaultyRouter::new(InMemoryRouter::new(), faults), tripwire.clone());
        let tripping = TrippingJournal::new(journal.clone(), tripwire.clone());
        let routes = Routes::only(Slot::Blue, crate::Endpoint::new("127.0.0.1", 8080).unwrap());
        assert!(router.apply(&routes).await.is_err());
        router.apply(&routes).await.unwrap();
        assert_eq!(tripwire.passed(), 1);
        assert_eq!(
            said.lock().unwrap().as_slice(),
            [
                "- starting apply blue 100% / green 0%",
                "- starting apply blue 100% / green 0%",
                "1 apply blue 100% / green 0%"
            ]
        );
        // Everything else is forwarded.
        assert_eq!(router.name(), "memory");
        assert_eq!(
            router.wait_drained(Duration::ZERO).await.unwrap(),
            DrainStatus::NotObservable
        );
        assert_eq!(tripping.location(), journal.location());
        assert_eq!(tripping.torn_tail(), None);
        assert!(tripping.skipped().is_empty());
    }

    #[test]
    #[should_panic(expected = "numbered from 1")]
    fn events_are_numbered_from_one() {
        let _ = Tripwire::new(Counts::Effects).freeze_at(0);
    }
}
