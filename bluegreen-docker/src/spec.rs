//! Pieces of the Engine API's specs that containers ([`DockerEnvironment`]) and Swarm services
//! ([`SwarmEnvironment`]) share, written once.
//!
//! [`DockerEnvironment`]: crate::DockerEnvironment
//! [`SwarmEnvironment`]: crate::SwarmEnvironment

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::HealthConfig;

use crate::config::HealthCheck;

/// `d` in nanoseconds, as the Engine API counts durations (saturating).
pub(crate) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The environment as the Engine API takes it: `NAME=value`, in name order.
pub(crate) fn env_list(env: &BTreeMap<String, String>) -> Vec<String> {
    env.iter().map(|(k, v)| format!("{k}={v}")).collect()
}

/// `check` as the Engine API's health config (exec form: `CMD`, then the command).
pub(crate) fn health_config(check: &HealthCheck) -> HealthConfig {
    HealthConfig {
        test: Some(
            std::iter::once("CMD".to_string())
                .chain(check.command.iter().cloned())
                .collect(),
        ),
        interval: Some(nanos(check.interval)),
        timeout: Some(nanos(check.timeout)),
        retries: Some(i64::from(check.retries)),
        start_period: Some(nanos(check.start_period)),
        start_interval: None,
    }
}
