//! Operator commands (promote, abort) delivered to the in-flight deployment.

use tokio::sync::oneshot;

use super::Deployer;
use crate::error::{Error, Result};
use crate::machine::{self, Deployment, Signal};

/// A command and the channel its answer goes back on.
#[derive(Debug)]
pub(super) struct Control {
    pub(super) signal: Signal,
    pub(super) reply: oneshot::Sender<Result<()>>,
}

impl Deployer {
    /// Sends `signal` to the in-flight deployment and waits until it is accepted or refused.
    pub(super) async fn command(&self, signal: Signal) -> Result<()> {
        let sender = self.inner.control.lock().expect("control mutex").clone();
        let Some(sender) = sender else {
            return Err(Error::Conflict {
                reason: format!("no deployment of {} is running here", self.inner.app),
            });
        };
        let (reply, answer) = oneshot::channel();
        let gone = || Error::Conflict {
            reason: "the deployment finished before the command arrived".into(),
        };
        sender.send(Control { signal, reply }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// Answers `control`: accepted (returns its signal) when the machine takes it in `d`'s phase.
pub(super) fn accept(d: &Deployment, control: Control) -> Option<Signal> {
    match machine::step(d.clone(), control.signal.clone()) {
        Ok(_) => {
            let _ = control.reply.send(Ok(()));
            Some(control.signal)
        }
        Err(refused) => {
            let _ = control.reply.send(Err(Error::Conflict {
                reason: refused.to_string(),
            }));
            None
        }
    }
}

/// Removes the command channel when the deployment ends, however it ends.
pub(super) struct ControlSlot<'a>(pub(super) &'a Deployer);

impl Drop for ControlSlot<'_> {
    fn drop(&mut self) {
        *self.0.inner.control.lock().expect("control mutex") = None;
    }
}
