//! The one public error type of bluegreen.
//!
//! Every backend maps its own failures into [`Error`], so callers can act on the variant (retry a
//! temporary backend error, wait for a lock, fix a bad value) without parsing text.

use std::time::Duration;

use crate::lock::LockHolder;
use crate::machine::Retry;
use crate::outcome::{Cause, Conflict, Restore};

/// Result alias used throughout bluegreen.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in bluegreen, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was refused before anything was written or started. Names the value and why.
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        /// What kind of value (`"release"`, `"endpoint host"`, `"traffic split"`, …).
        what: &'static str,
        /// The refused value, as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// A thing the operation needs does not exist (a slot, a deployment to promote, a journal).
    #[error("{what} not found: {name}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Which one.
        name: String,
    },

    /// A retained release cannot be started again as it ran: the artifact its snapshot pinned
    /// (Docker: the image id) is gone from the environment. Nothing was changed.
    #[error("release {release} cannot be started as it ran: its artifact {artifact} is gone")]
    ArtifactGone {
        /// The release.
        release: String,
        /// The pinned artifact that is gone.
        artifact: String,
    },

    /// Another deployment of the same application holds the lock.
    #[error("application {app:?} is being deployed by {holder}")]
    Locked {
        /// The application.
        app: String,
        /// Who holds the lock, and since when.
        holder: LockHolder,
    },

    /// The backend cannot do what the operation needs (for example a weighted split).
    #[error("{backend} does not support {capability}")]
    Unsupported {
        /// Which backend.
        backend: String,
        /// The missing capability.
        capability: &'static str,
    },

    /// An operation did not finish within its deadline.
    #[error("{operation} did not finish within {}", humantime::format_duration(*after))]
    Timeout {
        /// What was waited for.
        operation: String,
        /// The deadline that passed.
        after: Duration,
    },

    /// The operation does not fit the current state: which conflict, as a type.
    #[error("conflict: {0}")]
    Conflict(Conflict),

    /// The deployment did not go live: traffic is back on (or never left) the previous slot.
    #[error("deployment {deployment} of {release} rolled back ({cause}): {reason}{}", logs_suffix(.logs))]
    RolledBack {
        /// The deployment id.
        deployment: String,
        /// The release that was refused.
        release: String,
        /// Why, as a type.
        cause: Cause,
        /// Why, in words.
        reason: String,
        /// The last log lines of the new slot, where the environment has logs.
        logs: Vec<String>,
    },

    /// The deployment stopped in a state that needs attention (the router could not be reached to
    /// roll traffic back, the old or the refused release could not be stopped). The journal holds
    /// the state; [`crate::Deployer::resume`] retries what `retry` says.
    #[error("deployment {deployment} interrupted ({retry} left to do): {reason}")]
    Interrupted {
        /// The deployment id.
        deployment: String,
        /// What a resume retries.
        retry: Retry,
        /// Why.
        reason: String,
    },

    /// A router's change did not take. `restore` says whether the previous configuration is back
    /// in place (serving what it served before) or whether putting it back failed too (what the
    /// proxy serves is then unknown: [`Router::observe`](crate::Router::observe) says). The
    /// failure itself is the [`source`](std::error::Error::source), not repeated in the message
    /// (print [`Error::chain`] for both).
    #[error("routes not applied ({restore})")]
    NotApplied {
        /// What happened to the previous configuration.
        restore: Restore,
        /// Why the change did not take.
        #[source]
        source: Box<Error>,
    },

    /// The journal could not be read or written.
    #[error("journal {path}: {reason}")]
    Journal {
        /// The journal's location.
        path: String,
        /// What failed (`"cannot fsync"`, `"unreadable entry at offset 812 (…)"`), without the
        /// cause's own text: that is the [`source`](std::error::Error::source).
        reason: String,
        /// The underlying error (the OS error, serde's), if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// A backend (Docker, nginx, Traefik, a probe's target) failed. `message` says what failed;
    /// the cause, when there is one, is the [`source`](std::error::Error::source), not repeated
    /// in the message.
    #[error("{backend}: {message}")]
    Backend {
        /// Which backend.
        backend: String,
        /// What it said.
        message: String,
        /// Whether trying again may succeed (a connection refused, a timeout) or not.
        temporary: bool,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// An error and its sources on one line: see [`Error::chain`].
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(source) = next {
            write!(f, ": {source}")?;
            next = source.source();
        }
        Ok(())
    }
}

