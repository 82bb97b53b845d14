//! Outcomes as types: why a deployment was turned back, which backend call timed out, which
//! conflict stood in the way. Errors, reports, events and the journal carry these; their text is
//! derived from them, so callers and tests match on variants, never on messages.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A class of backend call, each with its own time bound (see [`Timeouts`](crate::Timeouts)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Call {
    /// [`Environment::deploy`](crate::Environment::deploy).
    Provision,
    /// [`Environment::stop`](crate::Environment::stop) and `remove`.
    Stop,
    /// [`Router::apply`](crate::Router::apply).
    Apply,
    /// A health or analysis probe's check.
    Probe,
    /// Reading state: `Environment::status`/`logs`, `Router::current`/`observe`/`adopt`.
    Read,
    /// [`Router::wait_drained`](crate::Router::wait_drained) (bounded by the drain time itself).
    Drain,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::Provision => "provision",
            Call::Stop => "stop",
            Call::Apply => "apply",
            Call::Probe => "probe",
            Call::Read => "read",
            Call::Drain => "drain",
        })
    }
}

/// Why a deployment did not go live, or was turned back after it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", content = "call", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// The environment could not start the release.
    Provision,
    /// The new slot did not pass its health policy.
    Health,
    /// The strategy's analysis failed.
    Analysis,
    /// The router could not apply (or confirm) a split.
    Router,
    /// An operator aborted (or asked for a rollback).
    Aborted,
    /// A gate waited longer than the deployer's approval timeout.
    NoApproval,
    /// The environment could not stop a slot.
    Stop,
    /// A backend call did not finish within its bound.
    Timeout(Call),
    /// The deployer stopped (a crash, a dropped future) before traffic was promoted.
    Interrupted,
    /// The strategy completed without giving the new slot all traffic.
    Strategy,
    /// A hook at this stage (one that gates traffic: before the change or before traffic) failed;
    /// serialized as `{"cause": "hook", "call": "before_traffic"}`.
    Hook(crate::hook::Stage),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Provision => f.write_str("provisioning failed"),
            Cause::Health => f.write_str("health check failed"),
            Cause::Analysis => f.write_str("analysis failed"),
            Cause::Router => f.write_str("router failed"),
            Cause::Aborted => f.write_str("aborted"),
            Cause::NoApproval => f.write_str("no approval in time"),
            Cause::Stop => f.write_str("stop failed"),
            Cause::Timeout(call) => write!(f, "{call} call timed out"),
            Cause::Interrupted => f.write_str("deployer interrupted"),
            Cause::Strategy => f.write_str("strategy incomplete"),
            Cause::Hook(stage) => write!(f, "{stage} hook failed"),
        }
    }
}

/// What a router did with its previous configuration after a change that did not take (see
/// [`Error::NotApplied`](crate::Error::NotApplied)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "restore", content = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Restore {
    /// The previous configuration is back in place and serving (for nginx: the previous file,
    /// reloaded when the change had been reloaded).
    Restored,
    /// Nothing had been written or loaded yet: the previous configuration never left.
    Untouched,
    /// Putting the previous configuration back failed too: what the proxy serves is unknown.
    Failed(String),
}

impl fmt::Display for Restore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restore::Restored => f.write_str("the previous configuration was restored"),
            Restore::Untouched => f.write_str("the previous configuration was never replaced"),
            Restore::Failed(reason) => write!(f, "restoring the previous configuration failed too: {reason}"),
        }
    }
}

