//! Where one host stands in a fleet deployment, read from its own journal.

use serde::{Deserialize, Serialize};

use crate::machine::{Deployment, Phase};
use crate::model::{Release, Timestamp};
use crate::outcome::Cause;

/// Where one host stands in a fleet deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HostState {
    /// Nothing of this fleet deployment runs on it: it serves what it served before (also a host
    /// whose deployment was rolled back only because its deployer died: it is deployed again).
    Pending,
    /// The release runs healthy in its idle slot, parked at its approval gate.
    Provisioned,
    /// Traffic is on the release, the old slot parked warm.
    Switched,
    /// The release serves and the old slot is retired.
    Completed,
    /// Its deployment of the release was rolled back: the release failed there, or the fleet sent
    /// it back.
    RolledBack {
        /// Why, as its deployment says.
        reason: String,
    },
    /// Its deployment is in a state the fleet does not drive (running elsewhere, unfinished, or
    /// failed in a way only [`Deployer::resume`](crate::Deployer::resume) can retry).
    Unfinished {
        /// The phase it is in.
        phase: String,
    },
}

impl HostState {
    /// Where a host whose journal ends with `last` stands in the fleet deployment of `release`
    /// that started at `since`.
    pub(crate) fn of(last: Option<&Deployment>, release: &Release, since: Timestamp) -> HostState {
        let Some(d) = last.filter(|d| d.release() == release && d.started() >= since) else {
            return HostState::Pending;
        };
        let parked = d.parked().is_some();
        match d.phase() {
            Phase::Completed => HostState::Completed,
            Phase::Warm if parked => HostState::Switched,
            Phase::RolledBack if d.cause() == Some(Cause::Interrupted) => HostState::Pending,
            Phase::RolledBack => HostState::RolledBack {
                reason: d.reason().unwrap_or("rolled back").to_string(),
            },
            _ if parked && !d.promoted() => HostState::Provisioned,
            phase => HostState::Unfinished {
                phase: phase.to_string(),
            },
        }
    }

    /// Whether the host serves the release (switched or completed).
    pub fn serves_release(&self) -> bool {
        matches!(self, HostState::Switched | HostState::Completed)
    }
}
