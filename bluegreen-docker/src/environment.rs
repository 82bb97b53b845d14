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
use tracing::field::{display, Empty};
use tracing::{debug, instrument, Span};

use crate::config::{DockerConfig, Expose, RestartPolicy};
use crate::engine::Engine;
use crate::error::{backend, is_conflict, is_not_found, is_not_modified, is_port_in_use, BACKEND};
use crate::labels::{self, SlotLabels};
use crate::logs::{tail, with_logs};
use crate::probe::DockerHealthProbe;
use crate::{presence, spec};

/// How many log lines a failed deploy's error carries.
const ERROR_LOG_LINES: usize = 20;
/// Exit code of a process killed by SIGKILL (128 + 9).
const SIGKILL_EXIT: i64 = 137;

/// Runs an application's slots as Docker containers named `<app>-blue` and `<app>-green`.
///
/// What runs is read back from the engine (the labels in [`crate::labels`]), so a restarted
/// deployer knows what runs. Cheap to clone; clones share the connection.
///
/// - `deploy` checks that the image exists (else [`Error::NotFound`] naming it) before touching
///   anything, replaces whatever container is in the slot (the engine never deploys into the live
///   slot), creates and starts the new one, and returns its endpoint: the published host port
///   read back from the engine, or the container's network address. A container that exits at
///   once fails the deploy with its last log lines in the error, and is kept (stopped) for
///   inspection until the next deploy or `remove`. A container that cannot start (a host port
///   in use) is removed.
/// - `stop` is Docker's stop: the stop signal (SIGTERM), up to `grace` rounded *up* to whole
///   seconds (the Engine API's resolution), then SIGKILL. It reports
///   [`StopOutcome::Killed`] when the container exited with 137 after the grace period.
/// - `logs` returns the container's last output lines (none when the slot has no container).
/// - `snapshot` pins what a slot's container runs: its image id (`sha256:…`) and a fingerprint of
///   this configuration; `deploy_snapshot` starts that image by id, so a rollback runs what ran
///   even after the release's tag moved to another image.
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

    /// A probe reading the Docker health (`State.Health`) of this application's containers.
    pub fn health_probe(&self) -> DockerHealthProbe {
        DockerHealthProbe::new(self.engine.clone(), self.config.app.clone())
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
                Some(SlotContainer { id: c.id?, labels })
            })
            .collect())
    }

    /// The slot's container and its inspection; `None` when there is none (or it vanished).
    async fn find(&self, slot: Slot) -> Result<Option<(SlotContainer, ContainerInspectResponse)>> {
        for container in self.list(Some(slot)).await? {
            match self.inspect(&container.id).await? {
                Some(info) => return Ok(Some((container, info))),
                None => continue,
            }
        }
        Ok(None)
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

    async fn require_image(&self, image: &str) -> Result<()> {
        presence::require_image(&self.engine, image).await.map(drop)
    }

    /// Checks that image `id`, pinned by a snapshot of `release`, is still present: else
    /// [`Error::NotFound`] naming the image id and the release.
    async fn require_pinned(&self, release: &Release, id: &str) -> Result<()> {
        presence::require_pinned(&self.engine, release, id).await.map(drop)
    }

    /// Replaces `slot`'s container with a new one of `image` (a reference or an image id, known
    /// to be present) for `release`, starts it and returns its endpoint.
    async fn start_image(&self, slot: Slot, release: &Release, image: &str) -> Result<Endpoint> {
        self.remove(slot).await?;
        let name = self.config.container_name(slot);
        debug!(%slot, %release, %image, %name, "creating container");
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = match self
            .engine
            .client()
            .create_container(Some(options), self.create_body(slot, release, image))
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
            let port = self.config.expose.host_port(slot).filter(|p| *p != 0);
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
        self.endpoint_of(&info)
    }

    fn create_body(&self, slot: Slot, release: &Release, image: &str) -> ContainerCreateBody {
        let c = &*self.config;
        let port = format!("{}/tcp", c.container_port);
        let port_bindings = match &c.expose {
            Expose::Published { host_ip, .. } => {
                let host_port = c.expose.host_port(slot).filter(|p| *p != 0);
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
            labels: Some(labels::for_deploy(&c.app, slot, release, &c.labels)),
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
    fn endpoint_of(&self, info: &ContainerInspectResponse) -> Result<Endpoint> {
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

    async fn logs_or_note(&self, id: &str) -> Vec<String> {
        tail(self.engine.client(), id, ERROR_LOG_LINES)
            .await
            .unwrap_or_else(|e| vec![format!("(logs unavailable: {})", e.chain())])
    }
}

/// `grace` in whole seconds, rounded up (the Engine API's stop timeout resolution).
fn grace_seconds(grace: Duration) -> i64 {
    let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Running and serving: a container Docker is restarting (between a crash and the next start)
/// counts as not running.
fn is_running(info: &ContainerInspectResponse) -> bool {
    let state = info.state.as_ref();
    state.and_then(|s| s.running).unwrap_or(false) && !state.and_then(|s| s.restarting).unwrap_or(false)
}

/// Running, or about to run again (Docker is restarting it): what `stop` must stop.
fn is_active(info: &ContainerInspectResponse) -> bool {
    let state = info.state.as_ref();
    state.and_then(|s| s.running).unwrap_or(false) || state.and_then(|s| s.restarting).unwrap_or(false)
}

fn exit_code(info: &ContainerInspectResponse) -> Option<i64> {
    info.state.as_ref().and_then(|s| s.exit_code)
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
        self.require_image(&image).await?;
        self.start_image(slot, release, &image).await.map(Endpoints::one)
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, release = Empty))]
    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        let Some((container, info)) = self.find(slot).await? else {
            return Ok(SlotStatus::Absent);
        };
        let release = container.labels.release;
        Span::current().record("release", display(&release));
        if is_running(&info) {
            Ok(SlotStatus::Running {
                release,
                endpoints: Endpoints::one(self.endpoint_of(&info)?),
            })
        } else {
            Ok(SlotStatus::Stopped {
                release,
                exit_code: exit_code(&info),
            })
        }
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(app = %self.config.app, %slot, release = Empty, ?grace)
    )]
    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let Some((container, info)) = self.find(slot).await? else {
            return Ok(StopOutcome::NotRunning);
        };
        Span::current().record("release", display(&container.labels.release));
        if !is_active(&info) {
            return Ok(StopOutcome::NotRunning);
        }
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
        match patient.stop_container(&container.id, Some(options)).await {
            Ok(()) => {}
            // Gone, or stopped by someone else meanwhile (304 Not Modified).
            Err(e) if is_not_found(&e) || is_not_modified(&e) => return Ok(StopOutcome::NotRunning),
            Err(e) => return Err(backend(format_args!("stopping container {}", container.id), e)),
        }
        let took = started.elapsed();
        let code = match self.inspect(&container.id).await? {
            Some(info) => exit_code(&info),
            None => None,
        };
        let waited_out = took + Duration::from_millis(50) >= Duration::from_secs(seconds.unsigned_abs());
        debug!(%slot, ?took, ?code, "stopped");
        if code == Some(SIGKILL_EXIT) && waited_out {
            Ok(StopOutcome::Killed)
        } else {
            Ok(StopOutcome::Graceful { exit_code: code })
        }
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn remove(&self, slot: Slot) -> Result<()> {
        for container in self.list(Some(slot)).await? {
            self.remove_container(&container.id).await?;
        }
        Ok(())
    }

    /// Whether the image `release` maps to is present locally (an image inspect; nothing is
    /// pulled): [`ReleaseCheck::Present`], or [`Error::NotFound`] naming the image.
    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        let image = self.config.image.image_for(release)?;
        self.require_image(&image).await.map(|()| ReleaseCheck::Present)
    }

    /// The image id (`sha256:…`) the slot's container was created from, whatever tag named it,
    /// and the fingerprint of this environment's configuration (all but `socket` and `image`);
    /// `None` when the slot has no container.
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        match self.find(slot).await? {
            Some((_, info)) => crate::snapshot::of_container(&info, &self.config).map(Some),
            None => Ok(None),
        }
    }

    /// Starts the pinned image by its id (not the release's tag, which may have moved), as
    /// `deploy` would. [`Error::NotFound`] naming the image id and the release when the image is
    /// gone, before anything is touched; a snapshot without an image deploys by name.
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, %release))]
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        let Some(id) = snapshot.artifact() else {
            return self.deploy(slot, release).await;
        };
        self.require_pinned(release, id).await?;
        self.start_image(slot, release, id).await.map(Endpoints::one)
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
        let Some((container, _)) = self.find(slot).await? else {
            return Ok(Vec::new());
        };
        Span::current().record("release", display(&container.labels.release));
        tail(self.engine.client(), &container.id, lines).await
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
}
