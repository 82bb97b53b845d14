//! Reading a service's tasks: which belong to the current deploy, whether they run, where they
//! publish, and why one failed.

use std::collections::HashMap;

use bluegreen_core::{Endpoint, Endpoints, Error, Result};
use bollard::models::{EndpointPortConfigPublishModeEnum, NodeSpecAvailabilityEnum, NodeState, Task, TaskState};
use bollard::query_parameters::{ListNodesOptions, ListTasksOptions};

use crate::engine::Engine;
use crate::error::{backend, BACKEND};

/// The tasks of service `id` (every one Swarm still keeps: current and historic).
pub(crate) async fn of_service(engine: &Engine, id: &str) -> Result<Vec<Task>> {
    let options = ListTasksOptions {
        filters: Some(HashMap::from([("service".to_string(), vec![id.to_string()])])),
    };
    engine
        .client()
        .list_tasks(Some(options))
        .await
        .map_err(|e| backend(format_args!("listing the tasks of service {id}"), e))
}

/// The tasks among `ids` that Swarm still keeps (it forgets those of a removed service soon).
pub(crate) async fn with_ids(engine: &Engine, ids: &[String]) -> Result<Vec<Task>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let options = ListTasksOptions {
        filters: Some(HashMap::from([("id".to_string(), ids.to_vec())])),
    };
    let found = engine
        .client()
        .list_tasks(Some(options))
        .await
        .map_err(|e| backend("listing tasks by id", e))?;
    // The filter matches id prefixes: keep the exact ones.
    Ok(found
        .into_iter()
        .filter(|t| t.id.as_ref().is_some_and(|id| ids.contains(id)))
        .collect())
}

/// The task's state (`new` when Swarm did not say).
pub(crate) fn state(task: &Task) -> TaskState {
    task.status.as_ref().and_then(|s| s.state).unwrap_or(TaskState::NEW)
}

/// Whether Swarm wants `task` to run (its desired state is `running`).
pub(crate) fn is_wanted(task: &Task) -> bool {
    task.desired_state == Some(TaskState::RUNNING)
}

/// Whether `task` is over: it will not run again (Swarm starts a new task instead).
pub(crate) fn is_over(task: &Task) -> bool {
    matches!(
        state(task),
        TaskState::COMPLETE
            | TaskState::SHUTDOWN
            | TaskState::FAILED
            | TaskState::REJECTED
            | TaskState::REMOVE
            | TaskState::ORPHANED
    )
}

/// Whether `task` belongs to the deploy that wrote `marker` (its spec's `ForceUpdate`).
pub(crate) fn of_deploy(task: &Task, marker: u64) -> bool {
    task.spec.as_ref().and_then(|s| s.force_update).unwrap_or(0) == marker
}

/// The exit code of `task`'s container, when it exited and Swarm recorded it.
pub(crate) fn exit_code(task: &Task) -> Option<i64> {
    task.status.as_ref()?.container_status.as_ref()?.exit_code
}

/// `task` in a message: `shop-blue.2 (task abc123)`.
pub(crate) fn describe(service: &str, task: &Task) -> String {
    let id = task.id.as_deref().unwrap_or("?");
    let short = id.get(..12).unwrap_or(id);
    match task.slot {
        Some(slot) => format!("{service}.{slot} (task {short})"),
        None => format!("{service} (task {short})"),
    }
}

/// What Swarm says about `task`: its state, message and error (`failed: "task: non-zero exit
/// (1)"`).
pub(crate) fn report(task: &Task) -> String {
    let status = task.status.as_ref();
    let message = status.and_then(|s| s.message.as_deref()).unwrap_or("");
    let err = status.and_then(|s| s.err.as_deref()).unwrap_or("");
    let mut text = state(task).to_string();
    for part in [message, err] {
        if !part.is_empty() {
            text.push_str(&format!(": {part}"));
        }
    }
    text
}

