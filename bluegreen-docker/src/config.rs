//! [`DockerConfig`]: how one application's slots run as containers.
//!
//! Built in code with [`DockerConfig::new`] and its setters, or read from a file with serde
//! (durations as `"10s"`, `"250ms"`). [`DockerConfig::validate`] names the first bad value;
//! [`DockerEnvironment::connect`](crate::DockerEnvironment::connect) calls it before anything runs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use bluegreen_core::{AppName, Error, Release, Result, Slot};
use serde::{Deserialize, Serialize};

use crate::labels::RESERVED_PREFIX;
use crate::registry::{Pull, RegistryCredentials};

/// The Docker socket used when neither the config nor `DOCKER_HOST` (`unix://…`) names one.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How one application runs in Docker. See the crate docs for an example.
///
/// Its `Debug` output shows the environment variables' names but not their values (they often
/// hold secrets), so a config can be logged or put in an error as is.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DockerConfig {
    /// The application: containers are named `<app>-blue` and `<app>-green` (with several
    /// [`replicas`](Self::replicas), `<app>-blue-1`, `<app>-blue-2`, …).
    pub app: AppName,
    /// How a release becomes an image reference.
    pub image: ImageSource,
    /// The port the application listens on inside the container.
    pub container_port: u16,
    /// The Docker Engine socket; `None`: `DOCKER_HOST` if it is `unix://…`, else [`DEFAULT_SOCKET`].
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Environment variables of the container.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The command (arguments to the image's entrypoint); `None` keeps the image's `CMD`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// The network to attach containers to; `None` is Docker's default bridge.
    #[serde(default)]
    pub network: Option<String>,
    /// How the slot's endpoint is reached.
    #[serde(default)]
    pub expose: Expose,
    /// Memory limit in bytes.
    #[serde(default)]
    pub memory_bytes: Option<i64>,
    /// CPU limit, in CPUs (`0.5` is half a CPU).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// What Docker does when the container exits.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Also written as the container's `StopTimeout`, so a `docker stop` by hand is as gentle.
    /// The [`Environment::stop`](bluegreen_core::Environment::stop) grace argument is what the
    /// engine uses.
    #[serde(
        default = "default_stop_grace",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::stop_grace"
    )]
    pub stop_grace: Duration,
    /// A Docker health check (`State.Health`), read by [`DockerHealthProbe`](crate::DockerHealthProbe).
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Extra labels (keys under `bluegreen.` are reserved).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Run an init process as PID 1 (`HostConfig.Init`), which forwards signals to the app and
    /// reaps zombies. On by default: without it an app that is PID 1 and installs no SIGTERM
    /// handler is never stopped by SIGTERM, only killed after the grace period.
    #[serde(default = "yes")]
    pub init: bool,
    /// How many containers (instances) each slot runs, 1 to [`MAX_REPLICAS`]: each has its own
    /// endpoint, and the slot is running only when all of them run. Default 1, written to a file
    /// only when it is not 1 (so a configuration's [`Snapshot`](bluegreen_core::Snapshot)
    /// fingerprint is what it was before this key existed).
    ///
    /// With one replica a slot's container is `<app>-<slot>`, labelled as it always was; with
    /// more, replica `i` (1-based) is `<app>-<slot>-<i>`, labelled
    /// [`bluegreen.replica`](crate::labels::REPLICA) `i` and
    /// [`bluegreen.replicas`](crate::labels::REPLICAS) the count. A fixed host port (see
    /// [`Expose::Published`]) is replica 1's; replica `i` publishes on that port + `i` − 1.
    #[serde(
        default = "one",
        skip_serializing_if = "is_one",
        deserialize_with = "field_de::replicas"
    )]
    pub replicas: u32,
    /// When `deploy` pulls the image from its registry (default [`Pull::Never`]).
    #[serde(default)]
    pub pull: Pull,
    /// The registry user and password for pulls; `None` pulls anonymously.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<RegistryCredentials>,
}

/// The most replicas a slot may run ([`DockerConfig::replicas`]): a bound on what one deploy
/// starts at once, so a typo does not create thousands of containers.
pub const MAX_REPLICAS: u32 = 100;

