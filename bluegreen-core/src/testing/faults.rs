//! Fault injection: a shared [`Faults`] plan, and [`FaultyRouter`] / [`FaultyEnvironment`] that
//! wrap any backend and consult the plan before every call.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use crate::environment::{Environment, EnvironmentCapabilities, ReleaseCheck, SlotStatus, StopOutcome};
use crate::error::{Error, Result};
use crate::model::{Endpoints, Release, Slot, Snapshot};
use crate::router::{Adoption, DrainStatus, Observation, Router, RouterCapabilities, Routes};

/// An operation of [`Environment`] or [`Router`] that a fault can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// [`Environment::deploy`] (and [`Environment::deploy_snapshot`]).
    Deploy,
    /// [`Environment::status`].
    Status,
    /// [`Environment::stop`].
    Stop,
    /// [`Environment::remove`].
    Remove,
    /// [`Environment::logs`].
    Logs,
    /// [`Router::current`].
    Current,
    /// [`Router::apply`].
    Apply,
    /// [`Router::wait_drained`].
    WaitDrained,
    /// [`Router::observe`].
    Observe,
    /// [`Router::adopt`].
    Adopt,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Deploy => "deploy",
            Op::Status => "status",
            Op::Stop => "stop",
            Op::Remove => "remove",
            Op::Logs => "logs",
            Op::Current => "current",
            Op::Apply => "apply",
            Op::WaitDrained => "wait_drained",
            Op::Observe => "observe",
            Op::Adopt => "adopt",
        })
    }
}

/// A rule about which calls of an operation misbehave.
#[derive(Debug, Clone, Copy)]
enum Rule {
    Fail(usize),
    FailFrom(usize),
    Hang(usize),
}

/// What happens to one call once its delay, if any, has passed.
enum Fate {
    Proceed,
    Fail,
    Hang,
}

#[derive(Debug, Default)]
struct Plan {
    calls: HashMap<Op, usize>,
    rules: Vec<(Op, Rule)>,
    delays: HashMap<Op, Duration>,
}

impl Plan {
    /// Counts a call of `op` and decides its fate: the one place that reads the rules.
    fn register(&mut self, op: Op) -> (usize, Duration, Fate) {
        let n = self.calls.entry(op).or_default();
        *n += 1;
        let n = *n;
        let rules = self.rules.iter().filter(|(o, _)| *o == op).map(|(_, r)| r);
        let mut fate = Fate::Proceed;
        for rule in rules {
            match *rule {
                Rule::Hang(nth) if nth == n => fate = Fate::Hang,
                Rule::Fail(nth) if nth == n => fate = fate.or_fail(),
                Rule::FailFrom(nth) if nth <= n => fate = fate.or_fail(),
                Rule::Hang(_) | Rule::Fail(_) | Rule::FailFrom(_) => {}
            }
        }
        let delay = self.delays.get(&op).copied().unwrap_or_default();
        (n, delay, fate)
    }
}

impl Fate {
    /// A hang wins over a failure.
    fn or_fail(self) -> Fate {
        match self {
            Fate::Hang => Fate::Hang,
            Fate::Proceed | Fate::Fail => Fate::Fail,
        }
    }
}

fn check_nth(nth: usize) {
    assert!(nth >= 1, "fault call numbers start at 1, got {nth}");
}

/// A plan of faults, shared by every wrapper made with it.
///
/// Calls are counted per [`Op`], from 1, across every [`FaultyRouter`] and [`FaultyEnvironment`]
/// sharing the plan. Clones share the plan and the counts, so a test can change the plan while the
/// code under test runs. The methods that change the plan return a handle to the same plan, for
/// chaining:
///
/// ```
/// # use std::time::Duration;
/// # use bluegreen_core::testing::{Faults, Op};
/// let faults = Faults::new()
///     .fail(Op::Apply, 2) // the second apply fails
///     .delay(Op::Deploy, Duration::from_secs(5)); // every deploy takes 5 s longer
/// ```
///
/// An injected failure is a temporary [`Error::Backend`] from backend `"fault"` with the message
/// `"injected failure of <op> call <n>"`. Delays run in [`tokio::time`], so tests with paused time
/// do not wait. A delayed call that also fails or hangs does so after its delay.
///
/// To inject faults into another trait of your own, call [`before`](Self::before) at the start of
/// each method, as the wrappers here do.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    plan: Arc<Mutex<Plan>>,
}

