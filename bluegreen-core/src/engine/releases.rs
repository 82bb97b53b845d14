//! The releases the journal retains, and a rollback to any of them: [`Deployer::releases`],
//! [`Deployer::rollback_to`].

use std::collections::HashSet;

use serde::Serialize;
use tracing::instrument;

use super::{Deployer, Report};
use crate::error::{Error, Result};
use crate::journal::Entry;
use crate::machine::{Deployment, Kind, Phase, Signal};
use crate::model::{Release, Snapshot, Timestamp};

/// A release that went live (its deployment completed) and that the journal still retains: what
/// [`Deployer::rollback_to`] can go back to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RetainedRelease {
    /// The release.
    pub release: Release,
    /// What the environment started for it (the artifact, pinned, and the configuration's
    /// fingerprint); `None` where the environment pins nothing, or in journals written before
    /// snapshots were recorded. A rollback to it starts exactly this.
    pub snapshot: Option<Snapshot>,
    /// When it went live: when its deployment gave it all traffic.
    pub live_since: Timestamp,
    /// Who deployed it.
    pub who: Option<String>,
    /// The deployment that made it live (its latest completed run).
    pub deployment: String,
    /// Whether that deployment was a deploy or a rollback.
    pub kind: Kind,
    /// Whether it serves now: the proxy is seen sending it all traffic (and, where the
    /// environment pins artifacts, the live slot runs this snapshot's artifact).
    pub serving: bool,
}

impl Deployer {
    /// The releases the journal retains that went live (completed deployments), newest first,
    /// each once (its latest run), with its [`Snapshot`], when it went live, who deployed it, and
    /// whether it serves now.
    ///
    /// Reads the whole retained journal (a compacted journal retains less), then asks the router
    /// and the environment what serves, as [`status`](Self::status) does.
    ///
    /// # Errors
    /// [`Error::Journal`] when the journal cannot be read; a backend's error when what serves
    /// cannot be asked.
    pub async fn releases(&self) -> Result<Vec<RetainedRelease>> {
        let mut retained = retained(&self.all_entries().await?);
        let status = self.status().await?;
        let Some(live_slot) = status.live_slot() else {
            return Ok(retained);
        };
        let Some(live) = status.slot(live_slot).release().cloned() else {
            return Ok(retained);
        };
        let running = self.inner.environment.snapshot(live_slot).await?;
        if let Some(serving) = retained.iter_mut().find(|r| r.release == live) {
            serving.serving = runs_pin(serving.snapshot.as_ref(), running.as_ref());
        }
        Ok(retained)
    }

    /// Goes back to `release`, a release that went live before and that the journal retains
    /// (see [`releases`](Self::releases)): redeploys it through the normal health-gated path
    /// ([`Kind::Rollback`]), starting exactly the snapshot journaled when it last went live (Docker:
    /// the image by id, whatever its tag points to today) under today's configuration. When that
    /// configuration differs from the one it ran with (the fingerprints differ), it proceeds and
    /// journals a note saying so. The pin is journaled with the deployment, so a
    /// [`resume`](Self::resume) keeps it.
    ///
    /// A release journaled without a snapshot (an environment that pins nothing) is deployed by
    /// name.
    ///
    /// # Errors
    /// - [`Error::NotFound`] when the journal retains no live run of `release`;
    /// - [`Error::ArtifactGone`] (release and artifact) when its pinned artifact is gone from the
    ///   environment: nothing was journaled, started or switched;
    /// - otherwise as [`deploy`](Self::deploy): a failed health check rolls back to what served
    ///   ([`Error::RolledBack`]), and so on.
    #[instrument(skip_all, fields(app = %self.inner.app, release = %release))]
    pub async fn rollback_to(&self, release: Release) -> Result<Report> {
        let entries = self.all_entries().await?;
        let target = retained(&entries)
            .into_iter()
            .find(|r| r.release == release)
            .ok_or_else(|| Error::NotFound {
                what: "retained release",
                name: format!(
                    "{release} (no completed deployment of it in the journal of {})",
                    self.inner.app
                ),
            })?;
        if let Some(pin) = &target.snapshot {
            let env = &self.inner.environment;
            match (env.check_snapshot(&release, pin).await, pin.artifact()) {
                (Err(Error::NotFound { .. }), Some(artifact)) => {
                    return Err(Error::ArtifactGone {
                        release: release.to_string(),
                        artifact: artifact.to_string(),
                    })
                }
                (Err(e), _) => return Err(e),
                (Ok(_), _) => {}
            }
        }
        self.start_with(Kind::Rollback, release, target.snapshot).await
    }

