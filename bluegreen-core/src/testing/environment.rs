//! [`InMemoryEnvironment`]: slots held in memory, with per-release behaviour knobs, and the
//! [`InMemoryHealthProbe`] that reads them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::state_file::StateFile;

mod artifacts;

use crate::environment::{Environment, EnvironmentCapabilities, ReleaseCheck, SlotStatus, StopOutcome};
use crate::error::{Error, Result};
use crate::model::{Endpoint, Endpoints, Release, Slot, Snapshot};
use crate::probe::{HealthProbe, ProbeOutcome, ProbeTarget};

/// The first port handed out; each new instance gets the next one.
const FIRST_PORT: u16 = 20000;
/// The exit code reported for a killed instance (128 + SIGKILL).
const KILLED_EXIT_CODE: i64 = 137;

/// One call that changed an [`InMemoryEnvironment`], as recorded by
/// [`operations`](InMemoryEnvironment::operations).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvOp {
    /// [`Environment::deploy`] was called (whether it succeeded or not).
    Deploy {
        /// The slot.
        slot: Slot,
        /// The release.
        release: Release,
    },
    /// [`Environment::deploy_snapshot`] was called (whether it succeeded or not).
    DeploySnapshot {
        /// The slot.
        slot: Slot,
        /// The release.
        release: Release,
        /// The pinned artifact asked for.
        artifact: Option<String>,
    },
    /// [`Environment::stop`] returned `outcome`.
    Stop {
        /// The slot.
        slot: Slot,
        /// The grace period asked for.
        grace: Duration,
        /// How the stop ended.
        outcome: StopOutcome,
    },
    /// [`Environment::remove`] was called.
    Remove {
        /// The slot.
        slot: Slot,
    },
}

/// How a release behaves once deployed; set with the knobs before deploying it.
#[derive(Debug, Clone, Default)]
struct Behaviour {
    fail_deploy: Option<String>,
    missing: bool,
    unhealthy: bool,
    ignore_sigterm: bool,
    exit_on_start: Option<i64>,
}

/// What runs, the logs and the port counter: what a [persistent](InMemoryEnvironment::persistent)
/// environment keeps in its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    slots: BTreeMap<Slot, SlotStatus>,
    logs: BTreeMap<Slot, Vec<String>>,
    next_port: u16,
    /// What each slot's instance was started as (files written before snapshots have none).
    #[serde(default)]
    snapshots: BTreeMap<Slot, Snapshot>,
}

impl Default for Saved {
    fn default() -> Self {
        Saved {
            slots: BTreeMap::new(),
            logs: BTreeMap::new(),
            next_port: FIRST_PORT,
            snapshots: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Default)]
struct State {
    saved: Saved,
    behaviour: HashMap<Release, Behaviour>,
    operations: Vec<EnvOp>,
    /// How many times each release was [rebuilt](InMemoryEnvironment::rebuild): its name
    /// resolves to the artifact of that build.
    builds: HashMap<Release, u32>,
    /// Artifacts [removed](InMemoryEnvironment::remove_artifact).
    gone: HashSet<String>,
    /// The configuration [set](InMemoryEnvironment::set_config) (empty by default).
    config: String,
    /// Instances per slot ([`with_replicas`](InMemoryEnvironment::with_replicas); 0 means 1).
    replicas: usize,
    /// Instances [marked unhealthy](InMemoryEnvironment::mark_instance_unhealthy) by endpoint.
    unhealthy_instances: HashSet<Endpoint>,
}

impl State {
    fn status(&self, slot: Slot) -> SlotStatus {
        self.saved.slots.get(&slot).cloned().unwrap_or(SlotStatus::Absent)
    }

    fn log(&mut self, slot: Slot, line: String) {
        self.saved.logs.entry(slot).or_default().push(line);
    }

    fn behaviour(&self, release: &Release) -> Behaviour {
        self.behaviour.get(release).cloned().unwrap_or_default()
    }