impl Faults {
    /// An empty plan: every call proceeds.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Plan> {
        self.plan.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rule(&self, op: Op, rule: Rule) -> Self {
        self.lock().rules.push((op, rule));
        self.clone()
    }

    /// The `nth` call (1-based) of `op` fails.
    ///
    /// # Panics
    /// If `nth` is 0.
    pub fn fail(&self, op: Op, nth: usize) -> Self {
        check_nth(nth);
        self.rule(op, Rule::Fail(nth))
    }

    /// The `nth` call (1-based) of `op` and every later one fail.
    ///
    /// # Panics
    /// If `nth` is 0.
    pub fn fail_from(&self, op: Op, nth: usize) -> Self {
        check_nth(nth);
        self.rule(op, Rule::FailFrom(nth))
    }

    /// The `nth` call (1-based) of `op` never returns (until its future is dropped).
    ///
    /// # Panics
    /// If `nth` is 0.
    pub fn hang(&self, op: Op, nth: usize) -> Self {
        check_nth(nth);
        self.rule(op, Rule::Hang(nth))
    }

    /// Every later call of `op` waits `delay` first; replaces an earlier delay of `op`, and
    /// [`Duration::ZERO`] removes it.
    pub fn delay(&self, op: Op, delay: Duration) -> Self {
        self.lock().delays.insert(op, delay);
        self.clone()
    }

    /// Removes the failures, hangs and delay of `op`; its call count goes on.
    pub fn clear_for(&self, op: Op) -> Self {
        let mut plan = self.lock();
        plan.rules.retain(|(o, _)| *o != op);
        plan.delays.remove(&op);
        drop(plan);
        self.clone()
    }

    /// Removes every failure, hang and delay; call counts go on.
    pub fn clear(&self) -> Self {
        let mut plan = self.lock();
        plan.rules.clear();
        plan.delays.clear();
        drop(plan);
        self.clone()
    }

    /// How many calls of `op` were made so far (including failed and hanging ones).
    pub fn calls(&self, op: Op) -> usize {
        self.lock().calls.get(&op).copied().unwrap_or_default()
    }

    /// Counts a call of `op` and applies the plan to it: waits its delay, then returns the
    /// injected error, never returns, or returns `Ok(())` for the caller to proceed.
    pub async fn before(&self, op: Op) -> Result<()> {
        let (n, delay, fate) = self.lock().register(op);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match fate {
            Fate::Proceed => Ok(()),
            Fate::Fail => {
                tracing::debug!(%op, call = n, "injecting a failure");
                Err(Error::backend(
                    "fault",
                    format!("injected failure of {op} call {n}"),
                    true,
                ))
            }
            Fate::Hang => {
                tracing::debug!(%op, call = n, "injecting a hang");
                std::future::pending().await
            }
        }
    }
}

/// A [`Router`] that applies a [`Faults`] plan before delegating each call to `R`.
///
/// Name and capabilities are `R`'s. With an empty plan it behaves exactly like `R`.
#[derive(Debug, Clone)]
pub struct FaultyRouter<R> {
    inner: R,
    faults: Faults,
}

impl<R: Router> FaultyRouter<R> {
    /// Wraps `inner`, injecting the faults of `faults`.
    pub fn new(inner: R, faults: Faults) -> Self {
        FaultyRouter { inner, faults }
    }

    /// The wrapped router.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The plan.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

#[async_trait]
impl<R: Router> Router for FaultyRouter<R> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> RouterCapabilities {
        self.inner.capabilities()
    }

    async fn current(&self) -> Result<Option<Routes>> {
        self.faults.before(Op::Current).await?;
        self.inner.current().await
    }

    async fn apply(&self, routes: &Routes) -> Result<()> {
        self.faults.before(Op::Apply).await?;
        self.inner.apply(routes).await
    }

