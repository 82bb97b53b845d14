//! The labels every container carries, so that what runs can be rediscovered from the engine.
//!
//! | Label | Value |
//! |---|---|
//! | `bluegreen.app` | the application name |
//! | `bluegreen.slot` | `blue` or `green` |
//! | `bluegreen.release` | the release deployed |
//! | `bluegreen.deployed_at` | when, RFC 3339 UTC (`2026-11-22T04:00:00Z`) |
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
/// The prefix reserved for bluegreen's own labels.
pub const RESERVED_PREFIX: &str = "bluegreen.";

/// Replaced by the slot's name (`blue`, `green`) in extra labels' keys and values.
pub const SLOT_PLACEHOLDER: &str = "{slot}";

/// The labels of a container deployed now for `release` in `slot` of `app`, with `extra` ones
/// (their [`SLOT_PLACEHOLDER`]s expanded).
pub(crate) fn for_deploy<'a>(
    app: &AppName,
    slot: Slot,
    release: &Release,
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
}

impl SlotLabels {
    /// Reads the labels of a container of `app`; `None` when they are missing or not ours.
    pub fn parse(app: &AppName, labels: &HashMap<String, String>) -> Option<SlotLabels> {
        if labels.get(APP).map(String::as_str) != Some(app.as_str()) {
            return None;
        }
        Some(SlotLabels {
            slot: labels.get(SLOT)?.parse().ok()?,
            release: Release::new(labels.get(RELEASE)?.as_str()).ok()?,
            deployed_at: labels.get(DEPLOYED_AT).cloned(),
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
        let labels = for_deploy(&app, Slot::Green, &release, &extra);
        assert_eq!(labels["team"], "web");
        let parsed = SlotLabels::parse(&app, &labels).unwrap();
        assert_eq!((parsed.slot, parsed.release), (Slot::Green, release));
        assert!(parsed.deployed_at.unwrap().ends_with('Z'));

        assert_eq!(SlotLabels::parse(&AppName::new("other").unwrap(), &labels), None);
        let mut broken = labels.clone();
        broken.insert(SLOT.into(), "purple".into());
        assert_eq!(SlotLabels::parse(&app, &broken), None);
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
