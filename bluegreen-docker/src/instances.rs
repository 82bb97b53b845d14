//! A slot's containers as instances: which of them make up the slot's latest deploy, in replica
//! order, and what state each is in. Pure: the engine calls are in `environment.rs`.

use bluegreen_core::{Error, Release, Result, Slot};
use bollard::models::ContainerInspectResponse;

use crate::environment::SlotContainer;
use crate::error::BACKEND;
use crate::labels::Replica;

/// A container of a slot and its inspection.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// What the list said (id, name, labels).
    pub container: SlotContainer,
    /// What the inspection said.
    pub info: ContainerInspectResponse,
}

impl Found {
    /// Which replica its labels say it is.
    pub fn replica(&self) -> Replica {
        self.container.labels.replica
    }
}

/// The containers of a slot's latest deploy: its release and, per replica `1..=n`, its container
/// if it is there.
#[derive(Debug)]
pub(crate) struct Latest<'a> {
    /// The release of the slot's newest container.
    pub release: Release,
    /// Replica `i` at index `i - 1`; `None` where that replica has no container.
    pub replicas: Vec<Option<&'a Found>>,
}

impl<'a> Latest<'a> {
    /// Every replica there and running: their containers in replica order.
    pub fn all_running(&self) -> Option<Vec<&'a Found>> {
        self.replicas
            .iter()
            .map(|found| found.filter(|f| is_running(&f.info)))
            .collect()
    }

    /// Why the slot is not running, as an exit code: that of the first replica (in replica
    /// order) that is there and not running; `None` when only missing replicas are to blame.
    pub fn exit_code(&self) -> Option<i64> {
        self.replicas
            .iter()
            .flatten()
            .find(|f| !is_running(&f.info))
            .and_then(|f| exit_code(&f.info))
    }
}

/// The slot's latest deploy among `found` (newest first, as listed): the newest container names
/// the release and the replica count; each replica is the newest container of that release
/// labelled as it. Containers of other deploys (stale extras a failed cleanup left) are not part
/// of it. `None` when `found` is empty.
pub(crate) fn latest(found: &[Found]) -> Option<Latest<'_>> {
    let newest = found.first()?;
    let release = newest.container.labels.release.clone();
    let of = newest.replica().of;
    let replicas = (1..=of)
        .map(|index| {
            found
                .iter()
                .find(|f| f.container.labels.release == release && f.replica() == Replica { index, of })
        })
        .collect();
    Some(Latest { release, replicas })
}

/// The first of `replicas` (a slot's, in replica order), once they are known to run one image
/// id: what pins the slot in a snapshot.
///
/// # Errors
/// [`Error::Backend`] when they run different images (`deploy` never leaves them so; a container
/// made by hand could): no one image pins the slot. [`Error::NotFound`] when there is none.
pub(crate) fn one_image<'a>(slot: Slot, replicas: &[&'a Found]) -> Result<&'a Found> {
    let mut images: Vec<&str> = replicas
        .iter()
        .filter_map(|f| f.info.image.as_deref().filter(|id| !id.is_empty()))
        .collect();
    images.sort_unstable();
    images.dedup();
    if images.len() > 1 {
        return Err(Error::backend(
            BACKEND,
            format!(
                "the replicas of {slot} run different images ({}): none pins the slot; deploy it again",
                images.join(", ")
            ),
            false,
        ));
    }
    replicas.first().copied().ok_or_else(|| Error::NotFound {
        what: "container of slot",
        name: slot.to_string(),
    })
}

/// `found` in replica order (then newest first): the order in which `stop`, `remove` and `logs`
/// report a slot's containers.
pub(crate) fn in_replica_order(mut found: Vec<Found>) -> Vec<Found> {
    // Stable: equal replicas keep the newest first.
    found.sort_by_key(|f| f.replica().index);
    found
}

