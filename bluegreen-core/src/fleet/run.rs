//! Driving a fleet deployment: provision every host, switch canary then batches, retire — or go
//! back everywhere. Every decision is taken from where the hosts stand (their own journals), so
//! a resumed fleet takes the same path as one that never stopped.

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinSet;
use tracing::{info, instrument, warn};

use super::host::HostState;
use super::journal::{FleetEntry, FleetOutcome, FleetRecord, HostStep};
use super::Fleet;
use crate::command::Answer;
use crate::error::{Error, Result};
use crate::lock::{LockGuard, LockHolder};
use crate::model::{Release, Timestamp};
use crate::outcome::Conflict;
use crate::Deployer;

/// How many approval gates a host's strategy may have before its first shift is given up on.
const MAX_GATES: usize = 64;

/// How a fleet deployment ended, host by host.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct FleetReport {
    /// The fleet deployment's id (in the fleet journal).
    pub fleet: String,
    /// What went out.
    pub release: Release,
    /// Every host on the release, or every host back on the previous one.
    pub outcome: FleetOutcome,
    /// Where each host ended, in the fleet's order.
    pub hosts: Vec<HostReport>,
    /// From start (or resume) to the end.
    #[serde(serialize_with = "crate::model::field::serialize_duration")]
    pub took: Duration,
}

/// Where one host ended.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct HostReport {
    /// The host.
    pub host: String,
    /// Where it stands.
    pub state: HostState,
}

/// The fleet deployment being driven.
struct Drive {
    id: String,
    release: Release,
    since: Timestamp,
    started: tokio::time::Instant,
    /// Set once the fleet goes back: which host failed, and why.
    rolling_back: Option<String>,
}

impl Fleet {
    /// Deploys `release` to every host: all provisioned at once, then the canary switched, then
    /// the others a batch at a time, then every old slot retired. At the first failure no further
    /// host is switched and every host goes back to its previous release.
    ///
    /// Both endings are `Ok`: the report's [`outcome`](FleetReport::outcome) says which.
    ///
    /// # Errors
    /// [`Error::Locked`] while another fleet deployment holds the fleet lock;
    /// [`Error::Conflict`] ([`Conflict::Unfinished`]) when the last fleet deployment is unfinished
    /// (call [`resume`](Self::resume)); [`Error::Journal`] when the fleet journal cannot be
    /// written; a host's error when the fleet cannot converge (a host that cannot be rolled back
    /// or retired): the journals keep the state and [`resume`](Self::resume) retries.
    ///
    /// # Cancellation
    /// Dropping the future stops every host's call where it is (as a crash would) and releases
    /// the locks; [`resume`](Self::resume) converges.
    #[instrument(skip_all, fields(fleet = %self.inner.name, release = %release))]
    pub async fn deploy(&self, release: Release) -> Result<FleetReport> {
        let _guard = self.acquire().await?;
        let latest = self.inner.journal.latest().await?;
        if let Some(unfinished) = unfinished(&latest) {
            return Err(Error::Conflict(unfinished));
        }
        let id = fleet_id(&release);
        let started = self
            .inner
            .journal
            .append(
                &id,
                FleetRecord::Started {
                    release: release.clone(),
                    hosts: self.host_names(),
                    plan: self.inner.plan.clone(),
                },
            )
            .await?;
        let drive = Drive {
            id,
            release,
            since: started.at,
            started: tokio::time::Instant::now(),
            rolling_back: None,
        };
        self.drive(drive).await
    }