impl std::fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let DockerConfig {
            app,
            image,
            container_port,
            socket,
            env,
            command,
            network,
            expose,
            memory_bytes,
            cpus,
            restart,
            stop_grace,
            health_check,
            labels,
            init,
            replicas,
            pull,
            registry,
        } = self;
        let redacted: BTreeMap<&str, &str> = env.keys().map(|k| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("DockerConfig")
            .field("app", app)
            .field("image", image)
            .field("container_port", container_port)
            .field("socket", socket)
            .field("env", &redacted)
            .field("command", command)
            .field("network", network)
            .field("expose", expose)
            .field("memory_bytes", memory_bytes)
            .field("cpus", cpus)
            .field("restart", restart)
            .field("stop_grace", stop_grace)
            .field("health_check", health_check)
            .field("labels", labels)
            .field("init", init)
            .field("replicas", replicas)
            .field("pull", pull)
            .field("registry", registry)
            .finish()
    }
}

fn default_stop_grace() -> Duration {
    Duration::from_secs(10)
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// How a [`Release`] becomes an image reference.
///
/// The usual choice is [`ImageSource::Tagged`]: one tag per release, as a CI pipeline pushes
/// them (`release "v2"` → `shop/web:v2`), so that rolling back means running the old tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImageSource {
    /// `<repository>:<release>`; the release must be a valid tag (`[A-Za-z0-9_.-]`, at most 128
    /// characters, not starting with `.` or `-`).
    Tagged {
        /// The repository (`shop/web`, `registry:5000/shop/web`).
        repository: String,
    },
    /// The release is itself the image reference (`shop/web:1.4.2`, `web@sha256:…`).
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    Reference,
    /// An explicit table: a release missing from it is refused.
    Mapped {
        /// Release → image reference.
        images: BTreeMap<Release, String>,
    },
}

impl ImageSource {
    /// `<repository>:<release>`.
    pub fn tagged(repository: impl Into<String>) -> Self {
        ImageSource::Tagged {
            repository: repository.into(),
        }
    }

    /// The image reference of `release`.
    pub fn image_for(&self, release: &Release) -> Result<String> {
        match self {
            ImageSource::Tagged { repository } => {
                let tag = release.as_str();
                let valid = tag.len() <= 128
                    && !tag.starts_with(['.', '-'])
                    && tag
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                if !valid {
                    return Err(Error::invalid(
                        "release",
                        tag,
                        format!("is not a valid image tag for {repository}: use [A-Za-z0-9_.-], at most 128"),
                    ));
                }
                Ok(format!("{repository}:{tag}"))
            }
            ImageSource::Reference => Ok(release.to_string()),
            ImageSource::Mapped { images } => images.get(release).cloned().ok_or_else(|| Error::NotFound {
                what: "image mapping for release",
                name: release.to_string(),
            }),
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let check = |what, image: &str| check_image(what, image);
        match self {
            ImageSource::Tagged { repository } => check("image repository", repository),
            ImageSource::Reference => Ok(()),
            ImageSource::Mapped { images } => images.values().try_for_each(|image| check("image", image)),
        }
    }
}

fn check_image(what: &'static str, image: &str) -> Result<()> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && image.starts_with(|c: char| c.is_ascii_alphanumeric())
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            image,
            "must be an image reference: a letter or digit, then [A-Za-z0-9._-/:@], at most 255",
        ))
    }
}

/// How the slot's endpoint is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Expose {
    /// Publish the container port on `host_ip` of the host. A port of `0` lets the engine choose
    /// a free one (read back after start); a fixed port per slot suits a proxy that cannot be told.
    ///
    /// With several [`replicas`](DockerConfig::replicas), a fixed port is the first replica's and
    /// replica `i` publishes on port + `i` − 1: blue's range and green's must not overlap, and
    /// must end at 65535 at most ([`DockerConfig::validate`] refuses them). A port of `0` gives
    /// every replica an engine-chosen port of its own.
    Published {
        /// The host address (`127.0.0.1` keeps it off the network).
        #[serde(deserialize_with = "field_de::host_ip")]
        host_ip: IpAddr,
        /// The host port of the blue slot (`0`: engine-chosen).
        #[serde(default)]
        blue_port: u16,
        /// The host port of the green slot (`0`: engine-chosen).
        #[serde(default)]
        green_port: u16,
    },
    /// The container's own address on [`DockerConfig::network`] (or the default bridge), for a
    /// proxy that runs on the same Docker network.
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    NetworkAddress,
}

