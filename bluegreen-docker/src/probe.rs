//! [`DockerHealthProbe`]: the engine's own verdict (`State.Health`) on a slot's container.

use bluegreen_core::backend::async_trait;
use bluegreen_core::{AppName, HealthProbe, ProbeOutcome, ProbeTarget};
use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};
use bollard::query_parameters::InspectContainerOptions;

use crate::engine::Engine;
use crate::error::is_not_found;

/// Checks a slot by reading its container's Docker health (`State.Health.Status`), as set by the
/// health check of [`DockerConfig::health_check`](crate::DockerConfig::health_check) or the
/// image's `HEALTHCHECK`.
///
/// | Container | Outcome |
/// |---|---|
/// | running, `healthy` | [`Healthy`](ProbeOutcome::Healthy) |
/// | running, `starting` / `unhealthy` | [`Unhealthy`](ProbeOutcome::Unhealthy), with the last check's output |
/// | not running (exited, restarting, …) | `Unhealthy("container … is exited (exit code 1)")` |
/// | gone | `Unhealthy("container … does not exist")` |
/// | running without a health check | [`ProviderError`](ProbeOutcome::ProviderError): this probe cannot tell |
/// | the Docker API fails | [`ProviderError`](ProbeOutcome::ProviderError) |
///
/// Combine it with an `HttpProbe` (core's `AllOf`) to also check the published endpoint from
/// where the proxy stands. Made by [`DockerEnvironment::health_probe`](crate::DockerEnvironment::health_probe).
#[derive(Debug, Clone)]
pub struct DockerHealthProbe {
    engine: Engine,
    app: AppName,
}

impl DockerHealthProbe {
    /// A probe for the containers of `app` (`<app>-<slot>`).
    pub fn new(engine: Engine, app: AppName) -> Self {
        DockerHealthProbe { engine, app }
    }
}

#[async_trait]
impl HealthProbe for DockerHealthProbe {
    fn describe(&self) -> String {
        "Docker health (State.Health)".to_string()
    }

    /// One inspection of `<app>-<slot>`. Cancellation-safe.
    #[tracing::instrument(
        level = "debug",
        skip_all,
        fields(app = %self.app, slot = %target.slot, endpoint = %target.endpoint)
    )]
    async fn check(&self, target: &ProbeTarget) -> ProbeOutcome {
        let name = format!("{}-{}", self.app, target.slot);
        let info = match self
            .engine
            .client()
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
        {
            Ok(info) => info,
            Err(e) if is_not_found(&e) => return ProbeOutcome::Unhealthy(format!("container {name} does not exist")),
            Err(e) => return ProbeOutcome::ProviderError(format!("inspecting container {name}: {e}")),
        };
        let Some(state) = info.state else {
            return ProbeOutcome::ProviderError(format!("container {name} has no state"));
        };
        if state.status != Some(ContainerStateStatusEnum::RUNNING) {
            let status = state.status.map_or("in an unknown state".into(), |s| format!("is {s}"));
            let code = state.exit_code.map_or(String::new(), |c| format!(" (exit code {c})"));
            return ProbeOutcome::Unhealthy(format!("container {name} {status}{code}"));
        }
        let Some(health) = state.health else {
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
            Some(HealthStatusEnum::UNHEALTHY) => {
                ProbeOutcome::Unhealthy(format!("container {name} is unhealthy{last}"))
            }
            Some(HealthStatusEnum::NONE | HealthStatusEnum::EMPTY) | None => {
                ProbeOutcome::ProviderError(format!("container {name} has no health check"))
            }
        }
    }
}