    /// Every entry the journal retains, oldest first.
    async fn all_entries(&self) -> Result<Vec<Entry>> {
        let mut window = 1024usize;
        loop {
            let entries = self.inner.journal.tail(window).await?;
            if entries.len() < window {
                return Ok(entries);
            }
            window = window.saturating_mul(4);
        }
    }
}

/// The releases that went live in `entries` (oldest first), newest first, each once.
fn retained(entries: &[Entry]) -> Vec<RetainedRelease> {
    // When each deployment first had all traffic.
    let mut promoted_at = std::collections::HashMap::new();
    for entry in entries {
        if entry.deployment.promoted() {
            promoted_at.entry(entry.deployment.id()).or_insert(entry.at);
        }
    }
    let mut seen_deployments = HashSet::new();
    let mut seen_releases = HashSet::new();
    entries
        .iter()
        .rev()
        .filter(|e| *e.deployment.phase() == Phase::Completed)
        .filter(|e| seen_deployments.insert(e.deployment.id()))
        .filter(|e| seen_releases.insert(e.deployment.release().clone()))
        .map(|e| {
            let d: &Deployment = &e.deployment;
            RetainedRelease {
                release: d.release().clone(),
                snapshot: d.snapshot().cloned(),
                live_since: promoted_at.get(d.id()).copied().unwrap_or(e.at),
                who: d.who().map(str::to_string),
                deployment: d.id().to_string(),
                kind: d.kind(),
                serving: false,
            }
        })
        .collect()
}

/// Whether a slot whose snapshot is `running` runs what `pin` pinned: anything does when nothing
/// is pinned (no pin, or a pin without an artifact); otherwise the same artifact.
pub(super) fn runs_pin(pin: Option<&Snapshot>, running: Option<&Snapshot>) -> bool {
    match pin.and_then(Snapshot::artifact) {
        None => true,
        Some(artifact) => running.and_then(Snapshot::artifact) == Some(artifact),
    }
}

/// The note to journal when provisioning a pinned release started it under another configuration
/// than the one it ran with (the fingerprints differ).
pub(super) fn configuration_changed(d: &Deployment, signal: &Signal) -> Option<String> {
    let (
        Some(pin),
        Signal::Provisioned {
            snapshot: Some(now), ..
        },
    ) = (d.pin(), signal)
    else {
        return None;
    };
    if pin.fingerprint() == now.fingerprint() {
        return None;
    }
    let artifact = now.artifact().unwrap_or("its release");
    Some(format!(
        "the configuration changed since {} last went live (fingerprint {} then, {} now): \
         it runs {artifact} under today's configuration",
        d.release(),
        pin.fingerprint(),
        now.fingerprint()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_without_an_artifact_is_run_by_anything() {
        let pinned = Snapshot::new(Some("sha256:a".into()), "sha256:f");
        let other = Snapshot::new(Some("sha256:b".into()), "sha256:f");
        let bare = Snapshot::new(None, "sha256:f");
        assert!(runs_pin(None, None));
        assert!(runs_pin(Some(&bare), Some(&other)));
        assert!(runs_pin(Some(&pinned), Some(&pinned)));
        assert!(!runs_pin(Some(&pinned), Some(&other)));
        assert!(!runs_pin(Some(&pinned), None));
    }
}