fn logs_suffix(logs: &[String]) -> String {
    if logs.is_empty() {
        String::new()
    } else {
        format!("\n--- last {} log lines ---\n{}", logs.len(), logs.join("\n"))
    }
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(what: &'static str, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for a [`Error::Backend`] without a source.
    pub fn backend(backend: impl Into<String>, message: impl Into<String>, temporary: bool) -> Self {
        Error::Backend {
            backend: backend.into(),
            message: message.into(),
            temporary,
            source: None,
        }
    }

    /// A [`Error::Backend`] caused by `source`: `message` says what failed ("cannot read
    /// /etc/nginx/shop.conf"), `source` why, and is not repeated in the message.
    pub fn backend_caused_by(
        backend: impl Into<String>,
        message: impl Into<String>,
        temporary: bool,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            message: message.into(),
            temporary,
            source: Some(source.into()),
        }
    }

    /// A [`Error::Journal`] at `path`: `reason` says what failed, `source` (the OS error, serde's)
    /// why, and is not repeated in the message.
    pub fn journal(
        path: impl Into<String>,
        reason: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Journal {
            path: path.into(),
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    /// This error and every [`source`](std::error::Error::source) below it, joined by `": "`:
    /// `journal /var/lib/shop.journal.jsonl: cannot fsync: No space left on device (os error 28)`.
    ///
    /// Each error's own message leaves its source out (so that a reporter that walks the chain,
    /// like `anyhow` or `eyre`, prints each cause once); this is the one line with all of them, for
    /// logs and for reasons written to the journal.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }

    /// `source` as a router change that did not take, with what happened to the previous
    /// configuration.
    pub fn not_applied(source: Error, restore: Restore) -> Self {
        Error::NotApplied {
            restore,
            source: Box::new(source),
        }
    }

    /// Whether retrying the same operation later may succeed.
    ///
    /// Locks, timeouts and temporary backend errors are temporary; bad values, missing
    /// capabilities, conflicts and rolled-back deployments are not.
    pub fn is_temporary(&self) -> bool {
        match self {
            Error::Locked { .. } | Error::Timeout { .. } | Error::Interrupted { .. } => true,
            Error::Backend { temporary, .. } => *temporary,
            Error::NotApplied { source, .. } => source.is_temporary(),
            Error::Invalid { .. }
            | Error::NotFound { .. }
            | Error::ArtifactGone { .. }
            | Error::Unsupported { .. }
            | Error::Conflict(_)
            | Error::RolledBack { .. }
            | Error::Journal { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_reads_its_bound_as_the_configs_write_it() {
        let err = Error::Timeout {
            operation: "nginx apply".into(),
            after: Duration::from_millis(90_500),
        };
        assert_eq!(err.to_string(), "nginx apply did not finish within 1m 30s 500ms");
    }

    #[test]
    fn a_change_not_applied_keeps_its_failure_as_the_source_and_says_it_once() {
        let os = std::io::Error::from_raw_os_error(28);
        let write = Error::backend_caused_by("file", "cannot write /etc/nginx/shop.conf", false, os);
        let err = Error::not_applied(write, Restore::Restored);
        assert_eq!(
            err.to_string(),
            "routes not applied (the previous configuration was restored)"
        );
        let sources: Vec<String> = std::iter::successors(std::error::Error::source(&err), |e| e.source())
            .map(ToString::to_string)
            .collect();
        let no_space = std::io::Error::from_raw_os_error(28).to_string();
        assert_eq!(
            sources,
            ["file: cannot write /etc/nginx/shop.conf".to_string(), no_space.clone()]
        );
        assert_eq!(
            err.chain().to_string(),
            format!(
                "routes not applied (the previous configuration was restored): file: cannot write \
                 /etc/nginx/shop.conf: {no_space}"
            )
        );
    }
}
