//! [`DockerEnvironment`]: each slot a labelled container.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::backend::async_trait;
use bluegreen_core::{
    Endpoint, Endpoints, Environment, EnvironmentCapabilities, Error, Release, ReleaseCheck, Result, Slot, SlotStatus,
    Snapshot, StopOutcome,
};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, PortBinding, RestartPolicy as DockerRestart,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, ListContainersOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures_util::future::join_all;
use tracing::field::{display, Empty};
use tracing::{debug, instrument, Span};

use crate::config::{DockerConfig, Expose, RestartPolicy};
use crate::engine::Engine;
use crate::error::{backend, is_conflict, is_not_found, is_not_modified, is_port_in_use, BACKEND};
use crate::instances::{self, display_name, exit_code, in_replica_order, is_active, is_running, Found};
use crate::labels::{self, Replica, SlotLabels};
use crate::logs::{tail, with_logs};
use crate::probe::DockerHealthProbe;
use crate::{presence, spec};

/// How many log lines a failed deploy's error carries.
const ERROR_LOG_LINES: usize = 20;
/// Exit code of a process killed by SIGKILL (128 + 9).
const SIGKILL_EXIT: i64 = 137;

/// Runs an application's slots as Docker containers named `<app>-blue` and `<app>-green` — or,
/// with [`DockerConfig::replicas`] `n` > 1, `<app>-blue-1` … `<app>-blue-n` and the same for
/// green: one container per instance, each with its own endpoint.
///
/// What runs is read back from the engine (the labels in [`crate::labels`]), so a restarted
/// deployer knows what runs. Cheap to clone; clones share the connection.
///
/// - `deploy` gets the image as [`DockerConfig::pull`] says (pulling it with the
///   [`DockerConfig::registry`] credentials, or checking it is present: else [`Error::NotFound`]
///   naming it) and pins it by its registry digest when it has one, before touching anything;
///   then it removes whatever containers are in the slot (the engine never deploys into the
///   live slot; stale extras of a deploy with more replicas go too), creates and starts the
///   replicas concurrently from that one pinned image, and returns their endpoints: the published
///   host ports read back from the engine, or the containers' network addresses. If any replica
///   fails, the replicas that started are removed and the first failure (in replica order) is
///   the error, so the slot never looks `Running` with fewer instances: a container that exits
///   at once fails the deploy with its last log lines in the error, and is kept (stopped) for
///   inspection until the next deploy or `remove`; a container that cannot start (a host port in
///   use) is removed. All replicas run one image id: if the release's tag moved to another image
///   while they were being created, the deploy fails (temporary: try again) and removes them.
/// - `status` is `Running` only when every replica of the slot's latest deploy runs, with their
///   endpoints (in `Endpoints`' canonical order, by host and port); `Stopped` when any is missing or not running (with the exit code
///   of the first that exited); `Absent` when the slot has no container.
/// - `stop` is Docker's stop of every container of the slot, concurrently: the stop signal
///   (SIGTERM), up to `grace` rounded *up* to whole seconds (the Engine API's resolution), then
///   SIGKILL. It reports [`StopOutcome::Killed`] when any container exited with 137 after the
///   grace period, else `Graceful` with the first non-zero exit code in replica order (or 0).
/// - `logs` returns the container's last output lines (none when the slot has no container); with
///   several containers, up to `lines` lines of each, replica after replica, each line prefixed
///   with its container's name (`shop-green-2 | listening on 0.0.0.0:8080`).
/// - `snapshot` pins what a slot's containers run: their image id (`sha256:…`, one for all
///   replicas), its registry digest (`repo@sha256:…`) when it was pulled or pinned from a
///   registry, and a fingerprint of this configuration; `deploy_snapshot` starts that image by id,
///   so a rollback runs what ran even after the release's tag moved to another image.
///
/// Logging: only at debug level, and never the container's output (it reaches you through
/// errors and `logs`) nor environment values (`Debug` of the config shows names only).
#[derive(Debug, Clone)]
pub struct DockerEnvironment {
    engine: Engine,
    config: Arc<DockerConfig>,
}

/// A container found for a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotContainer {
    /// The container id.
    pub id: String,
    /// The container name (`shop-blue`, `shop-blue-2`), without the engine's leading `/`.
    pub name: String,
    /// What its labels say.
    pub labels: SlotLabels,
}

