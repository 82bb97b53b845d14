//! Commands that steer a deployment in flight — [`promote`](crate::Deployer::promote),
//! [`abort`](crate::Deployer::abort), [`rollback`](crate::Deployer::rollback) — from this process
//! or from any other process on the host that shares the application's state directory.
//!
//! # How a command reaches the deployment
//! - **Runs in this process**: an in-process channel.
//! - **Runs in another process**: that deployer listens on a Unix socket in the state directory
//!   (`<state dir>/<app>.sock`, see [`DeployerBuilder::state_dir`](crate::DeployerBuilder::state_dir)).
//!   The sender connects, writes the command as one JSON line, and reads the answer line. A Unix
//!   socket was chosen over a command file because the kernel tells the deployer who is on the
//!   other end (`SO_PEERCRED`: uid and pid, which a file's contents could only claim), the answer
//!   comes back on the same connection without polling, and a deployer that dies is seen at once
//!   (the connection is refused or reset; the next deployer replaces the socket file it left).
//! - **Parked** (no process runs it, see [parking](crate::DeployerBuilder::park_at_gates)): the
//!   sender takes the application's lock and carries the deployment on itself, from the journal.
//!
//! # What a command's answer means
//! A command is for the deployment its sender saw in flight (and a promote for the step it saw):
//! if the deployment moved on before the command is read (another deployment runs, the gate was
//! already passed), it is refused with [`Conflict::MovedOn`](crate::Conflict::MovedOn). Otherwise
//! it is judged by the state machine against the phase the deployment is in when it is read. An accepted command is answered only once its transition is in the journal, in the same
//! entry ([`Record::Command`](crate::journal::Record::Command)), so an `Ok` is never lost and a
//! command is never applied twice. A refused one is journaled with the reason and answered with it.
//! If the deploying process dies while a command is on its way, the sender looks the command up in
//! the journal: journaled means applied; otherwise it is refused to the sender with
//! [`Conflict::DeployerDied`](crate::Conflict::DeployerDied) (a [`resume`](crate::Deployer::resume)
//! converges the deployment), never silently dropped.
//!
//! # Who can steer a deployment
//! Whoever may deploy: the state directory is created owner-only (`0700`), and the journal, lock
//! files and socket in it are `0600`, so another user's deployer is refused with
//! [`Conflict::NotPermitted`](crate::Conflict::NotPermitted) as soon as it is
//! [built](crate::DeployerBuilder::build) over that directory. The listener also checks the sender's uid from the kernel: only
//! the deploying user and root are obeyed; a command from anyone else (possible only if the
//! directory's permissions were loosened by hand) is refused with
//! [`Conflict::NotPermitted`](crate::Conflict::NotPermitted) and journaled as refused.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::machine::Signal;

/// What an operator asks of a deployment in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Approve what waits for a human: promotion, a pause, a re-check of inconclusive health.
    Promote,
    /// Roll the deployment back, saying why.
    Abort {
        /// Why.
        reason: String,
    },
    /// Go back to the previous release (an abort, for a deployment in flight).
    Rollback,
}

impl Command {
    /// What the machine is told.
    pub(crate) fn signal(&self) -> Signal {
        match self {
            Command::Promote => Signal::Approved,
            Command::Abort { reason } => Signal::Aborted(reason.clone()),
            Command::Rollback => Signal::Aborted("rollback requested".to_string()),
        }
    }

    /// The command's name (`"promote"`).
    pub fn name(&self) -> &'static str {
        match self {
            Command::Promote => "promote",
            Command::Abort { .. } => "abort",
            Command::Rollback => "rollback",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Abort { reason } => write!(f, "abort ({reason})"),
            other => f.write_str(other.name()),
        }
    }
}

/// Who sent a command.
///
/// `uid` and `pid` of a command from another process are the kernel's (`SO_PEERCRED`), not the
/// sender's claim; `who` is what the sender's deployer was built with
/// ([`DeployerBuilder::who`](crate::DeployerBuilder::who)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Issuer {
    /// The sender's user id.
    pub uid: u32,
    /// The sender's process id.
    pub pid: u32,
    /// Who the sender says it is (a user, a CI job), if it says.
    pub who: Option<String>,
}