/// The host port `task` published for `container_port` (host mode), from its port status.
pub(crate) fn published_port(task: &Task, container_port: u16) -> Option<u16> {
    let ports = task.status.as_ref()?.port_status.as_ref()?.ports.as_ref()?;
    ports
        .iter()
        .find(|p| {
            p.target_port == Some(i64::from(container_port))
                && p.publish_mode == Some(EndpointPortConfigPublishModeEnum::HOST)
        })
        .and_then(|p| p.published_port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
}

/// `tasks` in a stable order: by replica slot (replicated), then by node (global).
pub(crate) fn sort(tasks: &mut [Task]) {
    tasks.sort_by(|a, b| (a.slot, &a.node_id, &a.id).cmp(&(b.slot, &b.node_id, &b.id)));
}

/// Where `tasks` (running, sorted) serve: each at `host(node)` and its published port.
pub(crate) fn endpoints(
    service: &str,
    tasks: &[Task],
    container_port: u16,
    host: impl Fn(&str) -> Result<String>,
) -> Result<Endpoints> {
    let mut found = Vec::with_capacity(tasks.len());
    for task in tasks {
        let port = published_port(task, container_port).ok_or_else(|| {
            Error::backend(
                BACKEND,
                format!(
                    "{} runs but has no host-mode port published for {container_port}",
                    describe(service, task)
                ),
                false,
            )
        })?;
        let host = host(task.node_id.as_deref().unwrap_or(""))?;
        found.push(Endpoint::new(host, port)?);
    }
    Endpoints::new(found)
}

/// The swarm's nodes that a global service runs on: ready and available (`active`); each with
/// its address (`Status.Addr`).
pub(crate) async fn ready_nodes(engine: &Engine) -> Result<HashMap<String, String>> {
    let nodes = engine
        .client()
        .list_nodes(None::<ListNodesOptions>)
        .await
        .map_err(|e| backend("listing the swarm's nodes", e))?;
    Ok(nodes
        .into_iter()
        .filter(|n| {
            n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY)
                && n.spec.as_ref().and_then(|s| s.availability) == Some(NodeSpecAvailabilityEnum::ACTIVE)
        })
        .filter_map(|n| {
            let addr = n.status.and_then(|s| s.addr).unwrap_or_default();
            Some((n.id?, addr))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use bollard::models::{EndpointPortConfig, PortStatus, TaskSpec, TaskStatus};

    use super::*;

    fn task(slot: i64, state: TaskState, port: Option<i64>) -> Task {
        Task {
            id: Some(format!("task{slot}xxxxxxxxxxxx")),
            slot: Some(slot),
            node_id: Some("n1".into()),
            desired_state: Some(TaskState::RUNNING),
            spec: Some(TaskSpec {
                force_update: Some(3),
                ..Default::default()
            }),
            status: Some(TaskStatus {
                state: Some(state),
                err: (state == TaskState::FAILED).then(|| "task: non-zero exit (1)".into()),
                port_status: Some(PortStatus {
                    ports: Some(vec![EndpointPortConfig {
                        target_port: Some(8080),
                        published_port: port,
                        publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                        ..Default::default()
                    }]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_follow_the_replica_slots_and_published_ports() {
        let mut tasks = vec![
            task(2, TaskState::RUNNING, Some(30002)),
            task(1, TaskState::RUNNING, Some(30001)),
        ];
        sort(&mut tasks);
        let found = endpoints("shop-blue", &tasks, 8080, |_| Ok("127.0.0.1".into())).unwrap();
        assert_eq!(found.to_string(), "http://127.0.0.1:30001, http://127.0.0.1:30002");
        assert!(of_deploy(&tasks[0], 3) && !of_deploy(&tasks[0], 4));

        let unpublished = [task(1, TaskState::RUNNING, None)];
        let err = endpoints("shop-blue", &unpublished, 8080, |_| Ok("127.0.0.1".into())).unwrap_err();
        assert!(err.to_string().contains("shop-blue.1 (task task1xxxxxxx)"), "{err}");
    }

    #[test]
    fn a_failed_task_reports_what_swarm_said() {
        let failed = task(1, TaskState::FAILED, None);
        assert!(is_over(&failed));
        assert_eq!(report(&failed), "failed: task: non-zero exit (1)");
        assert!(!is_over(&task(1, TaskState::STARTING, None)));
    }
}
