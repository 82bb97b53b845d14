//! [`SwarmEnvironment`]: each slot a Docker Swarm service.

mod config;
mod spec;
mod tasks;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bluegreen_core::backend::async_trait;
use bluegreen_core::{
    Endpoints, Environment, EnvironmentCapabilities, Error, Release, ReleaseCheck, Result, Slot, SlotStatus, Snapshot,
    StopOutcome,
};
use bollard::models::{ImageInspect, LocalNodeState, Service, ServiceSpec, Task, TaskState};
use bollard::query_parameters::{InspectContainerOptions, ListServicesOptions, LogsOptions, UpdateServiceOptions};
use tracing::field::{display, Empty};
use tracing::{debug, instrument, Span};

pub use config::{ServiceMode, SwarmAddress, SwarmConfig};

use crate::engine::Engine;
use crate::error::{backend, is_conflict, is_not_found, BACKEND};
use crate::labels::{self, SlotLabels};
use crate::logs::{last_lines, with_logs};
use crate::presence::{require_image, require_pinned};
use spec::Deploy;

/// How often the tasks are read while waiting for them.
const POLL: Duration = Duration::from_millis(100);
/// How much longer than the grace a stop or removal waits for Swarm to end the tasks.
const STOP_SLACK: Duration = Duration::from_secs(30);
/// How many log lines a failed deploy's error carries.
const ERROR_LOG_LINES: usize = 20;
/// Exit code of a process killed by SIGKILL (128 + 9).
const SIGKILL_EXIT: i64 = 137;

/// Runs an application's slots as Docker Swarm services named `<app>-blue` and `<app>-green`,
/// replicated (N tasks) or global (one per node).
///
/// ```no_run
/// # async fn f() -> bluegreen_core::Result<()> {
/// use bluegreen_core::{AppName, Environment, Release, Slot};
/// use bluegreen_docker::{ImageSource, SwarmConfig, SwarmEnvironment};
///
/// let config = SwarmConfig::new(AppName::new("shop")?, ImageSource::tagged("shop/web"), 8080)
///     .env("LISTEN", "0.0.0.0:8080")
///     .replicas(3);
/// let env = SwarmEnvironment::connect(config).await?; // the engine must be a swarm manager
/// let endpoints = env.deploy(Slot::Green, &Release::new("v2")?).await?;
/// println!("green's three tasks serve at {endpoints}");
/// # Ok(()) }
/// ```
///
/// What runs is read back from Swarm: the services carry the labels of [`crate::labels`], and a
/// slot's state comes from its service's tasks, so a restarted deployer knows what runs.
///
/// - **Ports**: published in host mode, on the node of each task (Swarm's ingress routing mesh
///   balances by itself, hiding the instances from the proxy, and does not answer in some
///   sandboxes). With a host port of `0` (the default) Swarm picks a free port per task, read
///   back from the task's port status, so several replicas share a node; a fixed port
///   ([`SwarmConfig::ports`]) serves one task per node.
/// - **Endpoints**: one per running task, (kept sorted by host and port; found in the order of the tasks' replica slots, by node for
///   a global service); at `127.0.0.1` with [`SwarmAddress::Loopback`] (the services are then
///   pinned to the manager's own node), or at each task's node address with
///   [`SwarmAddress::NodeAddress`].
/// - `deploy` checks that the image is on the engine (else [`Error::NotFound`] naming it), pins
///   it (its registry digest when it has one for its repository, else its image id, which
///   Swarm starts without asking a registry), creates or updates the service (every task
///   replaced at once: the slot has no traffic), and waits up to
///   [`SwarmConfig::start_timeout`] until every task of the new spec runs. A task of it that
///   fails or is rejected fails the deploy with Swarm's message and the task's last log lines
///   ([`Error::NotFound`] when the node has no such image); tasks still pending at the
///   deadline are an [`Error::Timeout`] saying why Swarm keeps them pending.
/// - `status` is `Running` when as many tasks of the current spec run as the service wants
///   (its replicas, or the ready nodes of a global service), `Stopped` otherwise.
/// - `stop` scales the service to 0 (a global service: a placement constraint no node meets)
///   and waits for its tasks to end. **Swarm stops them with the service's own grace**
///   ([`SwarmConfig::stop_grace`], its `StopGracePeriod`: SIGTERM, that long, then SIGKILL):
///   a task keeps the grace it was created with, so the `grace` argument cannot change it —
///   set `Retirement::stop_grace` to the same value. `Killed` when the tasks outlived that
///   grace and one exited with 137 (or its exit code is unknown: Swarm does not always record
///   it), else `Graceful` with the tasks' exit code (the first non-zero one).
/// - `remove` deletes the service and waits for its tasks to end.
/// - `snapshot` pins the image the service's tasks run (the digest or id written at deploy);
///   `deploy_snapshot` starts exactly that again.
/// - `logs` reads the service's logs (every task's, interleaved).
#[derive(Debug, Clone)]
pub struct SwarmEnvironment {
    engine: Engine,
    config: Arc<SwarmConfig>,
    /// The manager's own node id (where [`SwarmAddress::Loopback`] pins the tasks).
    node: Arc<str>,
}

