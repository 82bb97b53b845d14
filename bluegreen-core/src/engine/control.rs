//! Operator commands (promote, abort, rollback) delivered to the in-flight deployment, from this
//! process (a channel) or another one (the [socket](super::socket) feeds the same channel).
//!
//! A command is judged against the phase the deployment is in when the engine reads it: at the
//! start of every phase and while a phase waits. The machine decides whether the phase accepts it
//! ([`machine::step`](crate::machine::step)). Both outcomes are journaled with the command's id and sender before the
//! sender hears: a refusal in its own entry, an acceptance in the entry of the transition it caused.

use std::sync::PoisonError;

use tokio::sync::{mpsc, oneshot};

use super::socket::Sent;
use super::Deployer;
use crate::command::Envelope;
use crate::error::{Error, Result};
use crate::machine::{Deployment, Signal};
use crate::outcome::Conflict;

/// A command and the channel its answer goes back on: the deployment's id once applied.
#[derive(Debug)]
pub(super) struct Control {
    pub(super) envelope: Envelope,
    /// Set when the command must be refused whatever the phase (a sender without permission).
    pub(super) forbidden: Option<Conflict>,
    pub(super) reply: oneshot::Sender<Result<String>>,
}

/// A command the phase did not take: to journal, then answer.
pub(super) struct Refusal {
    pub(super) envelope: Envelope,
    pub(super) conflict: Conflict,
    reply: oneshot::Sender<Result<String>>,
}

impl Refusal {
    /// Tells the sender, once the refusal is journaled.
    pub(super) fn answer(self) {
        let _ = self.reply.send(Err(Error::Conflict(self.conflict)));
    }
}

/// What reading one command came to.
pub(super) enum Judged {
    /// The phase takes it: the signal to feed the machine.
    Accepted(Signal),
    /// It does not.
    Refused(Refusal),
}

impl Deployer {
    /// The in-process channel of the deployment running here, if one does.
    pub(super) fn local_channel(&self) -> Option<mpsc::UnboundedSender<Control>> {
        self.inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends `envelope` to the deployment running in this process, if one does.
    pub(super) async fn command_here(&self, envelope: Envelope) -> Sent {
        let by_pid = std::process::id();
        let Some(sender) = self.local_channel() else {
            return Sent::NoListener;
        };
        let (reply, answer) = oneshot::channel();
        let control = Control {
            envelope,
            forbidden: None,
            reply,
        };
        if sender.send(control).is_err() {
            return Sent::NoListener;
        }
        match answer.await {
            Ok(answer) => Sent::Answered { by_pid, answer },
            // The run was dropped after it read the command: the journal says what became of it.
            Err(_) => Sent::Lost { by_pid },
        }
    }

    /// Opens the command channel of a run; it closes when the returned [`Commands`] is dropped.
    pub(super) fn open_commands(&self) -> Commands<'_> {
        let (sender, receiver) = mpsc::unbounded_channel();
        *self.inner.control.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Commands {
            deployer: self,
            sender,
            receiver,
            accepted: None,
            listener: None,
        }
    }
}

/// The receiving end of a run's commands.
pub(super) struct Commands<'a> {
    deployer: &'a Deployer,
    pub(super) sender: mpsc::UnboundedSender<Control>,
    receiver: mpsc::UnboundedReceiver<Control>,
    /// The command being carried out and its reply, sent once its transition is journaled.
    accepted: Option<(Envelope, oneshot::Sender<Result<String>>)>,
    /// The socket listener feeding this channel from other processes, while it runs.
    pub(super) listener: Option<super::socket::Listener>,
}

impl Commands<'_> {
    /// The first queued command, judged against `d`'s phase.
    pub(super) fn take_queued(&mut self, d: &Deployment) -> Option<Judged> {
        let control = self.receiver.try_recv().ok()?;
        Some(self.judge(d, control))
    }

    /// Waits for the next command and judges it (forever, if none comes). Cancel-safe.
    pub(super) async fn next(&mut self, d: &Deployment) -> Judged {
        match self.receiver.recv().await {
            Some(control) => self.judge(d, control),
            None => std::future::pending().await,
        }
    }

    fn judge(&mut self, d: &Deployment, control: Control) -> Judged {
        let Control {
            envelope,
            forbidden,
            reply,
        } = control;
        match forbidden.map_or_else(|| envelope.judge(d), Err) {
            Ok(signal) => {
                self.accepted = Some((envelope, reply));
                Judged::Accepted(signal)
            }
            Err(conflict) => Judged::Refused(Refusal {
                envelope,
                conflict,
                reply,
            }),
        }
    }

    /// The command whose signal is being applied, if the signal came from one.
    pub(super) fn accepted(&self) -> Option<&Envelope> {
        self.accepted.as_ref().map(|(envelope, _)| envelope)
    }

    /// Answers the command just carried out: its deployment's id once its transition is journaled.
    pub(super) fn answer(&mut self, journaled: &Result<Deployment>) {
        if let Some((_, reply)) = self.accepted.take() {
            let _ = reply.send(match journaled {
                Ok(d) => Ok(d.id().to_string()),
                Err(e) => Err(Error::Conflict(Conflict::NotRecorded {
                    reason: e.chain().to_string(),
                })),
            });
        }
    }

    /// Stops taking commands, and returns the refusals of those still queued (to journal, then
    /// answer). Commands queued when the deployment was parked are answered at once with
    /// [`Conflict::Parked`]: their senders carry the parked deployment on themselves. Connections
    /// not read yet are answered "gone" by the listener as it closes.
    pub(super) fn close(&mut self, d: &Deployment) -> Vec<Refusal> {
        self.receiver.close();
        self.listener.take();
        let mut refused = Vec::new();
        while let Ok(control) = self.receiver.try_recv() {
            if d.parked().is_some() {
                let _ = control.reply.send(Err(Error::Conflict(Conflict::parked(d))));
                continue;
            }
            refused.push(Refusal {
                conflict: Conflict::Refused {
                    phase: d.phase().to_string(),
                    signal: control.envelope.command.name().to_string(),
                },
                envelope: control.envelope,
                reply: control.reply,
            });
        }
        refused
    }
}

impl Drop for Commands<'_> {
    /// Clears the deployer's command slot, unless another run has taken it since.
    fn drop(&mut self) {
        let mut slot = self
            .deployer
            .inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|s| s.same_channel(&self.sender)) {
            *slot = None;
        }
    }
}
