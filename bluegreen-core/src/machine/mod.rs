//! The deployment state machine: every phase, and every transition in one function, [`step`].
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
//! the result back as a [`Signal`]. The invariants live here:
//! - traffic moves (Shifting) only after Verifying passed, so never to an unproven slot;
//! - any failure before retirement rolls traffic back to the previous slot, which is still up;
//! - the old slot is stopped only after the rollback window and the drain;
//! - a deployer that restarts mid-way ([`Signal::Resumed`]) rolls back if traffic had not been
//!   promoted yet, and finishes otherwise (re-running the interrupted phase, which is idempotent).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::environment::StopOutcome;
use crate::model::{AppName, Endpoint, Release, Slot, Timestamp};
use crate::outcome::Cause;
use crate::strategy::{Decision, Pause, Retirement};

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
pub struct Previous {
    /// Its slot.
    pub slot: Slot,
    /// Its release.
    pub release: Release,
    /// Where it serves.
    pub endpoint: Endpoint,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Unique id (`<app>-<unix ms>-<pid>-<n>`).
    pub id: String,
    /// The application.
    pub app: AppName,
    /// Deploy or rollback.
    pub kind: Kind,
    /// The release being deployed.
    pub release: Release,
    /// The slot it is deployed into.
    pub target: Slot,
    /// What served before, if anything did.
    pub previous: Option<Previous>,
    /// Where the target slot serves, once provisioned.
    pub endpoint: Option<Endpoint>,
    /// The target slot's share of traffic now.
    pub weight: u8,
    /// How many strategy decisions have been carried out.
    pub step: usize,
    /// Whether the target slot has had all traffic (past the point where a crash rolls back).
    pub promoted: bool,
    /// Whether traffic may have reached the target slot (a shift was started): retiring it then
    /// drains it first.
    #[serde(default)]
    pub routed: bool,
    /// The strategy's name; a resume with another strategy is refused.
    #[serde(default)]
    pub strategy: String,
    /// What happens to the old slot (fixed when the deployment starts, so a resume keeps it).
    pub retirement: Retirement,
    /// Why the deployment is rolling back or failed, as a type. A rollback keeps its cause if
    /// retiring the refused release fails too; a rollout whose old slot could not be stopped
    /// records that ([`Cause::Stop`], or a [`Cause::Timeout`] of the stop), and keeps it once a
    /// resume has completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    /// Why the deployment is rolling back or failed, in words.
    pub reason: Option<String>,
    /// How the old release stopped, once the rollout completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_stopped: Option<StopOutcome>,
    /// How the refused release stopped, once rolled back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired: Option<StopOutcome>,
    /// The target slot's last log lines when it failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<String>,
    /// Who asked for it.
    pub who: Option<String>,
    /// When it started.
    pub started: Timestamp,
    /// Where it stands.
    pub phase: Phase,
}

impl Deployment {
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
            endpoint: None,
            weight: 0,
            step: 0,
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
            phase: Phase::Provisioning,
        }
    }
}

/// What happened: the result of the current phase's work, or an operator's command.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Signal {
    /// Provisioning started the release here.
    Provisioned(Endpoint),
    /// The strategy decided (from Deciding).
    Decided(Decision),
    /// The phase's work finished as planned.
    Done,
    /// The phase's work failed.
    Failed {
        /// Why, as a type.
        cause: Cause,
        /// Why, in words.
        reason: String,
        /// The target slot's last log lines, where relevant.
        logs: Vec<String>,
    },
    /// A slot was stopped (Stopping, Retiring), and how.
    Stopped(StopOutcome),
    /// Checks could not tell (too many provider errors).
    Inconclusive(String),
    /// An operator approved: promote now, end a pause, or re-check.
    Approved,
    /// An operator aborted (or asked for a rollback).
    Aborted(String),
    /// The engine restarted with this deployment unfinished.
    Resumed,
}

impl Signal {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Signal::Provisioned(_) => "provisioned",
            Signal::Decided(_) => "decided",
            Signal::Done => "done",
            Signal::Stopped(_) => "stopped",
            Signal::Failed { .. } => "failed",
            Signal::Inconclusive(_) => "inconclusive",
            Signal::Approved => "approved",
            Signal::Aborted(_) => "aborted",
            Signal::Resumed => "resumed",
        }
    }

    /// A failure without logs.
    pub fn failed(cause: Cause, reason: impl Into<String>) -> Self {
        Signal::Failed {
            cause,
            reason: reason.into(),
            logs: Vec::new(),
        }
    }
}

/// A signal that the current phase does not accept (approving when nothing waits, aborting while
/// the old slot is being stopped, a resume of a finished deployment).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{signal} does not apply while {phase}")]
pub struct Refused {
    /// The phase.
    pub phase: String,
    /// The signal's name.
    pub signal: &'static str,
}

