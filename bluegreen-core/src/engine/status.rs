//! What runs and what is live, asked of the systems themselves.

use std::fmt;

use serde::Serialize;

use crate::environment::SlotStatus;
use crate::machine::{Deployment, Phase};
use crate::model::{AppName, Endpoints, Release, Slot};
use crate::router::{Routes, Serving};

/// Where the journal, the router's configuration, the live proxy and the environment disagree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "drift", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Drift {
    /// The proxy does not serve the router's configuration, or the configuration is not the
    /// router's (see [`Serving`]).
    Proxy {
        /// What the router saw.
        serving: Serving,
    },
    /// The configuration routes a slot somewhere the environment does not run it.
    Endpoint {
        /// The slot.
        slot: Slot,
        /// Where the configuration sends its traffic.
        routed: Endpoints,
        /// Where the environment runs it (`None`: not running).
        running: Option<Endpoints>,
    },
    /// The last finished deployment left another slot live than the configuration routes to.
    Journal {
        /// The deployment.
        deployment: String,
        /// The slot it left live (`None`: nothing).
        expected: Option<Slot>,
        /// The slot the configuration routes all traffic to (`None`: none, or split).
        routed: Option<Slot>,
    },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slot = |s: &Option<Slot>| s.map_or_else(|| "none".to_string(), |s| s.to_string());
        match self {
            Drift::Proxy { serving } => write!(f, "proxy: {serving}"),
            Drift::Endpoint { slot, routed, running } => match running {
                Some(running) => write!(f, "{slot} is routed to {routed} but runs at {running}"),
                None => write!(f, "{slot} is routed to {routed} but does not run"),
            },
            Drift::Journal {
                deployment,
                expected,
                routed,
            } => write!(
                f,
                "deployment {deployment} left {} live, but the router sends all traffic to {}",
                slot(expected),
                slot(routed)
            ),
        }
    }
}

/// The state of an application now.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Status {
    /// The application.
    pub app: AppName,
    /// The routes the router's configuration holds (`None`: nothing routed yet, or a
    /// configuration the router cannot read: see [`serving`](Self::serving)).
    pub routes: Option<Routes>,
    /// Whether the live proxy serves [`routes`](Self::routes).
    pub serving: Serving,
    /// What runs in the blue slot.
    pub blue: SlotStatus,
    /// What runs in the green slot.
    pub green: SlotStatus,
    /// The latest deployment, as the journal last recorded it.
    pub last: Option<Deployment>,
    /// Where journal, configuration, proxy and environment disagree; empty when they agree.
    pub drift: Vec<Drift>,
}

impl Status {
    /// Assembles a status and finds its drift.
    pub(super) fn new(
        app: AppName,
        routes: Option<Routes>,
        serving: Serving,
        [blue, green]: [SlotStatus; 2],
        last: Option<Deployment>,
    ) -> Status {
        let mut status = Status {
            app,
            routes,
            serving,
            blue,
            green,
            last,
            drift: Vec::new(),
        };
        status.drift = status.find_drift();
        status
    }

    fn find_drift(&self) -> Vec<Drift> {
        let mut drift = Vec::new();
        match &self.serving {
            Serving::Confirmed | Serving::Unobservable => {}
            serving @ (Serving::Stale(_) | Serving::Foreign(_) | Serving::Unreachable(_)) => drift.push(Drift::Proxy {
                serving: serving.clone(),
            }),
        }
        if let Some(routes) = &self.routes {
            for (slot, _, routed) in routes.weighted() {
                let running = self.slot(slot).endpoints();
                if !running.is_some_and(|running| running.same_set(routed)) {
                    drift.push(Drift::Endpoint {
                        slot,
                        routed: routed.clone(),
                        running: running.cloned(),
                    });
                }
            }
        }
        if let Some(d) = &self.last {
            let expected = match d.phase() {
                Phase::Completed => Some(Some(d.target())),
                Phase::RolledBack => Some(d.previous().map(|p| p.slot)),
                // Unfinished or failed: the split may be anywhere until resume converges it.
                _ => None,
            };
            let routed = self.routes.as_ref().and_then(|r| r.split().sole());
            if let Some(expected) = expected.filter(|e| *e != routed) {
                drift.push(Drift::Journal {
                    deployment: d.id().to_string(),
                    expected,
                    routed,
                });
            }
        }
        drift
    }

    /// The slot with all traffic, if one has it and the proxy is not seen serving something else
    /// (a router that cannot observe the proxy is taken at its word).
    pub fn live_slot(&self) -> Option<Slot> {
        match self.serving {
            Serving::Confirmed | Serving::Unobservable => self.routes.as_ref().and_then(|r| r.split().sole()),
            Serving::Stale(_) | Serving::Foreign(_) | Serving::Unreachable(_) => None,
        }
    }

    /// The release in the live slot, if it runs.
    pub fn live_release(&self) -> Option<&Release> {
        self.live_slot().and_then(|slot| self.slot(slot).release())
    }

    /// What runs in `slot`.
    pub fn slot(&self, slot: Slot) -> &SlotStatus {
        match slot {
            Slot::Blue => &self.blue,
            Slot::Green => &self.green,
        }
    }

    /// Whether the latest deployment is parked, since when and until when: waiting at an approval
    /// gate or warm in its rollback window, with no process running it (see
    /// [`Parking`](crate::Parking)). [`Parking::is_due`](crate::Parking::is_due) says whether its
    /// time has come (the next [`tick`](crate::Deployer::tick) does what is due).
    pub fn parked(&self) -> Option<crate::Parking> {
        self.last.as_ref().and_then(Deployment::parked)
    }

    /// Whether the latest deployment is unfinished: it runs, a crash interrupted it, it is parked,
    /// or it failed in a way [`Deployer::resume`](crate::Deployer::resume) retries. A new deploy is
    /// refused until it is resumed, or, parked at a gate, promoted or aborted (a deployment parked
    /// warm is finished by the next deploy).
    pub fn in_progress(&self) -> bool {
        self.last.as_ref().is_some_and(super::run::needs_resume)
    }
}
