//! [`DockerHealthProbe`]: the engine's own verdict (`State.Health`) on the container of one
//! instance.

use bluegreen_core::backend::async_trait;
use bluegreen_core::{HealthProbe, ProbeOutcome, ProbeTarget};
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};

use crate::environment::DockerEnvironment;
use crate::instances::{is_running, Found};

/// Checks an instance by reading the Docker health (`State.Health.Status`) of the container that
/// serves at the probed endpoint, as set by the health check of
/// [`DockerConfig::health_check`](crate::DockerConfig::health_check) or the image's
/// `HEALTHCHECK`. With several [`replicas`](crate::DockerConfig::replicas), each endpoint is
/// one replica's, so each replica is judged on its own.
///
/// The container is found among the slot's (by their labels) as the running one whose endpoint —
/// read back as `status` reads it — is the target's.
///
/// | Container | Outcome |
/// |---|---|
/// | running, `healthy` | [`Healthy`](ProbeOutcome::Healthy) |
/// | running, `starting` / `unhealthy` | [`Unhealthy`](ProbeOutcome::Unhealthy), with the last check's output |
/// | none running at the endpoint | `Unhealthy("no running container … serves at …")`, naming those of the slot that are not running (`container shop-blue-2 is exited (exit code 1)`) |
/// | running without a health check | [`ProviderError`](ProbeOutcome::ProviderError): this probe cannot tell |
/// | the Docker API fails | [`ProviderError`](ProbeOutcome::ProviderError) |
///
/// Each check lists the slot's containers and inspects them (one list and one inspection per
/// container). Combine it with an `HttpProbe` (core's `AllOf`) to also check the published
/// endpoint from where the proxy stands. Made by
/// [`DockerEnvironment::health_probe`](crate::DockerEnvironment::health_probe).
#[derive(Debug, Clone)]
pub struct DockerHealthProbe {
    environment: DockerEnvironment,
}

impl DockerHealthProbe {
    /// A probe for the containers of `environment`'s application.
    pub fn new(environment: DockerEnvironment) -> Self {
        DockerHealthProbe { environment }
    }
}

#[async_trait]
impl HealthProbe for DockerHealthProbe {
    fn describe(&self) -> String {
        "Docker health (State.Health)".to_string()
    }

    /// One listing of the slot's containers and their inspection. Cancellation-safe.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(app = %self.environment.config().app, slot = %target.slot, endpoint = %target.endpoint)
    )]
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let found = match self.environment.find_all(target.slot).await {
            Ok(found) => found,
            Err(e) => return ProbeOutcome::ProviderError(e.chain().to_string()),
        };
        let serving = found.iter().find(|f| {
            is_running(&f.info)
                && self
                    .environment
                    .endpoint_of(&f.info)
                    .is_ok_and(|endpoint| endpoint == target.endpoint)
        });
        match serving {
            Some(found) => health_of(found),
            None => ProbeOutcome::Unhealthy(nobody_serves(
                &self.environment.config().app.to_string(),
                target,
                &found,
            )),
        }
    }
}

/// Why no container serves at the target: the slot is empty, or these are not running.
fn nobody_serves(app: &str, target: &ProbeTarget, found: &[Found]) -> String {
    let mut message = format!(
        "no running container of {app} in {} serves at {}",
        target.slot, target.endpoint
    );
    if found.is_empty() {
        message.push_str(" (the slot has no container)");
    }
    for f in found.iter().filter(|f| !is_running(&f.info)) {
        let state = f.info.state.as_ref();
        let status = state
            .and_then(|s| s.status)
            .map_or("in an unknown state".into(), |s| format!("is {s}"));
        let code = state
            .and_then(|s| s.exit_code)
            .map_or(String::new(), |c| format!(" (exit code {c})"));
        message.push_str(&format!("; container {} {status}{code}", f.container.name));
    }
    message
}

/// The Docker health of a running container.
fn health_of(found: &Found) -> ProbeOutcome {
    let name = &found.container.name;
    let Some(state) = found.info.state.as_ref() else {
        return ProbeOutcome::ProviderError(format!("container {name} has no state"));
    };
    if state.status != Some(ContainerStateStatusEnum::RUNNING) {
        let status = state.status.map_or("in an unknown state".into(), |s| format!("is {s}"));
        let code = state.exit_code.map_or(String::new(), |c| format!(" (exit code {c})"));
        return ProbeOutcome::Unhealthy(format!("container {name} {status}{code}"));
    }
    let Some(health) = state.health.as_ref() else {
        return ProbeOutcome::ProviderError(format!("container {name} has no health check"));
    };
    let last = health
        .log
        .as_ref()
        .and_then(|log| log.last())
        .map(|r| {
            let output = r.output.as_deref().unwrap_or("").trim();
            format!(": last check exited {} {output:?}", r.exit_code.unwrap_or(-1))
        })
        .unwrap_or_default();
    match health.status {
        Some(HealthStatusEnum::HEALTHY) => ProbeOutcome::Healthy,
        Some(HealthStatusEnum::STARTING) => ProbeOutcome::Unhealthy(format!("container {name} is starting{last}")),
        Some(HealthStatusEnum::UNHEALTHY) => ProbeOutcome::Unhealthy(format!("container {name} is unhealthy{last}")),
        Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => {
            ProbeOutcome::ProviderError(format!("container {name} has no health check"))
        }
    }
}
