//! The deployment state machine: every phase, and every transition in one function, `step`.
//!
//! ```text
//!  Provisioning ─► Verifying ─► Deciding ◄──────────────┐
//!                                  │ Shift / Pause / Analyse (strategy's decision)
//!                                  ├─► Shifting ─────────┤
//!                                  ├─► Paused ───────────┤
//!                                  ├─► Analysing ────────┘
//!                                  └─► Complete ─► Warm ─► Draining ─► Stopping ─► Completed
//!  failure / abort before Draining ─► RollingBack ─► Retiring ─► RolledBack
//!  inconclusive checks ─► Held (a human approves a re-check, or aborts)
//!  traffic cannot be restored / a slot cannot be stopped ─► Failed (resume retries)
//! ```
//!
//! The machine only decides; the [engine](crate::Deployer) performs each phase's work and feeds
//! the result back as a `Signal`. The invariants live here:
//! - traffic moves (Shifting) only after Verifying passed, so never to an unproven slot;
//! - any failure before retirement rolls traffic back to the previous slot, which is still up;
//! - the old slot is stopped only after the rollback window and the drain;
//! - a deployer that restarts mid-way (`Signal::Resumed`) rolls back if traffic had not been
//!   promoted yet, and finishes otherwise (re-running the interrupted phase, which is idempotent).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::environment::StopOutcome;
use crate::model::{AppName, Endpoints, Release, Slot, Snapshot, Timestamp};
use crate::outcome::Cause;
use crate::strategy::{Pause, Retirement};

/// Why a deployment was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A new release.
    Deploy,
    /// Back to the previous release (reusing its slot if it is still running).
    Rollback,
}

/// The release that had traffic when the deployment started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Previous {
    /// Its slot.
    pub slot: Slot,
    /// Its release.
    pub release: Release,
    /// Where its instances serve.
    #[serde(alias = "endpoint")]
    pub endpoints: Endpoints,
}

impl Previous {
    /// `release` in `slot`, serving at `endpoints` (one [`Endpoint`](crate::Endpoint) or several).
    pub fn new(slot: Slot, release: Release, endpoints: impl Into<Endpoints>) -> Self {
        Previous {
            slot,
            release,
            endpoints: endpoints.into(),
        }
    }
}

/// What a check that needs a human will re-run once approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Recheck {
    /// The health policy.
    Verify,
    /// The strategy's analysis at the current step.
    Analyse,
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Phase {
    /// Starting the release in the target slot.
    Provisioning,
    /// Running the health policy against the target slot.
    Verifying,
    /// Asking the strategy what is next.
    Deciding,
    /// Moving this share of traffic to the target slot, and confirming it.
    Shifting {
        /// The target slot's new weight.
        weight: u8,
    },
    /// Waiting.
    Paused {
        /// Until when.
        pause: Pause,
    },
    /// Running the strategy's analysis of the target slot.
    Analysing,
    /// Checks were inconclusive: waiting for a human to approve a re-check, or abort.
    Held {
        /// What the checks said.
        reason: String,
        /// What approval re-runs.
        recheck: Recheck,
    },
    /// Promoted; the old slot stays up for the rollback window.
    Warm,
    /// Letting the old slot's in-flight requests finish.
    Draining,
    /// Stopping the old slot gracefully.
    Stopping,
    /// Done: the release serves all traffic and the old slot is stopped.
    Completed,
    /// Moving traffic back to the previous slot.
    RollingBack,
    /// Stopping the refused release.
    Retiring,
    /// Done: the previous release serves, the refused one is stopped.
    RolledBack,
    /// Stopped in a state that needs attention; [`resume`](crate::Deployer::resume) retries
    /// what failed.
    Failed {
        /// What went wrong.
        reason: String,
        /// What a resume retries.
        retry: Retry,
    },
}

