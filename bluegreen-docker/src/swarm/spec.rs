//! The Swarm service spec of a slot, built from a [`SwarmConfig`].

use std::collections::HashMap;

use bluegreen_core::{Release, Slot};
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum, Limit, ServiceSpec,
    ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};

use super::config::{ServiceMode, SwarmConfig};
use crate::config::RestartPolicy;
use crate::labels;
use crate::spec::{env_list, health_config, nanos};

/// The placement constraint that a stopped *global* service carries: no node has this label, so
/// no node runs a task (a global service cannot be scaled to 0).
pub(crate) const STOPPED_CONSTRAINT: &str = "node.labels.bluegreen.stopped==true";

/// What a deploy writes besides the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deploy<'a> {
    /// The slot.
    pub slot: Slot,
    /// The release, for the labels.
    pub release: &'a Release,
    /// The image, pinned (a digest reference or an image id).
    pub image: &'a str,
    /// The node the tasks are pinned to ([`SwarmAddress::Loopback`](super::SwarmAddress::Loopback)).
    pub node: Option<&'a str>,
    /// The spec's `ForceUpdate` counter: a new value makes Swarm replace every task, and tells
    /// this deploy's tasks (their spec carries it) from older ones.
    pub marker: u64,
}

/// The service spec of `deploy` under `c`.
pub(crate) fn service_spec(c: &SwarmConfig, deploy: Deploy<'_>) -> ServiceSpec {
    let Deploy {
        slot,
        release,
        image,
        node,
        marker,
    } = deploy;
    let mode = match c.mode {
        ServiceMode::Replicated { replicas } => ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(replicas)),
            }),
            ..Default::default()
        },
        ServiceMode::Global => ServiceSpecMode {
            global: Some(HashMap::new()),
            ..Default::default()
        },
    };
    let host_port = c.host_port(slot);
    let port = EndpointPortConfig {
        name: None,
        protocol: None,
        target_port: Some(i64::from(c.container_port)),
        published_port: (host_port != 0).then_some(i64::from(host_port)),
        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
    };
    let (condition, max_attempts) = match c.restart {
        RestartPolicy::No => (TaskSpecRestartPolicyConditionEnum::NONE, None),
        RestartPolicy::OnFailure { max_retries } => (
            TaskSpecRestartPolicyConditionEnum::ON_FAILURE,
            Some(i64::from(max_retries)),
        ),
        RestartPolicy::UnlessStopped | RestartPolicy::Always => (TaskSpecRestartPolicyConditionEnum::ANY, None),
    };
    let limits = (c.memory_bytes.is_some() || c.cpus.is_some()).then(|| Limit {
        memory_bytes: c.memory_bytes,
        nano_cpus: c.cpus.map(|cpus| (cpus * 1e9) as i64),
        pids: None,
    });
    ServiceSpec {
        name: Some(c.service_name(slot)),
        labels: Some(labels::for_deploy(
            &c.app,
            slot,
            release,
            labels::Replica::ONLY,
            &c.labels,
        )),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_string()),
                args: c.command.clone(),
                env: Some(env_list(&c.env)),
                stop_grace_period: Some(nanos(c.stop_grace)),
                health_check: c.health_check.as_ref().map(health_config),
                init: Some(c.init),
                ..Default::default()
            }),
            resources: limits.map(|limits| TaskSpecResources {
                limits: Some(limits),
                ..Default::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(condition),
                max_attempts,
                ..Default::default()
            }),
            placement: node.map(|id| TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={id}")]),
                ..Default::default()
            }),
            force_update: Some(marker),
            ..Default::default()
        }),
        mode: Some(mode),
        // The slot has no traffic while it is deployed: replace every task at once, the old
        // ones first (a fixed host port is free again for the new ones).
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
            ..Default::default()
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::VIP),
            ports: Some(vec![port]),
        }),
        ..Default::default()
    }
}