impl Default for Expose {
    /// Published on `127.0.0.1` at engine-chosen ports.
    fn default() -> Self {
        Expose::Published {
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            blue_port: 0,
            green_port: 0,
        }
    }
}

impl Expose {
    /// The host port configured for `slot` (`0`: engine-chosen), when published.
    pub fn host_port(&self, slot: Slot) -> Option<u16> {
        match self {
            Expose::Published {
                blue_port, green_port, ..
            } => Some(match slot {
                Slot::Blue => *blue_port,
                Slot::Green => *green_port,
            }),
            Expose::NetworkAddress => None,
        }
    }

    /// The host port of replica `replica` (1-based) of `slot`, when published: `0` (engine-chosen)
    /// when the slot's port is `0`, else the slot's port + `replica` − 1 (`None` past 65535, which
    /// [`DockerConfig::validate`] refuses).
    pub fn replica_host_port(&self, slot: Slot, replica: u32) -> Option<u16> {
        let base = self.host_port(slot)?;
        if base == 0 {
            return Some(0);
        }
        let port = u32::from(base) + replica.checked_sub(1)?;
        u16::try_from(port).ok()
    }
}

/// Docker's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RestartPolicy {
    /// Never restart (the default: a crash shows as a failed deploy, not a restart loop).
    #[default]
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    No,
    /// Restart after a non-zero exit, at most `max_retries` times.
    OnFailure {
        /// The bound on restarts.
        max_retries: u32,
    },
    /// Always restart, unless stopped (also across daemon restarts).
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    UnlessStopped,
    /// Always restart.
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    Always,
}

/// A Docker health check in exec form (no shell needed: works in `FROM scratch` images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct HealthCheck {
    /// The command and its arguments (`["/demo-app", "--health-check"]`); exit 0 is healthy.
    pub command: Vec<String>,
    /// Time between checks (default 250 ms: short, so a deploy does not wait on Docker's 30 s).
    #[serde(
        default = "default_interval",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::hc_interval"
    )]
    pub interval: Duration,
    /// Bound on one check (default 2 s).
    #[serde(
        default = "default_timeout",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::hc_timeout"
    )]
    pub timeout: Duration,
    /// Consecutive failures before `unhealthy` (default 3).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Failures during this time after start do not count (default 0).
    #[serde(
        default,
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::hc_start_period"
    )]
    pub start_period: Duration,
}

fn default_interval() -> Duration {
    Duration::from_millis(250)
}
fn default_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_retries() -> u32 {
    3
}

impl HealthCheck {
    /// Runs `command` (exec form) every 250 ms, 2 s timeout, 3 retries.
    pub fn exec<S: Into<String>>(command: impl IntoIterator<Item = S>) -> Self {
        HealthCheck {
            command: command.into_iter().map(Into::into).collect(),
            interval: default_interval(),
            timeout: default_timeout(),
            retries: default_retries(),
            start_period: Duration::ZERO,
        }
    }

    /// Sets the interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the retries.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.command.is_empty() || self.command[0].is_empty() {
            return Err(Error::invalid(
                "health check command",
                format!("{:?}", self.command),
                "must name a program",
            ));
        }
        for (what, d) in [
            ("health check interval", self.interval),
            ("health check timeout", self.timeout),
        ] {
            if d < Duration::from_millis(1) {
                return Err(Error::invalid(
                    what,
                    format!("{d:?}"),
                    "must be at least 1 ms (Docker's minimum)",
                ));
            }
        }
        Ok(())
    }
}

impl DockerConfig {
    /// A config for `app`, its images from `image`, listening on `container_port` inside.
    pub fn new(app: AppName, image: ImageSource, container_port: u16) -> Self {
        DockerConfig {
            app,
            image,
            container_port,
            socket: None,
            env: BTreeMap::new(),
            command: None,
            network: None,
            expose: Expose::default(),
            memory_bytes: None,
            cpus: None,
            restart: RestartPolicy::default(),
            stop_grace: default_stop_grace(),
            health_check: None,
            labels: BTreeMap::new(),
            init: true,
            replicas: 1,
            pull: Pull::default(),
            registry: None,
        }
    }

    /// Sets the Docker socket.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Sets the command.
    pub fn command<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.command = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the network.
    pub fn network(mut self, network: impl Into<String>) -> Self {
        self.network = Some(network.into());
        self
    }