    /// Starts `artifact` (a build of `release`) in `slot` as the release's knobs say, replacing
    /// what the slot held; records the slot's snapshot.
    fn start(&mut self, slot: Slot, release: &Release, artifact: String) -> Result<Endpoints> {
        let behaviour = self.behaviour(release);
        if behaviour.missing {
            self.log(slot, format!("cannot start {release} in {slot}: release not found"));
            return Err(Error::NotFound {
                what: "release",
                name: release.to_string(),
            });
        }
        if let Some(reason) = behaviour.fail_deploy {
            self.log(slot, format!("failed to start {release} in {slot}: {reason}"));
            return Err(Error::backend("memory", reason, false));
        }
        if let Some(old) = self.status(slot).release().cloned() {
            self.log(slot, format!("removing {old} from {slot}"));
        }
        self.log(slot, format!("starting {release} in {slot}"));
        let fresh: Vec<Endpoint> = (0..self.replicas.max(1)).map(|_| self.fresh_endpoint()).collect();
        // Fresh ports are never handed out twice (the counter only wraps after 45,000 of them).
        #[allow(clippy::expect_used)]
        let endpoints = Endpoints::new(fresh).expect("fresh endpoints are distinct and at least one");
        let status = match behaviour.exit_on_start {
            Some(code) => {
                self.log(slot, format!("{release} exited with code {code}"));
                SlotStatus::Stopped {
                    release: release.clone(),
                    exit_code: Some(code),
                }
            }
            None => {
                self.log(slot, format!("{release} listening on {endpoints}"));
                SlotStatus::Running {
                    release: release.clone(),
                    endpoints: endpoints.clone(),
                }
            }
        };
        self.saved.slots.insert(slot, status);
        let snapshot = Snapshot::new(Some(artifact), self.fingerprint());
        self.saved.snapshots.insert(slot, snapshot);
        Ok(endpoints)
    }

