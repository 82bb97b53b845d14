//! For backend authors: what implementing an [`Environment`](crate::Environment), a
//! [`Router`](crate::Router), a [`HealthProbe`](crate::HealthProbe) or a
//! [`Strategy`](crate::Strategy) needs beyond the traits themselves. An application that only
//! deploys does not need this module.
//!
//! - [`async_trait`](macro@async_trait): the attribute every async trait of this crate is implemented with, so a
//!   backend does not have to depend on it itself (and never on another version of it).
//! - [`file`](mod@file): config files that are never seen half-written (atomic replace in a chosen directory,
//!   backups, stale temp files), the way the nginx and Traefik routers write theirs.
//! - [`wait`]: polling until a condition holds or a deadline passes, the way routers confirm that
//!   a proxy serves a change.
//! - [`DrainStatus`] (what [`Router::wait_drained`](crate::Router::wait_drained) returns) and
//!   [`Progress`] (what [`Strategy::decide`](crate::Strategy::decide) reads).
//! - With the `testing` feature, [`router_conformance`] and [`environment_conformance`]: the
//!   contract checks every backend must pass, run against the real component in its tests.
//!
//! ```
//! use bluegreen_core::backend::Progress;
//! use bluegreen_core::{Decision, Strategy};
//!
//! /// All traffic at once, whatever the deployment's progress.
//! #[derive(Debug)]
//! struct AllAtOnce;
//!
//! impl Strategy for AllAtOnce {
//!     fn name(&self) -> &str {
//!         "all-at-once"
//!     }
//!     fn needs_weighted_split(&self) -> bool {
//!         false
//!     }
//!     fn decide(&self, progress: &Progress) -> Decision {
//!         if progress.weight < 100 { Decision::Shift(100) } else { Decision::Complete }
//!     }
//! }
//! ```

pub use async_trait::async_trait;

pub use crate::router::DrainStatus;
pub use crate::strategy::Progress;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use crate::testing::conformance::{
    environment_conformance, environment_conformance_with_replicas, router_conformance,
};

/// Config files that are never seen half-written: atomic replace and restore.
///
/// Routers that drive a proxy through files (nginx upstream files, Traefik's file provider) share
/// these, so every one of them writes the same way: a temporary file in a chosen directory on the
/// same filesystem, written and fsynced, renamed over the target, and the directory fsynced.
/// Temporary files have recognisable names, and leftovers of a killed writer can be removed
/// ([`remove_stale_temps`](file::remove_stale_temps)); see [`temp`](file::temp) for the naming.
pub mod file {
    pub use crate::file::*;
}

/// Waiting: polling until a condition holds or a deadline passes.
pub mod wait {
    pub use crate::wait::*;
}
