//! Where a command goes: the deployment running in this process, the one running in another
//! process (its [socket](super::socket)), or a parked one (carried on here, from the journal).

use std::time::Duration;

use tokio::time::Instant;

use super::run::{needs_resume, Begin, Run};
use super::socket::{self, Sent};
use super::Deployer;
use crate::command::{Answer, Command, Envelope, Judgement};
use crate::error::{Error, Result};
use crate::journal::{Entry, Record};
use crate::lock::{LockGuard, LockHolder};
use crate::outcome::Conflict;

/// How long a command waits for a deployer that holds the lock but does not listen yet (it is
/// starting, or finishing after it parked) before it gives up with [`Error::Locked`].
const LISTENER_WAIT: Duration = Duration::from_secs(5);
/// How many of the journal's last entries are searched for a command whose answer was lost.
const COMMAND_LOOKBACK: usize = 256;

impl Deployer {
    /// Sends `command` to the deployment in flight, wherever it runs, or carries a parked one on.
    pub(super) async fn send_command(&self, command: Command) -> Result<Answer> {
        let seen = self
            .last_entry()
            .await?
            .map(|e| e.deployment)
            .filter(|d| d.parked().is_some() || needs_resume(d));
        let envelope = Envelope::new(command, self.inner.who.clone(), seen.as_ref());
        // Set once a deployer read the command and went away without answering: from then on the
        // command is never sent again (it may have been applied); the journal decides.
        let mut lost = None;
        match self.command_here(envelope.clone()).await {
            Sent::Answered { by_pid, answer } => match answer {
                Err(Error::Conflict(Conflict::Parked { .. })) => {}
                answer => return answer.map(|deployment| Answer::Accepted { deployment, by_pid }),
            },
            Sent::NoListener => {}
            Sent::Lost { by_pid } => lost = Some(by_pid),
        }
        let wait = self.inner.lock_wait.unwrap_or_default().max(LISTENER_WAIT);
        let deadline = Instant::now() + wait;
        let holder = LockHolder::this_process(self.inner.who.clone());
        loop {
            if let (Some(path), None) = (&self.inner.socket, lost) {
                match socket::send(path, &envelope).await? {
                    Sent::Answered {
                        answer: Err(Error::Conflict(Conflict::Parked { .. })),
                        ..
                    }
                    | Sent::NoListener => {}
                    Sent::Answered { by_pid, answer } => {
                        return answer.map(|deployment| Answer::Accepted { deployment, by_pid })
                    }
                    Sent::Lost { by_pid } => lost = Some(by_pid),
                }
            }
            if let Some(by_pid) = lost {
                if let Some(judged) = self.find_command(&envelope).await? {
                    return judged.into_answer(by_pid);
                }
            } else if !self.worth_locking().await? {
                // Nothing parked or unfinished: no need to take the lock (and get in the way of a
                // deploy starting now) to say so.
                return Err(self.nothing_running());
            }
            match self.inner.lock.try_acquire(&self.inner.app, &holder).await {
                Ok(guard) => return self.command_unattended(guard, envelope, lost).await,
                Err(Error::Locked { .. }) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                // Another deployer (a resume) holds the lock, and the journal does not have the
                // command: the deployer that read it died before journaling it.
                Err(Error::Locked { .. }) if lost.is_some() => {
                    let last = self.last_entry().await?;
                    return Err(Error::Conflict(Conflict::DeployerDied {
                        deployment: last
                            .as_ref()
                            .map_or_else(String::new, |e| e.deployment.id().to_string()),
                        phase: last.map_or_else(String::new, |e| e.deployment.phase().to_string()),
                    }));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `envelope` for an application no process runs a deployment of (this one holds its lock):
    /// a parked deployment is carried on; a command whose deployer died on it is looked up in the
    /// journal (applied, or refused to its sender).
    async fn command_unattended(&self, guard: LockGuard, envelope: Envelope, lost: Option<u32>) -> Result<Answer> {
        let nothing = || self.nothing_running();
        let Some(last) = self.last_entry().await? else {
            return Err(nothing());
        };
        if let Some(by_pid) = lost {
            // Under the lock: nobody can journal it any more.
            if let Some(judged) = self.find_command(&envelope).await? {
                return judged.into_answer(by_pid);
            }
        }
        let d = last.deployment.clone();
        let mut run = Run::after(last.seq);
        let Some(parking) = d.parked() else {
            if !needs_resume(&d) {
                return Err(nothing());
            }
            // Its deployer died (the lock was free, or taken over from it) before it took the
            // command: say so, journaled, rather than act on a deployment a resume must converge.
            let conflict = Conflict::DeployerDied {
                deployment: d.id().to_string(),
                phase: d.phase().to_string(),
            };
            self.note_takeover(&guard, &d, &mut run).await?;
            self.journal_refusal(&d, &mut run, &envelope, &conflict).await?;
            return Err(Error::Conflict(conflict));
        };
        if parking.is_due() {
            // Its time came first: do what is due, then judge the command against what is left.
            let report = self.run(d, guard, Some(last.seq), Begin::Due).await?;
            let rolled_back = *report.deployment.phase() == crate::machine::Phase::RolledBack;
            return match envelope.command {
                // What an abort or a rollback asked for is done.
                Command::Abort { .. } | Command::Rollback if rolled_back => Ok(Answer::Ran(Box::new(report))),
                // A window that ended: the release before it is the one to go back to.
                Command::Rollback => Err(nothing()),
                _ => Err(Error::Conflict(Conflict::Refused {
                    phase: format!(
                        "{} ({})",
                        report.deployment.phase(),
                        report.deployment.reason().unwrap_or("its time had come")
                    ),
                    signal: envelope.command.name().to_string(),
                })),
            };
        }
        if let Err(conflict) = envelope.judge(&d) {
            self.journal_refusal(&d, &mut run, &envelope, &conflict).await?;
            return Err(Error::Conflict(conflict));
        }
        if envelope.command == Command::Promote {
            // Carrying it on walks the strategy's remaining steps; rolling it back needs none.
            self.check_strategy(&d)?;
        }
        let promote = envelope.command == Command::Promote;
        let report = self.run(d, guard, Some(last.seq), Begin::Command(envelope)).await?;
        if promote {
            // Approved, then refused on the way (a failed check): as `deploy` says it.
            return super::run::went_live(report).map(|report| Answer::Ran(Box::new(report)));
        }
        Ok(Answer::Ran(Box::new(report)))
    }

    /// Whether the journal's last entry is a deployment a command could be for: parked, or
    /// unfinished (running, or left by a deployer that died). Read without the lock.
    async fn worth_locking(&self) -> Result<bool> {
        Ok(self
            .last_entry()
            .await?
            .is_some_and(|last| last.deployment.parked().is_some() || needs_resume(&last.deployment)))
    }

    /// The answer to a command with no deployment to take it.
    fn nothing_running(&self) -> Error {
        Error::Conflict(Conflict::NothingRunning {
            app: self.inner.app.to_string(),
        })
    }

    /// How `envelope` was judged, if the journal's last entries hold it.
    async fn find_command(&self, envelope: &Envelope) -> Result<Option<Found>> {
        let entries: Vec<Entry> = self.inner.journal.tail(COMMAND_LOOKBACK).await?;
        Ok(entries.into_iter().rev().find_map(|e| match e.record {
            Record::Command { id, judgement, .. } if id == envelope.id => Some(Found {
                deployment: e.deployment.id().to_string(),
                phase: e.deployment.phase().to_string(),
                command: envelope.command.name(),
                judgement,
            }),
            _ => None,
        }))
    }
}

/// A command found in the journal after its answer was lost.
struct Found {
    deployment: String,
    phase: String,
    command: &'static str,
    judgement: Judgement,
}

impl Found {
    /// What the sender is told: what the journal says happened.
    fn into_answer(self, by_pid: u32) -> Result<Answer> {
        match self.judgement {
            Judgement::Accepted => Ok(Answer::Accepted {
                deployment: self.deployment,
                by_pid,
            }),
            Judgement::Refused { .. } => Err(Error::Conflict(Conflict::Refused {
                phase: self.phase,
                signal: self.command.to_string(),
            })),
        }
    }
}