    fn fresh_endpoint(&mut self) -> Endpoint {
        let port = self.saved.next_port;
        self.saved.next_port = port.checked_add(1).unwrap_or(FIRST_PORT);
        // Ports start at FIRST_PORT and wrap back to it, never to 0, so this cannot fail.
        #[allow(clippy::expect_used)]
        Endpoint::new("127.0.0.1", port).expect("a loopback address and a non-zero port are valid")
    }
}

/// An [`Environment`] that keeps its two slots in memory: nothing runs, nothing listens.
///
/// Each deploy creates a new instance with a fresh endpoint `127.0.0.1:<port>` (ports count up
/// from 20000; nothing actually listens there) and replaces whatever instance the slot held;
/// [`with_replicas`](Self::with_replicas) makes it N instances, each with its own endpoint. Each
/// slot keeps a log (`"starting v2 in green"`, …) that [`logs`](Environment::logs) returns.
///
/// Releases behave well unless told otherwise, before they are deployed, with
/// [`fail_deploy`](Self::fail_deploy), [`mark_unhealthy`](Self::mark_unhealthy),
/// [`ignore_sigterm`](Self::ignore_sigterm) and [`exit_on_start`](Self::exit_on_start).
/// Health is read through [`health_probe`](Self::health_probe).
///
/// Each release starts from an artifact, `memory:<release>#<build>`, which
/// [`snapshot`](Environment::snapshot) reports with the fingerprint of the configuration
/// ([`set_config`](Self::set_config)); [`rebuild`](Self::rebuild) moves a release's name to a new
/// build (as a retagged image) and [`remove_artifact`](Self::remove_artifact) removes one, so
/// tests can pin, move and lose what a release ran.
///
/// Clones share the same state, so a test can keep one handle while the code under test owns
/// another. Passes [`environment_conformance`](crate::backend::environment_conformance).
///
/// # Persistence
/// [`new`](Self::new) keeps everything in memory: it is gone when the process ends.
/// [`persistent`](Self::persistent) also keeps what runs in each slot (with its snapshot), the
/// slots' logs and the port counter in a JSON file, saved (atomically) before every [`deploy`](Environment::deploy),
/// [`stop`](Environment::stop) and [`remove`](Environment::remove) returns, so a process started
/// after a crash (say, a deployer resuming after `kill -9`) finds the slots as they were. The
/// behaviour knobs ([`mark_unhealthy`](Self::mark_unhealthy), [`rebuild`](Self::rebuild),
/// [`set_config`](Self::set_config), …) and
/// [`operations`](Self::operations) are not saved: set the knobs again in the new process.
/// The file is read once, when opened: one process at a time should use it.
#[derive(Debug, Clone, Default)]
pub struct InMemoryEnvironment {
    state: Arc<Mutex<State>>,
    /// Where the state is saved, for a persistent environment.
    file: Option<Arc<StateFile>>,
    /// Held while a change is saved, so changes reach the file in order.
    saving: Arc<tokio::sync::Mutex<()>>,
}

impl InMemoryEnvironment {
    /// An environment with both slots absent, kept in memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// An environment saved in the JSON file at `path` (see [Persistence](Self#persistence)):
    /// as the file left it, or with both slots absent if there is no file yet. The file (and its
    /// directory) is created by the first change.
    ///
    /// # Errors
    /// [`Error::Backend`] (permanent) when the file cannot be read or is not an environment's
    /// state (corrupt or truncated): starting empty instead would forget what runs.
    ///
    /// Blocking (reads the file): harmless in a test's setup; on a busy runtime, call it from
    /// `spawn_blocking`.
    pub fn persistent(path: impl Into<PathBuf>) -> Result<Self> {
        let file = StateFile::new(path.into(), "memory");
        let saved = file.load()?.unwrap_or_default();
        Ok(InMemoryEnvironment {
            state: Arc::new(Mutex::new(State {
                saved,
                ..State::default()
            })),
            file: Some(Arc::new(file)),
            saving: Arc::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `change` to the state and, if persistent, saves what it changed (on the blocking
    /// pool) before returning. Changes are made one at a time (`saving`), so the file always
    /// follows them in order; a reader may see a change while it is being saved. If saving fails,
    /// the change to the saved state is undone and the error returned.
    async fn change<T>(&self, change: impl FnOnce(&mut State) -> T + Send) -> Result<T> {
        let Some(file) = &self.file else {
            return Ok(change(&mut self.lock()));
        };
        let _turn = self.saving.lock().await;
        let (out, before, json) = {
            let mut state = self.lock();
            let before = state.saved.clone();
            let out = change(&mut state);
            if state.saved == before {
                return Ok(out);
            }
            let json = file.encode(&state.saved);
            (out, before, json)
        };
        let saved = match json {
            Ok(json) => Arc::clone(file).store(json).await,
            Err(e) => Err(e),
        };
        if let Err(e) = saved {
            self.lock().saved = before;
            return Err(e);
        }
        Ok(out)
    }

    /// Each deploy starts `replicas` instances (at least one), each at its own fresh endpoint.
    /// Not saved by a [persistent](Self::persistent) environment: set it again after a restart.
    pub fn with_replicas(self, replicas: usize) -> Self {
        self.lock().replicas = replicas.max(1);
        self
    }

    /// The instance at `endpoint` answers unhealthy to the [`InMemoryHealthProbe`], whatever its
    /// release (one bad replica of several).
    pub fn mark_instance_unhealthy(&self, endpoint: &Endpoint) -> &Self {
        self.lock().unhealthy_instances.insert(endpoint.clone());
        self
    }

    fn set(&self, release: &Release, change: impl FnOnce(&mut Behaviour)) -> &Self {
        change(self.lock().behaviour.entry(release.clone()).or_default());
        self
    }

    /// Deploying `release` fails with a permanent [`Error::Backend`] carrying `reason`; the slot
    /// keeps what it had.
    pub fn fail_deploy(&self, release: &Release, reason: impl Into<String>) -> &Self {
        let reason = reason.into();
        self.set(release, |b| b.fail_deploy = Some(reason))
    }

    /// `release` is missing, as an image not present would be: [`deploy`](Environment::deploy)
    /// and [`check_release`](Environment::check_release) fail with [`Error::NotFound`] naming it;
    /// the slot keeps what it had.
    pub fn mark_missing(&self, release: &Release) -> &Self {
        self.set(release, |b| b.missing = true)
    }

    /// `release` starts, but the [`InMemoryHealthProbe`] reports it unhealthy.
    pub fn mark_unhealthy(&self, release: &Release) -> &Self {
        self.set(release, |b| b.unhealthy = true)
    }

    /// Undoes [`mark_unhealthy`](Self::mark_unhealthy), also for an instance already running.
    pub fn mark_healthy(&self, release: &Release) -> &Self {
        self.set(release, |b| b.unhealthy = false)
    }

    /// `release` ignores SIGTERM: [`stop`](Environment::stop) waits the whole grace period (in
    /// [`tokio::time`], so tests with paused time do not wait) and reports
    /// [`StopOutcome::Killed`].
    pub fn ignore_sigterm(&self, release: &Release) -> &Self {
        self.set(release, |b| b.ignore_sigterm = true)
    }

    /// `release` exits with `code` as soon as it starts: [`deploy`](Environment::deploy) returns
    /// its endpoints, but the slot shows [`SlotStatus::Stopped`] with that exit code.
    pub fn exit_on_start(&self, release: &Release, code: i64) -> &Self {
        self.set(release, |b| b.exit_on_start = Some(code))
    }

    /// One instance of `slot` crashes (exit code 137) while the others keep running: the slot is
    /// [`Stopped`](SlotStatus::Stopped) (not every instance runs), as a real engine reports a
    /// slot with a dead replica. Not recorded in [`operations`](Self::operations) or saved.
    pub fn crash_an_instance(&self, slot: Slot) -> &Self {
        let mut state = self.lock();
        if let Some(release) = state.status(slot).release().cloned() {
            state.log(
                slot,
                format!("an instance of {release} in {slot} exited with code {KILLED_EXIT_CODE}"),
            );
            state.saved.slots.insert(
                slot,
                SlotStatus::Stopped {
                    release,
                    exit_code: Some(KILLED_EXIT_CODE),
                },
            );
        }
        self
    }

    /// What runs in `slot`, without an `await`.
    pub fn status_now(&self, slot: Slot) -> SlotStatus {
        self.lock().status(slot)
    }

    /// Every deploy, stop and remove so far, in the order they returned. A call whose future was
    /// dropped before it returned is not recorded.
    pub fn operations(&self) -> Vec<EnvOp> {
        self.lock().operations.clone()
    }

    /// A probe that reports the health of whatever this environment runs at the target's slot.
    pub fn health_probe(&self) -> Arc<InMemoryHealthProbe> {
        Arc::new(InMemoryHealthProbe { env: self.clone() })
    }
}

#[async_trait]
impl Environment for InMemoryEnvironment {
    fn name(&self) -> &str {
        "memory"
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        EnvironmentCapabilities::none().with_logs(true)
    }

    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        tracing::debug!(%slot, %release, "memory: deploy");
        self.change(|state| {
            state.operations.push(EnvOp::Deploy {
                slot,
                release: release.clone(),
            });
            let artifact = state.artifact_of(release);
            if state.gone.contains(&artifact) {
                state.log(slot, format!("cannot start {release} in {slot}: release not found"));
                return Err(Error::NotFound {
                    what: "release",
                    name: release.to_string(),
                });
            }
            state.start(slot, release, artifact)
        })
        .await?
    }

    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        Ok(self.status_now(slot))
    }

    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        tracing::debug!(%slot, ?grace, "memory: stop");
        let running = self
            .change(|state| {
                let SlotStatus::Running { release, endpoints } = state.status(slot) else {
                    state.operations.push(EnvOp::Stop {
                        slot,
                        grace,
                        outcome: StopOutcome::NotRunning,
                    });
                    return None;
                };
                state.log(slot, format!("{release} received SIGTERM"));
                let ignores = state.behaviour(&release).ignore_sigterm;
                Some((release, endpoints, ignores))
            })
            .await?;
        let Some((release, endpoints, ignores)) = running else {
            return Ok(StopOutcome::NotRunning);
        };
        let (outcome, exit_code, line) = if ignores {
            tokio::time::sleep(grace).await;
            let line = format!("{release} ignored SIGTERM; killed after {grace:?}");
            (StopOutcome::Killed, KILLED_EXIT_CODE, line)
        } else {
            let line = format!("{release} exited with code 0");
            (StopOutcome::Graceful { exit_code: Some(0) }, 0, line)
        };
        self.change(|state| {
            // Only the instance we signalled stops: a deploy during the grace period replaced it.
            if state.status(slot).endpoints() == Some(&endpoints) {
                state.log(slot, line);
                state.saved.slots.insert(
                    slot,
                    SlotStatus::Stopped {
                        release,
                        exit_code: Some(exit_code),
                    },
                );
            }
            state.operations.push(EnvOp::Stop { slot, grace, outcome });
        })
        .await?;
        Ok(outcome)
    }

    async fn remove(&self, slot: Slot) -> Result<()> {
        tracing::debug!(%slot, "memory: remove");
        self.change(|state| {
            state.saved.slots.remove(&slot);
            state.saved.logs.remove(&slot);
            state.saved.snapshots.remove(&slot);
            state.operations.push(EnvOp::Remove { slot });
        })
        .await
    }

    /// The slot's last `lines` lines, oldest first; empty for a slot that was never deployed to or
    /// was removed.
    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        let state = self.lock();
        let all = state.saved.logs.get(&slot).map(Vec::as_slice).unwrap_or_default();
        Ok(all[all.len().saturating_sub(lines)..].to_vec())
    }

