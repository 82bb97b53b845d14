//! [`Deployer::preflight`]: whether every backend is reachable and readable, every problem at once.

use std::fmt;

use serde::{Serialize, Serializer};

use super::Deployer;
use crate::environment::ReleaseCheck;
use crate::error::Error;
use crate::lock::LockHolder;
use crate::model::{Release, Slot};
use crate::outcome::Conflict;
use crate::router::Serving;

/// What a [`Problem`] was found checking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Check {
    /// The router's configuration, read ([`Router::current`](crate::Router::current)).
    RouterCurrent,
    /// What the live proxy serves ([`Router::observe`](crate::Router::observe)).
    RouterObserve,
    /// What runs in a slot ([`Environment::status`](crate::Environment::status)).
    EnvironmentStatus {
        /// The slot asked about.
        slot: Slot,
    },
    /// The journal's last entry, read.
    Journal,
    /// The application's deploy lock, free.
    Lock,
    /// The release can be started ([`Environment::check_release`](crate::Environment::check_release);
    /// Docker: its image is present).
    Release,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Check::RouterCurrent => f.write_str("router current"),
            Check::RouterObserve => f.write_str("router observe"),
            Check::EnvironmentStatus { slot } => write!(f, "environment status of {slot}"),
            Check::Journal => f.write_str("journal"),
            Check::Lock => f.write_str("lock"),
            Check::Release => f.write_str("release"),
        }
    }
}

/// One problem [`Deployer::preflight`] found: which check, against which backend, and the error.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Problem {
    /// What was checked.
    #[serde(flatten)]
    pub check: Check,
    /// The backend's name (the router's or environment's [`name`](crate::Router::name),
    /// `"journal"`, `"lock"`).
    pub backend: String,
    /// What went wrong: the backend's error, [`Error::Locked`] naming the holder, or
    /// [`Error::Conflict`] for a proxy that does not serve its configuration. Serialized as its
    /// [`chain`](Error::chain).
    #[serde(serialize_with = "serialize_error")]
    pub error: Error,
}

impl Problem {
    /// Who holds the lock, when this is a held lock.
    pub fn lock_holder(&self) -> Option<&LockHolder> {
        match &self.error {
            Error::Locked { holder, .. } => Some(holder),
            _ => None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.check, self.backend, self.error.chain())
    }
}

fn serialize_error<S: Serializer>(e: &Error, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&e.chain())
}

/// What [`Deployer::preflight`] checked and every problem it found.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Preflight {
    /// Every check made, in order, whether it passed or not.
    pub checked: Vec<Check>,
    /// Every problem found, in the order of [`checked`](Self::checked); empty when all passed.
    pub problems: Vec<Problem>,
    /// Checks a backend could not make and said so (an environment without a cheap
    /// [`check_release`](crate::Environment::check_release)): neither passed nor failed.
    pub not_checked: Vec<Check>,
    /// A holder that had died holding the lock, found (and cleared) by the lock check: the lock
    /// was free, but whatever that holder ran may be unfinished ([`Deployer::resume`] converges
    /// it). A deploy would have journaled the take-over; preflight journals nothing, so it says
    /// so here.
    pub dead_lock_holder: Option<LockHolder>,
}

impl Preflight {
    /// Whether every check passed.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems found by `check`.
    pub fn problems_with(&self, check: Check) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.check == check)
    }
}

impl fmt::Display for Preflight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.len() {
            0 => write!(
                f,
                "preflight: {} checks passed",
                self.checked.len() - self.not_checked.len()
            )?,
            n => write!(
                f,
                "preflight: {n} problem{} in {} checks",
                if n == 1 { "" } else { "s" },
                self.checked.len()
            )?,
        }
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        if let Some(dead) = &self.dead_lock_holder {
            write!(
                f,
                "\n  lock: was held by {dead}, which died (resume finishes what it left)"
            )?;
        }
        for c in &self.not_checked {
            write!(f, "\n  {c}: not checked (the backend cannot tell cheaply)")?;
        }
        Ok(())
    }
}

