//! [`Environment`]: runs a release in a slot, stops it gracefully, and says what runs today.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Endpoints, Release, Slot, Snapshot};

/// What an environment can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct EnvironmentCapabilities {
    /// [`Environment::logs`] returns the slot's recent output.
    pub logs: bool,
}

impl EnvironmentCapabilities {
    /// Capabilities with every flag set to `false`.
    pub fn none() -> Self {
        Self::default()
    }

    /// Sets [`logs`](Self::logs).
    pub fn with_logs(mut self, yes: bool) -> Self {
        self.logs = yes;
        self
    }
}

/// What runs in a slot, as the environment itself reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SlotStatus {
    /// Nothing is deployed in the slot.
    Absent,
    /// The slot runs `release`: every instance is running, each serving at its endpoint.
    Running {
        /// The release.
        release: Release,
        /// Where its instances serve (one per instance).
        #[serde(alias = "endpoint")]
        endpoints: Endpoints,
    },
    /// The slot holds `release` but it is not running (for a slot of several instances: not all
    /// of them are running).
    Stopped {
        /// The release.
        release: Release,
        /// Its exit code, when known.
        exit_code: Option<i64>,
    },
}

impl SlotStatus {
    /// The release in the slot, running or not.
    pub fn release(&self) -> Option<&Release> {
        match self {
            SlotStatus::Absent => None,
            SlotStatus::Running { release, .. } | SlotStatus::Stopped { release, .. } => Some(release),
        }
    }

    /// The endpoints, if running.
    pub fn endpoints(&self) -> Option<&Endpoints> {
        match self {
            SlotStatus::Running { endpoints, .. } => Some(endpoints),
            SlotStatus::Absent | SlotStatus::Stopped { .. } => None,
        }
    }
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "how", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopOutcome {
    /// The release exited by itself within the grace period after SIGTERM.
    Graceful {
        /// Its exit code, when known.
        exit_code: Option<i64>,
    },
    /// The grace period passed and the release was killed (SIGKILL).
    Killed,
    /// Nothing was running.
    NotRunning,
}

impl std::fmt::Display for StopOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopOutcome::Graceful { exit_code: Some(code) } => write!(f, "stopped gracefully (exit code {code})"),
            StopOutcome::Graceful { exit_code: None } => f.write_str("stopped gracefully"),
            StopOutcome::Killed => f.write_str("killed after the grace period (it ignored SIGTERM)"),
            StopOutcome::NotRunning => f.write_str("was not running"),
        }
    }
}

/// What [`Environment::check_release`] found out about a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReleaseCheck {
    /// The release is there to start (Docker: the image is present locally).
    Present,
    /// The environment has no cheap way to tell (the default).
    NotChecked,
}

