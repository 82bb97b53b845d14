//! Fleets: one release to many hosts, each with its own environment, router and journal — a
//! canary host first, then batches — ending with every host on one release.
//!
//! A [`Fleet`] holds one [`Deployer`] per host (each with its own environment, router, journal
//! and lock, as for a single host) and a [`FleetPlan`]. [`Fleet::deploy`]:
//!
//! 1. **provisions every host at once**: each host's deployment starts the release in its idle
//!    slot and proves it healthy, then waits at its approval gate, parked (no traffic has moved);
//! 2. **switches the canary**, alone, then the others **a batch at a time** (each host of a batch
//!    concurrently), by promoting them; each switched host keeps its old slot warm;
//! 3. when every host is switched, **retires the old slots** (drain, stop) on every host at once.
//!
//! At the first failure (a host's health, a check after its switch, a backend) it starts no
//! further host and goes back: hosts waiting at their gate are aborted, switched hosts are rolled
//! back (instantly: their old slot is warm), so the fleet ends on the previous release everywhere.
//!
//! Provisioning every host up front is what makes a fleet cost little more than one deploy (the
//! slow part, starting and health-checking the release, overlaps), while traffic still moves host
//! by host. It needs each host's deployer to park: built with
//! [`park_at_gates`](crate::DeployerBuilder::park_at_gates) and
//! [`park_warm`](crate::DeployerBuilder::park_warm), and a strategy that waits for approval before
//! its first shift ([`Promotion::Manual`](crate::Promotion::Manual), or a canary whose first step
//! is [`Pause::Approved`](crate::strategy::Pause::Approved)). A host that switches without waiting
//! fails the fleet, which rolls everything back.
//!
//! Every step is recorded in a [`FleetJournal`] and the fleet holds a lock of its own (a
//! [`DeployLock`] keyed by the fleet's name) while it runs. A fleet
//! deployer killed at any point converges with [`Fleet::resume`]: each host's own deployment is
//! resumed first ([`Deployer::resume`]), then the fleet carries on to the same end — every host on
//! the new release, or every host back on the previous one once any failed. A host whose own
//! deployment was rolled back only because the deployer died (not because the release failed) is
//! deployed again.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> bluegreen_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use bluegreen_core::fleet::{Fleet, FleetOutcome, FleetPlan};
//! use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
//! use bluegreen_core::*;
//!
//! let mut hosts = Vec::new();
//! for name in ["a", "b", "c"] {
//!     let env = InMemoryEnvironment::new();
//!     let deployer = Deployer::builder(AppName::new("shop")?)
//!         .environment(Arc::new(env.clone()))
//!         .router(Arc::new(InMemoryRouter::new()))
//!         .probe(env.health_probe())
//!         .policy(HealthPolicy::default().interval(Duration::from_millis(10)))
//!         .strategy(BlueGreen::new().promotion(Promotion::Manual))
//!         .park_at_gates(true)
//!         .park_warm(true)
//!         .retirement(Retirement::new().drain(Duration::ZERO).stop_grace(Duration::from_secs(1)))
//!         .build()?;
//!     hosts.push((name.to_string(), deployer));
//! }
//! let fleet = Fleet::new(AppName::new("shop-fleet")?, hosts, FleetPlan::new(2)?)?;
//! let report = fleet.deploy(Release::new("v1")?).await?;
//! assert_eq!(report.outcome, FleetOutcome::Completed);
//! for host in fleet.status().await?.hosts {
//!     assert_eq!(host.status?.live_release().map(|r| r.as_str()), Some("v1"));
//! }
//! # Ok(()) }
//! ```

mod host;
mod journal;
mod plan;
mod run;
mod status;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::lock::{DeployLock, InMemoryLock};
use crate::model::AppName;
use crate::Deployer;

pub use host::HostState;
pub use journal::{FleetEntry, FleetJournal, FleetOutcome, FleetRecord, HostStep};
pub use plan::FleetPlan;
pub use run::{FleetReport, HostReport};
pub use status::{FleetStatus, HostStatus, LastFleet};

/// Deploys one release to many hosts: canary, then batches; all forward or all back.
///
/// Cheap to clone. See the [module](self) for how it proceeds.
#[derive(Debug, Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    name: AppName,
    hosts: Vec<(String, Deployer)>,
    plan: FleetPlan,
    journal: FleetJournal,
    lock: Arc<dyn DeployLock>,
}

impl Fleet {
    /// A fleet called `name` (its lock's key) of `hosts`, each a name and its deployer, deployed
    /// per `plan`; with an in-memory journal and lock until [`journal`](Self::journal) and
    /// [`lock`](Self::lock) give durable ones.
    ///
    /// # Errors
    /// [`Error::Invalid`] for no hosts, a host name given twice or not a valid name (as an
    /// [`AppName`]: it appears in the journal and in messages), or a plan whose canary is not
    /// a host or whose batch size is 0.
    pub fn new(name: AppName, hosts: Vec<(String, Deployer)>, plan: FleetPlan) -> Result<Self> {
        if hosts.is_empty() {
            return Err(Error::invalid(
                "fleet",
                name.to_string(),
                "a fleet needs at least one host",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (host, _) in &hosts {
            AppName::new(host.clone())
                .map_err(|_| Error::invalid("fleet host name", host.clone(), "letters, digits, '-' and '_' only"))?;
            if !seen.insert(host.clone()) {
                return Err(Error::invalid("fleet host name", host.clone(), "given twice"));
            }
        }
        let names: Vec<String> = hosts.iter().map(|(h, _)| h.clone()).collect();
        plan.waves(&names)?;
        Ok(Fleet {
            inner: Arc::new(Inner {
                name,
                hosts,
                plan,
                journal: FleetJournal::in_memory(),
                lock: Arc::new(InMemoryLock::new()),
            }),
        })
    }

    /// Records the fleet's steps in `journal` (a [`FleetJournal::open`] file to resume after a
    /// crash).
    pub fn journal(self, journal: FleetJournal) -> Self {
        self.with(|inner| inner.journal = journal)
    }

    /// Keeps fleet deployments one at a time with `lock` (a [`FileLock`](crate::lock::FileLock)
    /// to exclude other processes), keyed by the fleet's name.
    pub fn lock(self, lock: Arc<dyn DeployLock>) -> Self {
        self.with(|inner| inner.lock = lock)
    }

    fn with(self, f: impl FnOnce(&mut Inner)) -> Self {
        let mut inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            name: shared.name.clone(),
            hosts: shared.hosts.clone(),
            plan: shared.plan.clone(),
            journal: shared.journal.clone(),
            lock: Arc::clone(&shared.lock),
        });
        f(&mut inner);
        Fleet { inner: Arc::new(inner) }
    }

    /// The fleet's name.
    pub fn name(&self) -> &AppName {
        &self.inner.name
    }

    /// The hosts, in order, with their deployers.
    pub fn hosts(&self) -> &[(String, Deployer)] {
        &self.inner.hosts
    }

    /// The plan.
    pub fn plan(&self) -> &FleetPlan {
        &self.inner.plan
    }

    /// The fleet journal.
    pub fn fleet_journal(&self) -> &FleetJournal {
        &self.inner.journal
    }

    fn host_names(&self) -> Vec<String> {
        self.inner.hosts.iter().map(|(h, _)| h.clone()).collect()
    }
}
