//! The one transition function, [`step`], and the [`Signal`]s it takes.
//!
//! Only the engine drives the machine: neither is part of the application-facing API. Model tests
//! reach them through [`testing::machine`](crate::testing::machine) (`testing` feature).

use crate::environment::StopOutcome;
use crate::model::{Endpoints, Snapshot};
use crate::outcome::Cause;
use crate::strategy::Decision;

use super::{Deployment, Phase, Recheck, Retry};

/// What happened: the result of the current phase's work, or an operator's command.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Signal {
    /// Provisioning started the release.
    Provisioned {
        /// Where its instances serve.
        endpoints: Endpoints,
        /// What the environment started, where it pins it.
        snapshot: Option<Snapshot>,
    },
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
    /// The deployment waits for a human or for its rollback window: park it (no process runs it)
    /// until a command, or `until`.
    Park {
        /// When what is due happens.
        until: Option<crate::model::Timestamp>,
    },
}

impl Signal {
    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Signal::Provisioned { .. } => "provisioned",
            Signal::Decided(_) => "decided",
            Signal::Done => "done",
            Signal::Stopped(_) => "stopped",
            Signal::Failed { .. } => "failed",
            Signal::Inconclusive(_) => "inconclusive",
            Signal::Approved => "approved",
            Signal::Aborted(_) => "aborted",
            Signal::Resumed => "resumed",
            Signal::Park { .. } => "park",
        }
    }

    /// Provisioning started the release at `endpoints`, with nothing pinned (model tests).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn provisioned(endpoints: impl Into<Endpoints>) -> Self {
        Signal::Provisioned {
            endpoints: endpoints.into(),
            snapshot: None,
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
#[non_exhaustive]
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
    let parks = matches!(signal, Signal::Park { .. });
    let next = match (&d.phase, signal) {
        // Parking: only where the deployment waits for a human or for its rollback window. Any
        // other accepted signal unparks it (below).
        (
            Phase::Paused {
                pause: crate::strategy::Pause::Approved,
            }
            | Phase::Held { .. }
            | Phase::Warm,
            Signal::Park { until },
        ) => {
            d.parked = Some(super::Parking {
                since: crate::model::Timestamp::now(),
                until,
            });
            d.phase.clone()
        }
        (_, s @ Signal::Park { .. }) => return Err(refuse(&d, &s)),

        // Provisioning → Verifying: the release runs; prove it before anything else.
        (Phase::Provisioning, Signal::Provisioned { endpoints, snapshot }) => {
            d.endpoints = Some(endpoints);
            d.snapshot = snapshot;
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
            s @ (Signal::Provisioned { .. } | Signal::Stopped(_) | Signal::Decided(_) | Signal::Approved),
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
            s @ (Signal::Provisioned { .. }
            | Signal::Done
            | Signal::Stopped(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        ) => return Err(refuse(&d, &s)),

        // Shifting: the router confirmed the weight.
        (Phase::Shifting { weight }, Signal::Done) => {
            if *weight > 0 && d.traffic_since.is_none() {
                d.traffic_since = Some(crate::model::Timestamp::now());
            }
            d.weight = *weight;
            d.promoted |= *weight == 100;
            d.step += 1;
            Phase::Deciding
        }
        (
            Phase::Shifting { .. },
            s @ (Signal::Provisioned { .. }
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
            s @ (Signal::Provisioned { .. } | Signal::Stopped(_) | Signal::Decided(_) | Signal::Inconclusive(_)),
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
            s @ (Signal::Provisioned { .. } | Signal::Stopped(_) | Signal::Decided(_) | Signal::Approved),
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
            s @ (Signal::Provisioned { .. }
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
            s @ (Signal::Provisioned { .. }
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
            s @ (Signal::Provisioned { .. }
            | Signal::Decided(_)
            | Signal::Stopped(_)
            | Signal::Failed { .. }
            | Signal::Inconclusive(_)
            | Signal::Approved
            | Signal::Aborted(_)),
        )
        | (
            Phase::Stopping,
            s @ (Signal::Provisioned { .. }
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
            s @ (Signal::Provisioned { .. }
            | Signal::Stopped(_)
            | Signal::Decided(_)
            | Signal::Inconclusive(_)
            | Signal::Approved),
        )
        | (
            Phase::Retiring,
            s @ (Signal::Provisioned { .. }
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
    if !parks {
        d.parked = None;
    }
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