/// What a resume of a [`Phase::Failed`] deployment does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Retry {
    /// Moving traffic back to the previous slot failed: try again, then retire the new slot.
    RollBack,
    /// The rollout completed but the old slot could not be stopped: try stopping it again.
    StopOld,
    /// Traffic is back on the previous slot but the refused release could not be stopped: try
    /// stopping it again.
    Retire,
    /// Nothing to retry: the new release serves and there is nothing before it to go back to.
    Nothing,
}

impl fmt::Display for Retry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Retry::RollBack => "moving traffic back",
            Retry::StopOld => "stopping the old release",
            Retry::Retire => "stopping the refused release",
            Retry::Nothing => "nothing",
        })
    }
}

impl Phase {
    /// The phase's name, as in the journal (`"rolling_back"`).
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Provisioning => "provisioning",
            Phase::Verifying => "verifying",
            Phase::Deciding => "deciding",
            Phase::Shifting { .. } => "shifting",
            Phase::Paused { .. } => "paused",
            Phase::Analysing => "analysing",
            Phase::Held { .. } => "held",
            Phase::Warm => "warm",
            Phase::Draining => "draining",
            Phase::Stopping => "stopping",
            Phase::Completed => "completed",
            Phase::RollingBack => "rolling_back",
            Phase::Retiring => "retiring",
            Phase::RolledBack => "rolled_back",
            Phase::Failed { .. } => "failed",
        }
    }

    /// Whether the engine stops here: completed, rolled back, or failed (resumable).
    pub fn is_terminal(&self) -> bool {
        matches!(self, Phase::Completed | Phase::RolledBack | Phase::Failed { .. })
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Shifting { weight } => write!(f, "shifting to {weight}%"),
            Phase::Paused { pause: Pause::Approved } => f.write_str("paused until approved"),
            Phase::Paused {
                pause: Pause::Elapsed { duration },
            } => write!(f, "paused for {duration:?}"),
            Phase::Held { reason, .. } => write!(f, "held: {reason}"),
            Phase::Failed { reason, .. } => write!(f, "failed: {reason}"),
            other => f.write_str(other.name()),
        }
    }
}

/// One deployment of one release: the machine's whole state, journaled after every step.
///
/// Read-only outside the machine: only its transition function changes it, so what the journal
/// holds is always a state the machine reached. Read it through the getters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Unique id (`<app>-<unix ms>-<pid>-<n>`).
    id: String,
    /// The application.
    app: AppName,
    /// Deploy or rollback.
    kind: Kind,
    /// The release being deployed.
    release: Release,
    /// The slot it is deployed into.
    target: Slot,
    /// What served before, if anything did.
    previous: Option<Previous>,
    /// Where the target slot's instances serve, once provisioned.
    #[serde(alias = "endpoint")]
    endpoints: Option<Endpoints>,
    /// What the environment started in the target slot (artifact and configuration), once
    /// provisioned, where the environment pins it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<Snapshot>,
    /// What a [`rollback_to`](crate::Deployer::rollback_to) must start: the snapshot journaled
    /// when the release last went live (fixed when the deployment starts, so a resume keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pin: Option<Snapshot>,
    /// The target slot's share of traffic now.
    weight: u8,
    /// How many strategy decisions have been carried out.
    step: usize,
    /// When the router first confirmed a weight above 0 for the target slot (what an analysis's
    /// window counts from; journaled, so a resume keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traffic_since: Option<Timestamp>,
    /// Whether the target slot has had all traffic (past the point where a crash rolls back).
    promoted: bool,
    /// Whether traffic may have reached the target slot (a shift was started): retiring it then
    /// drains it first.
    #[serde(default)]
    routed: bool,
    /// The strategy's name; a resume with another strategy is refused.
    #[serde(default)]
    strategy: String,
    /// What happens to the old slot (fixed when the deployment starts, so a resume keeps it).
    retirement: Retirement,
    /// Why the deployment is rolling back or failed, as a type. A rollback keeps its cause if
    /// retiring the refused release fails too; a rollout whose old slot could not be stopped
    /// records that ([`Cause::Stop`], or a [`Cause::Timeout`] of the stop), and keeps it once a
    /// resume has completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cause: Option<Cause>,
    /// Why the deployment is rolling back or failed, in words.
    reason: Option<String>,
    /// How the old release stopped, once the rollout completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    old_stopped: Option<StopOutcome>,
    /// How the refused release stopped, once rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retired: Option<StopOutcome>,
    /// The target slot's last log lines when it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    logs: Vec<String>,
    /// Who asked for it.
    who: Option<String>,
    /// When it started.
    started: Timestamp,
    /// A fingerprint of the strategy's steps as they were when it started (a resume with other
    /// steps is refused).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    steps: String,
    /// Whether it is parked: waiting, with no process running it, for a command or its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parked: Option<Parking>,
    /// Whether it parks at approval gates, whoever carries it on (fixed when it starts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    park_gates: bool,
    /// Whether it parks for its rollback window, whoever carries it on (fixed when it starts).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    park_warm: bool,
    /// Where it stands.
    phase: Phase,
}