/// The one transition function: the next state of `d` after `signal`.
///
/// On [`Refused`] the deployment is unchanged (the caller still has its clone).
pub fn step(mut d: Deployment, signal: Signal) -> Result<Deployment, Refused> {
    let refuse = |d: &Deployment, s: &Signal| Refused {
        phase: d.phase.to_string(),
        signal: s.name(),
    };
    let next = match (&d.phase, signal) {
        // Provisioning → Verifying: the release runs; prove it before anything else.
        (Phase::Provisioning, Signal::Provisioned(endpoint)) => {
            d.endpoint = Some(endpoint);
            Phase::Verifying
        }
        (
            Phase::Provisioning,
            s @ (Signal::Done | Signal::Stopped(_) | Signal::Decided(_) | Signal::Inconclusive(_) | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Verifying: the only way to Deciding, and so to any traffic (invariant 1).
        (Phase::Verifying, Signal::Done) => Phase::Deciding,
        (Phase::Verifying, Signal::Inconclusive(reason)) => Phase::Held {
            reason,
            recheck: Recheck::Verify,
        },
        (
            Phase::Verifying,
            s @ (Signal::Provisioned(_) | Signal::Stopped(_) | Signal::Decided(_) | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Deciding: carry out the strategy's decision.
        (Phase::Deciding, Signal::Decided(decision)) => match decision {
            // With nothing before it, the new release takes all traffic or none.
            Decision::Shift(weight) => {
                d.routed = true;
                Phase::Shifting {
                    weight: if d.previous.is_some() { weight.min(100) } else { 100 },
                }
            }
            Decision::Pause(pause) => Phase::Paused { pause },
            Decision::Analyse(_) => Phase::Analysing,
            Decision::Complete if d.weight < 100 => {
                let reason = format!("strategy completed with {}% of traffic on the new slot", d.weight);
                roll_back_or_fail(&mut d, Cause::Strategy, reason)
            }
            Decision::Complete => {
                if d.previous.is_some() {
                    Phase::Warm
                } else {
                    Phase::Completed
                }
            }
        },
        (
            Phase::Deciding,
            s @ (Signal::Provisioned(_)
            | Signal::Done
            | Signal::Stopped(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Shifting: the router confirmed the weight.
        (Phase::Shifting { weight }, Signal::Done) => {
            d.weight = *weight;
            d.promoted |= *weight == 100;
            d.step += 1;
            Phase::Deciding
        }
        (
            Phase::Shifting { .. },
            s @ (Signal::Provisioned(_)
            | Signal::Stopped(_)
            | Signal::Decided(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Paused: time ran out, or an operator promoted.
        (Phase::Paused { .. }, Signal::Done | Signal::Approved) => {
            d.step += 1;
            Phase::Deciding
        }
        (
            Phase::Paused { .. },
            s @ (Signal::Provisioned(_) | Signal::Stopped(_) | Signal::Decided(_) | Signal::Inconclusive(_)),
        ) => return Err(refuse(&d, &s)),

        // Analysing: passed, or inconclusive (a human decides).
        (Phase::Analysing, Signal::Done) => {
            d.step += 1;
            Phase::Deciding
        }
        (Phase::Analysing, Signal::Inconclusive(reason)) => Phase::Held {
            reason,
            recheck: Recheck::Analyse,
        },
        (
            Phase::Analysing,
            s @ (Signal::Provisioned(_) | Signal::Stopped(_) | Signal::Decided(_) | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Held: approval re-runs the check (it never skips it: invariant 1).
        (
            Phase::Held {
                recheck: Recheck::Verify,
                ..
            },
            Signal::Approved,
        ) => Phase::Verifying,
        (
            Phase::Held {
                recheck: Recheck::Analyse,
                ..
            },
            Signal::Approved,
        ) => Phase::Analysing,
        (
            Phase::Held { .. },
            s @ (Signal::Provisioned(_)
            | Signal::Decided(_)
            | Signal::Done
            | Signal::Stopped(_)
            | Signal::Inconclusive(_)),
        ) => return Err(refuse(&d, &s)),

        // Failure, abort, or a crash before promotion: traffic goes back (invariant 2). After
        // promotion, a failure still rolls back while the old slot is warm, if there is one.
        (
            Phase::Provisioning
            | Phase::Verifying
            | Phase::Deciding
            | Phase::Shifting { .. }
            | Phase::Paused { .. }
            | Phase::Analysing
            | Phase::Held { .. }
            | Phase::Warm,
            Signal::Failed { cause, reason, logs },
        ) => {
            d.logs = logs;
            roll_back_or_fail(&mut d, cause, reason)
        }
        (
            Phase::Provisioning
            | Phase::Verifying
            | Phase::Deciding
            | Phase::Shifting { .. }
            | Phase::Paused { .. }
            | Phase::Analysing
            | Phase::Held { .. }
            | Phase::Warm,
            Signal::Aborted(reason),
        ) => roll_back_or_fail(&mut d, Cause::Aborted, format!("aborted: {reason}")),
        // A first deploy interrupted mid-shift: the router may already send everything to the new
        // slot and there is nothing to go back to, so finish the shift (health already passed).
        (Phase::Shifting { .. }, Signal::Resumed) if d.previous.is_none() => d.phase.clone(),
        (
            Phase::Provisioning
            | Phase::Verifying
            | Phase::Deciding
            | Phase::Shifting { .. }
            | Phase::Paused { .. }
            | Phase::Analysing
            | Phase::Held { .. },
            Signal::Resumed,
        ) if !d.promoted => {
            let reason = format!("the deployer stopped while {} before promotion", d.phase.name());
            roll_back_or_fail(&mut d, Cause::Interrupted, reason)
        }
        (
            Phase::Provisioning
            | Phase::Verifying
            | Phase::Deciding
            | Phase::Shifting { .. }
            | Phase::Paused { .. }
            | Phase::Analysing
            | Phase::Held { .. },
            Signal::Resumed,
        ) => d.phase.clone(),

        // Warm → Draining → Stopping → Completed.
        (Phase::Warm, Signal::Done) => Phase::Draining,
        (Phase::Warm, Signal::Resumed) => Phase::Warm,
        (
            Phase::Warm,
            s @ (Signal::Provisioned(_)
            | Signal::Stopped(_)
            | Signal::Decided(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        ) => return Err(refuse(&d, &s)),
        (Phase::Draining, Signal::Done) => Phase::Stopping,
        (Phase::Draining, Signal::Resumed) => Phase::Draining,
        (Phase::Stopping, Signal::Stopped(outcome)) => {
            d.old_stopped = Some(outcome);
            Phase::Completed
        }
        (Phase::Stopping, Signal::Resumed) => Phase::Stopping,
        // The rollout had no cause to record until now: keep why the stop failed, as a type (a
        // stop that failed or one that timed out), for status and the journal. `reason` stays
        // empty: it says a rollback was decided, and none was (the words are in the phase).
        (Phase::Stopping, Signal::Failed { cause, reason, .. }) => {
            d.cause = Some(cause);
            Phase::Failed {
                reason: format!("the old slot could not be stopped: {reason}"),
                retry: Retry::StopOld,
            }
        }
        (
            Phase::Draining,
            s @ (Signal::Provisioned(_)
            | Signal::Decided(_)
            | Signal::Stopped(_)
            | Signal::Failed { .. }
            | Signal::Inconclusive(_)
            | Signal::Approved
            | Signal::Aborted(_)),
        )
        | (
            Phase::Stopping,
            s @ (Signal::Provisioned(_)
            | Signal::Decided(_)
            | Signal::Done
            | Signal::Inconclusive(_)
            | Signal::Approved
            | Signal::Aborted(_)),
        ) => return Err(refuse(&d, &s)),

        // RollingBack → Retiring → RolledBack.
        (Phase::RollingBack, Signal::Done) => Phase::Retiring,
        (Phase::RollingBack, Signal::Resumed | Signal::Aborted(_)) => Phase::RollingBack,
        (Phase::RollingBack, Signal::Failed { reason, .. }) => Phase::Failed {
            reason: format!("traffic could not be moved back: {reason}"),
            retry: Retry::RollBack,
        },
        (Phase::Retiring, Signal::Stopped(outcome)) => {
            d.retired = Some(outcome);
            Phase::RolledBack
        }
        // Traffic is back, but the refused release may still run: not a clean rollback.
        (Phase::Retiring, Signal::Failed { reason, .. }) => Phase::Failed {
            reason: format!("the refused release could not be stopped: {reason}"),
            retry: Retry::Retire,
        },
        (Phase::Retiring, Signal::Resumed | Signal::Aborted(_)) => Phase::Retiring,
        (
            Phase::RollingBack,
            s @ (Signal::Provisioned(_)
            | Signal::Stopped(_)
            | Signal::Decided(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        )
        | (
            Phase::Retiring,
            s @ (Signal::Provisioned(_)
            | Signal::Done
            | Signal::Decided(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Failed: resume retries what failed, as the phase recorded it.
        (
            Phase::Failed {
                retry: Retry::RollBack, ..
            },
            Signal::Resumed,
        ) => Phase::RollingBack,
        (
            Phase::Failed {
                retry: Retry::StopOld, ..
            },
            Signal::Resumed,
        ) => Phase::Stopping,
        (
            Phase::Failed {
                retry: Retry::Retire, ..
            },
            Signal::Resumed,
        ) => Phase::Retiring,
        (Phase::Completed | Phase::RolledBack | Phase::Failed { .. }, s) => return Err(refuse(&d, &s)),
    };
    d.phase = next;
    Ok(d)
}

/// Before the old slot is retired, a failure moves traffic back. With no previous release and the
/// new one already serving, there is nothing to go back to: stop and say so.
fn roll_back_or_fail(d: &mut Deployment, cause: Cause, reason: String) -> Phase {
    d.cause = Some(cause);
    if d.previous.is_none() && d.promoted {
        let text = format!("{reason}; no previous release to roll back to, so the new release keeps serving");
        d.reason = Some(text.clone());
        return Phase::Failed {
            reason: text,
            retry: Retry::Nothing,
        };
    }
    d.reason = Some(reason);
    Phase::RollingBack
}

#[cfg(test)]
mod tests;
