//! [`DeployerBuilder`]: wires backends, strategy, journal and lock into a [`Deployer`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;

use super::{Deployer, Inner};
use crate::bounded::{Bounded, Timeouts};
use crate::environment::Environment;
use crate::error::{Error, Result};
use crate::hook::{Hook, Stage};
use crate::journal::{InMemoryJournal, Journal};
use crate::lock::{DeployLock, InMemoryLock};
use crate::model::AppName;
use crate::probe::{HealthPolicy, HealthProbe};
use crate::router::Router;
use crate::strategy::{BlueGreen, Retirement, Strategy};

/// Builds a [`Deployer`] for one application.
///
/// Required: an environment, a router and a health probe. Defaults: [`BlueGreen`] with automatic
/// promotion, [`HealthPolicy::default`], [`Retirement::default`], an in-memory journal (not
/// durable: use a [`FileJournal`](crate::journal::FileJournal) to resume after a crash), and an
/// in-memory lock of this deployer's own: it excludes concurrent deployments through this deployer
/// and its clones only. Give a [`FileLock`](crate::lock::FileLock) to exclude other deployers and
/// other processes.
#[derive(Debug)]
#[must_use]
pub struct DeployerBuilder {
    app: AppName,
    environment: Option<Arc<dyn Environment>>,
    router: Option<Arc<dyn Router>>,
    probe: Option<Arc<dyn HealthProbe>>,
    policy: HealthPolicy,
    strategy: Arc<dyn Strategy>,
    retirement: Retirement,
    journal: Option<Arc<dyn Journal>>,
    lock: Option<Arc<dyn DeployLock>>,
    lock_wait: Option<Duration>,
    who: Option<String>,
    log_lines: usize,
    approval_timeout: Option<Duration>,
    timeouts: Timeouts,
    adopt: bool,
    unconfirmed: bool,
    hooks: Vec<(Stage, Arc<dyn Hook>)>,
    state_dir: Option<PathBuf>,
    park: Park,
}

/// Where a deployment is parked rather than waited for in the deploying process.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Park {
    /// At approval gates (manual promotion, a pause until approved, held checks).
    pub(super) gates: bool,
    /// Once promoted, for the rollback window.
    pub(super) warm: bool,
}

impl DeployerBuilder {
    pub(super) fn new(app: AppName) -> Self {
        DeployerBuilder {
            app,
            environment: None,
            router: None,
            probe: None,
            policy: HealthPolicy::default(),
            strategy: Arc::new(BlueGreen::new()),
            retirement: Retirement::default(),
            journal: None,
            lock: None,
            lock_wait: None,
            who: None,
            log_lines: 20,
            approval_timeout: None,
            timeouts: Timeouts::default(),
            adopt: false,
            unconfirmed: false,
            hooks: Vec::new(),
            state_dir: None,
            park: Park::default(),
        }
    }

    /// Keeps the journal, the lock and the command socket in `dir` (created owner-only, `0700`,
    /// if missing): a [`FileJournal`](crate::journal::FileJournal) `<app>.journal.jsonl`, a
    /// [`FileLock`](crate::lock::FileLock), and `<app>.sock`, through which
    /// [`promote`](Deployer::promote), [`abort`](Deployer::abort) and
    /// [`rollback`](Deployer::rollback) from other processes reach a deployment running here (see
    /// [`command`](crate::command)). A [`journal`](Self::journal) or [`lock`](Self::lock) given
    /// explicitly is kept.
    ///
    /// Every process that deploys or steers the application must use the same directory. The
    /// socket's path must fit a Unix socket address (at most 107 bytes): [`build`](Self::build)
    /// refuses a longer one.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Parks a deployment that reaches an approval gate (manual promotion, a pause until
    /// approved, checks held as inconclusive) instead of waiting in this process:
    /// [`deploy`](Deployer::deploy) returns a report whose deployment is
    /// [`parked`](crate::Deployment::parked), the lock is released, the new slot keeps running,
    /// and a later [`promote`](Deployer::promote) or [`abort`](Deployer::abort) from any process
    /// with the same [state directory](Self::state_dir) carries it on. The
    /// [approval timeout](Self::approval_timeout), if any, still applies: once it has passed, the
    /// next [`tick`](Deployer::tick), [`resume`](Deployer::resume) or deploy rolls it back.
    pub fn park_at_gates(mut self, park: bool) -> Self {
        self.park.gates = park;
        self
    }