    /// [`Present`](ReleaseCheck::Present) unless the release was
    /// [marked missing](InMemoryEnvironment::mark_missing). Records no operation.
    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        if self.lock().behaviour(release).missing {
            return Err(Error::NotFound {
                what: "release",
                name: release.to_string(),
            });
        }
        Ok(ReleaseCheck::Present)
    }

    /// The artifact the slot's instance was started from and the configuration's fingerprint
    /// then; `None` for an empty slot.
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        let state = self.lock();
        Ok(match state.status(slot) {
            SlotStatus::Absent => None,
            SlotStatus::Running { .. } | SlotStatus::Stopped { .. } => state.saved.snapshots.get(&slot).cloned(),
        })
    }

    /// Starts the pinned artifact (the release's current build when the snapshot has none),
    /// under today's configuration; [`Error::NotFound`] naming the artifact and the release when
    /// it was [removed](InMemoryEnvironment::remove_artifact).
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        tracing::debug!(%slot, %release, %snapshot, "memory: deploy snapshot");
        self.change(|state| {
            state.operations.push(EnvOp::DeploySnapshot {
                slot,
                release: release.clone(),
                artifact: snapshot.artifact.clone(),
            });
            let artifact = snapshot
                .artifact()
                .map_or_else(|| state.artifact_of(release), str::to_string);
            if let Some(gone) = state.gone_artifact(release, &artifact) {
                state.log(slot, format!("cannot start {release} in {slot}: {gone}"));
                return Err(gone);
            }
            state.start(slot, release, artifact)
        })
        .await?
    }

    /// [`Present`](ReleaseCheck::Present) unless the artifact was
    /// [removed](InMemoryEnvironment::remove_artifact) (or the release marked missing).
    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        let state = self.lock();
        let artifact = snapshot
            .artifact()
            .map_or_else(|| state.artifact_of(release), str::to_string);
        match state.gone_artifact(release, &artifact) {
            Some(gone) => Err(gone),
            None if state.behaviour(release).missing => Err(Error::NotFound {
                what: "release",
                name: release.to_string(),
            }),
            None => Ok(ReleaseCheck::Present),
        }
    }
}