    /// Sets how the endpoint is exposed.
    pub fn expose(mut self, expose: Expose) -> Self {
        self.expose = expose;
        self
    }

    /// Sets the memory limit in bytes.
    pub fn memory_bytes(mut self, bytes: i64) -> Self {
        self.memory_bytes = Some(bytes);
        self
    }

    /// Sets the CPU limit.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Sets the restart policy.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Sets the container's stop timeout.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Sets the health check.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets when images are pulled.
    pub fn pull(mut self, pull: Pull) -> Self {
        self.pull = pull;
        self
    }

    /// Sets the registry credentials for pulls.
    pub fn registry(mut self, credentials: RegistryCredentials) -> Self {
        self.registry = Some(credentials);
        self
    }

    /// Turns the init process on or off.
    pub fn init(mut self, init: bool) -> Self {
        self.init = init;
        self
    }

    /// Sets how many containers each slot runs (1 to [`MAX_REPLICAS`]; `validate` refuses 0).
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// The container name of `slot` with one replica: `<app>-<slot>`.
    pub fn container_name(&self, slot: Slot) -> String {
        format!("{}-{slot}", self.app)
    }

    /// The container name of replica `replica` (1-based) of `slot`: `<app>-<slot>` with one
    /// replica, `<app>-<slot>-<replica>` with several.
    pub fn replica_name(&self, slot: Slot, replica: u32) -> String {
        if self.replicas == 1 {
            self.container_name(slot)
        } else {
            format!("{}-{slot}-{replica}", self.app)
        }
    }

    /// The socket to use: the configured one, else `DOCKER_HOST` (`unix://…`), else the default.
    pub fn socket_path(&self) -> PathBuf {
        if let Some(socket) = &self.socket {
            return socket.clone();
        }
        std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))
    }

    /// Refuses the first bad value, naming it.
    pub fn validate(&self) -> Result<()> {
        self.image.validate()?;
        check_container_port(self.container_port)?;
        check_env(&self.env)?;
        check_command(self.command.as_deref())?;
        if let Some(network) = &self.network {
            check_name("network", network)?;
        }
        if self.replicas == 0 || self.replicas > MAX_REPLICAS {
            return Err(Error::invalid(
                "replicas",
                self.replicas.to_string(),
                format!("must be 1..={MAX_REPLICAS}"),
            ));
        }
        self.validate_host_ports()?;
        check_limits(self.memory_bytes, self.cpus)?;
        if let Some(check) = &self.health_check {
            check.validate()?;
        }
        if let Some(credentials) = &self.registry {
            credentials.validate()?;
        }
        check_labels(&self.labels)
    }
}

impl DockerConfig {
    /// Fixed host ports: each slot's range (one port per replica) within 65535, and blue's and
    /// green's apart.
    fn validate_host_ports(&self) -> Result<()> {
        let Expose::Published {
            blue_port, green_port, ..
        } = self.expose
        else {
            return Ok(());
        };
        let span = self.replicas.saturating_sub(1);
        for port in [blue_port, green_port] {
            if port != 0 && u32::from(port) + span > u32::from(u16::MAX) {
                return Err(Error::invalid(
                    "host port",
                    port.to_string(),
                    format!(
                        "{} replicas publish on {port}..={}, past 65535",
                        self.replicas,
                        u32::from(port) + span
                    ),
                ));
            }
        }
        let overlap = blue_port != 0 && green_port != 0 && u32::from(blue_port).abs_diff(u32::from(green_port)) <= span;
        if overlap {
            let message = if span == 0 {
                "blue and green must publish on different host ports".to_string()
            } else {
                format!(
                    "blue's host ports ({blue_port}..={}) and green's ({green_port}..={}) overlap: \
                     with {} replicas each slot takes that many ports from its own",
                    u32::from(blue_port) + span,
                    u32::from(green_port) + span,
                    self.replicas
                )
            };
            return Err(Error::invalid("host port", green_port.to_string(), message));
        }
        Ok(())
    }
}

// The checks below are shared by every configuration of this crate (containers and Swarm
// services), so a value refused in one is refused in the other.

/// Refuses port 0 inside the container.
pub(crate) fn check_container_port(port: u16) -> Result<()> {
    if port == 0 {
        return Err(Error::invalid("container port", "0", "must be 1..=65535"));
    }
    Ok(())
}