    /// Parks a promoted deployment for its rollback window instead of waiting it out in this
    /// process: [`deploy`](Deployer::deploy) returns once traffic is on the new release, confirmed,
    /// with the old slot still running. Within the window a [`rollback`](Deployer::rollback) from
    /// any process is instant (traffic back to the warm slot, confirmed); after it, the next
    /// [`tick`](Deployer::tick), [`resume`](Deployer::resume) or deploy drains and stops the old
    /// slot (a deploy before the window ends ends it early).
    pub fn park_warm(mut self, park: bool) -> Self {
        self.park.warm = park;
        self
    }

    /// Where releases run.
    pub fn environment(mut self, environment: Arc<dyn Environment>) -> Self {
        self.environment = Some(environment);
        self
    }

    /// How traffic moves.
    pub fn router(mut self, router: Arc<dyn Router>) -> Self {
        self.router = Some(router);
        self
    }

    /// What proves a slot healthy before it gets traffic.
    pub fn probe(mut self, probe: Arc<dyn HealthProbe>) -> Self {
        self.probe = Some(probe);
        self
    }

    /// The thresholds and deadline applied to the probe.
    pub fn policy(mut self, policy: HealthPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How the rollout proceeds.
    pub fn strategy(mut self, strategy: impl Strategy) -> Self {
        self.strategy = Arc::new(strategy);
        self
    }

    /// What happens to the old slot after promotion: rollback window, drain, stop grace.
    pub fn retirement(mut self, retirement: Retirement) -> Self {
        self.retirement = retirement;
        self
    }

    /// Where every step is recorded.
    pub fn journal(mut self, journal: Arc<dyn Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// What keeps deployments of this application one at a time.
    pub fn lock(mut self, lock: Arc<dyn DeployLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Wait up to this long for another deployment to finish, instead of failing at once.
    pub fn lock_wait(mut self, wait: Duration) -> Self {
        self.lock_wait = Some(wait);
        self
    }

    /// Who deploys (a user, a CI job): recorded in the journal and the lock.
    pub fn who(mut self, who: impl Into<String>) -> Self {
        self.who = Some(who.into());
        self
    }

    /// How many log lines of a failing slot to carry in errors (default 20).
    pub fn log_lines(mut self, lines: usize) -> Self {
        self.log_lines = lines;
        self
    }

    /// How long a gate waits for [`Deployer::promote`] (a pause until approved, or checks held as
    /// inconclusive) before the deployment is aborted and rolled back. Without it a gate waits as
    /// long as it takes, which suits an operator at hand but not an unattended CI job.
    pub fn approval_timeout(mut self, timeout: Duration) -> Self {
        self.approval_timeout = Some(timeout);
        self
    }

    /// How long each class of backend call may take (see [`Timeouts`]); a call past its bound
    /// ends in [`Error::Timeout`] and the deployment in its documented state, with
    /// [`Cause::Timeout`](crate::Cause::Timeout) as the reason.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Whether a deployment may take over a router configuration that bluegreen did not write, or
    /// that was edited since (an existing upstream file on a host adopting bluegreen). The router
    /// keeps it as a backup, the journal names the backup, and the first switch replaces it.
    /// Without this (the default) such a deployment is refused with
    /// [`Conflict::ForeignConfig`](crate::Conflict::ForeignConfig), and nothing changes.
    pub fn adopt_existing_config(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// Accepts a router that cannot [confirm](crate::RouterCapabilities::confirms) that the proxy
    /// serves a switch. Refused by default: the engine would report as live what it only wrote.
    pub fn allow_unconfirmed_router(mut self, allow: bool) -> Self {
        self.unconfirmed = allow;
        self
    }

    /// Runs `hook` at `stage` of every deployment (see [`hook`](crate::hook) for when each stage
    /// runs and what its failure does). Hooks of one stage run in the order they were added; the
    /// first failure ends the stage.
    ///
    /// ```
    /// use std::time::Duration;
    /// use bluegreen_core::hook::{CallbackHook, CommandHook, Stage};
    /// # use bluegreen_core::{AppName, Deployer};
    /// # fn main() -> bluegreen_core::Result<()> {
    /// let builder = Deployer::builder(AppName::new("shop")?)
    ///     .hook(Stage::BeforeChange, CommandHook::new(["./migrate", "up"]).timeout(Duration::from_secs(120)))
    ///     .hook(Stage::BeforeTraffic, CommandHook::new(["./smoke-test"]).timeout(Duration::from_secs(30)))
    ///     .hook(Stage::AfterCompletion, CallbackHook::new("announce", |ctx| async move {
    ///         Ok(format!("{} is live", ctx.release))
    ///     }));
    /// # let _ = builder; Ok(()) }
    /// ```
    pub fn hook(mut self, stage: Stage, hook: impl Hook) -> Self {
        self.hooks.push((stage, Arc::new(hook)));
        self
    }

    /// Checks the configuration and builds the deployer.
    ///
    /// # Errors
    /// [`Error::Invalid`] when a required part is missing or the policy is invalid;
    /// [`Error::Unsupported`] when the strategy needs a weighted split the router cannot serve, or
    /// the router cannot confirm a switch (see [`allow_unconfirmed_router`](Self::allow_unconfirmed_router));
    /// [`Error::Conflict`] with [`Conflict::NotPermitted`](crate::Conflict::NotPermitted) when
    /// this user may not use the [state directory](Self::state_dir) (another user's: it is
    /// owner-only), so may neither deploy nor steer.
    ///
    /// Blocking when a [state directory](Self::state_dir) is given (it creates the directory and
    /// opens the journal): call it at a program's start, or from `spawn_blocking`.
    pub fn build(self) -> Result<Deployer> {
        let missing = |what: &'static str| Error::invalid("deployer", what, format!("no {what} was given"));
        let environment = self.environment.ok_or_else(|| missing("environment"))?;
        let router = self.router.ok_or_else(|| missing("router"))?;
        let probe = self.probe.ok_or_else(|| missing("probe"))?;
        self.policy.validate()?;
        self.timeouts.validate()?;
        let capabilities = router.capabilities();
        if self.strategy.needs_weighted_split() && !capabilities.weighted {
            return Err(Error::Unsupported {
                backend: router.name().to_string(),
                capability: "weighted split",
            });
        }
        if !capabilities.confirms && !self.unconfirmed {
            return Err(Error::Unsupported {
                backend: router.name().to_string(),
                capability: "confirmed switch (allow_unconfirmed_router(true) accepts it)",
            });
        }
        let timeouts = self.timeouts;
        let (events, _) = broadcast::channel(1024);
        let (mut journal, mut lock, mut socket) = (self.journal, self.lock, None);
        if let Some(dir) = &self.state_dir {
            let state = super::state_dir::open(dir, &self.app)?;
            journal.get_or_insert(state.journal);
            lock.get_or_insert(state.lock);
            socket = Some(state.socket);
        }
        Ok(Deployer {
            inner: Arc::new(Inner {
                app: self.app,
                environment: Arc::new(Bounded::new(environment, timeouts)),
                router: Arc::new(Bounded::new(router, timeouts)),
                probe: Arc::new(Bounded::new(probe, timeouts)),
                policy: self.policy,
                strategy: self.strategy,
                retirement: self.retirement,
                journal: journal.unwrap_or_else(|| Arc::new(InMemoryJournal::new())),
                lock: lock.unwrap_or_else(|| Arc::new(InMemoryLock::new())),
                socket,
                owner: rustix::process::geteuid().as_raw(),
                park: self.park,
                lock_wait: self.lock_wait,
                who: self.who,
                log_lines: self.log_lines,
                approval_timeout: self.approval_timeout,
                adopt: self.adopt,
                hooks: self.hooks,
                timeouts,
                events,
                control: std::sync::Mutex::new(None),
                journal_noted: std::sync::Mutex::default(),
            }),
        })
    }
}
