//! [`SwarmConfig`]: how one application's slots run as Swarm services.
//!
//! Built in code with [`SwarmConfig::new`] and its setters, or read from a file with serde
//! (durations as `"10s"`). [`SwarmConfig::validate`] names the first bad value;
//! [`SwarmEnvironment::connect`](crate::SwarmEnvironment::connect) calls it before anything runs.
//! The keys it shares with [`DockerConfig`](crate::DockerConfig) mean the same and are checked by
//! the same code.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bluegreen_core::{AppName, Error, Result, Slot};
use serde::{Deserialize, Serialize};

use crate::config::{
    check_command, check_container_port, check_env, check_labels, check_limits, check_slot_ports, HealthCheck,
    ImageSource, RestartPolicy, DEFAULT_SOCKET,
};

/// How one application runs on a Docker Swarm. See [`SwarmEnvironment`](crate::SwarmEnvironment)
/// for an example.
///
/// Its `Debug` output shows the environment variables' names but not their values.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SwarmConfig {
    /// The application: services are named `<app>-blue` and `<app>-green`.
    pub app: AppName,
    /// How a release becomes an image reference (the image must be on the engine: it is pinned
    /// by digest or id at deploy, see [`SwarmEnvironment`](crate::SwarmEnvironment)).
    pub image: ImageSource,
    /// The port the application listens on inside its containers.
    pub container_port: u16,
    /// The socket of a swarm *manager*'s engine; `None`: `DOCKER_HOST` if it is `unix://…`, else
    /// [`DEFAULT_SOCKET`].
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Replicated (how many tasks) or global (one task per node).
    #[serde(default)]
    pub mode: ServiceMode,
    /// Where the tasks' endpoints are reached.
    #[serde(default)]
    pub address: SwarmAddress,
    /// The host port the blue slot's tasks publish (host mode) on their node; `0` (the
    /// default): a port Swarm picks per task, read back from the task's port status. A fixed
    /// port serves one task per node only: refused for more than one replica.
    #[serde(default)]
    pub blue_port: u16,
    /// The same for the green slot.
    #[serde(default)]
    pub green_port: u16,
    /// Environment variables of the containers.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The arguments to the image's entrypoint; `None` keeps the image's `CMD`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Memory limit of each task in bytes.
    #[serde(default)]
    pub memory_bytes: Option<i64>,
    /// CPU limit of each task, in CPUs.
    #[serde(default)]
    pub cpus: Option<f64>,
    /// What Swarm does when a task exits: [`RestartPolicy::No`] (the default) is condition
    /// `none`, `OnFailure` is `on-failure` with its attempts, `UnlessStopped` and `Always` are
    /// `any`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// Written as the service's stop grace period (`StopGracePeriod`): Swarm sends SIGTERM, waits
    /// that long, then SIGKILL. Swarm's own grace is the one that applies; see
    /// [`SwarmEnvironment`](crate::SwarmEnvironment)'s `stop`.
    #[serde(
        default = "default_stop_grace",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::stop_grace"
    )]
    pub stop_grace: Duration,
    /// A Docker health check of each task's container.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
    /// Extra labels of the services (keys under `bluegreen.` are reserved; `{slot}` is expanded).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Run an init process as PID 1 of each task's container (on by default, as for containers).
    #[serde(default = "yes")]
    pub init: bool,
    /// How long a deploy waits for every task of the new spec to run before it fails.
    #[serde(
        default = "default_start_timeout",
        serialize_with = "bluegreen_core::model::field::serialize_duration",
        deserialize_with = "field_de::start_timeout"
    )]
    pub start_timeout: Duration,
}

impl std::fmt::Debug for SwarmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured, so a new field cannot be forgotten here.
        let SwarmConfig {
            app,
            image,
            container_port,
            socket,
            mode,
            address,
            blue_port,
            green_port,
            env,
            command,
            memory_bytes,
            cpus,
            restart,
            stop_grace,
            health_check,
            labels,
            init,
            start_timeout,
        } = self;
        let redacted: BTreeMap<&str, &str> = env.keys().map(|k| (k.as_str(), "<redacted>")).collect();
        f.debug_struct("SwarmConfig")
            .field("app", app)
            .field("image", image)
            .field("container_port", container_port)
            .field("socket", socket)
            .field("mode", mode)
            .field("address", address)
            .field("blue_port", blue_port)
            .field("green_port", green_port)
            .field("env", &redacted)
            .field("command", command)
            .field("memory_bytes", memory_bytes)
            .field("cpus", cpus)
            .field("restart", restart)
            .field("stop_grace", stop_grace)
            .field("health_check", health_check)
            .field("labels", labels)
            .field("init", init)
            .field("start_timeout", start_timeout)
            .finish()
    }
}