/// The manager node behind `engine`; an error saying so when the engine is not a manager of an
/// active swarm.
async fn manager_node(engine: &Engine) -> Result<String> {
    let info = engine
        .client()
        .info()
        .await
        .map_err(|e| backend("reading the engine's swarm state", e))?;
    let at = format!("the engine at unix://{}", engine.socket().display());
    let swarm = info.swarm.unwrap_or_default();
    match swarm.local_node_state {
        Some(LocalNodeState::ACTIVE) => {}
        state => {
            let state = state.map_or("unknown".to_string(), |s| s.to_string());
            return Err(Error::backend(
                BACKEND,
                format!(
                    "{at} is not in an active swarm (its swarm state: {state}): run `docker swarm init` there, \
                     or use a manager's engine"
                ),
                false,
            ));
        }
    }
    if swarm.control_available != Some(true) {
        return Err(Error::backend(
            BACKEND,
            format!("{at} is a swarm worker: services are managed through a manager's engine"),
            false,
        ));
    }
    swarm
        .node_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::backend(BACKEND, format!("{at} did not say its swarm node id"), false))
}

/// The reference that pins `image` (inspected as `info`): its registry digest for its own
/// repository when it has one (`shop/web@sha256:…`, which other nodes can pull), else its image
/// id (`sha256:…`, which Swarm starts without asking a registry).
fn pinned(image: &str, info: &ImageInspect) -> Result<String> {
    let reference = image.split('@').next().unwrap_or(image);
    let repository = match reference.rfind(':') {
        Some(i) if !reference[i..].contains('/') => &reference[..i],
        _ => reference,
    };
    let digest = info
        .repo_digests
        .iter()
        .flatten()
        .find(|d| d.split_once('@').is_some_and(|(name, _)| name == repository));
    if let Some(digest) = digest {
        return Ok(digest.clone());
    }
    info.id
        .clone()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| Error::backend(BACKEND, format!("image {image} has no id"), false))
}

impl SwarmEnvironment {
    /// Validates `config`, connects to its socket and checks that the engine is a manager of an
    /// active swarm (else an [`Error::Backend`] saying what the engine is).
    pub async fn connect(config: SwarmConfig) -> Result<Self> {
        config.validate()?;
        let engine = Engine::connect(config.socket_path()).await?;
        SwarmEnvironment::with_engine(engine, config).await
    }

