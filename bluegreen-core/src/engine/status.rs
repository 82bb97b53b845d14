//! What runs and what is live, asked of the systems themselves.

use serde::Serialize;

use crate::environment::SlotStatus;
use crate::machine::Deployment;
use crate::model::{AppName, Release, Slot};
use crate::router::Routes;

/// The state of an application now.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The application.
    pub app: AppName,
    /// What the router serves (`None`: nothing routed yet).
    pub routes: Option<Routes>,
    /// What runs in the blue slot.
    pub blue: SlotStatus,
    /// What runs in the green slot.
    pub green: SlotStatus,
    /// The latest deployment, as the journal last recorded it.
    pub last: Option<Deployment>,
}

impl Status {
    /// The slot with all traffic, if one has it.
    pub fn live_slot(&self) -> Option<Slot> {
        self.routes.as_ref().and_then(|r| r.split().sole())
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

    /// Whether the latest deployment is unfinished: it runs, a crash interrupted it, or it failed in
    /// a way [`Deployer::resume`](crate::Deployer::resume) retries. A new deploy is refused until
    /// it is resumed.
    pub fn in_progress(&self) -> bool {
        self.last.as_ref().is_some_and(super::run::needs_resume)
    }
}