/// A [`HealthProbe`] over an [`InMemoryEnvironment`]; made by
/// [`InMemoryEnvironment::health_probe`].
///
/// [`Healthy`](ProbeOutcome::Healthy) when the target's slot runs a release with an instance at
/// the target's endpoint, that release is not [marked unhealthy](InMemoryEnvironment::mark_unhealthy)
/// and that instance not [either](InMemoryEnvironment::mark_instance_unhealthy).
/// Otherwise [`Unhealthy`](ProbeOutcome::Unhealthy) with `"not running"`,
/// `"<release> is unhealthy"`, `"the instance at <endpoint> is unhealthy"`, or, when no instance
/// of the slot serves at the endpoint (the target is a replaced instance),
/// `"nothing serves at <endpoint>"`.
#[derive(Debug, Clone)]
pub struct InMemoryHealthProbe {
    env: InMemoryEnvironment,
}

#[async_trait]
impl HealthProbe for InMemoryHealthProbe {
    fn describe(&self) -> String {
        "in-memory health of the running release".into()
    }

    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let state = self.env.lock();
        match state.status(target.slot) {
            SlotStatus::Running { endpoints, .. } if !endpoints.contains(&target.endpoint) => {
                ProbeOutcome::Unhealthy(format!("nothing serves at {}", target.endpoint))
            }
            SlotStatus::Running { release, .. } if state.behaviour(&release).unhealthy => {
                ProbeOutcome::Unhealthy(format!("{release} is unhealthy"))
            }
            SlotStatus::Running { .. } if state.unhealthy_instances.contains(&target.endpoint) => {
                ProbeOutcome::Unhealthy(format!("the instance at {} is unhealthy", target.endpoint))
            }
            SlotStatus::Running { .. } => ProbeOutcome::Healthy,
            SlotStatus::Absent | SlotStatus::Stopped { .. } => ProbeOutcome::Unhealthy("not running".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(name: &str) -> Release {
        Release::new(name).unwrap()
    }

    fn target(slot: Slot, endpoint: Endpoint) -> ProbeTarget {
        ProbeTarget::new(slot, endpoint)
    }

    #[tokio::test]
    async fn deploy_gives_fresh_endpoints_and_replaces_the_stale_instance() {
        let env = InMemoryEnvironment::new();
        let (v1, v2) = (release("v1"), release("v2"));
        let first = env.deploy(Slot::Blue, &v1).await.unwrap();
        let second = env.deploy(Slot::Blue, &v2).await.unwrap();
        assert_eq!(first.first().authority(), "127.0.0.1:20000");
        assert_eq!(second.first().authority(), "127.0.0.1:20001");
        assert_eq!(
            env.status(Slot::Blue).await.unwrap(),
            SlotStatus::Running {
                release: v2,
                endpoints: second
            }
        );
        assert_eq!(env.status_now(Slot::Green), SlotStatus::Absent);
        let logs = env.logs(Slot::Blue, 2).await.unwrap();
        assert_eq!(logs, ["starting v2 in blue", "v2 listening on http://127.0.0.1:20001"]);
    }

    #[tokio::test]
    async fn fail_deploy_keeps_the_slot_and_logs_why() {
        let env = InMemoryEnvironment::new();
        let (v1, v2) = (release("v1"), release("v2"));
        env.fail_deploy(&v2, "image not found");
        let endpoint = env.deploy(Slot::Blue, &v1).await.unwrap();
        let err = env.deploy(Slot::Blue, &v2).await.unwrap_err();
        assert!(
            matches!(&err, Error::Backend { backend, message, temporary: false, .. }
                if backend == "memory" && message == "image not found"),
            "{err:?}"
        );
        assert_eq!(env.status_now(Slot::Blue).endpoints(), Some(&endpoint));
        let last = env.logs(Slot::Blue, 1).await.unwrap();
        assert_eq!(last, ["failed to start v2 in blue: image not found"]);
        assert_eq!(env.operations().len(), 2);
    }

    #[tokio::test]
    async fn exit_on_start_returns_an_endpoint_but_shows_stopped() {
        let env = InMemoryEnvironment::new();
        let v1 = release("v1");
        env.exit_on_start(&v1, 3);
        env.deploy(Slot::Green, &v1).await.unwrap();
        assert_eq!(
            env.status_now(Slot::Green),
            SlotStatus::Stopped {
                release: v1.clone(),
                exit_code: Some(3)
            }
        );
        let outcome = env.stop(Slot::Green, Duration::from_secs(1)).await.unwrap();
        assert_eq!(outcome, StopOutcome::NotRunning);
    }

    #[tokio::test]
    async fn stop_is_graceful_then_not_running_and_remove_empties_the_slot() {
        let env = InMemoryEnvironment::new();
        let v1 = release("v1");
        let grace = Duration::from_secs(10);
        env.deploy(Slot::Blue, &v1).await.unwrap();
        let graceful = StopOutcome::Graceful { exit_code: Some(0) };
        assert_eq!(env.stop(Slot::Blue, grace).await.unwrap(), graceful);
        assert_eq!(
            env.status_now(Slot::Blue),
            SlotStatus::Stopped {
                release: v1.clone(),
                exit_code: Some(0)
            }
        );
        assert_eq!(env.stop(Slot::Blue, grace).await.unwrap(), StopOutcome::NotRunning);
        env.remove(Slot::Blue).await.unwrap();
        env.remove(Slot::Blue).await.unwrap();
        assert_eq!(env.status_now(Slot::Blue), SlotStatus::Absent);
        assert!(env.logs(Slot::Blue, 10).await.unwrap().is_empty());
        assert_eq!(
            env.operations(),
            [
                EnvOp::Deploy {
                    slot: Slot::Blue,
                    release: v1
                },
                EnvOp::Stop {
                    slot: Slot::Blue,
                    grace,
                    outcome: graceful
                },
                EnvOp::Stop {
                    slot: Slot::Blue,
                    grace,
                    outcome: StopOutcome::NotRunning
                },
                EnvOp::Remove { slot: Slot::Blue },
                EnvOp::Remove { slot: Slot::Blue },
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn ignore_sigterm_waits_the_grace_period_then_kills() {
        let env = InMemoryEnvironment::new();
        let v1 = release("v1");
        env.ignore_sigterm(&v1);
        env.deploy(Slot::Blue, &v1).await.unwrap();
        let started = tokio::time::Instant::now();
        let outcome = env.stop(Slot::Blue, Duration::from_secs(30)).await.unwrap();
        assert_eq!(outcome, StopOutcome::Killed);
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        assert_eq!(
            env.status_now(Slot::Blue),
            SlotStatus::Stopped {
                release: v1,
                exit_code: Some(137)
            }
        );
    }

    #[tokio::test]
    async fn health_probe_follows_the_knobs() {
        let env = InMemoryEnvironment::new();
        let probe = env.health_probe();
        let v1 = release("v1");
        let stale = env.deploy(Slot::Blue, &v1).await.unwrap().first().clone();
        let endpoint = env.deploy(Slot::Blue, &v1).await.unwrap().first().clone();
        let here = target(Slot::Blue, endpoint.clone());
        assert_eq!(probe.check(&here).await, ProbeOutcome::Healthy);
        env.mark_unhealthy(&v1);
        assert_eq!(
            probe.check(&here).await,
            ProbeOutcome::Unhealthy("v1 is unhealthy".into())
        );
        env.mark_healthy(&v1);
        assert_eq!(probe.check(&here).await, ProbeOutcome::Healthy);
        assert_eq!(
            probe.check(&target(Slot::Blue, stale.clone())).await,
            ProbeOutcome::Unhealthy(format!("nothing serves at {stale}"))
        );
        let absent = target(Slot::Green, endpoint);
        assert_eq!(
            probe.check(&absent).await,
            ProbeOutcome::Unhealthy("not running".into())
        );
    }

    #[tokio::test]
    async fn a_persistent_environment_survives_reopening_without_its_knobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.json");
        let (v1, v2) = (release("v1"), release("v2"));
        let env = InMemoryEnvironment::persistent(&path).unwrap();
        assert!(!path.exists(), "nothing is written before the first change");
        env.mark_unhealthy(&v2);
        let blue = env.deploy(Slot::Blue, &v1).await.unwrap();
        env.deploy(Slot::Green, &v2).await.unwrap();
        env.stop(Slot::Green, Duration::from_secs(1)).await.unwrap();
        drop(env);

        let env = InMemoryEnvironment::persistent(&path).unwrap();
        assert_eq!(
            env.status_now(Slot::Blue),
            SlotStatus::Running {
                release: v1.clone(),
                endpoints: blue.clone()
            }
        );
        assert_eq!(
            env.status_now(Slot::Green),
            SlotStatus::Stopped {
                release: v2.clone(),
                exit_code: Some(0)
            }
        );
        let logs = env.logs(Slot::Green, 2).await.unwrap();
        assert_eq!(logs, ["v2 received SIGTERM", "v2 exited with code 0"]);
        assert!(env.operations().is_empty(), "operations are not saved");
        // The port counter was saved: no endpoint is handed out twice.
        assert_eq!(
            env.deploy(Slot::Green, &v2).await.unwrap().first().authority(),
            "127.0.0.1:20002"
        );
        // The knobs were not: v2 is healthy in this process.
        let green = env.status_now(Slot::Green).endpoints().unwrap().first().clone();
        let probe = env.health_probe();
        assert_eq!(probe.check(&target(Slot::Green, green)).await, ProbeOutcome::Healthy);
        env.remove(Slot::Blue).await.unwrap();
        drop(env);

        let env = InMemoryEnvironment::persistent(&path).unwrap();
        assert_eq!(env.status_now(Slot::Blue), SlotStatus::Absent);
        assert_eq!(env.status_now(Slot::Green).release(), Some(&v2));
    }

    #[test]
    fn a_persistent_environment_starts_empty_without_a_file_and_refuses_a_corrupt_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.json");
        let env = InMemoryEnvironment::persistent(&path).unwrap();
        assert_eq!(env.status_now(Slot::Blue), SlotStatus::Absent);
        std::fs::write(&path, br#"{"slots":{"blue":{"state":"running","#).unwrap();
        let err = InMemoryEnvironment::persistent(&path).unwrap_err();
        assert!(
            matches!(&err, Error::Backend { message, temporary: false, .. } if message.contains("corrupt")),
            "{err:?}"
        );
        std::fs::write(&path, br#"{"routes":[]}"#).unwrap();
        let err = InMemoryEnvironment::persistent(&path).unwrap_err();
        assert!(err.to_string().contains("env.json is corrupt"), "{err}");
    }

    #[tokio::test]
    async fn a_failed_save_fails_the_call_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env.json");
        let env = InMemoryEnvironment::persistent(&path).unwrap();
        // A non-empty directory where the file should be: renaming over it fails.
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("keep"), b"").unwrap();
        let err = env.deploy(Slot::Blue, &release("v1")).await.unwrap_err();
        assert!(
            matches!(&err, Error::Backend { backend, temporary: false, .. } if backend == "memory"),
            "{err:?}"
        );
        assert_eq!(env.status_now(Slot::Blue), SlotStatus::Absent);
        assert!(env.logs(Slot::Blue, 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn clones_share_state() {
        let env = InMemoryEnvironment::new();
        let v1 = release("v1");
        env.clone().deploy(Slot::Blue, &v1).await.unwrap();
        assert_eq!(env.status_now(Slot::Blue).release(), Some(&v1));
    }

    #[tokio::test]
    async fn replicas_start_together_and_each_answers_for_itself() {
        let env = InMemoryEnvironment::new().with_replicas(3);
        let probe = env.health_probe();
        let v1 = release("v1");
        let endpoints = env.deploy(Slot::Blue, &v1).await.unwrap();
        assert_eq!(endpoints.len(), 3);
        assert_eq!(env.status_now(Slot::Blue).endpoints(), Some(&endpoints));
        let second = endpoints.as_slice()[1].clone();
        env.mark_instance_unhealthy(&second);
        assert_eq!(
            probe.check(&target(Slot::Blue, endpoints.first().clone())).await,
            ProbeOutcome::Healthy
        );
        assert_eq!(
            probe.check(&target(Slot::Blue, second.clone())).await,
            ProbeOutcome::Unhealthy(format!("the instance at {second} is unhealthy"))
        );
        env.stop(Slot::Blue, Duration::from_secs(1)).await.unwrap();
        assert!(matches!(env.status_now(Slot::Blue), SlotStatus::Stopped { .. }));
    }
}