fn default_stop_grace() -> Duration {
    Duration::from_secs(10)
}

fn default_start_timeout() -> Duration {
    Duration::from_secs(60)
}

fn yes() -> bool {
    true
}

/// How many tasks a slot's service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServiceMode {
    /// `replicas` tasks, placed by Swarm.
    Replicated {
        /// How many (at least 1).
        replicas: u32,
    },
    /// One task on every node that can run it (available and ready; with
    /// [`SwarmAddress::Loopback`], the manager's own node only).
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    Global,
}

impl Default for ServiceMode {
    /// One replica.
    fn default() -> Self {
        ServiceMode::Replicated { replicas: 1 }
    }
}

/// Where a slot's tasks are reached. Ports are always published in host mode (on the task's own
/// node): Swarm's ingress routing mesh is not used, because it balances over all tasks itself and
/// hides which instance answered (and it does not answer at all in some sandboxes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SwarmAddress {
    /// `127.0.0.1`: the proxy runs on the manager whose engine this environment talks to, so
    /// the services are pinned to that node (`node.id==<its id>`).
    #[default]
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    Loopback,
    /// Each task at its node's address as Swarm knows it (`Status.Addr`, the address the node
    /// joined with): for a proxy that reaches every node.
    #[serde(deserialize_with = "bluegreen_core::model::field::no_fields")]
    NodeAddress,
}

impl SwarmConfig {
    /// A config for `app`, its images from `image`, listening on `container_port` inside: one
    /// replica, on loopback, Swarm-chosen host ports.
    pub fn new(app: AppName, image: ImageSource, container_port: u16) -> Self {
        SwarmConfig {
            app,
            image,
            container_port,
            socket: None,
            mode: ServiceMode::default(),
            address: SwarmAddress::default(),
            blue_port: 0,
            green_port: 0,
            env: BTreeMap::new(),
            command: None,
            memory_bytes: None,
            cpus: None,
            restart: RestartPolicy::default(),
            stop_grace: default_stop_grace(),
            health_check: None,
            labels: BTreeMap::new(),
            init: true,
            start_timeout: default_start_timeout(),
        }
    }

    /// Sets the engine socket.
    pub fn socket(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket = Some(path.into());
        self
    }

    /// Runs `replicas` tasks per slot.
    pub fn replicas(mut self, replicas: u32) -> Self {
        self.mode = ServiceMode::Replicated { replicas };
        self
    }

    /// Runs one task per node.
    pub fn global(mut self) -> Self {
        self.mode = ServiceMode::Global;
        self
    }

    /// Sets where endpoints are reached.
    pub fn address(mut self, address: SwarmAddress) -> Self {
        self.address = address;
        self
    }

