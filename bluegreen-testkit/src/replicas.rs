//! Slots of several instances: demo apps that each answer their own version, and a canary over
//! them under load, every request counted per instance.

use std::net::SocketAddr;
use std::time::Duration;

use bluegreen_core::model::{Endpoints, Slot, TrafficSplit};
use bluegreen_core::router::{Router, Routes};

use crate::demo::DemoApp;
use crate::load::{ClientMode, Load, LoadConfig, Outcome, Tally};

/// The instances of one slot: `n` demo apps answering `<name>-1` … `<name>-<n>` (their
/// `X-Version`), so a client can tell which instance served it.
#[derive(Debug)]
pub struct Replicas {
    apps: Vec<DemoApp>,
}

impl Replicas {
    /// Starts `n` demo apps on loopback, named `<name>-1` … `<name>-<n>`.
    pub fn start(name: &str, n: usize) -> Result<Replicas, String> {
        let apps = (1..=n)
            .map(|i| DemoApp::start(&format!("{name}-{i}"), &[]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Replicas { apps })
    }

    /// Their endpoints, in order.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::new(self.apps.iter().map(DemoApp::endpoint)).expect("each app listens on its own port")
    }

    /// The versions they answer with, in order.
    pub fn versions(&self) -> Vec<&str> {
        self.apps.iter().map(DemoApp::version).collect()
    }
}

/// What clients saw while one step of a canary was live.
#[derive(Debug, Clone)]
pub struct Step {
    /// The split the router had confirmed.
    pub split: TrafficSplit,
    /// Requests answered while it was live (from `settle` after the router confirmed it to the
    /// next switch): every request, by status, version and error.
    pub window: Tally,
}

impl Step {
    /// The share (0–100) of this window's successful responses that `versions` answered.
    pub fn share(&self, versions: &[&str]) -> f64 {
        let ok: u64 = self.window.total() - self.window.failures();
        if ok == 0 {
            return 0.0;
        }
        let served: u64 = versions.iter().map(|v| self.window.served_by(v)).sum();
        served as f64 * 100.0 / ok as f64
    }
}

/// A canary under load, every request counted: all traffic to `blue`, then each of `green_steps`
/// (green's weight, e.g. 10, 50, 100) applied through `router`, each held for `hold`, while
/// `clients` clients of each mode in `modes` send requests to `proxy` with `Host: host`.
///
/// Returns what was seen while each step was live (counted from `settle` after the router
/// confirmed it, so a request in flight across the switch is not counted against the step),
/// and the whole run's counts (every request, from the first to the last).
#[allow(clippy::too_many_arguments)]
pub async fn canary_under_load(
    router: &dyn Router,
    proxy: SocketAddr,
    host: &str,
    blue: &Endpoints,
    green: &Endpoints,
    green_steps: &[u8],
    modes: &[ClientMode],
    clients: usize,
    hold: Duration,
    settle: Duration,
) -> (Vec<Step>, Tally) {
    router
        .apply(&Routes::only(Slot::Blue, blue.clone()))
        .await
        .expect("all traffic to blue");
    let loads: Vec<Load> = modes
        .iter()
        .map(|mode| Load::start(LoadConfig::new(proxy, clients, *mode).host(host)))
        .collect();
    let tally = |loads: &[Load]| merged(loads.iter().map(Load::tally));
    tokio::time::sleep(settle).await;
    let mut steps = Vec::new();
    for &green_weight in green_steps {
        let split = TrafficSplit::new(100 - green_weight, green_weight).expect("a weight of 0–100");
        let routes = Routes::new(split, Some(blue.clone()), Some(green.clone())).expect("valid routes");
        router
            .apply(&routes)
            .await
            .unwrap_or_else(|e| panic!("the switch to {split} failed: {e}"));
        tokio::time::sleep(settle).await;
        let before = tally(&loads);
        tokio::time::sleep(hold).await;
        steps.push(Step {
            split,
            window: since(&tally(&loads), &before),
        });
    }
    let mut totals = Vec::new();
    for load in loads {
        totals.push(load.stop().await);
    }
    (steps, merged(totals))
}

/// The counts of several loads together.
fn merged(tallies: impl IntoIterator<Item = Tally>) -> Tally {
    let mut all = Tally::default();
    for tally in tallies {
        for (outcome, n) in tally.outcomes {
            *all.outcomes.entry(outcome).or_default() += n;
        }
        all.retried += tally.retried;
        for (version, at) in tally.first_seen {
            let first = all.first_seen.entry(version).or_insert(at);
            *first = (*first).min(at);
        }
    }
    all
}

/// What `now` counted that `before` had not.
fn since(now: &Tally, before: &Tally) -> Tally {
    let count = |o: &Outcome| before.outcomes.get(o).copied().unwrap_or(0);
    Tally {
        outcomes: now
            .outcomes
            .iter()
            .map(|(o, n)| (o.clone(), n - count(o)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        retried: now.retried - before.retried,
        first_seen: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::ErrorKind;

    fn tally(counts: &[(&str, u64)], errors: u64) -> Tally {
        let mut t = Tally::default();
        for (version, n) in counts {
            let outcome = Outcome::Response {
                status: 200,
                version: (*version).to_owned(),
            };
            t.outcomes.insert(outcome, *n);
        }
        if errors > 0 {
            t.outcomes.insert(Outcome::Error(ErrorKind::Closed), errors);
        }
        t
    }

    #[test]
    fn windows_count_what_came_after_and_merged_loads_add_up() {
        let before = tally(&[("blue-1", 10), ("blue-2", 4)], 0);
        let now = tally(&[("blue-1", 15), ("blue-2", 4), ("green-1", 3)], 1);
        let window = since(&now, &before);
        assert_eq!(window.served_by("blue-1"), 5);
        assert_eq!(window.served_by("blue-2"), 0);
        assert_eq!(window.served_by("green-1"), 3);
        assert_eq!((window.total(), window.failures()), (9, 1));
        let step = Step {
            split: TrafficSplit::new(50, 50).unwrap(),
            window,
        };
        assert_eq!(step.share(&["green-1", "green-2"]), 37.5);
        let both = merged([before, now]);
        assert_eq!((both.served_by("blue-1"), both.total()), (25, 37));
    }
}