    async fn observe(&self) -> Result<Observation> {
        self.faults.before(Op::Observe).await?;
        self.inner.observe().await
    }

    async fn adopt(&self) -> Result<Adoption> {
        self.faults.before(Op::Adopt).await?;
        self.inner.adopt().await
    }

    async fn wait_drained(&self, timeout: Duration) -> Result<DrainStatus> {
        self.faults.before(Op::WaitDrained).await?;
        self.inner.wait_drained(timeout).await
    }
}

/// An [`Environment`] that applies a [`Faults`] plan before delegating each call to `E`.
///
/// Name and capabilities are `E`'s. With an empty plan it behaves exactly like `E`.
#[derive(Debug, Clone)]
pub struct FaultyEnvironment<E> {
    inner: E,
    faults: Faults,
}

impl<E: Environment> FaultyEnvironment<E> {
    /// Wraps `inner`, injecting the faults of `faults`.
    pub fn new(inner: E, faults: Faults) -> Self {
        FaultyEnvironment { inner, faults }
    }

    /// The wrapped environment.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The plan.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }
}

#[async_trait]
impl<E: Environment> Environment for FaultyEnvironment<E> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        self.inner.capabilities()
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        self.faults.before(Op::Deploy).await?;
        self.inner.deploy(slot, release).await
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        self.faults.before(Op::Status).await?;
        self.inner.status(slot).await
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        self.faults.before(Op::Stop).await?;
        self.inner.stop(slot, grace).await
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        self.faults.before(Op::Remove).await?;
        self.inner.remove(slot).await
    }

    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        self.faults.before(Op::Logs).await?;
        self.inner.logs(slot, lines).await
    }

    /// Forwarded without a fault of its own (there is no [`Op`] for it).
    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        self.inner.check_release(release).await
    }
    /// Forwarded without a fault or effect of its own (a read).
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        self.inner.snapshot(slot).await
    }

    /// A deploy: faulted as [`Op::Deploy`].
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        self.faults.before(Op::Deploy).await?;
        self.inner.deploy_snapshot(slot, release, snapshot).await
    }

    /// Forwarded without a fault or effect of its own (a read).
    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        self.inner.check_snapshot(release, snapshot).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{InMemoryEnvironment, InMemoryRouter};
    use tokio::time::{timeout, Instant};

    fn routes() -> Routes {
        Routes::only(Slot::Blue, crate::Endpoint::new("127.0.0.1", 8080).unwrap())
    }

    async fn outcomes(router: &dyn Router, calls: usize) -> Vec<bool> {
        let mut out = Vec::new();
        for _ in 0..calls {
            out.push(router.apply(&routes()).await.is_ok());
        }
        out
    }

    #[tokio::test]
    async fn fail_hits_only_the_nth_call_with_a_temporary_backend_error() {
        let faults = Faults::new().fail(Op::Apply, 2);
        let router = FaultyRouter::new(InMemoryRouter::new(), faults.clone());
        router.apply(&routes()).await.unwrap();
        let err = router.apply(&routes()).await.unwrap_err();
        assert!(err.is_temporary());
        assert!(
            matches!(&err, Error::Backend { backend, message, .. }
                if backend == "fault" && message == "injected failure of apply call 2"),
            "{err:?}"
        );
        assert_eq!(outcomes(&router, 2).await, [true, true]);
        assert_eq!(faults.calls(Op::Apply), 4);
        assert_eq!(router.inner().generation(), 3, "the failed call never reached it");
        assert_eq!(faults.calls(Op::Current), 0);
    }

    #[tokio::test]
    async fn fail_from_fails_every_later_call_until_cleared() {
        let faults = Faults::new().fail_from(Op::Apply, 2);
        let router = FaultyRouter::new(InMemoryRouter::new(), faults.clone());
        assert_eq!(outcomes(&router, 4).await, [true, false, false, false]);
        faults.clear_for(Op::Apply);
        assert_eq!(outcomes(&router, 1).await, [true]);
        assert_eq!(faults.calls(Op::Apply), 5);
    }

    #[tokio::test]
    async fn the_plan_can_change_mid_run_and_counts_are_shared_across_wrappers() {
        let faults = Faults::new();
        let env = FaultyEnvironment::new(InMemoryEnvironment::new(), faults.clone());
        let other = FaultyEnvironment::new(InMemoryEnvironment::new(), faults.clone());
        let v1 = Release::new("v1").unwrap();
        env.deploy(Slot::Blue, &v1).await.unwrap();
        faults.fail(Op::Deploy, 2);
        let err = other.deploy(Slot::Blue, &v1).await.unwrap_err();
        assert!(err.to_string().contains("deploy call 2"), "{err}");
        env.deploy(Slot::Green, &v1).await.unwrap();
        assert_eq!(faults.calls(Op::Deploy), 3);
        assert_eq!(other.inner().status_now(Slot::Blue), SlotStatus::Absent);
    }

    #[tokio::test]
    async fn every_environment_operation_is_covered() {
        let faults = Faults::new();
        for op in [Op::Deploy, Op::Status, Op::Stop, Op::Remove, Op::Logs] {
            faults.fail(op, 1);
        }
        let env = FaultyEnvironment::new(InMemoryEnvironment::new(), faults.clone());
        let v1 = Release::new("v1").unwrap();
        let grace = Duration::from_secs(1);
        assert!(env.deploy(Slot::Blue, &v1).await.is_err());
        assert!(env.status(Slot::Blue).await.is_err());
        assert!(env.stop(Slot::Blue, grace).await.is_err());
        assert!(env.remove(Slot::Blue).await.is_err());
        assert!(env.logs(Slot::Blue, 1).await.is_err());
        assert!(env.deploy(Slot::Blue, &v1).await.is_ok());
        assert!(env.status(Slot::Blue).await.is_ok());
        assert!(env.logs(Slot::Blue, 1).await.is_ok());
        assert!(env.capabilities().logs);
        assert_eq!(env.name(), "memory");
    }

    #[tokio::test]
    async fn every_router_operation_is_covered() {
        let faults = Faults::new();
        for op in [Op::Current, Op::Apply, Op::WaitDrained] {
            faults.fail(op, 1);
        }
        let router = FaultyRouter::new(InMemoryRouter::new(), faults.clone());
        let drain = Duration::from_secs(1);
        assert!(router.current().await.is_err());
        assert!(router.apply(&routes()).await.is_err());
        assert!(router.wait_drained(drain).await.is_err());
        assert_eq!(router.current().await.unwrap(), None);
        assert_eq!(router.wait_drained(drain).await.unwrap(), DrainStatus::NotObservable);
    }

    #[tokio::test(start_paused = true)]
    async fn delay_runs_in_tokio_time_and_can_be_removed() {
        let faults = Faults::new().delay(Op::Apply, Duration::from_secs(5));
        let router = FaultyRouter::new(InMemoryRouter::new(), faults.clone());
        let started = Instant::now();
        router.apply(&routes()).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        faults.delay(Op::Apply, Duration::ZERO);
        let started = Instant::now();
        router.apply(&routes()).await.unwrap();
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_failure_fails_after_its_delay() {
        let faults = Faults::new()
            .delay(Op::Apply, Duration::from_secs(2))
            .fail(Op::Apply, 1);
        let router = FaultyRouter::new(InMemoryRouter::new(), faults);
        let started = Instant::now();
        assert!(router.apply(&routes()).await.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn hang_never_returns_and_wins_over_a_failure() {
        let faults = Faults::new().hang(Op::Apply, 2).fail_from(Op::Apply, 2);
        let router = FaultyRouter::new(InMemoryRouter::new(), faults.clone());
        router.apply(&routes()).await.unwrap();
        let hung = timeout(Duration::from_secs(3600), router.apply(&routes())).await;
        assert!(hung.is_err(), "the second apply returned {hung:?}");
        assert!(router.apply(&routes()).await.is_err(), "call 3 fails");
        assert_eq!(router.inner().generation(), 1);
        assert_eq!(faults.calls(Op::Apply), 3);
    }

    #[test]
    #[should_panic(expected = "start at 1")]
    fn call_numbers_start_at_one() {
        Faults::new().fail(Op::Apply, 0);
    }
}