/// `spec`, stopped: a replicated service scaled to 0, a global one constrained to no node.
pub(crate) fn stopped(mut spec: ServiceSpec) -> ServiceSpec {
    let mode = spec.mode.get_or_insert_with(Default::default);
    if mode.global.is_some() {
        let template = spec.task_template.get_or_insert_with(Default::default);
        let placement = template.placement.get_or_insert_with(Default::default);
        let constraints = placement.constraints.get_or_insert_with(Vec::new);
        if !constraints.iter().any(|c| c == STOPPED_CONSTRAINT) {
            constraints.push(STOPPED_CONSTRAINT.to_string());
        }
    } else {
        mode.replicated = Some(ServiceSpecModeReplicated { replicas: Some(0) });
    }
    spec
}

/// Whether `spec` is stopped (see [`stopped`]).
pub(crate) fn is_stopped(spec: &ServiceSpec) -> bool {
    let mode = spec.mode.as_ref();
    if mode.is_some_and(|m| m.global.is_some()) {
        spec.task_template
            .as_ref()
            .and_then(|t| t.placement.as_ref())
            .and_then(|p| p.constraints.as_ref())
            .is_some_and(|c| c.iter().any(|c| c == STOPPED_CONSTRAINT))
    } else {
        replicas(spec) == Some(0)
    }
}

/// The replicas of a replicated `spec`; `None` for a global one.
pub(crate) fn replicas(spec: &ServiceSpec) -> Option<u64> {
    let replicated = spec.mode.as_ref()?.replicated.as_ref()?;
    Some(replicated.replicas.unwrap_or(1).max(0).unsigned_abs())
}

/// The `ForceUpdate` counter of `spec` (0 when unset).
pub(crate) fn marker(spec: &ServiceSpec) -> u64 {
    spec.task_template.as_ref().and_then(|t| t.force_update).unwrap_or(0)
}

/// The image of `spec`'s containers.
pub(crate) fn image(spec: &ServiceSpec) -> Option<&str> {
    spec.task_template.as_ref()?.container_spec.as_ref()?.image.as_deref()
}

#[cfg(test)]
mod tests {
    use bluegreen_core::AppName;

    use super::*;
    use crate::config::ImageSource;

    fn spec(c: &SwarmConfig) -> ServiceSpec {
        let release = Release::new("v1").unwrap();
        service_spec(
            c,
            Deploy {
                slot: Slot::Green,
                release: &release,
                image: "sha256:abc",
                node: Some("n1"),
                marker: 7,
            },
        )
    }

    #[test]
    fn a_slot_is_a_labelled_service_publishing_in_host_mode() {
        let c = SwarmConfig::new(AppName::new("shop").unwrap(), ImageSource::tagged("web"), 8080)
            .replicas(3)
            .stop_grace(std::time::Duration::from_millis(2500));
        let s = spec(&c);
        assert_eq!(s.name.as_deref(), Some("shop-green"));
        assert_eq!(s.labels.as_ref().unwrap()[labels::SLOT], "green");
        assert_eq!(replicas(&s), Some(3));
        let port = &s.endpoint_spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(port.publish_mode, Some(EndpointPortConfigPublishModeEnum::HOST));
        assert_eq!((port.target_port, port.published_port), (Some(8080), None));
        let template = s.task_template.as_ref().unwrap();
        let container = template.container_spec.as_ref().unwrap();
        assert_eq!(container.stop_grace_period, Some(2_500_000_000));
        assert_eq!(container.image.as_deref(), Some("sha256:abc"));
        assert_eq!(
            template.placement.as_ref().unwrap().constraints.as_ref().unwrap(),
            &["node.id==n1"]
        );
        assert_eq!(marker(&s), 7);
        assert!(!is_stopped(&s));
        let s = stopped(s);
        assert!(is_stopped(&s) && replicas(&s) == Some(0));
    }

    #[test]
    fn a_global_service_stops_by_a_constraint_no_node_meets() {
        let c = SwarmConfig::new(AppName::new("shop").unwrap(), ImageSource::tagged("web"), 8080)
            .global()
            .ports(9001, 9002);
        let s = spec(&c);
        assert_eq!(replicas(&s), None);
        let port = &s.endpoint_spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        assert_eq!(port.published_port, Some(9002));
        let s = stopped(stopped(s));
        assert!(is_stopped(&s));
        let constraints = s.task_template.unwrap().placement.unwrap().constraints.unwrap();
        assert_eq!(constraints, ["node.id==n1", STOPPED_CONSTRAINT]);
    }
}