impl Deployer {
    /// Checks that every backend is reachable and readable, and returns every problem found, not
    /// just the first: the router's configuration ([`current`](crate::Router::current)) and what
    /// the proxy serves ([`observe`](crate::Router::observe); a proxy seen serving something else
    /// than its configuration, or a configuration bluegreen did not write that this deployer
    /// does not adopt, is a problem a deploy would refuse on), the environment's
    /// [`status`](crate::Environment::status) of both slots, the journal's last entry, and
    /// whether the lock is free (a held lock is [`Error::Locked`] naming its holder).
    ///
    /// # Side effects
    /// Reads only, each bounded by the deployer's [`Timeouts`](crate::Timeouts), except the lock:
    /// to learn whether it is free, it is taken and released at once (a deploy starting in that
    /// instant is refused as it would be by any other deployer, or waits its
    /// [`lock_wait`](crate::DeployerBuilder::lock_wait)). Nothing is journaled.
    ///
    /// # Errors
    /// None of its own: every failure is a [`Problem`] in the result.
    pub async fn preflight(&self) -> Preflight {
        let inner = &self.inner;
        let mut out = Preflight {
            checked: Vec::new(),
            problems: Vec::new(),
            not_checked: Vec::new(),
            dead_lock_holder: None,
        };
        let mut record = |check: Check, backend: &str, result: Result<(), Error>| {
            out.checked.push(check);
            if let Err(error) = result {
                out.problems.push(Problem {
                    check,
                    backend: backend.to_string(),
                    error,
                });
            }
        };
        let router = inner.router.name().to_string();
        record(Check::RouterCurrent, &router, inner.router.current().await.map(drop));
        let observed = inner.router.observe().await.and_then(|o| match o.serving {
            Serving::Confirmed | Serving::Unobservable => Ok(()),
            Serving::Foreign(_) if inner.adopt => Ok(()),
            Serving::Foreign(detail) => Err(Error::Conflict(Conflict::ForeignConfig { detail })),
            Serving::Stale(detail) | Serving::Unreachable(detail) => Err(Error::Conflict(Conflict::NotLive { detail })),
        });
        record(Check::RouterObserve, &router, observed);
        let environment = inner.environment.name().to_string();
        for slot in [Slot::Blue, Slot::Green] {
            let status = inner.environment.status(slot).await.map(drop);
            record(Check::EnvironmentStatus { slot }, &environment, status);
        }
        record(Check::Journal, "journal", inner.journal.tail(1).await.map(drop));
        let holder = LockHolder::this_process(inner.who.clone());
        // The guard is dropped at once: the lock was free.
        let lock = inner.lock.try_acquire(&inner.app, &holder).await;
        let dead = lock.as_ref().ok().and_then(|g| g.took_over_from.clone());
        record(Check::Lock, "lock", lock.map(drop));
        out.dead_lock_holder = dead;
        out
    }

    /// [`preflight`](Self::preflight), and whether `release` can be started
    /// ([`Environment::check_release`](crate::Environment::check_release); Docker: the image is
    /// present): a missing release is a [`Check::Release`] problem with [`Error::NotFound`]; an
    /// environment that cannot tell puts [`Check::Release`] in [`Preflight::not_checked`].
    ///
    /// # Side effects
    /// As [`preflight`](Self::preflight); the release check only reads.
    pub async fn preflight_for(&self, release: &Release) -> Preflight {
        let mut out = self.preflight().await;
        let environment = &self.inner.environment;
        out.checked.push(Check::Release);
        match environment.check_release(release).await {
            Ok(ReleaseCheck::Present) => {}
            Ok(ReleaseCheck::NotChecked) => out.not_checked.push(Check::Release),
            Err(error) => out.problems.push(Problem {
                check: Check::Release,
                backend: environment.name().to_string(),
                error,
            }),
        }
        out
    }
}