/// The container name without the engine's leading `/`.
pub(crate) fn display_name(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

/// Running and serving: a container Docker is restarting (between a crash and the next start)
/// counts as not running.
pub(crate) fn is_running(info: &ContainerInspectResponse) -> bool {
    let state = info.state.as_ref();
    state.and_then(|s| s.running).unwrap_or(false) && !state.and_then(|s| s.restarting).unwrap_or(false)
}

/// Running, or about to run again (Docker is restarting it): what `stop` must stop.
pub(crate) fn is_active(info: &ContainerInspectResponse) -> bool {
    let state = info.state.as_ref();
    state.and_then(|s| s.running).unwrap_or(false) || state.and_then(|s| s.restarting).unwrap_or(false)
}

/// The container's last exit code, when known.
pub(crate) fn exit_code(info: &ContainerInspectResponse) -> Option<i64> {
    info.state.as_ref().and_then(|s| s.exit_code)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bluegreen_core::AppName;
    use bollard::models::ContainerState;

    use super::*;
    use crate::labels::{self, SlotLabels};

    fn found(id: &str, release: &str, replica: Replica, running: bool, code: i64) -> Found {
        let app = AppName::new("shop").unwrap();
        let release = Release::new(release).unwrap();
        let all = labels::for_deploy(&app, Slot::Blue, &release, replica, &HashMap::new());
        Found {
            container: SlotContainer {
                id: id.into(),
                name: id.into(),
                labels: SlotLabels::parse(&app, &all).unwrap(),
            },
            info: ContainerInspectResponse {
                state: Some(ContainerState {
                    running: Some(running),
                    restarting: Some(false),
                    exit_code: Some(code),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    }

    fn of3(index: u32) -> Replica {
        Replica::new(index, 3).unwrap()
    }

    fn ids(found: &[&Found]) -> Vec<String> {
        found.iter().map(|f| f.container.id.clone()).collect()
    }

    #[test]
    fn every_replica_running_is_a_running_slot_in_replica_order() {
        let all = [
            found("c", "v2", of3(3), true, 0),
            found("a", "v2", of3(1), true, 0),
            found("b", "v2", of3(2), true, 0),
        ];
        let latest = latest(&all).unwrap();
        assert_eq!(latest.release.as_str(), "v2");
        assert_eq!(ids(&latest.all_running().unwrap()), ["a", "b", "c"]);
    }

    #[test]
    fn a_missing_or_exited_replica_is_a_stopped_slot_with_its_exit_code() {
        let missing = [found("a", "v2", of3(1), true, 0), found("c", "v2", of3(3), true, 0)];
        let latest_missing = latest(&missing).unwrap();
        assert!(latest_missing.all_running().is_none());
        assert_eq!(latest_missing.exit_code(), None, "only a missing replica to blame");

        let exited = [
            found("a", "v2", of3(1), true, 0),
            found("b", "v2", of3(2), false, 137),
            found("c", "v2", of3(3), false, 1),
        ];
        let latest_exited = latest(&exited).unwrap();
        assert!(latest_exited.all_running().is_none());
        assert_eq!(latest_exited.exit_code(), Some(137), "the first in replica order");
    }

    #[test]
    fn the_newest_container_says_which_deploy_counts() {
        // A stale single container of v1, and all three replicas of v2 (newest first).
        let all = [
            found("b", "v2", of3(2), true, 0),
            found("a", "v2", of3(1), true, 0),
            found("c", "v2", of3(3), true, 0),
            found("old", "v1", Replica::ONLY, true, 0),
        ];
        assert_eq!(ids(&latest(&all).unwrap().all_running().unwrap()), ["a", "b", "c"]);
        // The other way round: a slot deployed with one replica after three.
        let all = [
            found("one", "v3", Replica::ONLY, true, 0),
            found("a", "v2", of3(1), true, 0),
        ];
        assert_eq!(ids(&latest(&all).unwrap().all_running().unwrap()), ["one"]);
        // A replica of another release does not stand in for a missing one.
        let all = [found("a", "v2", of3(1), true, 0), found("b", "v1", of3(2), true, 0)];
        assert!(latest(&all).unwrap().all_running().is_none());
        assert!(latest(&[]).is_none());
    }

    #[test]
    fn a_slot_is_pinned_by_one_image_or_not_at_all() {
        let with_image = |id: &str, index, image: &str| {
            let mut f = found(id, "v2", of3(index), true, 0);
            f.info.image = Some(image.into());
            f
        };
        let (a, b) = (with_image("a", 1, "sha256:1"), with_image("b", 2, "sha256:1"));
        assert_eq!(one_image(Slot::Blue, &[&a, &b]).unwrap().container.id, "a");
        let c = with_image("c", 3, "sha256:2");
        let err = one_image(Slot::Blue, &[&a, &b, &c]).unwrap_err().to_string();
        assert!(err.contains("sha256:1, sha256:2") && err.contains("blue"), "{err}");
        assert!(matches!(one_image(Slot::Blue, &[]), Err(Error::NotFound { .. })));
    }

    #[test]
    fn replica_order_keeps_the_newest_first_among_equals() {
        let sorted = in_replica_order(vec![
            found("c", "v2", of3(3), true, 0),
            found("new1", "v2", of3(1), true, 0),
            found("old1", "v1", Replica::ONLY, true, 0),
        ]);
        let order: Vec<&str> = sorted.iter().map(|f| f.container.id.as_str()).collect();
        assert_eq!(order, ["new1", "old1", "c"]);
        assert_eq!(display_name("/shop-blue-1"), "shop-blue-1");
        assert!(!is_active(&sorted[0].info) || is_running(&sorted[0].info));
    }
}