    /// Carries on a fleet deployment that a crash left unfinished: resumes each host's own
    /// deployment ([`Deployer::resume`]), then goes on to the same end as an uninterrupted run —
    /// forward if no host has failed, back everywhere once one has. `Ok(None)` when the last
    /// fleet deployment is finished (or there is none).
    ///
    /// # Errors
    /// [`Error::Invalid`] when the fleet's hosts are not those the deployment started with; as
    /// [`deploy`](Self::deploy) otherwise.
    #[instrument(skip_all, fields(fleet = %self.inner.name))]
    pub async fn resume(&self) -> Result<Option<FleetReport>> {
        let _guard = self.acquire().await?;
        let latest = self.inner.journal.latest().await?;
        if unfinished(&latest).is_none() {
            return Ok(None);
        }
        let Some((first, release, hosts)) = latest.first().and_then(|e| match &e.record {
            FleetRecord::Started { release, hosts, .. } => Some((e, release.clone(), hosts.clone())),
            _ => None,
        }) else {
            return Ok(None);
        };
        if hosts != self.host_names() {
            return Err(Error::invalid(
                "fleet hosts",
                self.host_names().join(", "),
                format!(
                    "fleet deployment {} started with hosts {}",
                    first.fleet,
                    hosts.join(", ")
                ),
            ));
        }
        let rolling_back = latest.iter().find_map(|e| match &e.record {
            FleetRecord::RollingBack { reason } => Some(reason.clone()),
            _ => None,
        });
        let drive = Drive {
            id: first.fleet.clone(),
            release,
            since: first.at,
            started: tokio::time::Instant::now(),
            rolling_back,
        };
        self.record(
            &drive,
            FleetRecord::Note {
                text: "the fleet deployer stopped; resuming every host, then the fleet".to_string(),
            },
        )
        .await?;
        let all: Vec<usize> = (0..self.inner.hosts.len()).collect();
        for (i, resumed) in self.on_each(&all, |d| async move { d.resume().await }).await {
            if let Err(e) = resumed {
                warn!(host = %self.inner.hosts[i].0, "resume failed: {e}");
                return Err(e);
            }
        }
        self.drive(drive).await.map(Some)
    }

    async fn drive(&self, mut drive: Drive) -> Result<FleetReport> {
        if drive.rolling_back.is_none() {
            self.go_forward(&mut drive).await?;
        }
        if let Some(reason) = drive.rolling_back.clone() {
            self.go_back(&drive).await?;
            let outcome = FleetOutcome::RolledBack { reason };
            return self.finish(&drive, outcome).await;
        }
        self.finish(&drive, FleetOutcome::Completed).await
    }