impl DockerEnvironment {
    /// Validates `config`, connects to its socket and checks that the engine answers.
    pub async fn connect(config: DockerConfig) -> Result<Self> {
        config.validate()?;
        let engine = Engine::from_config(&config).await?;
        Ok(DockerEnvironment::with_engine(engine, config))
    }

    /// An environment on an existing [`Engine`] (for example one shared by several
    /// applications). `config` is not validated here; call [`DockerConfig::validate`]. Its
    /// `socket` is not used: the engine is already connected.
    pub fn with_engine(engine: Engine, config: DockerConfig) -> Self {
        DockerEnvironment {
            engine,
            config: Arc::new(config),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DockerConfig {
        &self.config
    }

    /// The engine this environment runs on (a clone shares its connection).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A probe reading the Docker health (`State.Health`) of the container serving at the
    /// probed endpoint.
    pub fn health_probe(&self) -> DockerHealthProbe {
        DockerHealthProbe::new(self.clone())
    }

    /// Every container of this application, as its labels describe it, newest first.
    pub async fn containers(&self) -> Result<Vec<SlotContainer>> {
        self.list(None).await
    }

    async fn list(&self, slot: Option<Slot>) -> Result<Vec<SlotContainer>> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(labels::filter(&self.config.app, slot)),
            ..Default::default()
        };
        let mut found = self
            .engine
            .client()
            .list_containers(Some(options))
            .await
            .map_err(|e| backend(format_args!("listing the containers of {}", self.config.app), e))?;
        found.sort_by_key(|c| std::cmp::Reverse(c.created.unwrap_or(0)));
        Ok(found
            .into_iter()
            .filter_map(|c| {
                let labels = SlotLabels::parse(&self.config.app, c.labels.as_ref()?)?;
                let name = c.names.as_ref().and_then(|n| n.first()).map_or("", |n| display_name(n));
                Some(SlotContainer {
                    name: name.to_string(),
                    id: c.id?,
                    labels,
                })
            })
            .collect())
    }

    /// Every container of the slot, inspected (concurrently), newest first; those that vanished
    /// meanwhile are left out.
    pub(crate) async fn find_all(&self, slot: Slot) -> Result<Vec<Found>> {
        let containers = self.list(Some(slot)).await?;
        let inspected = join_all(containers.iter().map(|c| self.inspect(&c.id))).await;
        let mut found = Vec::with_capacity(containers.len());
        for (container, info) in containers.into_iter().zip(inspected) {
            if let Some(info) = info? {
                found.push(Found { container, info });
            }
        }
        Ok(found)
    }