/// A deployment parked at a gate (waiting for approval) or warm (in its rollback window), with no
/// process running it: the lock is released and the new slot keeps running. A command from any
/// process carries it on; once `until` has passed, whoever touches the application next
/// ([`tick`](crate::Deployer::tick), [`resume`](crate::Deployer::resume), the next
/// [`deploy`](crate::Deployer::deploy)) does what is due: an approval gate rolls back (no
/// approval in time), a rollback window ends (the old slot is drained and stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Parking {
    /// When it was parked.
    pub since: Timestamp,
    /// When what is due happens (`None`: an approval gate without a timeout waits for a command).
    pub until: Option<Timestamp>,
}

impl Parking {
    /// Whether `until` has passed.
    pub fn is_due(&self) -> bool {
        self.until
            .is_some_and(|until| until.system_time() <= std::time::SystemTime::now())
    }
}

impl Deployment {
    /// Unique id (`<app>-<unix ms>-<pid>-<n>`).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The application.
    pub fn app(&self) -> &AppName {
        &self.app
    }

    /// Deploy or rollback.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The release being deployed.
    pub fn release(&self) -> &Release {
        &self.release
    }

    /// The slot it is deployed into.
    pub fn target(&self) -> Slot {
        self.target
    }

    /// What served before, if anything did.
    pub fn previous(&self) -> Option<&Previous> {
        self.previous.as_ref()
    }

    /// Where the target slot's instances serve, once provisioned.
    pub fn endpoints(&self) -> Option<&Endpoints> {
        self.endpoints.as_ref()
    }

    /// What the environment started in the target slot (the artifact, pinned, and a fingerprint
    /// of its configuration), once provisioned; `None` before, and where the environment pins
    /// nothing (or in journals written before snapshots were recorded).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The snapshot a [`rollback_to`](crate::Deployer::rollback_to) starts again (`None` for
    /// other deployments): provisioning starts exactly its artifact.
    pub fn pin(&self) -> Option<&Snapshot> {
        self.pin.as_ref()
    }

    /// The target slot's share of traffic now, in percent.
    pub fn weight(&self) -> u8 {
        self.weight
    }

    /// When the router first confirmed a weight above 0 for the target slot, in this
    /// deployment; `None` before (and in journals written before it was recorded).
    pub fn traffic_since(&self) -> Option<Timestamp> {
        self.traffic_since
    }

    /// How many strategy decisions have been carried out.
    pub fn step(&self) -> usize {
        self.step
    }

    /// Whether the target slot has had all traffic (past the point where a crash rolls back).
    pub fn promoted(&self) -> bool {
        self.promoted
    }

    /// Whether traffic may have reached the target slot (a shift was started).
    pub fn routed(&self) -> bool {
        self.routed
    }