    /// Publishes fixed host ports (`0`: Swarm-chosen).
    pub fn ports(mut self, blue: u16, green: u16) -> Self {
        self.blue_port = blue;
        self.green_port = green;
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

    /// Sets the memory limit of each task in bytes.
    pub fn memory_bytes(mut self, bytes: i64) -> Self {
        self.memory_bytes = Some(bytes);
        self
    }

    /// Sets the CPU limit of each task.
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Sets the restart policy.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Sets the service's stop grace period.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Sets the health check.
    pub fn health_check(mut self, check: HealthCheck) -> Self {
        self.health_check = Some(check);
        self
    }

    /// Adds a service label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Turns the init process on or off.
    pub fn init(mut self, init: bool) -> Self {
        self.init = init;
        self
    }

    /// Sets how long a deploy waits for its tasks to run.
    pub fn start_timeout(mut self, timeout: Duration) -> Self {
        self.start_timeout = timeout;
        self
    }

    /// The service name of `slot`: `<app>-<slot>`.
    pub fn service_name(&self, slot: Slot) -> String {
        format!("{}-{slot}", self.app)
    }

    /// The host port configured for `slot` (`0`: Swarm-chosen).
    pub fn host_port(&self, slot: Slot) -> u16 {
        match slot {
            Slot::Blue => self.blue_port,
            Slot::Green => self.green_port,
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
        if let ServiceMode::Replicated { replicas } = self.mode {
            if replicas == 0 {
                return Err(Error::invalid(
                    "replicas",
                    "0",
                    "a slot runs at least one task (stop scales a slot to 0)",
                ));
            }
            let fixed = [self.blue_port, self.green_port].into_iter().find(|p| *p != 0);
            if let (true, Some(port)) = (replicas > 1, fixed) {
                return Err(Error::invalid(
                    "host port",
                    port.to_string(),
                    format!(
                        "a fixed host-mode port serves one task per node, and {replicas} replicas may share one: \
                         use 0 (a port Swarm picks per task)"
                    ),
                ));
            }
        }
        check_slot_ports(self.blue_port, self.green_port)?;
        check_env(&self.env)?;
        check_command(self.command.as_deref())?;
        check_limits(self.memory_bytes, self.cpus)?;
        if let Some(check) = &self.health_check {
            check.validate()?;
        }
        check_labels(&self.labels)?;
        if self.start_timeout.is_zero() {
            return Err(Error::invalid("start timeout", "0s", "must be positive"));
        }
        Ok(())
    }
}

/// One deserializer per key that serde would otherwise refuse without naming it.
mod field_de {
    bluegreen_core::keyed_deserializers! {
        stop_grace -> std::time::Duration = duration("swarm stop_grace");
        start_timeout -> std::time::Duration = duration("swarm start_timeout");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SwarmConfig {
        SwarmConfig::new(AppName::new("shop").unwrap(), ImageSource::tagged("shop/web"), 8080)
    }

    #[test]
    fn validate_names_the_bad_value() {
        config().validate().unwrap();
        config().replicas(3).validate().unwrap();
        config().global().ports(9001, 9002).validate().unwrap();
        config().replicas(1).ports(9001, 9002).validate().unwrap();
        let cases = [
            (config().replicas(0), "replicas", "0"),
            (config().replicas(2).ports(9001, 0), "host port", "9001"),
            (config().ports(9001, 9001), "host port", "9001"),
            (config().env("BAD-NAME", "x"), "environment variable name", "BAD-NAME"),
            (config().label("bluegreen.slot", "x"), "label", "bluegreen.slot"),
            (config().cpus(-1.0), "cpu limit", "-1"),
            (config().start_timeout(Duration::ZERO), "start timeout", "0s"),
            (
                SwarmConfig::new(AppName::new("a").unwrap(), ImageSource::Reference, 0),
                "container port",
                "0",
            ),
        ];
        for (config, expected, value) in cases {
            match config.validate() {
                Err(Error::Invalid { what, value: v, .. }) if what == expected && v == value => {}
                other => panic!("expected invalid {expected} {value:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn reads_from_json_with_defaults() {
        let config: SwarmConfig = serde_json::from_str(
            r#"{"app":"shop","image":{"kind":"tagged","repository":"shop/web"},"container_port":8080,
                "mode":{"kind":"replicated","replicas":3},"stop_grace":"3s"}"#,
        )
        .unwrap();
        assert_eq!(config.mode, ServiceMode::Replicated { replicas: 3 });
        assert_eq!(config.address, SwarmAddress::Loopback);
        assert_eq!(
            (config.stop_grace, config.start_timeout),
            (Duration::from_secs(3), Duration::from_secs(60))
        );
        assert!(config.init);
        let back: SwarmConfig = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
        let global: SwarmConfig = serde_json::from_str(
            r#"{"app":"shop","image":{"kind":"reference"},"container_port":80,"mode":{"kind":"global"},
                "address":{"kind":"node_address"}}"#,
        )
        .unwrap();
        assert_eq!(
            (global.mode, global.address),
            (ServiceMode::Global, SwarmAddress::NodeAddress)
        );
        for (bad, key) in [
            (r#""mode":{"kind":"global","replicas":2}"#, "replicas"),
            (r#""network":"x""#, "network"),
            (r#""start_timeout":"soon""#, "swarm start_timeout"),
        ] {
            let e = serde_json::from_str::<SwarmConfig>(&format!(
                r#"{{"app":"shop","image":{{"kind":"reference"}},"container_port":80,{bad}}}"#
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn debug_shows_env_names_but_not_values() {
        let text = format!("{:?}", config().env("TOKEN", "s3cret-value"));
        assert!(text.contains("TOKEN") && !text.contains("s3cret"), "{text}");
    }

    #[test]
    fn names_services_and_ports_per_slot() {
        let c = config().ports(9001, 9002);
        assert_eq!(c.service_name(Slot::Blue), "shop-blue");
        assert_eq!((c.host_port(Slot::Blue), c.host_port(Slot::Green)), (9001, 9002));
    }
}
