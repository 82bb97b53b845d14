//! The engine: a [`Deployer`] performs what the [state machine](crate::machine) decides.

mod builder;
mod control;
mod events;
mod plan;
mod preflight;
mod releases;
mod run;
mod socket;
mod state_dir;
mod status;
mod steer;
mod window;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tracing::instrument;

use crate::command::{Answer, Command};
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::journal::{Entry, Journal};
use crate::lock::{DeployLock, LockGuard, LockHolder};
use crate::machine::{Deployment, Kind, Phase};
use crate::model::{AppName, Release, Slot};
use crate::outcome::Conflict;
use crate::probe::{HealthPolicy, HealthProbe};
use crate::router::Router;
use crate::strategy::{Retirement, Strategy};

pub use builder::DeployerBuilder;
pub use events::{Event, EventKind, Report, TimelineStep};
pub use plan::{Plan, PlanStep, WorstCase};
pub use preflight::{Check, Preflight, Problem};
pub use releases::RetainedRelease;
pub use status::{Drift, Status};

use control::Control;

/// Deploys one application: blue-green or canary, health-gated, confirmed, journaled, resumable.
///
/// Cheap to clone (an `Arc`); clones share the same in-flight deployment, so one task can
/// [`deploy`](Deployer::deploy) while another calls [`promote`](Deployer::promote) or
/// [`abort`](Deployer::abort).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> bluegreen_core::Result<()> {
/// use std::{sync::Arc, time::Duration};
/// use bluegreen_core::{testing::{InMemoryEnvironment, InMemoryRouter}, *};
///
/// let env = InMemoryEnvironment::new();
/// let deployer = Deployer::builder(AppName::new("shop")?)
///     .environment(Arc::new(env.clone()))
///     .router(Arc::new(InMemoryRouter::new()))
///     .probe(env.health_probe())
///     .policy(HealthPolicy::default().interval(Duration::from_millis(10)))
///     .retirement(Retirement::new().rollback_window(Duration::ZERO).drain(Duration::ZERO).stop_grace(Duration::from_secs(1)))
///     .build()?;
/// deployer.deploy(Release::new("v1")?).await?;
/// let report = deployer.deploy(Release::new("v2")?).await?;
/// assert_eq!(*report.deployment.phase(), Phase::Completed);
/// assert_eq!(deployer.status().await?.live_release().map(|r| r.as_str()), Some("v2"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Deployer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    app: AppName,
    environment: Arc<dyn Environment>,
    router: Arc<dyn Router>,
    probe: Arc<dyn HealthProbe>,
    policy: HealthPolicy,
    strategy: Arc<dyn Strategy>,
    retirement: Retirement,
    journal: Arc<dyn Journal>,
    lock: Arc<dyn DeployLock>,
    lock_wait: Option<Duration>,
    who: Option<String>,
    log_lines: usize,
    approval_timeout: Option<Duration>,
    /// Whether a router configuration bluegreen did not write may be taken over.
    adopt: bool,
    /// The hooks, each with its stage, in the order they were added.
    hooks: Vec<(crate::hook::Stage, Arc<dyn crate::hook::Hook>)>,
    /// The bounds on each class of backend call (what [`Deployer::plan`] counts as worst case).
    timeouts: crate::bounded::Timeouts,
    events: broadcast::Sender<Event>,
    /// The command socket in the state directory, if there is one.
    socket: Option<std::path::PathBuf>,
    /// The user the deployer runs as: commands from it (and root) are obeyed.
    owner: u32,
    /// Where deployments are parked instead of waited for in this process.
    park: builder::Park,
    /// The in-flight deployment's command channel, while one runs in this process.
    control: std::sync::Mutex<Option<mpsc::UnboundedSender<Control>>>,
    /// What the journal found wrong with itself and this deployer already journaled.
    journal_noted: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Deployer {
    /// Starts building a deployer for `app`.
    pub fn builder(app: AppName) -> DeployerBuilder {
        DeployerBuilder::new(app)
    }

    /// The application.
    pub fn app(&self) -> &AppName {
        &self.inner.app
    }

    /// Events of every deployment from now on: phase changes, checks, notes.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Deploys `release` into the slot without traffic, proves it healthy, moves traffic to it per
    /// the strategy, keeps the old slot warm for the rollback window, drains and stops it.
    ///
    /// Returns once the deployment is finished.
    ///
    /// # Errors
    /// - [`Error::Locked`] — another deployment of this application runs (names the holder);
    /// - [`Error::Conflict`] — [`Conflict::Unfinished`]: an earlier deployment is unfinished (call
    ///   [`resume`](Self::resume)); [`Conflict::SplitWithoutDeployment`]: traffic is split with no
    ///   deployment to explain it; [`Conflict::ForeignConfig`]: the router's configuration was not
    ///   written by it (see [`DeployerBuilder::adopt_existing_config`]);
    /// - [`Error::RolledBack`] — the release failed (its [`Cause`](crate::Cause): health, analysis,
    ///   the router, an abort, a backend call past its bound, …): traffic is on the previous
    ///   release, and the error says why, with the new slot's last log lines;
    /// - [`Error::Interrupted`] — traffic could not be moved back, or the old or the refused slot
    ///   not stopped (its [`Retry`](crate::machine::Retry) says which); the journal holds the state
    ///   and [`resume`](Self::resume) retries;
    /// - [`Error::Journal`] when the journal cannot be written: the deployment stops where it was
    ///   (possibly with traffic split), unfinished, for [`resume`](Self::resume) to converge;
    /// - backend errors met before anything changed (reading the router or the environment).
    ///
    /// # Cancellation
    /// Dropping the future releases the lock and leaves the deployment unfinished in the journal,
    /// as a crash would: the next [`deploy`](Self::deploy) refuses until [`resume`](Self::resume)
    /// has converged it.
    #[instrument(skip_all, fields(app = %self.inner.app, release = %release))]
    pub async fn deploy(&self, release: Release) -> Result<Report> {
        self.start(Kind::Deploy, release).await
    }

    /// Approves what waits for a human: promotion ([`Promotion::Manual`](crate::Promotion)), a
    /// pause, or a re-check of inconclusive health. Cuts a timed pause short.
    ///
    /// It reaches the deployment wherever it runs: in this process, in another process with the
    /// same [state directory](DeployerBuilder::state_dir), or parked (this process then carries it
    /// on: [`Answer::Ran`]). See [`command`](crate::command) for how, and who may.
    ///
    /// # Errors
    /// [`Error::Conflict`]: [`Conflict::NothingRunning`] when no deployment is in flight or parked,
    /// [`Conflict::Refused`] when its phase takes no approval (journaled, with the sender),
    /// [`Conflict::DeployerDied`] when the deploying process died before it took the command,
    /// [`Conflict::NotPermitted`] for a sender that may not steer it; [`Error::Locked`] when a
    /// deployer without a command socket runs it; as [`deploy`](Self::deploy) when this process
    /// carries a parked deployment on.
    pub async fn promote(&self) -> Result<Answer> {
        self.send_command(Command::Promote).await
    }

    /// Aborts the in-flight or parked deployment: traffic goes back to the previous slot
    /// (instantly while it is warm, during the rollback window) and the new release is stopped.
    /// The [`deploy`](Self::deploy) call running it then returns [`Error::RolledBack`].
    ///
    /// # Errors
    /// As [`promote`](Self::promote); [`Conflict::Refused`] when it is already retiring the old
    /// slot (too late to abort; use [`rollback`](Self::rollback) after it).
    pub async fn abort(&self, reason: impl Into<String>) -> Result<Answer> {
        self.send_command(Command::Abort { reason: reason.into() }).await
    }

    /// Goes back to the previous release.
    ///
    /// While a deployment is in flight (here or in another process) this aborts it (`Ok(None)`);
    /// a parked one this process rolls back itself (`Ok(Some(report))`, within a warm rollback
    /// window: instant). Otherwise it deploys the release that the last completed deployment
    /// replaced, through the normal health-gated path: instant when that release still runs in
    /// its slot, redeployed when not — from the [snapshot](crate::Snapshot) it ran, as
    /// [`rollback_to`](Self::rollback_to), where the journal retains it (`Ok(Some(report))`).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the journal knows no previous release; otherwise as
    /// [`abort`](Self::abort) and [`deploy`](Self::deploy).
    pub async fn rollback(&self) -> Result<Option<Report>> {
        match self.send_command(Command::Rollback).await {
            Ok(Answer::Accepted { .. }) => return Ok(None),
            Ok(Answer::Ran(report)) => return Ok(Some(*report)),
            Err(Error::Conflict(Conflict::NothingRunning { .. })) => {}
            Err(e) => return Err(e),
        }
        let previous = self
            .history(50)
            .await?
            .into_iter()
            .find(|d| *d.phase() == Phase::Completed)
            .and_then(|d| d.previous().cloned())
            .ok_or_else(|| Error::NotFound {
                what: "previous release",
                name: self.inner.app.to_string(),
            })?;
        // Exactly what ran before, where the journal retains its snapshot.
        match self.rollback_to(previous.release.clone()).await {
            Err(Error::NotFound {
                what: "retained release",
                ..
            }) => self.start(Kind::Rollback, previous.release).await.map(Some),
            other => other.map(Some),
        }
    }

    /// Finishes a deployment that a crash (or an unreachable router) left unfinished: rolls it
    /// back if traffic had not been promoted, finishes it otherwise. `Ok(None)` when there is
    /// nothing to resume.
    ///
    /// It must be called on a deployer built with the same strategy as the interrupted deployment
    /// (the journal records the strategy's name, and another is refused): the strategy's steps
    /// are how a promoted deployment finishes.
    ///
    /// Its job is to converge, so both endings are `Ok`: the report's
    /// [`phase`](Deployment::phase) says [`Phase::Completed`] or [`Phase::RolledBack`] (with the
    /// reason in [`Deployment::reason`]) — or, for a deployment that parks, parked again at its
    /// next gate or warm ([`Deployment::parked`]). A parked deployment is not resumed (it waits on
    /// purpose) unless its time has come: then it does what is due, as [`tick`](Self::tick).
    /// Call it before deploying from a process that may have crashed.
    ///
    /// # Errors
    /// [`Error::Locked`] while another deployer holds the lock; [`Error::Interrupted`] when it
    /// still cannot converge (the router is unreachable): the journal keeps the state for the
    /// next try.
    #[instrument(skip_all, fields(app = %self.inner.app))]
    pub async fn resume(&self) -> Result<Option<Report>> {
        let guard = self.acquire().await?;
        let Some(last) = self.last_entry().await? else {
            return Ok(None);
        };
        if let Some(parking) = last.deployment.parked() {
            // Parked on purpose: nothing to converge until its time comes.
            if !parking.is_due() {
                return Ok(None);
            }
            return self
                .run(last.deployment, guard, Some(last.seq), run::Begin::Due)
                .await
                .map(Some);
        }
        if !run::needs_resume(&last.deployment) {
            self.note_takeover(&guard, &last.deployment, &mut run::Run::after(last.seq))
                .await?;
            return Ok(None);
        }
        self.check_strategy(&last.deployment)?;
        self.run(last.deployment, guard, Some(last.seq), run::Begin::Resumed)
            .await
            .map(Some)
    }

    /// Does what is due for a deployment parked past its time: an approval gate past its timeout
    /// is rolled back, a warm deployment past its rollback window drains and stops the old slot.
    /// `Ok(None)` when nothing is due (nothing parked, its time has not come, or another deployer
    /// holds the lock).
    ///
    /// Call it from a long-running process now and then (or from a timer), so a parked deployment
    /// does not wait for the next person to touch the application.
    /// [`resume`](Self::resume) and [`deploy`](Self::deploy) do the same before anything else.
    ///
    /// # Errors
    /// As [`resume`](Self::resume).
    #[instrument(skip_all, fields(app = %self.inner.app))]
    pub async fn tick(&self) -> Result<Option<Report>> {
        let holder = LockHolder::this_process(self.inner.who.clone());
        let guard = match self.inner.lock.try_acquire(&self.inner.app, &holder).await {
            Ok(guard) => guard,
            Err(Error::Locked { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(last) = self.last_entry().await? else {
            return Ok(None);
        };
        if !last.deployment.parked().is_some_and(|p| p.is_due()) {
            return Ok(None);
        }
        self.run(last.deployment, guard, Some(last.seq), run::Begin::Due)
            .await
            .map(Some)
    }

    /// What runs and what is live, asked of the router, the environment and the journal's last
    /// entry: its cost does not grow with the journal.
    ///
    /// What it calls live is what the proxy is seen serving, not what a file says: a proxy that
    /// serves something else, a configuration edited by hand, a route to where no release runs,
    /// or a journal that disagrees are all reported in [`Status::drift`], never an error.
    pub async fn status(&self) -> Result<Status> {
        let observed = self.inner.router.observe().await?;
        let blue = self.inner.environment.status(Slot::Blue).await?;
        let green = self.inner.environment.status(Slot::Green).await?;
        let last = self.last_entry().await?.map(|e| e.deployment);
        Ok(Status::new(
            self.inner.app.clone(),
            observed.configured,
            observed.serving,
            [blue, green],
            last,
        ))
    }

    /// The latest `limit` deployments, newest first, each as it last stood: which releases ran,
    /// when, who deployed them, and how each ended. Reads only as much of the journal as needed.
    pub async fn history(&self, limit: usize) -> Result<Vec<Deployment>> {
        let mut window = limit.saturating_mul(16).max(64);
        loop {
            let entries = self.inner.journal.tail(window).await?;
            let mut seen = std::collections::HashSet::new();
            let latest: Vec<Deployment> = entries
                .iter()
                .rev()
                .filter(|e| seen.insert(e.deployment.id().to_owned()))
                .map(|e| e.deployment.clone())
                .take(limit)
                .collect();
            if latest.len() >= limit || entries.len() < window {
                return Ok(latest);
            }
            window = window.saturating_mul(4);
        }
    }

    async fn last_entry(&self) -> Result<Option<Entry>> {
        Ok(self.inner.journal.tail(1).await?.pop())
    }

    async fn acquire(&self) -> Result<LockGuard> {
        let holder = LockHolder::this_process(self.inner.who.clone());
        let started = tokio::time::Instant::now();
        let acquired =
            crate::lock::acquire(self.inner.lock.as_ref(), &self.inner.app, &holder, self.inner.lock_wait).await;
        crate::metrics::lock_waited(&self.inner.app, started.elapsed());
        acquired
    }

    /// Refuses to carry on `d` with another strategy, or with the same one whose steps changed
    /// (a gate added or skipped), than it started with.
    fn check_strategy(&self, d: &Deployment) -> Result<()> {
        let strategy = self.inner.strategy.as_ref();
        let steps = crate::strategy::steps(strategy, d.previous().is_some());
        let fingerprint = crate::strategy::steps_fingerprint(&steps);
        let (was, is) = (d.strategy(), strategy.name());
        let mismatch = |was: String, is: String| {
            Err(Error::Conflict(Conflict::StrategyMismatch {
                deployment: d.id().to_string(),
                was,
                is,
            }))
        };
        if !was.is_empty() && was != is {
            return mismatch(was.to_string(), is.to_string());
        }
        if !d.steps().is_empty() && d.steps() != fingerprint {
            return mismatch(
                format!("{was} (steps {})", d.steps()),
                format!("{is} ({steps}: steps {fingerprint})"),
            );
        }
        Ok(())
    }
}

/// The engine's futures can be spawned onto a multi-threaded runtime.
fn _futures_are_send(d: &Deployer, r: Release) {
    fn is_send<T: Send>(_: T) {}
    is_send(d.deploy(r.clone()));
    is_send(d.resume());
    is_send(d.rollback());
    is_send(d.rollback_to(r.clone()));
    is_send(d.releases());
    is_send(d.status());
    is_send(d.promote());
    is_send(d.tick());
    is_send(d.end_rollback_window());
}
