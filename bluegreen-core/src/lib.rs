//! # bluegreen
//!
//! Zero-downtime blue-green and canary deployments, as a library.
//!
//! A [`Deployer`] starts the new release beside the old one ([`Environment`]), proves it healthy
//! ([`HealthProbe`] under a [`HealthPolicy`]), moves traffic through a real proxy and confirms the
//! proxy serves it ([`Router`]), keeps the old release warm for a rollback window, drains it and stops
//! it gracefully — or rolls back. Every step is journaled ([`journal`]), so a deployer killed at any
//! point can [`resume`](Deployer::resume); a [`lock`] refuses a second concurrent deployment.
//!
//! How it proceeds is a [`Strategy`]: [`BlueGreen`] or [`Canary`]. The [`machine`] module holds
//! every phase and every transition in one place; only the engine drives it, so a [`Deployment`]
//! is read-only outside it.
//!
//! An application uses the crate root (most depend on the `bluegreen` facade, which re-exports
//! this crate and, behind features, the Docker, nginx and Traefik backends). Whoever implements a
//! backend also uses [`backend`]: the `async_trait` attribute, atomic config files, polling,
//! [`DrainStatus`](backend::DrainStatus), [`Progress`](backend::Progress) and the conformance
//! suites.
//!
//! [`webhook`] POSTs a deployment's events as signed JSON to URLs you configure, in the
//! background, never in the deployment's way.
//!
//! The `testing` feature adds in-memory backends, fault injection and conformance suites, so you can
//! test your own deploy logic — and your own backends — without Docker or a proxy.
//!
//! TLS (for an [`HttpProbe`](probe::HttpProbe) of an `https` endpoint) is a feature:
//! `rustls-tls-webpki-roots` (the default), `rustls-tls-native-roots` or `native-tls`; with none,
//! the crate speaks plain HTTP only (see [`probe::TLS_ENABLED`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> bluegreen_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use bluegreen_core::testing::{InMemoryEnvironment, InMemoryRouter};
//! use bluegreen_core::*;
//!
//! let env = InMemoryEnvironment::new();
//! env.mark_unhealthy(&Release::new("v3")?);
//! let deployer = Deployer::builder(AppName::new("shop")?)
//!     .environment(Arc::new(env.clone()))
//!     .router(Arc::new(InMemoryRouter::new()))
//!     .probe(env.health_probe())
//!     .policy(HealthPolicy::default().interval(Duration::from_millis(10)).failure_threshold(3))
//!     .retirement(Retirement::new().rollback_window(Duration::ZERO).drain(Duration::ZERO).stop_grace(Duration::from_secs(1)))
//!     .build()?;
//!
//! deployer.deploy(Release::new("v1")?).await?;
//! deployer.deploy(Release::new("v2")?).await?;
//! let err = deployer.deploy(Release::new("v3")?).await.unwrap_err();
//! assert!(matches!(err, Error::RolledBack { .. }), "{err}");
//!
//! let status = deployer.status().await?;
//! assert_eq!((status.live_slot(), status.live_release()), (Some(Slot::Green), Some(&Release::new("v2")?)));
//! # Ok(()) }
//! ```

// Library code never panics on input: every `expect`/`unwrap`/`panic!` left is allowed where it
// stands, with the reason it cannot fire (tests are exempt).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
// No blocking call on the async runtime: clippy.toml lists them; code that blocks by contract
// (called only from `spawn_blocking`) allows it where it stands, saying so.
#![cfg_attr(not(test), deny(clippy::disallowed_methods))]
// `doc_auto_cfg` was folded into `doc_cfg` (rustc 1.92): with it, docs.rs labels what each
// feature enables.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// The README's code sample compiles (`cargo test --doc`), so it cannot drift from the API. The
/// crate's own README, so that the packaged crate (which holds only its own directory) tests it too.
#[cfg(all(doctest, feature = "testing"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub mod backend;
pub mod bounded;
pub mod command;
mod engine;
pub mod environment;
pub mod error;
mod file;
pub mod fleet;
pub mod hook;
pub mod journal;
pub mod lock;
pub mod machine;
pub mod metrics;
pub mod model;
pub mod outcome;
pub mod probe;
pub mod router;
pub mod strategy;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod wait;
pub mod webhook;

pub use bounded::{Bounded, Timeouts};
pub use command::{Answer, Command, Issuer};
pub use engine::{
    Check, Deployer, DeployerBuilder, Drift, Event, EventKind, Plan, PlanStep, Preflight, Problem, Report,
    RetainedRelease, Status, TimelineStep, WorstCase,
};
pub use environment::{Environment, EnvironmentCapabilities, ReleaseCheck, SlotStatus, StopOutcome};
pub use error::{Error, Result};
pub use machine::{Deployment, Parking, Phase};
pub use model::{AppName, Endpoint, Endpoints, Release, Scheme, Slot, Snapshot, Timestamp, TrafficSplit};
pub use outcome::{Call, Cause, Conflict, Restore};
pub use probe::{HealthPolicy, HealthProbe, ProbeOutcome, ProbeScope, ProbeTarget, Verdict};
pub use router::{Adoption, Observation, Router, RouterCapabilities, Routes, Serving};
pub use strategy::{BlueGreen, Canary, CanaryStep, Decision, Promotion, Retirement, Strategy};
