//! Termination signals and the bounded drain of open connections.

use std::io;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::log;

/// The termination signals the app reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermSignal {
    /// `SIGTERM` (what orchestrators and `docker stop` send).
    Term,
    /// `SIGINT` (Ctrl-C).
    Int,
}

impl TermSignal {
    /// Conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            TermSignal::Term => "SIGTERM",
            TermSignal::Int => "SIGINT",
        }
    }
}

/// Handlers for SIGTERM and SIGINT.
///
/// Installing them replaces the default action (terminate), so they must be
/// installed before the app announces that it is listening.
pub struct Signals {
    /// SIGTERM stream.
    term: Signal,
    /// SIGINT stream.
    int: Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for the next SIGTERM or SIGINT.
    pub async fn recv(&mut self) -> TermSignal {
        tokio::select! {
            _ = self.term.recv() => TermSignal::Term,
            _ = self.int.recv() => TermSignal::Int,
        }
    }
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainOutcome {
    /// Every connection finished.
    Drained,
    /// The bound passed first.
    TimedOut,
}

/// Tells every connection task to shut down gracefully and waits, at most
/// `timeout`, for all of them to finish.
///
/// Each connection task holds a clone of the receiver side of `shutdown`, so
/// the sender sees the channel close once the last one has ended. Signals
/// received meanwhile are logged and otherwise ignored.
pub async fn drain(shutdown: watch::Sender<()>, timeout: Duration, signals: &mut Signals) -> DrainOutcome {
    shutdown.send_replace(());
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = shutdown.closed() => return DrainOutcome::Drained,
            _ = &mut deadline => return DrainOutcome::TimedOut,
            sig = signals.recv() => log(format_args!("received {} while draining, still draining", sig.name())),
        }
    }
}