/// Runs releases in slots.
///
/// One environment instance serves one application. Implementations: `DockerEnvironment`, and
/// [`InMemoryEnvironment`](crate::testing::InMemoryEnvironment) for tests.
///
/// # Contract
/// - **Source of truth**: [`status`](Environment::status) asks the system (the container engine,
///   the process table), so a restarted deployer rediscovers what runs.
/// - [`deploy`](Environment::deploy) starts `release` in `slot`, replacing whatever stale instance
///   was there, and returns its endpoints once the instances have *started* (not necessarily
///   healthy: health is the engine's job). A slot runs one instance or several (replicas), each
///   with its own endpoint; `deploy` returns when all of them have started, in a stable order.
///   It is idempotent: deploying the release already running in the slot may replace it or keep
///   it, and returns its endpoints either way. The engine never deploys into the slot that has
///   traffic.
/// - [`status`](Environment::status) is `Running` only when every instance of the slot runs.
/// - [`stop`](Environment::stop) asks every instance still running to stop (SIGTERM or its
///   equivalent) — also when the slot is `Stopped` because only some of them run — waits up to
///   `grace`, then kills what still runs, and says which happened (`Killed` if any instance had
///   to be killed; `NotRunning` only when none ran). Stopping a slot none of whose instances
///   runs, or an absent one, is `Ok(StopOutcome::NotRunning)`.
/// - [`remove`](Environment::remove) deletes the slot's instances; removing an absent slot is `Ok`.
/// - **Cancellation**: a dropped future may leave an instance created but not started; the next
///   `deploy` into that slot replaces it.
/// - **Snapshots** (optional; the defaults pin nothing): [`snapshot`](Environment::snapshot)
///   says what a started slot actually runs as a [`Snapshot`] — the artifact, pinned (Docker: the
///   image id, not the tag), and a fingerprint of the environment's configuration today. The
///   engine journals it once provisioning succeeded.
///   [`deploy_snapshot`](Environment::deploy_snapshot) starts exactly that artifact again (for
///   [`Deployer::rollback_to`](crate::Deployer::rollback_to)), under today's configuration, with
///   `deploy`'s guarantees; [`check_snapshot`](Environment::check_snapshot) says cheaply whether it
///   still could. An environment that implements one of the three implements all of them: a
///   snapshot with an artifact is only ever handed back to the environment that took it.
/// - **Errors**: [`Error::NotFound`] when the release cannot be found (an image missing; for a
///   snapshot, its artifact gone, naming the artifact and the release), [`Error::Backend`] when
///   the system fails (with its message; `temporary` when it may pass), [`Error::Unsupported`]
///   from optional methods the capabilities do not announce.
#[async_trait]
pub trait Environment: Send + Sync + Debug + 'static {
    /// A short name for messages and logs (`"docker"`, `"memory"`).
    fn name(&self) -> &str;

    /// What this environment can do.
    fn capabilities(&self) -> EnvironmentCapabilities;

    /// Starts `release` in `slot` and returns where its instances serve.
    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints>;

    /// What runs in `slot`.
    async fn status(&self, slot: Slot) -> Result<SlotStatus>;

    /// Stops `slot`: SIGTERM, up to `grace`, then SIGKILL.
    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome>;

    /// Removes `slot`'s instance.
    async fn remove(&self, slot: Slot) -> Result<()>;

    /// Whether `release` could be started here, checked cheaply and without side effect (Docker:
    /// the image is present; nothing is pulled or created). Used by
    /// [`Deployer::preflight_for`](crate::Deployer::preflight_for).
    ///
    /// The default is `Ok(ReleaseCheck::NotChecked)`: an environment that cannot tell says so.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the release is missing (as [`deploy`](Environment::deploy) would
    /// fail); [`Error::Backend`] when the system cannot be asked.
    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        let _ = release;
        Ok(ReleaseCheck::NotChecked)
    }

    /// What `slot` runs, pinned: the artifact its instance was started from and the fingerprint
    /// of the configuration. Called by the engine right after [`deploy`](Environment::deploy) or
    /// [`deploy_snapshot`](Environment::deploy_snapshot) returned; side-effect free, so
    /// idempotent and safe to cancel.
    ///
    /// The default is `Ok(None)`: the environment pins nothing, and a rollback to an earlier
    /// release deploys it by name.
    ///
    /// # Errors
    /// [`Error::Backend`] when the system cannot be asked. `Ok(None)` (not an error) for an
    /// empty slot.
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        let _ = slot;
        Ok(None)
    }

    /// Starts `release` in `slot` exactly as `snapshot` pinned it (Docker: the image by its id,
    /// whatever the release's tag points to today), under today's configuration; otherwise as
    /// [`deploy`](Environment::deploy) (replaces a stale instance, idempotent, same cancellation).
    ///
    /// The default deploys `release` by name when the snapshot has no artifact, and refuses one
    /// with an artifact ([`Error::Unsupported`]): an environment that pins nothing cannot start a
    /// pinned artifact, and never handed one out.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming the artifact and the release when the artifact is gone (an
    /// image removed); the slot keeps what it had. Otherwise as [`deploy`](Environment::deploy).
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        match snapshot.artifact() {
            None => self.deploy(slot, release).await,
            Some(_) => Err(Error::Unsupported {
                backend: self.name().to_string(),
                capability: "starting a pinned artifact",
            }),
        }
    }

    /// Whether `snapshot` (taken of `release`) could be started again, checked cheaply and
    /// without side effect (Docker: the image id is present). Used by
    /// [`Deployer::rollback_to`](crate::Deployer::rollback_to) before anything changes.
    ///
    /// The default checks the release by name ([`check_release`](Environment::check_release))
    /// when the snapshot has no artifact, and cannot tell ([`ReleaseCheck::NotChecked`]) when it
    /// has one.
    ///
    /// # Errors
    /// [`Error::NotFound`] naming the artifact and the release when the artifact is gone;
    /// [`Error::Backend`] when the system cannot be asked.
    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        match snapshot.artifact() {
            None => self.check_release(release).await,
            Some(_) => Ok(ReleaseCheck::NotChecked),
        }
    }

    /// The last `lines` lines of the slot's output, oldest first.
    ///
    /// Only when [`EnvironmentCapabilities::logs`] is set; the default is [`Error::Unsupported`].
    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        let _ = (slot, lines);
        Err(Error::Unsupported {
            backend: self.name().to_string(),
            capability: "logs",
        })
    }
}

fn _object_safe(_: &dyn Environment) {}

/// Forwards every method, so a wrapper (a timeout, fault injection) can hold any environment,
/// boxed or shared.
macro_rules! forward_environment {
    ($ty:ty) => {
        #[async_trait]
        impl<E: Environment + ?Sized> Environment for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn capabilities(&self) -> EnvironmentCapabilities {
                (**self).capabilities()
            }
            async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
                (**self).deploy(slot, release).await
            }
            async fn status(&self, slot: Slot) -> Result<SlotStatus> {
                (**self).status(slot).await
            }
            async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
                (**self).stop(slot, grace).await
            }
            async fn remove(&self, slot: Slot) -> Result<()> {
                (**self).remove(slot).await
            }
            async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
                (**self).logs(slot, lines).await
            }
            async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
                (**self).check_release(release).await
            }
            async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
                (**self).snapshot(slot).await
            }
            async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
                (**self).deploy_snapshot(slot, release, snapshot).await
            }
            async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
                (**self).check_snapshot(release, snapshot).await
            }
        }
    };
}
forward_environment!(std::sync::Arc<E>);
forward_environment!(Box<E>);