    /// The strategy's name (empty in journals written before it was recorded).
    pub fn strategy(&self) -> &str {
        &self.strategy
    }

    /// What happens to the old slot (fixed when the deployment starts, so a resume keeps it).
    pub fn retirement(&self) -> Retirement {
        self.retirement
    }

    /// Why the deployment is rolling back or failed, as a type.
    pub fn cause(&self) -> Option<Cause> {
        self.cause
    }

    /// Why the deployment is rolling back or failed, in words.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// How the old release stopped, once the rollout completed.
    pub fn old_stopped(&self) -> Option<StopOutcome> {
        self.old_stopped
    }

    /// How the refused release stopped, once rolled back.
    pub fn retired(&self) -> Option<StopOutcome> {
        self.retired
    }

    /// The target slot's last log lines when it failed.
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// Who asked for it.
    pub fn who(&self) -> Option<&str> {
        self.who.as_deref()
    }

    /// When it started.
    pub fn started(&self) -> Timestamp {
        self.started
    }

    /// Where it stands.
    pub fn phase(&self) -> &Phase {
        &self.phase
    }

    /// A fingerprint (`"sha256:…"`) of the strategy's steps as they were when it started (empty
    /// in journals written before they were recorded).
    pub fn steps(&self) -> &str {
        &self.steps
    }

    /// Whether it is parked, since when and until when.
    pub fn parked(&self) -> Option<Parking> {
        self.parked
    }

    /// Whether it parks at approval gates (fixed when it starts: a process that carries it on
    /// parks it there too).
    pub fn parks_at_gates(&self) -> bool {
        self.park_gates
    }

    /// Whether it parks for its rollback window (fixed when it starts).
    pub fn parks_warm(&self) -> bool {
        self.park_warm
    }

    /// Records where it parks (the engine, when a deployment starts).
    pub(crate) fn with_parking(mut self, gates: bool, warm: bool) -> Self {
        self.park_gates = gates;
        self.park_warm = warm;
        self
    }

    /// Records the strategy's name and steps (the engine, when a deployment starts).
    pub(crate) fn with_strategy(mut self, name: &str, steps: String) -> Self {
        self.strategy = name.to_string();
        self.steps = steps;
        self
    }

    /// Pins the snapshot that provisioning must start (the engine, when a
    /// [`rollback_to`](crate::Deployer::rollback_to) starts).
    pub(crate) fn with_pin(mut self, pin: Option<Snapshot>) -> Self {
        self.pin = pin;
        self
    }

    /// This deployment under another id, in `phase` (journal tests).
    #[cfg(test)]
    pub(crate) fn relabelled(mut self, id: &str, phase: Phase) -> Self {
        self.id = id.to_string();
        self.phase = phase;
        self
    }

    /// A new deployment in [`Phase::Provisioning`].
    pub fn new(
        app: AppName,
        kind: Kind,
        release: Release,
        target: Slot,
        previous: Option<Previous>,
        retirement: Retirement,
        who: Option<String>,
    ) -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let started = Timestamp::now();
        let ms = started
            .system_time()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Deployment {
            id: format!("{app}-{}-{}-{n}", ms.as_millis(), std::process::id()),
            app,
            kind,
            release,
            target,
            previous,
            endpoints: None,
            snapshot: None,
            pin: None,
            weight: 0,
            step: 0,
            traffic_since: None,
            promoted: false,
            routed: false,
            strategy: String::new(),
            retirement,
            cause: None,
            reason: None,
            old_stopped: None,
            retired: None,
            logs: Vec::new(),
            who,
            started,
            steps: String::new(),
            parked: None,
            park_gates: false,
            park_warm: false,
            phase: Phase::Provisioning,
        }
    }
}

pub(crate) mod transition;

pub(crate) use transition::{step, Signal};

#[cfg(test)]
mod tests;
