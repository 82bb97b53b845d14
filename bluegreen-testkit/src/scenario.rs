//! Scenarios every router is held to, written once: the weighted split as seen by clients, and
//! switches back and forth under load with every request counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bluegreen_core::model::{Endpoint, Slot, TrafficSplit};
use bluegreen_core::router::{Router, Routes};

use crate::load::{request_once, ClientMode, Load, LoadConfig, Outcome, Tally};

/// Sends `requests` requests, each on a new connection, to `proxy` with `Host: host`, and counts
/// the successful ones by `X-Version`. Other outcomes are counted under `"failed"`.
pub async fn versions_seen(proxy: SocketAddr, host: &str, requests: usize) -> BTreeMap<String, usize> {
    let load = LoadConfig::new(proxy, 1, ClientMode::NewConnection).host(host);
    let mut counts = BTreeMap::new();
    for _ in 0..requests {
        let outcome = request_once(&load).await;
        let key = match &outcome {
            Outcome::Response {
                status: 200..=299,
                version,
            } => version.clone(),
            _ => "failed".to_owned(),
        };
        *counts.entry(key).or_default() += 1;
    }
    counts
}

/// Switches between `blue` and `green` `switches` times through `router` (all traffic to one
/// slot, then the other) while `clients` clients in `mode` send requests through `proxy`, with
/// `settle` between switches. Returns the counts; every switch must be confirmed by the router.
#[allow(clippy::too_many_arguments)]
pub async fn switches_under_load(
    router: &dyn Router,
    proxy: SocketAddr,
    host: &str,
    blue: &Endpoint,
    green: &Endpoint,
    clients: usize,
    mode: ClientMode,
    switches: usize,
    settle: Duration,
) -> Tally {
    let both = |split: TrafficSplit| {
        Routes::new(split, Some(blue.clone().into()), Some(green.clone().into())).expect("valid routes")
    };
    router
        .apply(&both(TrafficSplit::all(Slot::Blue)))
        .await
        .expect("initial switch to blue");
    let load = Load::start(LoadConfig::new(proxy, clients, mode).host(host));
    tokio::time::sleep(settle).await;
    for i in 0..switches {
        let to = if i % 2 == 0 { Slot::Green } else { Slot::Blue };
        router
            .apply(&both(TrafficSplit::all(to)))
            .await
            .unwrap_or_else(|e| panic!("switch {i} to {to} failed: {e}"));
        tokio::time::sleep(settle).await;
    }
    load.stop().await
}