/// Refuses an environment variable whose name is not a shell name or whose value holds NUL
/// (naming the variable, never quoting its value: it may be a secret).
pub(crate) fn check_env(env: &BTreeMap<String, String>) -> Result<()> {
    for (name, value) in env {
        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(Error::invalid(
                "environment variable name",
                name,
                "must be [A-Za-z_][A-Za-z0-9_]*",
            ));
        }
        if value.contains('\0') {
            // The value is not quoted: it may be a secret.
            return Err(Error::invalid(
                "environment variable value",
                name,
                "the value of this variable contains NUL",
            ));
        }
    }
    Ok(())
}

/// Refuses a command argument holding NUL.
pub(crate) fn check_command(command: Option<&[String]>) -> Result<()> {
    if let Some(command) = command {
        if command.iter().any(|arg| arg.contains('\0')) {
            return Err(Error::invalid(
                "command",
                format!("{command:?}"),
                "must not contain NUL",
            ));
        }
    }
    Ok(())
}

/// Refuses one fixed host port for both slots (`0`, chosen by the engine, may repeat).
pub(crate) fn check_slot_ports(blue_port: u16, green_port: u16) -> Result<()> {
    if blue_port != 0 && blue_port == green_port {
        return Err(Error::invalid(
            "host port",
            blue_port.to_string(),
            "blue and green must publish on different host ports",
        ));
    }
    Ok(())
}

/// Refuses a memory limit under Docker's minimum and a CPU limit that is not a positive number.
pub(crate) fn check_limits(memory_bytes: Option<i64>, cpus: Option<f64>) -> Result<()> {
    if let Some(bytes) = memory_bytes {
        if bytes < 6 * 1024 * 1024 {
            return Err(Error::invalid(
                "memory limit",
                bytes.to_string(),
                "Docker's minimum is 6 MiB",
            ));
        }
    }
    if let Some(cpus) = cpus {
        if !(cpus.is_finite() && cpus > 0.0) {
            return Err(Error::invalid(
                "cpu limit",
                cpus.to_string(),
                "must be a positive number of CPUs",
            ));
        }
    }
    Ok(())
}

/// Refuses extra labels under the reserved `bluegreen.` prefix, empty keys, `=` in a key and NUL.
pub(crate) fn check_labels(labels: &BTreeMap<String, String>) -> Result<()> {
    for (key, value) in labels {
        if key.starts_with(RESERVED_PREFIX) {
            return Err(Error::invalid("label", key, "keys under `bluegreen.` are reserved"));
        }
        if key.is_empty() || key.contains(['\0', '=']) || value.contains('\0') {
            return Err(Error::invalid("label", key, "must be non-empty, without `=` or NUL"));
        }
    }
    Ok(())
}

fn check_name(what: &'static str, name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            what,
            name,
            "must be a letter or digit, then [A-Za-z0-9_.-]",
        ))
    }
}

/// One deserializer per key that serde would otherwise refuse without naming it.
mod field_de {
    use serde::de::{Deserialize, Deserializer, Error as _};

