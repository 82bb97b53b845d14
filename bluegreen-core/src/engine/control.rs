//! Operator commands (promote, abort) delivered to the in-flight deployment.
//!
//! A command is judged against the phase the deployment is in when the engine reads it: at the
//! start of every phase and while a phase waits. The machine decides whether the phase accepts it
//! ([`machine::step`]); a refused command is answered at once, an accepted one only once its
//! transition is in the journal, so an `Ok` is never lost.

use std::sync::PoisonError;

use tokio::sync::{mpsc, oneshot};

use super::Deployer;
use crate::error::{Error, Result};
use crate::machine::{self, Deployment, Phase, Signal};
use crate::outcome::Conflict;

/// A command and the channel its answer goes back on.
#[derive(Debug)]
pub(super) struct Control {
    pub(super) signal: Signal,
    pub(super) reply: oneshot::Sender<Result<()>>,
}

impl Deployer {
    /// Sends `signal` to the in-flight deployment and waits until it is carried out or refused.
    pub(super) async fn command(&self, signal: Signal) -> Result<()> {
        let sender = self
            .inner
            .control
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(sender) = sender else {
            return Err(Error::Conflict(Conflict::NothingRunning {
                app: self.inner.app.to_string(),
            }));
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Conflict(Conflict::Ended);
        sender.send(Control { signal, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
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
        }
    }
}

/// The receiving end of a run's commands.
pub(super) struct Commands<'a> {
    deployer: &'a Deployer,
    sender: mpsc::UnboundedSender<Control>,
    receiver: mpsc::UnboundedReceiver<Control>,
    /// The reply to the command being carried out, sent once its transition is journaled.
    accepted: Option<oneshot::Sender<Result<()>>>,
}

impl Commands<'_> {
    /// The first queued command that `d`'s phase accepts; the others are refused at once.
    pub(super) fn take_queued(&mut self, d: &Deployment) -> Option<Signal> {
        while let Ok(control) = self.receiver.try_recv() {
            if let Some(signal) = self.judge(d, control) {
                return Some(signal);
            }
        }
        None
    }

    /// Waits for a command that `d`'s phase accepts (forever, if none comes). Cancel-safe.
    pub(super) async fn accepted(&mut self, d: &Deployment) -> Signal {
        loop {
            let Some(control) = self.receiver.recv().await else {
                return std::future::pending().await;
            };
            if let Some(signal) = self.judge(d, control) {
                return signal;
            }
        }
    }

    fn judge(&mut self, d: &Deployment, control: Control) -> Option<Signal> {
        match machine::step(d.clone(), control.signal.clone()) {
            Ok(_) => {
                self.accepted = Some(control.reply);
                Some(control.signal)
            }
            Err(refused) => {
                let _ = control.reply.send(Err(Error::Conflict(Conflict::Refused {
                    phase: refused.phase,
                    signal: refused.signal.to_string(),
                })));
                None
            }
        }
    }

    /// Answers the command just carried out: `Ok` once its transition is journaled.
    pub(super) fn answer(&mut self, journaled: &Result<Deployment>) {
        if let Some(reply) = self.accepted.take() {
            let _ = reply.send(match journaled {
                Ok(_) => Ok(()),
                Err(e) => Err(Error::Conflict(Conflict::NotRecorded {
                    reason: e.chain().to_string(),
                })),
            });
        }
    }

    /// Refuses whatever is still queued: the deployment ended in `phase`.
    pub(super) fn refuse_rest(&mut self, phase: &Phase) {
        self.receiver.close();
        while let Ok(control) = self.receiver.try_recv() {
            let _ = control.reply.send(Err(Error::Conflict(Conflict::Refused {
                phase: phase.to_string(),
                signal: control.signal.name().to_string(),
            })));
        }
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
