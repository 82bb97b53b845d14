//! The labels every container carries, so that what runs can be rediscovered from the engine.
//!
//! | Label | Value |
//! |---|---|
//! | `bluegreen.app` | the application name |
//! | `bluegreen.slot` | `blue` or `green` |
//! | `bluegreen.release` | the release deployed |
//! | `bluegreen.deployed_at` | when, RFC 3339 UTC (`2026-11-22T04:00:00Z`) |
//! | `bluegreen.replica` | which replica, `1`…`n` (only when a slot runs several) |
//! | `bluegreen.replicas` | how many the slot was deployed with, `n` (only when several) |
//!
//! A container without the replica labels is the one replica of its slot (every container
//! deployed with one replica, as before replicas existed). The replica labels make a slot's
//! containers describe themselves: `status` knows a slot deployed with 3 replicas lacks one even
//! when today's configuration says 1.
//!
//! Keys under `bluegreen.` are reserved: [`DockerConfig::label`](crate::DockerConfig::label)
//! refuses them. In extra labels, [`SLOT_PLACEHOLDER`] (`{slot}`) in a key or value becomes the
//! slot's name, so each slot's container can carry labels of its own — e.g. Traefik's Docker
//! provider labels for a `shop-{slot}` service, which `bluegreen-traefik`'s hybrid mode weights.

use std::collections::HashMap;
use std::time::SystemTime;

use bluegreen_core::{AppName, Release, Slot};

/// The application label.
pub const APP: &str = "bluegreen.app";
/// The slot label.
pub const SLOT: &str = "bluegreen.slot";
/// The release label.
pub const RELEASE: &str = "bluegreen.release";
/// The deploy time label.
pub const DEPLOYED_AT: &str = "bluegreen.deployed_at";
/// The replica label: which replica (1-based) of its slot a container is.
pub const REPLICA: &str = "bluegreen.replica";
/// The replica count label: how many replicas its slot was deployed with.
pub const REPLICAS: &str = "bluegreen.replicas";
/// The prefix reserved for bluegreen's own labels.
pub const RESERVED_PREFIX: &str = "bluegreen.";

/// Replaced by the slot's name (`blue`, `green`) in extra labels' keys and values.
pub const SLOT_PLACEHOLDER: &str = "{slot}";

/// Which replica a container is, of how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Replica {
    /// Its number, `1..=of`.
    pub index: u32,
    /// How many replicas its slot was deployed with.
    pub of: u32,
}

impl Replica {
    /// The one replica of a slot that runs one.
    pub const ONLY: Replica = Replica { index: 1, of: 1 };

    /// Replica `index` (1-based) of `of`; `None` unless `1 <= index <= of`.
    pub fn new(index: u32, of: u32) -> Option<Replica> {
        (index >= 1 && index <= of).then_some(Replica { index, of })
    }
}

/// The labels of a container deployed now for `release` in `slot` of `app` as `replica`, with
/// `extra` ones (their [`SLOT_PLACEHOLDER`]s expanded). A slot's only replica gets no replica
/// labels.
pub(crate) fn for_deploy<'a>(
    app: &AppName,
    slot: Slot,
    release: &Release,
    replica: Replica,
    extra: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> HashMap<String, String> {
    let name = slot.to_string();
    let expand = |text: &String| text.replace(SLOT_PLACEHOLDER, &name);
    let mut labels: HashMap<String, String> = extra.into_iter().map(|(k, v)| (expand(k), expand(v))).collect();
    labels.insert(APP.into(), app.to_string());
    labels.insert(SLOT.into(), slot.to_string());
    labels.insert(RELEASE.into(), release.to_string());
    labels.insert(
        DEPLOYED_AT.into(),
        humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
    );
    if replica.of > 1 {
        labels.insert(REPLICA.into(), replica.index.to_string());
        labels.insert(REPLICAS.into(), replica.of.to_string());
    }
    labels
}

/// A list filter selecting the containers of `app` (in `slot`, if given).
pub(crate) fn filter(app: &AppName, slot: Option<Slot>) -> HashMap<String, Vec<String>> {
    let mut wanted = vec![format!("{APP}={app}")];
    if let Some(slot) = slot {
        wanted.push(format!("{SLOT}={slot}"));
    }
    HashMap::from([("label".to_string(), wanted)])
}