    /// A replica count; 0 is refused here, naming the key, so a file's reader can say where.
    pub(super) fn replicas<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = u32::deserialize(d)?;
        if n == 0 || n > super::MAX_REPLICAS {
            return Err(D::Error::custom(format!(
                "invalid docker replicas {n}: expected 1..={}",
                super::MAX_REPLICAS
            )));
        }
        Ok(n)
    }

    bluegreen_core::keyed_deserializers! {
        stop_grace -> std::time::Duration = duration("docker stop_grace");
        hc_interval -> std::time::Duration = duration("docker health_check.interval");
        hc_timeout -> std::time::Duration = duration("docker health_check.timeout");
        hc_start_period -> std::time::Duration = duration("docker health_check.start_period");
        host_ip -> std::net::IpAddr = ip_addr("docker expose.host_ip");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> DockerConfig {
        DockerConfig::new(AppName::new("shop").unwrap(), ImageSource::tagged("shop/web"), 8080)
    }

    fn release(r: &str) -> Release {
        Release::new(r).unwrap()
    }

    #[test]
    fn releases_map_to_images() {
        assert_eq!(
            ImageSource::tagged("shop/web").image_for(&release("v2")).unwrap(),
            "shop/web:v2"
        );
        let err = ImageSource::tagged("shop/web")
            .image_for(&release("a/b:c"))
            .unwrap_err();
        assert!(matches!(err, Error::Invalid { what: "release", .. }), "{err}");
        assert_eq!(
            ImageSource::Reference.image_for(&release("web@sha256:ab")).unwrap(),
            "web@sha256:ab"
        );
        let mapped = ImageSource::Mapped {
            images: BTreeMap::from([(release("v1"), "web:abc".to_string())]),
        };
        assert_eq!(mapped.image_for(&release("v1")).unwrap(), "web:abc");
        assert!(matches!(mapped.image_for(&release("v2")), Err(Error::NotFound { .. })));
    }

    #[test]
    fn validate_names_the_bad_value() {
        config().validate().unwrap();
        let cases = [
            (config().env("BAD-NAME", "x"), "environment variable name"),
            (config().label("bluegreen.app", "x"), "label"),
            (config().network("a b"), "network"),
            (config().cpus(0.0), "cpu limit"),
            (config().memory_bytes(1), "memory limit"),
            (
                config().health_check(HealthCheck::exec(Vec::<String>::new())),
                "health check command",
            ),
            (
                config().expose(Expose::Published {
                    host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
                    blue_port: 9000,
                    green_port: 9000,
                }),
                "host port",
            ),
            (
                DockerConfig::new(AppName::new("a").unwrap(), ImageSource::tagged("web;rm"), 80),
                "image repository",
            ),
            (
                DockerConfig::new(AppName::new("a").unwrap(), ImageSource::Reference, 0),
                "container port",
            ),
        ];
        for (config, expected) in cases {
            match config.validate() {
                Err(Error::Invalid { what, .. }) if what == expected => {}
                other => panic!("expected invalid {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn reads_from_json_with_defaults_and_human_durations() {
        let config: DockerConfig = serde_json::from_str(
            r#"{"app":"shop","image":{"kind":"tagged","repository":"shop/web"},"container_port":8080,
                "stop_grace":"3s","health_check":{"command":["/app","--health-check"],"interval":"100ms"}}"#,
        )
        .unwrap();
        assert_eq!(config.stop_grace, Duration::from_secs(3));
        assert!(config.init);
        assert_eq!(config.expose, Expose::default());
        let check = config.health_check.as_ref().unwrap();
        assert_eq!((check.interval, check.retries), (Duration::from_millis(100), 3));
        let back: DockerConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
        assert!(serde_json::from_str::<DockerConfig>(r#"{"app":"bad app"}"#).is_err());
    }

    #[test]
    fn debug_shows_env_names_but_not_values() {
        let config = config().env("DATABASE_PASSWORD", "hunter2-s3cret").env("MODE", "prod");
        let text = format!("{config:?} {config:#?}");
        assert!(text.contains("DATABASE_PASSWORD") && text.contains("MODE"), "{text}");
        assert!(!text.contains("hunter2") && !text.contains("prod"), "{text}");
        assert!(text.contains("shop/web") && text.contains("8080"), "{text}");
        let err = config.env("TOKEN", "abc\0secret").validate().unwrap_err().to_string();
        assert!(err.contains("TOKEN") && !err.contains("secret"), "{err}");
    }

    #[test]
    fn a_bad_duration_or_address_names_the_key_and_the_value() {
        let with = |extra: &str| {
            serde_json::from_str::<DockerConfig>(&format!(
                r#"{{"app":"shop","image":{{"kind":"reference"}},"container_port":80,{extra}}}"#
            ))
            .unwrap_err()
            .to_string()
        };
        let e = with(r#""stop_grace":"ten seconds""#);
        assert!(
            e.contains(r#"invalid docker stop_grace "ten seconds": expected a duration"#),
            "{e}"
        );
        let e = with(r#""health_check":{"command":["/x"],"start_period":"-1s"}"#);
        assert!(e.contains(r#"invalid docker health_check.start_period "-1s""#), "{e}");
        let e = with(r#""expose":{"kind":"published","host_ip":"localhost"}"#);
        assert!(
            e.contains(r#"invalid docker expose.host_ip "localhost": expected an IP address"#),
            "{e}"
        );
    }

    #[test]
    fn a_mistyped_key_is_refused_by_name_at_every_level() {
        let with = |extra: &str| {
            serde_json::from_str::<DockerConfig>(&format!(
                r#"{{"app":"shop","image":{{"kind":"tagged","repository":"shop/web"}},"container_port":80{extra}}}"#
            ))
            .map(drop)
            .map_err(|e| e.to_string())
        };
        with("").unwrap();
        for (extra, key) in [
            (r#","stop_grace_ms":10000"#, "stop_grace_ms"),
            (r#","health_check":{"command":["/x"],"intervall":"1s"}"#, "intervall"),
            (
                r#","expose":{"kind":"published","host_ip":"127.0.0.1","blue":8081}"#,
                "blue",
            ),
            (r#","expose":{"kind":"network_address","port":8080}"#, "port"),
            (r#","restart":{"kind":"always","max_retries":3}"#, "max_retries"),
            (
                r#","restart":{"kind":"on_failure","max_retries":3,"delay":"1s"}"#,
                "delay",
            ),
        ] {
            let e = with(extra).unwrap_err();
            assert!(e.contains(&format!("unknown field `{key}`")), "{extra}: {e}");
        }
        let e = serde_json::from_str::<DockerConfig>(
            r#"{"app":"shop","image":{"kind":"reference","repository":"x"},"container_port":80}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `repository`"), "{e}");
    }

    #[test]
    fn replicas_are_validated_with_their_host_ports() {
        let published = |blue_port, green_port| Expose::Published {
            host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            blue_port,
            green_port,
        };
        let refused = |config: DockerConfig| match config.validate() {
            Err(Error::Invalid { what, value, reason }) => format!("{what} {value}: {reason}"),
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert!(refused(config().replicas(0)).starts_with("replicas 0:"));
        assert!(refused(config().replicas(MAX_REPLICAS + 1)).starts_with("replicas 101:"));
        config().replicas(MAX_REPLICAS).validate().unwrap();
        // Each slot takes one port per replica from its own.
        config().replicas(3).expose(published(9000, 9003)).validate().unwrap();
        config().replicas(3).expose(published(0, 0)).validate().unwrap();
        let overlap = refused(config().replicas(3).expose(published(9000, 9002)));
        assert!(
            overlap.starts_with("host port 9002:") && overlap.contains("9000..=9002"),
            "{overlap}"
        );
        let past = refused(config().replicas(3).expose(published(65534, 0)));
        assert!(past.starts_with("host port 65534:") && past.contains("65536"), "{past}");

        let expose = published(9000, 0);
        assert_eq!(expose.replica_host_port(Slot::Blue, 1), Some(9000));
        assert_eq!(expose.replica_host_port(Slot::Blue, 3), Some(9002));
        assert_eq!(
            expose.replica_host_port(Slot::Green, 3),
            Some(0),
            "engine-chosen stays so"
        );
        assert_eq!(Expose::NetworkAddress.replica_host_port(Slot::Blue, 2), None);
    }

    #[test]
    fn replicas_read_from_a_file_naming_a_zero_and_are_written_only_when_not_one() {
        let read = |extra: &str| {
            serde_json::from_str::<DockerConfig>(&format!(
                r#"{{"app":"shop","image":{{"kind":"reference"}},"container_port":80{extra}}}"#
            ))
        };
        assert_eq!(read("").unwrap().replicas, 1);
        assert_eq!(read(r#","replicas":3"#).unwrap().replicas, 3);
        let e = read(r#","replicas":0"#).unwrap_err().to_string();
        assert!(e.contains("invalid docker replicas 0: expected 1..=100"), "{e}");
        // One replica writes what a config written before replicas existed wrote (so the
        // snapshot fingerprint does not change).
        let json = serde_json::to_string(&config()).unwrap();
        assert!(!json.contains("replicas"), "{json}");
        let json = serde_json::to_string(&config().replicas(2)).unwrap();
        assert!(json.contains(r#""replicas":2"#), "{json}");
    }

    #[test]
    fn names_containers_and_finds_the_socket() {
        assert_eq!(config().container_name(Slot::Green), "shop-green");
        assert_eq!(config().replica_name(Slot::Green, 1), "shop-green");
        assert_eq!(config().replicas(3).replica_name(Slot::Green, 2), "shop-green-2");
        assert_eq!(config().replicas(3).container_name(Slot::Green), "shop-green");
        assert_eq!(config().socket("/x.sock").socket_path(), PathBuf::from("/x.sock"));
    }
}