    async fn inspect(&self, id: &str) -> Result<Option<ContainerInspectResponse>> {
        match self
            .engine
            .client()
            .inspect_container(id, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => Ok(Some(info)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(backend(format_args!("inspecting container {id}"), e)),
        }
    }

    /// Checks that image `id`, pinned by a snapshot of `release`, is still present: else
    /// [`Error::NotFound`] naming the image id and the release.
    async fn require_pinned(&self, release: &Release, id: &str) -> Result<()> {
        presence::require_pinned(&self.engine, release, id).await.map(drop)
    }

    /// Replaces `slot`'s containers with [`DockerConfig::replicas`] new ones of `image` (a
    /// reference or an image id, known to be present) for `release`, starts them concurrently
    /// and returns their endpoints (in canonical order). On a failure, removes the replicas that
    /// started (see the type's docs).
    async fn start_image(&self, slot: Slot, release: &Release, image: &str) -> Result<Endpoints> {
        self.remove(slot).await?;
        let of = self.config.replicas;
        let replicas = (1..=of).filter_map(|index| Replica::new(index, of));
        let results = join_all(replicas.map(|replica| self.start_replica(slot, release, image, replica))).await;
        let failed = results.iter().filter(|r| r.is_err()).count();
        if failed > 0 {
            let started = results.iter().filter_map(|r| r.as_ref().ok());
            join_all(started.map(|(id, _, _)| self.remove_container(id))).await;
            let first = results.into_iter().find_map(|r| r.err());
            return Err(match first {
                Some(Error::Backend {
                    backend,
                    message,
                    temporary,
                    source,
                }) if failed > 1 => Error::Backend {
                    backend,
                    message: format!("{message}\n({failed} of {of} replicas failed; the others were removed)"),
                    temporary,
                    source,
                },
                Some(e) => e,
                None => Error::backend(BACKEND, "a replica failed without an error", false),
            });
        }
        let started: Vec<(String, Endpoint, Option<String>)> = results.into_iter().filter_map(Result::ok).collect();
        let images: Vec<&str> = started.iter().filter_map(|(_, _, image)| image.as_deref()).collect();
        if images.windows(2).any(|pair| pair[0] != pair[1]) {
            join_all(started.iter().map(|(id, _, _)| self.remove_container(id))).await;
            return Err(Error::backend(
                BACKEND,
                format!(
                    "the replicas of {slot} were created from different images ({}): {image} moved during the \
                     deploy; they were removed, deploy again",
                    images.join(", ")
                ),
                true,
            ));
        }
        Endpoints::new(started.into_iter().map(|(_, endpoint, _)| endpoint))
    }

    /// Creates and starts `replica` of `slot`: its container id, endpoint and image id.
    async fn start_replica(
        &self,
        slot: Slot,
        release: &Release,
        image: &str,
        replica: Replica,
    ) -> Result<(String, Endpoint, Option<String>)> {
        let name = self.config.replica_name(slot, replica.index);
        debug!(%slot, %release, %image, %name, "creating container");
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = match self
            .engine
            .client()
            .create_container(Some(options), self.create_body(slot, release, image, replica))
            .await
        {
            Ok(created) => created,
            Err(e) if is_conflict(&e) => {
                return Err(Error::backend(
                    "docker",
                    format!(
                        "container name {name} is taken by a container that is not {slot} of {}: {e}",
                        self.config.app
                    ),
                    false,
                ))
            }
            Err(e) if is_not_found(&e) => {
                return Err(Error::NotFound {
                    what: "image or network",
                    name: format!("{image} ({e})"),
                })
            }
            Err(e) => return Err(backend(format_args!("creating container {name}"), e)),
        };
        if let Err(e) = self.engine.client().start_container(&created.id, None).await {
            let _ = self.remove_container(&created.id).await;
            let port = self
                .config
                .expose
                .replica_host_port(slot, replica.index)
                .filter(|p| *p != 0);
            return Err(match port {
                Some(port) if is_port_in_use(&e) => Error::backend_caused_by(
                    BACKEND,
                    format!("starting container {name}: host port {port} for the {slot} slot is already in use"),
                    false,
                    e,
                ),
                _ => backend(format_args!("starting container {name}"), e),
            });
        }
        let info = self.inspect(&created.id).await?.ok_or_else(|| Error::NotFound {
            what: "container (removed right after start)",
            name: name.clone(),
        })?;
        if !is_running(&info) {
            if self.config.restart != RestartPolicy::No {
                // Otherwise Docker keeps restarting it (and holding its port); it is kept, stopped,
                // for its logs.
                let options = StopContainerOptions {
                    t: Some(0),
                    signal: None,
                };
                let _ = self.engine.client().stop_container(&created.id, Some(options)).await;
            }
            let logs = self.logs_or_note(&created.id).await;
            let code = exit_code(&info).map_or("unknown".into(), |c| c.to_string());
            return Err(Error::backend(
                BACKEND,
                with_logs(
                    format!("container {name} ({image}) exited at once with code {code}"),
                    &logs,
                ),
                false,
            ));
        }
        match self.endpoint_of(&info) {
            Ok(endpoint) => Ok((created.id, endpoint, info.image.filter(|id| !id.is_empty()))),
            Err(e) => {
                let _ = self.remove_container(&created.id).await;
                Err(e)
            }
        }
    }

    fn create_body(&self, slot: Slot, release: &Release, image: &str, replica: Replica) -> ContainerCreateBody {
        let c = &*self.config;
        let port = format!("{}/tcp", c.container_port);
        let port_bindings = match &c.expose {
            Expose::Published { host_ip, .. } => {
                let host_port = c.expose.replica_host_port(slot, replica.index).filter(|p| *p != 0);
                Some(
                    [(
                        port.clone(),
                        Some(vec![PortBinding {
                            host_ip: Some(host_ip.to_string()),
                            host_port: Some(host_port.map(|p| p.to_string()).unwrap_or_default()),
                        }]),
                    )]
                    .into(),
                )
            }
            Expose::NetworkAddress => None,
        };
        let restart = match c.restart {
            RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
            RestartPolicy::OnFailure { max_retries } => {
                (RestartPolicyNameEnum::ON_FAILURE, Some(i64::from(max_retries)))
            }
            RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
            RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
        };
        ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(spec::env_list(&c.env)),
            cmd: c.command.clone(),
            labels: Some(labels::for_deploy(&c.app, slot, release, replica, &c.labels)),
            exposed_ports: Some(vec![port]),
            stop_timeout: Some(grace_seconds(c.stop_grace)),
            healthcheck: c.health_check.as_ref().map(spec::health_config),
            host_config: Some(HostConfig {
                init: Some(c.init),
                port_bindings,
                network_mode: c.network.clone(),
                restart_policy: Some(DockerRestart {
                    name: Some(restart.0),
                    maximum_retry_count: restart.1,
                }),
                memory: c.memory_bytes,
                nano_cpus: c.cpus.map(|cpus| (cpus * 1e9) as i64),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Where the container serves, from its inspection.
    pub(crate) fn endpoint_of(&self, info: &ContainerInspectResponse) -> Result<Endpoint> {
        let c = &*self.config;
        let name = info.name.as_deref().unwrap_or("?").trim_start_matches('/');
        let settings = info.network_settings.as_ref();
        match &c.expose {
            Expose::Published { .. } => {
                let key = format!("{}/tcp", c.container_port);
                let binding = settings
                    .and_then(|s| s.ports.as_ref())
                    .and_then(|ports| ports.get(&key).cloned().flatten())
                    .and_then(|bindings| bindings.into_iter().next())
                    .ok_or_else(|| {
                        Error::backend(BACKEND, format!("container {name} has no published port {key}"), false)
                    })?;
                let port = binding
                    .host_port
                    .as_deref()
                    .and_then(|p| p.parse::<u16>().ok())
                    .ok_or_else(|| {
                        Error::backend(
                            BACKEND,
                            format!("container {name}: unreadable host port {binding:?}"),
                            false,
                        )
                    })?;
                let host = match binding.host_ip.as_deref() {
                    None | Some("") | Some("0.0.0.0") => "127.0.0.1",
                    Some("::") => "::1",
                    Some(ip) => ip,
                };
                Endpoint::new(host, port)
            }
            Expose::NetworkAddress => {
                let networks = settings.and_then(|s| s.networks.as_ref());
                let ip = networks
                    .and_then(|n| match &c.network {
                        Some(network) => n.get(network),
                        None => n.get("bridge").or_else(|| n.values().next()),
                    })
                    .and_then(|e| e.ip_address.clone())
                    .filter(|ip| !ip.is_empty())
                    .ok_or_else(|| {
                        Error::backend(BACKEND, format!("container {name} has no network address"), false)
                    })?;
                Endpoint::new(ip, c.container_port)
            }
        }
    }

    /// Removes container `id` (killing it if it runs); gone already is fine.
    async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        match self.engine.client().remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // "removal already in progress": someone else is removing it.
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(backend(format_args!("removing container {id}"), e)),
        }
    }

    /// Docker's stop of container `id` of `slot`: SIGTERM, up to `grace` (whole seconds, rounded
    /// up), then SIGKILL; `NotRunning` when it was gone or stopped meanwhile.
    async fn stop_container(&self, slot: Slot, id: &str, grace: Duration) -> Result<StopOutcome> {
        let seconds = grace_seconds(grace);
        let options = StopContainerOptions {
            t: Some(i32::try_from(seconds).unwrap_or(i32::MAX)),
            signal: None,
        };
        // The call lasts up to the grace period: give the client that much more patience.
        let patient = self
            .engine
            .client()
            .clone()
            .with_timeout(Duration::from_secs(seconds.unsigned_abs() + 60));
        let started = Instant::now();
        match patient.stop_container(id, Some(options)).await {
            Ok(()) => {}
            // Gone, or stopped by someone else meanwhile (304 Not Modified).
            Err(e) if is_not_found(&e) || is_not_modified(&e) => return Ok(StopOutcome::NotRunning),
            Err(e) => return Err(backend(format_args!("stopping container {id}"), e)),
        }
        let took = started.elapsed();
        let code = match self.inspect(id).await? {
            Some(info) => exit_code(&info),
            None => None,
        };
        let waited_out = took + Duration::from_millis(50) >= Duration::from_secs(seconds.unsigned_abs());
        debug!(%slot, %id, ?took, ?code, "stopped");
        if code == Some(SIGKILL_EXIT) && waited_out {
            Ok(StopOutcome::Killed)
        } else {
            Ok(StopOutcome::Graceful { exit_code: code })
        }
    }

    async fn logs_or_note(&self, id: &str) -> Vec<String> {
        tail(self.engine.client(), id, ERROR_LOG_LINES)
            .await
            .unwrap_or_else(|e| vec![format!("(logs unavailable: {})", e.chain())])
    }
}

/// What stopping a slot's containers (in replica order) adds up to: `Killed` if any was killed;
/// else `Graceful` with the first non-zero exit code, else the first code known; `NotRunning`
/// when none was running.
fn combine_stops(outcomes: &[StopOutcome]) -> StopOutcome {
    if outcomes.contains(&StopOutcome::Killed) {
        return StopOutcome::Killed;
    }
    let codes: Vec<Option<i64>> = outcomes
        .iter()
        .filter_map(|o| match o {
            StopOutcome::Graceful { exit_code } => Some(*exit_code),
            _ => None,
        })
        .collect();
    if codes.is_empty() {
        return StopOutcome::NotRunning;
    }
    let exit_code = codes
        .iter()
        .flatten()
        .find(|c| **c != 0)
        .or_else(|| codes.iter().flatten().next())
        .copied();
    StopOutcome::Graceful { exit_code }
}

/// `grace` in whole seconds, rounded up (the Engine API's stop timeout resolution).
fn grace_seconds(grace: Duration) -> i64 {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[async_trait]
impl Environment for DockerEnvironment {
    fn name(&self) -> &str {
        BACKEND
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        EnvironmentCapabilities::none().with_logs(true)
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, %release))]
    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        let image = self.config.image.image_for(release)?;
        // Pulled (as the config's `pull` says) and pinned before the slot is touched.
        let image = crate::pull::prepare(&self.engine, &self.config, &image).await?;
        self.start_image(slot, release, &image).await
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, release = Empty))]
    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        let found = self.find_all(slot).await?;
        let Some(latest) = instances::latest(&found) else {
            return Ok(SlotStatus::Absent);
        };
        Span::current().record("release", display(&latest.release));
        match latest.all_running() {
            Some(running) => {
                let endpoints = running.iter().map(|f| self.endpoint_of(&f.info));
                Ok(SlotStatus::Running {
                    endpoints: Endpoints::new(endpoints.collect::<Result<Vec<_>>>()?)?,
                    release: latest.release,
                })
            }
            None => Ok(SlotStatus::Stopped {
                exit_code: latest.exit_code(),
                release: latest.release,
            }),
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(app = %self.config.app, %slot, release = Empty, ?grace)
    )]
    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let found = in_replica_order(self.find_all(slot).await?);
        if let Some(latest) = instances::latest(&found) {
            Span::current().record("release", display(&latest.release));
        }
        let active: Vec<&Found> = found.iter().filter(|f| is_active(&f.info)).collect();
        if active.is_empty() {
            return Ok(StopOutcome::NotRunning);
        }
        let outcomes = join_all(active.iter().map(|f| self.stop_container(slot, &f.container.id, grace))).await;
        let outcomes = outcomes.into_iter().collect::<Result<Vec<StopOutcome>>>()?;
        Ok(combine_stops(&outcomes))
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn remove(&self, slot: Slot) -> Result<()> {
        let containers = self.list(Some(slot)).await?;
        join_all(containers.iter().map(|c| self.remove_container(&c.id)))
            .await
            .into_iter()
            .collect()
    }

    /// Whether the image `release` maps to can be started, nothing pulled:
    /// [`ReleaseCheck::Present`], or the error `deploy` would fail with. With
    /// [`Pull::Never`](crate::Pull::Never) (or `Missing` and the image present) an image
    /// inspect ([`Error::NotFound`] naming the image); otherwise the registry is asked for the
    /// manifest through the engine, with the credentials: [`Error::NotFound`] naming the
    /// reference when the tag is missing, a temporary [`Error::Backend`] naming an unreachable
    /// registry, a permanent one naming the registry and user it refused.
    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        let image = self.config.image.image_for(release)?;
        crate::pull::check(&self.engine, &self.config, &image).await
    }

    /// The image id (`sha256:…`) the slot's containers were created from, whatever tag named
    /// it (one for all replicas: `deploy` makes sure of it), and the fingerprint of this
    /// environment's configuration (all but `socket` and `image`); `None` when the slot has no
    /// container.
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        let found = self.find_all(slot).await?;
        match instances::latest(&found) {
            Some(latest) => {
                let replicas: Vec<&Found> = latest.replicas.iter().flatten().copied().collect();
                let first = instances::one_image(slot, &replicas)?;
                crate::snapshot::of_container(&first.info, &self.config).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Starts the pinned image by its id (not the release's tag, which may have moved), as
    /// `deploy` would; by its registry digest when the snapshot has one that still names that
    /// image (nothing is pulled). [`Error::NotFound`] naming the image id and the release when the image is
    /// gone, before anything is touched; a snapshot without an image deploys by name.
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, %release))]
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        let Some(id) = snapshot.artifact() else {
            return self.deploy(slot, release).await;
        };
        self.require_pinned(release, id).await?;
        let image = crate::pull::for_snapshot(&self.engine, id, snapshot.digest()).await;
        self.start_image(slot, release, &image).await
    }

    /// Whether the pinned image id is present (an image inspect; nothing is pulled):
    /// [`ReleaseCheck::Present`], or [`Error::NotFound`] naming the image id and the release.
    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        match snapshot.artifact() {
            Some(id) => self.require_pinned(release, id).await.map(|()| ReleaseCheck::Present),
            None => self.check_release(release).await,
        }
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, release = Empty))]
    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        // No container, no output: empty, so a failed deploy's report is not cluttered with a
        // "not found" where there was never anything to read. `status` tells the two apart.
        let mut containers = self.list(Some(slot)).await?;
        let Some(newest) = containers.first() else {
            return Ok(Vec::new());
        };
        Span::current().record("release", display(&newest.labels.release));
        if containers.len() == 1 && newest.labels.replica == Replica::ONLY {
            return tail(self.engine.client(), &newest.id, lines).await;
        }
        // Stable: equal replicas keep the newest first.
        containers.sort_by_key(|c| c.labels.replica.index);
        let tails = join_all(containers.iter().map(|c| tail(self.engine.client(), &c.id, lines))).await;
        let mut out = Vec::new();
        for (container, tail) in containers.iter().zip(tails) {
            out.extend(tail?.into_iter().map(|line| format!("{} | {line}", container.name)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_rounds_up_to_whole_seconds() {
        assert_eq!(grace_seconds(Duration::ZERO), 0);
        assert_eq!(grace_seconds(Duration::from_millis(1)), 1);
        assert_eq!(grace_seconds(Duration::from_secs(2)), 2);
        assert_eq!(grace_seconds(Duration::from_millis(2500)), 3);
    }

    #[test]
    fn a_slot_stops_killed_if_any_replica_was_killed_else_with_the_first_failure() {
        let graceful = |code| StopOutcome::Graceful { exit_code: code };
        assert_eq!(
            combine_stops(&[graceful(Some(0)), StopOutcome::Killed, StopOutcome::NotRunning]),
            StopOutcome::Killed
        );
        assert_eq!(
            combine_stops(&[graceful(Some(0)), graceful(None), graceful(Some(3)), graceful(Some(1))]),
            graceful(Some(3))
        );
        assert_eq!(combine_stops(&[graceful(None), graceful(Some(0))]), graceful(Some(0)));
        assert_eq!(
            combine_stops(&[StopOutcome::NotRunning, graceful(None)]),
            graceful(None)
        );
        assert_eq!(combine_stops(&[StopOutcome::NotRunning]), StopOutcome::NotRunning);
    }
}