/// What a container's labels say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SlotLabels {
    /// Its slot.
    pub slot: Slot,
    /// Its release.
    pub release: Release,
    /// When it was deployed, as written (RFC 3339), if the label is there.
    pub deployed_at: Option<String>,
    /// Which replica it is ([`Replica::ONLY`] without the replica labels).
    pub replica: Replica,
}

impl SlotLabels {
    /// Reads the labels of a container of `app`; `None` when they are missing or not ours (a
    /// replica label without its count, or out of range, is not ours either).
    pub fn parse(app: &AppName, labels: &HashMap<String, String>) -> Option<SlotLabels> {
        if labels.get(APP).map(String::as_str) != Some(app.as_str()) {
            return None;
        }
        let replica = match (labels.get(REPLICA), labels.get(REPLICAS)) {
            (None, None) => Replica::ONLY,
            (Some(index), Some(of)) => Replica::new(index.parse().ok()?, of.parse().ok()?)?,
            _ => return None,
        };
        Some(SlotLabels {
            slot: labels.get(SLOT)?.parse().ok()?,
            release: Release::new(labels.get(RELEASE)?.as_str()).ok()?,
            deployed_at: labels.get(DEPLOYED_AT).cloned(),
            replica,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refuse_foreign_containers() {
        let app = AppName::new("shop").unwrap();
        let release = Release::new("v2").unwrap();
        let extra = HashMap::from([("team".to_string(), "web".to_string())]);
        let labels = for_deploy(&app, Slot::Green, &release, Replica::ONLY, &extra);
        assert_eq!(labels["team"], "web");
        assert!(
            !labels.contains_key(REPLICA) && !labels.contains_key(REPLICAS),
            "{labels:?}"
        );
        let parsed = SlotLabels::parse(&app, &labels).unwrap();
        assert_eq!((parsed.slot, &parsed.release), (Slot::Green, &release));
        assert_eq!(parsed.replica, Replica::ONLY);
        assert!(parsed.deployed_at.unwrap().ends_with('Z'));

        assert_eq!(SlotLabels::parse(&AppName::new("other").unwrap(), &labels), None);
        let mut broken = labels.clone();
        broken.insert(SLOT.into(), "purple".into());
        assert_eq!(SlotLabels::parse(&app, &broken), None);
    }

    #[test]
    fn replicas_of_several_carry_their_number_and_count() {
        let app = AppName::new("shop").unwrap();
        let release = Release::new("v2").unwrap();
        let second = Replica::new(2, 3).unwrap();
        let labels = for_deploy(&app, Slot::Blue, &release, second, &HashMap::new());
        assert_eq!((labels[REPLICA].as_str(), labels[REPLICAS].as_str()), ("2", "3"));
        assert_eq!(SlotLabels::parse(&app, &labels).unwrap().replica, second);

        for (index, of) in [
            (Some("4"), Some("3")),
            (Some("0"), Some("3")),
            (Some("1"), None),
            (None, Some("2")),
            (Some("x"), Some("2")),
        ] {
            let mut bad = labels.clone();
            bad.remove(REPLICA);
            bad.remove(REPLICAS);
            if let Some(index) = index {
                bad.insert(REPLICA.into(), index.into());
            }
            if let Some(of) = of {
                bad.insert(REPLICAS.into(), of.into());
            }
            assert_eq!(SlotLabels::parse(&app, &bad), None, "{index:?} of {of:?}");
        }
        assert_eq!(Replica::new(0, 1), None);
        assert_eq!(Replica::new(1, 1), Some(Replica::ONLY));
    }

    #[test]
    fn filters_by_app_and_slot() {
        let app = AppName::new("shop").unwrap();
        assert_eq!(filter(&app, None)["label"], vec!["bluegreen.app=shop"]);
        assert_eq!(
            filter(&app, Some(Slot::Blue))["label"],
            vec!["bluegreen.app=shop", "bluegreen.slot=blue"]
        );
    }
}