impl Issuer {
    /// `pid` of user `uid`, saying it is `who`.
    pub fn new(uid: u32, pid: u32, who: Option<String>) -> Self {
        Issuer { uid, pid, who }
    }

    /// This process, as `who`.
    pub fn this_process(who: Option<String>) -> Self {
        Issuer {
            uid: rustix::process::geteuid().as_raw(),
            pid: std::process::id(),
            who,
        }
    }
}

impl fmt::Display for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pid {} (uid {})", self.pid, self.uid)?;
        if let Some(who) = &self.who {
            write!(f, " as {who}")?;
        }
        Ok(())
    }
}

/// How a command was judged, as journaled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Judgement {
    /// Applied: the entry that journals it holds the deployment after its transition.
    Accepted,
    /// Not applied, and why (the entry holds the deployment unchanged).
    Refused {
        /// Why.
        reason: String,
    },
}

/// The answer to a command that was carried out.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Answer {
    /// The process running the deployment (this one or another) applied it and journaled it; the
    /// deployment goes on there.
    Accepted {
        /// The deployment.
        deployment: String,
        /// The process that applied it.
        by_pid: u32,
    },
    /// The deployment was parked: this process applied the command and carried the deployment on
    /// from the journal, to the report's end (parked again at the next gate, completed, or rolled
    /// back).
    Ran(Box<crate::Report>),
}

impl Answer {
    /// The report, when this process carried the deployment on.
    pub fn report(&self) -> Option<&crate::Report> {
        match self {
            Answer::Ran(report) => Some(report),
            Answer::Accepted { .. } => None,
        }
    }
}

/// One command on its way: its id (unique per command, so it is found in the journal), what it
/// asks, who sent it, and what the sender saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) id: String,
    pub(crate) command: Command,
    pub(crate) from: Issuer,
    pub(crate) expect: Option<Expect>,
}

/// What the sender saw when it sent a command: the command is for that deployment (and an
/// approval for that step of it), not for whatever runs when it arrives. Two operators who both
/// promote one gate approve that gate once; a late promote does not approve the next gate or
/// another deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Expect {
    pub(crate) deployment: String,
    /// For a promote: the step it approves.
    pub(crate) step: Option<usize>,
}

impl Envelope {
    /// The signal for the machine when `d` takes this command; why not otherwise: the deployment
    /// moved on since the sender looked, or its phase does not take the command.
    pub(crate) fn judge(&self, d: &crate::machine::Deployment) -> Result<Signal, crate::outcome::Conflict> {
        if let Some(conflict) = self.moved_on(d) {
            return Err(conflict);
        }
        let signal = self.command.signal();
        crate::machine::step(d.clone(), signal.clone())
            .map(|_| signal)
            .map_err(|refused| crate::outcome::Conflict::Refused {
                phase: refused.phase,
                signal: self.command.name().to_string(),
            })
    }

    /// The journal's record of this command, judged.
    pub(crate) fn record(&self, judgement: Judgement) -> crate::journal::Record {
        crate::journal::Record::Command {
            id: self.id.clone(),
            command: self.command.clone(),
            from: self.from.clone(),
            judgement,
        }
    }

    /// Why `d` is not what the sender saw, if it is not.
    fn moved_on(&self, d: &crate::machine::Deployment) -> Option<crate::outcome::Conflict> {
        let expect = self.expect.as_ref()?;
        let same = expect.deployment == d.id() && expect.step.is_none_or(|step| step == d.step());
        (!same).then(|| crate::outcome::Conflict::MovedOn {
            deployment: d.id().to_string(),
            phase: d.phase().to_string(),
        })
    }
}

impl Envelope {
    /// A new command from this process, for what the sender saw (`seen`: the journal's latest
    /// deployment, if it is in flight or parked).
    pub(crate) fn new(command: Command, who: Option<String>, seen: Option<&crate::machine::Deployment>) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let expect = seen.map(|d| Expect {
            deployment: d.id().to_string(),
            step: matches!(command, Command::Promote).then(|| d.step()),
        });
        Envelope {
            id: format!("cmd-{nanos}-{}-{n}", std::process::id()),
            command,
            from: Issuer::this_process(who),
            expect,
        }
    }
}