    /// An environment on an existing [`Engine`]: validates `config` (its `socket` is not used)
    /// and checks the swarm as [`connect`](Self::connect) does.
    pub async fn with_engine(engine: Engine, config: SwarmConfig) -> Result<Self> {
        config.validate()?;
        let node = manager_node(&engine).await?;
        Ok(SwarmEnvironment {
            engine,
            config: Arc::new(config),
            node: node.into(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// The engine this environment runs on.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The swarm node id of the manager this environment talks to.
    pub fn manager_node_id(&self) -> &str {
        &self.node
    }

    /// The slot's service, found by its labels; `None` when there is none.
    async fn find(&self, slot: Slot) -> Result<Option<(Service, SlotLabels)>> {
        let options = ListServicesOptions {
            filters: Some(labels::filter(&self.config.app, Some(slot))),
            status: None,
        };
        let services = self
            .engine
            .client()
            .list_services(Some(options))
            .await
            .map_err(|e| backend(format_args!("listing the services of {}", self.config.app), e))?;
        Ok(services.into_iter().find_map(|service| {
            let found = SlotLabels::parse(&self.config.app, service.spec.as_ref()?.labels.as_ref()?)?;
            (found.slot == slot).then_some((service, found))
        }))
    }

    /// Where tasks on `node` are reached: loopback, or the node's address.
    fn host_of(&self, nodes: &HashMap<String, String>, node: &str) -> Result<String> {
        match self.config.address {
            SwarmAddress::Loopback => Ok("127.0.0.1".to_string()),
            SwarmAddress::NodeAddress => nodes.get(node).filter(|addr| !addr.is_empty()).cloned().ok_or_else(|| {
                Error::backend(
                    BACKEND,
                    format!("swarm node {node} has no address (or is not ready)"),
                    true,
                )
            }),
        }
    }

    /// How many tasks `spec` wants running, and the ready nodes (with their addresses).
    async fn desired(&self, spec: &ServiceSpec) -> Result<(usize, HashMap<String, String>)> {
        let nodes = match self.config.address {
            SwarmAddress::Loopback => HashMap::from([(self.node.to_string(), "127.0.0.1".to_string())]),
            SwarmAddress::NodeAddress => tasks::ready_nodes(&self.engine).await?,
        };
        let count = if spec::is_stopped(spec) {
            0
        } else {
            match spec::replicas(spec) {
                Some(replicas) => usize::try_from(replicas).unwrap_or(usize::MAX),
                None => nodes.len(),
            }
        };
        Ok((count, nodes))
    }

    /// Replaces `slot`'s service with one running `image` (pinned, present) for `release`, and
    /// waits for its tasks.
    async fn start(&self, slot: Slot, release: &Release, image: &str) -> Result<Endpoints> {
        let name = self.config.service_name(slot);
        let existing = self.find(slot).await?;
        let marker = existing
            .as_ref()
            .and_then(|(s, _)| s.spec.as_ref())
            .map_or(0, spec::marker)
            + 1;
        let node = match self.config.address {
            SwarmAddress::Loopback => Some(&*self.node),
            SwarmAddress::NodeAddress => None,
        };
        let spec = spec::service_spec(
            &self.config,
            Deploy {
                slot,
                release,
                image,
                node,
                marker,
            },
        );
        let id = match existing {
            Some((service, _)) => {
                let id = service.id.unwrap_or_default();
                debug!(%slot, %release, %image, %name, marker, "updating service");
                self.update(&id, &service.version, spec.clone()).await?;
                id
            }
            None => {
                debug!(%slot, %release, %image, %name, "creating service");
                match self.engine.client().create_service(spec.clone(), None).await {
                    Ok(created) => created.id.unwrap_or_default(),
                    Err(e) if is_conflict(&e) => {
                        return Err(Error::backend_caused_by(
                            BACKEND,
                            format!(
                                "service name {name} is taken by a service that is not {slot} of {}",
                                self.config.app
                            ),
                            false,
                            e,
                        ))
                    }
                    Err(e) => return Err(backend(format_args!("creating service {name}"), e)),
                }
            }
        };
        self.wait_started(&name, &id, &spec, image).await
    }

    async fn update(
        &self,
        id: &str,
        version: &Option<bollard::models::ObjectVersion>,
        spec: ServiceSpec,
    ) -> Result<()> {
        let index = version.as_ref().and_then(|v| v.index).unwrap_or(0);
        let options = UpdateServiceOptions {
            version: i32::try_from(index).unwrap_or(i32::MAX),
            ..Default::default()
        };
        self.engine
            .client()
            .update_service(id, spec, options, None)
            .await
            .map(drop)
            .map_err(|e| backend(format_args!("updating service {id}"), e))
    }

    /// Waits until every task of `spec` (service `id`, named `name`) runs; their endpoints.
    async fn wait_started(&self, name: &str, id: &str, spec: &ServiceSpec, image: &str) -> Result<Endpoints> {
        let marker = spec::marker(spec);
        let started = Instant::now();
        loop {
            let (desired, nodes) = self.desired(spec).await?;
            let current: Vec<Task> = tasks::of_service(&self.engine, id)
                .await?
                .into_iter()
                .filter(|t| tasks::of_deploy(t, marker))
                .collect();
            if let Some(failed) = current.iter().find(|t| tasks::is_over(t)) {
                return Err(self.task_failed(name, failed, image).await);
            }
            let mut running: Vec<Task> = current
                .iter()
                .filter(|t| tasks::is_wanted(t) && tasks::state(t) == TaskState::RUNNING)
                .cloned()
                .collect();
            if desired > 0 && running.len() == desired {
                tasks::sort(&mut running);
                let port = self.config.container_port;
                let endpoints = tasks::endpoints(name, &running, port, |node| self.host_of(&nodes, node))?;
                debug!(%name, %endpoints, took = ?started.elapsed(), "tasks running");
                return Ok(endpoints);
            }
            if started.elapsed() >= self.config.start_timeout {
                let waiting: Vec<String> = current
                    .iter()
                    .filter(|t| tasks::state(t) != TaskState::RUNNING)
                    .map(|t| format!("{} {}", tasks::describe(name, t), tasks::report(t)))
                    .collect();
                let waiting = if waiting.is_empty() {
                    "no task of it was created".to_string()
                } else {
                    waiting.join("; ")
                };
                return Err(Error::Timeout {
                    operation: format!(
                        "{desired} task(s) of service {name} to run ({} running; {waiting})",
                        running.len()
                    ),
                    after: self.config.start_timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The error of a deploy whose task `task` failed: Swarm's message and the task's last log
    /// lines; [`Error::NotFound`] when its node had no such image.
    async fn task_failed(&self, name: &str, task: &Task, image: &str) -> Error {
        let report = tasks::report(task);
        if report.contains("No such image") {
            return Error::NotFound {
                what: "image (on the task's node)",
                name: format!("{image} ({})", tasks::describe(name, task)),
            };
        }
        let logs = match task.id.as_deref() {
            Some(id) => self
                .task_logs(id)
                .await
                .unwrap_or_else(|e| vec![format!("(logs unavailable: {})", e.chain())]),
            None => Vec::new(),
        };
        Error::backend(
            BACKEND,
            with_logs(format!("{} {report}", tasks::describe(name, task)), &logs),
            false,
        )
    }

    async fn task_logs(&self, id: &str) -> Result<Vec<String>> {
        let stream = self.engine.client().task_logs(id, Some(log_options(ERROR_LOG_LINES)));
        last_lines(stream, ERROR_LOG_LINES, format!("task {id}")).await
    }

    /// Waits until none of tasks `ids` (of service `service`) is running any more, bounded by
    /// `within`. Swarm deletes the tasks of a scaled-down or removed service once they ended, so a
    /// task gone from the list has ended too. Returns, for each id, the task as last seen ended
    /// (`None` when it vanished before it was seen ended).
    async fn wait_over(&self, service: &str, ids: &[String], within: Duration) -> Result<Vec<Option<Task>>> {
        let started = Instant::now();
        let mut last: HashMap<String, Task> = HashMap::new();
        loop {
            let found = tasks::with_ids(&self.engine, ids).await?;
            let done = found.iter().all(tasks::is_over);
            for task in found {
                if let Some(id) = task.id.clone() {
                    last.insert(id, task);
                }
            }
            if done {
                return Ok(ids
                    .iter()
                    .map(|id| last.get(id).filter(|t| tasks::is_over(t)).cloned())
                    .collect());
            }
            if started.elapsed() >= within {
                return Err(Error::Timeout {
                    operation: format!("the tasks of service {service} to end"),
                    after: within,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The exit code of `task`'s container: as Swarm recorded it, else (Swarm does not always
    /// record it for a killed container) as its container says when it is on this engine's node.
    async fn exit_code(&self, task: &Task) -> Result<Option<i64>> {
        if let Some(code) = tasks::exit_code(task) {
            return Ok(Some(code));
        }
        let Some(container) = task
            .status
            .as_ref()
            .and_then(|s| s.container_status.as_ref())
            .and_then(|c| c.container_id.as_deref())
            .filter(|id| !id.is_empty())
        else {
            return Ok(None);
        };
        match self
            .engine
            .client()
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => Ok(info.state.and_then(|s| s.exit_code)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(backend(format_args!("inspecting container {container}"), e)),
        }
    }

    /// The stop grace of the service's tasks (Swarm's `StopGracePeriod`).
    fn swarm_grace(spec: &ServiceSpec) -> Duration {
        spec.task_template
            .as_ref()
            .and_then(|t| t.container_spec.as_ref())
            .and_then(|c| c.stop_grace_period)
            .map_or(Duration::from_secs(10), |n| {
                Duration::from_nanos(n.max(0).unsigned_abs())
            })
    }
}

fn log_options(lines: usize) -> LogsOptions {
    LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    }
}

/// The exit code of the task that ended last among `tasks`.
fn last_exit_code(tasks: &[Task]) -> Option<i64> {
    tasks
        .iter()
        .filter(|t| tasks::is_over(t))
        .max_by_key(|t| {
            t.status
                .as_ref()
                .and_then(|s| s.timestamp.clone())
                .map(|t| t.to_string())
        })
        .and_then(tasks::exit_code)
}

#[async_trait]
impl Environment for SwarmEnvironment {
    fn name(&self) -> &str {
        "docker-swarm"
    }

    fn capabilities(&self) -> EnvironmentCapabilities {
        EnvironmentCapabilities::none().with_logs(true)
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, %release))]
    async fn deploy(&self, slot: Slot, release: &Release) -> Result<Endpoints> {
        let image = self.config.image.image_for(release)?;
        let info = require_image(&self.engine, &image).await?;
        let pinned = pinned(&image, &info)?;
        self.start(slot, release, &pinned).await
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, release = Empty))]
    async fn status(&self, slot: Slot) -> Result<SlotStatus> {
        let Some((service, found)) = self.find(slot).await? else {
            return Ok(SlotStatus::Absent);
        };
        let release = found.release;
        Span::current().record("release", display(&release));
        let spec = service.spec.unwrap_or_default();
        let id = service.id.unwrap_or_default();
        let all = tasks::of_service(&self.engine, &id).await?;
        let (desired, nodes) = self.desired(&spec).await?;
        let marker = spec::marker(&spec);
        let mut running: Vec<Task> = all
            .iter()
            .filter(|t| tasks::is_wanted(t) && tasks::of_deploy(t, marker) && tasks::state(t) == TaskState::RUNNING)
            .cloned()
            .collect();
        if desired > 0 && running.len() == desired {
            tasks::sort(&mut running);
            let name = self.config.service_name(slot);
            let port = self.config.container_port;
            let endpoints = tasks::endpoints(&name, &running, port, |node| self.host_of(&nodes, node))?;
            return Ok(SlotStatus::Running { release, endpoints });
        }
        Ok(SlotStatus::Stopped {
            release,
            exit_code: last_exit_code(&all),
        })
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, release = Empty, ?grace))]
    async fn stop(&self, slot: Slot, grace: Duration) -> Result<StopOutcome> {
        let Some((service, found)) = self.find(slot).await? else {
            return Ok(StopOutcome::NotRunning);
        };
        Span::current().record("release", display(&found.release));
        let name = self.config.service_name(slot);
        let id = service.id.clone().unwrap_or_default();
        let spec = service.spec.clone().unwrap_or_default();
        let live: Vec<String> = tasks::of_service(&self.engine, &id)
            .await?
            .into_iter()
            .filter(|t| !tasks::is_over(t))
            .filter_map(|t| t.id)
            .collect();
        if !spec::is_stopped(&spec) {
            self.update(&id, &service.version, spec::stopped(spec.clone())).await?;
        }
        if live.is_empty() {
            return Ok(StopOutcome::NotRunning);
        }
        let swarm_grace = Self::swarm_grace(&spec);
        let started = Instant::now();
        let ended = self
            .wait_over(&name, &live, swarm_grace.max(grace) + STOP_SLACK)
            .await?;
        let took = started.elapsed();
        let mut codes = Vec::with_capacity(ended.len());
        for task in &ended {
            codes.push(match task {
                Some(task) => self.exit_code(task).await?,
                None => None,
            });
        }
        debug!(%slot, ?took, ?codes, "stopped");
        // Swarm sends SIGKILL when its grace runs out. A task that exited 137 was killed; so was
        // one whose exit code is unknown (Swarm does not always record it, and may have removed
        // the container) if the tasks outlived the grace.
        let waited_out = took + Duration::from_millis(50) >= swarm_grace;
        let killed = codes.contains(&Some(SIGKILL_EXIT)) || codes.contains(&None);
        if killed && waited_out {
            return Ok(StopOutcome::Killed);
        }
        let exit_code = codes
            .iter()
            .flatten()
            .copied()
            .find(|c| *c != 0)
            .or_else(|| codes.iter().flatten().copied().next());
        Ok(StopOutcome::Graceful { exit_code })
    }

    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn remove(&self, slot: Slot) -> Result<()> {
        while let Some((service, _)) = self.find(slot).await? {
            let id = service.id.clone().unwrap_or_default();
            let name = self.config.service_name(slot);
            let spec = service.spec.unwrap_or_default();
            let live: Vec<String> = tasks::of_service(&self.engine, &id)
                .await?
                .into_iter()
                .filter(|t| !tasks::is_over(t))
                .filter_map(|t| t.id)
                .collect();
            match self.engine.client().delete_service(&id).await {
                Ok(()) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(backend(format_args!("removing service {name}"), e)),
            }
            let within = Self::swarm_grace(&spec) + STOP_SLACK;
            self.wait_over(&name, &live, within).await?;
        }
        Ok(())
    }

    /// Whether the image `release` maps to is on the engine (nothing is pulled).
    async fn check_release(&self, release: &Release) -> Result<ReleaseCheck> {
        let image = self.config.image.image_for(release)?;
        require_image(&self.engine, &image).await.map(|_| ReleaseCheck::Present)
    }

    /// The image the slot's service runs, as pinned at deploy (a digest reference or an image
    /// id), and the fingerprint of this configuration (all but `socket` and `image`).
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn snapshot(&self, slot: Slot) -> Result<Option<Snapshot>> {
        let Some((service, _)) = self.find(slot).await? else {
            return Ok(None);
        };
        let image = service.spec.as_ref().and_then(spec::image).map(str::to_string);
        let fingerprint = crate::snapshot::fingerprint_of(&*self.config, &self.config.app)?;
        Ok(Some(Snapshot::new(image, fingerprint)))
    }

    /// Starts the pinned image again, as `deploy` would; [`Error::NotFound`] naming it and the
    /// release when the engine no longer has it, before anything is touched.
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot, %release))]
    async fn deploy_snapshot(&self, slot: Slot, release: &Release, snapshot: &Snapshot) -> Result<Endpoints> {
        let Some(image) = snapshot.artifact() else {
            return self.deploy(slot, release).await;
        };
        require_pinned(&self.engine, release, image).await?;
        self.start(slot, release, image).await
    }

    /// Whether the pinned image is on the engine.
    async fn check_snapshot(&self, release: &Release, snapshot: &Snapshot) -> Result<ReleaseCheck> {
        match snapshot.artifact() {
            Some(image) => require_pinned(&self.engine, release, image)
                .await
                .map(|_| ReleaseCheck::Present),
            None => self.check_release(release).await,
        }
    }

    /// The last lines of the service's logs (all its tasks, interleaved); none without a
    /// service.
    #[instrument(level = "debug", skip_all, fields(app = %self.config.app, %slot))]
    async fn logs(&self, slot: Slot, lines: usize) -> Result<Vec<String>> {
        let Some((service, _)) = self.find(slot).await? else {
            return Ok(Vec::new());
        };
        let id = service.id.unwrap_or_default();
        let stream = self.engine.client().service_logs(&id, Some(log_options(lines)));
        last_lines(stream, lines, format!("service {}", self.config.service_name(slot))).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_pinned_by_their_repository_digest_else_by_id() {
        let info = ImageInspect {
            id: Some("sha256:1d".into()),
            repo_digests: Some(vec![
                "other/web@sha256:aa".into(),
                "registry:5000/shop/web@sha256:bb".into(),
            ]),
            ..Default::default()
        };
        assert_eq!(
            pinned("registry:5000/shop/web:v2", &info).unwrap(),
            "registry:5000/shop/web@sha256:bb"
        );
        assert_eq!(
            pinned("registry:5000/shop/web", &info).unwrap(),
            "registry:5000/shop/web@sha256:bb"
        );
        assert_eq!(pinned("shop/web:v2", &info).unwrap(), "sha256:1d");
        let local = ImageInspect {
            id: Some("sha256:2e".into()),
            ..Default::default()
        };
        assert_eq!(pinned("bgt-demo:v1", &local).unwrap(), "sha256:2e");
    }
}
