//! Status across a fleet's hosts.

use super::host::HostState;
use super::journal::{FleetOutcome, FleetRecord};
use super::Fleet;
use crate::error::Result;
use crate::model::{Release, Timestamp};
use crate::Status;

/// What each host runs and serves, and the fleet's last deployment.
#[derive(Debug)]
#[non_exhaustive]
pub struct FleetStatus {
    /// The last fleet deployment, if any.
    pub last: Option<LastFleet>,
    /// Each host, in the fleet's order.
    pub hosts: Vec<HostStatus>,
}

/// The last fleet deployment, as its journal has it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastFleet {
    /// Its id.
    pub id: String,
    /// What it deployed.
    pub release: Release,
    /// When it started.
    pub started: Timestamp,
    /// How it ended; `None` while it runs or after a crash (see [`Fleet::resume`]).
    pub outcome: Option<FleetOutcome>,
    /// Whether it was going back to the previous release.
    pub rolling_back: bool,
}

/// One host's status.
#[derive(Debug)]
#[non_exhaustive]
pub struct HostStatus {
    /// The host.
    pub host: String,
    /// Its deployer's [`status`](crate::Deployer::status) — an error when its router or
    /// environment cannot be read (one unreachable host does not hide the others).
    pub status: Result<Status>,
    /// Where it stands in the last fleet deployment (`None`: there is none, or its journal
    /// cannot be read).
    pub state: Option<HostState>,
}

impl FleetStatus {
    /// Whether every host's status was read and every host serves the same release.
    pub fn converged(&self) -> bool {
        let mut live = self
            .hosts
            .iter()
            .map(|h| h.status.as_ref().ok().and_then(Status::live_release));
        let Some(Some(first)) = live.next() else {
            return false;
        };
        live.all(|r| r == Some(first))
    }
}

impl Fleet {
    /// What each host runs and serves (its deployer's status, with drift) and where it stands in
    /// the last fleet deployment. Takes no lock.
    ///
    /// # Errors
    /// [`Error::Journal`](crate::Error::Journal) when the fleet journal cannot be read; a host
    /// that cannot be read is reported in its [`HostStatus::status`].
    pub async fn status(&self) -> Result<FleetStatus> {
        let latest = self.inner.journal.latest().await?;
        let last = latest.first().and_then(|first| match &first.record {
            FleetRecord::Started { release, .. } => Some(LastFleet {
                id: first.fleet.clone(),
                release: release.clone(),
                started: first.at,
                outcome: latest.iter().rev().find_map(|e| match &e.record {
                    FleetRecord::Finished { outcome } => Some(outcome.clone()),
                    _ => None,
                }),
                rolling_back: latest
                    .iter()
                    .any(|e| matches!(e.record, FleetRecord::RollingBack { .. })),
            }),
            _ => None,
        });
        let mut hosts = Vec::with_capacity(self.inner.hosts.len());
        for (host, deployer) in &self.inner.hosts {
            let status = deployer.status().await;
            let state = match &last {
                Some(last) => deployer
                    .history(1)
                    .await
                    .ok()
                    .map(|h| HostState::of(h.first(), &last.release, last.started)),
                None => None,
            };
            hosts.push(HostStatus {
                host: host.clone(),
                status,
                state,
            });
        }
        Ok(FleetStatus { last, hosts })
    }
}