    /// Provisions, switches and retires; sets `rolling_back` at the first failure.
    async fn go_forward(&self, drive: &mut Drive) -> Result<()> {
        let all: Vec<usize> = (0..self.inner.hosts.len()).collect();
        // 1. Every host not yet provisioned, at once, up to its gate.
        let states = self.states(drive, &all).await?;
        let pending: Vec<usize> = indices(&states, |s| *s == HostState::Pending);
        let release = drive.release.clone();
        let provisioned = self
            .on_each(&pending, move |d| {
                let release = release.clone();
                async move { d.deploy(release).await }
            })
            .await;
        for (i, result) in provisioned {
            let host = self.inner.hosts[i].0.clone();
            let step = match result {
                // Parked at an approval gate, healthy: not Held (an inconclusive check waits for a
                // human, and promoting it would approve that re-check on their behalf).
                Ok(report)
                    if report.deployment.parked().is_some()
                        && !report.deployment.promoted()
                        && matches!(
                            report.deployment.phase(),
                            crate::Phase::Paused {
                                pause: crate::strategy::Pause::Approved
                            }
                        ) =>
                {
                    HostStep::Provisioned {
                        deployment: report.deployment.id().to_string(),
                    }
                }
                Ok(report) => {
                    let reason = format!(
                        "host {host} did not wait at an approval gate (its deployment is {}): a fleet host's \
                         deployer must park at gates and its strategy wait for approval before switching",
                        report.deployment.phase()
                    );
                    self.fail(drive, &host, reason).await?
                }
                Err(e) => self.fail(drive, &host, format!("host {host}: {e}")).await?,
            };
            self.record(drive, FleetRecord::Host { host, step }).await?;
        }
        if drive.rolling_back.is_some() {
            return Ok(());
        }
        self.check_all(drive, &all, |s| {
            matches!(s, HostState::Provisioned | HostState::Switched | HostState::Completed)
        })
        .await?;
        if drive.rolling_back.is_some() {
            return Ok(());
        }
        // 2. The canary, then each batch: switch what waits at its gate.
        let names = self.host_names();
        for wave in self.inner.plan.waves(&names)? {
            let states = self.states(drive, &wave).await?;
            let waiting: Vec<usize> = wave
                .iter()
                .zip(&states)
                .filter(|(_, s)| **s == HostState::Provisioned)
                .map(|(i, _)| *i)
                .collect();
            info!(hosts = ?waiting.iter().map(|&i| &names[i]).collect::<Vec<_>>(), "switching");
            for (i, result) in self.on_each(&waiting, switch).await {
                let host = names[i].clone();
                let step = match result {
                    Ok(()) => HostStep::Switched,
                    Err(e) => self.fail(drive, &host, format!("host {host}: {e}")).await?,
                };
                self.record(drive, FleetRecord::Host { host, step }).await?;
            }
            if drive.rolling_back.is_some() {
                return Ok(());
            }
            self.check_all(drive, &wave, HostState::serves_release).await?;
            if drive.rolling_back.is_some() {
                return Ok(());
            }
        }
        // 3. Every host switched: retire every old slot at once.
        let states = self.states(drive, &all).await?;
        let warm = indices(&states, |s| *s == HostState::Switched);
        for (i, result) in self
            .on_each(&warm, |d| async move { d.end_rollback_window().await })
            .await
        {
            result?;
            let host = names[i].clone();
            self.record(
                drive,
                FleetRecord::Host {
                    host,
                    step: HostStep::Completed,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Sends every host that serves (or waits to serve) the release back to its previous one.
    async fn go_back(&self, drive: &Drive) -> Result<()> {
        let all: Vec<usize> = (0..self.inner.hosts.len()).collect();
        let states = self.states(drive, &all).await?;
        let unfinished: Vec<usize> = indices(&states, |s| matches!(s, HostState::Unfinished { .. }));
        for (_, resumed) in self.on_each(&unfinished, |d| async move { d.resume().await }).await {
            resumed?;
        }
        let states = self.states(drive, &all).await?;
        let back: Vec<usize> = indices(&states, |s| {
            matches!(s, HostState::Provisioned | HostState::Switched | HostState::Completed)
        });
        let reason = drive.rolling_back.clone().unwrap_or_default();
        let back_results = self
            .on_each(&back, move |d| {
                let reason = format!("the fleet rolls back: {reason}");
                async move { send_back(d, reason).await }
            })
            .await;
        for (i, result) in back_results {
            result?;
            let host = self.inner.hosts[i].0.clone();
            self.record(
                drive,
                FleetRecord::Host {
                    host,
                    step: HostStep::RolledBack,
                },
            )
            .await?;
        }
        let states = self.states(drive, &all).await?;
        if let Some((i, state)) = states.iter().enumerate().find(|(_, s)| s.serves_release()) {
            return Err(Error::Interrupted {
                deployment: drive.id.clone(),
                reason: format!(
                    "host {} still serves {} ({state:?}) after the fleet rolled back",
                    self.inner.hosts[i].0, drive.release
                ),
                retry: crate::machine::Retry::RollBack,
            });
        }
        Ok(())
    }

    /// Journals that `host` failed and that the fleet goes back; returns the host's step.
    async fn fail(&self, drive: &mut Drive, host: &str, reason: String) -> Result<HostStep> {
        warn!(host, "{reason}");
        if drive.rolling_back.is_none() {
            drive.rolling_back = Some(reason.clone());
            self.record(drive, FleetRecord::RollingBack { reason: reason.clone() })
                .await?;
        }
        Ok(HostStep::Failed { reason })
    }

    /// Fails the fleet if a host of `hosts` does not stand as `ok` says.
    async fn check_all(&self, drive: &mut Drive, hosts: &[usize], ok: impl Fn(&HostState) -> bool) -> Result<()> {
        let states = self.states(drive, hosts).await?;
        for (&i, state) in hosts.iter().zip(&states) {
            if !ok(state) {
                let host = self.inner.hosts[i].0.clone();
                let step = self.fail(drive, &host, format!("host {host} is {state:?}")).await?;
                self.record(drive, FleetRecord::Host { host, step }).await?;
                return Ok(());
            }
        }
        Ok(())
    }

    async fn finish(&self, drive: &Drive, outcome: FleetOutcome) -> Result<FleetReport> {
        let all: Vec<usize> = (0..self.inner.hosts.len()).collect();
        let states = self.states(drive, &all).await?;
        self.record(
            drive,
            FleetRecord::Finished {
                outcome: outcome.clone(),
            },
        )
        .await?;
        info!(?outcome, "fleet deployment finished");
        Ok(FleetReport {
            fleet: drive.id.clone(),
            release: drive.release.clone(),
            outcome,
            hosts: self
                .inner
                .hosts
                .iter()
                .zip(states)
                .map(|((host, _), state)| HostReport {
                    host: host.clone(),
                    state,
                })
                .collect(),
            took: drive.started.elapsed(),
        })
    }

    /// Where each of `hosts` stands, from its journal's last deployment.
    async fn states(&self, drive: &Drive, hosts: &[usize]) -> Result<Vec<HostState>> {
        let mut states = Vec::with_capacity(hosts.len());
        for &i in hosts {
            let last = self.inner.hosts[i].1.history(1).await?;
            states.push(HostState::of(last.first(), &drive.release, drive.since));
        }
        Ok(states)
    }

    async fn record(&self, drive: &Drive, record: FleetRecord) -> Result<FleetEntry> {
        self.inner.journal.append(&drive.id, record).await
    }

    pub(super) async fn acquire(&self) -> Result<LockGuard> {
        let holder = LockHolder::this_process(None);
        crate::lock::acquire(self.inner.lock.as_ref(), &self.inner.name, &holder, None).await
    }

    /// Runs `f` on the deployer of each of `hosts` concurrently; the results in `hosts`' order.
    /// Dropping the future aborts every call.
    async fn on_each<T, F, Fut>(&self, hosts: &[usize], f: F) -> Vec<(usize, Result<T>)>
    where
        F: Fn(Deployer) -> Fut,
        Fut: Future<Output = Result<T>> + Send + 'static,
        T: Send + 'static,
    {
        let mut set = JoinSet::new();
        for &i in hosts {
            let call = f(self.inner.hosts[i].1.clone());
            set.spawn(async move { (i, call.await) });
        }
        let mut results = Vec::with_capacity(hosts.len());
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(result) => results.push(result),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Only a dropped set cancels its tasks, and then nobody reads this.
                Err(_) => {}
            }
        }
        results.sort_by_key(|(i, _)| *i);
        results
    }
}

/// Promotes a host parked at its gate until it is switched (parked warm) or completed.
async fn switch(deployer: Deployer) -> Result<()> {
    for _ in 0..MAX_GATES {
        let answer = deployer.promote().await?;
        let Answer::Ran(report) = answer else {
            return Err(Error::Conflict(Conflict::Refused {
                phase: "running in another process".to_string(),
                signal: "fleet promote".to_string(),
            }));
        };
        let d = &report.deployment;
        if d.promoted() && (d.parked().is_some() || d.phase().is_terminal()) {
            return Ok(());
        }
        if d.parked().is_none() {
            return Err(Error::Conflict(Conflict::Refused {
                phase: d.phase().to_string(),
                signal: "fleet promote".to_string(),
            }));
        }
    }
    Err(Error::invalid(
        "fleet host strategy",
        deployer.app().to_string(),
        format!("more than {MAX_GATES} approval gates before traffic moved"),
    ))
}

/// Sends a host back to the release it served before: aborts a deployment at its gate, rolls
/// back a switched one (instant while warm) or a completed one.
async fn send_back(deployer: Deployer, reason: String) -> Result<()> {
    let last = deployer.history(1).await?;
    let at_gate = last.first().is_some_and(|d| d.parked().is_some() && !d.promoted());
    if at_gate {
        // An abort at the gate ends the deployment rolled back: that is what was asked.
        return match deployer.abort(reason).await {
            Ok(_) | Err(Error::RolledBack { .. }) => Ok(()),
            Err(e) => Err(e),
        };
    }
    // A rollback that itself rolled back (the previous release failed to come back) left the
    // host on the new release: an error, never "sent back".
    deployer.rollback().await.map(|_| ())
}

/// The refusal to start while `latest` (the last fleet deployment's entries) is unfinished.
fn unfinished(latest: &[FleetEntry]) -> Option<Conflict> {
    let first = latest.first()?;
    if latest.iter().any(|e| matches!(e.record, FleetRecord::Finished { .. })) {
        return None;
    }
    let release = match &first.record {
        FleetRecord::Started { release, .. } => release.to_string(),
        _ => String::new(),
    };
    let phase = latest
        .last()
        .map_or_else(String::new, |e| format!("fleet {:?}", e.record));
    Some(Conflict::Unfinished {
        deployment: first.fleet.clone(),
        release,
        phase,
    })
}

fn indices(states: &[HostState], f: impl Fn(&HostState) -> bool) -> Vec<usize> {
    states
        .iter()
        .enumerate()
        .filter(|(_, s)| f(s))
        .map(|(i, _)| i)
        .collect()
}

/// A fleet deployment's id: its release and when it started.
fn fleet_id(release: &Release) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("fleet-{release}-{nanos:x}")
}