/// What stands in the way of an operation (see [`Error::Conflict`](crate::Error::Conflict)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "conflict", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Conflict {
    /// An earlier deployment is unfinished: [`resume`](crate::Deployer::resume) it first.
    Unfinished {
        /// Its id.
        deployment: String,
        /// Its release.
        release: String,
        /// The phase it stopped in.
        phase: String,
    },
    /// Traffic is split and the journal has no unfinished deployment to explain it.
    SplitWithoutDeployment {
        /// The split the router holds.
        split: String,
    },
    /// The router's configuration was not written by it (or was edited since): adopt it first.
    ForeignConfig {
        /// What the router found.
        detail: String,
    },
    /// The router's configuration is not what the proxy serves, and nothing explains it.
    NotLive {
        /// What the router found.
        detail: String,
    },
    /// The deployment was started with another strategy than this deployer's.
    StrategyMismatch {
        /// The deployment.
        deployment: String,
        /// The strategy it ran.
        was: String,
        /// This deployer's strategy.
        is: String,
    },
    /// A command was sent while no deployment of the application runs in this process.
    NothingRunning {
        /// The application.
        app: String,
    },
    /// The phase the deployment is in does not take the command.
    Refused {
        /// The phase.
        phase: String,
        /// The command.
        signal: String,
    },
    /// The deployment ended before the command was read.
    Ended,
    /// The command was accepted but could not be journaled.
    NotRecorded {
        /// Why.
        reason: String,
    },
    /// A deployment is parked at an approval gate: promote or abort it before deploying again.
    Parked {
        /// Its id.
        deployment: String,
        /// Its release.
        release: String,
        /// The phase it waits in.
        phase: String,
        /// When the approval times out (`None`: never).
        until: Option<crate::model::Timestamp>,
    },
    /// The deploying process died before it took the command: nothing was applied.
    /// [`resume`](crate::Deployer::resume) converges the deployment.
    DeployerDied {
        /// The deployment.
        deployment: String,
        /// Its phase, as the journal last recorded it.
        phase: String,
    },
    /// The deployment moved on since the command was sent (another deployment runs, or an
    /// approval's gate was passed): look at its status and send the command again.
    MovedOn {
        /// The deployment now.
        deployment: String,
        /// Its phase now.
        phase: String,
    },
    /// The sender may not steer this application's deployments (only the user that deploys it,
    /// and root, may).
    NotPermitted {
        /// The sender's user id.
        uid: u32,
        /// What refused it.
        reason: String,
    },
}

impl Conflict {
    /// The refusal to start while `d` is parked at an approval gate.
    pub(crate) fn parked(d: &crate::machine::Deployment) -> Self {
        Conflict::Parked {
            deployment: d.id().to_string(),
            release: d.release().to_string(),
            phase: d.phase().to_string(),
            until: d.parked().and_then(|p| p.until),
        }
    }

    /// The refusal to start while `d`, unfinished, waits for a resume.
    pub(crate) fn unfinished(d: &crate::machine::Deployment) -> Self {
        Conflict::Unfinished {
            deployment: d.id().to_string(),
            release: d.release().to_string(),
            phase: d.phase().to_string(),
        }
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::Unfinished {
                deployment,
                release,
                phase,
            } => write!(
                f,
                "deployment {deployment} of {release} is unfinished ({phase}); call resume() first"
            ),
            Conflict::SplitWithoutDeployment { split } => write!(
                f,
                "traffic is split ({split}) and the journal has no unfinished deployment to explain it; \
                 route all traffic to one slot first"
            ),
            Conflict::ForeignConfig { detail } => write!(
                f,
                "the router's configuration is not bluegreen's ({detail}); take it over with \
                 DeployerBuilder::adopt_existing_config(true): it is kept as a \
                 backup and replaced at the first switch"
            ),
            Conflict::NotLive { detail } => write!(
                f,
                "the proxy does not serve what its configuration says ({detail}) and no unfinished \
                 deployment explains it; run resume() or check the proxy"
            ),
            Conflict::StrategyMismatch { deployment, was, is } => write!(
                f,
                "deployment {deployment} ran the {was} strategy; resume it with that strategy, not {is}"
            ),
            Conflict::NothingRunning { app } => write!(f, "no deployment of {app} is running here"),
            Conflict::Refused { phase, signal } => write!(f, "{signal} does not apply while {phase}"),
            Conflict::Ended => f.write_str("the deployment ended before the command was read"),
            Conflict::NotRecorded { reason } => write!(f, "accepted, but it could not be recorded: {reason}"),
            Conflict::Parked {
                deployment,
                release,
                phase,
                until,
            } => {
                write!(f, "deployment {deployment} of {release} is parked ({phase})")?;
                if let Some(until) = until {
                    write!(f, " until {until}")?;
                }
                f.write_str("; promote or abort it first")
            }
            Conflict::DeployerDied { deployment, phase } => write!(
                f,
                "the process running deployment {deployment} died ({phase}) before it took the command: \
                 nothing was applied; resume() converges the deployment"
            ),
            Conflict::MovedOn { deployment, phase } => write!(
                f,
                "the deployment moved on since the command was sent (now {deployment}, {phase}); \
                 look at its status and send it again"
            ),
            Conflict::NotPermitted { uid, reason } => write!(f, "uid {uid} may not steer this deployment: {reason}"),
        }
    }
}
